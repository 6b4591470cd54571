"""log_cosh: stability, symmetry, derivative, holomorphy and agreement with NetKet."""

from __future__ import annotations

import math

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import require
from hypothesis import given, settings
from hypothesis import strategies as st

from eqx_rbm import log_cosh

REAL_DTYPES = [np.float32, np.float64]
COMPLEX_DTYPES = [np.complex64, np.complex128]

jit_log_cosh = jax.jit(log_cosh)
jit_grad = jax.jit(jax.vmap(jax.grad(log_cosh, holomorphic=True)))
jit_jvp = jax.jit(lambda z: jax.jvp(log_cosh, (z,), (jnp.ones_like(z),))[1])
jit_real_grad = jax.jit(jax.vmap(jax.grad(log_cosh)))
# The property tests below evaluate the jitted function, as models do (the eager path runs in the
# other tests).


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
    y = np.asarray(jit_log_cosh(jnp.asarray(x)))
    assert y.dtype == dtype
    assert np.all(np.isfinite(y))
    np.testing.assert_array_equal(y, np.asarray(jit_log_cosh(jnp.asarray(-x))))
    # Non-negative up to the documented absolute error near zero, a few epsilons: NetKet's formula
    # (bit-identical here) gives -1.1e-16 at x = 7.6e-13, where log cosh x ~ x^2 / 2 underflows eps.
    assert np.all(y >= -2 * np.finfo(dtype).eps)
    # log cosh x lies between |x| - log 2 and |x|, up to the rounding of |x| + log1p(...) - log 2:
    # relative to those terms, not to the tiny result near zero (1.1e-16 at x = 5.6e-17, where
    # log cosh x is 1.6e-33 and the bound 4 eps |x| alone is 5e-32).
    assert np.all(y - np.abs(x) <= 4 * np.finfo(dtype).eps * (np.abs(x) + math.log(2)))


@pytest.mark.parametrize("dtype", REAL_DTYPES)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_agrees_with_naive_formula_where_it_is_finite(dtype, data):
    x = data.draw(finite_arrays(dtype, max_value=20.0))
    x64 = np.asarray(x, np.float64)
    reference = np.log(np.cosh(x64))  # finite for |x| <= 20, evaluated in float64
    y = np.asarray(jit_log_cosh(jnp.asarray(x)), np.float64)
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
    grad = jit_real_grad(xj.reshape(-1)).reshape(xj.shape)
    assert np.all(np.isfinite(grad))
    # XLA flushes subnormals to zero on CPU, hence the atol of the smallest normal. The derivative
    # is XLA's tanh, a few ulp: 4.0 eps relative at worst in float64 on 25 million points against
    # NumPy's (near 1, 2.4 eps in float32), past the 2 eps this test once allowed.
    np.testing.assert_allclose(
        np.asarray(grad),
        np.tanh(x.astype(np.float64)),
        rtol=8 * np.finfo(dtype).eps,
        atol=np.finfo(dtype).tiny,
    )


@pytest.mark.parametrize("x", [1e300, -1e300, 1e10, -710.0, 800.0])
def test_derivative_finite_at_huge_arguments(x):
    g = jax.grad(log_cosh)(jnp.float64(x))
    assert float(g) == np.sign(x)
    g2 = jax.grad(jax.grad(log_cosh))(jnp.float64(x))
    assert np.isfinite(g2)


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
    grad = jit_grad(z)
    np.testing.assert_allclose(np.asarray(grad), np.tanh(np.asarray(z)), rtol=8 * np.finfo(dtype).eps)
    # Cauchy-Riemann through forward mode: the JVP along i is i times the JVP along 1.
    along_one = jit_jvp(z)
    along_i = jax.jit(lambda z: jax.jvp(log_cosh, (z,), (1j * jnp.ones_like(z),))[1])(z)
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


