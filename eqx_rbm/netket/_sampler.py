r"""A NetKet Metropolis sampler whose chains move by eqx_rbm's local updates.

NetKet's `MetropolisSampler` evaluates the whole network on every proposal:
$O(N \cdot n_\text{hidden})$ per chain and step. For a model of the RBM family
a proposal changing $k$ sites costs $O(k \cdot n_\text{hidden})$ given the
chain's $\theta$ ([`eqx_rbm.LocalState`][]). This sampler keeps that state
per chain and runs whole chains through [`eqx_rbm.metropolis`][].

It subclasses `netket.sampler.MetropolisSampler` (written against NetKet
3.23), overriding the methods NetKet documents for subclasses: `_init_state`,
`_reset`, `_sample_chain` and `_sample_next`. $\theta$ is a function of the
parameters, which change at every VMC step, so it is recomputed from the
chains' configurations at the start of every sampling call: one full
evaluation per chain per call.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer
from netket.hilbert import AbstractHilbert
from netket.jax import apply_chunked
from netket.jax.sharding import shard_along_axis
from netket.sampler import MetropolisSampler, MetropolisSamplerState
from netket.utils import struct

from ..models._model import AbstractRBM
from ..sampling._local import LocalState, local_state
from ..sampling._sampler import Method, metropolis
from ._models import rbm_of
from ._rules import ExchangeMoves, SiteMoves, exchange_pairs

NETKET_VERSION = "3.23"
"""The NetKet release whose sampler protocol this module implements."""


class LocalUpdateSamplerState(MetropolisSamplerState):
    r"""NetKet's Metropolis state plus each chain's $\theta$ and $\sum_h f(\theta_h)$.

    The configurations, `rng`, `log_prob` and the acceptance counters are those
    of `netket.sampler.MetropolisSamplerState` (so `acceptance` works as
    usual); `theta` and `hidden_sum` complete the configurations into the
    chains' [`eqx_rbm.LocalState`][]. They hold for the parameters of the last
    sampling call only, and are not saved in checkpoints: the sampler
    recomputes them from the configurations whenever it samples.
    """

    theta: jax.Array = struct.field(sharded=True, serialize=False)
    """$\\theta = \\phi(x) W + b$ of the configurations $x$ of every chain, shape `(n_chains, n_hidden)`."""
    hidden_sum: jax.Array = struct.field(sharded=True, serialize=False)
    """$\\sum_h f(\\theta_h)$ of every chain, shape `(n_chains,)`."""

    def __init__(self, local: LocalState, rng: jax.Array, log_prob: jax.Array):
        self.theta = shard_along_axis(local.theta, axis=0)
        self.hidden_sum = shard_along_axis(local.hidden_sum, axis=0)
        super().__init__(shard_along_axis(local.x, axis=0), rng=rng, rule_state=None, log_prob=log_prob)

    @property
    def local(self) -> LocalState:
        """The chains' [`eqx_rbm.LocalState`][] (valid for the parameters of the last call)."""
        return LocalState(self.σ, self.theta, self.hidden_sum)


def _local_states(hilbert: AbstractHilbert) -> np.ndarray:
    try:
        states = None if not hilbert.is_finite else hilbert.local_states  # pyright: ignore[reportAttributeAccessIssue]
    except (AttributeError, TypeError, ValueError, NotImplementedError):
        states = None
    if states is None:
        raise TypeError(
            "hilbert: expected a finite Hilbert space whose sites share one list of local states "
            f"(nk.hilbert.Spin, Fock, Qubit, ...), got {hilbert}"
        )
    return np.asarray(states)


