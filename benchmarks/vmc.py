"""One variational Monte Carlo iteration, eqx_rbm's and NetKet's (`nk.driver.VMC_SR`), phase by phase:
the transverse-field Ising model with an RBM, or the Marshall-rotated Heisenberg model with an RBMSymm
(the notes of the measures below). eqx_rbm's step is written from the library's public API
(docs/derivatives.md)."""

import functools
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import eqx_rbm
from eqx_rbm.sampling._log_ratios import _exchange_log_ratios

from .timing import Candidate, measures

FIELD, SHIFT, LEARNING_RATE, BURN_IN = 1.0, 1e-2, 0.05, 4


@functools.partial(jax.jit, static_argnames=("heisenberg", "product"))
def local_energies(model, x, bonds, heisenberg=False, product=True):
    """E_loc(x) over the bonds <ij>: of the TFIM, -sum x_i x_j - h sum_i psi(x, spin i flipped) / psi(x);
    `heisenberg`: of H = sum S_i.S_j, S = sigma / 2, Marshall-rotated, per bond x_i x_j / 4 and
    -1/2 psi(x, i and j exchanged) / psi(x) if x_i != x_j, with `product=False` as sums of activations."""
    state, zz = eqx_rbm.local_state(model, x), x[..., bonds[:, 0]] * x[..., bonds[:, 1]]
    if heisenberg:
        ratios = _exchange_log_ratios(model, state, bonds, product=product)
        return jnp.sum(zz / 4 - (1 - zz) / 4 * jnp.exp(ratios), axis=-1)
    flips = jnp.exp(eqx_rbm.site_log_ratios(model, state, -x))
    return -jnp.sum(zz, axis=-1) - FIELD * jnp.sum(flips, axis=-1)


sgd = jax.jit(lambda m, direction: jax.tree.map(lambda p, d: p - LEARNING_RATE * d, m, direction))


def ours(dtype: str, alpha: int, samples: int, chains: int, bonds: np.ndarray, symmetries: Any = None):
    """eqx_rbm's iteration, and its phases on samples drawn once: the TFIM with an RBM, or with
    `symmetries` (a permutation group) the Heisenberg model with an RBMSymm."""
    k_model, k_chains, key = jax.random.split(jax.random.key(0), 3)
    n_sites, heisenberg = int(bonds.max()) + 1, symmetries is not None  # every site is on a bond
    n_sweeps = BURN_IN + samples // chains
    kw = {"alpha": alpha, "param_dtype": jnp.dtype(dtype), "key": k_model}
    if heisenberg:  # zero magnetisation: each chain a permutation of as many up as down spins
        model, x = eqx_rbm.RBMSymm(symmetries, **kw), jnp.arange(n_sites) % 2 * 2.0 - 1
        x = jax.random.permutation(k_chains, jnp.tile(x, (chains, 1)), axis=1, independent=True)
    else:
        model = eqx_rbm.RBM(n_sites, **kw)
        x = jax.random.choice(k_chains, jnp.array([-1.0, 1.0]), (chains, n_sites))

    @jax.jit
    def draw(model, chains, key):
        """The chains after the iteration, and its samples; the bonds, concrete, are the exchange pairs."""
        state = eqx_rbm.local_state(model, chains)
        pairs = bonds if heisenberg else None
        history, state, _ = eqx_rbm.metropolis(model, state, key, n_sweeps=n_sweeps, pairs=pairs)
        return state.x, history[BURN_IN:].reshape(-1, n_sites)

    def step(model, chains, key):
        """One iteration: the new model and chains, and the energy estimate."""
        chains, x = draw(model, chains, key)
        e_loc = local_energies(model, x, bonds, heisenberg)
        return sgd(model, sr(model, x, e_loc)), chains, jnp.mean(e_loc).real

    sr, drawn = functools.partial(eqx_rbm.sr_gradient, diag_shift=jnp.asarray(SHIFT)), draw(model, x, key)[1]
    return {
        "eqx_rbm": Candidate(step, (model, x, key)),
        "eqx_rbm sample": Candidate(draw, (model, x, key)),
        "eqx_rbm local energies": Candidate(local_energies, (model, drawn, bonds, heisenberg)),
        "eqx_rbm SR": Candidate(sr, (model, drawn, local_energies(model, drawn, bonds, heisenberg))),
    }


def tfim(graph: Any) -> Any:
    """NetKet's Ising is -h sum s^x + J sum s^z s^z: J = -1 is the ferromagnetic model above."""
    import netket as nk  # heavy: only when timing it

    return nk.operator.IsingJax(nk.hilbert.Spin(0.5, graph.n_nodes), graph, h=FIELD, J=-1.0)


