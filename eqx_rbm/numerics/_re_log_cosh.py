"""The real part of log(cosh(z)) from the real and imaginary parts of z."""

from __future__ import annotations

import math

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

_LOG2 = math.log(2.0)  # a Python float keeps float32 inputs in float32


def re_log_cosh(re: ArrayLike, im: ArrayLike) -> Float[Array, "*shape"]:
    r"""Element-wise $\operatorname{Re}\log\cosh(a + ib) = \log|\cosh(a + ib)|$ in real arithmetic.

    With $t = e^{-2|a|}$,
    $|\cosh(a + ib)|^2 = \tfrac{e^{2|a|}}{4}\left((1 + t)^2\cos^2 b + (1 - t)^2\sin^2 b\right)$,
    so the result is $|a| - \log 2 + \tfrac12\log\left((1 + t)^2\cos^2 b + (1 - t)^2\sin^2 b\right)$.
    Both terms inside the logarithm are non-negative, so nothing cancels near
    the zeros of $\cosh$ ($a = 0$, $b = \pi/2 + k\pi$), where the result tends
    to $-\infty$: a sum of 0 would give $-\infty$, never NaN, but as no float
    is a zero of $\cos$, finite inputs give finite results. Nothing overflows
    for large $|a|$ ($+\infty$ gives $+\infty$). $1 - t$ comes from `expm1`,
    so it keeps its digits for small $|a|$, and $\sin^2 b$ is $1 - \cos^2 b$,
    which only loses digits where $\cos^2 b \approx 1$ and that term
    dominates the sum.

    Only `abs`, `expm1`, `cos` and `log` are used, so the function also runs
    inside a Pallas kernel. The error is a few ulp relative to
    $\max(|\text{result}|, 1)$: a few machine epsilons in absolute terms near
    $z = 0$, where the result is about $(a^2 - b^2)/2$.

    **Arguments:**

    - `re`: the real parts $a$, a real array.
    - `im`: the imaginary parts $b$, a real array of the same dtype
      (broadcasting with `re`).

    **Returns:**

    A real array of the broadcast shape and the common dtype.
    """
    re, im = jnp.asarray(re), jnp.asarray(im)
    for name, value in (("re", re), ("im", im)):
        if not jnp.issubdtype(value.dtype, jnp.floating):
            raise TypeError(f"{name}: expected a real floating array, got dtype {value.dtype}")
    a = jnp.abs(re)
    u = jnp.expm1(-2 * a)  # t - 1
    cos = jnp.cos(im)
    cos2 = cos * cos
    inner = (2 + u) * (2 + u) * cos2 + u * u * (1 - cos2)
    return a - _LOG2 + 0.5 * jnp.log(inner)
