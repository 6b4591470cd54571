"""log_cosh: stability, symmetry, derivative, holomorphy and agreement with NetKet."""

from __future__ import annotations

import math

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require
from hypothesis import given, settings
from hypothesis import strategies as st

from eqx_rbm import log_cosh

REAL_DTYPES = [np.float32, np.float64]
COMPLEX_DTYPES = [np.complex64, np.complex128]


def finite_arrays(dtype, max_value=None):
    elements = st.floats(
        allow_nan=False,
        allow_infinity=False,
        width=np.dtype(dtype).itemsize * 8,
        min_value=None if max_value is None else -max_value,
        max_value=max_value,
    )
    return hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), elements=elements)


def ulp(x, dtype):
    return float(np.finfo(dtype).eps) * abs(float(x))


@pytest.mark.parametrize("dtype", REAL_DTYPES)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_even_and_finite_everywhere(dtype, data):
    x = data.draw(finite_arrays(dtype))
    y = np.asarray(log_cosh(jnp.asarray(x)))
    assert y.dtype == dtype
    assert np.all(np.isfinite(y))
    np.testing.assert_array_equal(y, np.asarray(log_cosh(jnp.asarray(-x))))
    assert np.all(y >= 0)
    # log cosh x lies between |x| - log 2 and |x|.
    assert np.all(y - np.abs(x) <= 4 * np.finfo(dtype).eps * np.abs(x))


@pytest.mark.parametrize("dtype", REAL_DTYPES)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_agrees_with_naive_formula_where_it_is_finite(dtype, data):
    x = data.draw(finite_arrays(dtype, max_value=20.0))
    x64 = np.asarray(x, np.float64)
    reference = np.log(np.cosh(x64))  # finite for |x| <= 20, evaluated in float64
    y = np.asarray(log_cosh(jnp.asarray(x)), np.float64)
    eps = np.finfo(dtype).eps
    # Absolute error of a few eps near 0 (cancellation inherent to any stable
    # formula that is exact for large |x|), relative few ulp elsewhere.
    np.testing.assert_allclose(y, reference, rtol=4 * eps, atol=4 * eps)


@pytest.mark.parametrize(
    ("dtype", "x"),
    [(np.float64, 1e300), (np.float64, np.finfo(np.float64).max), (np.float32, 3e38), (np.float32, 1e30)],
)
def test_exact_at_huge_arguments(dtype, x):
    expected = np.asarray(x, dtype) - np.asarray(math.log(2.0), dtype)
    for sign in (1, -1):
        y = log_cosh(jnp.asarray(sign * x, dtype))
        assert y.dtype == dtype
        assert np.isfinite(y)
        assert abs(float(y) - float(expected)) <= ulp(expected, dtype)


def test_log_two_offset_is_exact_at_moderate_arguments():
    # At x = 50, exp(-100) is far below float64 resolution: log cosh = x - log 2.
    assert float(log_cosh(jnp.float64(50.0))) == 50.0 - math.log(2.0)


@pytest.mark.parametrize("dtype", REAL_DTYPES)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_derivative_is_tanh(dtype, data):
    x = data.draw(finite_arrays(dtype))
    xj = jnp.asarray(x)
    grad = jax.vmap(jax.grad(log_cosh))(xj.reshape(-1)).reshape(xj.shape)
    assert np.all(np.isfinite(grad))
    # XLA flushes subnormals to zero on CPU, hence the atol of the smallest normal.
    np.testing.assert_allclose(
        np.asarray(grad),
        np.tanh(x.astype(np.float64)),
        rtol=2 * np.finfo(dtype).eps,
        atol=np.finfo(dtype).tiny,
    )


