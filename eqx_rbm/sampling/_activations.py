"""Sums of activations over hidden units, and a predicate that stays one decision under `vmap`.

For complex `log_cosh` the range of the vectorised evaluation is decided once
for the whole computation (`eqx_rbm.numerics._log_cosh.log_cosh_within`); the
`workarounds` group of the benchmark runner times that against deciding per
call.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array

from ..models._model import AbstractRBM
from ..models._parts import grouped_sum
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


Activation = Callable[[Array], Array]


def activated(
    model: AbstractRBM, imag_bound: Callable[[], Array], fn: Callable[..., Array], *args: Array
) -> Array:
    """`fn(model.activation, *args)`.

    `args[0]` holds pre-activations; for complex ones with the `log_cosh`
    activation, `imag_bound()` bounds `|Im|` of every value `fn` activates, and
    the range of the vectorised evaluation is decided once from it.
    """
    if takes_log_cosh(model) and jnp.iscomplexobj(args[0]):
        return log_cosh_within(imag_bound(), lambda f: fn(f, *args))
    return fn(model.activation, *args)


def hidden_sum(model: AbstractRBM, theta: Array) -> Array:
    """`sum_g c_g sum_{h in g} f(theta_h)` over the last axis (the model's `hidden_coefficients`)."""
    coefficients = model.hidden_coefficients
    return activated(
        model,
        lambda: jnp.max(jnp.abs(theta.imag), initial=0.0),
        lambda f, t: grouped_sum(coefficients, f(t)),
        theta,
    )
