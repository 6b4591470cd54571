"""RBMMultiValSymm reaches the exact ground state of a small Bose-Hubbard ring by exact summation."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from helpers import require

import eqx_rbm

STEPS = 2000
# Measured: a relative error of 1.2e-10 after 2000 steps (seed 0); the bound leaves room for
# other platforms' rounding and optimiser paths.
TOLERANCE = 1e-7


def test_bose_hubbard_ring_ground_state():
    nk = require("netket")
    optax = require("optax")
    length, n_bosons, n_max = 4, 4, 4
    graph = nk.graph.Chain(length, pbc=True)
    hilbert = nk.hilbert.Fock(n_max=n_max, N=length, n_particles=n_bosons)
    hamiltonian = nk.operator.BoseHubbard(hilbert, graph=graph, U=4.0, J=1.0)
    h_matrix = np.asarray(hamiltonian.to_dense())
    exact = float(np.linalg.eigvalsh(h_matrix)[0])
    x = jnp.asarray(hilbert.all_states(), jnp.int32)  # the whole fixed-number sector: 35 states
    assert x.shape == (35, length)

    model = eqx_rbm.RBMMultiValSymm(graph.translation_group(), n_max + 1, alpha=1, key=jax.random.key(0))
    assert model.kernel.shape == (5, 5, 4)  # 110 parameters

    def energy(model, h):
        log_psi = model(x)
        psi = jnp.exp(log_psi - jax.lax.stop_gradient(jnp.max(log_psi)))
        return psi @ (h @ psi) / (psi @ psi)

    optimiser = optax.adam(optax.exponential_decay(0.02, STEPS, 0.01))

    @eqx.filter_jit
    def train(model, h):
        params, static = eqx.partition(model, eqx.is_inexact_array)

        def step(carry, _):
            params, opt_state = carry
            value, grads = jax.value_and_grad(lambda p: energy(eqx.combine(p, static), h))(params)
            updates, opt_state = optimiser.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), value

        (params, _), history = jax.lax.scan(step, (params, optimiser.init(params)), None, length=STEPS)
        return eqx.combine(params, static), history

    trained, history = train(model, jnp.asarray(h_matrix))
    final = float(energy(trained, jnp.asarray(h_matrix)))
    assert final >= exact - 1e-12  # variational
    assert abs(final - exact) / abs(exact) < TOLERANCE, (final, exact)
    assert float(history[0]) - exact > 100 * (final - exact)  # the training did the work
    # The trained state is translation invariant.
    shifted = jnp.roll(x, 1, axis=-1)
    np.testing.assert_allclose(trained(shifted), trained(x), rtol=1e-12, atol=1e-12)
