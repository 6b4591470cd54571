"""The case table and its candidate functions: adding a case is one row of `CASES`, and a candidate
function (`@measures`) when none fits. A candidate is a `Candidate`, or a (function, arguments) pair that
the runner jits. "eqx_rbm", "netket" and "gemm" (the bare x @ W, what any exact forward pays) have
columns of their own; other candidates go to the last."""

import itertools
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

import eqx_rbm

from .scale import ROOT, scale
from .timing import Candidate, Measure, measures
from .vmc import netket_sampler, vmc
from .workarounds import workaround

Pairs = dict[str, tuple[Any, tuple]]


def forwards(name: str, x: Any, dtype: str, *args: Any, **kw: Any) -> tuple[Any, Pairs]:
    """eqx_rbm's model `name` (positional `args` for it alone), and its forward and NetKet's on x."""
    import netket as nk  # heavy: only when timing it

    key, kw = jax.random.key(0), {**kw, "param_dtype": jnp.dtype(dtype)}
    model, reference = getattr(eqx_rbm, name)(*args, **kw, key=key), getattr(nk.models, name)(**kw)
    return model, {
        "eqx_rbm": (forward_of, (model, x)),
        "netket": (reference.apply, (reference.init(key, x[:1]), x)),
    }


@measures("RBM forward")
def forward(dtype: str, N: int, alpha: int, batch: int) -> Pairs:
    """eqx_rbm's RBM forward, NetKet's and the bare product (`forward.fn`, the other cases' start)."""
    spins = jnp.array([-1.0, 1.0], jnp.finfo(dtype).dtype)  # real for complex too
    x = jax.random.choice(jax.random.key(1), spins, (batch, N))
    model, pairs = forwards("RBM", x, dtype, N, alpha=alpha)
    return pairs | {"gemm": (lambda x, w: x.astype(w.dtype) @ w, (x, model.kernel))}


def forward_of(m: Any, x: Any) -> Any:
    return m(x)


def mean_grad(f: Any, dtype: str) -> Any:
    return jax.grad(lambda p, x: jnp.mean(f(p, x)), holomorphic=dtype.startswith("complex"))


def one_flip(model: Any, x: Any) -> tuple[tuple, Any]:
    """`eqx_rbm.propose` on one single-site flip per configuration, as a candidate, and its proposal."""
    sites = jax.random.randint(jax.random.key(2), (x.shape[0], 1), 0, x.shape[1])
    args = (model, eqx_rbm.local_state(model, x), sites, -jnp.take_along_axis(x, sites, axis=-1))
    return (lambda *a: eqx_rbm.propose(*a)[0], args), eqx_rbm.propose(*args)[1]


@measures("grad of mean log psi", notes="gemm: the forward product only; complex: holomorphic, as NetKet's")
def grad(dtype: str, **shape: Any) -> Pairs:
    pairs = forward.fn(dtype, **shape)
    return {k: (f if k == "gemm" else mean_grad(f, dtype), a) for k, (f, a) in pairs.items()}


@measures(
    "per-sample jacobian",
    ratios=("vmap(grad)/eqx_rbm", "kernel via vmap(grad)/kernel"),
    notes="eqx_rbm: closed-form log_derivatives; netket, vmap(grad): vmap(grad) of apply, of the module; "
    "flat: jacobian(...).flat(); kernel: the centred n x n kernel; gemm: the forward product",
)
def jacobian(dtype: str, **shape: Any) -> Pairs:
    pairs = forward.fn(dtype, **shape)
    (apply, on_params), on_model = pairs["netket"], pairs["eqx_rbm"][1]

    def per_sample(f):
        return jax.vmap(jax.grad(f, holomorphic=dtype.startswith("complex")), in_axes=(None, 0))

    def dense_kernel(m, x):
        y = jax.vmap(lambda tree: ravel_pytree(tree)[0])(per_sample(forward_of)(m, x))
        y = y - jnp.mean(y, axis=0)
        return y @ y.conj().T

    return {
        "eqx_rbm": (eqx_rbm.log_derivatives, on_model),
        "netket": (per_sample(apply), on_params),
        "gemm": pairs["gemm"],
        "vmap(grad)": (per_sample(forward_of), on_model),
        "flat": (lambda m, x: eqx_rbm.jacobian(m, x).flat(), on_model),
        "kernel": (lambda m, x: eqx_rbm.jacobian(m, x, centred=True).kernel(), on_model),
        "kernel via vmap(grad)": (dense_kernel, on_model),
    }


