r"""Metropolis sampling of $|\psi(x)|^2$ with local updates, for every model of the family.

Each chain carries its [`eqx_rbm.LocalState`][], so a proposal costs the
kernel rows of the sites it changes instead of a full evaluation. The random
numbers of a sweep are drawn up front, in one place, so that every path (the
portable XLA loop and the fused kernel) makes its decisions from the same
numbers.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..internal._checks import check_positive_int, guarded_zero
from ..models._model import AbstractRBM
from ..models._parts import Dense
from . import _flip
from ._activations import unbatched_all
from ._local import LocalState, accept_unchecked, check_sites_eager, check_state, propose_unchecked
from ._moves import AbstractMoves, ExchangeMoves, SiteMoves
from ._support import fused_refusal

Method = Literal["auto", "fused", "portable"]


class Draws(NamedTuple):
    """The random numbers of one sweep of `sweep_size` proposals per chain."""

    moves: Int[Array, "sweep_size n_chains"]
    """Single-site moves: the site. Exchange moves: the index of the pair."""
    offsets: Int[Array, "sweep_size n_chains"]
    """Single-site moves: the new local state is `(current + offset) % n_states`, offset in [1, n_states)."""
    log_u: Float[Array, "sweep_size n_chains"]
    """Log of a uniform draw: a proposal is accepted when `log_u < 2 Re log(psi'/psi)`."""


def draw(key: PRNGKeyArray, sweep_size: int, n_chains: int, n_moves: int, n_states: int, dtype: Any) -> Draws:
    """The random numbers of one sweep (shared by every path)."""
    k_move, k_offset, k_accept = jax.random.split(key, 3)
    shape = (sweep_size, n_chains)
    return Draws(
        jax.random.randint(k_move, shape, 0, n_moves, dtype=jnp.int32),
        jax.random.randint(k_offset, shape, 1, max(n_states, 2), dtype=jnp.int32),
        jnp.log(jax.random.uniform(k_accept, shape, dtype=dtype)),
    )


def _real_dtype(model: AbstractRBM, state: LocalState) -> Any:
    return jnp.finfo(jnp.result_type(state.theta.dtype, model.param_dtype)).dtype


def portable_sweep(
    model: AbstractRBM, dense: Dense, state: LocalState, draws: Draws, states: Array, moves: AbstractMoves
) -> tuple[LocalState, Array]:
    """One sweep as a `lax.scan` of local updates; returns the state and the accepted count per chain."""

    def step(carry: tuple[LocalState, Array], numbers: tuple[Array, Array, Array]):
        state, n_accepted = carry
        move, offset, log_u = numbers
        new_values = moves.new_values(state.x, move, offset, states)
        log_ratio, proposed = propose_unchecked(model, dense, state, moves.sites(move), new_values)
        accepted = log_u < 2 * jnp.real(log_ratio)
        return (accept_unchecked(state, proposed, accepted), n_accepted + accepted), None

    start = (state, jnp.zeros(state.x.shape[0], jnp.int32))
    (state, n_accepted), _ = jax.lax.scan(step, start, (draws.moves, draws.offsets, draws.log_u))
    return state, n_accepted


def _check_local_states(model: AbstractRBM, local_states: Any) -> np.ndarray:
    if local_states is None:
        local_states = model.local_states
    states = np.asarray(local_states)
    if states.ndim != 1 or len(states) < 2 or len(np.unique(states)) != len(states):
        raise ValueError(
            f"local_states: expected at least two distinct values a site can take, got {local_states!r}"
        )
    model.check_values(states, "local_states")
    return states


def _check_pairs(pairs: Any, n_sites: int) -> np.ndarray:
    if isinstance(pairs, Tracer):
        raise TypeError("pairs: expected a concrete (n_pairs, 2) array of site pairs, got a traced value")
    table = np.asarray(pairs)
    if table.ndim != 2 or table.shape[1] != 2 or len(table) == 0 or table.dtype.kind not in "iu":
        raise ValueError(
            f"pairs: expected an integer array of shape (n_pairs, 2), got {table.shape} {table.dtype}"
        )
    check_sites_eager(table, n_sites)
    return table


def metropolis(
    model: AbstractRBM,
    state: LocalState,
    key: PRNGKeyArray,
    *,
    n_sweeps: int,
    sweep_size: int | None = None,
    local_states: Sequence[float] | None = None,
    pairs: Any = None,
    method: Method = "auto",
) -> tuple[Array, LocalState, Array]:
    r"""Metropolis sweeps of local moves for a batch of chains, sampling $|\psi(x)|^2$.

    Each step proposes one move per chain and accepts it with probability
    $\min(1, |\psi(x')/\psi(x)|^2)$. Single-site moves (the default) pick a
    site uniformly and give it one of the *other* local states, uniformly,
    as NetKet's `MetropolisLocal` does. With `pairs`, a step picks one pair
    uniformly and exchanges the values of its two sites, as NetKet's
    `MetropolisExchange` does on a graph's edges (conserving magnetisation or
    particle number). Log-ratios come from the chain's [`eqx_rbm.LocalState`][],
    so a proposal costs $O(k \cdot n_\text{hidden})$.

    Arguments are checked once, here; the steps themselves run without
    run-time checks.

    **Arguments:**

    - `model`: any model of the family.
    - `state`: the chains' [`eqx_rbm.LocalState`][], shape `(n_chains, ...)`
      (from [`eqx_rbm.local_state`][] or a previous call).
    - `key`: a `jax.random` key.
    - `n_sweeps`: the number of sweeps; one sample per chain is kept after each.
    - `sweep_size`: proposals per sweep; default `n_sites`.
    - `local_states`: the values a site takes, for single-site moves; default
      the model's `local_states` if it has them, else spins `(-1, 1)`.
    - `pairs`: an integer `(n_pairs, 2)` array of site pairs, for exchange
      moves; `None` for single-site moves.
    - `method`: `"portable"` (a `lax.scan` of local updates, any backend;
      for real parameters, `log_cosh` and two-valued sites, each step takes
      a logarithm per 64 hidden units (8 in float32) of a product of
      factors exact to a few ulp, instead of one per hidden unit, where a
      bound checked once per call shows the 64 largest entries of each
      kernel row's change (8 in float32) at most 9 in magnitude on average),
      `"fused"` (experimental: one kernel per sweep with the chains on chip,
      for GPUs and the default `log_cosh` activation; on other backends it
      runs the same kernel in Pallas' interpreter, for testing), or
      `"auto"` (the portable path on every backend: the fused kernel stays
      opt-in until a recorded GPU run shows its tests passing and its speed).

    **Returns:**

    `(samples, state, acceptance)`: the configurations after each sweep, shape
    `(n_sweeps, n_chains, n_sites)`; the final state; and each chain's
    acceptance rate, shape `(n_chains,)`.
    """
    n_sweeps = check_positive_int("n_sweeps", n_sweeps)
    check_state(model, state)
    if state.x.ndim != 2:
        raise ValueError(
            "state: expected one batch axis of chains, x of shape (n_chains, n_sites); got x of shape "
            f"{state.x.shape} (reshape the batch into one axis)"
        )
    n_chains, n_sites = state.x.shape
    sweep_size = n_sites if sweep_size is None else check_positive_int("sweep_size", sweep_size)
    if method not in ("auto", "fused", "portable"):
        raise ValueError(f"method: expected 'auto', 'fused' or 'portable', got {method!r}")
    states = _check_local_states(model, local_states)
    table = None if pairs is None else _check_pairs(pairs, n_sites)
    states_array = jnp.asarray(states, state.x.dtype)
    unknown = ~jnp.all(jnp.any(state.x[..., None] == states_array, axis=-1))
    if isinstance(state.x, Tracer):
        guard = guarded_zero(state.theta.dtype, unknown, _unknown_message(states))
        state = LocalState(state.x, state.theta + guard, state.hidden_sum)
    elif bool(unknown):
        raise ValueError(f"state: {_unknown_message(states)}")

    moves = SiteMoves() if table is None else ExchangeMoves(jnp.asarray(table, jnp.int32))
    fused = _use_fused(model, state, moves, method)
    dense = model.dense()
    real = _real_dtype(model, state)
    n_moves = moves.n_moves(n_sites)

    product = not fused and _flip.applies(model, state, len(states))
    rows = _flip.rows(model, dense, states_array, moves, real) if product else None

    def sweep(carry: tuple[LocalState, Array], key: PRNGKeyArray, by_product: bool):
        state, n_accepted = carry
        draws = draw(key, sweep_size, n_chains, n_moves, len(states), real)
        if fused:
            state, accepted = fused_sweep(model, dense, state, draws, states_array, interpret=_interpret())
        elif by_product:
            assert rows is not None
            state, accepted = _flip.sweep(model, rows, state, draws, states_array, moves)
        else:
            state, accepted = portable_sweep(model, dense, state, draws, states_array, moves)
        return (state, n_accepted + accepted), state.x

    def sweeps(by_product: bool):
        start = (state, jnp.zeros(n_chains, jnp.int32))
        body = functools.partial(sweep, by_product=by_product)
        return jax.lax.scan(body, start, jax.random.split(key, n_sweeps))

    if rows is None:
        (state, n_accepted), samples = sweeps(False)
    else:
        # Product steps where the model's rows allow them (see _flip), decided once per call.
        bounded = unbatched_all(_flip.within_bounds(rows))
        (state, n_accepted), samples = jax.lax.cond(bounded, lambda: sweeps(True), lambda: sweeps(False))
    return samples, state, n_accepted / (n_sweeps * sweep_size)


def _unknown_message(states: np.ndarray) -> str:
    return (
        f"expected every value of state.x to be one of local_states={tuple(states.tolist())}; "
        "pass the values the sites take as local_states"
    )


def _interpret() -> bool:
    return jax.default_backend() != "gpu"


def _use_fused(model: AbstractRBM, state: LocalState, moves: AbstractMoves, method: Method) -> bool:
    # "auto" never picks the fused kernel: it has been compiled for CUDA but never run on a GPU,
    # so it is opt-in (method="fused") until a recorded GPU run shows it correct and faster.
    if method != "fused":
        return False
    from ._fused import fused_available

    refusal = fused_refusal(model, isinstance(moves, SiteMoves))
    if refusal is None and not fused_available(
        state.theta.dtype, jax.default_backend(), interpret=_interpret()
    ):
        refusal = f"runs float32/float64/complex64/complex128, got theta dtype {state.theta.dtype}"
    if refusal is not None:
        raise ValueError(f"method: use method='portable' for this model: the fused kernel {refusal}")
    return True


def fused_sweep(
    model: AbstractRBM, dense: Dense, state: LocalState, draws: Draws, states: Array, *, interpret: bool
) -> tuple[LocalState, Array]:
    """One sweep as one fused kernel over the dense view (see `_fused`)."""
    from ._fused import fused_sweeps

    fps = model.features_per_site
    kernel3 = dense.kernel.reshape(model.n_sites, fps, -1)
    visible3 = None if dense.visible_bias is None else dense.visible_bias.reshape(model.n_sites, fps)
    table = model.site_features(states).reshape(len(states), fps)
    classes = jnp.argmax(state.x[..., None] == states, axis=-1).astype(jnp.int32)
    classes, theta, hidden_sum, _, n_accepted = fused_sweeps(
        kernel3,
        visible3,
        table,
        classes,
        state.theta,
        state.hidden_sum,
        draws.moves,
        draws.offsets,
        draws.log_u,
        sweep_size=draws.moves.shape[0],
        interpret=interpret,
    )
    if jnp.iscomplexobj(theta):
        hidden_sum = jnp.sum(model.activation(theta), axis=-1)  # one group: `_use_fused` says so
    return LocalState(states[classes], theta, hidden_sum), n_accepted