class LocalUpdateSampler(MetropolisSampler):
    r"""`netket.sampler.MetropolisSampler` for eqx_rbm's models, with local updates.

    Build it with [`eqx_rbm.netket.MetropolisLocal`][] or
    [`eqx_rbm.netket.MetropolisExchange`][]. It samples $|\psi(x)|^2$ as
    NetKet's sampler with the same moves does, and is one: drivers,
    `MCState`, `check_mc_convergence` and `expect_to_precision` use it
    unchanged. Each chain carries its [`eqx_rbm.LocalState`][] through a
    sampling call, so a proposal costs $O(k \cdot n_\text{hidden})$ instead of a
    full evaluation.
    """

    method: Method = struct.field(pytree_node=False, default="auto")
    """How [`eqx_rbm.metropolis`][] runs the sweeps: `"auto"`, `"fused"` or `"portable"`."""

    def __init__(
        self,
        hilbert: AbstractHilbert,
        rule: SiteMoves | ExchangeMoves,
        *,
        sweep_size: int | None = None,
        reset_chains: bool = False,
        n_chains: int | None = None,
        n_chains_per_rank: int | None = None,
        chunk_size: int | None = None,
        machine_pow: int = 2,
        dtype: Any = None,
        method: Method = "auto",
    ):
        """**Arguments:** those of `netket.sampler.MetropolisSampler`, and

        - `rule`: the moves, `SiteMoves()` or `ExchangeMoves(pairs)` from this package.
        - `method`: how the sweeps run, as for [`eqx_rbm.metropolis`][].
        """
        if not isinstance(rule, SiteMoves | ExchangeMoves):
            raise TypeError(
                "rule: expected the moves of eqx_rbm.netket (use eqx_rbm.netket.MetropolisLocal or "
                f"MetropolisExchange), got {rule!r}"
            )
        if method not in ("auto", "fused", "portable"):
            raise ValueError(f"method: expected 'auto', 'fused' or 'portable', got {method!r}")
        _check_power(machine_pow)
        _local_states(hilbert)
        if isinstance(rule, SiteMoves) and getattr(hilbert, "constrained", False):
            raise ValueError(
                f"hilbert: single-site moves leave the constrained space of {hilbert}; use "
                "eqx_rbm.netket.MetropolisExchange, whose moves conserve the constraint of a fixed "
                "magnetisation or particle number"
            )
        self.method = method
        super().__init__(hilbert, rule, **netket_settings(locals()))

    def _local_state(self, model: AbstractRBM, x: jax.Array) -> LocalState:
        # The only full evaluations of a sampling call; chunked as NetKet chunks its own.
        if self.chunk_size is None or self.chunk_size >= x.shape[0]:
            return local_state(model, x)
        return apply_chunked(partial(local_state, model), chunk_size=self.chunk_size)(x)

    def _random_configurations(self, key: jax.Array) -> jax.Array:
        # Uniform in the Hilbert space (within its constraint), as NetKet's rules start their chains.
        return self.hilbert.random_state(key, size=self.n_batches, dtype=self.dtype)  # pyright: ignore[reportAttributeAccessIssue]

    def _log_prob(self, model: AbstractRBM, local: LocalState) -> jax.Array:
        return self.machine_pow * jnp.real(local.log_psi(model))

    @partial(jax.jit, static_argnums=1)
    def _init_state(self, machine: Any, parameters: Any, key: jax.Array) -> LocalUpdateSamplerState:
        model = rbm_of(machine, parameters)
        key_state, key_x = jax.random.split(key)
        # Valid configurations from the start, also with reset_chains (which draws new ones at reset).
        x = shard_along_axis(self._random_configurations(key_x), axis=0)
        local = self._local_state(model, x)
        return LocalUpdateSamplerState(local, key_state, self._log_prob(model, local))

    @partial(jax.jit, static_argnums=1)
    def _reset(
        self, machine: Any, parameters: Any, state: LocalUpdateSamplerState
    ) -> LocalUpdateSamplerState:
        model = rbm_of(machine, parameters)
        rng, x = state.rng, state.σ
        if self.reset_chains:
            rng, key = jax.random.split(rng)
            x = self._random_configurations(key)
        local = self._local_state(model, shard_along_axis(x, axis=0))
        return state.replace(
            σ=local.x,
            theta=local.theta,
            hidden_sum=local.hidden_sum,
            log_prob=self._log_prob(model, local),
            rng=rng,
            n_steps_proc=jnp.zeros_like(state.n_steps_proc),
            n_accepted_proc=jnp.zeros_like(state.n_accepted_proc),
        )

    def _sample_chain(  # pyright: ignore[reportIncompatibleVariableOverride]
        self,
        machine: Any,
        parameters: Any,
        state: LocalUpdateSamplerState,
        chain_length: int,
        return_log_probabilities: bool = False,
    ) -> Any:
        _check_power(self.machine_pow)
        return self._run(machine, parameters, state, chain_length, return_log_probabilities)

    def _sample_next(self, machine: Any, parameters: Any, state: LocalUpdateSamplerState) -> Any:
        _check_power(self.machine_pow)
        _, state = self._run(machine, parameters, state, 1, False)
        return state, (state.σ, state.log_prob)

    @partial(jax.jit, static_argnames=("machine", "chain_length", "return_log_probabilities"))
    def _run(
        self,
        machine: Any,
        parameters: Any,
        state: LocalUpdateSamplerState,
        chain_length: int,
        return_log_probabilities: bool,
    ) -> Any:
        model = rbm_of(machine, parameters)
        # theta belongs to the parameters it was computed with, and these change at every VMC step.
        local = self._local_state(model, state.σ)
        rng, key = jax.random.split(state.rng)
        pairs = np.asarray(self.rule.pairs) if isinstance(self.rule, ExchangeMoves) else None
        samples, local, acceptance = metropolis(
            model,
            local,
            key,
            n_sweeps=chain_length,
            sweep_size=self.sweep_size,
            local_states=tuple(_local_states(self.hilbert).tolist()),
            pairs=pairs,
            method=self.method,
        )
        n_moves = chain_length * self.sweep_size
        n_accepted = jnp.rint(acceptance * n_moves).astype(state.n_accepted_proc.dtype)
        state = state.replace(
            σ=local.x,
            theta=local.theta,
            hidden_sum=local.hidden_sum,
            log_prob=self._log_prob(model, local),
            rng=rng,
            n_steps_proc=state.n_steps_proc + n_moves * self.n_batches,
            n_accepted_proc=state.n_accepted_proc + n_accepted,
        )
        # NetKet's layout: (n_chains, chain_length, n_sites).
        samples = jnp.swapaxes(samples, 0, 1)
        if not return_log_probabilities:
            return samples, state
        flat = samples.reshape(-1, samples.shape[-1])
        log_psi = apply_chunked(model, chunk_size=self.chunk_size)(flat)
        log_probs = (self.machine_pow * jnp.real(log_psi)).reshape(samples.shape[:2])
        return (samples, log_probs), state

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f",\n  method = {self.method!r}\n)"

    def __str__(self) -> str:
        return super().__str__()[:-1] + f", method = {self.method!r})"


