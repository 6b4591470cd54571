"""Closed-form log-derivatives and the SR kernel of the symmetric models agree with autodiff."""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close, assert_sr_through_kernel, jacobian_products, random_params_init
from jax.flatten_util import ravel_pytree

import eqx_rbm

N_SAMPLES = 9
# The square's eight point-group operations (rotations and reflections) on a 3x3 grid.
GRID = np.arange(9).reshape(3, 3)
POINT_GROUP = np.array(
    [np.rot90(g, k).reshape(-1) for g in (GRID, GRID.T) for k in range(4)]
)  # each row a permutation of range(9)
CHAIN = np.array([np.roll(np.arange(5), k) for k in range(5)])


@functools.cache
def _model(kind, dtype, hidden=True, visible=True):
    init = random_params_init(0.5)
    kwargs = dict(
        param_dtype=dtype,
        use_hidden_bias=hidden,
        use_visible_bias=visible,
        kernel_init=init,
        hidden_bias_init=init,
        visible_bias_init=init,
        key=jax.random.key(0),
    )
    if kind == "symm":
        return eqx_rbm.RBMSymm(POINT_GROUP, alpha=16 / 9 * 2, **kwargs)  # three filters
    return eqx_rbm.RBMMultiValSymm(CHAIN, 3, local_states=(0, 1, 2), alpha=1, **kwargs)


def _samples(model, seed, shape=(N_SAMPLES,)):
    rng = np.random.default_rng(seed)
    if isinstance(model, eqx_rbm.RBMMultiValSymm):
        return jnp.asarray(rng.integers(0, 3, size=(*shape, model.n_sites)))
    return jnp.asarray(rng.choice([-1.0, 1.0], size=(*shape, model.n_sites)))


def _holomorphic(model):
    return bool(jnp.issubdtype(model.param_dtype, jnp.complexfloating))


@eqx.filter_jit
def _autodiff_tree(model, x):
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def one(s):
        return jax.grad(lambda p: eqx.combine(p, static)(s), holomorphic=_holomorphic(model))(params)

    grads = jax.vmap(one)(x.reshape(-1, x.shape[-1]))
    return jax.tree.map(lambda g: g.reshape(*x.shape[:-1], *g.shape[1:]), grads)


@eqx.filter_jit
def _autodiff_dense(model, x):
    params, static = eqx.partition(model, eqx.is_inexact_array)
    flat, unravel = ravel_pytree(params)
    return jax.jacrev(lambda p: eqx.combine(unravel(p), static)(x), holomorphic=_holomorphic(model))(flat)


@eqx.filter_jit
def _compared(model, batch, v, p):
    """Everything the parity test compares, closed form and autodiff, in one compiled call
    (one program per function would compile several times as often)."""
    x = batch.reshape(N_SAMPLES, -1)
    return {
        "ours": eqx_rbm.log_derivatives(model, batch),
        "reference": _autodiff_tree(model, batch),
        "dense": _autodiff_dense(model, x),
        **jacobian_products(model, x, v, p),
    }


CASES = [
    ("symm", jnp.float64, True, True),
    ("symm", jnp.complex128, True, True),
    ("symm", jnp.float64, False, True),
    ("symm", jnp.complex128, True, False),
    ("multival", jnp.float64, True, True),
    ("multival", jnp.complex128, True, True),
    ("multival", jnp.float64, True, False),
]


@pytest.mark.parametrize(("kind", "dtype", "hidden", "visible"), CASES)
def test_log_derivatives_and_jacobian_match_autodiff(kind, dtype, hidden, visible):
    model = _model(kind, dtype, hidden, visible)
    assert not model.factorised_kernel
    x = _samples(model, 0, (3, 3))
    flat_params, unravel = ravel_pytree(eqx.filter(model, eqx.is_inexact_array))
    rng = np.random.default_rng(2)
    v = rng.normal(size=N_SAMPLES) + 1j * rng.normal(size=N_SAMPLES)
    p = rng.normal(size=flat_params.size).astype(dtype)
    out = _compared(model, x, jnp.asarray(v), unravel(jnp.asarray(p)))

    ours, reference = out["ours"], out["reference"]
    assert type(ours) is type(model)
    assert jax.tree.structure(ours) == jax.tree.structure(reference)
    for got, want in zip(jax.tree.leaves(ours), jax.tree.leaves(reference), strict=True):
        assert got.dtype == want.dtype == model.param_dtype
        assert_close(got, want, dtype, "log_derivatives")
    assert (ours.hidden_bias is None) == (not hidden) and (ours.visible_bias is None) == (not visible)

    dense = np.asarray(out["dense"])
    for centred in (False, True):
        jac, (flat, rows, kernel, rmatvec, matvec) = out["centred" if centred else "plain"]
        assert jac.centred == centred
        assert (
            jac.n_params
            == dense.shape[1]
            == model.n_filters * model.n_features
            + hidden * model.n_filters
            + (visible * model.features_per_site)
        )
        y = dense - dense.mean(axis=0) if centred else dense
        what = "centred" if centred else "plain"
        assert_close(flat, y, dtype, f"{what} flat")
        assert_close(rows, y, dtype, f"{what} tree")
        assert_close(kernel, y @ y.conj().T, dtype, f"{what} kernel")
        assert_close(rmatvec, y.conj().T @ v, dtype, f"{what} rmatvec")
        assert_close(matvec, y @ p, dtype, f"{what} matvec")


@pytest.mark.parametrize("kind", ["symm", "multival"])
def test_stochastic_reconfiguration_through_the_kernel(kind):
    model = _model(kind, jnp.complex128)
    x = _samples(model, 3)
    rng = np.random.default_rng(4)
    energies = rng.normal(size=N_SAMPLES) + 1j * rng.normal(size=N_SAMPLES)
    # A shift that keeps the solve well conditioned: the test is of the push-through identity.
    shift = 1e-1
    assert_sr_through_kernel(model, x, energies, shift, _autodiff_dense, jnp.complex128)


def test_matvec_checks_the_tree():
    model = _model("symm", jnp.float64)
    jac = eqx_rbm.jacobian(model, _samples(model, 5))
    with pytest.raises(TypeError, match="p: expected a pytree of type RBMSymm"):
        jac.matvec(_model("multival", jnp.float64))
    with pytest.raises(ValueError, match="p: expected the model's"):
        jac.matvec(_model("symm", jnp.float64, hidden=False))
