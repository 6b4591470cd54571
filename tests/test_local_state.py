"""The cached local-update state and the all-sites ratios agree with full recomputation."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_local import BOSON_STATES, N_CHAINS, N_SPIN, SPIN_STATES, TOL, _multival, _proposal, _rbm

from eqx_rbm import accept_moves, local_state, propose_move, site_log_ratios


@eqx.filter_jit
def _site_ratios_and_full(model, x, new_values):
    ratios = site_log_ratios(model, local_state(model, x), new_values)
    n_sites = x.shape[-1]
    # Proposal i sets site i only: a diagonal mask over (sample, proposal, site).
    on_site = jnp.eye(n_sites, dtype=bool)
    proposals = jnp.where(on_site, new_values[..., None, :], x[..., None, :])
    return ratios, model(proposals) - model(x)[..., None]


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["real", "complex", "multival"]))
def test_site_log_ratios_match_full_recomputation(seed, kind):
    rng = np.random.default_rng(seed)
    if kind == "multival":
        model, states, n_sites = _multival(), BOSON_STATES, 6
    else:
        model, states, n_sites = (
            _rbm(jnp.complex128 if kind == "complex" else jnp.float64),
            SPIN_STATES,
            N_SPIN,
        )
    x = jnp.asarray(rng.choice(np.asarray(states), size=(N_CHAINS, n_sites)))
    new_values = jnp.asarray(rng.choice(np.asarray(states), size=(N_CHAINS, n_sites)))
    ratios, full = _site_ratios_and_full(model, x, new_values)
    assert ratios.shape == full.shape == x.shape
    assert ratios.dtype == full.dtype
    np.testing.assert_allclose(ratios, full, **TOL)
    # A site that keeps its value has a ratio of exactly zero.
    same = np.asarray(new_values) == np.asarray(x)
    np.testing.assert_array_equal(np.asarray(ratios)[same], 0.0)


def test_site_log_ratios_errors():
    model = _multival()
    x, _, _ = _proposal(np.random.default_rng(14), 3, 6, 1, BOSON_STATES)
    state = local_state(model, x)
    with pytest.raises(
        ValueError, match=r"new_values: expected one value per site, the shape of state.x \(3, 6\)"
    ):
        site_log_ratios(model, state, x[:, :2])
    bad = np.asarray(x).copy()
    bad[1, 4] = 9
    with pytest.raises(
        ValueError, match=r"new_values: expected every value to be one of local_states.*got 9"
    ):
        site_log_ratios(model, state, bad)
    with pytest.raises(Exception, match="site_log_ratios: a value is not one of local_states"):
        jax.block_until_ready(eqx.filter_jit(site_log_ratios)(model, state, jnp.asarray(bad)))
    with pytest.raises(ValueError, match=r"state: expected theta of shape \(\*batch, 45\)"):
        site_log_ratios(model, local_state(_rbm(), jnp.ones((3, N_SPIN))), x)


def test_local_state_chain_stays_consistent():
    """Metropolis with the cached state: after many moves it equals a fresh state."""
    model = _rbm(jnp.complex128)
    n_steps = 100
    x0 = jax.random.choice(jax.random.key(11), jnp.asarray(SPIN_STATES), (N_CHAINS, N_SPIN))

    @jax.jit
    def run(x, key):
        def step(state, key):
            k_site, k_accept = jax.random.split(key)
            sites = jax.random.randint(k_site, (N_CHAINS, 1), 0, N_SPIN)
            flipped = -jnp.take_along_axis(state.x, sites, axis=-1)
            delta, proposed = propose_move(model, state, sites, flipped)
            accept = jax.random.uniform(k_accept, (N_CHAINS,)) < jnp.exp(2 * delta.real)
            return accept_moves(state, proposed, accept), accept

        return jax.lax.scan(step, local_state(model, x), jax.random.split(key, n_steps))

    state, accepted = run(x0, jax.random.key(12))
    assert 0 < int(accepted.sum()) < accepted.size
    fresh = local_state(model, state.x)
    np.testing.assert_allclose(state.theta, fresh.theta, **TOL)
    np.testing.assert_allclose(state.hidden_sum, fresh.hidden_sum, **TOL)
    np.testing.assert_allclose(state.log_psi(model), model(state.x), **TOL)


def test_accept_moves_selects_per_chain():
    model = _multival()
    x, sites, new_values = _proposal(np.random.default_rng(13), 4, 6, 2, BOSON_STATES)
    state = local_state(model, x)
    _, proposed = propose_move(model, state, sites, new_values)
    mask = jnp.array([True, False, False, True])
    kept = accept_moves(state, proposed, mask)
    for field in ("x", "theta", "hidden_sum"):
        got, new, old = (np.asarray(getattr(s, field)) for s in (kept, proposed, state))
        np.testing.assert_array_equal(got[[0, 3]], new[[0, 3]])
        np.testing.assert_array_equal(got[[1, 2]], old[[1, 2]])
    with pytest.raises(ValueError, match=r"accept: expected one boolean per chain, shape \(4,\)"):
        accept_moves(state, proposed, mask[:2])
