"""eqx_rbm in quantax: the log-amplitude convention, local updates and a ground-state search.

quantax calls its model on one configuration of +-1 entries at a time and reads
the output as the amplitude psi(s), a plain array or a `quantax.utils.LogArray`
(sign and log-magnitude). `eqx_rbm.RBM` returns log psi(s), so it has to be
wrapped; `QuantaxRBM` below returns `exp(log psi)` as a `LogArray` and plugs
eqx_rbm's local updates (`eqx_rbm.local_state` / `eqx_rbm.propose`) into
quantax's reference-model protocol (`quantax.nn.RefModel`), so that Metropolis
moves and local energies cost O(k n_hidden) per configuration instead of a full
evaluation.

Run it as a script to train the wrapped model, the unwrapped model and
quantax's own RBM on a six-site transverse-field Ising ring:
`python docs/recipes/quantax_rbm.py`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import quantax as qtx

import eqx_rbm


class QuantaxRBM(qtx.nn.RefModel):
    """An `eqx_rbm.RBM` as a quantax model: returns psi, not log psi."""

    rbm: eqx_rbm.RBM

    @property
    def holomorphic(self) -> bool:
        # log psi of an RBM is holomorphic in complex parameters, so quantax may
        # take complex derivatives instead of splitting real and imaginary parts.
        return bool(jnp.issubdtype(self.rbm.param_dtype, jnp.complexfloating))

    def __call__(self, s: jax.Array) -> qtx.utils.LogArray:
        return qtx.nn.exp_by_log(self.rbm(s))

    def init_internal(self, s: jax.Array) -> tuple[qtx.utils.LogArray, eqx_rbm.LocalState]:
        # quantax keeps this per configuration between local updates: s, theta and the hidden sum.
        state = eqx_rbm.local_state(self.rbm, s)
        return qtx.nn.exp_by_log(state.log_psi(self.rbm)), state

    @property
    def required_update_modes(self) -> tuple[str, ...]:
        return ("nflips",)

    def ref_forward(
        self,
        s: jax.Array,
        s_old: jax.Array,
        update_mode: dict[str, Any],
        internal: eqx_rbm.LocalState,
        return_update: bool = False,
    ) -> qtx.utils.LogArray | tuple[qtx.utils.LogArray, eqx_rbm.LocalState]:
        # quantax says how many sites changed at most ("nflips"), not which: a
        # stable sort puts the changed sites first. When fewer changed (a chain
        # that has finished its sweep stays in the batch unchanged), the rest
        # are distinct unchanged sites, which contribute exactly zero.
        sites = jnp.argsort(s == s_old, stable=True)[: update_mode["nflips"]]
        delta, proposed = eqx_rbm.propose(self.rbm, internal, sites, s[sites])
        psi = qtx.nn.exp_by_log(internal.log_psi(self.rbm) + delta)
        return (psi, proposed) if return_update else psi


def all_configurations(n_sites: int) -> jax.Array:
    """Every configuration of `n_sites` spins, entries +-1, as int8 (quantax's layout)."""
    bits = (np.arange(2**n_sites)[:, None] >> np.arange(n_sites)[::-1]) & 1
    return jnp.asarray(2 * bits - 1, dtype=jnp.int8)


def quantax_mesh() -> Any:
    """A context in which quantax's sharded functions run even after `import netket`.

    NetKet sets a program-wide mesh (one axis, "S") when it is imported, and
    quantax's `shard_map` refuses to run under a mesh other than its own. On
    exit the previous mesh is back, so import NetKet before entering, not
    inside: the mesh its import sets would be undone.
    """
    return jax.set_mesh(qtx.utils.make_mesh())


def ring(n_sites: int) -> qtx.sites.Sites:
    """quantax's lattice is a program-wide constant: define the ring once, then reuse it."""
    try:
        sites = qtx.get_sites()
    except RuntimeError:
        return qtx.sites.Chain(n_sites)
    if sites.Nsites != n_sites:
        raise ValueError(f"n_sites: quantax already holds a lattice of {sites.Nsites} sites, got {n_sites}")
    return sites


def exact_energy(state: qtx.state.Variational, hamiltonian: qtx.operator.Operator) -> float:
    """<psi|H|psi> / <psi|psi>, summed over every configuration with quantax's local energies."""
    spins = all_configurations(state.Nmodes)
    psi = jnp.asarray(state(spins))
    weights = jnp.abs(psi) ** 2
    local = hamiltonian.Oloc(state, spins)
    return float(jnp.sum(weights * local.real) / jnp.sum(weights))


def tfim_ground_state(
    make_model: Any,
    *,
    n_sites: int = 6,
    h: float = 1.0,
    dtype: Any = jnp.float64,
    steps: int = 40,
    n_samples: int = 256,
    learning_rate: float = 0.05,
    seed: int = 0,
) -> tuple[qtx.state.Variational, float]:
    """Stochastic reconfiguration on the ring H = -sum Z_i Z_{i+1} - h sum X_i.

    `make_model()` is called after quantax's lattice and dtype are set (its own
    models read them). Returns the trained state and its exact energy.
    """
    qtx.set_default_dtype(dtype)
    qtx.set_random_seed(seed)
    ring(n_sites)
    hamiltonian = qtx.operator.Ising(h=h)
    with quantax_mesh():
        state = qtx.state.Variational(make_model())
        sampler = qtx.sampler.LocalFlip(state, n_samples)
        optimiser = qtx.optimizer.SR(state, hamiltonian)
        for _ in range(steps):
            state.update(learning_rate * optimiser.get_step(sampler.sweep()))
        return state, exact_energy(state, hamiltonian)


def main() -> dict[str, float]:
    """Trains four models on the six-site ring and prints their energies."""
    jax.config.update("jax_enable_x64", True)
    n_sites, key = 6, jax.random.key(0)
    real = eqx_rbm.RBM(n_sites, alpha=2, key=key)
    cplx = eqx_rbm.RBM(n_sites, alpha=2, param_dtype=jnp.complex128, key=key)
    runs = {
        "QuantaxRBM(eqx_rbm.RBM), float64": (lambda: QuantaxRBM(real), jnp.float64),
        "QuantaxRBM(eqx_rbm.RBM), complex128": (lambda: QuantaxRBM(cplx), jnp.complex128),
        "eqx_rbm.RBM unwrapped (log psi read as psi)": (lambda: real, jnp.float64),
        "quantax.model.RBM_Dense(12), float64": (
            lambda: qtx.model.RBM_Dense(2 * n_sites, dtype=jnp.float64),
            jnp.float64,
        ),
    }
    energies = {}
    for name, (make_model, dtype) in runs.items():
        energies[name] = tfim_ground_state(make_model, n_sites=n_sites, dtype=dtype)[1]
        print(f"{name:48s} E = {energies[name]:.10f}")
    return energies


if __name__ == "__main__":
    main()
