"""Side-by-side timings of eqx_rbm, NetKet and the bare matrix product.

Every case compiles its candidates first, then times them in rounds (see `benchmarks.timing`)
and the table reports per-candidate medians and their ratios.

eqx_rbm's models are called through `jax.jit` like NetKet's `apply`: the module is a pytree
whose leaves are exactly its parameters, so it can be passed to `jax.jit` directly. The extra
Python cost per call of `equinox.filter_jit` is measured on its own ("per-call overhead").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import jax

from .cases_local import local_loop_cases, local_state_cases, local_update_cases
from .cases_models import forward_cases, grad_cases, jacobian_cases, multival_cases
from .cases_system import call_overhead_cases, compile_cases, import_cases, memory_cases
from .cases_vmc import vmc_cases
from .common import Result
from .plots import plot
from .report import describe, machine, markdown_table, rows, targets, text_table
from .timing import Settings

RESULTS = Path(__file__).resolve().parent / "results"
GROUPS = (
    "forward",
    "headline",
    "complex",
    "grad",
    "jacobian",
    "multival",
    "local",
    "vmc",
    "overhead",
    "compile",
    "import",
    "memory",
)
Plan = list[tuple[str, Callable[[], Iterator[Result]]]]


def plan(quick: bool) -> Plan:
    headline = Settings(min_rounds=15, budget_s=3.0)
    grid = Settings(min_rounds=5, budget_s=0.6)
    end_to_end = Settings(min_rounds=7, budget_s=10.0)
    complex_shape = ([64], [2], [4096])
    steps: Plan
    if quick:
        steps = [
            (
                "forward",
                lambda: forward_cases(["float32", "float64", "complex128"], [256], [2], [4096], headline),
            ),
            ("complex", lambda: forward_cases(["complex64", "complex128"], *complex_shape, headline)),
            ("grad", lambda: grad_cases(["float64", "complex128"], [(64, 2, 4096)], headline)),
            ("jacobian", lambda: jacobian_cases(["float64"], [(40, 2, 1024)], headline)),
            ("multival", lambda: multival_cases([8], 64, 1, 4096, headline, gathered=False)),
            ("local", lambda: local_update_cases(256, 4, [1024], headline)),
            ("local", lambda: local_loop_cases(256, 4, [1], headline)),
            ("local", lambda: local_state_cases(["float64", "complex128"], [(40, 2, 128)], headline)),
            ("vmc", lambda: vmc_cases(["float64", "complex128"], Settings(min_rounds=5, budget_s=5.0))),
            ("overhead", lambda: call_overhead_cases(headline)),
        ]
    else:
        steps = [
            (
                "forward",
                lambda: forward_cases(
                    ["float32", "float64", "complex128"], [16, 64, 256], [1, 2, 4], [1, 64, 4096], grid
                ),
            ),
            ("forward", lambda: forward_cases(["float64"], [256], [2], [16, 256, 1024, 16384], grid)),
            (
                "headline",
                lambda: forward_cases(["float32", "float64", "complex128"], [256], [2], [4096], headline),
            ),
            ("complex", lambda: forward_cases(["complex64", "complex128"], *complex_shape, headline)),
            (
                "grad",
                lambda: grad_cases(
                    ["float32", "float64", "complex128"], [(64, 2, 4096), (256, 2, 1024)], headline
                ),
            ),
            (
                "jacobian",
                lambda: jacobian_cases(
                    ["float64", "complex128"], [(40, 2, 1024), (64, 2, 1024), (16, 2, 4096)], headline
                ),
            ),
            ("multival", lambda: multival_cases([2, 4, 8, 16], 64, 1, 4096, headline, gathered=True)),
            ("local", lambda: local_update_cases(256, 4, [1, 64, 1024], headline)),
            ("local", lambda: local_loop_cases(256, 4, [1, 64], headline)),
            (
                "local",
                lambda: local_state_cases(
                    ["float64", "complex128"], [(40, 2, 128), (256, 4, 1), (256, 4, 64)], headline
                ),
            ),
            ("vmc", lambda: vmc_cases(["float64", "complex128"], end_to_end)),
            ("overhead", lambda: call_overhead_cases(headline)),
        ]
    return [*steps, ("compile", compile_cases), ("import", import_cases), ("memory", memory_cases)]


def run(quick: bool, only: set[str] | None) -> list[Result]:
    results: list[Result] = []
    for name, cases in plan(quick):
        if only is not None and name not in only:
            continue
        for result in cases():
            # Cases measured twice (the grid's headline and complex cases, again with more
            # rounds): keep the later one.
            results = [r for r in results if not (r.group == result.group and r.case == result.case)]
            results.append(result)
            print(
                f"  {result.group:24s} {result.case:48s} {rows([result])[0][5]:>8s}",
                file=sys.stderr,
                flush=True,
            )
    return results


def _recorded(path: Path) -> list[dict[str, Any]]:
    """The results of the recorded run for this backend, if any, read before they are replaced."""
    try:
        return json.loads(path.read_text())["results"]
    except (OSError, ValueError, KeyError):
        return []


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the headline cases only (a few minutes)")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(GROUPS)}")
    parser.add_argument(
        "--backend",
        choices=["cpu", "gpu"],
        default=None,
        help="where to run (default: JAX's default backend); names the recorded files",
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="write benchmarks/results/<backend>.{md,json,png}, the recorded run of this backend",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--markdown", type=Path, default=None, help="write the table as Markdown here")
    parser.add_argument(
        "--plot",
        type=Path,
        default=None,
        help="throughput plot (PNG; default: beside --markdown, if matplotlib)",
    )
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    if only is not None and not only <= set(GROUPS):
        parser.error(
            f"--only: unknown case group(s) {sorted(only - set(GROUPS))}; expected some of {list(GROUPS)}"
        )

    backend = args.backend or jax.default_backend()
    if backend != "cpu":
        backend = "gpu"  # JAX names it cuda or rocm; the recorded files say gpu
    try:
        device = jax.devices(backend)[0]
    except RuntimeError as error:
        parser.error(f"--backend {backend}: JAX has no such device here ({error}); use --backend cpu")
    # Every computation below, NetKet's included, then runs on that device.
    jax.config.update("jax_default_device", device)
    if args.record:
        args.json = args.json or RESULTS / f"{backend}.json"
        args.markdown = args.markdown or RESULTS / f"{backend}.md"
    recorded = _recorded(RESULTS / f"{backend}.json")

    info = machine(backend)
    print(describe(info), file=sys.stderr)
    results = run(args.quick, only)
    goals = targets(results, recorded)
    print()
    print(f"Machine: {describe(info)}")
    print(text_table(results))
    if goals:
        print()
        print("\n".join(goals))
    if args.json:
        records = [{**asdict(r), "vs_netket": r.vs_netket, "vs_gemm": r.vs_gemm} for r in results]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"machine": info, "results": records, "targets": goals}, indent=2) + "\n"
        )
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown_table(results, info, goals))
    plot_path = args.plot or (args.markdown.with_suffix(".png") if args.markdown else None)
    if plot_path is not None and not plot(results, plot_path):
        print("(no plot: matplotlib is not installed or no forward batch series was run)", file=sys.stderr)
    return 0
