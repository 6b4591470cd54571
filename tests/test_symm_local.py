"""Local updates of the symmetric models agree with full recomputation; log psi is invariant."""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import normal_init
from hypothesis import given, settings
from hypothesis import strategies as st

import eqx_rbm
from eqx_rbm import accept, exchange_log_ratios, local_state, propose, site_log_ratios

TOL = {"rtol": 1e-10, "atol": 1e-10}
N_CHAINS = 5
SPIN_STATES = (-1.0, 1.0)
BOSON_STATES = (0, 1, 2, 3)
# A 4x3 torus: translations, and translations with the two reflections (a space group).
SHAPE = (4, 3)
wide = normal_init(0.7)
wide_c = normal_init(0.7, dtype=jnp.complex128)


def _space_group() -> np.ndarray:
    grid = np.arange(12).reshape(SHAPE)
    perms = []
    for flip_rows in (False, True):
        for flip_cols in (False, True):
            g = grid[::-1] if flip_rows else grid
            g = g[:, ::-1] if flip_cols else g
            perms += [np.roll(g, (a, b), axis=(0, 1)).reshape(-1) for a in range(4) for b in range(3)]
    return np.array(perms)


GROUP = _space_group()  # 48 permutations of 12 sites


@functools.cache
def _model(kind):
    if kind == "multival":
        return eqx_rbm.RBMMultiValSymm(
            GROUP,
            len(BOSON_STATES),
            alpha=2,
            kernel_init=wide,
            hidden_bias_init=wide,
            visible_bias_init=wide,
            key=jax.random.key(2),
        )
    dtype, init = (jnp.complex128, wide_c) if kind == "complex" else (jnp.float64, wide)
    return eqx_rbm.RBMSymm(
        GROUP,
        alpha=12,
        param_dtype=dtype,
        kernel_init=init,
        hidden_bias_init=init,
        visible_bias_init=init,
        key=jax.random.key(1),
    )


def _states(kind):
    return np.asarray(BOSON_STATES if kind == "multival" else SPIN_STATES)


def _moved(x, sites, new_values):
    out = np.array(x)
    for index in np.ndindex(out.shape[:-1]):
        out[index][np.asarray(sites)[index]] = np.asarray(new_values)[index]
    return jnp.asarray(out)


@eqx.filter_jit
def _propose_and_full(model, x, sites, new_values, x_new):
    delta, proposed = propose(model, local_state(model, x), sites, new_values)
    return delta, proposed, model(x_new) - model(x), local_state(model, x_new)


@settings(max_examples=6, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    k=st.sampled_from([1, 2]),
    kind=st.sampled_from(["real", "complex", "multival"]),
)
def test_propose_matches_full_recomputation(seed, k, kind):
    model, states = _model(kind), _states(kind)
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.choice(states, size=(N_CHAINS, 12)))
    sites = jnp.asarray(np.stack([rng.choice(12, size=k, replace=False) for _ in range(N_CHAINS)]))
    new_values = jnp.asarray(rng.choice(states, size=(N_CHAINS, k)))
    x_new = _moved(x, sites, new_values)
    delta, proposed, full, fresh = _propose_and_full(model, x, sites, new_values, x_new)
    # The state carries theta for every (filter, group element).
    assert proposed.theta.shape == (N_CHAINS, model.n_filters * len(GROUP))
    assert delta.dtype == full.dtype
    np.testing.assert_allclose(delta, full, **TOL)
    np.testing.assert_array_equal(proposed.x, x_new)
    np.testing.assert_allclose(proposed.theta, fresh.theta, **TOL)
    np.testing.assert_allclose(proposed.hidden_sum, fresh.hidden_sum, **TOL)
    np.testing.assert_allclose(proposed.log_psi(model), model(x_new), **TOL)


