"""The two move sets of `eqx_rbm.metropolis`, as NetKet transition rules.

`LocalUpdateSampler` runs its moves through `eqx_rbm.metropolis` and never
calls `transition`; the rules still propose the same moves through NetKet's
generic interface, so that a rule on its own is a valid `MetropolisRule`
(and its settings print with the sampler).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from netket.sampler.rules import MetropolisRule
from netket.utils import struct

from ..sampling import _moves as core


class SiteMoves(MetropolisRule):
    """A uniformly chosen site takes one of its *other* local states, uniformly.

    The moves of NetKet's `MetropolisLocal`: a spin flip for spins 1/2.
    """

    def transition(self, sampler: Any, machine: Any, params: Any, sampler_state: Any, key: Any, σ: Any):
        σ = jnp.asarray(σ)
        states = jnp.asarray(sampler.hilbert.local_states, σ.dtype)
        k_site, k_offset = jax.random.split(key)
        n_chains, n_sites = σ.shape
        move = jax.random.randint(k_site, (n_chains,), 0, n_sites)
        # An offset in [1, n_states) never gives the current state back.
        offset = jax.random.randint(k_offset, (n_chains,), 1, max(len(states), 2))
        return _moved(σ, core.SiteMoves(), move, offset, states), None

    def __repr__(self) -> str:
        return "SiteMoves()"


class ExchangeMoves(MetropolisRule):
    """A uniformly chosen pair of sites exchanges its values.

    Pairs with equal values are proposed too (an accepted no-op), so the
    proposal is symmetric and needs no correction; NetKet's `ExchangeRule`
    skips them and corrects for it. Both sample the same distribution.
    """

    pairs: tuple[tuple[int, int], ...] = struct.field(pytree_node=False)
    """The site pairs, static: the sampler's compiled code is specialised on them."""

    def __init__(self, pairs: tuple[tuple[int, int], ...]):
        self.pairs = pairs

    def transition(self, sampler: Any, machine: Any, params: Any, sampler_state: Any, key: Any, σ: Any):
        σ = jnp.asarray(σ)
        moves = self.moves()
        move = jax.random.randint(key, (σ.shape[0],), 0, len(self.pairs))
        return _moved(σ, moves, move, jnp.ones_like(move), jnp.asarray([], σ.dtype)), None

    def moves(self) -> core.ExchangeMoves:
        """These moves as `eqx_rbm.metropolis` runs them."""
        return core.ExchangeMoves(jnp.asarray(self.pairs, jnp.int32))

    def __repr__(self) -> str:
        return f"ExchangeMoves(# of pairs: {len(self.pairs)})"


def _moved(σ: jax.Array, moves: core.AbstractMoves, move: jax.Array, offset: jax.Array, states: jax.Array):
    """The configurations after each chain's move (one move per chain)."""
    sites = moves.sites(move)
    values = moves.new_values(σ, move, offset, states)
    chains = jnp.arange(σ.shape[0])[:, None]
    return σ.at[chains, sites].set(values)


def exchange_pairs(
    n_sites: int, *, clusters: Sequence[Sequence[int]] | None, graph: Any, d_max: int
) -> tuple[tuple[int, int], ...]:
    """The site pairs of `MetropolisExchange(clusters=...)` or `(graph=..., d_max=...)`.

    **Arguments:**

    - `n_sites`: the size of the Hilbert space.
    - `clusters`: explicit pairs, or `None`.
    - `graph`: a NetKet graph whose pairs at distance `1..d_max` are exchanged, or `None`.
    - `d_max`: the largest graph distance of a pair.

    **Returns:**

    The pairs as a tuple of `(i, j)` tuples, each a valid distinct pair of sites.
    """
    if (clusters is None) == (graph is None):
        raise ValueError(
            "MetropolisExchange: pass exactly one of clusters (a list of site pairs) or graph (a NetKet "
            f"graph whose edges are exchanged); got clusters={clusters!r} and graph={graph!r}"
        )
    if graph is not None:
        if isinstance(d_max, bool) or not isinstance(d_max, int | np.integer) or d_max < 1:
            raise ValueError(f"d_max: expected a positive int, got {d_max!r}")
        if d_max == 1:
            table = np.sort(np.asarray(graph.edges(), dtype=np.int64).reshape(-1, 2), axis=1)
        else:
            distances = np.asarray(graph.distances())
            table = np.argwhere((distances > 0) & (distances <= d_max))
        table = np.unique(table[table[:, 0] < table[:, 1]], axis=0)
        name = "graph"
    else:
        table = np.asarray(clusters)
        name = "clusters"
    if table.ndim != 2 or table.shape[1] != 2 or len(table) == 0 or table.dtype.kind not in "iu":
        raise ValueError(
            f"{name}: expected site pairs, an integer array of shape (n_pairs, 2) with n_pairs >= 1; got "
            f"shape {table.shape} and dtype {table.dtype}"
        )
    bad = (table < 0) | (table >= n_sites)
    if bad.any() or np.any(table[:, 0] == table[:, 1]):
        row = int(np.argwhere(bad.any(axis=1) | (table[:, 0] == table[:, 1]))[0, 0])
        raise ValueError(
            f"{name}: expected pairs of two distinct sites in [0, {n_sites}), got {table[row].tolist()} "
            f"at index {row}"
        )
    return tuple((int(i), int(j)) for i, j in table)
