r"""Local updates: Markov-chain state whose moves cost a few kernel rows.

A Metropolis move changes `k` sites (`k = 1` for a spin flip, `k = 2` for
an exchange or a particle hop). Keeping each chain's hidden pre-activations
$\theta = \phi(x) W + b$ and hidden sum $S = \sum_h f(\theta_h)$ makes the
log-ratio of a proposal

$$\log\frac{\psi(x')}{\psi(x)} = \sum_h f(\theta_h + \Delta\theta_h) - S + \Delta\phi\cdot a,
\qquad \Delta\theta = \sum_{j} \Delta\phi_{s_j} W_{s_j},$$

an $O(k \cdot n_\text{hidden})$ product instead of a full evaluation, with
the activation evaluated once per hidden unit. Everything here is written
against the dense view of [`eqx_rbm.AbstractRBM`][], so every model of the
family has local updates.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from beartype import beartype
from jax.core import Tracer
from jaxtyping import Array, Bool, Inexact, Int, Num, jaxtyped

from ..internal._checks import guarded_zero
from ..internal._sharding import gather_rows
from ..models._model import AbstractRBM
from ..models._parts import Dense
from ._activations import hidden_sum


class LocalState(eqx.Module):
    r"""Per-chain data for local updates: configurations, $\theta$ and $\sum_h f(\theta_h)$.

    Build it with [`eqx_rbm.local_state`][], propose moves with
    [`eqx_rbm.propose`][] and keep the accepted ones with [`eqx_rbm.accept`][];
    [`eqx_rbm.site_log_ratios`][] and [`eqx_rbm.exchange_log_ratios`][] give
    the log-ratios a local energy needs. Every field carries the same leading
    batch dimensions (one entry per chain); the state is a pytree, so it can
    be the carry of `jax.lax.scan`, be `jax.vmap`-ed and be batch-sharded.
    """

    x: Num[Array, "*batch n_sites"]
    """The configurations."""
    theta: Inexact[Array, "*batch n_hidden"]
    """Their hidden pre-activations $\\theta = \\phi(x) W + b$."""
    hidden_sum: Inexact[Array, "*batch"]
    """$\\sum_g c_g \\sum_{h \\in g} f(\\theta_h)$ (`hidden_coefficients`; one group: $\\sum_h f(\\theta_h)$).

    $\\log\\psi(x)$ without the visible-bias term."""

    def log_psi(self, model: AbstractRBM) -> Inexact[Array, "*batch"]:
        """$\\log\\psi(x)$ of the stored configurations, from the cached hidden sum.

        **Arguments:**

        - `model`: the model the state was built with.

        **Returns:**

        $\\log\\psi(x)$ of shape `(*batch,)`.
        """
        visible = model.dense().visible_bias
        if visible is None:
            return self.hidden_sum
        return self.hidden_sum + jnp.matmul(model.encode(self.x), visible, precision=model.precision)


@jaxtyped(typechecker=beartype)
def local_state(model: AbstractRBM, x: Num[Array | np.ndarray, "*batch n_sites"]) -> LocalState:
    r"""The [`eqx_rbm.LocalState`][] of configurations `x`: $\theta$ and $\sum_h f(\theta_h)$.

    **Arguments:**

    - `model`: any model of the family ([`eqx_rbm.RBM`][], [`eqx_rbm.RBMMultiVal`][], ...).
    - `x`: configurations of shape `(*batch, n_sites)`, one per chain; for an
      `RBMMultiVal`, elements of `local_states`.

    **Returns:**

    A `LocalState` with fields of shape `(*batch, n_sites)`,
    `(*batch, n_hidden)` and `(*batch,)`.
    """
    theta = model.theta(x)
    return LocalState(jnp.asarray(x), theta, hidden_sum(model, theta))


def is_traced(*arrays: object) -> bool:
    return any(isinstance(a, Tracer) for a in arrays)


def check_state(model: AbstractRBM, state: LocalState) -> None:
    model.check_values(state.x, "state.x")
    n_hidden = model.n_hidden
    if (
        state.x.shape[-1:] != (model.n_sites,)
        or state.theta.shape[-1:] != (n_hidden,)
        or state.theta.shape[:-1] != state.hidden_sum.shape
        or state.x.shape[:-1] != state.hidden_sum.shape
    ):
        raise ValueError(
            f"state: expected x of shape (*batch, {model.n_sites}), theta of shape (*batch, {n_hidden}) "
            "and hidden_sum of shape (*batch,) for this model; build it with eqx_rbm.local_state(model, x). "
            f"Got x {state.x.shape}, theta {state.theta.shape}, hidden_sum {state.hidden_sum.shape}"
        )


def sites_invalid(sites: Array, n_sites: int) -> Array:
    out_of_range = jnp.any((sites < 0) | (sites >= n_sites))
    if sites.shape[-1] < 2:
        return out_of_range
    ordered = jnp.sort(sites, axis=-1)
    return out_of_range | jnp.any(ordered[..., 1:] == ordered[..., :-1])


def check_sites_eager(sites: np.ndarray, n_sites: int) -> None:
    bad = np.argwhere((sites < 0) | (sites >= n_sites))
    if len(bad):
        index = tuple(int(i) for i in bad[0])
        raise ValueError(
            f"sites: expected indices in [0, {n_sites}) (n_sites={n_sites}), "
            f"got {sites[index].item()} at index {index}"
        )
    if sites.shape[-1] > 1:
        ordered = np.sort(sites, axis=-1)
        repeated = np.argwhere(ordered[..., 1:] == ordered[..., :-1])
        if len(repeated):
            where = tuple(int(i) for i in repeated[0][:-1])
            raise ValueError(
                f"sites: expected distinct sites within each proposal, got {sites[where].tolist()} "
                f"at batch index {where}"
            )


def feature_change(model: AbstractRBM, old: Array, new: Array, dense: Dense) -> Array:
    """$\\phi(\\text{new}) - \\phi(\\text{old})$ per site, shape `(*old.shape, features_per_site)`.

    In the parameters' real dtype at least: integer spins would otherwise
    wrap or round. An unchanged site gives exactly zero.
    """
    new_f, old_f = model.site_features(new), model.site_features(old)
    dtype = jnp.result_type(new_f, old_f, jnp.finfo(dense.kernel.dtype).dtype)
    return new_f.astype(dtype) - old_f.astype(dtype)


def site_rows(model: AbstractRBM, table: Array) -> Array:
    """A per-feature table `(n_features, ...)` as `(n_sites, features_per_site, ...)`."""
    return table.reshape(model.n_sites, model.features_per_site, *table.shape[1:])


def _set_sites(x: Array, sites: Array, new_values: Array) -> Array:
    # A select per changed site instead of a scatter: O(k n_sites) element-wise
    # work that keeps a batch-sharded x sharded under explicit mesh axes.
    positions = jnp.arange(x.shape[-1], dtype=sites.dtype)
    out = x
    for j in range(sites.shape[-1]):
        out = jnp.where(positions == sites[..., j : j + 1], new_values[..., j : j + 1].astype(x.dtype), out)
    return out


def propose_unchecked(
    model: AbstractRBM, dense: Dense, state: LocalState, sites: Array, new_values: Array
) -> tuple[Array, LocalState]:
    """[`eqx_rbm.propose`][] for arguments valid by construction (a sampler's).

    `dense` is `model.dense()`, computed once by the caller.
    """
    old = jnp.take_along_axis(state.x, sites, axis=-1, mode="clip")
    change = feature_change(model, old, new_values, dense)  # (*batch, k, fps)
    rows = gather_rows(site_rows(model, dense.kernel), sites)  # (*batch, k, fps, n_hidden)
    # Per site first, so that an unchanged site contributes exactly zero.
    delta_theta = jnp.sum(jnp.sum(change[..., None] * rows, axis=-2), axis=-2)
    new_theta = state.theta + delta_theta
    new_sum = hidden_sum(model, new_theta)
    delta = new_sum - state.hidden_sum
    if dense.visible_bias is not None:
        visible = gather_rows(site_rows(model, dense.visible_bias), sites)
        delta = delta + jnp.sum(jnp.sum(change * visible, axis=-1), axis=-1)
    return delta, LocalState(_set_sites(state.x, sites, new_values), new_theta, new_sum)


@jaxtyped(typechecker=beartype)
def propose(
    model: AbstractRBM,
    state: LocalState,
    sites: Int[Array | np.ndarray, "*batch k"],
    new_values: Num[Array | np.ndarray, "*batch k"],
) -> tuple[Inexact[Array, "*batch"], LocalState]:
    r"""$\log\psi(x') - \log\psi(x)$ of a proposal, and the state of $x'$.

    $x'$ is `state.x` with site `sites[..., j]` set to `new_values[..., j]`.
    The pre-activations change by the kernel rows of the changed sites' features,

    $$\log\frac{\psi(x')}{\psi(x)} = \sum_h f(\theta'_h) - \sum_h f(\theta_h)
    + \sum_j \Delta\phi_{s_j}\cdot a_{s_j},$$

    the second sum being `state.hidden_sum`. For an `RBMMultiVal`, a site
    changing from class $c$ to $c'$ swaps kernel row $(s, c)$ for row
    $(s, c')$. When only the ratio is used, `jax.jit` drops the unused parts of
    the proposed state.

    **Arguments:**

    - `model`: the model the state was built with.
    - `state`: the current [`eqx_rbm.LocalState`][], batch `*batch`.
    - `sites`: integer indices of the changed sites, shape `(*batch, k)`, in
      `[0, n_sites)` and distinct within each proposal.
    - `new_values`: their values in $x'$, shape `(*batch, k)`; for an
      `RBMMultiVal`, elements of `local_states`. A site may keep its value.

    **Returns:**

    A pair `(log_ratio, proposed)`: shape `(*batch,)`, and the `LocalState` of $x'$.

    **Raises:**

    `ValueError` (eagerly) or a runtime error through `equinox.error_if`
    (under `jax.jit`) when a site index is out of range or repeated within a
    proposal, or a value cannot be encoded (not one of `local_states`).
    Shape and dtype errors are raised at trace time.
    """
    check_state(model, state)
    model.check_values(new_values, "new_values")
    if sites.shape != new_values.shape:
        raise ValueError(
            f"new_values: expected the shape of sites, {tuple(sites.shape)}, got {tuple(new_values.shape)}"
        )
    if sites.shape[:-1] != state.x.shape[:-1]:
        raise ValueError(
            f"sites: expected shape (*batch, k) with *batch={tuple(state.x.shape[:-1])} (that of state.x), "
            f"got {tuple(sites.shape)}"
        )
    n_sites = model.n_sites
    traced = is_traced(state.x, sites, new_values)
    if not traced:
        check_sites_eager(np.asarray(sites), n_sites)
    sites, new_values = jnp.asarray(sites), jnp.asarray(new_values)
    delta, proposed = propose_unchecked(model, model.dense(), state, sites, new_values)
    if not traced:
        return delta, proposed
    bad = sites_invalid(sites, n_sites)
    for values in (state.x, new_values):
        invalid = model.values_invalid(values)
        bad = bad if invalid is None else bad | invalid
    guard = guarded_zero(
        delta.dtype,
        bad,
        f"propose: a site index is out of [0, {n_sites}) or repeated within a proposal, "
        f"or {model.invalid_message('a value')}",
    )
    return delta + guard, eqx.tree_at(lambda s: s.theta, proposed, proposed.theta + guard)


@jaxtyped(typechecker=beartype)
def accept(state: LocalState, proposed: LocalState, mask: Bool[Array | np.ndarray, "*batch"]) -> LocalState:
    """The state with the accepted proposals: `proposed` where `mask`, else `state`.

    **Arguments:**

    - `state`: the current [`eqx_rbm.LocalState`][].
    - `proposed`: the state returned by [`eqx_rbm.propose`][].
    - `mask`: a boolean array of shape `(*batch,)`, one entry per chain.

    **Returns:**

    A `LocalState` like `state`.
    """
    batch = state.hidden_sum.shape
    if mask.shape != batch:
        raise ValueError(
            f"mask: expected one boolean per chain, shape {batch} (the state's batch), got shape {mask.shape}"
        )
    if proposed.theta.shape != state.theta.shape or proposed.x.shape != state.x.shape:
        raise ValueError(
            "proposed: expected the shapes of state (pass the state returned by propose), "
            f"got x {proposed.x.shape} and theta {proposed.theta.shape} for "
            f"x {state.x.shape} and theta {state.theta.shape}"
        )
    return accept_unchecked(state, proposed, jnp.asarray(mask))


def accept_unchecked(state: LocalState, proposed: LocalState, mask: Array) -> LocalState:
    return LocalState(
        jnp.where(mask[..., None], proposed.x, state.x),
        jnp.where(mask[..., None], proposed.theta, state.theta),
        jnp.where(mask, proposed.hidden_sum, state.hidden_sum),
    )