@pytest.mark.parametrize("x", [1e300, -1e300, 1e10, -710.0, 800.0])
def test_derivative_finite_at_huge_arguments(x):
    g = jax.grad(log_cosh)(jnp.float64(x))
    assert float(g) == np.sign(x)
    g2 = jax.grad(jax.grad(log_cosh))(jnp.float64(x))
    assert np.isfinite(g2)


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_complex_equals_log_cosh_modulo_2_pi_i(dtype, data):
    real_dtype = np.finfo(dtype).dtype
    parts = data.draw(finite_arrays(real_dtype, max_value=15.0).filter(lambda a: a.ndim > 0))
    imag = data.draw(
        hnp.arrays(real_dtype, parts.shape, elements=st.floats(-15, 15, width=real_dtype.itemsize * 8))
    )
    z = (parts + 1j * imag).astype(dtype)
    y = np.asarray(log_cosh(jnp.asarray(z)))
    assert y.dtype == dtype
    reference = np.log(np.cosh(z.astype(np.complex128)))
    eps = np.finfo(real_dtype).eps
    scale = 1 + np.abs(z)
    np.testing.assert_allclose(y.real, reference.real, atol=float(64 * eps * scale.max()))
    winding = (y.imag - reference.imag) / (2 * np.pi)
    np.testing.assert_allclose(winding, np.round(winding), atol=float(64 * eps * scale.max()))


def test_complex_finite_at_huge_real_part():
    for z in [1e300 + 1j, -1e300 + 2j, 1e300 + 1e300j]:
        y = complex(log_cosh(jnp.complex128(z)))
        assert np.isfinite(y.real) and np.isfinite(y.imag)
        assert y.real == abs(z.real) - math.log(2.0) or abs(z.real) > 1e17
    assert np.isfinite(complex(jax.grad(log_cosh, holomorphic=True)(jnp.complex128(1e300 + 1j))))


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
def test_holomorphic_derivative_is_tanh(dtype):
    z = jnp.asarray(
        np.random.default_rng(0).normal(size=32) * 3 + 3j * np.random.default_rng(1).normal(size=32)
    )
    z = z.astype(dtype)
    grad = jax.vmap(jax.grad(log_cosh, holomorphic=True))(z)
    np.testing.assert_allclose(np.asarray(grad), np.tanh(np.asarray(z)), rtol=8 * np.finfo(dtype).eps)
    # Cauchy-Riemann through forward mode: the JVP along i is i times the JVP along 1.
    _, along_one = jax.jvp(log_cosh, (z,), (jnp.ones_like(z),))
    _, along_i = jax.jvp(log_cosh, (z,), (1j * jnp.ones_like(z),))
    np.testing.assert_allclose(np.asarray(along_i), 1j * np.asarray(along_one), rtol=8 * np.finfo(dtype).eps)


def test_integer_input_is_promoted_to_default_float():
    y = log_cosh(jnp.arange(4))
    assert y.dtype == jnp.result_type(float)
    np.testing.assert_allclose(np.asarray(y), np.log(np.cosh(np.arange(4.0))), rtol=1e-15)


def test_keeps_float32():
    assert log_cosh(jnp.ones(3, jnp.float32)).dtype == jnp.float32
    assert log_cosh(jnp.ones(3, jnp.complex64)).dtype == jnp.complex64


def test_nan_and_inf_propagate():
    y = np.asarray(log_cosh(jnp.array([np.nan, np.inf, -np.inf])))
    assert np.isnan(y[0]) and y[1] == np.inf and y[2] == np.inf


@pytest.mark.parametrize("dtype", REAL_DTYPES + COMPLEX_DTYPES)
def test_matches_netket_log_cosh(dtype):
    nk = require("netket")
    rng = np.random.default_rng(3)
    x = rng.normal(size=4096) * np.logspace(-8, 3, 4096)
    if np.issubdtype(dtype, np.complexfloating):
        x = x + 1j * rng.normal(size=4096) * 3
    x = jnp.asarray(x.astype(dtype))
    ours = np.asarray(jax.jit(log_cosh)(x))
    theirs = np.asarray(jax.jit(nk.nn.activation.log_cosh)(x))
    real_dtype = np.finfo(dtype).dtype
    # A couple of ulp of the result, and of log 2 where the result is near zero.
    tol = 2 * np.spacing(np.maximum(np.abs(theirs), real_dtype.type(math.log(2.0))).astype(real_dtype))
    assert np.all(np.abs(ours - theirs) <= tol)
    if not np.issubdtype(dtype, np.complexfloating):
        # Same floating-point operations for real inputs: identical values.
        np.testing.assert_array_equal(ours, theirs)
