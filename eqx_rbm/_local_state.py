r"""Markov-chain state that evaluates the activation once per proposal.

[`eqx_rbm.log_psi_ratio`][] evaluates $f(\theta')$ and $f(\theta)$ on every
hidden unit for every proposal. Keeping the hidden sum
$S = \sum_h f(\theta_h)$ of the current configuration next to $\theta$ halves
that work: $\log\psi(x') - \log\psi(x) = \sum_h f(\theta'_h) - S + \Delta_a$.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from beartype import beartype
from jaxtyping import Array, Bool, Inexact, Int, Num, jaxtyped

from ._checks import check_numeric, guarded_zero
from ._local import _class_index, _is_traced, hidden_theta, move, set_sites
from ._multival import RBMMultiVal, inner_rbm
from ._rbm import RBM


class LocalState(eqx.Module):
    r"""Per-chain data for local updates: configurations, $\theta$ and $\sum_h f(\theta_h)$.

    Build it with [`eqx_rbm.local_state`][], propose moves with
    [`eqx_rbm.propose_move`][] and keep the accepted ones with
    [`eqx_rbm.accept_moves`][]. Every field carries the same leading batch
    dimensions (one entry per chain); the state is a pytree, so it can be the
    carry of `jax.lax.scan`, be `jax.vmap`-ed and be batch-sharded.
    """

    x: Num[Array, "*batch n_sites"]
    """The configurations."""
    theta: Inexact[Array, "*batch n_hidden"]
    """Their hidden pre-activations $\\theta = xW + b$."""
    hidden_sum: Inexact[Array, "*batch"]
    """$\\sum_h f(\\theta_h)$: $\\log\\psi(x)$ without the visible-bias term."""

    def log_psi(self, model: RBM | RBMMultiVal) -> Inexact[Array, "*batch"]:
        """$\\log\\psi(x)$ of the stored configurations, from the cached hidden sum.

        **Arguments:**

        - `model`: the model the state was built with.

        **Returns:**

        $\\log\\psi(x)$ of shape `(*batch,)`.
        """
        rbm = inner_rbm(model)
        if rbm.visible_bias is None:
            return self.hidden_sum
        features = model.one_hot(self.x) if isinstance(model, RBMMultiVal) else self.x
        return self.hidden_sum + jnp.matmul(features, rbm.visible_bias, precision=rbm.precision)


@jaxtyped(typechecker=beartype)
def local_state(model: RBM | RBMMultiVal, x: Num[Array | np.ndarray, "*batch n_sites"]) -> LocalState:
    r"""The [`eqx_rbm.LocalState`][] of configurations `x`: $\theta$ and $\sum_h f(\theta_h)$.

    **Arguments:**

    - `model`: an [`eqx_rbm.RBM`][] or [`eqx_rbm.RBMMultiVal`][].
    - `x`: configurations of shape `(*batch, n_sites)`, one per chain; for an
      `RBMMultiVal`, elements of `local_states`.

    **Returns:**

    A `LocalState` with fields of shape `(*batch, n_sites)`,
    `(*batch, n_hidden)` and `(*batch,)`.
    """
    theta = hidden_theta(model, x)
    activation = inner_rbm(model).activation
    return LocalState(jnp.asarray(x), theta, jnp.sum(activation(theta), axis=-1))


@jaxtyped(typechecker=beartype)
def propose_move(
    model: RBM | RBMMultiVal,
    state: LocalState,
    sites: Int[Array | np.ndarray, "*batch k"],
    new_values: Num[Array | np.ndarray, "*batch k"],
) -> tuple[Inexact[Array, "*batch"], LocalState]:
    r"""$\log\psi(x') - \log\psi(x)$ of a proposal, and the state of $x'$.

    $x'$ is `state.x` with site `sites[..., j]` set to `new_values[..., j]`.
    The pre-activations change by the kernel rows of the changed sites, as in
    [`eqx_rbm.log_psi_ratio`][], and the activation is evaluated once per
    hidden unit, on $\theta'$ only:

    $$\log\frac{\psi(x')}{\psi(x)} = \sum_h f(\theta'_h) - \sum_h f(\theta_h)
    + \sum_j (x'_{s_j} - x_{s_j})\,a_{s_j},$$

    the second sum being `state.hidden_sum`. When only the ratio is used (local
    energies, for instance), `jax.jit` drops the unused parts of the proposed
    state.

    **Arguments:**

    - `model`: the model the state was built with.
    - `state`: the current [`eqx_rbm.LocalState`][], batch `*batch`.
    - `sites`: integer indices of the changed sites, shape `(*batch, k)`, in
      `[0, n_sites)` and distinct within each proposal.
    - `new_values`: their values in $x'$, shape `(*batch, k)`; for an
      `RBMMultiVal`, elements of `local_states`.

    **Returns:**

    A pair `(delta_log_psi, proposed)`: the log-ratio of shape `(*batch,)` and
    the `LocalState` of $x'$.

    **Raises:**

    As [`eqx_rbm.log_psi_ratio`][]: a `ValueError` (eagerly) or a runtime error
    through `equinox.error_if` (under `jax.jit`) for site indices out of range
    or repeated within a proposal, or unknown local states.
    """
    _check_state(model, state)
    delta_theta, delta_visible, guard = move(model, state.x, sites, new_values, "propose_move")
    activation = inner_rbm(model).activation
    new_theta = state.theta + delta_theta
    new_sum = jnp.sum(activation(new_theta), axis=-1)
    delta = new_sum - state.hidden_sum
    if delta_visible is not None:
        delta = delta + delta_visible
    if guard is not None:
        delta = delta + guard.astype(delta.dtype)
        new_theta = new_theta + guard.astype(new_theta.dtype)
    return delta, LocalState(set_sites(state.x, sites, new_values), new_theta, new_sum)


@jaxtyped(typechecker=beartype)
def accept_moves(
    state: LocalState, proposed: LocalState, accept: Bool[Array | np.ndarray, "*batch"]
) -> LocalState:
    """The state with the accepted proposals: `proposed` where `accept`, else `state`.

    **Arguments:**

    - `state`: the current [`eqx_rbm.LocalState`][].
    - `proposed`: the state returned by [`eqx_rbm.propose_move`][].
    - `accept`: a boolean mask of shape `(*batch,)`, one entry per chain.

    **Returns:**

    A `LocalState` like `state`.
    """
    batch = state.hidden_sum.shape
    if accept.shape != batch:
        raise ValueError(
            f"accept: expected one boolean per chain, shape {batch} (the state's batch), "
            f"got shape {accept.shape}"
        )
    if proposed.theta.shape != state.theta.shape or proposed.x.shape != state.x.shape:
        raise ValueError(
            "proposed: expected the shapes of state (pass the state returned by propose_move), "
            f"got x {proposed.x.shape} and theta {proposed.theta.shape} for "
            f"x {state.x.shape} and theta {state.theta.shape}"
        )
    accept = jnp.asarray(accept)
    return LocalState(
        jnp.where(accept[..., None], proposed.x, state.x),
        jnp.where(accept[..., None], proposed.theta, state.theta),
        jnp.where(accept, proposed.hidden_sum, state.hidden_sum),
    )


@jaxtyped(typechecker=beartype)
def site_log_ratios(
    model: RBM | RBMMultiVal, state: LocalState, new_values: Num[Array | np.ndarray, "*batch n_sites"]
) -> Inexact[Array, "*batch n_sites"]:
    r"""$\log\psi(x^{(i)}) - \log\psi(x)$ for every site $i$ at once.

    $x^{(i)}$ is $x$ with site $i$ set to `new_values[..., i]`: these are the
    `n_sites` single-site proposals of each configuration, as a local energy
    with single-site off-diagonal terms needs them (a spin flip on every site
    for the transverse-field Ising model). The change of the
    pre-activations of site $i$ is $(x'_i - x_i) W_i$, a broadcast product
    with the whole kernel rather than a gather of its rows, and the
    activation is evaluated once per hidden unit and site.

    **Arguments:**

    - `model`: the model the state was built with.
    - `state`: the [`eqx_rbm.LocalState`][] of the configurations, batch `*batch`.
    - `new_values`: shape `(*batch, n_sites)`: the value site $i$ takes in
      proposal $i$ (for spins, `-state.x`); for an `RBMMultiVal`, elements of
      `local_states`. A site may keep its value (its ratio is then exactly 0).

    **Returns:**

    The log-ratios, shape `(*batch, n_sites)`.
    """
    _check_state(model, state)
    rbm = inner_rbm(model)
    check_numeric("new_values", new_values, allow_complex=not isinstance(model, RBMMultiVal))
    if new_values.shape != state.x.shape:
        raise ValueError(
            f"new_values: expected one value per site, the shape of state.x {state.x.shape}, "
            f"got shape {tuple(new_values.shape)}"
        )
    traced = _is_traced(state.x, new_values)
    if isinstance(model, RBMMultiVal):
        if not traced:
            model.one_hot._raise_on_unknown(np.asarray(new_values), "new_values")
            model.one_hot._raise_on_unknown(np.asarray(state.x), "state.x")
        old_class, old_known = _class_index(model, state.x)
        new_class, new_known = _class_index(model, jnp.asarray(new_values))
        n_classes, real = model.n_classes, jnp.finfo(rbm.param_dtype).dtype
        classes = jnp.arange(n_classes)
        # Row (i, c') minus row (i, c) of the kernel as a product with the
        # per-site class difference: no gather, and exactly zero where c' = c.
        change = (new_class[..., None] == classes).astype(real) - (old_class[..., None] == classes).astype(
            real
        )
        kernel = rbm.kernel.reshape(model.n_sites, n_classes, rbm.n_hidden)
        delta_theta = jnp.einsum("...ic,ich->...ih", change, kernel, precision=rbm.precision)
        delta_visible = None
        if rbm.visible_bias is not None:
            delta_visible = jnp.sum(change * rbm.visible_bias.reshape(model.n_sites, n_classes), axis=-1)
        invalid = ~(old_known & new_known)
    else:
        # Differences in the parameters' real dtype: integer spins would wrap.
        x = jnp.asarray(state.x)
        dtype = jnp.result_type(x.dtype, new_values.dtype, jnp.finfo(rbm.param_dtype).dtype)
        change = jnp.asarray(new_values).astype(dtype) - x.astype(dtype)
        delta_theta = change[..., None] * rbm.kernel
        delta_visible = change * rbm.visible_bias if rbm.visible_bias is not None else None
        invalid = None
    new_sum = jnp.sum(rbm.activation(state.theta[..., None, :] + delta_theta), axis=-1)
    delta = new_sum - state.hidden_sum[..., None]
    if delta_visible is not None:
        delta = delta + delta_visible
    if traced and invalid is not None and isinstance(model, RBMMultiVal):
        message = f"site_log_ratios: a value is not one of local_states={model.local_states}"
        delta = delta + guarded_zero(delta.dtype, invalid, message)
    return delta


def _check_state(model: Any, state: LocalState) -> None:
    rbm = inner_rbm(model)
    check_numeric("state.x", state.x, allow_complex=not isinstance(model, RBMMultiVal))
    if state.theta.shape[-1:] != (rbm.n_hidden,) or state.theta.shape[:-1] != state.hidden_sum.shape:
        raise ValueError(
            f"state: expected theta of shape (*batch, {rbm.n_hidden}) and hidden_sum of shape (*batch,) "
            "for this model; build it with eqx_rbm.local_state(model, x). "
            f"Got theta {state.theta.shape}, hidden_sum {state.hidden_sum.shape}"
        )
