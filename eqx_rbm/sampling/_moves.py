"""The two sets of local moves: a single site takes another value, or two sites exchange theirs.

A move set numbers its moves `0, ..., n_moves - 1` and says, for a batch of
chosen moves, which sites they change, to which values, and how the kernel rows
of those sites combine into the change of the pre-activations. Every sweep
implementation (the portable loop, the product form, the fused kernel), the
local energies and `eqx_rbm.netket`'s transition rules take their moves from
here, so that each path is written once for both sets.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Int


class AbstractMoves(eqx.Module, strict=True):
    """A set of local moves, numbered `0, ..., n_moves - 1`, each changing `k` sites."""

    @abc.abstractmethod
    def n_moves(self, n_sites: int) -> int:
        """How many moves there are on `n_sites` sites (a sampler picks one uniformly)."""

    @abc.abstractmethod
    def sites(self, move: Int[Array, " n"]) -> Int[Array, "n k"]:
        """The sites each move changes."""

    @abc.abstractmethod
    def new_values(self, x: Array, move: Int[Array, " n"], offset: Int[Array, " n"], states: Array) -> Array:
        """The values the changed sites take, shape `(n, k)`, for chains `x` of shape `(n, n_sites)`.

        `offset`, in `[1, n_states)`, is the draw of a single-site move: the
        site goes from the `c`-th local state to the `(c + offset) % n_states`-th.
        """

    @abc.abstractmethod
    def rows(self, table: Array) -> Array:
        """Per-site rows `(n_sites, ...)` combined per move: `(n_moves, ...)`.

        With `table` a kernel in site-major form, row `m` times the feature
        change of a two-valued move `m` (`sigma`) is that move's change of the
        pre-activations.
        """

    @abc.abstractmethod
    def sigma(self, classes: Int[Array, "n n_sites"], move: Int[Array, " n"]) -> Int[Array, " n"]:
        """For two-valued sites given by class (0 or 1): each move's sign, -1, 0 or +1.

        The move changes the features by `sigma` times the difference of the two
        local states' features along `rows`; 0 is a move that changes nothing.
        """

    @abc.abstractmethod
    def moved(self, classes: Int[Array, "n n_sites"], move: Int[Array, " n"]) -> Int[Array, "n n_sites"]:
        """The classes of two-valued sites after each chain's move."""


class SiteMoves(AbstractMoves, strict=True):
    """A site takes one of its other local states (NetKet's `MetropolisLocal`); `n_sites` moves."""

    def n_moves(self, n_sites: int) -> int:
        return n_sites

    def sites(self, move: Int[Array, " n"]) -> Int[Array, "n k"]:
        return move[:, None]

    def new_values(self, x: Array, move: Int[Array, " n"], offset: Int[Array, " n"], states: Array) -> Array:
        old = x[jnp.arange(x.shape[0]), move]
        old_class = jnp.argmax(old[:, None] == states, axis=-1)
        return states[(old_class + offset) % states.shape[0]][:, None]

    def rows(self, table: Array) -> Array:
        return table

    def sigma(self, classes: Int[Array, "n n_sites"], move: Int[Array, " n"]) -> Int[Array, " n"]:
        return 1 - 2 * classes[jnp.arange(classes.shape[0]), move]

    def moved(self, classes: Int[Array, "n n_sites"], move: Int[Array, " n"]) -> Int[Array, "n n_sites"]:
        return jnp.where(jnp.arange(classes.shape[-1]) == move[:, None], 1 - classes, classes)


class ExchangeMoves(AbstractMoves, strict=True):
    """The two sites of a pair exchange their values (NetKet's `MetropolisExchange`); one move per pair."""

    pairs: Int[Array, "n_pairs 2"]
    """Pairs of distinct sites, checked by whoever builds the moves."""

    def n_moves(self, n_sites: int) -> int:
        return self.pairs.shape[0]

    def sites(self, move: Int[Array, " n"]) -> Int[Array, "n k"]:
        return self.pairs[move]

    def new_values(self, x: Array, move: Int[Array, " n"], offset: Int[Array, " n"], states: Array) -> Array:
        return jnp.take_along_axis(x, self.pairs[move][:, ::-1], axis=-1)

    def rows(self, table: Array) -> Array:
        return table[self.pairs[:, 0]] - table[self.pairs[:, 1]]

    def sigma(self, classes: Int[Array, "n n_sites"], move: Int[Array, " n"]) -> Int[Array, " n"]:
        sites = self.pairs[move]
        chains = jnp.arange(classes.shape[0])
        return classes[chains, sites[:, 1]] - classes[chains, sites[:, 0]]

    def moved(self, classes: Int[Array, "n n_sites"], move: Int[Array, " n"]) -> Int[Array, "n n_sites"]:
        sites = self.pairs[move]
        positions = jnp.arange(classes.shape[-1])
        first, second = (jnp.take_along_axis(classes, sites[:, j : j + 1], axis=-1) for j in (0, 1))
        out = jnp.where(positions == sites[:, :1], second, classes)
        return jnp.where(positions == sites[:, 1:], first, out)
