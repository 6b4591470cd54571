"""One variational Monte Carlo iteration on the transverse-field Ising chain, eqx_rbm's and NetKet's.

H = -sum_i s^z_i s^z_(i+1) - h sum_i s^x_i on a periodic chain of L spins, an RBM, one sample per
sweep of L single-flip Metropolis proposals after a few discarded sweeps, and a stochastic
reconfiguration (SR) step with a fixed diagonal shift and plain SGD. With `lattice="square"`: the
Marshall-rotated Heisenberg model on an L x L torus, an RBMSymm over its translations and exchange
moves over its bonds at zero magnetisation. eqx_rbm's step is written here
from the library's public API (docs/derivatives.md); NetKet's is `nk.driver.VMC_SR`.
"""

import functools
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import eqx_rbm
from eqx_rbm.sampling._local import _exchange_log_ratios

from .timing import Candidate, measures

FIELD, SHIFT, LEARNING_RATE, BURN_IN = 1.0, 1e-2, 0.05, 4


def sample(model, state, key, n_sweeps, *, scan=False, pairs=None):
    """(samples, state), one sample per sweep of n_sites single flips (exchanges over `pairs`):
    `eqx_rbm.metropolis` once the library has it (unless `scan`), else a scan of `eqx_rbm.propose`
    and `eqx_rbm.accept`."""
    if hasattr(eqx_rbm, "metropolis") and not scan:
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
        log_u = jnp.log(jax.random.uniform(k_accept, (n_sites, n_chains)))
        state = jax.lax.scan(flip, state, (sites, log_u))[0]
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
    -1/2 psi(x, i and j exchanged) / psi(x) if x_i != x_j; `product=False`: eqx_rbm 0.2.1's path."""
    ratios = _exchange_log_ratios(model, eqx_rbm.local_state(model, x), bonds, product=product)
    zz = x[..., bonds[:, 0]] * x[..., bonds[:, 1]]
    return jnp.sum(zz / 4 - (1 - zz) / 4 * jnp.exp(ratios), axis=-1)


sgd = jax.jit(lambda m, direction: jax.tree.map(lambda p, d: p - LEARNING_RATE * d, m, direction))


def sr_direction(model, x, e_loc, shift):
    """The SR direction of `eqx_rbm.sr_gradient`, its solve in the smaller of the two spaces."""
    return eqx_rbm.sr_gradient(model, x, e_loc, diag_shift=shift)


def step(model, chains, key, shift, per_chain, bonds=None, exchange=False):
    """One iteration: the new model and chains, and the energy estimate (`exchange`: Heisenberg)."""
    chains, x = draw(model, chains, key, per_chain, tuple(map(tuple, bonds.tolist())) if exchange else None)
    e_loc = (heisenberg_energies if exchange else local_energies)(model, x, bonds)
    return sgd(model, sr_direction(model, x, e_loc, shift)), chains, jnp.mean(e_loc).real


