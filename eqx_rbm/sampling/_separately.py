"""A computation kept apart from its callers' operations by XLA's CPU backend.

XLA's CPU backend (the jax version the benchmark runner records) compiles a
sum over hidden units of an activation into a fast reduction loop, but when the caller's element-wise
operations on the result (`exp`, subtracting a cached sum, a comparison) are
fused into the same loop it runs several times slower. `optimization_barrier`
does not stop that fusion; a conditional does, since fusion never crosses
its branches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array

from ..models._model import AbstractRBM, grouped_sum
from ..numerics._log_cosh import log_cosh_within
from ._support import takes_log_cosh


@jax.custom_batching.custom_vmap
def unbatched_all(x: jax.Array) -> jax.Array:
    """`jnp.all(x)`, also over the batch under `vmap`: one decision for a conditional.

    A batched predicate would turn `lax.cond` into a `select`, which evaluates
    both branches.
    """
    return jnp.all(x)


@unbatched_all.def_vmap
def _(axis_size, in_batched, x):
    return unbatched_all(x), False


def separately(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)`; on CPU inside a conditional that XLA does not fuse across.

    Other backends call `fn` directly: there a conditional would cost a
    round trip to the host, and nothing is gained.
    """
    if jax.default_backend() != "cpu":
        return fn(*args)
    # True, but not to XLA. A reduction rather than one element: slicing a
    # batch-sharded array to one element is refused under explicit mesh axes.
    x = lax.stop_gradient(args[0])
    always = unbatched_all((x == x) | (x != x))
    return lax.cond(always, fn, fn, *args)


Activation = Callable[[Array], Array]


def activated(
    model: AbstractRBM, imag_bound: Callable[[], Array], fn: Callable[..., Array], *args: Array
) -> Array:
    """`fn(model.activation, *args)`, kept apart from the caller's operations.

    `args[0]` holds pre-activations; for complex ones with the `log_cosh`
    activation, `imag_bound()` bounds `|Im|` of every value `fn` activates.
    See this module's docstring and `eqx_rbm._log_cosh.log_cosh_within` for why.
    """
    if takes_log_cosh(model) and jnp.iscomplexobj(args[0]):
        return log_cosh_within(imag_bound(), lambda f: fn(f, *args))
    return separately(lambda *a: fn(model.activation, *a), *args)


def hidden_sum(model: AbstractRBM, theta: Array) -> Array:
    """`sum_g c_g sum_{h in g} f(theta_h)` over the last axis (the model's `hidden_coefficients`)."""
    coefficients = model.hidden_coefficients
    return activated(
        model,
        lambda: jnp.max(jnp.abs(theta.imag), initial=0.0),
        lambda f, t: grouped_sum(coefficients, f(t)),
        theta,
    )