NETKET_SETTINGS: tuple[str, ...] = (
    *("sweep_size", "reset_chains", "n_chains", "n_chains_per_rank"),
    *("chunk_size", "machine_pow", "dtype"),
)
"""The keywords of `netket.sampler.MetropolisSampler` that every sampler here takes and passes on."""


def netket_settings(arguments: dict[str, Any]) -> dict[str, Any]:
    """The `NETKET_SETTINGS` among a caller's `locals()`: passed on once, not keyword by keyword."""
    return {name: arguments[name] for name in NETKET_SETTINGS}


def _check_power(machine_pow: Any) -> None:
    if isinstance(machine_pow, Tracer):
        return  # a sampler traced through jax.jit as a whole: checked when it was built
    if float(np.asarray(machine_pow)) != 2:
        raise ValueError(
            "machine_pow: eqx_rbm.netket's samplers sample |psi|^2 (machine_pow=2), got "
            f"{np.asarray(machine_pow).item()}; use NetKet's own samplers for other powers"
        )


def MetropolisLocal(
    hilbert: AbstractHilbert,
    *,
    n_chains: int | None = None,
    n_chains_per_rank: int | None = None,
    sweep_size: int | None = None,
    reset_chains: bool = False,
    chunk_size: int | None = None,
    machine_pow: int = 2,
    dtype: Any = None,
    method: Method = "auto",
) -> LocalUpdateSampler:
    """`nk.sampler.MetropolisLocal` for eqx_rbm's models: single-site moves by local updates.

    A step picks a site uniformly and gives it one of its other local states,
    uniformly (a spin flip for spins 1/2), as NetKet's `MetropolisLocal` does.

    **Arguments:** NetKet's, with its defaults, and `method`:

    - `hilbert`: a finite, unconstrained Hilbert space with one list of local
      states (`nk.hilbert.Spin`, `Fock`, `Qubit`, ...).
    - `n_chains`: the number of chains over all devices, or `n_chains_per_rank`
      per device (default 16 per device).
    - `sweep_size`: proposals between two kept samples (default `hilbert.size`).
    - `reset_chains`: draw new random configurations at every reset (every
      `vstate.sample()`), as NetKet does (default `False`).
    - `chunk_size`: at most this many configurations in a full evaluation
      (the evaluation that rebuilds the chains' $\\theta$); the local updates
      themselves need $O(n_\\text{chains} \\cdot n_\\text{hidden})$ memory.
    - `machine_pow`: must be 2: the sampler samples $|\\psi|^2$.
    - `dtype`: the dtype of the samples (default that of the local states).
    - `method`: how [`eqx_rbm.metropolis`][] runs the sweeps (`"auto"`).

    **Returns:**

    An [`eqx_rbm.netket.LocalUpdateSampler`][], a `netket.sampler.MetropolisSampler`.
    """
    return LocalUpdateSampler(hilbert, SiteMoves(), method=method, **netket_settings(locals()))


