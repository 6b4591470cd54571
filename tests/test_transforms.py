"""The models under JAX/Equinox transformations, serialisation and NetKet's variational states."""

from __future__ import annotations

import io

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_params_init, require, spins

import eqx_rbm

KEY = jax.random.key(0)


def models():
    init = random_params_init()
    return [
        eqx_rbm.RBM(6, alpha=2, kernel_init=init, key=KEY),
        eqx_rbm.RBM(6, alpha=1, param_dtype=jnp.complex128, kernel_init=init, key=KEY),
        eqx_rbm.RBMMultiVal(3, 2, local_states=(-1, 1), kernel_init=init, key=KEY),
    ]


def inputs(model, batch=(4,)):
    if isinstance(model, eqx_rbm.RBMMultiVal):
        return jnp.asarray(spins(np.random.default_rng(0), batch, model.n_sites))
    return jnp.asarray(spins(np.random.default_rng(0), batch, model.n_visible))


@pytest.mark.parametrize("model", models(), ids=["real", "complex", "multival"])
def test_jit_filter_jit_and_vmap_give_the_eager_values(model):
    x = inputs(model, (4, 3))
    eager = np.asarray(model(x))
    np.testing.assert_allclose(np.asarray(jax.jit(lambda m, x: m(x))(model, x)), eager, rtol=1e-14)
    np.testing.assert_allclose(np.asarray(eqx.filter_jit(lambda m, x: m(x))(model, x)), eager, rtol=1e-14)
    np.testing.assert_allclose(np.asarray(jax.vmap(jax.vmap(model))(x)), eager, rtol=1e-14)
    # vmap over models (a batch of parameters) as well as over inputs.
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), model, model)
    doubled = eqx.filter_vmap(lambda m: m(x))(stacked)
    np.testing.assert_allclose(np.asarray(doubled), np.stack([eager, eager]), rtol=1e-14)


def test_grad_and_filter_grad_match_finite_differences():
    model = models()[0]
    x = inputs(model)

    def loss(m):
        return jnp.mean(m(x))

    grads = eqx.filter_grad(loss)(model)
    params, static = eqx.partition(model, eqx.is_array)
    grads_jax = jax.grad(lambda p: loss(eqx.combine(p, static)))(params)
    np.testing.assert_array_equal(np.asarray(grads.kernel), np.asarray(grads_jax.kernel))
    step = 1e-6
    for i, j in [(0, 0), (3, 7), (5, 11)]:
        bumped = eqx.tree_at(lambda m: m.kernel, model, model.kernel.at[i, j].add(step))
        lowered = eqx.tree_at(lambda m: m.kernel, model, model.kernel.at[i, j].add(-step))
        fd = (loss(bumped) - loss(lowered)) / (2 * step)
        np.testing.assert_allclose(float(grads.kernel[i, j]), float(fd), rtol=1e-6, atol=1e-10)


def test_tree_at_surgery_changes_the_function():
    model = models()[0]
    x = inputs(model)
    zeroed = eqx.tree_at(lambda m: (m.kernel, m.hidden_bias), model, (jnp.zeros((6, 12)), jnp.zeros(12)))
    # With W = b = 0 every hidden unit contributes log cosh 0 = 0: only x·a remains.
    np.testing.assert_allclose(np.asarray(zeroed(x)), np.asarray(x @ model.visible_bias), rtol=1e-14)
    no_visible = eqx.tree_at(lambda m: m.visible_bias, model, None)
    assert not no_visible.use_visible_bias
    np.testing.assert_allclose(
        np.asarray(no_visible(x)), np.asarray(model(x) - x @ model.visible_bias), rtol=1e-12
    )


@pytest.mark.parametrize("model", models(), ids=["real", "complex", "multival"])
def test_serialisation_round_trip_is_bit_exact(model):
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, model)
    buffer.seek(0)
    like = jax.tree.map(jnp.zeros_like, model)
    restored = eqx.tree_deserialise_leaves(buffer, like)
    for a, b in zip(jax.tree.leaves(model), jax.tree.leaves(restored), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    x = inputs(model)
    np.testing.assert_array_equal(np.asarray(restored(x)), np.asarray(model(x)))


def test_filter_jit_training_step_with_optax_lowers_the_loss():
    optax = require("optax")
    model = eqx_rbm.RBM(4, alpha=1, key=KEY)
    x = inputs(model, (16,))
    target = jnp.sum(x[:, :2], axis=-1) * 0.3
    optimiser = optax.adam(1e-2)
    state = optimiser.init(eqx.filter(model, eqx.is_array))

    @eqx.filter_jit
    def step(model, state):
        loss, grads = eqx.filter_value_and_grad(lambda m: jnp.mean((m(x) - target) ** 2))(model)
        updates, state = optimiser.update(grads, state)
        return eqx.apply_updates(model, updates), state, loss

    losses = []
    for _ in range(50):
        model, state, loss = step(model, state)
        losses.append(float(loss))
    assert losses[-1] < 0.1 * losses[0]


def test_inside_netket_full_sum_state_matches_netket_model():
    nk = require("netket")
    hilbert = nk.hilbert.Spin(0.5, 6)
    model = eqx_rbm.RBM(6, alpha=1, kernel_init=random_params_init(), key=KEY)
    ours = nk.vqs.FullSumState(hilbert, model)
    reference = nk.vqs.FullSumState(hilbert, nk.models.RBM(alpha=1))
    reference.variables = {
        "params": {
            "Dense": {"kernel": model.kernel, "bias": model.hidden_bias},
            "visible_bias": model.visible_bias,
        }
    }
    hamiltonian = nk.operator.IsingJax(hilbert, nk.graph.Chain(6), h=1.0)
    e_ours, g_ours = ours.expect_and_grad(hamiltonian)
    e_ref, g_ref = reference.expect_and_grad(hamiltonian)
    np.testing.assert_allclose(float(e_ours.mean.real), float(e_ref.mean.real), rtol=1e-12)
    leaves = jax.tree.leaves(g_ours)
    assert len(leaves) == 3
    np.testing.assert_allclose(
        np.asarray(jax.tree.leaves(g_ours)[0]), np.asarray(g_ref["Dense"]["kernel"]), rtol=1e-10, atol=1e-14
    )


def test_inside_netket_mc_state_samples_and_evaluates():
    nk = require("netket")
    hilbert = nk.hilbert.Fock(n_max=2, N=4)
    model = eqx_rbm.RBMMultiVal(4, 3, key=KEY)
    sampler = nk.sampler.MetropolisLocal(hilbert, n_chains=4)
    state = nk.vqs.MCState(sampler, model, n_samples=64, seed=0, sampler_seed=1)
    samples = state.samples.reshape(-1, 4)
    np.testing.assert_allclose(np.asarray(state.log_value(samples)), np.asarray(model(samples)), rtol=1e-14)
    energy = state.expect(nk.operator.BoseHubbardJax(hilbert, nk.graph.Chain(4), U=1.0))
    assert np.isfinite(float(energy.mean.real))