def netket_driver(
    hamiltonian: Any, dtype: Any, alpha: int, samples: int, chains: int, cg: bool = False, graph: Any = None
) -> Any:
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
    "eqx_rbm: benchmarks/vmc.py's step (Metropolis through the local-update API, site_log_ratios, "
    "eqx_rbm.sr_gradient: Cholesky on the closed-form jacobian kernel, or on S with more samples "
    "than parameters). netket: VMC_SR.run(1) (exact SR, its automatic form); "
    "VMC+SR: VMC with nk.optimizer.SR (conjugate gradients). NetKet's phases through its public API: "
    "MCState.sample, MCState.local_estimators, and VMC_SR.compute_loss_and_update on drawn samples "
    "(local energies and SR together: NetKet has no public entry point for the SR solve alone)",
)
def vmc(
    dtype: str, L: int, alpha: int, samples: int, chains: int, lattice: str = "chain"
) -> dict[str, Candidate]:
    import netket as nk

    k_model, k_chains, key = jax.random.split(jax.random.key(0), 3)
    square, per_chain = lattice == "square", samples // chains
    kw = {"alpha": alpha, "param_dtype": jnp.dtype(dtype), "key": k_model}
    graph = nk.graph.Square(L, pbc=True) if square else nk.graph.Chain(L, pbc=True)
    # Square: Marshall-rotated Heisenberg in S.S units, NetKet's Pauli matrices being 2 S. Chain: NetKet's
    # Ising is -h sum s^x + J sum s^z s^z, J = -1 the ferromagnetic chain above.
    hilbert = nk.hilbert.Spin(0.5, graph.n_nodes, total_sz=0 if square else None)
    ising = nk.operator.IsingJax(hilbert, graph, h=FIELD, J=-1.0) if not square else None
    hamiltonian = nk.operator.Heisenberg(hilbert, graph, J=0.25, sign_rule=True) if square else ising
    model = eqx_rbm.RBMSymm(graph.translation_group(), **kw) if square else eqx_rbm.RBM(L, **kw)
    x = jax.random.choice(k_chains, jnp.array([-1.0, 1.0]), (chains, L))
    if square:  # zero magnetisation: each chain a permutation of as many up as down spins
        x = jnp.tile(jnp.arange(L * L) % 2 * 2.0 - 1, (chains, 1))
        x = jax.random.permutation(k_chains, x, axis=1, independent=True)
    bonds, energies = (np.asarray(graph.edges()), heisenberg_energies) if square else (None, local_energies)
    pairs, shift = None if bonds is None else tuple(map(tuple, bonds.tolist())), jnp.asarray(SHIFT)
    drawn = draw(model, x, key, per_chain, pairs)[1]
    drivers = [
        netket_driver(hamiltonian, jnp.dtype(dtype), alpha, samples, chains, cg, graph if square else None)
        for cg in (False, not square, False)
    ]
    drivers[2].state.sample()  # the phases' own: an iteration's parameter update would discard the samples
    out = {
        "eqx_rbm": Candidate(step, (model, x, key, shift, per_chain, bonds, square)),
        "eqx_rbm sample": Candidate(draw, (model, x, key, per_chain, pairs)),
        "eqx_rbm local energies": Candidate(energies, (model, drawn, bonds)),
        "eqx_rbm SR": Candidate(sr_direction, (model, drawn, energies(model, drawn, bonds), shift)),
        "netket": Candidate(_iteration, (drivers[0],)),
        "netket sample": Candidate(drivers[2].state.sample),
        "netket local energies": Candidate(drivers[2].state.local_estimators, (hamiltonian,)),
        "netket energy and SR": Candidate(drivers[2].compute_loss_and_update),
    }
    if square:  # eqx_rbm 0.2.1's local energies beside; NetKet's VMC+SR would add minutes a round
        out["eqx_rbm sum local energies"] = Candidate(energies, (model, drawn, bonds, False))
    else:
        out["netket VMC+SR"] = Candidate(_iteration, (drivers[1],))
    return out


def _sample(state: Any) -> Any:
    return state.sample()


@measures(
    "NetKet sampler",
    ratios=("netket VMC_SR/eqx_rbm VMC_SR",),
    notes="NetKet's MCState.sample() with eqx_rbm.netket.MetropolisLocal (eqx_rbm) against "
    "nk.sampler.MetropolisLocal (netket), the eqx_rbm.linen.RBM twin in both, TFIM chain, one sweep per "
    "sample; VMC_SR: one VMC_SR.run(1) iteration with each sampler",
)
def netket_sampler(dtype: str, L: int, alpha: int, samples: int, chains: int) -> dict[str, Candidate]:
    import netket as nk

    import eqx_rbm.linen
    import eqx_rbm.netket

    hilbert = nk.hilbert.Spin(0.5, N=L)
    hamiltonian = nk.operator.IsingJax(hilbert, nk.graph.Chain(L, pbc=True), h=FIELD, J=-1.0)
    model = eqx_rbm.linen.RBM(alpha=alpha, param_dtype=jnp.dtype(dtype))
    out = {}
    for name, kind in (("eqx_rbm", eqx_rbm.netket.MetropolisLocal), ("netket", nk.sampler.MetropolisLocal)):
        state, driven = (
            nk.vqs.MCState(kind(hilbert, n_chains=chains), model, n_samples=samples, seed=0, sampler_seed=1)
            for _ in range(2)
        )
        optimiser = nk.optimizer.Sgd(LEARNING_RATE)
        driver = nk.driver.VMC_SR(hamiltonian, optimiser, diag_shift=SHIFT, variational_state=driven)
        out[name], out[f"{name} VMC_SR"] = Candidate(_sample, (state,)), Candidate(_iteration, (driver,))
    return out
