"""One variational Monte Carlo iteration, eqx_rbm's and NetKet's (`nk.driver.VMC_SR`).

The transverse-field Ising chain, H = -sum_i s^z_i s^z_(i+1) - h sum_i s^x_i, with an RBM; or with
`lattice="square"` the Marshall-rotated Heisenberg model on an L x L torus with an RBMSymm over its
translations and exchanges over its bonds at zero magnetisation. One sample per sweep after a few
discarded sweeps, then a stochastic reconfiguration (SR) step with a fixed shift and plain SGD.
eqx_rbm's step is written from the library's public API (docs/derivatives.md).
"""

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


def flips(model: Any, x: Any) -> tuple[Any, ...]:
    """(model, state, sites, values): one single-site flip per configuration, for `eqx_rbm.propose`."""
    sites = jax.random.randint(jax.random.key(2), (x.shape[0], 1), 0, x.shape[1])
    return model, eqx_rbm.local_state(model, x), sites, -jnp.take_along_axis(x, sites, axis=-1)


def propose(*args: Any) -> Any:
    return eqx_rbm.propose(*args)[0]


def sample(model, state, key, n_sweeps, *, scan=False, pairs=None):
    """(samples, state), one sample per sweep: `eqx_rbm.metropolis`, or with `scan` the same single
    flips as a hand-written scan of `eqx_rbm.propose` and `eqx_rbm.accept`."""
    if not scan:
        samples, state, _ = eqx_rbm.metropolis(model, state, key, n_sweeps=n_sweeps, pairs=pairs)
        return samples, state
    n_chains, n_sites = state.x.shape

    def flip(state, inputs):
        site, log_u = inputs
        delta, proposed = eqx_rbm.propose(model, state, site, -jnp.take_along_axis(state.x, site, axis=-1))
        return eqx_rbm.accept(state, proposed, log_u < 2 * delta.real), None  # |psi'|^2 / |psi|^2

    def sweep(state, key):  # random numbers drawn a sweep at a time: memory stays O(n_sites n_chains)
        k_site, k_accept = jax.random.split(key)
        sites = jax.random.randint(k_site, (n_sites, n_chains, 1), 0, n_sites)
        state = jax.lax.scan(flip, state, (sites, jnp.log(jax.random.uniform(k_accept, sites.shape[:2]))))[0]
        return state, state.x

    state, samples = jax.lax.scan(sweep, state, jax.random.split(key, n_sweeps))
    return samples, state


@functools.partial(jax.jit, static_argnames=("per_chain", "pairs"))
def draw(model, chains, key, per_chain, pairs=None):
    """The chains after the iteration, and its samples (per_chain * n_chains, L); `pairs` a tuple."""
    pairs = None if pairs is None else np.asarray(pairs)
    history, state = sample(model, eqx_rbm.local_state(model, chains), key, BURN_IN + per_chain, pairs=pairs)
    return state.x, history[BURN_IN:].reshape(-1, chains.shape[-1])


@jax.jit
def local_energies(model, x, bonds=None):
    """E_loc(x) = -sum_<ij> x_i x_j - h sum_i psi(x with spin i flipped) / psi(x); the bonds <ij> are
    (i, i+1) of a periodic chain, or the rows of `bonds`."""
    flips = jnp.exp(eqx_rbm.site_log_ratios(model, eqx_rbm.local_state(model, x), -x))
    zz = x * jnp.roll(x, -1, axis=-1) if bonds is None else x[..., bonds[:, 0]] * x[..., bonds[:, 1]]
    return -jnp.sum(zz, axis=-1) - FIELD * jnp.sum(flips, axis=-1)


@functools.partial(jax.jit, static_argnames="product")
def heisenberg_energies(model, x, bonds, product=True):
    """E_loc(x) of H = sum_<ij> S_i.S_j, S = sigma / 2, Marshall-rotated: per bond x_i x_j / 4, and
    -1/2 psi(x, i and j exchanged) / psi(x) if x_i != x_j; `product=False`: the sum of activations."""
    ratios = _exchange_log_ratios(model, eqx_rbm.local_state(model, x), bonds, product=product)
    zz = x[..., bonds[:, 0]] * x[..., bonds[:, 1]]
    return jnp.sum(zz / 4 - (1 - zz) / 4 * jnp.exp(ratios), axis=-1)


sgd = jax.jit(lambda m, direction: jax.tree.map(lambda p, d: p - LEARNING_RATE * d, m, direction))


def sr_direction(model, x, e_loc, shift):
    return eqx_rbm.sr_gradient(model, x, e_loc, diag_shift=shift)


def step(model, chains, key, shift, per_chain, bonds=None, exchange=False):
    """One iteration: the new model and chains, and the energy estimate (`exchange`: Heisenberg)."""
    chains, x = draw(model, chains, key, per_chain, tuple(map(tuple, bonds.tolist())) if exchange else None)
    e_loc = (heisenberg_energies if exchange else local_energies)(model, x, bonds)
    return sgd(model, sr_direction(model, x, e_loc, shift)), chains, jnp.mean(e_loc).real


