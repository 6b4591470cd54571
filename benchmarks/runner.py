"""Side-by-side timings of eqx_rbm, NetKet and the bare matrix product.

What runs is the case table in `benchmarks/cases.py`; what is promised, the target table below.
Every case compiles its candidates, then times them in alternating rounds (`benchmarks.timing`).
"""

import argparse
import datetime
import importlib.metadata
import json
import math
import os
import platform
import re
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jax

import eqx_rbm

from .cases import CASES, Case, parse
from .scale import n_parameters
from .timing import Candidate, time_alternating

RESULTS = Path(__file__).resolve().parent / "results"
GROUPS = tuple(dict.fromkeys(case.group for case in CASES))
EQX, MAIN, COLUMNS = "eqx_rbm", ("eqx_rbm", "netket", "gemm"), ("netket/eqx_rbm", "eqx_rbm/gemm")
TARGETS = (  # group, the cases it selects ("": all), ratio column and bound, backend ("any": both)
    ("vmc", "", "netket/eqx_rbm >= 3", "any"),
    ("vmc", "", "netket VMC+SR/eqx_rbm >= 3", "any"),
    ("jacobian", "dtype=float64 N=40 alpha=2 batch=1024", "vmap(grad)/eqx_rbm >= 10", "any"),
    ("complex", "dtype=complex128", "netket/eqx_rbm >= 2.5", "any"),
    ("complex", "dtype=complex128", "eqx_rbm/gemm <= 2", "cpu"),
    ("complex", "dtype=complex64", "netket/eqx_rbm >= 2", "any"),
    ("grad", "dtype=complex128 N=64", "netket/eqx_rbm >= 2", "any"),
    ("grad", "dtype=float64 N=64", "netket/eqx_rbm >= 1", "any"),
    ("forward", "dtype=float64 N=256 alpha=2 batch=4096", "netket/eqx_rbm >= 2.5", "any"),
    ("forward", "dtype=float64 N=256 alpha=2 batch=4096", "eqx_rbm/gemm <= 1.3", "cpu"),
    ("forward", "dtype=float32 N=256 alpha=2 batch=4096", "netket/eqx_rbm >= 1.5", "any"),
    ("multival", "n_classes=8 N=64 alpha=1 batch=4096", "netket/eqx_rbm >= 1.5", "any"),
    ("symmetric", "", "netket/eqx_rbm >= 1", "any"),
    ("symmetric", "", "netket grad/eqx_rbm grad >= 2", "any"),
    ("symmetric", "", "netket vmap(grad)/eqx_rbm log_derivatives >= 3", "any"),
    ("symmetric", "dtype=float64", "recompute/eqx_rbm propose >= 10", "cpu"),
    ("symmetric", "dtype=complex128", "recompute/eqx_rbm propose >= 1", "cpu"),
    ("netket-sampler", "L=40", "netket/eqx_rbm >= 2", "any"),
    ("netket-sampler", "L=100", "netket/eqx_rbm >= 5", "any"),
    ("netket-sampler", "L=100", "netket VMC_SR/eqx_rbm VMC_SR >= 1.5", "any"),
    ("vmc", "L=100", "netket sample/eqx_rbm sample >= 5", "gpu"),
    ("vmc", "dtype=float64 L=100 alpha=4 samples=1024", "netket/eqx_rbm >= 10", "cpu"),
    ("heisenberg", "dtype=float64", "eqx_rbm sum local energies/eqx_rbm local energies >= 4", "cpu"),
    ("heisenberg", "dtype=float64 lattice=square", "netket/eqx_rbm >= 25", "cpu"),
    ("heisenberg", "dtype=complex128 lattice=square", "netket/eqx_rbm >= 10", "cpu"),
    ("scale", "dtype=float64 length=10 alpha=4 samples=1024", "netket/eqx_rbm >= 10", "cpu"),
    ("scale", "dtype=float64 length=10 alpha=4 samples=1024", "netket peak/eqx_rbm peak >= 3", "cpu"),
    ("scale", "length=20 alpha=4 samples=4096", "eqx_rbm peak <= 4e9", "cpu"),
    ("scale", "length=20 alpha=4", "netket/eqx_rbm >= 5", "gpu"),
    # A GPU is launch-bound on a few chains either way: a CPU promise.
    ("local", "dtype=float64 N=256 alpha=4", "recompute/eqx_rbm >= 20", "cpu"),
    # A workaround that gains less on both backends is removed.
    ("workarounds", "", "plain/eqx_rbm >= 1.2", "any"),
)


