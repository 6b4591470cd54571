"""Log-ratios of many proposals at once: every single-site change, or every
exchange of given pairs, for local energies and exchange moves."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
from beartype import beartype
from jaxtyping import Array, Inexact, Int, Num, jaxtyped

from ..internal._checks import guarded_zero
from ..models._model import AbstractRBM
from ._local import (
    LocalState,
    check_sites_eager,
    check_state,
    feature_change,
    is_traced,
    site_rows,
    sites_invalid,
)
from ._moves import ExchangeMoves
from ._ratios import hidden_ratios


def _ratios(
    model: AbstractRBM, state: LocalState, change: Array, rows: Array, visible: Array | None, product: bool
) -> Array:
    delta = hidden_ratios(model, state.theta, change, rows, product)
    return delta if visible is None else delta + visible


def _guard_values(model: AbstractRBM, delta: Array, caller: str, *values: Array) -> Array:
    if not is_traced(*values):
        return delta
    flags = [f for f in (model.values_invalid(v) for v in values) if f is not None]
    if not flags:
        return delta
    bad = flags[0] if len(flags) == 1 else jnp.any(jnp.stack(flags))
    return delta + guarded_zero(delta.dtype, bad, f"{caller}: {model.invalid_message('a value')}")


@jaxtyped(typechecker=beartype)
def site_log_ratios(
    model: AbstractRBM, state: LocalState, new_values: Num[Array | np.ndarray, "*batch n_sites"]
) -> Inexact[Array, "*batch n_sites"]:
    r"""$\log\psi(x^{(i)}) - \log\psi(x)$ for every site $i$ at once.

    $x^{(i)}$ is $x$ with site $i$ set to `new_values[..., i]`: the `n_sites`
    single-site proposals of each configuration, as a local energy with
    single-site off-diagonal terms needs them (a spin flip on every site for
    the transverse-field Ising model). The change of the pre-activations of
    site $i$ is $\Delta\phi_i W_i$, a broadcast product with the whole kernel
    rather than a gather of its rows.
    On CPU, for `log_cosh` and two-valued sites with one feature each
    (spins), each log-ratio is the logarithm of a product over hidden units
    instead of a sum of activations, where the kernel rows allow it (the
    "Products in local energies" section of the local-updates page). With
    complex128 parameters its imaginary part, the phase of
    $\psi(x')/\psi(x)$, is then determined modulo $2\pi$ only.

    **Arguments:**

    - `model`: the model the state was built with.
    - `state`: the [`eqx_rbm.LocalState`][] of the configurations, batch `*batch`.
    - `new_values`: shape `(*batch, n_sites)`: the value site $i$ takes in
      proposal $i$ (for spins, `-state.x`); for an `RBMMultiVal`, elements of
      `local_states`. A site may keep its value (its ratio is then exactly 0).

    **Returns:**

    The log-ratios, shape `(*batch, n_sites)`.
    """
    return _site_log_ratios(model, state, new_values, product=True)


def _site_log_ratios(model: AbstractRBM, state: LocalState, new_values: Any, *, product: bool) -> Array:
    """`site_log_ratios`; `product=False` keeps the sum of activations everywhere (for comparisons)."""
    check_state(model, state)
    model.check_values(new_values, "new_values")
    if new_values.shape != state.x.shape:
        raise ValueError(
            f"new_values: expected one value per site, the shape of state.x {state.x.shape}, "
            f"got shape {tuple(new_values.shape)}"
        )
    dense = model.dense()
    change = feature_change(model, state.x, jnp.asarray(new_values), dense)  # (*batch, n_sites, fps)
    delta_visible = None
    if dense.visible_bias is not None:
        delta_visible = jnp.sum(change * site_rows(model, dense.visible_bias), axis=-1)
    delta = _ratios(model, state, change, site_rows(model, dense.kernel), delta_visible, product)
    return _guard_values(model, delta, "site_log_ratios", state.x, jnp.asarray(new_values))


@jaxtyped(typechecker=beartype)
def exchange_log_ratios(
    model: AbstractRBM, state: LocalState, pairs: Int[Array | np.ndarray, "n_pairs 2"]
) -> Inexact[Array, "*batch n_pairs"]:
    r"""$\log\psi(x^{(ij)}) - \log\psi(x)$ for every given pair of sites at once.

    $x^{(ij)}$ is $x$ with the values of sites $i$ and $j$ exchanged: the
    off-diagonal terms of Heisenberg-type local energies, and the log-ratios of
    exchange moves. With $d = \phi(x_j) - \phi(x_i)$, the change of the
    pre-activations is $d\,(W_i - W_j)$, whose row differences are formed once
    for all chains. A pair of equal values gives exactly 0.
    Spins of `log_cosh` models take products on CPU, as
    [`eqx_rbm.site_log_ratios`][] does (with complex128 parameters, the
    imaginary part is then determined modulo $2\pi$ only).

    **Arguments:**

    - `model`: the model the state was built with.
    - `state`: the [`eqx_rbm.LocalState`][] of the configurations, batch `*batch`.
    - `pairs`: integer site pairs of shape `(n_pairs, 2)`, the same for every
      chain (the bonds of a lattice, say), with two distinct sites in
      `[0, n_sites)` each (checked eagerly, or at run time when traced).

    **Returns:**

    The log-ratios, shape `(*batch, n_pairs)`.
    """
    return _exchange_log_ratios(model, state, pairs, product=True)


def _exchange_log_ratios(model: AbstractRBM, state: LocalState, pairs: Any, *, product: bool) -> Array:
    """`exchange_log_ratios`; `product=False` keeps the sum of activations everywhere (for comparisons)."""
    check_state(model, state)
    n_sites = model.n_sites
    traced_pairs = is_traced(pairs)
    if not traced_pairs:
        check_sites_eager(np.asarray(pairs), n_sites)
    pairs = jnp.asarray(pairs)
    dense = model.dense()
    x_i, x_j = state.x[..., pairs[:, 0]], state.x[..., pairs[:, 1]]
    change = feature_change(model, x_i, x_j, dense)  # (*batch, n_pairs, fps)
    moves = ExchangeMoves(pairs)
    row_difference = moves.rows(site_rows(model, dense.kernel))  # (n_pairs, fps, n_hidden)
    delta_visible = None
    if dense.visible_bias is not None:
        delta_visible = jnp.sum(change * moves.rows(site_rows(model, dense.visible_bias)), axis=-1)
    delta = _ratios(model, state, change, row_difference, delta_visible, product)
    if traced_pairs:
        message = f"exchange_log_ratios: a pair holds a site out of [0, {n_sites}) or the same site twice"
        delta = delta + guarded_zero(delta.dtype, sites_invalid(pairs, n_sites), message)
    return _guard_values(model, delta, "exchange_log_ratios", state.x)
