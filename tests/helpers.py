"""Shared test utilities."""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np

import eqx_rbm

PARAM_DTYPES = [jnp.float32, jnp.float64, jnp.complex64, jnp.complex128]
BATCH_SHAPES = [(), (5,), (2, 3)]
BIAS_FLAGS = list(itertools.product([True, False], repeat=2))


def tolerance(dtype) -> float:
    """Relative tolerance of the parity checks: ~1e-12 in 64-bit, ~1e-5 in 32-bit."""
    return 1e-12 if np.finfo(dtype).bits == 64 else 1e-5


def assert_close(actual, expected, dtype, what=""):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(float(np.max(np.abs(expected), initial=0.0)), 1e-300)
    err = float(np.max(np.abs(actual - expected), initial=0.0)) / scale
    assert err <= tolerance(dtype), f"{what}: relative error {err:.3e} > {tolerance(dtype):.0e}"


def random_params_init(scale=0.3):
    """An initializer with larger weights than the default, so parity is tested
    where log cosh is far from its quadratic regime."""

    def init(key, shape, dtype):
        import jax

        return scale * jax.random.normal(key, shape, dtype)

    return init


def spins(rng: np.random.Generator, shape, n, dtype=np.float64):
    return rng.choice(np.array([-1.0, 1.0]), size=(*shape, n)).astype(dtype)


def netket_rbm_variables(model: eqx_rbm.RBM) -> dict:
    """The same parameters in NetKet's variable layout (for feeding NetKet)."""
    params: dict = {"Dense": {"kernel": model.kernel}}
    if model.hidden_bias is not None:
        params["Dense"]["bias"] = model.hidden_bias
    if model.visible_bias is not None:
        params["visible_bias"] = model.visible_bias
    return {"params": params}