@eqx.filter_jit
def _all_ratios(model, x, new_values, pairs):
    state = local_state(model, x)
    on_site = jnp.eye(x.shape[-1], dtype=bool)
    singles = jnp.where(on_site, new_values[..., None, :], x[..., None, :])
    swapped = x[..., pairs[:, [1, 0]]]
    exchanges = jnp.broadcast_to(x[..., None, :], (*x.shape[:-1], len(pairs), x.shape[-1]))
    exchanges = jax.vmap(lambda rows, v: rows.at[jnp.arange(len(pairs))[:, None], pairs].set(v))(
        exchanges, swapped
    )
    return (
        site_log_ratios(model, state, new_values),
        model(singles) - model(x)[..., None],
        exchange_log_ratios(model, state, pairs),
        model(exchanges) - model(x)[..., None],
    )


@pytest.mark.parametrize("kind", ["real", "complex", "multival"])
def test_site_and_exchange_ratios_match_full_recomputation(kind):
    model, states = _model(kind), _states(kind)
    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.choice(states, size=(N_CHAINS, 12)))
    new_values = jnp.asarray(rng.choice(states, size=(N_CHAINS, 12)))
    pairs = jnp.asarray([(i, (i + 1) % 12) for i in range(12)] + [(0, 6), (3, 9)])
    sites, sites_full, exchanges, exchanges_full = _all_ratios(model, x, new_values, pairs)
    np.testing.assert_allclose(sites, sites_full, **TOL)
    np.testing.assert_allclose(exchanges, exchanges_full, **TOL)
    np.testing.assert_array_equal(np.asarray(sites)[np.asarray(new_values) == np.asarray(x)], 0.0)


@pytest.mark.parametrize("kind", ["complex", "multival"])
def test_metropolis_chain_stays_consistent(kind):
    model, states = _model(kind), jnp.asarray(_states(kind))
    x0 = jax.random.choice(jax.random.key(7), states, (N_CHAINS, 12))

    @jax.jit
    def run(x, key):
        def step(state, key):
            k_site, k_value, k_accept = jax.random.split(key, 3)
            sites = jax.random.randint(k_site, (N_CHAINS, 1), 0, 12)
            values = jax.random.choice(k_value, states, (N_CHAINS, 1))
            delta, proposed = propose(model, state, sites, values)
            mask = jax.random.uniform(k_accept, (N_CHAINS,)) < jnp.exp(2 * delta.real)
            return accept(state, proposed, mask), mask

        return jax.lax.scan(step, local_state(model, x), jax.random.split(key, 60))

    state, accepted = run(x0, jax.random.key(8))
    assert 0 < int(accepted.sum()) < accepted.size
    fresh = local_state(model, state.x)
    np.testing.assert_allclose(state.theta, fresh.theta, **TOL)
    np.testing.assert_allclose(state.log_psi(model), model(state.x), **TOL)


@eqx.filter_jit
def _log_psi_of_every_image(model, x):
    return model(x[..., GROUP]), model(x)  # (batch, G) and (batch,)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["real", "complex", "multival"]))
def test_log_psi_is_invariant_under_every_group_element(seed, kind):
    model, states = _model(kind), _states(kind)
    x = jnp.asarray(np.random.default_rng(seed).choice(states, size=(3, 12)))
    images, log_psi = _log_psi_of_every_image(model, x)
    assert images.shape == (3, len(GROUP))
    np.testing.assert_allclose(
        images, jnp.broadcast_to(log_psi[:, None], images.shape), rtol=1e-12, atol=1e-12
    )


def test_unknown_state_in_a_proposal():
    model = _model("multival")
    state = local_state(model, jnp.zeros((2, 12), jnp.int32))
    with pytest.raises(
        ValueError, match=r"new_values: expected every value to be one of local_states.*got 7"
    ):
        propose(model, state, jnp.array([[0], [1]]), jnp.array([[1], [7]]))
    with pytest.raises(Exception, match="not one of local_states"):
        jax.block_until_ready(
            eqx.filter_jit(propose)(model, state, jnp.array([[0], [1]]), jnp.array([[1], [7]]))
        )