@measures("RBMMultiVal forward", notes="gemm: the one-hot features times the kernel")
def multival(dtype: str, n_classes: int, N: int, alpha: int, batch: int) -> Pairs:
    x = jax.random.randint(jax.random.key(1), (batch, N), 0, n_classes).astype(dtype)
    model, pairs = forwards("RBMMultiVal", x, dtype, N, n_classes=n_classes, alpha=alpha)
    return pairs | {"gemm": (jnp.matmul, (jnp.zeros((batch, model.n_features), dtype), model.kernel))}


@measures(
    "RBMSymm",
    ratios=(
        "netket grad/eqx_rbm grad",
        "netket vmap(grad)/eqx_rbm log_derivatives",
        "recompute/eqx_rbm propose",
    ),
    notes="square L x L torus, translation group (G = L^2), F = alpha filters; eqx_rbm / netket: forward; "
    "grad: jax.grad of mean log psi; log_derivatives: eqx_rbm.log_derivatives against NetKet's "
    "vmap(grad); propose: one single-site proposal per sample, recompute: its full evaluation",
)
def symmetric(dtype: str, L: int, alpha: int, batch: int) -> Pairs:
    import netket as nk

    x = jax.random.choice(jax.random.key(1), jnp.array([-1.0, 1.0]), (batch, L * L))
    symmetries = nk.graph.Square(L).translation_group()
    model, pairs = forwards("RBMSymm", x, dtype, symmetries=symmetries, alpha=alpha)
    apply, (params, _) = pairs["netket"]
    # NetKet's RBMSymm needs a batch axis: each sample as a batch of one.
    one = jax.grad(lambda p, s: apply(p, s[None])[0], holomorphic=dtype.startswith("complex"))
    propose, proposed = one_flip(model, x)
    return pairs | {
        "eqx_rbm grad": (mean_grad(forward_of, dtype), (model, x)),
        "netket grad": (mean_grad(apply, dtype), (params, x)),
        "eqx_rbm log_derivatives": (eqx_rbm.log_derivatives, (model, x)),
        "netket vmap(grad)": (jax.vmap(one, in_axes=(None, 0)), (params, x)),
        "eqx_rbm propose": propose,
        "recompute": (forward_of, (model, proposed.x)),
    }


@measures(
    "local update",
    ratios=("recompute/eqx_rbm",),
    notes="eqx_rbm: eqx_rbm.propose, one flip per chain; recompute: log psi of the proposal; activations: "
    "the activation of every hidden unit of the proposal, what any exact update pays",
)
def local_move(chains: int, **shape: Any) -> Pairs:
    model, x = forward.fn(batch=chains, **shape)["eqx_rbm"][1]
    propose, proposed = one_flip(model, x)
    return {
        "eqx_rbm": propose,
        "recompute": (forward_of, (model, proposed.x)),
        "gemm": (jnp.matmul, (proposed.x, model.kernel)),
        "activations": (lambda t: jnp.sum(model.activation(t), axis=-1), (proposed.theta,)),
    }


@measures(
    "local update loop",
    ratios=("recompute/eqx_rbm",),
    notes="time per flip of 4 Metropolis sweeps jitted as a whole; eqx_rbm: eqx_rbm.metropolis; "
    "propose/accept scan: a scan of local_state, propose and accept; recompute: log psi of each flip",
)
def local_loop(chains: int, n_sweeps: int = 4, **shape: Any) -> dict[str, Candidate]:
    model, x = forward.fn(batch=chains, **shape)["eqx_rbm"][1]
    steps = n_sweeps * x.shape[-1]

    def recompute(m, x, key):  # every flip accepted: the acceptance test costs next to nothing
        def flip(x, site):
            x = jnp.where(jnp.arange(x.shape[-1]) == site, -x, x)
            return x, m(x)

        return jax.lax.scan(flip, x, jax.random.randint(key, (steps, x.shape[0], 1), 0, x.shape[-1]))[1]

    def scanned(m, x, key):  # random numbers drawn a sweep at a time: memory stays O(n_sites n_chains)
        def flip(state, inputs):
            site, log_u = inputs
            delta, proposed = eqx_rbm.propose(m, state, site, -jnp.take_along_axis(state.x, site, axis=-1))
            return eqx_rbm.accept(state, proposed, log_u < 2 * delta.real), None  # |psi'|^2 / |psi|^2

        def sweep(state, key):
            k_site, k_accept = jax.random.split(key)
            sites = jax.random.randint(k_site, (x.shape[-1], x.shape[0], 1), 0, x.shape[-1])
            log_u = jnp.log(jax.random.uniform(k_accept, sites.shape[:2]))
            state = jax.lax.scan(flip, state, (sites, log_u))[0]
            return state, state.x

        return jax.lax.scan(sweep, eqx_rbm.local_state(m, x), jax.random.split(key, n_sweeps))[1]

    def metropolis(m, x, key):
        return eqx_rbm.metropolis(m, eqx_rbm.local_state(m, x), key, n_sweeps=n_sweeps)[0]

    candidates = {"eqx_rbm": metropolis, "recompute": recompute, "propose/accept scan": scanned}
    return {
        name: Candidate(jax.jit(f), (model, x, jax.random.key(2)), steps) for name, f in candidates.items()
    }


