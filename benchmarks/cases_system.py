"""Costs around the computation: per-call overhead, compile time, import time, memory."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp

from .common import EQX, GEMM, NETKET, Result, gemm, rbm_pair, spins
from .timing import Candidate, Settings, timed


def call_overhead_cases(s: Settings, loop: int = 100) -> Iterator[Result]:
    """Per-call cost at batch 1, where dispatch dominates."""
    n, alpha = 16, 1
    x = spins(jax.random.key(1), 1, n, jnp.float64)
    model, reference, params = rbm_pair(n, alpha, jnp.float64, x)
    xs = spins(jax.random.key(2), loop, n, jnp.float64)[:, None, :]

    def looped(m, xs):
        return jax.lax.map(lambda x: m(x), xs)

    candidates = {
        EQX: Candidate(eqx.filter_jit(lambda m, x: m(x)), (model, x)),
        "eqx_rbm jax.jit": Candidate(jax.jit(lambda m, x: m(x)), (model, x)),
        "eqx_rbm looped": Candidate(jax.jit(looped), (model, xs), calls=loop),
        NETKET: Candidate(jax.jit(reference.apply), (params, x)),
        GEMM: gemm(x, model.kernel),
    }
    medians, rounds = timed(s, candidates)
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
    x = spins(jax.random.key(1), batch, n, jnp.float64)
    model, reference, params = rbm_pair(n, alpha, jnp.float64, x)
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
    x = spins(jax.random.key(1), batch, n, jnp.float64)
    model, reference, params = rbm_pair(n, alpha, jnp.float64, x)
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
