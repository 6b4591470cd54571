"""The twins as drop-in replacements of NetKet's models in NetKet itself."""

from __future__ import annotations

import jax
import numpy as np
from helpers import assert_same_run, full_sum_descent, require

import eqx_rbm
import eqx_rbm.linen as linen


def test_full_sum_gradient_descent_matches_netket_rbm():
    nk = require("netket")
    hilbert = nk.hilbert.Spin(0.5, 6)
    hamiltonian = nk.operator.IsingJax(hilbert, nk.graph.Chain(6), h=1.0)
    net = nk.models.RBM(alpha=1)
    variables = net.init(jax.random.key(0), hilbert.all_states()[:1])
    ours = full_sum_descent(nk, hilbert, hamiltonian, linen.RBM(alpha=1), variables)
    reference = full_sum_descent(nk, hilbert, hamiltonian, net, variables)
    assert_same_run(ours, reference)
    assert ours[0][-1].real < ours[0][0].real  # the run actually optimises


def test_full_sum_gradient_descent_matches_netket_multival():
    nk = require("netket")
    hilbert = nk.hilbert.Fock(n_max=2, N=4)
    hamiltonian = nk.operator.BoseHubbard(hilbert, nk.graph.Chain(4), U=2.0, J=1.0)
    net = nk.models.RBMMultiVal(n_classes=3, alpha=1)
    variables = net.init(jax.random.key(1), hilbert.all_states()[:1])
    ours = full_sum_descent(nk, hilbert, hamiltonian, linen.RBMMultiVal(3, alpha=1), variables)
    reference = full_sum_descent(nk, hilbert, hamiltonian, net, variables)
    assert_same_run(ours, reference)


def test_mcstate_vmc_with_sr_drop_in():
    nk = require("netket")
    optax = require("optax")
    flax = require("flax")
    hilbert = nk.hilbert.Spin(0.5, 6)
    hamiltonian = nk.operator.IsingJax(hilbert, nk.graph.Chain(6), h=1.0)
    sampler = nk.sampler.MetropolisLocal(hilbert, n_chains=4)
    vstate = nk.vqs.MCState(sampler, linen.RBM(alpha=1), n_samples=64, n_discard_per_chain=2, seed=3)
    reference = nk.models.RBM(alpha=1).init(nk.jax.PRNGKey(3), hilbert.random_state(nk.jax.PRNGKey(3), 1))
    # The same seed gives NetKet's parameters, keyed exactly as NetKet keys them.
    assert jax.tree.structure(vstate.parameters) == jax.tree.structure(dict(reference["params"]))
    for a, b in zip(jax.tree.leaves(vstate.parameters), jax.tree.leaves(reference["params"]), strict=True):
        np.testing.assert_array_equal(a, b)
    driver = nk.VMC(
        hamiltonian, optax.sgd(0.05), variational_state=vstate, preconditioner=nk.optimizer.SR(diag_shift=0.1)
    )
    log = nk.logging.RuntimeLog()
    driver.run(1, out=log, show_progress=False)
    energies = np.asarray(log.data["Energy"]["Mean"])
    assert energies.shape == (1,) and np.all(np.isfinite(energies))
    # A NetKet checkpoint of this state moves into Equinox and back, bit for bit.
    restored = flax.serialization.msgpack_restore(flax.serialization.to_bytes(vstate))
    model = linen.to_equinox(vstate.model, restored)
    assert isinstance(model, eqx_rbm.RBM)
    # MCState.variables as they are; the model holds the very same arrays.
    direct = eqx_rbm.to_variables(linen.to_equinox(vstate.model, vstate.variables))
    pairs = zip(jax.tree.leaves(direct), jax.tree.leaves(vstate.variables), strict=True)
    assert all(a is b for a, b in pairs)
    back = eqx_rbm.to_variables(model)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(vstate.variables), strict=True):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_full_sum_state_from_equinox_model():
    nk = require("netket")
    hilbert = nk.hilbert.Spin(0.5, 6)
    eqx_model = eqx_rbm.RBM(6, alpha=1, key=jax.random.key(1))
    twin, variables = linen.to_linen(eqx_model)
    vstate = nk.vqs.FullSumState(hilbert, twin, variables=variables)
    states = hilbert.all_states()
    np.testing.assert_array_equal(vstate.log_value(states), eqx_model(states))