def MetropolisExchange(
    hilbert: AbstractHilbert,
    *,
    clusters: Any = None,
    graph: Any = None,
    d_max: int = 1,
    probabilities: Any = None,
    n_chains: int | None = None,
    n_chains_per_rank: int | None = None,
    sweep_size: int | None = None,
    reset_chains: bool = False,
    chunk_size: int | None = None,
    machine_pow: int = 2,
    dtype: Any = None,
    method: Method = "auto",
) -> LocalUpdateSampler:
    """`nk.sampler.MetropolisExchange` for eqx_rbm's models: exchange moves by local updates.

    A step picks one pair of sites uniformly and exchanges their values, which
    conserves the magnetisation or the particle number (use it with
    `nk.hilbert.Spin(..., total_sz=0)` or a `Fock` space with `n_particles`).

    **Arguments:** NetKet's, with its defaults, and `method`:

    - `hilbert`: a finite Hilbert space with one list of local states,
      constrained or not.
    - `clusters`: the pairs of sites to exchange, `[(i, j), ...]`; or
    - `graph`: a NetKet graph: its pairs of nodes at distance `1..d_max`
      (with `d_max=1`, its edges).
    - `d_max`: see `graph`.
    - `probabilities`: must be `None`: the pairs are chosen uniformly.
    - the other arguments as for [`eqx_rbm.netket.MetropolisLocal`][].

    **Returns:**

    An [`eqx_rbm.netket.LocalUpdateSampler`][], a `netket.sampler.MetropolisSampler`.
    """
    if probabilities is not None:
        raise ValueError(
            "probabilities: eqx_rbm.netket.MetropolisExchange picks its pairs uniformly, expected None, got "
            f"{probabilities!r} (list a pair several times in clusters to propose it more often)"
        )
    pairs = exchange_pairs(hilbert.size, clusters=clusters, graph=graph, d_max=d_max)
    return LocalUpdateSampler(hilbert, ExchangeMoves(pairs), method=method, **netket_settings(locals()))
