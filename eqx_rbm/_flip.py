r"""Metropolis steps of two-valued sites as products, without a logarithm per hidden unit.

For the `log_cosh` activation a move that changes every pre-activation by
$\sigma a_h$ ($\sigma \in \{-1, 0, 1\}$, $a$ a fixed row) has

$$\frac{\cosh(\theta_h + \sigma a_h)}{\cosh\theta_h} = \cosh a_h + \sigma \tanh(\theta_h) \sinh a_h,$$

so that with $t = \tanh\theta$ cached per chain the hidden part of the
log-ratio is the logarithm of one product, and the accepted chains update
$t' = (t\cosh a + \sigma\sinh a) / (\cosh a + \sigma t\sinh a)$ with the
factor already computed. This holds for real parameters and sites of two
values with one feature each (spins), under single-site flips ($a$ a kernel
row times the difference of the two features) and exchanges ($a$ the
difference of two rows times it).

The bounds on the rows ($|a_h|$ and $\sum_h |a_h|$) are those of
`eqx_rbm._ratios`; where a model's rows break either the sampler keeps the sum
of activations (`eqx_rbm._sampler`). $t$ is recomputed from $\theta$ at the
start of every sweep, so rounding in its update does not accumulate beyond
one sweep.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from . import _ratios
from ._local import LocalState
from ._model import AbstractRBM, Dense
from ._separately import hidden_sum
from ._sharding import gather_rows


class Rows(NamedTuple):
    """`a`, `cosh a` and `sinh a` per move, shape `(n_moves, n_hidden)`, and the visible change."""

    a: Float[Array, "n_moves n_hidden"]
    cosh: Float[Array, "n_moves n_hidden"]
    sinh: Float[Array, "n_moves n_hidden"]
    visible: Float[Array, " n_moves"] | None


def applies(model: AbstractRBM, state: LocalState, n_states: int) -> bool:
    """Whether product steps can run for this model and state (the bounds aside)."""
    return n_states == 2 and _ratios.applies(model, state.theta)


def rows(model: AbstractRBM, dense: Dense, states: Array, pairs: Array | None, dtype: Any) -> Rows:
    """The rows of single-site flips (`pairs` None) or of exchanges over `pairs`."""
    features = model.site_features(states)[:, 0].astype(dtype)
    step = features[1] - features[0]  # the feature change from the first state to the second
    kernel = dense.kernel.astype(dtype)
    visible = None if dense.visible_bias is None else dense.visible_bias.astype(dtype)
    if pairs is not None:
        kernel = kernel[pairs[:, 0]] - kernel[pairs[:, 1]]
        visible = None if visible is None else visible[pairs[:, 0]] - visible[pairs[:, 1]]
    a = step * kernel
    return Rows(a, jnp.cosh(a), jnp.sinh(a), None if visible is None else step * visible)


def within_bounds(table: Rows) -> Bool[Array, ""]:
    return _ratios.within_bounds(table.a)


def sweep(
    model: AbstractRBM, table: Rows, state: LocalState, draws: Any, states: Array, pairs: Array | None
) -> tuple[LocalState, Array]:
    """One sweep of `draws` (an `eqx_rbm._sampler.Draws`) as product steps.

    Sites are tracked by class, the index of their value in `states`: a flip
    of a site in class 0 has sigma = +1, in class 1 sigma = -1; an exchange of
    sites i and j has sigma = class(j) - class(i). Returns the state after the
    sweep and each chain's accepted count.
    """
    chains = jnp.arange(state.x.shape[0])
    classes = (state.x == states[1]).astype(jnp.int32)

    def step(carry: tuple[Array, Array, Array, Array], numbers: tuple[Array, Array]):
        classes, theta, tanh, n_accepted = carry
        move, log_u = numbers
        if pairs is None:
            sites = move[:, None]
            sigma = 1 - 2 * classes[chains, move]
        else:
            sites = pairs[move]
            sigma = classes[chains, sites[:, 1]] - classes[chains, sites[:, 0]]
        sigma_f = sigma.astype(theta.dtype)[:, None]
        cosh = 1 + sigma_f * sigma_f * (gather_rows(table.cosh, move) - 1)  # 1 where sigma = 0: no change
        sinh = sigma_f * gather_rows(table.sinh, move)
        factors = cosh + tanh * sinh
        log_ratio = jnp.log(jnp.prod(factors, axis=-1))
        if table.visible is not None:
            log_ratio = log_ratio + sigma_f[:, 0] * gather_rows(table.visible, move)
        accepted = log_u < 2 * log_ratio
        flip = accepted[:, None] & (sigma[:, None] != 0)
        new_classes = jnp.where(accepted[:, None], _moved(classes, sites), classes)
        theta = jnp.where(flip, theta + sigma_f * gather_rows(table.a, move), theta)
        tanh = jnp.where(flip, (tanh * cosh + sinh) / factors, tanh)
        return (new_classes, theta, tanh, n_accepted + accepted), None

    start = (classes, state.theta, jnp.tanh(state.theta), jnp.zeros(state.x.shape[0], jnp.int32))
    (classes, theta, _, n_accepted), _ = jax.lax.scan(step, start, (draws.moves, draws.log_u))
    # The hidden sum from scratch once per sweep: n_hidden activations per chain.
    return LocalState(states[classes], theta, hidden_sum(model, theta)), n_accepted


def _moved(classes: Array, sites: Array) -> Array:
    """`classes` with one site flipped, or the classes of two sites exchanged."""
    positions = jnp.arange(classes.shape[-1])
    if sites.shape[-1] == 1:
        return jnp.where(positions == sites, 1 - classes, classes)
    first, second = (jnp.take_along_axis(classes, sites[:, j : j + 1], axis=-1) for j in (0, 1))
    out = jnp.where(positions == sites[:, :1], second, classes)
    return jnp.where(positions == sites[:, 1:], first, out)
