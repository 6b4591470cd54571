"""RBMModPhase's local updates, samplers and SR against NetKet's netket.models.RBMModPhase."""

from __future__ import annotations

import functools
import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import chi_squared_p, configuration_counts, netket_vmc_sr, require
from jax.flatten_util import ravel_pytree

import eqx_rbm
from eqx_rbm.sampling import _ratios
from eqx_rbm.sampling._log_ratios import _exchange_log_ratios, _site_log_ratios
from eqx_rbm.sampling._support import takes_products

N_SITES, BATCH = 16, 256  # BATCH * N_SITES = 4096 moves: at least _ratios.MIN_MOVES, so products run
PAIRS = np.array(
    [(i, (i + 1) % N_SITES) for i in range(N_SITES)] + [(i, (i + 3) % N_SITES) for i in range(8)]
)
DTYPES = [jnp.float64, jnp.complex128]
IDS = ["float64", "complex128"]


@functools.cache
def _pair(n_sites, dtype, std, alpha=1, seed=0):
    """Ours and NetKet's (module, variables) from the same key and initializers."""
    init = jax.nn.initializers.normal(std, dtype)
    settings = dict(alpha=alpha, param_dtype=dtype, kernel_init=init, hidden_bias_init=init)
    model = eqx_rbm.RBMModPhase(n_sites, **settings, key=jax.random.key(seed))
    reference = require("netket").models.RBMModPhase(**settings)
    return model, reference, eqx_rbm.to_variables(model)


@functools.partial(jax.jit, static_argnums=0)
def _netket_log_psi(reference, variables, x):
    """NetKet's log psi as one compiled program (eagerly, each of its operations compiles on its own)."""
    return reference.apply(variables, x)


def _spins(n_sites, batch, seed):
    return jax.random.choice(jax.random.key(seed), jnp.array([-1.0, 1.0]), (batch, n_sites))


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_site_and_exchange_ratios_are_netkets_differences(dtype):
    model, reference, variables = _pair(N_SITES, dtype, 0.15)
    x = _spins(N_SITES, BATCH, 1)
    state = eqx_rbm.local_state(model, x)
    log_psi = _netket_log_psi(reference, variables, x)
    np.testing.assert_allclose(state.log_psi(model), log_psi, rtol=1e-13)

    keep = jnp.arange(N_SITES) % 3 == 0  # these sites keep their value: exactly 0
    new_values = jnp.where(keep, x, -x)
    flipped = jnp.where(jnp.eye(N_SITES, dtype=bool), new_values[:, None, :], x[:, None, :])
    expected = _netket_log_psi(reference, variables, flipped) - log_psi[:, None]
    ratios = eqx_rbm.site_log_ratios(model, state, new_values)
    np.testing.assert_allclose(ratios, expected, rtol=1e-10, atol=1e-11)
    assert np.all(np.asarray(ratios)[:, np.asarray(keep)] == 0.0)

    swapped = np.repeat(np.asarray(x)[:, None, :], len(PAIRS), axis=1)
    for p, (i, j) in enumerate(PAIRS):
        swapped[:, p, [i, j]] = swapped[:, p, [j, i]]
    expected = _netket_log_psi(reference, variables, jnp.asarray(swapped)) - log_psi[:, None]
    np.testing.assert_allclose(
        eqx_rbm.exchange_log_ratios(model, state, PAIRS), expected, rtol=1e-10, atol=1e-11
    )


