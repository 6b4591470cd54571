"""Closed-form log-derivatives and the factorised SR kernel agree with autodiff."""

from __future__ import annotations

import functools
import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (
    BIAS_FLAGS,
    PARAM_DTYPES,
    assert_close,
    assert_sr_through_kernel,
    jacobian_products,
    random_params_init,
    tolerance,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

import eqx_rbm

N_SAMPLES = 9
BOSON_STATES = (0, 1, 2)

# Every bias combination in complex128, every dtype with both biases. The bias blocks are chosen
# by the flags alone (`use_hidden_bias`, `use_visible_bias` in derivatives/_derivatives.py and
# models/_parts.py gradient_like), independently of the dtype, which enters only through the
# conjugations: complex128 is where a missing or extra conjugate in a bias block shows. The
# 32-bit cases check dtypes and tolerances, not new code paths. RBM and RBMMultiVal are both
# dense models (models/_dense.py): they share the rows (`outer_product_rows`) and every bias
# branch of the Jacobian, and differ only in their features (`encode`, one-hot for RBMMultiVal),
# which every dtype exercises; the bias combinations run on the RBM.
CASES = [
    pytest.param(
        kind, dtype, hidden, visible, id=f"{kind}-{jnp.dtype(dtype).name}-h{int(hidden)}v{int(visible)}"
    )
    for kind, dtype, (hidden, visible) in itertools.product(("rbm", "multival"), PARAM_DTYPES, BIAS_FLAGS)
    if (hidden and visible) or (dtype == jnp.complex128 and kind == "rbm")
]


@functools.cache
def _model(kind, dtype, hidden=True, visible=True, seed=0):
    kwargs = dict(
        alpha=2,
        param_dtype=dtype,
        use_hidden_bias=hidden,
        use_visible_bias=visible,
        kernel_init=random_params_init(0.5),
        hidden_bias_init=random_params_init(0.5),
        visible_bias_init=random_params_init(0.5),
        key=jax.random.key(seed),
    )
    if kind == "rbm":
        return eqx_rbm.RBM(6, **kwargs)
    return eqx_rbm.RBMMultiVal(3, len(BOSON_STATES), **kwargs)


def _samples(model, seed, shape=(N_SAMPLES,)):
    rng = np.random.default_rng(seed)
    if isinstance(model, eqx_rbm.RBMMultiVal):
        return jnp.asarray(rng.choice(np.asarray(BOSON_STATES), size=(*shape, model.n_sites)))
    real = jnp.finfo(model.param_dtype).dtype
    return jnp.asarray(rng.choice(np.array([-1.0, 1.0]), size=(*shape, model.n_visible)), real)


@eqx.filter_jit
def _autodiff_tree(model, x):
    """Per-sample gradients by `vmap(grad)`, holomorphic for complex parameters."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    holomorphic = jnp.issubdtype(model.param_dtype, jnp.complexfloating)

    def one(s):
        return jax.grad(lambda p: eqx.combine(p, static)(s), holomorphic=holomorphic)(params)

    flat_x = x.reshape(-1, x.shape[-1])
    grads = jax.vmap(one)(flat_x)
    return jax.tree.map(lambda g: g.reshape(*x.shape[:-1], *g.shape[1:]), grads)


@eqx.filter_jit
def _autodiff_dense(model, x):
    """The dense Jacobian O, shape (n_samples, n_params), by `jax.jacrev`."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    flat, unravel = ravel_pytree(params)
    holomorphic = jnp.issubdtype(model.param_dtype, jnp.complexfloating)
    return jax.jacrev(lambda p: eqx.combine(unravel(p), static)(x), holomorphic=holomorphic)(flat)


@eqx.filter_jit
def _compared(model, batch, x, v, p):
    """Everything the two parity tests below compare, closed form and autodiff, in one compiled
    call per case: one program per function and case would compile five times as often."""
    return {
        "ours": eqx_rbm.log_derivatives(model, batch),
        "reference": _autodiff_tree(model, batch),
        "dense": _autodiff_dense(model, x),
        **jacobian_products(model, x, v, p),
    }


@functools.cache
def _comparison(kind, dtype, hidden, visible):
    """The model, the vectors of the products and `_compared`'s results for one case of CASES."""
    model = _model(kind, dtype, hidden, visible)
    flat, unravel = ravel_pytree(eqx.filter(model, eqx.is_inexact_array))
    rng = np.random.default_rng(2)
    v = (rng.normal(size=N_SAMPLES) + 1j * rng.normal(size=N_SAMPLES)).astype(jnp.result_type(dtype, 1j))
    p = rng.normal(size=flat.size).astype(dtype)
    batch, x = _samples(model, 0, (2, 3)), _samples(model, 1)
    return model, v, p, _compared(model, batch, x, jnp.asarray(v), unravel(jnp.asarray(p)))


@pytest.mark.parametrize(("kind", "dtype", "hidden", "visible"), CASES)
def test_log_derivatives_match_vmap_grad(kind, dtype, hidden, visible):
    model, _, _, out = _comparison(kind, dtype, hidden, visible)
    ours, reference = out["ours"], out["reference"]
    assert type(ours) is type(model)
    assert jax.tree.structure(ours) == jax.tree.structure(reference)
    for got, want in zip(jax.tree.leaves(ours), jax.tree.leaves(reference), strict=True):
        assert got.dtype == want.dtype == model.param_dtype
        assert_close(got, want, dtype, "log_derivatives")
    assert (ours.hidden_bias is None) == (not hidden) == (model.hidden_bias is None)
    assert (ours.visible_bias is None) == (not visible)


@pytest.mark.parametrize(("kind", "dtype", "hidden", "visible"), CASES)
def test_jacobian_matches_dense_autodiff(kind, dtype, hidden, visible):
    _, v, p, out = _comparison(kind, dtype, hidden, visible)
    dense = np.asarray(out["dense"])
    for centred in (False, True):
        jac, (flat, rows, kernel, rmatvec, matvec) = out["centred" if centred else "plain"]
        assert jac.centred == centred
        assert jac.n_params == dense.shape[1]
        y = dense - dense.mean(axis=0) if centred else dense
        what = "centred" if centred else "plain"
        assert_close(flat, y, dtype, f"{what} flat")
        assert_close(rows, y, dtype, f"{what} tree")
        assert_close(kernel, y @ y.conj().T, dtype, f"{what} kernel")
        assert_close(rmatvec, y.conj().T @ v, dtype, f"{what} rmatvec")
        assert_close(matvec, y @ p, dtype, f"{what} matvec")


@eqx.filter_jit
def _centred_kernel_and_dense(model, x):
    return eqx_rbm.jacobian(model, x, centred=True).kernel(), _autodiff_dense(model, x)


# Each example compiles for its batch size and dtype: a few examples cover both dtypes and
# batch sizes across the range.
@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_samples=st.integers(2, 12), complex_=st.booleans())
def test_centred_kernel_random_batches(seed, n_samples, complex_):
    dtype = jnp.complex128 if complex_ else jnp.float64
    model = _model("rbm", dtype, seed=seed % 3)
    x = _samples(model, seed, (n_samples,))
    kernel, dense = _centred_kernel_and_dense(model, x)
    dense = np.asarray(dense)
    centred = dense - dense.mean(axis=0)
    # The centred kernel is the plain one less its row and column means plus the total mean: its
    # rounding is relative to the plain kernel's entries, not to a centred result that cancels
    # (two identical samples centre to exactly zero; the library's 1.4e-14 from terms of 53 is one
    # ulp of them, but failed a tolerance relative to that zero).
    assert kernel.shape == (n_samples, n_samples)
    error = np.max(np.abs(np.asarray(kernel) - centred @ centred.conj().T))
    scale = np.max(np.abs(dense @ dense.conj().T))
    assert error <= tolerance(dtype) * scale, f"centred kernel: error {error:.3e}, kernel entries {scale:.3e}"


