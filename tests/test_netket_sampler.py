"""eqx_rbm.netket's samplers in real NetKet: |psi|^2 sampled, drivers unchanged, NetKet's options honoured."""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest
from helpers import chi_squared_p, configuration_counts, require, run_on_host_devices

nk = require("netket")
optax = require("optax")
import eqx_rbm  # noqa: E402
import eqx_rbm.linen  # noqa: E402
import eqx_rbm.netket  # noqa: E402

N_CHAINS = 256
# Sweeps between kept samples: enough for the chains to decorrelate on these tiny systems.
THIN = 4
CHAIN_LENGTH = 25
P_VALUE = 1e-3


@functools.cache
def _normal(scale, dtype=np.float64):
    # One initializer object per scale: twins with equal settings then hash equal, and NetKet's
    # compiled sampling and evaluation functions are reused from test to test.
    return jax.nn.initializers.normal(scale, dtype)


def _twin_init(scale):
    return {f"{k}_init": _normal(scale) for k in ("kernel", "hidden_bias", "visible_bias")}


def _vstate(sampler, model, *, n_samples=N_CHAINS * CHAIN_LENGTH, seed=0, **kwargs):
    return nk.vqs.MCState(sampler, model, n_samples=n_samples, seed=seed, sampler_seed=seed + 1, **kwargs)


def _exact(vstate, configurations, power=2.0):
    log_p = power * np.real(np.asarray(vstate.log_value(configurations)))
    p = np.exp(log_p - log_p.max())
    return p / p.sum()


def _chains_from_exact_draws(vstate, configurations, seed):
    """Chains started in |psi|^2 itself: a correct sampler keeps them there, a wrong one drifts away."""
    rng = np.random.default_rng(seed)
    draws = configurations[rng.choice(len(configurations), size=N_CHAINS, p=_exact(vstate, configurations))]
    x = nk.jax.sharding.shard_along_axis(jax.numpy.asarray(draws, vstate.sampler.dtype), axis=0)
    vstate.sampler_state = vstate.sampler_state.replace(σ=x)


@functools.cache
def _cases():
    spins, fock = nk.hilbert.Spin(0.5, 6), nk.hilbert.Fock(n_max=2, N=3)
    sector = nk.hilbert.Spin(0.5, 6, total_sz=0)
    complex_inits = {
        f"{k}_init": _normal(0.3, np.complex128) for k in ("kernel", "hidden_bias", "visible_bias")
    }
    ring = nk.graph.Chain(6)
    return {
        "spins, linen.RBM": (spins, eqx_rbm.linen.RBM(alpha=2, **_twin_init(0.3)), {}),
        "spins, eqx_rbm.RBM complex": (
            spins,
            eqx_rbm.RBM(6, alpha=1, param_dtype=np.complex128, **complex_inits, key=jax.random.key(1)),
            {},
        ),
        "fock, linen.RBMMultiVal": (fock, eqx_rbm.linen.RBMMultiVal(n_classes=3, **_twin_init(0.3)), {}),
        # Smaller weights: at 0.3 one configuration holds 90% of this sector, and chains that
        # stick to it give correlated samples, which the chi-squared test does not allow for.
        "total_sz=0, exchange on a ring": (
            sector,
            eqx_rbm.linen.RBM(alpha=2, **_twin_init(0.15)),
            {"graph": ring},
        ),
    }


def _sampler(library, hilbert, moves, **kwargs):
    module = nk.sampler if library == "netket" else eqx_rbm.netket
    make = module.MetropolisExchange if "graph" in moves else module.MetropolisLocal
    return make(hilbert, **moves, n_chains=N_CHAINS, sweep_size=THIN * hilbert.size, **kwargs)


