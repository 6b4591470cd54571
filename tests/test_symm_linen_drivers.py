"""The symmetric Linen twins in NetKet's drivers: the same runs as NetKet's RBMSymm.

The runs agree to 1e-10 relative, far above rounding: this file compiles without LLVM's
expensive passes (tests/conftest.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_same_run, full_sum_descent, leaves_identical, require

import eqx_rbm.linen as linen


@pytest.fixture(autouse=True)
def _flax():
    require("flax")


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.complex128])
def test_full_sum_gradient_descent_matches_netket(dtype):
    nk = require("netket")
    graph = nk.graph.Chain(8)
    hilbert = nk.hilbert.Spin(0.5, 8)
    hamiltonian = nk.operator.IsingJax(hilbert, graph, h=1.0)
    group = graph.translation_group()
    net = nk.models.RBMSymm(group, alpha=2, param_dtype=dtype)
    variables = net.init(jax.random.key(0), hilbert.all_states()[:1])
    twin = linen.RBMSymm(group, alpha=2, param_dtype=dtype)
    ours = full_sum_descent(nk, hilbert, hamiltonian, twin, variables, learning_rate=0.01)
    reference = full_sum_descent(nk, hilbert, hamiltonian, net, variables, learning_rate=0.01)
    assert_same_run(ours, reference)
    assert ours[0][-1].real < ours[0][0].real  # the run actually optimises


def test_mcstate_vmc_sr_matches_netket():
    nk = require("netket")
    optax = require("optax")
    graph = nk.graph.Chain(8)
    hilbert = nk.hilbert.Spin(0.5, 8)
    hamiltonian = nk.operator.IsingJax(hilbert, graph, h=1.0)
    group = graph.translation_group()

    def run(model):
        sampler = nk.sampler.MetropolisLocal(hilbert, n_chains=8)
        # 16 discarded sweeps, as many as kept: NetKet's sampling compiles one chain for both calls.
        vstate = nk.vqs.MCState(sampler, model, n_samples=128, n_discard_per_chain=16, seed=3, sampler_seed=5)
        initial = jax.tree.map(np.asarray, vstate.parameters)
        driver = nk.driver.VMC_SR(hamiltonian, optax.sgd(0.05), diag_shift=0.1, variational_state=vstate)
        log = nk.logging.RuntimeLog()
        driver.run(2, out=log, show_progress=False)
        return initial, np.asarray(log.data["Energy"]["Mean"]), vstate.parameters

    ours = run(linen.RBMSymm(group, alpha=2))
    theirs = run(nk.models.RBMSymm(group, alpha=2))
    assert leaves_identical(ours[0], theirs[0])  # the same seed, NetKet's parameters
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-10, atol=0)
    for a, b in zip(jax.tree.leaves(ours[2]), jax.tree.leaves(theirs[2]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-13)