@pytest.mark.parametrize("dtype", REAL_DTYPES)
def test_matches_netket_log_cosh(dtype):
    nk = require("netket")
    rng = np.random.default_rng(3)
    x = jnp.asarray((rng.normal(size=4096) * np.logspace(-8, 3, 4096)).astype(dtype))
    ours = np.asarray(jit_log_cosh(x))
    theirs = np.asarray(jax.jit(nk.nn.activation.log_cosh)(x))
    # Same floating-point operations for real inputs: identical values.
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize(("dtype", "rtol"), [(np.complex128, 1e-12), (np.complex64, 2e-5)])
def test_complex_matches_netket_log_cosh(dtype, rtol):
    # Realistic pre-activations, |z| < 50, including the sign-bit cases NetKet
    # flips (-0.0). (Right at the zeros of cosh NetKet's formula cancels and
    # loses digits; the mpmath tests below cover those points.)
    nk = require("netket")
    rng = np.random.default_rng(3)
    n = 4096
    re = rng.normal(size=n) * np.logspace(-8, 1.5, n)
    im = rng.uniform(-35, 35, size=n)
    re[:8] = [0.0, -0.0, 0.0, -0.0, 1e-9, -1e-9, 0.0, -0.0]
    im[:8] = [1.0, 1.0, -2.0, -2.0, 0.3, 0.3, 0.0, 0.0]
    z = jnp.asarray((re + 1j * im).astype(dtype))
    ours = np.asarray(jit_log_cosh(z))
    theirs = np.asarray(jax.jit(nk.nn.activation.log_cosh)(z))
    assert ours.dtype == dtype
    scale = np.maximum(np.abs(theirs), 1)
    assert np.all(np.abs(ours - theirs) <= rtol * scale)
    # The same branch: no difference of 2 pi in the imaginary part anywhere.
    assert np.all(np.abs(ours.imag - theirs.imag) < 1e-3)


# --- Complex inputs against mpmath ------------------------------------------

# Largest |Im z| of the vectorised path; beyond it the reference formula runs.
FAST_IMAG_LIMIT = {np.complex128: 1e6, np.complex64: 1.25e4}


def exact_log_cosh(z: complex, mp) -> tuple[float, float]:
    """log cosh z at 60 digits, imaginary part on NetKet's branch.

    NetKet's value is `w + log1p(exp(-2w)) - log 2` with `w = z` or `-z` (by
    the sign bit of `Re z`); its imaginary part differs from the principal
    `arg cosh z` by a multiple of 2 pi, which a double-precision evaluation of
    that formula decides unambiguously.
    """
    with mp.workdps(60):
        w = -z if math.copysign(1.0, z.real) < 0 else z
        value = mp.log(mp.cosh(mp.mpc(w.real, w.imag)))
        t = math.exp(-2 * w.real)
        branch = w.imag + math.atan2(-t * math.sin(2 * w.imag), 1 + t * math.cos(2 * w.imag))
        turns = round((branch - float(value.imag)) / (2 * math.pi))
        return float(value.real), float(value.imag + 2 * mp.pi * turns)


def exact_tanh(z: complex, mp) -> complex:
    with mp.workdps(60):
        return complex(mp.tanh(mp.mpc(z.real, z.imag)))


def assert_ulp_close(actual, exact, dtype, ulps, floor):
    """|actual - exact| <= ulps * eps * max(|exact|, floor), part by part.

    Plus the smallest normal number: XLA flushes subnormal results to zero.
    """
    eps = float(np.finfo(dtype).eps)
    actual, exact = np.asarray(actual, np.float64), np.asarray(exact, np.float64)
    bound = ulps * eps * np.maximum(np.abs(exact), floor) + float(np.finfo(dtype).tiny)
    err = np.abs(actual - exact)
    worst = np.argmax(err / bound)
    assert np.all(err <= bound), (
        f"{err[worst] / eps / max(abs(exact[worst]), floor):.2f} ulp at index {worst}"
    )


