"""Numerically stable log(cosh(x)) with a tanh derivative."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, ArrayLike, Inexact

from . import _complex_math

_LOG2 = math.log(2.0)  # a Python float keeps float32 inputs in float32


@jax.custom_batching.custom_vmap
def _in_fast_range(z: Array) -> Array:
    """Whether every |Im z| lies in the range of the vectorised reduction."""
    return jnp.all(jnp.abs(z.imag) <= _complex_math.constants(z.real.dtype).max_imag)


@_in_fast_range.def_vmap
def _(axis_size, in_batched, z):
    # One decision for the whole batch keeps `cond` a branch under `vmap`:
    # a batched predicate would evaluate both branches everywhere.
    return _in_fast_range(z), False


def _complex(function: Callable[..., Array]) -> Callable[[Array], Array]:
    """`function` vectorised where the whole array allows, else with library sin/cos."""

    def dispatch(z: Array) -> Array:
        return lax.cond(
            _in_fast_range(lax.stop_gradient(z)),
            lambda z: function(z, library_trig=False),
            lambda z: function(z, library_trig=True),
            z,
        )

    return dispatch


_complex_log_cosh = _complex(_complex_math.log_cosh)


@jax.custom_jvp
def _complex_tanh(z: Array) -> Array:
    return _complex(_complex_math.tanh)(z)


@_complex_tanh.defjvp
def _complex_tanh_jvp(primals, tangents):
    (z,), (t,) = primals, tangents
    y = _complex_tanh(z)
    return y, (1 - y * y) * t


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _complex_log_cosh_branch(library_trig: bool, z: Array) -> Array:
    return _complex_math.log_cosh(z, library_trig=library_trig)


@_complex_log_cosh_branch.defjvp
def _complex_log_cosh_branch_jvp(library_trig, primals, tangents):
    (z,), (t,) = primals, tangents
    return _complex_log_cosh_branch(library_trig, z), _complex_math.tanh(z, library_trig=library_trig) * t


def log_cosh_within(imag_bound: Array, fn: Callable[[Callable[[Array], Array]], Array]) -> Array:
    """`fn(f)` with `f` the complex `log_cosh`, its range decided once, up front.

    `log_cosh` decides on every call whether a complex array lies within the
    range of the vectorised reduction, a conditional that makes XLA write its
    input to memory. A caller that bounds `|Im z|` of every `z` it passes to
    `f` by the real scalar `imag_bound` gets a branch-free `f` inside one
    conditional instead, so that its whole computation fuses.
    """
    bound = lax.stop_gradient(jnp.abs(imag_bound))
    return lax.cond(
        _in_fast_range(lax.complex(jnp.zeros_like(bound), bound)),
        lambda: fn(functools.partial(_complex_log_cosh_branch, False)),
        lambda: fn(functools.partial(_complex_log_cosh_branch, True)),
    )


@jax.custom_jvp
def _log_cosh(x: Array) -> Array:
    if jnp.iscomplexobj(x):
        return _complex_log_cosh(x)
    z = jnp.abs(x)
    return z + jnp.log1p(jnp.exp(-2 * z)) - _LOG2


@_log_cosh.defjvp
def _log_cosh_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    tanh = _complex_tanh(x) if jnp.iscomplexobj(x) else jnp.tanh(x)
    return _log_cosh(x), tanh * t


# Compiled as one program per shape and dtype when called eagerly, where its half-dozen operations
# would each compile on their own; inside a traced function it is inlined like any nested jit.
_log_cosh_compiled = jax.jit(_log_cosh)


def log_cosh(x: ArrayLike) -> Inexact[Array, "*shape"]:
    r"""Element-wise $\log\cosh(x)$ for real and complex inputs.

    Computed as $|x| + \log(1 + e^{-2|x|}) - \log 2$ (for complex $x$, the sign
    flip uses the sign bit of the real part), which never overflows:
    `log_cosh(1e300)` is `1e300 - log(2)` in float64, and float32 inputs near
    `3e38` are likewise finite. The derivative is defined as $\tanh(x)$, which
    stays finite for any $|x|$; for complex inputs the function is holomorphic.

    For real inputs the floating-point operations are the same as NetKet's
    `netket.nn.activation.log_cosh`, so values agree bit for bit; the sign is
    taken with `abs` instead of a multiplication by a sign.

    For complex inputs the value is NetKet's, $z + \log(1 + e^{-2z}) - \log 2$
    after the flip (so the imaginary part is on the same branch, within
    $\pi/2$ of $\operatorname{Im} z$), but it is evaluated in real arithmetic
    that XLA vectorises on CPU, avoiding complex `exp` and
    `log1p`, whose sines, cosines and arctangents are scalar library calls.
    Both parts are within a few ulp of the exact value (the real part relative
    to $\max(|\cdot|, 1)$), also near the zeros of $\cosh$, where the real
    part tends to $-\infty$ rather than becoming NaN. The vectorised argument
    reduction covers $|\operatorname{Im} z| \le 10^6$ (complex128) or
    $1.25 \cdot 10^4$ (complex64); if any element of the array lies beyond,
    the whole array is evaluated with the library's sine and cosine instead.
    The derivative, $\tanh z$, is computed the same way.

    Accuracy: for $|x| \gtrsim 1$ the result is within a few ulp of the exact
    value. Nearer zero, where $\log\cosh x \approx x^2/2$, the error is a few
    machine epsilons in absolute terms (not relative to the tiny result), as
    for NetKet's formula; inside an RBM this is far below the rounding of the
    sum over hidden units.

    **Arguments:**

    - `x`: a real or complex array (or scalar). Integer inputs are promoted to
      JAX's default floating dtype.

    **Returns:**

    An array of the same shape as `x`, with dtype `x.dtype` for inexact inputs.

    ```python
    import jax.numpy as jnp
    from eqx_rbm import log_cosh

    log_cosh(jnp.array([0.0, 1.0, 1e30]))  # [0., 0.4338, 1e30]
    ```
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    return _log_cosh_compiled(x)