@measures(
    "per-call overhead",
    ratios=("eqx.filter_jit/eqx_rbm",),
    notes="eqx_rbm: the module passed to jax.jit; eqx.filter_jit: the same, filtering the module's pytree "
    "on every call; looped: time per forward of 100 in one jitted lax.map",
)
def overhead(loop: int = 100, **shape: Any) -> dict[str, Candidate | tuple]:
    pairs = forward.fn(**shape)
    model, x = pairs["eqx_rbm"][1]
    xs = jnp.broadcast_to(x, (loop, *x.shape))
    looped = Candidate(jax.jit(lambda m, xs: jax.lax.map(m, xs)), (model, xs), calls=loop)
    return pairs | {"eqx.filter_jit": Candidate(eqx.filter_jit(forward_of), (model, x)), "looped": looped}


symmetric_vmc = Measure(
    vmc.fn,
    "symmetric VMC iteration",
    (*vmc.ratios, "eqx_rbm sum local energies/eqx_rbm local energies"),
    "Marshall-rotated Heisenberg on an L x L torus (NetKet: Heisenberg(J=1/4, sign_rule=True)), RBMSymm over "
    "its translations, exchanges over its bonds at zero magnetisation (NetKet: MetropolisExchange); else as "
    "VMC iteration. sum local energies: eqx_rbm 0.2.1's, one log cosh per hidden unit, bond and sample",
)


@measures("first-call compile time", notes="trace, lower, compile and run of a fresh jax.jit of each forward")
def compile_time(repeats: int, **shape: Any) -> dict[str, float]:
    def first_call(f, args):
        start = time.perf_counter()
        jax.block_until_ready(jax.jit(lambda *a: f(*a))(*args))  # a new function defeats the caches
        return time.perf_counter() - start

    return {
        name: statistics.median(first_call(*p) for _ in range(repeats))
        for name, p in forward.fn(**shape).items()
    }


@measures("import time", notes="a fresh interpreter; eqx_rbm includes jax and equinox, netket jax and flax")
def import_time(repeats: int) -> dict[str, float]:
    def seconds(module: str) -> float:
        code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
        run = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
        )
        return float(run.stdout.split()[-1])

    return {
        m: statistics.median(seconds(m) for _ in range(repeats))
        for m in ("jax", "equinox", "eqx_rbm", "netket")
    }


@measures("peak memory", unit="bytes", notes="XLA's temporary and output buffers planned for the forward")
def memory(**shape: Any) -> dict[str, float]:
    def planned(f, args):
        plan = jax.jit(f).lower(*args).compile().memory_analysis()
        return float(plan.temp_size_in_bytes + plan.output_size_in_bytes) if plan else float("nan")

    return {name: planned(*p) for name, p in forward.fn(**shape).items()}


# --smoke: tiny sizes and one round, whether every case runs; cases that collapse into one run once.
SMOKE = {
    **{"N": 12, "L": 12, "length": 3, "alpha": 1, "batch": 32, "samples": 64, "chains": 16},
    **{"n_classes": 3, "repeats": 1},
}


def parse(spec: str) -> dict[str, list[Any]]:
    """ "dtype=float32,float64 N=64" -> {"dtype": ["float32", "float64"], "N": [64]}."""
    pairs = (word.split("=") for word in spec.split())
    return {key: [int(v) if v.isdigit() else v for v in values.split(",")] for key, values in pairs}


