"""eqx_rbm in jVMC: the Flax twin as jVMC's network, with jVMC's 0/1 inputs.

jVMC calls its network on one configuration at a time (no batch axis; the
twins accept any number of batch axes, none included) holding occupations
n = 0 / 1, not the spins s = -1 / +1 that NetKet and eqx_rbm use. For an RBM
the two differ only in how the parameters are read, since s = 2n - 1:

    theta = s W + b = n (2 W) + (b - sum_i W_i),    s . a = n . (2 a) - sum_i a_i,

so the twin fed 0/1 is still an RBM, but its parameters are not those of the
same state in NetKet, and it starts from a different point: near zero, the
spin RBM is close to the symmetric superposition, the 0/1 RBM is not.
`SpinRBM` maps n to 2n - 1 in front of the twin, which keeps NetKet's
parameters and converges much faster. jVMC detects complex holomorphic
networks itself (a complex twin is one) and requires a single parameter
dtype, which the twins satisfy.

jVMC pins an older JAX than eqx_rbm's test environment, so this recipe runs in
a virtual environment of its own (`pip install jvmc mpich` and this package);
jVMC is imported inside the functions that need it.

Run it as a script: `python docs/recipes/jvmc_rbm.py`.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp

import eqx_rbm
import eqx_rbm.linen


class SpinRBM(nn.Module):
    """`eqx_rbm.linen.RBM` on the spins 2n - 1 of jVMC's occupations n."""

    alpha: float | int = 2
    param_dtype: Any = jnp.complex128

    @nn.compact
    def __call__(self, n: jax.Array) -> jax.Array:
        return eqx_rbm.linen.RBM(alpha=self.alpha, param_dtype=self.param_dtype)(2 * n - 1)


def occupation_rbm(model: eqx_rbm.RBM) -> eqx_rbm.RBM:
    """The RBM on n = (s + 1) / 2 with log psi'(n) = log psi(2n - 1) + sum_i a_i (a constant)."""
    hidden_bias = None if model.hidden_bias is None else model.hidden_bias - model.kernel.sum(axis=0)
    visible_bias = None if model.visible_bias is None else 2 * model.visible_bias
    return eqx.tree_at(
        lambda m: (m.kernel, m.hidden_bias, m.visible_bias),
        model,
        (2 * model.kernel, hidden_bias, visible_bias),
        is_leaf=lambda leaf: leaf is None,
    )


def tfim(n_sites: int, h: float = 1.0) -> Any:
    """jVMC's H = -sum Z_i Z_{i+1} - h sum X_i on a ring (jVMC's Sz and Sx are Pauli matrices)."""
    import jVMC.operator as op

    hamiltonian = op.BranchFreeOperator()
    for i in range(n_sites):
        hamiltonian.add(op.scal_opstr(-1.0, (op.Sz(i), op.Sz((i + 1) % n_sites))))
        hamiltonian.add(op.scal_opstr(-h, (op.Sx(i),)))
    return hamiltonian


def ground_state(
    net: nn.Module,
    *,
    n_sites: int = 6,
    h: float = 1.0,
    symmetries: tuple[str, ...] = (),
    steps: int = 60,
    time_step: float = 0.05,
    seed: int = 1234,
) -> tuple[Any, float]:
    """Imaginary-time TDVP (Euler steps) with exact sums over all 2**n_sites configurations.

    `symmetries` (e.g. `("translation", "reflection", "spinflip")`) makes jVMC
    average the network over that orbit (`orbit=` of `jVMC.vqs.NQS`).
    Returns the state and its energy.
    """
    import jVMC

    orbit = jVMC.util.symmetries.get_orbit_1D(n_sites, *symmetries) if symmetries else None
    psi = jVMC.vqs.NQS(net, seed=seed, orbit=orbit)
    hamiltonian = tfim(n_sites, h)
    sampler = jVMC.sampler.ExactSampler(psi, (n_sites,))
    tdvp = jVMC.util.tdvp.TDVP(sampler, rhsPrefactor=1.0, pinvTol=1e-8, diagonalShift=1e-2, makeReal="real")
    stepper = jVMC.util.stepper.Euler(timeStep=time_step)
    for _ in range(steps):
        update, _ = stepper.step(
            0, tdvp, psi.get_parameters(), hamiltonian=hamiltonian, psi=psi, numSamples=None
        )
        psi.set_parameters(update)
    return psi, exact_energy(psi, sampler, hamiltonian)


def exact_energy(psi: Any, sampler: Any, hamiltonian: Any) -> float:
    """<psi|H|psi> / <psi|psi> from jVMC's local energies on every configuration.

    (TDVP's `ElocMean0` is that of the parameters before the last step.)
    """
    configs, log_psi, weights = sampler.sample()
    local = hamiltonian.get_O_loc(configs, psi, log_psi, 0.0)
    return float(jnp.real(jnp.sum(weights * local)))


def main() -> dict[str, float]:
    """Three ground-state searches on the six-site ring; prints their energies."""
    jax.config.update("jax_enable_x64", True)
    runs = {
        "SpinRBM (twin on 2n - 1), complex128": (SpinRBM(), ()),
        "eqx_rbm.linen.RBM fed 0/1, complex128": (eqx_rbm.linen.RBM(alpha=2, param_dtype=jnp.complex128), ()),
        "SpinRBM, orbit=translation+reflection+spinflip": (
            SpinRBM(),
            ("translation", "reflection", "spinflip"),
        ),
    }
    energies = {}
    for name, (net, symmetries) in runs.items():
        energies[name] = ground_state(net, symmetries=symmetries)[1]
        print(f"{name:48s} E = {energies[name]:.10f}")
    return energies


if __name__ == "__main__":
    main()