# The solve runs on the centred Jacobian's kernel, written once against the model interface: each
# model and each dtype once.
@pytest.mark.parametrize(("kind", "dtype"), [("rbm", jnp.complex128), ("multival", jnp.float64)])
def test_stochastic_reconfiguration_through_the_kernel(kind, dtype):
    model = _model(kind, dtype)
    x = _samples(model, 3)
    rng = np.random.default_rng(4)
    energies = rng.normal(size=N_SAMPLES) + 1j * rng.normal(size=N_SAMPLES)
    shift = 1e-2
    assert_sr_through_kernel(model, x, energies, shift, _autodiff_dense, dtype)


def test_user_activation_uses_its_derivative():
    init = random_params_init()
    model = eqx_rbm.RBM(
        5,
        alpha=2,
        activation=jax.nn.softplus,
        kernel_init=init,
        hidden_bias_init=init,
        visible_bias_init=init,
        key=jax.random.key(0),
    )
    x = _samples(model, 5)
    dense = _autodiff_dense(model, x)
    assert_close(eqx_rbm.jacobian(model, x).flat(), dense, jnp.float64, "softplus")


def test_integer_spins_and_jit():
    # Against the autodiff reference of the float spins that test_log_derivatives_match_vmap_grad used.
    model, _, _, out = _comparison("rbm", jnp.float64, True, True)
    x = _samples(model, 0, (2, 3))
    ours = eqx.filter_jit(eqx_rbm.log_derivatives)(model, x.astype(jnp.int8))
    for got, want in zip(jax.tree.leaves(ours), jax.tree.leaves(out["reference"]), strict=True):
        assert_close(got, want, jnp.float64, "int8 spins")


# --- errors -------------------------------------------------------------------


def test_bad_inputs():
    model = _model("rbm", jnp.float64)
    x = _samples(model, 7)
    with pytest.raises(ValueError, match=r"x: expected one batch dimension.*reshape.*Got shape \(1, 9, 6\)"):
        eqx_rbm.jacobian(model, x[None])
    with pytest.raises(ValueError, match=r"x: expected shape \(\*batch, n_sites\) with n_sites=6"):
        eqx_rbm.log_derivatives(model, x[:, :4])
    with pytest.raises(TypeError, match="x: expected an integer or floating array"):
        eqx_rbm.log_derivatives(model, x.astype(jnp.complex128))
    jac = eqx_rbm.jacobian(model, x)
    with pytest.raises(ValueError, match=r"v: expected one entry per sample, shape \(9,\), got shape \(4,\)"):
        jac.rmatvec(jnp.ones(4))
    with pytest.raises(TypeError, match="p: expected a pytree of type RBM"):
        jac.matvec(_model("multival", jnp.float64))
    with pytest.raises(ValueError, match="p: expected the model's"):
        jac.matvec(_model("rbm", jnp.float64, hidden=False))


def test_multival_unknown_state():
    model = _model("multival", jnp.float64)
    x = np.array(_samples(model, 8))
    x[2, 1] = 7
    with pytest.raises(ValueError, match=r"x: expected every value to be one of local_states=.*got 7"):
        eqx_rbm.jacobian(model, x)
    with pytest.raises(Exception, match="not one of local_states"):
        jax.block_until_ready(eqx.filter_jit(eqx_rbm.log_derivatives)(model, jnp.asarray(x)))
