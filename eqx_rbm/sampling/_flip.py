r"""Metropolis steps of two-valued sites as products, without a logarithm per hidden unit.

For the `log_cosh` activation a move that changes every pre-activation by
$\sigma a_h$ ($\sigma \in \{-1, 0, 1\}$, $a$ a fixed row) multiplies
$\cosh\theta_h$ by $p_h e^{\sigma a_h} + q_h e^{-\sigma a_h}$, with
$p = 1 / (1 + e^{-2\theta})$ and $q = 1 / (1 + e^{2\theta})$ (see `_ratios`).
With $p$ and $q$ cached per chain the hidden part of a log-ratio is a few
logarithms of products, and an accepted chain updates
$p' = p e^{\sigma a} / f$, $q' = q e^{-\sigma a} / f$ with the factor $f$
already computed. This holds for real parameters and sites of two values with
one feature each (spins), under single-site flips ($a$ a kernel row times the
difference of the two features) and exchanges ($a$ the difference of two rows
times it).

The bound on the rows ($|a_h|$) is that of `_ratios`; where a model's rows
break it the sampler keeps the sum of activations (`_sampler`). $p$ and $q$
are recomputed from $\theta$ at the start of every sweep, so rounding in their
updates does not accumulate beyond one sweep.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from ..internal._sharding import gather_rows
from ..models._model import AbstractRBM
from ..models._parts import Dense, weighted_groups
from . import _ratios
from ._activations import hidden_sum
from ._local import LocalState
from ._moves import AbstractMoves
from ._support import UNITS_PER_LOG, takes_products


class Rows(NamedTuple):
    """`a`, `exp(a)` and `exp(-a)` per move, shape `(n_moves, n_hidden)`, and the visible change."""

    a: Float[Array, "n_moves n_hidden"]
    up: Float[Array, "n_moves n_hidden"]
    down: Float[Array, "n_moves n_hidden"]
    visible: Float[Array, " n_moves"] | None


def applies(model: AbstractRBM, state: LocalState, n_states: int) -> bool:
    """Whether product steps can run for this model and state (the bounds aside)."""
    return n_states == 2 and takes_products(model, state.theta.dtype)


def rows(model: AbstractRBM, dense: Dense, states: Array, moves: AbstractMoves, dtype: Any) -> Rows:
    """The rows of every move: `a` is the change of the pre-activations of a move with `sigma = 1`."""
    features = model.site_features(states)[:, 0].astype(dtype)
    step = features[1] - features[0]  # the feature change from the first state to the second
    visible = None if dense.visible_bias is None else step * moves.rows(dense.visible_bias.astype(dtype))
    a = step * moves.rows(dense.kernel.astype(dtype))
    return Rows(a, jnp.exp(a), jnp.exp(-a), visible)


def within_bounds(table: Rows) -> Bool[Array, ""]:
    return _ratios.within_bounds(table.a)


def _log_product(factors: Array) -> Array:
    """`sum(log(factors))` over the last axis, one logarithm per `UNITS_PER_LOG` factors at most."""
    chunk = _ratios.chunk_size(factors.shape[-1], UNITS_PER_LOG[jnp.dtype(factors.dtype)])
    products = jnp.prod(factors.reshape(*factors.shape[:-1], -1, chunk), axis=-1)
    return jnp.sum(jnp.log(products), axis=-1)


def sweep(
    model: AbstractRBM, table: Rows, state: LocalState, draws: Any, states: Array, moves: AbstractMoves
) -> tuple[LocalState, Array]:
    """One sweep of `draws` (an `eqx_rbm.sampling._sampler.Draws`) as product steps.

    Sites are tracked by class, the index of their value in `states`; each
    move's sign `sigma` (`moves.sigma`) scales its row. Returns the state
    after the sweep and each chain's accepted count.
    """

    real_coefficients = tuple(complex(c).real for c in model.hidden_coefficients)

    def step(carry: tuple[Array, Array, Array, Array, Array], numbers: tuple[Array, Array]):
        classes, theta, p, q, n_accepted = carry
        move, log_u = numbers
        sigma = moves.sigma(classes, move)
        positive = (sigma >= 0)[:, None]
        up, down = gather_rows(table.up, move), gather_rows(table.down, move)
        p_part, q_part = _ratios.moved_halves(p, q, up, down, positive)
        factors = p_part + q_part
        # The acceptance needs the real part: Re(c_g) times each group's real log product.
        log_ratio = weighted_groups(real_coefficients, _log_product, factors)
        log_ratio = jnp.where(sigma == 0, 0, log_ratio)  # a move that changes nothing
        sigma_f = sigma.astype(theta.dtype)
        if table.visible is not None:
            log_ratio = log_ratio + sigma_f * gather_rows(table.visible, move)
        accepted = log_u < 2 * log_ratio
        flip = accepted[:, None] & (sigma[:, None] != 0)
        new_classes = jnp.where(accepted[:, None], moves.moved(classes, move), classes)
        theta = jnp.where(flip, theta + sigma_f[:, None] * gather_rows(table.a, move), theta)
        p = jnp.where(flip, p_part / factors, p)
        q = jnp.where(flip, q_part / factors, q)
        return (new_classes, theta, p, q, n_accepted + accepted), None

    classes = (state.x == states[1]).astype(jnp.int32)
    start = (classes, state.theta, *_ratios.halves(state.theta), jnp.zeros(state.x.shape[0], jnp.int32))
    (classes, theta, _, _, n_accepted), _ = jax.lax.scan(step, start, (draws.moves, draws.log_u))
    # The hidden sum from scratch once per sweep: n_hidden activations per chain.
    return LocalState(states[classes], theta, hidden_sum(model, theta)), n_accepted
