"""Side-by-side timings of eqx_rbm, NetKet and the bare matrix product.

Every case compiles its candidates first, then times them in rounds; each
round calls every candidate once (in a rotating order, so that none always
runs first after a pause), and the table reports per-candidate medians and
their ratios. Alternating within one process puts the candidates under the
same machine load, which matters far more than the number of rounds on a
shared machine.

eqx_rbm's models are called through `jax.jit` like NetKet's `apply`: the
module is a pytree whose leaves are exactly its parameters, so it can be
passed to `jax.jit` directly. The extra Python cost per call of
`equinox.filter_jit` is measured on its own ("per-call overhead").
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import eqx_rbm  # noqa: E402

EQX, NETKET, GEMM = "eqx_rbm", "netket", "gemm"
DTYPES = {"float32": jnp.float32, "float64": jnp.float64, "complex128": jnp.complex128}


@dataclass
class Candidate:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    calls: int = 1  # forwards per call, for loops jitted as a whole


@dataclass
class Result:
    group: str
    case: str
    params: dict[str, Any]
    median_s: dict[str, float]
    rounds: int
    unit: str = "time"
    notes: str = ""
    derived: dict[str, float] = field(default_factory=dict)

    @property
    def vs_netket(self) -> float | None:
        """NetKet's time over eqx_rbm's: the throughput ratio."""
        if EQX in self.median_s and NETKET in self.median_s:
            return self.median_s[NETKET] / self.median_s[EQX]
        return None

    @property
    def vs_gemm(self) -> float | None:
        """eqx_rbm's time over the bare product's."""
        if EQX in self.median_s and GEMM in self.median_s:
            return self.median_s[EQX] / self.median_s[GEMM]
        return None


# --- timing -------------------------------------------------------------------


def _call(candidate: Candidate) -> None:
    jax.block_until_ready(candidate.fn(*candidate.args))


def _inner_repeats(candidate: Candidate, target_s: float) -> int:
    """Calls per sample, so that microsecond calls are not dominated by the clock."""
    start = time.perf_counter()
    _call(candidate)
    once = time.perf_counter() - start
    return max(1, min(1000, int(target_s / max(once, 1e-7))))


def time_alternating(
    candidates: dict[str, Candidate], *, min_rounds: int, budget_s: float, max_rounds: int = 400
) -> tuple[dict[str, float], int]:
    """Median seconds per forward of each candidate, and the number of rounds."""
    for c in candidates.values():  # compile and warm up
        _call(c)
        _call(c)
    repeats = {name: _inner_repeats(c, 2e-3) for name, c in candidates.items()}
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    start = time.perf_counter()
    rounds = 0
    while rounds < max_rounds and (rounds < min_rounds or time.perf_counter() - start < budget_s):
        shift = rounds % len(names)
        for name in names[shift:] + names[:shift]:
            c, n = candidates[name], repeats[name]
            t0 = time.perf_counter()
            for _ in range(n):
                _call(c)
            samples[name].append((time.perf_counter() - t0) / (n * c.calls))
        rounds += 1
    return {name: statistics.median(s) for name, s in samples.items()}, rounds


# --- models -------------------------------------------------------------------


def _netket() -> Any:
    import netket  # heavy and optional: only when timing it

    return netket


def _spins(key: jax.Array, batch: int, n: int, dtype: Any) -> jax.Array:
    real = jnp.float32 if dtype == jnp.float32 else jnp.float64
    return jax.random.choice(key, jnp.array([-1.0, 1.0], real), (batch, n))


def _rbm_pair(n: int, alpha: int, dtype: Any, x: jax.Array) -> tuple[eqx_rbm.RBM, Any, Any]:
    nk = _netket()
    key = jax.random.key(0)
    model = eqx_rbm.RBM(n, alpha=alpha, param_dtype=dtype, key=key)
    reference = nk.models.RBM(alpha=alpha, param_dtype=dtype)
    params = reference.init(key, x[:1])
    return model, reference, params


def _gemm(x: jax.Array, kernel: jax.Array) -> Candidate:
    return Candidate(jax.jit(lambda x, w: x.astype(w.dtype) @ w), (x, kernel))


# --- cases --------------------------------------------------------------------


@dataclass
class Settings:
    min_rounds: int
    budget_s: float


def forward_cases(
    dtypes: list[str], ns: list[int], alphas: list[int], batches: list[int], s: Settings
) -> Iterator[Result]:
    for dtype_name in dtypes:
        dtype = DTYPES[dtype_name]
        for n in ns:
            for alpha in alphas:
                for batch in batches:
                    x = _spins(jax.random.key(1), batch, n, dtype)
                    model, reference, params = _rbm_pair(n, alpha, dtype, x)
                    candidates = {
                        EQX: Candidate(jax.jit(lambda m, x: m(x)), (model, x)),
                        NETKET: Candidate(jax.jit(reference.apply), (params, x)),
                        GEMM: _gemm(x, model.kernel),
                    }
                    medians, rounds = time_alternating(
                        candidates, min_rounds=s.min_rounds, budget_s=s.budget_s
                    )
                    yield Result(
                        "RBM forward",
                        f"{dtype_name} N={n} alpha={alpha} batch={batch}",
                        {"dtype": dtype_name, "N": n, "alpha": alpha, "batch": batch},
                        medians,
                        rounds,
                    )


def grad_cases(dtypes: list[str], shapes: list[tuple[int, int, int]], s: Settings) -> Iterator[Result]:
    for dtype_name in dtypes:
        dtype = DTYPES[dtype_name]
        for n, alpha, batch in shapes:
            x = _spins(jax.random.key(1), batch, n, dtype)
            model, reference, params = _rbm_pair(n, alpha, dtype, x)
            eqx_grad = jax.jit(jax.grad(lambda m, x: jnp.mean(m(x))))
            nk_grad = jax.jit(jax.grad(lambda p, x, apply=reference.apply: jnp.mean(apply(p, x))))
            candidates = {
                EQX: Candidate(eqx_grad, (model, x)),
                NETKET: Candidate(nk_grad, (params, x)),
                GEMM: _gemm(x, model.kernel),
            }
            medians, rounds = time_alternating(candidates, min_rounds=s.min_rounds, budget_s=s.budget_s)
            yield Result(
                "grad of mean log psi",
                f"{dtype_name} N={n} alpha={alpha} batch={batch}",
                {"dtype": dtype_name, "N": n, "alpha": alpha, "batch": batch},
                medians,
                rounds,
                notes="gemm: the forward product only",
            )


def jacobian_cases(shapes: list[tuple[int, int, int]], s: Settings) -> Iterator[Result]:
    for n, alpha, batch in shapes:
        x = _spins(jax.random.key(1), batch, n, jnp.float64)
        model, reference, params = _rbm_pair(n, alpha, jnp.float64, x)
        eqx_jac = jax.jit(jax.vmap(jax.grad(lambda m, s: m(s)), in_axes=(None, 0)))
        nk_jac = jax.jit(jax.vmap(jax.grad(reference.apply), in_axes=(None, 0)))
        candidates = {
            EQX: Candidate(eqx_jac, (model, x)),
            NETKET: Candidate(nk_jac, (params, x)),
            GEMM: _gemm(x, model.kernel),
        }
        medians, rounds = time_alternating(candidates, min_rounds=s.min_rounds, budget_s=s.budget_s)
        yield Result(
            "per-sample jacobian",
            f"float64 N={n} alpha={alpha} batch={batch}",
            {"dtype": "float64", "N": n, "alpha": alpha, "batch": batch},
            medians,
            rounds,
            notes="vmap(grad); gemm: the forward product only",
        )


def _gathered_multival(model: eqx_rbm.RBMMultiVal) -> Callable[[jax.Array], jax.Array]:
    """The RBMMultiVal forward as a sum of gathered kernel rows, one site at a time.

    Does n_sites * n_hidden additions per sample instead of the one-hot
    product's n_sites * n_classes * n_hidden multiply-adds; timed to decide
    which formulation the model should use.
    """
    rbm = model.rbm
    n_sites, n_classes, n_hidden = model.n_sites, model.n_classes, rbm.n_hidden
    kernel = rbm.kernel.reshape(n_sites, n_classes, n_hidden)

    def forward(x: jax.Array) -> jax.Array:
        classes = jnp.argmax(model.one_hot.matches(x), axis=-1)

        def add_site(theta, site):
            return theta + kernel[site][classes[:, site]], None

        start = jnp.broadcast_to(rbm.hidden_bias, (x.shape[0], n_hidden))
        theta, _ = jax.lax.scan(add_site, start, jnp.arange(n_sites))
        out = jnp.sum(rbm.activation(theta), axis=-1)
        if rbm.visible_bias is not None:
            bias = rbm.visible_bias.reshape(n_sites, n_classes)
            out = out + jnp.sum(bias[jnp.arange(n_sites), classes], axis=-1)
        return out

    return forward


def multival_cases(
    classes: list[int], n: int, alpha: int, batch: int, s: Settings, *, gathered: bool
) -> Iterator[Result]:
    nk = _netket()
    for n_classes in classes:
        key = jax.random.key(0)
        x = jax.random.randint(jax.random.key(1), (batch, n), 0, n_classes).astype(jnp.float64)
        model = eqx_rbm.RBMMultiVal(n, n_classes, alpha=alpha, key=key)
        reference = nk.models.RBMMultiVal(n_classes=n_classes, alpha=alpha)
        params = reference.init(key, x[:1])
        features = jnp.zeros((batch, n * n_classes))
        candidates = {
            EQX: Candidate(jax.jit(lambda m, x: m(x)), (model, x)),
            NETKET: Candidate(jax.jit(reference.apply), (params, x)),
            GEMM: _gemm(features, model.rbm.kernel),
        }
        if gathered:
            candidates["gathered"] = Candidate(jax.jit(_gathered_multival(model)), (x,))
        medians, rounds = time_alternating(candidates, min_rounds=s.min_rounds, budget_s=s.budget_s)
        yield Result(
            "RBMMultiVal forward",
            f"float64 n_classes={n_classes} N={n} alpha={alpha} batch={batch}",
            {"dtype": "float64", "n_classes": n_classes, "N": n, "alpha": alpha, "batch": batch},
            medians,
            rounds,
            notes="gemm: one-hot features times kernel"
            + ("; gathered: sum of kernel rows, scanned over sites" if gathered else ""),
        )


def local_update_cases(n: int, alpha: int, chains: list[int], s: Settings) -> Iterator[Result]:
    key = jax.random.key(0)
    model = eqx_rbm.RBM(n, alpha=alpha, key=key)
    for batch in chains:
        x = _spins(jax.random.key(1), batch, n, jnp.float64)
        theta = eqx_rbm.hidden_theta(model, x)
        sites = jax.random.randint(jax.random.key(2), (batch, 1), 0, n)
        values = -jnp.take_along_axis(x, sites, axis=-1)
        x_new = eqx_rbm.set_sites(x, sites, values)
        theta_new = eqx_rbm.hidden_theta(model, x_new)
        candidates = {
            EQX: Candidate(jax.jit(eqx_rbm.log_psi_ratio), (model, x, theta, sites, values)),
            "recompute": Candidate(jax.jit(lambda m, x: m(x)), (model, x_new)),
            GEMM: _gemm(x_new, model.kernel),
            # What any exact update must pay: the activation of every hidden unit, twice.
            "activations": Candidate(
                jax.jit(lambda a, b: jnp.sum(eqx_rbm.log_cosh(a) - eqx_rbm.log_cosh(b), axis=-1)),
                (theta_new, theta),
            ),
        }
        medians, rounds = time_alternating(candidates, min_rounds=s.min_rounds, budget_s=s.budget_s)
        yield Result(
            "local update",
            f"float64 N={n} alpha={alpha} chains={batch} k=1",
            {"dtype": "float64", "N": n, "alpha": alpha, "batch": batch, "k": 1},
            medians,
            rounds,
            notes="eqx_rbm: log_psi_ratio; recompute: log psi of the proposal from scratch",
            derived={"speedup_vs_recompute": medians["recompute"] / medians[EQX]},
        )


def local_loop_cases(
    n: int, alpha: int, chains: list[int], s: Settings, steps: int = 200
) -> Iterator[Result]:
    """Single-site Metropolis-like sweeps jitted as a whole: time per step."""
    model = eqx_rbm.RBM(n, alpha=alpha, key=jax.random.key(0))
    for batch in chains:
        x = _spins(jax.random.key(1), batch, n, jnp.float64)
        sites = jax.random.randint(jax.random.key(2), (steps, batch, 1), 0, n)

        def local(m, x, sites):
            def step(carry, site):
                x, theta = carry
                values = -jnp.take_along_axis(x, site, axis=-1)
                delta, theta = eqx_rbm.log_psi_ratio(m, x, theta, site, values)
                return (eqx_rbm.set_sites(x, site, values), theta), delta

            return jax.lax.scan(step, (x, eqx_rbm.hidden_theta(m, x)), sites)[1]

        def recompute(m, x, sites):
            def step(carry, site):
                x, log_psi = carry
                x = eqx_rbm.set_sites(x, site, -jnp.take_along_axis(x, site, axis=-1))
                new = m(x)
                return (x, new), new - log_psi

            return jax.lax.scan(step, (x, m(x)), sites)[1]

        candidates = {
            EQX: Candidate(jax.jit(local), (model, x, sites), calls=steps),
            "recompute": Candidate(jax.jit(recompute), (model, x, sites), calls=steps),
        }
        medians, rounds = time_alternating(candidates, min_rounds=s.min_rounds, budget_s=s.budget_s)
        yield Result(
            "local update loop",
            f"float64 N={n} alpha={alpha} chains={batch} k=1",
            {"dtype": "float64", "N": n, "alpha": alpha, "batch": batch, "k": 1},
            medians,
            rounds,
            notes=f"{steps} accepted flips in one jitted lax.scan; time per step",
            derived={"speedup_vs_recompute": medians["recompute"] / medians[EQX]},
        )


def call_overhead_cases(s: Settings, loop: int = 100) -> Iterator[Result]:
    """Per-call cost at batch 1, where dispatch dominates."""
    n, alpha = 16, 1
    x = _spins(jax.random.key(1), 1, n, jnp.float64)
    model, reference, params = _rbm_pair(n, alpha, jnp.float64, x)
    xs = _spins(jax.random.key(2), loop, n, jnp.float64)[:, None, :]

    def looped(m, xs):
        return jax.lax.map(lambda x: m(x), xs)

    candidates = {
        EQX: Candidate(eqx.filter_jit(lambda m, x: m(x)), (model, x)),
        "eqx_rbm jax.jit": Candidate(jax.jit(lambda m, x: m(x)), (model, x)),
        "eqx_rbm looped": Candidate(jax.jit(looped), (model, xs), calls=loop),
        NETKET: Candidate(jax.jit(reference.apply), (params, x)),
        GEMM: _gemm(x, model.kernel),
    }
    medians, rounds = time_alternating(candidates, min_rounds=s.min_rounds, budget_s=s.budget_s)
    yield Result(
        "per-call overhead",
        f"float64 N={n} alpha={alpha} batch=1",
        {"dtype": "float64", "N": n, "alpha": alpha, "batch": 1},
        medians,
        rounds,
        notes=(
            "eqx_rbm: eqx.filter_jit per call; eqx_rbm jax.jit: the module passed to jax.jit; "
            f"eqx_rbm looped: {loop} forwards in one jitted lax.map, time per forward"
        ),
    )


def compile_cases(repeats: int = 3) -> Iterator[Result]:
    """Wall time of the first call of a freshly jitted forward: trace, lower, compile, run."""
    n, alpha, batch = 64, 2, 64
    x = _spins(jax.random.key(1), batch, n, jnp.float64)
    model, reference, params = _rbm_pair(n, alpha, jnp.float64, x)
    times: dict[str, list[float]] = {EQX: [], NETKET: [], GEMM: []}
    for _ in range(repeats):
        # A new function object each time defeats the in-memory caches.
        fresh = {
            EQX: (eqx.filter_jit(lambda m, x: m(x)), (model, x)),
            NETKET: (jax.jit(lambda p, x: reference.apply(p, x)), (params, x)),
            GEMM: (jax.jit(lambda x, w: x @ w), (x, model.kernel)),
        }
        for name, (fn, args) in fresh.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times[name].append(time.perf_counter() - start)
    yield Result(
        "first-call compile time",
        f"float64 N={n} alpha={alpha} batch={batch}",
        {"dtype": "float64", "N": n, "alpha": alpha, "batch": batch},
        {name: statistics.median(t) for name, t in times.items()},
        repeats,
    )


def _import_seconds(module: str, repeats: int) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]), *sys.path]))
    out = []
    for _ in range(repeats):
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        out.append(float(result.stdout.strip().splitlines()[-1]))
    return statistics.median(out)


def import_cases(repeats: int = 3) -> Iterator[Result]:
    medians = {
        "jax": _import_seconds("jax", repeats),
        "equinox": _import_seconds("equinox", repeats),
        EQX: _import_seconds("eqx_rbm", repeats),
        NETKET: _import_seconds("netket", repeats),
    }
    yield Result(
        "import time",
        "fresh interpreter",
        {},
        medians,
        repeats,
        notes="eqx_rbm includes jax and equinox; netket includes jax and flax",
    )


def memory_cases(n: int = 256, alpha: int = 4, batch: int = 16384) -> Iterator[Result]:
    """Peak temporary memory XLA plans for a large forward (arguments and output excluded)."""
    x = _spins(jax.random.key(1), batch, n, jnp.float64)
    model, reference, params = _rbm_pair(n, alpha, jnp.float64, x)
    compiled = {
        EQX: jax.jit(lambda m, x: m(x)).lower(model, x).compile(),
        NETKET: jax.jit(reference.apply).lower(params, x).compile(),
        GEMM: jax.jit(lambda x, w: x @ w).lower(x, model.kernel).compile(),
    }
    sizes = {}
    for name, c in compiled.items():
        analysis = c.memory_analysis()
        sizes[name] = (
            float(analysis.temp_size_in_bytes + analysis.output_size_in_bytes) if analysis else float("nan")
        )
    yield Result(
        "peak memory",
        f"float64 N={n} alpha={alpha} batch={batch}",
        {"dtype": "float64", "N": n, "alpha": alpha, "batch": batch},
        sizes,
        1,
        unit="bytes",
        notes="XLA's temporary + output buffers; the input is "
        f"{x.nbytes / 2**20:.0f} MiB, theta would be {batch * n * alpha * 8 / 2**20:.0f} MiB",
    )


# --- reporting ----------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nk_version = None
    try:
        import importlib.metadata as metadata

        nk_version = metadata.version("netket")
    except Exception:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "equinox": eqx.__version__,
        "eqx_rbm": eqx_rbm.__version__,
        "netket": nk_version,
        "devices": [str(d) for d in jax.devices()],
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _fmt_value(value: float | None, unit: str) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    if unit == "bytes":
        return f"{value / 2**20:.1f} MiB"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.2f} ms"
    return f"{value * 1e6:.1f} us"


def _extra_columns(r: Result) -> str:
    parts = [f"{k}: {_fmt_value(v, r.unit)}" for k, v in r.median_s.items() if k not in (EQX, NETKET, GEMM)]
    parts += [f"{k}: {v:.1f}x" for k, v in r.derived.items()]
    return "; ".join(parts)


HEADER = ["group", "case", "eqx_rbm", "netket", "gemm", "netket/eqx_rbm", "eqx_rbm/gemm", "other", "rounds"]


def rows(results: list[Result]) -> list[list[str]]:
    out = []
    for r in results:
        vs_nk, vs_gemm = r.vs_netket, r.vs_gemm
        out.append(
            [
                r.group,
                r.case,
                _fmt_value(r.median_s.get(EQX), r.unit),
                _fmt_value(r.median_s.get(NETKET), r.unit),
                _fmt_value(r.median_s.get(GEMM), r.unit),
                f"{vs_nk:.2f}x" if vs_nk is not None else "-",
                f"{vs_gemm:.2f}" if vs_gemm is not None else "-",
                _extra_columns(r),
                str(r.rounds),
            ]
        )
    return out


def text_table(results: list[Result]) -> str:
    table = [HEADER, *rows(results)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(results: list[Result], info: dict[str, Any], targets: list[str]) -> str:
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores; {info['platform']}; Python {info['python']}, "
        f"jax {info['jax']}, equinox {info['equinox']}, netket {info['netket']}; {info['date_utc']}.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---" for _ in HEADER) + "|",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows(results)]
    if targets:
        lines += ["", "Targets:", ""] + [f"- {t}" for t in targets]
    return "\n".join(lines) + "\n"


def _find(results: list[Result], group: str, **params: Any) -> Result | None:
    for r in results:
        if r.group == group and all(r.params.get(k) == v for k, v in params.items()):
            return r
    return None


def targets(results: list[Result]) -> list[str]:
    """The issue's performance targets, each with its measured ratio."""
    out = []

    def check(label: str, value: float | None, ok: Callable[[float], bool], fmt: str) -> None:
        if value is None:
            return
        out.append(f"{'met' if ok(value) else 'NOT met'}: {label}: {fmt.format(value)}")

    headline = {"N": 256, "alpha": 2, "batch": 4096}
    f64 = _find(results, "RBM forward", dtype="float64", **headline)
    if f64:
        check(
            "float64 forward N=256 alpha=2 batch=4096, >= 2.5x NetKet",
            f64.vs_netket,
            lambda v: v >= 2.5,
            "{:.2f}x",
        )
        check("same case, <= 1.3x the bare x @ W", f64.vs_gemm, lambda v: v <= 1.3, "{:.2f}x the GEMM")
    f32 = _find(results, "RBM forward", dtype="float32", **headline)
    if f32:
        check("float32 forward, >= 1.5x NetKet", f32.vs_netket, lambda v: v >= 1.5, "{:.2f}x")
        if f32.median_s.get(GEMM) and f32.median_s.get(NETKET):
            out[-1] += f" (NetKet over the bare GEMM: {f32.median_s[NETKET] / f32.median_s[GEMM]:.2f}x)"
    c128 = _find(results, "RBM forward", dtype="complex128", **headline)
    if c128:
        check("complex128 forward, >= 1x NetKet", c128.vs_netket, lambda v: v >= 1.0, "{:.2f}x")
    grad = _find(results, "grad of mean log psi", dtype="float64", N=64, alpha=2, batch=4096)
    if grad:
        check(
            "grad float64 N=64 alpha=2 batch=4096, >= 1x NetKet",
            grad.vs_netket,
            lambda v: v >= 1.0,
            "{:.2f}x",
        )
    mv = _find(results, "RBMMultiVal forward", n_classes=8, N=64, alpha=1, batch=4096)
    if mv:
        check(
            "RBMMultiVal n_classes=8 N=64 alpha=1 batch=4096, >= 1.5x NetKet",
            mv.vs_netket,
            lambda v: v >= 1.5,
            "{:.2f}x",
        )
    for r in results:
        if r.group.startswith("local update") and r.params.get("N") == 256 and r.params.get("alpha") == 4:
            check(
                f"{r.group} N=256 alpha=4 k=1, {r.params['batch']} chain(s), >= 20x faster than recomputing",
                r.derived["speedup_vs_recompute"],
                lambda v: v >= 20,
                "{:.1f}x",
            )
    return out