def magnitudes(max_exponent: float, min_exponent: float = -30.0):
    """Signed floats spread evenly in log-magnitude, with some exact zeros."""
    log_magnitude = st.floats(min_exponent, max_exponent)
    signed = st.builds(lambda e, s: s * 10.0**e, log_magnitude, st.sampled_from([-1.0, 1.0]))
    return st.one_of(signed, st.sampled_from([0.0, -0.0]))


def complex_arrays(dtype, max_re_exponent: float, imag, size: int = 8):
    # A fixed size: every example reuses one compilation.
    real_dtype = np.finfo(dtype).dtype
    return st.builds(
        lambda re, im: (np.array(re, real_dtype) + 1j * np.array(im, real_dtype)).astype(dtype),
        st.lists(magnitudes(max_re_exponent), min_size=size, max_size=size),
        st.lists(imag, min_size=size, max_size=size),
    )


def max_re_exponent(dtype) -> float:
    # Up to the overflow threshold of the real dtype.
    return math.log10(float(np.finfo(np.finfo(dtype).dtype).max)) - 0.01


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_complex_log_cosh_within_few_ulp_of_mpmath(dtype, data):
    mp = require("mpmath")
    imag = magnitudes(math.log10(FAST_IMAG_LIMIT[dtype]))
    z = data.draw(complex_arrays(dtype, max_re_exponent(dtype), imag))
    y = np.asarray(jit_log_cosh(jnp.asarray(z)))
    assert y.dtype == dtype
    exact = np.array([exact_log_cosh(complex(v), mp) for v in z])
    # The real part a - log 2 + log(...)/2 is a sum of O(1) terms where it is
    # near zero: few-ulp relative to max(|value|, 1). The imaginary part is
    # relatively accurate down to the smallest normal number.
    assert_ulp_close(y.real, exact[:, 0], dtype, 4, floor=1.0)
    assert_ulp_close(y.imag, exact[:, 1], dtype, 4, floor=0.0)


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_complex_log_cosh_beyond_the_fast_range(dtype, data):
    mp = require("mpmath")
    limit = math.log10(FAST_IMAG_LIMIT[dtype])
    imag = st.builds(
        lambda e, s: s * 10.0**e, st.floats(limit + 0.01, limit + 3), st.sampled_from([-1.0, 1.0])
    )
    z = data.draw(complex_arrays(dtype, 4.0, imag))
    y = np.asarray(jit_log_cosh(jnp.asarray(z)))
    exact = np.array([exact_log_cosh(complex(v), mp) for v in z])
    assert_ulp_close(y.real, exact[:, 0], dtype, 8, floor=1.0)
    assert_ulp_close(y.imag, exact[:, 1], dtype, 4, floor=1.0)


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_complex_tanh_derivative_within_few_ulp_of_mpmath(dtype, data):
    mp = require("mpmath")
    imag = magnitudes(math.log10(FAST_IMAG_LIMIT[dtype]))
    z = jnp.asarray(data.draw(complex_arrays(dtype, max_re_exponent(dtype), imag)))
    grad = np.asarray(jit_grad(z))
    forward = jit_jvp(z)
    exact = np.array([exact_tanh(complex(v), mp) for v in np.asarray(z)])
    for derivative in (grad, np.asarray(forward)):
        assert derivative.dtype == dtype
        assert_ulp_close(derivative.real, exact.real, dtype, 8, floor=0.0)
        assert_ulp_close(derivative.imag, exact.imag, dtype, 8, floor=0.0)


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
def test_second_derivative_is_sech_squared(dtype):
    mp = require("mpmath")
    rng = np.random.default_rng(5)
    z = jnp.asarray((rng.normal(size=16) * 2 + 1j * rng.normal(size=16) * 4).astype(dtype))
    second = jax.jit(jax.vmap(jax.grad(jax.grad(log_cosh, holomorphic=True), holomorphic=True)))(z)
    exact = np.array([complex(mp.sech(mp.mpc(float(v.real), float(v.imag))) ** 2) for v in np.asarray(z)])
    # 1 - tanh^2 cancels where |tanh| is near 1: accurate relative to 1.
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(np.asarray(second), exact, rtol=64 * eps, atol=64 * eps)


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
def test_zeros_of_cosh_give_a_very_negative_real_part(dtype):
    mp = require("mpmath")
    real_dtype = np.finfo(dtype).dtype
    ks = np.array([0, 1, -1, 2, -3, 10, 100, -1000, 3000])
    v = ((ks + 0.5) * math.pi).astype(real_dtype)  # as close to the zeros as the dtype gets
    z = np.concatenate([0.0 + 1j * v, -0.0 + 1j * v]).astype(dtype)
    y = np.asarray(jit_log_cosh(jnp.asarray(z)))
    assert not np.any(np.isnan(y))
    # |cos v| is at most about one spacing of v away from zero.
    bound = np.log(2 * np.spacing(np.abs(v)).astype(np.float64) + np.finfo(real_dtype).eps)
    assert np.all(y.real[: len(v)] <= bound) and np.all(y.real[len(v) :] <= bound)
    exact = np.array([exact_log_cosh(complex(w), mp) for w in z])
    assert_ulp_close(y.real, exact[:, 0], dtype, 4, floor=1.0)
    # On Re z = 0 the imaginary part is a multiple of pi.
    assert_ulp_close(y.imag, exact[:, 1], dtype, 1, floor=1.0)


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
def test_complex_nan_and_inf_propagate(dtype):
    inf, nan = np.inf, np.nan
    # An infinite real part: log cosh tends to |Re z| + i Im z (after the flip),
    # where NetKet's complex product -2 * z already gives NaN.
    z = jnp.asarray(np.array([inf + 0j, -inf + 2j, complex(inf, -1)], dtype))
    y = np.asarray(jit_log_cosh(z))
    np.testing.assert_array_equal(y.real, [inf, inf, inf])
    np.testing.assert_allclose(y.imag, [0.0, -2.0, -1.0], rtol=4 * np.finfo(dtype).eps)
    # NaN anywhere, or an infinite imaginary part (which sends the whole array
    # to the slow path), gives NaN in both parts and leaves the others alone.
    z = np.array([complex(nan, 1), complex(1, nan), complex(0, nan), complex(1, inf), 1 + 1j], dtype)
    y = np.asarray(jit_log_cosh(jnp.asarray(z)))
    assert np.all(np.isnan(y[:4].real)) and np.all(np.isnan(y[:4].imag))
    np.testing.assert_allclose(y[4], np.log(np.cosh(1 + 1j)), rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
def test_vmap_and_slow_path_agree_with_the_whole_array(dtype):
    rng = np.random.default_rng(7)
    z = (rng.normal(size=(4, 8)) * 5 + 1j * rng.normal(size=(4, 8)) * 5).astype(dtype)
    z[2, 3] = 1.5 + 1j * 10 * FAST_IMAG_LIMIT[dtype]  # one row needs the slow path
    whole = np.asarray(jit_log_cosh(jnp.asarray(z)))
    rows = np.asarray(jax.jit(jax.vmap(log_cosh))(jnp.asarray(z)))
    np.testing.assert_array_equal(rows, whole)
    fast_rows = np.delete(np.arange(4), 2)
    np.testing.assert_allclose(
        whole[fast_rows], np.asarray(jit_log_cosh(jnp.asarray(z[fast_rows]))), rtol=4 * np.finfo(dtype).eps
    )


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_eager_call_compiles_one_program(dtype, caplog):
    """Called eagerly on a new shape, log_cosh compiles one program, not one per operation."""
    x = jnp.asarray(np.linspace(-3.0, 3.0, 3 * 41).reshape(3, 41), dtype)  # a shape no other test uses
    with caplog.at_level("WARNING", logger="jax._src.interpreters.pxla"), jax.log_compiles():
        out = log_cosh(x)
    compiled = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Compiling ")]
    assert len(compiled) == 1, compiled
    np.testing.assert_allclose(out, jit_log_cosh(x), rtol=0, atol=0)