@dataclass
class Result:
    group: str
    title: str
    case: str
    params: dict[str, Any]
    median_s: dict[str, float]
    rounds: int
    unit: str
    notes: str
    columns: tuple[str, ...]  # ratio columns besides COLUMNS
    plot: bool
    ratios: dict[str, float | None]
    remarks: dict[str, str]  # what a candidate function says instead of a number (out of memory, ...)

    def shown(self, name: str, value: float | None) -> str:
        """The value of a candidate or ratio column: "-" if none, memory where the unit or name says so."""
        if value is None or not math.isfinite(value):
            return "-"
        if "/" in name and name not in self.median_s:
            return f"{value:.2f}x"
        if self.unit == "bytes" or name.endswith("peak"):
            return f"{value / 2**20:.1f} MiB"
        scale, unit = (1, "s") if value >= 1 else (1e-3, "ms") if value >= 1e-3 else (1e-6, "us")
        return f"{value / scale:.2f} {unit}"


def ratio(times: dict[str, float], column: str) -> float | None:
    """Column "a/b" of the candidates' times, where a side may be a sum "x + y", or a candidate's own
    value "a"; None if one is missing."""
    top, bottom = (
        sum(times.get(name, math.nan) for name in side.split(" + ")) for side in [*column.split("/"), ""][:2]
    )
    value = top / bottom if "/" in column else top
    return value if (bottom or "/" not in column) and math.isfinite(value) else None


def plan(quick: bool, only: set[str], smoke: bool, select: str = "") -> list[tuple[Case, dict[str, Any]]]:
    """The cases to run, once each: where entries share a case, the one in --quick wins."""
    chosen: dict[tuple[str, str], tuple[Case, dict[str, Any]]] = {}
    wanted = parse(select)
    for case in CASES:
        for params in case.expand(smoke) if case.group in only and (case.quick or not quick) else []:
            if any(params.get(k) not in v for k, v in wanted.items() if k in params):
                continue
            key = (case.measure.title, case.name(params))
            if key not in chosen or case.quick:
                chosen[key] = (case, params)
    return list(chosen.values())


def run(case: Case, params: dict[str, Any], smoke: bool) -> Result:
    m = case.measure
    medians, rounds = m.fn(**params), params.get("repeats", 1)
    if not all(isinstance(v, float | str) for v in medians.values()):  # else measured by the function itself
        jitted = {
            k: c if isinstance(c, Candidate) else Candidate(jax.jit(c[0]), c[1]) for k, c in medians.items()
        }
        medians, rounds = time_alternating(jitted, *((1, 0.0) if smoke else case.timing))
    remarks = {k: v for k, v in medians.items() if isinstance(v, str)}
    medians = {k: v for k, v in medians.items() if not isinstance(v, str)}
    ratios = {c: ratio(medians, c) for c in (*COLUMNS, *m.ratios)}
    row = (case.group, m.title, case.name(params), params, medians, rounds, m.unit, m.notes, m.ratios)
    return Result(*row, case.quick or case.plot, ratios, remarks)