@pytest.mark.parametrize("library", ["eqx_rbm", "netket"])
@pytest.mark.parametrize("case", list(_cases()))
def test_chains_sample_psi_squared_like_netkets(case, library):
    hilbert, model, moves = _cases()[case]
    vstate = _vstate(_sampler(library, hilbert, moves), model, n_discard_per_chain=0)
    configurations = hilbert.all_states()
    _chains_from_exact_draws(vstate, configurations, seed=2)
    samples = np.asarray(vstate.sample())
    assert samples.shape == (N_CHAINS, CHAIN_LENGTH, hilbert.size)
    assert samples.dtype == vstate.sampler.dtype
    counts = configuration_counts(
        samples, configurations
    )  # a KeyError here: a sample outside the Hilbert space
    assert chi_squared_p(counts, _exact(vstate, configurations)) > P_VALUE
    if library == "eqx_rbm":
        # The test has power: the same samples against |psi| instead of |psi|^2 fail it.
        assert chi_squared_p(counts, _exact(vstate, configurations, power=1.0)) < P_VALUE
        assert 0.05 < float(vstate.sampler_state.acceptance) < 1.0
        # The cached state is that of the final configurations under the current parameters.
        local = vstate.sampler_state.local
        fresh = eqx_rbm.local_state(_equinox(vstate), local.x)
        np.testing.assert_allclose(local.theta, fresh.theta, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(
            vstate.sampler_state.log_prob, 2 * np.real(vstate.log_value(local.x)), rtol=1e-10, atol=1e-10
        )


def _equinox(vstate):
    model = vstate.model
    return (
        model if isinstance(model, eqx_rbm.AbstractRBM) else eqx_rbm.linen.to_equinox(model, vstate.variables)
    )


def _ising(n_sites=8):
    hilbert = nk.hilbert.Spin(0.5, n_sites)
    return hilbert, nk.operator.Ising(hilbert, nk.graph.Chain(n_sites), h=1.0, J=-1.0)


def _optimise(kind, sampler, variables, hilbert, hamiltonian, steps=20):
    twin = eqx_rbm.linen.RBM(alpha=1)
    # 64 discarded sweeps, as many as kept: one compiled chain serves both calls of every step.
    vstate = nk.vqs.MCState(
        sampler, twin, variables=variables, n_samples=1024, n_discard_per_chain=64, sampler_seed=1
    )
    if kind == "VMC_SR":
        driver = nk.driver.VMC_SR(hamiltonian, optax.sgd(0.05), variational_state=vstate, diag_shift=1e-2)
        driver.run(steps, show_progress=False)
    elif kind == "VMC with SR":
        sr = nk.optimizer.SR(diag_shift=1e-2)
        driver = nk.driver.VMC(hamiltonian, optax.sgd(0.05), variational_state=vstate, preconditioner=sr)
        driver.run(steps, show_progress=False)
    else:
        qgt = nk.optimizer.qgt.QGTJacobianDense(diag_shift=1e-2)
        integrator = nk.experimental.dynamics.Euler(dt=0.05)
        driver = nk.experimental.TDVP(hamiltonian, vstate, integrator, propagation_type="imag", qgt=qgt)
        driver.run(steps * 0.05, show_progress=False)
    vstate.n_samples = 8192
    return vstate.expect(hamiltonian)


@pytest.mark.parametrize("kind", ["VMC_SR", "VMC with SR", "TDVP"])
def test_drivers_reach_netkets_energies(kind):
    hilbert, hamiltonian = _ising()
    variables = eqx_rbm.linen.RBM(alpha=1).init(jax.random.key(0), np.ones((1, hilbert.size)))
    ours = _optimise(
        kind, eqx_rbm.netket.MetropolisLocal(hilbert, n_chains=16), variables, hilbert, hamiltonian
    )
    theirs = _optimise(
        kind, nk.sampler.MetropolisLocal(hilbert, n_chains=16), variables, hilbert, hamiltonian
    )
    combined = np.hypot(ours.error_of_mean, theirs.error_of_mean)
    assert abs(ours.mean - theirs.mean) < 5 * combined, (ours, theirs)
    # Both optimisations did get somewhere: the initial state has E ~ -8, E0 = -10.25.
    assert ours.mean.real < -10.1, ours


def _twin_state(sampler, **kwargs):
    # As many discarded sweeps as kept ones: both calls run one compiled chain (its length is static).
    kwargs = {"n_discard_per_chain": 8, **kwargs}
    return _vstate(sampler, eqx_rbm.linen.RBM(alpha=2, **_twin_init(0.3)), n_samples=16 * 8, **kwargs)


@functools.cache
def _one_device_samples(chunk_size):
    """The twin's samples on one device (compiled once: the sharded test compares against them too)."""
    hilbert = nk.hilbert.Spin(0.5, 6)
    sampler = eqx_rbm.netket.MetropolisLocal(hilbert, n_chains=16, chunk_size=chunk_size)
    return np.asarray(_twin_state(sampler).sample())


def test_sampler_chunk_size_changes_nothing_but_memory():
    hilbert = nk.hilbert.Spin(0.5, 6)
    np.testing.assert_array_equal(_one_device_samples(None), _one_device_samples(4))
    # NetKet's own rule for the sampler's chunk_size, inherited.
    with pytest.raises(ValueError, match="Chunk size must divide number of chains per rank"):
        eqx_rbm.netket.MetropolisLocal(hilbert, n_chains=16, chunk_size=3)


def test_state_chunk_size_and_sampled_log_probabilities():
    hilbert, hamiltonian = _ising(6)
    vstate = _twin_state(eqx_rbm.netket.MetropolisLocal(hilbert, n_chains=16), chunk_size=32)
    unchunked = _twin_state(eqx_rbm.netket.MetropolisLocal(hilbert, n_chains=16))
    np.testing.assert_array_equal(vstate.sample(), unchunked.sample())
    np.testing.assert_allclose(
        vstate.expect(hamiltonian).mean, unchunked.expect(hamiltonian).mean, rtol=1e-12
    )
    sampler, model, variables = vstate.sampler, vstate.model, vstate.variables
    (samples, log_probs), state = sampler.sample(
        model, variables, state=vstate.sampler_state, chain_length=3, return_log_probabilities=True
    )
    assert samples.shape == (16, 3, 6) and log_probs.shape == (16, 3)
    np.testing.assert_allclose(log_probs, 2 * np.real(vstate.log_value(samples)), rtol=1e-12, atol=1e-12)
    # One sweep at a time, as NetKet's sample_next and samples() give them.
    next_state, (x, log_prob) = sampler.sample_next(model, variables, state)
    assert x.shape == (16, 6) and next_state.n_steps == state.n_steps + 16 * sampler.sweep_size
    np.testing.assert_allclose(log_prob, 2 * np.real(vstate.log_value(x)), rtol=1e-12, atol=1e-12)
    assert [x.shape for x in sampler.samples(model, variables, state=state, chain_length=2)] == [(16, 6)] * 2


def test_discarded_samples_are_sweeps_run_first():
    hilbert = nk.hilbert.Spin(0.5, 6)
    vstate = _twin_state(eqx_rbm.netket.MetropolisLocal(hilbert, n_chains=16), n_discard_per_chain=3)
    sampler, start = vstate.sampler, vstate.sampler_state
    samples = vstate.sample()
    assert vstate.sampler_state.n_steps == (3 + 8) * sampler.sweep_size * 16
    # By hand: reset, 3 discarded sweeps, then the kept chain.
    state = sampler.reset(vstate.model, vstate.variables, start)
    _, state = sampler.sample(vstate.model, vstate.variables, state=state, chain_length=3)
    by_hand, _ = sampler.sample(vstate.model, vstate.variables, state=state, chain_length=8)
    np.testing.assert_array_equal(samples, by_hand)


def test_theta_follows_the_parameters_not_the_cache():
    """theta is recomputed from the configurations and the current parameters whenever the sampler samples."""
    hilbert = nk.hilbert.Spin(0.5, 6)
    vstate = _twin_state(eqx_rbm.netket.MetropolisLocal(hilbert, n_chains=16))
    vstate.sample()
    vstate.parameters = jax.tree.map(lambda p: 2 * p, vstate.parameters)  # as a VMC step does
    state = vstate.sampler_state
    stale = state.replace(theta=np.zeros_like(state.theta), hidden_sum=np.zeros_like(state.hidden_sum))
    args = (vstate.model, vstate.variables)
    # The chain length vstate.sample() ran: its compiled chain serves both calls.
    ours, _ = vstate.sampler.sample(*args, state=stale, chain_length=8)
    reference, after = vstate.sampler.sample(*args, state=state, chain_length=8)
    np.testing.assert_array_equal(ours, reference)
    fresh = eqx_rbm.local_state(_equinox(vstate), after.σ)
    np.testing.assert_allclose(after.theta, fresh.theta, rtol=1e-12, atol=1e-12)


def test_reset_chains_draws_new_configurations():
    hilbert = nk.hilbert.Spin(0.5, 6)
    vstate = _twin_state(eqx_rbm.netket.MetropolisLocal(hilbert, n_chains=16, reset_chains=True))
    vstate.sample()
    before = np.asarray(vstate.sampler_state.σ)
    state = vstate.sampler.reset(vstate.model, vstate.variables, vstate.sampler_state)
    assert not np.array_equal(state.σ, before)
    assert state.n_steps == 0
    np.testing.assert_allclose(state.log_prob, 2 * np.real(vstate.log_value(state.σ)), rtol=1e-12)


def test_checkpoint_round_trip_as_netkets():
    """MCState saves the sampler state it sampled from; restoring it gives the same samples again."""
    import flax.serialization

    hilbert = nk.hilbert.Spin(0.5, 6)
    vstate = _twin_state(eqx_rbm.netket.MetropolisLocal(hilbert, n_chains=16))
    samples = vstate.sample()
    restored = _twin_state(eqx_rbm.netket.MetropolisLocal(hilbert, n_chains=16), seed=7)
    restored = flax.serialization.from_bytes(restored, flax.serialization.to_bytes(vstate))
    np.testing.assert_array_equal(restored.sample(), samples)


SHARDED = textwrap.dedent(
    """
    import sys
    import jax
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    import netket as nk
    import eqx_rbm.linen
    import eqx_rbm.netket

    assert jax.device_count() == 2 and nk.config.netket_sharding
    hilbert = nk.hilbert.Spin(0.5, 6)
    init = jax.nn.initializers.normal(0.3)  # the twin of _twin_state
    twin = eqx_rbm.linen.RBM(alpha=2, kernel_init=init, hidden_bias_init=init, visible_bias_init=init)
    for make in (eqx_rbm.netket.MetropolisLocal, nk.sampler.MetropolisLocal):
        for chunk_size in (None, 4):
            sampler = make(hilbert, n_chains=16, chunk_size=chunk_size)
            vstate = nk.vqs.MCState(
                sampler, twin, n_samples=128, n_discard_per_chain=8, seed=0, sampler_seed=1
            )
            samples = vstate.sample()
            # Chains split over the devices, as NetKet splits its own.
            assert sampler.n_chains_per_rank == 8
            assert [s.data.shape for s in samples.addressable_shards] == [(8, 8, 6)] * 2, samples.sharding
            if make is eqx_rbm.netket.MetropolisLocal:
                theta = vstate.sampler_state.theta
                assert [s.data.shape[0] for s in theta.addressable_shards] == [8, 8], theta.sharding
                np.save(sys.argv[1] + f"/{chunk_size}.npy", np.asarray(samples))
                (x, log_probs), _ = sampler.sample(
                    vstate.model, vstate.variables, state=vstate.sampler_state, chain_length=2,
                    return_log_probabilities=True,
                )
                assert [s.data.shape for s in log_probs.addressable_shards] == [(8, 2)] * 2
                np.testing.assert_allclose(log_probs, 2 * vstate.log_value(x).real, rtol=1e-12)
    """
)


@pytest.mark.slow
def test_sharded_chains_give_the_one_device_samples(tmp_path: Path):
    run_on_host_devices(SHARDED.replace("sys.argv[1]", repr(str(tmp_path))), n_devices=2)
    for chunk_size in (None, 4):
        np.testing.assert_array_equal(
            np.load(tmp_path / f"{chunk_size}.npy"), _one_device_samples(chunk_size)
        )
