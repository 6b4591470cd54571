"""Local updates: log-amplitude ratios for proposals that change a few sites.

A Markov chain over configurations proposes moves that change `k` sites
(`k = 1` for a spin flip, `k = 2` for an exchange or a particle hop).
Recomputing $\\log\\psi$ of the proposal costs a full product $xW$,
$O(n_\\text{visible} \\cdot n_\\text{hidden})$ per chain. Keeping the hidden
pre-activations $\\theta = xW + b$ of each chain's current configuration
reduces the product to $O(k \\cdot n_\\text{hidden})$: only the rows of $W$
of the changed sites enter the difference. The activation of every hidden
unit is still evaluated, which on a CPU is what bounds the gain.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
from beartype import beartype
from jax.core import Tracer
from jaxtyping import Array, Inexact, Int, Num, jaxtyped

from ._checks import check_last_dim, check_numeric, guarded_zero
from ._multival import RBMMultiVal, inner_rbm
from ._rbm import RBM
from ._sharding import gather_rows


def _n_sites(model: RBM | RBMMultiVal) -> int:
    return model.n_sites if isinstance(model, RBMMultiVal) else model.n_visible


def _is_traced(*arrays: object) -> bool:
    return any(isinstance(a, Tracer) for a in arrays)


def _check_sites_eager(sites: np.ndarray, n_sites: int) -> None:
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


def _check_move_shapes(x: Any, sites: Any, new_values: Any) -> None:
    if sites.shape != new_values.shape:
        raise ValueError(
            f"new_values: expected the shape of sites, {tuple(sites.shape)}, got {tuple(new_values.shape)}"
        )
    if sites.shape[:-1] != x.shape[:-1]:
        raise ValueError(
            f"sites: expected shape (*batch, k) with *batch={tuple(x.shape[:-1])} (that of x), "
            f"got {tuple(sites.shape)}"
        )


def _sites_invalid(sites: Array, n_sites: int) -> Array:
    out_of_range = jnp.any((sites < 0) | (sites >= n_sites))
    if sites.shape[-1] < 2:
        return out_of_range
    ordered = jnp.sort(sites, axis=-1)
    return out_of_range | jnp.any(ordered[..., 1:] == ordered[..., :-1])


def _class_index(model: RBMMultiVal, values: Array) -> tuple[Array, Array]:
    """Class index of each local-state value, and whether every value was known."""
    match = model.one_hot.matches(values)
    return jnp.argmax(match, axis=-1), jnp.all(jnp.any(match, axis=-1))


@jaxtyped(typechecker=beartype)
def hidden_theta(
    model: RBM | RBMMultiVal, x: Num[Array | np.ndarray, "*batch n_sites"]
) -> Inexact[Array, "*batch n_hidden"]:
    r"""Hidden pre-activations $\theta = xW + b$ of configurations `x`.

    This is the state that [`eqx_rbm.log_psi_ratio`][] updates; compute it once
    per chain, then keep it alongside the configuration.

    **Arguments:**

    - `model`: an [`eqx_rbm.RBM`][] or [`eqx_rbm.RBMMultiVal`][].
    - `x`: configurations of shape `(*batch, n_sites)`: visible values for an
      `RBM`, local-state values for an `RBMMultiVal` (which are one-hot
      encoded first).

    **Returns:**

    $\theta$ of shape `(*batch, n_hidden)`, in the dtype the model computes in.
    """
    if isinstance(model, RBMMultiVal):
        check_last_dim("x", x.shape, model.n_sites, "n_sites")
        return model.rbm.theta(model.one_hot(x))
    check_numeric("x", x, allow_complex=True)
    check_last_dim("x", x.shape, model.n_visible, "n_visible")
    return model.theta(x)


@jaxtyped(typechecker=beartype)
def log_psi_ratio(
    model: RBM | RBMMultiVal,
    x: Num[Array | np.ndarray, "*batch n_sites"],
    theta: Inexact[Array, "*batch n_hidden"],
    sites: Int[Array | np.ndarray, "*batch k"],
    new_values: Num[Array | np.ndarray, "*batch k"],
) -> tuple[Inexact[Array, "*batch"], Inexact[Array, "*batch n_hidden"]]:
    r"""$\log\psi(x') - \log\psi(x)$ for a proposal $x'$ that changes `k` sites of `x`.

    $x'$ equals `x` except that site `sites[..., j]` holds `new_values[..., j]`.
    With $\theta$ the pre-activations of `x`, the change in the pre-activations
    involves only the kernel rows of the changed sites:

    $$\theta' = \theta + \sum_j (x'_{s_j} - x_{s_j})\, W_{s_j}, \qquad
    \log\frac{\psi(x')}{\psi(x)} = \sum_h \big[f(\theta'_h) - f(\theta_h)\big]
    + \sum_j (x'_{s_j} - x_{s_j})\, a_{s_j},$$

    whose product part costs $O(k \cdot n_\text{hidden})$ per chain instead of
    the $O(n_\text{visible} \cdot n_\text{hidden})$ of a full evaluation; the
    activation $f$ is still evaluated on every hidden unit. For an
    `RBMMultiVal`, a site changing from class $c$ to $c'$ swaps kernel row
    $(s, c)$ for row $(s, c')$.

    Every argument may carry the same leading batch dimensions (one entry per
    chain, for instance), and the function may be `jax.jit`-ed and `jax.vmap`-ed.
    Keep $\theta'$ where the move is accepted:
    `theta = jnp.where(accept[..., None], new_theta, theta)`, and update the
    configuration with [`eqx_rbm.set_sites`][].

    **Arguments:**

    - `model`: an [`eqx_rbm.RBM`][] or [`eqx_rbm.RBMMultiVal`][].
    - `x`: current configurations, shape `(*batch, n_sites)`; for an
      `RBMMultiVal`, local-state values (elements of `local_states`).
    - `theta`: their pre-activations, shape `(*batch, n_hidden)`, as returned
      by [`eqx_rbm.hidden_theta`][] or by an earlier call.
    - `sites`: integer indices of the changed sites, shape `(*batch, k)`, in
      `[0, n_sites)` and distinct within each proposal.
    - `new_values`: the values those sites take in $x'$, shape `(*batch, k)`;
      for an `RBMMultiVal`, elements of `local_states`. A site may keep its
      value, in which case it contributes nothing.

    **Returns:**

    A pair `(delta_log_psi, new_theta)`: $\log\psi(x') - \log\psi(x)$ of shape
    `(*batch,)` and the pre-activations $\theta'$ of $x'$, shape
    `(*batch, n_hidden)`.

    **Raises:**

    `ValueError` (eagerly) or a runtime error through `equinox.error_if`
    (under `jax.jit`) when a site index is out of range or repeated within a
    proposal, or, for an `RBMMultiVal`, a value is not one of `local_states`.
    Shape and dtype errors are raised at trace time.
    """
    check_last_dim("theta", theta.shape, inner_rbm(model).n_hidden, "n_hidden")
    delta_theta, delta_visible, guard = move(model, x, sites, new_values, "log_psi_ratio")
    activation = inner_rbm(model).activation
    new_theta = theta + delta_theta
    delta = jnp.sum(activation(new_theta) - activation(theta), axis=-1)
    if delta_visible is not None:
        delta = delta + delta_visible
    if guard is not None:
        delta, new_theta = delta + guard.astype(delta.dtype), new_theta + guard.astype(new_theta.dtype)
    return delta, new_theta


def move(
    model: RBM | RBMMultiVal, x: Any, sites: Any, new_values: Any, caller: str
) -> tuple[Array, Array | None, Array | None]:
    """The checked change of a proposal: `(delta_theta, delta_visible, guard)`.

    `delta_visible` is `None` without a visible bias. `guard` is `None` for
    concrete inputs (checked eagerly here) and otherwise a scalar zero that
    raises at run time if a site or value is invalid; callers add it to
    their results.
    """
    rbm = inner_rbm(model)
    n_sites = _n_sites(model)
    check_numeric("x", x, allow_complex=not isinstance(model, RBMMultiVal))
    check_numeric("new_values", new_values, allow_complex=not isinstance(model, RBMMultiVal))
    check_last_dim("x", x.shape, n_sites, "n_sites")
    _check_move_shapes(x, sites, new_values)
    traced = _is_traced(x, sites, new_values)
    if not traced:
        _check_sites_eager(np.asarray(sites), n_sites)
        if isinstance(model, RBMMultiVal):
            # Before any conversion, as OneHot does: with x64 off jnp.asarray
            # could wrap or round an unknown value onto a state.
            model.one_hot._raise_on_unknown(np.asarray(new_values), "new_values")
    x, sites, new_values = jnp.asarray(x), jnp.asarray(sites), jnp.asarray(new_values)

    # Indices are validated separately, so the gathers may skip the bounds masks.
    old_values = jnp.take_along_axis(x, sites, axis=-1, mode="clip")
    if isinstance(model, RBMMultiVal):
        n_classes = model.n_classes
        old_class, old_known = _class_index(model, old_values)
        new_class, new_known = _class_index(model, new_values)
        if not traced and not bool(old_known):
            raise ValueError(
                f"x: expected every value at the changed sites to be one of local_states={model.local_states}"
            )
        new_index, old_index = sites * n_classes + new_class, sites * n_classes + old_class
        # Subtracting the rows (rather than weighting them by +-1) keeps an
        # unchanged site's contribution exactly zero.
        delta_theta = jnp.sum(
            gather_rows(rbm.kernel, new_index) - gather_rows(rbm.kernel, old_index), axis=-2
        )
        delta_visible = None
        if rbm.visible_bias is not None:
            a = rbm.visible_bias
            delta_visible = jnp.sum(gather_rows(a, new_index) - gather_rows(a, old_index), axis=-1)
        invalid = ~(old_known & new_known)
    else:
        # Differences in the real dtype of the parameters, not in x's dtype:
        # integer spins would otherwise wrap or round.
        real = jnp.finfo(rbm.kernel.dtype).dtype
        dtype = jnp.result_type(x.dtype, new_values.dtype, real)
        delta_x = new_values.astype(dtype) - old_values.astype(dtype)
        delta_theta = jnp.sum(delta_x[..., None] * gather_rows(rbm.kernel, sites), axis=-2)
        delta_visible = None
        if rbm.visible_bias is not None:
            delta_visible = jnp.sum(delta_x * gather_rows(rbm.visible_bias, sites), axis=-1)
        invalid = None

    if not traced:
        return delta_theta, delta_visible, None
    bad = _sites_invalid(sites, n_sites)
    if invalid is not None:
        bad = bad | invalid
    message = f"{caller}: a site index is out of [0, {n_sites}) or repeated within a proposal"
    if isinstance(model, RBMMultiVal):
        message += f", or a value is not one of local_states={model.local_states}"
    return delta_theta, delta_visible, guarded_zero(delta_theta.dtype, bad, message)


@jaxtyped(typechecker=beartype)
def set_sites(
    x: Num[Array | np.ndarray, "*batch n_sites"],
    sites: Int[Array | np.ndarray, "*batch k"],
    new_values: Num[Array | np.ndarray, "*batch k"],
) -> Num[Array, "*batch n_sites"]:
    """The configurations `x` with `x[..., sites[..., j]] = new_values[..., j]`.

    The batched scatter that applies a proposal of [`eqx_rbm.log_psi_ratio`][]
    to its configurations. Select accepted moves with `jnp.where`:
    `x = jnp.where(accept[..., None], set_sites(x, sites, new_values), x)`.

    **Arguments:**

    - `x`: configurations of shape `(*batch, n_sites)`.
    - `sites`: integer site indices, shape `(*batch, k)`, in `[0, n_sites)`.
    - `new_values`: the new values, shape `(*batch, k)`, cast to `x.dtype`.

    **Returns:**

    An array like `x` with the given sites replaced.
    """
    _check_move_shapes(x, sites, new_values)
    n_sites = x.shape[-1]
    if not _is_traced(sites):
        _check_sites_eager(np.asarray(sites), n_sites)
    x, sites = jnp.asarray(x), jnp.asarray(sites)
    new_values = jnp.asarray(new_values).astype(x.dtype)
    # A select per changed site instead of a scatter: O(k n_sites) element-wise
    # work that keeps a batch-sharded x sharded under explicit mesh axes.
    positions = jnp.arange(n_sites, dtype=sites.dtype)
    out = x
    for j in range(sites.shape[-1]):
        out = jnp.where(positions == sites[..., j : j + 1], new_values[..., j : j + 1], out)
    if _is_traced(sites):
        out = out + guarded_zero(
            out.dtype,
            _sites_invalid(jnp.asarray(sites), n_sites),
            f"set_sites: a site index is out of [0, {n_sites}) or repeated within a proposal",
        )
    return out