def machine(backend: str) -> dict[str, Any]:
    """Where the numbers come from: CPU, accelerator, versions and date."""
    cpuinfo = Path("/proc/cpuinfo")
    cpus = re.findall(r"model name\s*:\s*(.*)", cpuinfo.read_text()) if cpuinfo.exists() else []
    devices = jax.devices(backend)
    return {
        "cpu": cpus[0] if cpus else platform.machine(),
        "cores": os.cpu_count(),
        "backend": backend,
        "device": devices[0].device_kind,
        "devices": [str(d) for d in devices],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "eqx_rbm": eqx_rbm.__version__,
        **{name: importlib.metadata.version(name) for name in ("jax", "equinox", "netket")},
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def markdown(results: list[Result], info: dict[str, Any], goals: list[str]) -> str:
    """The table, aligned to read as text too, its notes and the targets."""
    rows = [["group", "case", *MAIN, *COLUMNS, "other", "rounds"]]
    for r in results:
        other = [f"{k}: {r.shown(k, v)}" for k, v in r.median_s.items() if k not in MAIN]
        other += [f"{c}: {r.shown(c, r.ratios[c])}" for c in r.columns if r.ratios[c] is not None]
        other += [f"{k}: {v}" for k, v in r.remarks.items()]
        cells = [r.shown(k, r.median_s.get(k)) for k in MAIN] + [r.shown(c, r.ratios[c]) for c in COLUMNS]
        rows.append([r.title, r.case, *cells, "; ".join(other), str(r.rounds)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    rows.insert(1, ["-" * w for w in widths])
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    notes = list(dict.fromkeys(f"- {r.title}: {r.notes}" for r in results if r.notes))
    machine = "; ".join(f"{k} {v}" for k, v in info.items() if k != "devices")
    sections = [["", "Notes:", "", *notes] * bool(notes), ["", "Targets:", "", *goals] * bool(goals)]
    return "\n".join([f"Machine: {machine}.", "", *lines, *sections[0], *sections[1]]) + "\n"


def targets(results: list[Result], backend: str, recorded: Path) -> list[str]:
    """Every target row checked on each result it selects, then the comparison with the recorded run."""
    out = []
    for group, selector, promise, on in TARGETS:
        column, op, bound = promise.rsplit(" ", 2)
        for r in results:
            chosen = r.group == group and all(r.params.get(k) in v for k, v in parse(selector).items())
            if on in ("any", backend) and chosen and (value := ratio(r.median_s, column)) is not None:
                met = value >= float(bound) if op == ">=" else value <= float(bound)
                verdict, shown = "met" if met else "NOT met", r.shown(column, value)
                out.append(f"- {verdict}: {r.title} {r.case}: {shown} ({promise})")
    return out + vs_recorded(results, recorded)


def vs_recorded(results: list[Result], recorded: Path) -> list[str]:
    """Real-dtype timed rows against the recorded run, matched by title and case (rows it lacks are
    skipped). Relative to a reference run alongside, the bare GEMM else NetKet, so that a busier
    machine does not read as a slower library; the median over rows, now over then, at most 1.1."""
    try:  # read before it is replaced; unreadable means none
        then = {
            (r.get("title", r.get("group")), r.get("case")): r.get("median_s") or {}
            for r in json.loads(recorded.read_text())["results"]
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []
    relative = lambda times: ratio(times, "eqx_rbm/gemm") or ratio(times, "eqx_rbm/netket")  # noqa: E731
    changes = []
    for r in results:
        old, now = relative(then.get((r.title, r.case), {})), relative(r.median_s)
        runtime = r.unit == "time" and r.group not in ("compile", "import")
        if runtime and r.params.get("dtype") in ("float32", "float64") and old and now:
            changes.append((now / old, f"{r.title} {r.case}"))
    if not changes:
        return []
    median, (worst, where) = statistics.median(c for c, _ in changes), max(changes)
    return [
        f"- {'met' if median <= 1.1 else 'NOT met'}: real-dtype rows against the recorded run (eqx_rbm over "
        f"the GEMM or NetKet, now over then): median {median:.2f}x of {len(changes)} rows, slowest {where} "
        f"at {worst:.2f}x (<= 1.1)"
    ]


def scale_plot(results: list[Result], info: dict[str, Any], path: Path) -> None:
    """`path`: time per VMC iteration against the number of parameters, log-log, of the scale rows. (The
    docs build draws NetKet's time over eqx_rbm's per headline case from the JSON: docs_tools/hooks.py.)"""
    if not (rows := [r for r in results if r.group == "scale"]):
        return
    try:
        import matplotlib
    except ImportError:
        print("(no plot: matplotlib is not installed)", file=sys.stderr)
        return
    matplotlib.use("Agg")  # no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (dtype, samples) in enumerate(sorted({(r.params["dtype"], r.params["samples"]) for r in rows})):
        chosen = [r for r in rows if (r.params["dtype"], r.params["samples"]) == (dtype, samples)]
        for side, marker, style in (("eqx_rbm", "o", "-"), ("netket", "s", "--")):
            size = [(n_parameters(r.params["length"], r.params["alpha"]), r) for r in chosen]
            if points := sorted((n, r.median_s[side]) for n, r in size if side in r.median_s):
                label = f"{side}, {dtype}, {samples} samples"
                ax.plot(*zip(*points, strict=True), marker=marker, ls=style, color=f"C{i}", label=label)
    ax.set(xscale="log", yscale="log", xlabel="parameters", ylabel="seconds per VMC iteration")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    device = f"{info['cpu']}, {info['cores']} cores" if info["backend"] == "cpu" else info["device"]
    title = f"TFIM on L x L tori (N = 100, 400), {device}\njax {info['jax']}, {info['date_utc']}"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=(__doc__ or "").splitlines()[0])
    option = parser.add_argument
    option("--quick", action="store_true", help="the headline cases only (minutes)")
    option("--only", default=",".join(GROUPS), help=f"comma-separated, among {', '.join(GROUPS)}")
    option("--select", default="", help='only cases with these parameters, e.g. "dtype=float64 alpha=1,4"')
    option("--backend", choices=["cpu", "gpu"], help="default: JAX's; names the recorded files")
    option(
        "--record",
        action="store_true",
        help="write results/<backend>[-<groups>].{md,json}, and <backend>-scale.png",
    )
    # Tiny sizes, one round per case and no targets: whether every case runs (CI), not how fast.
    option("--smoke", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    only = args.only.split(",")
    if unknown := set(only) - set(GROUPS):
        parser.error(f"--only: unknown group(s) {sorted(unknown)}; expected some of {list(GROUPS)}")
    if args.smoke and args.record:
        parser.error("--smoke measures nothing: it cannot --record")

    # NetKet parity and the VMC cases are in double precision: switched on here, never at import.
    jax.config.update("jax_enable_x64", True)
    backend = "cpu" if (args.backend or jax.default_backend()) == "cpu" else "gpu"  # JAX says cuda or rocm
    try:
        jax.config.update("jax_default_device", jax.devices(backend)[0])  # every computation, NetKet's too
    except RuntimeError as error:
        parser.error(f"--backend {backend}: JAX has no such device here ({error}); use --backend cpu")
    # Some groups only are recorded beside the full run (<backend>-heisenberg, ...), never over it.
    recorded = RESULTS / ("-".join([backend, *only]) if set(only) != set(GROUPS) else backend)

    info, results = machine(backend), []
    print(f"{info['cpu']}; backend {backend}: {info['device']}", file=sys.stderr)
    for case, params in plan(args.quick, set(only), args.smoke, args.select):
        results.append(r := run(case, params, args.smoke))
        print(f"  {r.title:24s} {r.case:48s} {r.shown(EQX, r.median_s.get(EQX))}", file=sys.stderr)
    goals = [] if args.smoke else targets(results, backend, recorded.with_suffix(".json"))
    print(table := markdown(results, info, goals))
    if args.record:
        document = {"machine": info, "results": [asdict(r) for r in results], "targets": goals}
        recorded.with_suffix(".json").write_text(json.dumps(document, indent=2) + "\n")
        recorded.with_suffix(".md").write_text(table)
        scale_plot(results, info, recorded.with_name(f"{backend}-scale.png"))
    return 0