def ours(model, x, key, per_chain, bonds=None, exchange=False) -> dict[str, Candidate]:
    """eqx_rbm's iteration from chains `x`, and its phases on samples drawn once."""
    pairs, shift = tuple(map(tuple, bonds.tolist())) if exchange else None, jnp.asarray(SHIFT)
    energies = heisenberg_energies if exchange else local_energies
    drawn = draw(model, x, key, per_chain, pairs)[1]
    return {
        "eqx_rbm": Candidate(step, (model, x, key, shift, per_chain, bonds, exchange)),
        "eqx_rbm sample": Candidate(draw, (model, x, key, per_chain, pairs)),
        "eqx_rbm local energies": Candidate(energies, (model, drawn, bonds)),
        "eqx_rbm SR": Candidate(sr_direction, (model, drawn, energies(model, drawn, bonds), shift)),
    }


def netket_driver(hamiltonian: Any, dtype: Any, alpha: int, samples: int, chains: int, cg=False, graph=None):
    """VMC_SR (`cg`: VMC with SR by conjugate gradients) of an RBM; with `graph` of an RBMSymm over its
    translations, exchanges over its edges."""
    import netket as nk  # heavy: only when timing it

    sampler = nk.sampler.MetropolisLocal(hamiltonian.hilbert, n_chains=chains)
    model, optimiser = nk.models.RBM(alpha=alpha, param_dtype=dtype), nk.optimizer.Sgd(LEARNING_RATE)
    if graph is not None:
        sampler = nk.sampler.MetropolisExchange(hamiltonian.hilbert, graph=graph, n_chains=chains)
        model = nk.models.RBMSymm(symmetries=graph.translation_group(), alpha=alpha, param_dtype=dtype)
    state = nk.vqs.MCState(
        sampler, model, n_samples=samples, n_discard_per_chain=BURN_IN, seed=0, sampler_seed=1
    )
    if not cg:
        return nk.driver.VMC_SR(hamiltonian, optimiser, diag_shift=SHIFT, variational_state=state)
    sr = nk.optimizer.SR(diag_shift=SHIFT, holomorphic=jnp.issubdtype(dtype, jnp.complexfloating) or None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its advice to use VMC_SR instead, the main candidate
        return nk.driver.VMC(hamiltonian, optimiser, variational_state=state, preconditioner=sr)


def _iteration(driver: Any) -> Any:
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

    k_model, k_chains, key = jax.random.split(jax.random.key(0), 3)
    square, kw = lattice == "square", {"alpha": alpha, "param_dtype": jnp.dtype(dtype), "key": k_model}
    graph = nk.graph.Square(L, pbc=True) if square else nk.graph.Chain(L, pbc=True)
    # Square: Marshall-rotated Heisenberg in S.S units, NetKet's Pauli matrices being 2 S. Chain: NetKet's
    # Ising is -h sum s^x + J sum s^z s^z, J = -1 the ferromagnetic chain above.
    hilbert = nk.hilbert.Spin(0.5, graph.n_nodes, total_sz=0 if square else None)
    if square:  # zero magnetisation: each chain a permutation of as many up as down spins
        hamiltonian = nk.operator.Heisenberg(hilbert, graph, J=0.25, sign_rule=True)
        model, x = eqx_rbm.RBMSymm(graph.translation_group(), **kw), jnp.arange(L * L) % 2 * 2.0 - 1
        x = jax.random.permutation(k_chains, jnp.tile(x, (chains, 1)), axis=1, independent=True)
    else:
        hamiltonian = nk.operator.IsingJax(hilbert, graph, h=FIELD, J=-1.0)
        model, x = eqx_rbm.RBM(L, **kw), jax.random.choice(k_chains, jnp.array([-1.0, 1.0]), (chains, L))
    out = ours(model, x, key, samples // chains, np.asarray(graph.edges()) if square else None, square)
    drivers = [
        netket_driver(hamiltonian, jnp.dtype(dtype), alpha, samples, chains, cg, graph if square else None)
        for cg in (False, not square, False)
    ]
    drivers[2].state.sample()  # the phases' own: an iteration's parameter update would discard the samples
    out |= {
        "netket": Candidate(_iteration, (drivers[0],)),
        "netket sample": Candidate(drivers[2].state.sample),
        "netket local energies": Candidate(drivers[2].state.local_estimators, (hamiltonian,)),
        "netket energy and SR": Candidate(drivers[2].compute_loss_and_update),
    }
    if square:  # the sum of activations beside; NetKet's VMC+SR would add minutes a round
        drawn, bonds = out["eqx_rbm local energies"].args[1:]
        out["eqx_rbm sum local energies"] = Candidate(heisenberg_energies, (model, drawn, bonds, False))
    else:
        out["netket VMC+SR"] = Candidate(_iteration, (drivers[1],))
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

    hilbert = nk.hilbert.Spin(0.5, N=L)
    hamiltonian = nk.operator.IsingJax(hilbert, nk.graph.Chain(L, pbc=True), h=FIELD, J=-1.0)
    model, out = eqx_rbm.linen.RBM(alpha=alpha, param_dtype=jnp.dtype(dtype)), {}
    for name, kind in (("eqx_rbm", eqx_rbm.netket.MetropolisLocal), ("netket", nk.sampler.MetropolisLocal)):
        state, driven = (
            nk.vqs.MCState(kind(hilbert, n_chains=chains), model, n_samples=samples, seed=0, sampler_seed=1)
            for _ in range(2)
        )
        driver = nk.driver.VMC_SR(
            hamiltonian, nk.optimizer.Sgd(LEARNING_RATE), diag_shift=SHIFT, variational_state=driven
        )
        out[name], out[f"{name} VMC_SR"] = (
            Candidate(lambda s: s.sample(), (state,)),
            Candidate(_iteration, (driver,)),
        )
    return out
