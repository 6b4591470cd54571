"""Complex log cosh and tanh in real arithmetic that XLA vectorises on CPU.

XLA's CPU backend evaluates complex `exp` and `log1p` through scalar library
calls for sine, cosine and atan2, and float64 `log` is a scalar call too,
while `exp`, `expm1`, float32 `log`, division and polynomials compile to
vector loops (the `workarounds` group of the benchmark runner times each
against the plain expression). Here sine and cosine are a Cody-Waite
argument reduction followed by short polynomials, atan2 an argument reduction
and a polynomial, and the float64 logarithm an exponent split and a
polynomial. The coefficients are least-squares fits on Chebyshev nodes
(computed with mpmath at 50 digits, then rounded to the working dtype).

With `a = |Re z|` and `v = Im z` after the flip `z -> -z` where the sign bit of
`Re z` is set, and `v = k pi + r` with `|r| <= pi/2`:

- `|cosh z|^2 = cosh^2 a (cos^2 r + tanh^2 a sin^2 r)`, so with `t = exp(-2a)`,
  `Re log cosh z = a - log 2 + log((1 + t)^2 (cos^2 r + tanh^2 a sin^2 r)) / 2`:
  a sum of non-negative terms, accurate near the zeros of `cosh` and free of
  overflow;
- `Im log cosh z = k pi + atan2(tanh(a) sin r, cos r)`, which is the branch of
  NetKet's `z + log1p(exp(-2z)) - log 2` and is accurate where it is small;
- `tanh z = (tanh a + i sech^2(a) sin r cos r) / (cos^2 r + tanh^2 a sin^2 r)`.

With `library_trig=True` the same formulas take `sin v` and `cos v` from the
library, whose reduction is exact for any `|v|`: the slow path beyond the
range of the Cody-Waite reduction.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
from jax import Array, lax


class _Constants(NamedTuple):
    # pi/2 in parts short enough that j * part is exact for |j| < 2**(53 - 33)
    # (float64) or 2**(24 - 11) (float32): the reduction is then exact up to
    # the last part's rounding.
    half_pi_parts: tuple[float, ...]
    two_over_pi: float
    # Largest |Im z| handled by the reduction; beyond it the slow path runs.
    max_imag: float
    sin: tuple[float, ...]  # sin r = r + r^3 P(r^2), |r| <= pi/4
    cos: tuple[float, ...]  # cos r = 1 - r^2/2 + r^4 Q(r^2)
    atan: tuple[float, ...]  # atan q = q + q^3 R(q^2), |q| <= tan(pi/8)
    tanh: tuple[float, ...]  # tanh a = a + a^3 T(a^2), 0 <= a <= _TANH_SERIES_MAX


_F64 = _Constants(
    half_pi_parts=(1.5707963267341256, 6.077100506303966e-11, 2.0222662487959506e-21),
    two_over_pi=0.6366197723675814,
    max_imag=1.0e6,
    sin=(
        -0.16666666666666666,
        0.008333333333333331,
        -0.00019841269841265065,
        2.7557319219339963e-06,
        -2.5052106232697e-08,
        1.6058531654927026e-10,
        -7.586699059819358e-13,
    ),
    cos=(
        0.041666666666666664,
        -0.0013888888888887398,
        2.4801587298766363e-05,
        -2.7557317272036996e-07,
        2.087614632531677e-09,
        -1.1382636115964061e-11,
    ),
    atan=(
        -0.3333333333333333,
        0.19999999999995652,
        -0.1428571428469138,
        0.11111111017100327,
        -0.0909090464769568,
        0.07692184699371778,
        -0.06664531369805009,
        0.05858311810501153,
        -0.05086254885823143,
        0.039253696320618564,
        -0.01920252926841228,
    ),
    tanh=(
        -0.3333333333333333,
        0.1333333333333285,
        -0.05396825396719804,
        0.021869488447246423,
        -0.008863231774040416,
        0.003592038687140969,
        -0.001454580293032963,
        0.0005796779428579349,
        -0.00019205571205576613,
    ),
)

_F32 = _Constants(
    half_pi_parts=(1.5703125, 0.0004837512969970703, 7.549533620476723e-08, 2.5633440682570896e-12),
    two_over_pi=0.6366197723675814,
    max_imag=1.25e4,
    sin=(-0.1666666716337204, 0.008333331905305386, -0.00019840087043121457, 2.724996420511161e-06),
    cos=(0.0416666641831398, -0.001388830365613103, 2.4547991415602155e-05),
    atan=(
        -0.3333333134651184,
        0.1999955028295517,
        -0.1426423192024231,
        0.10746298730373383,
        -0.06459376215934753,
    ),
    tanh=(-0.3333333134651184, 0.13332965970039368, -0.053816478699445724, 0.019840896129608154),
)

_LOG2 = math.log(2.0)
_TAN_PI_8 = math.tan(math.pi / 8)
# Below, tanh a is a series; above, (1 - t) / (1 + t) with t = exp(-2a) <= 0.5
# loses no digits to cancellation.
_TANH_SERIES_MAX = 0.35
# log 2 = _LOG2_HI + _LOG2_LO with e * _LOG2_HI exact for any float64 exponent e.
_LOG2_HI = 0.6931471803691238
_LOG2_LO = 1.9082149292705877e-10
# log(1 + f) = f - f^2/2 + s (f^2/2 + s^2 L(s^2)) with s = f / (2 + f), |s| <= 0.1716.
_LOG_F64 = (
    0.666666666666667,
    0.39999999999899005,
    0.28571428626173057,
    0.2222221110612709,
    0.1818289100504977,
    0.15331664799306263,
    0.14617093237558204,
)


def constants(dtype) -> _Constants:
    return _F32 if jnp.dtype(dtype) == jnp.float32 else _F64


def _horner(u: Array, coefficients: tuple[float, ...]) -> Array:
    p = jnp.full_like(u, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        p = p * u + c
    return p


def _sin_cos_mod_pi(v: Array, c: _Constants) -> tuple[Array, Array, Array]:
    """`(k, sin r, cos r)` with `v = k pi + r` and `cos r >= 0`."""
    j = jnp.round(v * c.two_over_pi)
    rho = v
    for part in c.half_pi_parts:
        rho = rho - j * part
    u = rho * rho
    sin_rho = rho + rho * u * _horner(u, c.sin)
    cos_rho = 1 - 0.5 * u + u * u * _horner(u, c.cos)
    # For odd j, v = j pi/2 + rho lies nearer the multiple of pi on rho's side.
    half = 0.5 * j
    odd = half != jnp.floor(half)
    k = jnp.where(odd, half + jnp.copysign(0.5, rho), half)
    sin_r = jnp.where(odd, -jnp.copysign(cos_rho, rho), sin_rho)
    cos_r = jnp.where(odd, jnp.abs(sin_rho), cos_rho)
    return k, sin_r, cos_r


def _atan2_right_half_plane(y: Array, x: Array, c: _Constants) -> Array:
    """`atan2(y, x)` for `x >= 0`, in `[-pi/2, pi/2]`."""
    ay = jnp.abs(y)
    steep = ay > x
    num = jnp.minimum(ay, x)
    den = jnp.maximum(ay, x)
    # atan(num/den) = pi/4 + atan((num - den)/(num + den)) above tan(pi/8).
    # Quotients as products with reciprocals: see `_shared`.
    reduce = num > _TAN_PI_8 * den
    q = jnp.where(reduce, (num - den) * (1 / (num + den)), num * (1 / den))
    q = jnp.where(den == 0, 0.0, q)
    u = q * q
    p = q + q * u * _horner(u, c.atan)
    p = jnp.where(reduce, p + math.pi / 4, p)
    p = jnp.where(steep, math.pi / 2 - p, p)
    return jnp.copysign(p, y)


def _log(x: Array) -> Array:
    """`log x` for `x >= 0` (or NaN), vectorised for float64 too.

    XLA's CPU backend lowers float64 `log` to a scalar library call; float32
    `log` is already vectorised.
    """
    if x.dtype != jnp.float64:
        return jnp.log(x)
    bits = lax.bitcast_convert_type(x, jnp.int64)
    exponent = (bits >> 52) - 1023
    mantissa = lax.bitcast_convert_type((bits & ((1 << 52) - 1)) | (1023 << 52), jnp.float64)
    # Mantissa in [sqrt(1/2), sqrt(2)) keeps |s| small.
    high = mantissa > math.sqrt(2.0)
    mantissa = jnp.where(high, 0.5 * mantissa, mantissa)
    e = (exponent + high).astype(jnp.float64)
    f = mantissa - 1
    s = f * (1 / (2 + f))  # a product with a reciprocal: see `_shared`
    z = s * s
    half_f2 = 0.5 * f * f
    log_mantissa = f - half_f2 + s * (half_f2 + z * _horner(z, _LOG_F64))
    result = e * _LOG2_HI + (e * _LOG2_LO + log_mantissa)
    # Zero (and, with denormals flushed, subnormals) to -inf; NaN stays NaN.
    result = jnp.where(x == 0, -jnp.inf, result)
    return jnp.where(x == x, result, x)


class _Shared(NamedTuple):
    flip: Array
    a: Array
    t: Array  # exp(-2a)
    tanh_a: Array
    base: Array  # Im log cosh z = base + atan2(tanh(a) sin r, cos r)
    sin_r: Array
    cos_r: Array
    y: Array  # tanh(a) sin r
    denominator: Array  # |cosh z|^2 / cosh^2 a = cos^2 r + tanh^2(a) sin^2 r


def _shared(z: Array, library_trig: bool) -> _Shared:
    c = constants(z.real.dtype)
    x, v = z.real, z.imag
    flip = jnp.signbit(x)
    a = jnp.abs(x)
    v = jnp.where(flip, -v, v)
    # XLA's CPU fusion splits the computation into several loops (storing
    # intermediates and recomputing the argument reduction in each) when a
    # quotient with several users lies downstream of the float64 logarithm's
    # bit manipulations; a product with a reciprocal keeps it in one loop.
    t = jnp.exp(-2 * a)
    a2 = a * a
    tanh_a = jnp.where(a < _TANH_SERIES_MAX, a + a * a2 * _horner(a2, c.tanh), (1 - t) * (1 / (1 + t)))
    if library_trig:
        # Exact argument reduction for any |v| from the library's sine and
        # cosine; r is then only known through them, and v - r stands for k pi.
        sin_v, cos_v = jnp.sin(v), jnp.cos(v)
        sin_r = jnp.where(cos_v < 0, -sin_v, sin_v)
        cos_r = jnp.abs(cos_v)
        base = v - _atan2_right_half_plane(sin_r, cos_r, c)
    else:
        k, sin_r, cos_r = _sin_cos_mod_pi(v, c)
        base = k * math.pi
    y = tanh_a * sin_r
    denominator = cos_r * cos_r + y * y
    return _Shared(flip, a, t, tanh_a, base, sin_r, cos_r, y, denominator)


def _log_cosh_from(s: _Shared, c: _Constants) -> Array:
    # |cosh z| = cosh(a) sqrt(denominator) and cosh a = (1 + t) e^a / 2.
    one_plus_t = 1 + s.t
    real = s.a - _LOG2 + 0.5 * _log(one_plus_t * one_plus_t * s.denominator)
    imag = s.base + _atan2_right_half_plane(s.y, s.cos_r, c)
    return lax.complex(real, imag)


def _tanh_from(s: _Shared) -> Array:
    # tanh z = (sinh 2a + i sin 2v) / (cosh 2a + cos 2v), divided by 2 cosh^2 a;
    # sech^2 a = 4t / (1 + t)^2 has no cancellation for large a.
    one_plus_t = 1 + s.t
    scale = 1 / (one_plus_t * one_plus_t * s.denominator)
    real = s.tanh_a * (one_plus_t * one_plus_t) * scale
    imag = 4 * s.t * s.sin_r * s.cos_r * scale
    real = jnp.where(s.flip, -real, real)
    imag = jnp.where(s.flip, -imag, imag)
    return lax.complex(real, imag)


def log_cosh(z: Array, *, library_trig: bool = False) -> Array:
    """Complex `log cosh z` on NetKet's branch.

    With `library_trig=False` (vectorised), only for `|Im z| <= max_imag`.
    """
    return _log_cosh_from(_shared(z, library_trig), constants(z.real.dtype))


def tanh(z: Array, *, library_trig: bool = False) -> Array:
    """Complex `tanh z`; with `library_trig=False`, only for `|Im z| <= max_imag`."""
    return _tanh_from(_shared(z, library_trig))