def plot(results: list[Result], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    series = [
        r for r in results if r.group == "RBM forward" and r.params["N"] == 256 and r.params["alpha"] == 2
    ]
    dtypes = [d for d in DTYPES if any(r.params["dtype"] == d for r in series)]
    if not series:
        return False
    fig, axes = plt.subplots(1, len(dtypes), figsize=(4.5 * len(dtypes), 3.8), squeeze=False)
    for ax, dtype in zip(axes[0], dtypes, strict=True):
        points = sorted((r for r in series if r.params["dtype"] == dtype), key=lambda r: r.params["batch"])
        batches = [r.params["batch"] for r in points]
        for name, style in ((EQX, "o-"), (NETKET, "s--"), (GEMM, "^:")):
            ax.plot(
                batches,
                [b / r.median_s[name] for b, r in zip(batches, points, strict=True)],
                style,
                label=name,
            )
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="batch size",
            ylabel="samples / s",
            title=f"RBM N=256 alpha=2, {dtype}",
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --- command line -------------------------------------------------------------


def run(quick: bool, only: set[str] | None) -> list[Result]:
    headline = Settings(min_rounds=15, budget_s=3.0)
    grid = Settings(min_rounds=5, budget_s=0.6)
    plan: list[tuple[str, Callable[[], Iterator[Result]]]] = []
    if quick:
        plan += [
            (
                "forward",
                lambda: forward_cases(["float32", "float64", "complex128"], [256], [2], [4096], headline),
            ),
            ("grad", lambda: grad_cases(["float64"], [(64, 2, 4096)], headline)),
            ("jacobian", lambda: jacobian_cases([(64, 2, 1024)], headline)),
            ("multival", lambda: multival_cases([8], 64, 1, 4096, headline, gathered=False)),
            ("local", lambda: local_update_cases(256, 4, [1024], headline)),
            ("local", lambda: local_loop_cases(256, 4, [1], headline)),
            ("overhead", lambda: call_overhead_cases(headline)),
        ]
    else:
        plan += [
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
            ("grad", lambda: grad_cases(["float32", "float64"], [(64, 2, 4096), (256, 2, 1024)], headline)),
            ("jacobian", lambda: jacobian_cases([(64, 2, 1024), (16, 2, 4096)], headline)),
            ("multival", lambda: multival_cases([2, 4, 8, 16], 64, 1, 4096, headline, gathered=True)),
            ("local", lambda: local_update_cases(256, 4, [1, 64, 1024], headline)),
            ("local", lambda: local_loop_cases(256, 4, [1, 64], headline)),
            ("overhead", lambda: call_overhead_cases(headline)),
        ]
    plan += [("compile", compile_cases), ("import", import_cases), ("memory", memory_cases)]
    results: list[Result] = []
    for name, cases in plan:
        if only is not None and name not in only:
            continue
        for result in cases():
            # The grid's headline cases are measured again with more rounds: keep those.
            if name == "headline":
                results = [r for r in results if not (r.group == result.group and r.case == result.case)]
            results.append(result)
            print(
                f"  {result.group:24s} {result.case:44s} {rows([result])[0][5]:>8s}",
                file=sys.stderr,
                flush=True,
            )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the headline cases only (about two minutes)")
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated subset of: forward, headline, grad, jacobian, multival, local, overhead, "
        "compile, import, memory",
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

    info = machine()
    print(
        f"{info['cpu']}, {info['cores']} cores, jax {info['jax']}, netket {info['netket']}, "
        f"{info['date_utc']}",
        file=sys.stderr,
    )
    only = set(args.only.split(",")) if args.only else None
    known = {
        "forward",
        "headline",
        "grad",
        "jacobian",
        "multival",
        "local",
        "overhead",
        "compile",
        "import",
        "memory",
    }
    if only is not None and not only <= known:
        parser.error(
            f"--only: unknown case group(s) {sorted(only - known)}; expected some of {sorted(known)}"
        )
    results = run(args.quick, only)
    goals = targets(results)
    print()
    print(f"Machine: {info['cpu']}, {info['cores']} cores; jax {info['jax']}; {info['date_utc']}")
    print(text_table(results))
    if goals:
        print()
        print("\n".join(goals))
    if args.json:
        records = [{**asdict(r), "vs_netket": r.vs_netket, "vs_gemm": r.vs_gemm} for r in results]
        args.json.write_text(
            json.dumps({"machine": info, "results": records, "targets": goals}, indent=2) + "\n"
        )
    if args.markdown:
        args.markdown.write_text(markdown_table(results, info, goals))
    plot_path = args.plot or (args.markdown.with_suffix(".png") if args.markdown else None)
    if plot_path is not None and not plot(results, plot_path):
        print("(no plot: matplotlib is not installed or no forward batch series was run)", file=sys.stderr)
    return 0
