"""eqx_rbm's numerics workarounds, each against the plain jnp expression it stands for.

A workaround is timed where the library uses it: compiled as it is (eqx_rbm), and with the plain
expression in its place while tracing (plain); both must agree. One that gains less than 1.2x on
every backend is removed (the `workarounds` target).
"""

import contextlib
import functools
import math
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np

import eqx_rbm
from eqx_rbm.numerics import _complex_math, _log_cosh
from eqx_rbm.numerics._re_log_cosh import re_log_cosh
from eqx_rbm.sampling import _activations

from .timing import Candidate, measures
from .vmc import local_energies


def netket_log_cosh(z):
    """NetKet's formula, z + log(1 + exp(-2z)) - log 2 with z flipped into Re z >= 0."""
    z = jnp.where(jnp.signbit(z.real), -z, z)
    return z + jnp.log1p(jnp.exp(-2 * z)) - math.log(2.0)


def pre_activations(dtype, N, alpha, batch):
    """Real and imaginary parts of the pre-activations of a batch, (batch, alpha N) each."""
    real = jnp.finfo(dtype).dtype
    return tuple(2 * jax.random.normal(jax.random.key(k), (batch, alpha * N), real) for k in (0, 1))


def chain(dtype, N, alpha, batch):
    """An RBM, a batch of spins and the bonds of a periodic chain."""
    model = eqx_rbm.RBM(N, alpha=alpha, param_dtype=jnp.dtype(dtype), key=jax.random.key(0))
    x = jax.random.choice(jax.random.key(1), jnp.array([-1.0, 1.0]), (batch, N))
    return model, x, np.stack([np.arange(N), np.roll(np.arange(N), -1)], axis=-1)


def activations(*shape):
    return (jax.lax.complex(*pre_activations(*shape)),)


# name: (the function timed, the plain function or (module, name, plain expression in its place), inputs)
WORKAROUNDS = {
    # eqx_rbm.numerics._complex_math: complex log cosh and its derivative in vectorised real arithmetic.
    "complex-log-cosh": (eqx_rbm.log_cosh, netket_log_cosh, activations),
    "complex-tanh": (_log_cosh._complex_tanh, jnp.tanh, activations),
    # Its float64 logarithm, an exponent split and a polynomial, inside the complex log cosh.
    "float64-log": (eqx_rbm.log_cosh, (_complex_math, "_log", jnp.log), activations),
    # The fused kernel's real part of log cosh, also the only form a Pallas kernel (no complex numbers) takes.
    "re-log-cosh": (re_log_cosh, lambda a, b: netket_log_cosh(jax.lax.complex(a, b)).real, pre_activations),
    # The complex log cosh's range decided once for a sum of activations, not on every call; the Heisenberg
    # local energies, exchange ratios as sums of activations.
    "log-cosh-within": (
        functools.partial(local_energies, heisenberg=True, product=False),
        (_activations, "log_cosh_within", lambda _, fn: fn(eqx_rbm.log_cosh)),
        chain,
    ),
}


def compiled(fn, args, plain=None):
    """`fn` compiled for `args`, with `plain = (module, name, expression)` in place while it traces."""
    jax.clear_caches()  # else the trace of the other variant is reused
    with mock.patch.object(*plain) if plain else contextlib.nullcontext():
        return jax.jit(fn).lower(*args).compile()


@measures(
    "workaround",
    ratios=("plain/eqx_rbm",),
    notes="eqx_rbm: the library's path; plain: the plain jnp expression in place of the workaround, on the "
    "same inputs and checked equal. complex-log-cosh, complex-tanh, float64-log, re-log-cosh: on "
    "pre-activations (batch, alpha N); log-cosh-within: the Heisenberg local energies of a chain as sums of "
    "activations (benchmarks/workarounds.py)",
)
def workaround(name: str, dtype: str, N: int, alpha: int, batch: int) -> dict[str, Candidate]:
    ours, plain, inputs = WORKAROUNDS[name]
    args = inputs(dtype, N, alpha, batch)
    candidates = {
        "eqx_rbm": compiled(ours, args),
        "plain": compiled(ours, args, plain) if isinstance(plain, tuple) else jax.jit(plain),
    }
    eps = jnp.finfo(dtype).eps
    for a, b in zip(*(jax.tree.leaves(f(*args)) for f in candidates.values()), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e3 * eps, atol=1e3 * eps, err_msg=f"workaround {name}")
    return {k: Candidate(f, args) for k, f in candidates.items()}