def netket_driver(hamiltonian, model, sampler, samples: int, cg=False, discard: int | None = BURN_IN):
    """VMC_SR of `model`, or with `cg` VMC with SR by conjugate gradients; `discard` sweeps per chain."""
    import netket as nk

    optimiser = nk.optimizer.Sgd(LEARNING_RATE)
    state = nk.vqs.MCState(
        sampler, model, n_samples=samples, n_discard_per_chain=discard, seed=0, sampler_seed=1
    )
    if not cg:
        return nk.driver.VMC_SR(hamiltonian, optimiser, diag_shift=SHIFT, variational_state=state)
    holomorphic = jnp.issubdtype(model.param_dtype, jnp.complexfloating) or None
    sr = nk.optimizer.SR(diag_shift=SHIFT, holomorphic=holomorphic)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its advice to use VMC_SR instead, the main candidate
        return nk.driver.VMC(hamiltonian, optimiser, variational_state=state, preconditioner=sr)


def iteration(driver: Any) -> Any:
    driver.run(1, show_progress=False)
    return driver.state.parameters


@measures(
    "VMC iteration",
    ratios=(
        "netket VMC+SR/eqx_rbm",
        "netket sample/eqx_rbm sample",
        "netket local energies/eqx_rbm local energies",
        "netket energy and SR/eqx_rbm local energies + eqx_rbm SR",
    ),
    notes="TFIM chain, h=1; one sweep of L flips per sample, 4 discarded sweeps, SR shift 1e-2, SGD 0.05. "
    "eqx_rbm: benchmarks/vmc.py's step (eqx_rbm.metropolis, site_log_ratios, eqx_rbm.sr_gradient). "
    "netket: VMC_SR.run(1); VMC+SR: VMC with nk.optimizer.SR (conjugate gradients); its phases "
    "MCState.sample, MCState.local_estimators and VMC_SR.compute_loss_and_update on drawn samples "
    "(local energies and SR together: NetKet has no public entry point for the SR solve alone)",
)
def vmc(dtype: str, L: int, alpha: int, samples: int, chains: int, lattice: str = "chain"):
    import netket as nk

    square, kw = lattice == "square", {"alpha": alpha, "param_dtype": jnp.dtype(dtype)}
    if square:  # in S.S units, NetKet's Pauli matrices being 2 S
        graph = nk.graph.Square(L, pbc=True)
        hilbert, symmetries = nk.hilbert.Spin(0.5, graph.n_nodes, total_sz=0), graph.translation_group()
        hamiltonian = nk.operator.Heisenberg(hilbert, graph, J=0.25, sign_rule=True)
        model = nk.models.RBMSymm(symmetries=symmetries, **kw)
        sampler = nk.sampler.MetropolisExchange(hilbert, graph=graph, n_chains=chains)
    else:
        graph, symmetries = nk.graph.Chain(L, pbc=True), None
        hamiltonian, model = tfim(graph), nk.models.RBM(**kw)
        sampler = nk.sampler.MetropolisLocal(hamiltonian.hilbert, n_chains=chains)
    out = ours(dtype, alpha, samples, chains, np.asarray(graph.edges()), symmetries)
    drivers = [netket_driver(hamiltonian, model, sampler, samples, cg) for cg in (False, not square, False)]
    drivers[2].state.sample()  # the phases' own: an iteration's parameter update would discard the samples
    out |= {
        "netket": Candidate(iteration, (drivers[0],)),
        "netket sample": Candidate(drivers[2].state.sample),
        "netket local energies": Candidate(drivers[2].state.local_estimators, (hamiltonian,)),
        "netket energy and SR": Candidate(drivers[2].compute_loss_and_update),
    }
    if square:  # eqx_rbm 0.2.1's sums of activations beside; NetKet's VMC+SR would add minutes a round
        summed = (*out["eqx_rbm local energies"].args[:3], True, False)
        out["eqx_rbm sum local energies"] = Candidate(local_energies, summed)
    else:
        out["netket VMC+SR"] = Candidate(iteration, (drivers[1],))
    return out


@measures(
    "NetKet sampler",
    ratios=("netket VMC_SR/eqx_rbm VMC_SR",),
    notes="MCState.sample() with eqx_rbm.netket.MetropolisLocal (eqx_rbm) against nk.sampler.MetropolisLocal "
    "(netket), the eqx_rbm.linen.RBM twin in both, TFIM chain; VMC_SR: one VMC_SR.run(1) with each sampler",
)
def netket_sampler(dtype: str, L: int, alpha: int, samples: int, chains: int) -> dict[str, Candidate]:
    import netket as nk

    import eqx_rbm.linen
    import eqx_rbm.netket

    hamiltonian = tfim(nk.graph.Chain(L, pbc=True))
    model, out = eqx_rbm.linen.RBM(alpha=alpha, param_dtype=jnp.dtype(dtype)), {}
    for name, kind in (("eqx_rbm", eqx_rbm.netket.MetropolisLocal), ("netket", nk.sampler.MetropolisLocal)):
        sampler = kind(hamiltonian.hilbert, n_chains=chains)
        sampled, driven = (
            netket_driver(hamiltonian, model, sampler, samples, discard=None) for _ in range(2)
        )
        out[name], out[f"{name} VMC_SR"] = Candidate(sampled.state.sample), Candidate(iteration, (driven,))
    return out