@dataclass(frozen=True)
class Case:
    group: str  # what --only selects
    measure: Measure  # the candidate function
    params: str  # "dtype=float32,float64 N=64": a list is a series, one case per combination
    quick: bool = False  # in --quick, and in the plot
    timing: tuple[int, float] = (15, 3.0)  # (at least rounds, time budget in seconds)
    plot: bool = False  # in the plot although not in --quick

    def expand(self, smoke: bool) -> list[dict[str, Any]]:
        series = parse(self.params)
        cases = [dict(zip(series, values, strict=True)) for values in itertools.product(*series.values())]
        return [{k: min(v, SMOKE.get(k, v)) for k, v in p.items()} for p in cases] if smoke else cases

    def name(self, params: dict[str, Any]) -> str:
        return " ".join(str(v) if k == "dtype" else f"{k}={v}" for k, v in params.items())


F, C, GRID = "float32,float64,complex128", "float64,complex128", (5, 0.6)
SQUARE, W = "L=10 alpha=16 samples=1024 chains=128 lattice=square", "N=100 alpha=4 batch=256"
CASES = (
    Case("forward", forward, f"dtype={F} N=16,64,256 alpha=1,2,4 batch=1,64,4096", timing=GRID),
    Case("forward", forward, "dtype=float64 N=256 alpha=2 batch=16,256,1024,16384", timing=GRID),
    Case("forward", forward, f"dtype={F} N=256 alpha=2 batch=4096", quick=True),
    Case("complex", forward, "dtype=complex64,complex128 N=64 alpha=2 batch=4096", quick=True),
    Case("grad", grad, f"dtype={F} N=64 alpha=2 batch=4096", quick=True),
    Case("grad", grad, f"dtype={F} N=256 alpha=2 batch=1024"),
    Case("jacobian", jacobian, "dtype=float64 N=40 alpha=2 batch=1024", quick=True),
    Case("jacobian", jacobian, f"dtype={C} N=40,64 alpha=2 batch=1024"),
    Case("jacobian", jacobian, f"dtype={C} N=16 alpha=2 batch=4096"),
    Case("multival", multival, "dtype=float64 n_classes=8 N=64 alpha=1 batch=4096", quick=True),
    Case("multival", multival, "dtype=float64 n_classes=2,4,16 N=64 alpha=1 batch=4096"),
    Case("symmetric", symmetric, "dtype=float64,complex128 L=10 alpha=16 batch=1024", quick=True),
    Case("local", local_move, "dtype=float64 N=256 alpha=4 chains=1024", quick=True),
    Case("local", local_move, "dtype=float64 N=256 alpha=4 chains=1,64"),
    Case("local", local_loop, f"dtype={C} N=40 alpha=2 chains=128", quick=True),
    Case("local", local_loop, f"dtype={C} N=256 alpha=4 chains=1,64"),
    Case("vmc", vmc, f"dtype={C} L=40 alpha=2 samples=1024 chains=128", quick=True, timing=(5, 10.0)),
    Case("vmc", vmc, f"dtype={C} L=100 alpha=4 samples=1024 chains=128", quick=True, timing=(3, 10.0)),
    Case("vmc", vmc, f"dtype={C} L=100 alpha=4 samples=4096 chains=1024", timing=(3, 10.0), plot=True),
    Case("heisenberg", symmetric_vmc, f"dtype={C} {SQUARE}", timing=(3, 10.0)),
    Case("scale", scale, f"dtype={C} length=10,20 alpha=1,4,16 samples=1024,4096 chains=256 repeats=2"),
    Case("netket-sampler", netket_sampler, "dtype=float64 L=40 alpha=2 samples=1024 chains=128", quick=True),
    Case("netket-sampler", netket_sampler, "dtype=float64 L=100 alpha=4 samples=1024 chains=128"),
    Case("overhead", overhead, "dtype=float64 N=16 alpha=1 batch=1", quick=True),
    Case("compile", compile_time, "dtype=float64 N=64 alpha=2 batch=64 repeats=3", quick=True),
    Case("import", import_time, "repeats=3", quick=True),
    Case("memory", memory, "dtype=float64 N=256 alpha=4 batch=16384", quick=True),
    Case("workarounds", workaround, f"name=complex-log-cosh,complex-tanh dtype=complex64,complex128 {W}"),
    Case("workarounds", workaround, f"name=float64-log,log-cosh-within dtype=complex128 {W}"),
    Case("workarounds", workaround, "name=log-cosh-within dtype=complex128 N=40 alpha=2 batch=128"),
    Case("workarounds", workaround, f"name=re-log-cosh dtype=float32,float64 {W}"),
)