def test_products_run_for_real_parameters_and_agree():
    model, reference, variables = _pair(N_SITES, jnp.float64, 0.15)
    x = _spins(N_SITES, BATCH, 2)
    assert takes_products(model, model.theta(x).dtype)
    assert bool(_ratios.within_bounds(2 * model.dense().kernel))
    state = eqx_rbm.local_state(model, x)
    run = jax.jit(lambda m, s, p: _site_log_ratios(m, s, -x, product=p), static_argnums=2)
    products, sums = run(model, state, True), run(model, state, False)
    assert products.dtype == jnp.complex128
    assert not np.array_equal(products, sums)  # rounded differently: the products did run
    np.testing.assert_allclose(products, sums, rtol=1e-12, atol=1e-12)
    flipped = jnp.where(jnp.eye(N_SITES, dtype=bool), -x[:, None, :], x[:, None, :])
    expected = (
        _netket_log_psi(reference, variables, flipped) - _netket_log_psi(reference, variables, x)[:, None]
    )
    np.testing.assert_allclose(products, expected, rtol=1e-10, atol=1e-11)

    run = jax.jit(lambda m, s, p: _exchange_log_ratios(m, s, PAIRS, product=p), static_argnums=2)
    products, sums = run(model, state, True), run(model, state, False)
    assert not np.array_equal(products, sums)
    np.testing.assert_allclose(products, sums, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_propose_and_accept_follow_netkets_log_psi(dtype):
    # The model and shapes of the ratio tests above: their compiled programs (the local state,
    # NetKet's log psi of a batch) serve here too. Moves of two sites at once.
    model, reference, variables = _pair(N_SITES, dtype, 0.15)
    x = _spins(N_SITES, BATCH, 3)
    state = eqx_rbm.local_state(model, x)
    rng = np.random.default_rng(4)
    sites = jnp.asarray(np.stack([rng.choice(N_SITES, size=2, replace=False) for _ in range(BATCH)]))
    new_values = jnp.asarray(rng.choice([-1.0, 1.0], size=(BATCH, 2)))
    delta, proposed = eqx_rbm.propose(model, state, sites, new_values)
    moved = np.asarray(x).copy()
    np.put_along_axis(moved, np.asarray(sites), np.asarray(new_values), axis=-1)
    log_psi, moved_log_psi = (
        _netket_log_psi(reference, variables, x),
        _netket_log_psi(reference, variables, jnp.asarray(moved)),
    )
    np.testing.assert_allclose(delta, moved_log_psi - log_psi, rtol=1e-10, atol=1e-12)
    mask = jnp.arange(BATCH) % 2 == 0
    kept = eqx_rbm.accept(state, proposed, mask)
    np.testing.assert_allclose(
        kept.log_psi(model), jnp.where(mask, moved_log_psi, log_psi), rtol=1e-12, atol=1e-12
    )


def _exact(log_psi, power=2.0):
    log_p = power * np.real(np.asarray(log_psi))
    p = np.exp(log_p - log_p.max())
    return p / p.sum()


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_metropolis_samples_netkets_psi_squared(dtype):
    model, reference, variables = _pair(5, dtype, 0.4, alpha=2, seed=5)
    configurations = np.array(list(itertools.product((-1.0, 1.0), repeat=5)))
    p = _exact(_netket_log_psi(reference, variables, jnp.asarray(configurations)))
    x0 = configurations[np.random.default_rng(6).choice(len(configurations), size=256, p=p)]
    run = jax.jit(lambda s, k: eqx_rbm.metropolis(model, s, k, n_sweeps=120))
    samples, state, acceptance = run(eqx_rbm.local_state(model, jnp.asarray(x0)), jax.random.key(7))
    counts = configuration_counts(np.asarray(samples)[20::4], configurations)
    assert chi_squared_p(counts, p) > 1e-3
    # The test has power: the same samples against |psi| instead of |psi|^2 fail it.
    log_psi = _netket_log_psi(reference, variables, jnp.asarray(configurations))
    assert chi_squared_p(counts, _exact(log_psi, power=1.0)) < 1e-3
    assert 0.05 < float(acceptance.mean()) < 1.0
    fresh = eqx_rbm.local_state(model, state.x)
    np.testing.assert_allclose(state.hidden_sum, fresh.hidden_sum, rtol=1e-10, atol=1e-10)


def test_fused_path_says_it_takes_one_group():
    # The model and state shape of the chains above: nothing new to build or compile.
    model, _, _ = _pair(5, jnp.float64, 0.4, alpha=2, seed=5)
    state = eqx_rbm.local_state(model, jnp.ones((256, 5)))
    with pytest.raises(
        ValueError, match=r"the fused kernel runs one group of hidden units, got hidden_coefficients="
    ):
        eqx_rbm.metropolis(model, state, jax.random.key(0), n_sweeps=1, method="fused")


def test_netket_sampler_with_mcstate():
    nk = require("netket")
    require("flax")
    import eqx_rbm.linen
    import eqx_rbm.netket

    hilbert = nk.hilbert.Spin(0.5, 6)
    init = jax.nn.initializers.normal(0.3)
    twin = eqx_rbm.linen.RBMModPhase(alpha=2, kernel_init=init, hidden_bias_init=init)
    sampler = eqx_rbm.netket.MetropolisLocal(hilbert, n_chains=256, sweep_size=4 * hilbert.size)
    vstate = nk.vqs.MCState(sampler, twin, n_samples=256 * 25, n_discard_per_chain=0, seed=0, sampler_seed=1)
    configurations = hilbert.all_states()
    p = _exact(vstate.log_value(configurations))
    draws = configurations[np.random.default_rng(2).choice(len(configurations), size=256, p=p)]
    vstate.sampler_state = vstate.sampler_state.replace(σ=jnp.asarray(draws, sampler.dtype))
    samples = np.asarray(vstate.sample())
    counts = configuration_counts(samples, configurations)
    assert chi_squared_p(counts, p) > 1e-3
    assert chi_squared_p(counts, _exact(vstate.log_value(configurations), power=1.0)) < 1e-3
    local = vstate.sampler_state.local
    np.testing.assert_allclose(
        vstate.sampler_state.log_prob, 2 * np.real(vstate.log_value(local.x)), rtol=1e-10, atol=1e-10
    )


# Each case checks all three of our spaces against NetKet's update; which solve NetKet runs
# (NTK or QGT) changes no path of ours. So each dtype once, and each of NetKet's solves once.
@pytest.mark.parametrize(
    ("dtype", "use_ntk"),
    [(jnp.float64, True), (jnp.complex128, False)],
    ids=["float64-ntk", "complex128-qgt"],
)
def test_sr_gradient_matches_netket_vmc_sr(dtype, use_ntk):
    """NetKet's VMC_SR update on its own samples is twice sr_gradient's (see test_sr.py).

    For real parameters log psi is complex and not holomorphic in them: NetKet's S is
    Re(Y^dagger Y) / n and its force Re(Y^dagger (E - mean E)) / n, and so are ours.
    """
    n_sites, field, shift = 6, 0.8, 1e-2
    model, reference, variables = _pair(n_sites, dtype, 0.5)
    n = 32 if use_ntk else 128  # fewer and more samples than the 84 parameters
    x, update, netket_energies = netket_vmc_sr(
        reference, variables, n_sites=n_sites, field=field, shift=shift, use_ntk=use_ntk, n=n
    )

    ratios = jnp.exp(eqx_rbm.site_log_ratios(model, eqx_rbm.local_state(model, x), -x))
    energies = -jnp.sum(x * jnp.roll(x, -1, axis=-1), axis=-1) - field * jnp.sum(ratios, axis=-1)
    np.testing.assert_allclose(energies, netket_energies, rtol=1e-12, atol=1e-12)

    layers = ("Dense_0", "Dense_1")
    expected = np.concatenate(
        [np.ravel(np.stack([update[layer][name] for layer in layers])) for name in ("kernel", "bias")]
    )
    for space in ("samples", "parameters", "auto"):
        delta = eqx_rbm.sr_gradient(model, x, energies, diag_shift=shift, space=space)
        assert type(delta) is eqx_rbm.RBMModPhase and delta.kernel.dtype == dtype
        flat = np.asarray(ravel_pytree(eqx.filter(delta, eqx.is_inexact_array))[0])
        assert np.max(np.abs(2 * flat - expected)) / np.max(np.abs(expected)) < 1e-10, space
