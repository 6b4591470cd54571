"""The Heisenberg local energies of the benchmark runner's symmetric VMC case agree with NetKet's operator."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import require

import eqx_rbm
from benchmarks import vmc


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.complex128])
@pytest.mark.parametrize("product", [True, False])
def test_heisenberg_energies_match_netkets_operator(dtype, product):
    nk = require("netket")
    graph = nk.graph.Square(4, pbc=True)
    hilbert = nk.hilbert.Spin(0.5, graph.n_nodes, total_sz=0)
    # The runner's NetKet side: Pauli matrices are 2 S, so J = 1/4 is sum S_i.S_j.
    hamiltonian = nk.operator.Heisenberg(hilbert, graph, J=0.25, sign_rule=True)
    model = eqx_rbm.RBMSymm(graph.translation_group(), alpha=2, param_dtype=dtype, key=jax.random.key(0))
    x = jnp.asarray(hilbert.random_state(jax.random.key(1), 128), jnp.float64)
    connected, elements = hamiltonian.get_conn_padded(np.asarray(x))
    log_psi = model(jnp.asarray(connected, jnp.float64)) - model(x)[:, None]
    expected = jnp.sum(jnp.asarray(elements) * jnp.exp(log_psi), axis=-1)
    ours = vmc.heisenberg_energies(model, x, np.asarray(graph.edges()), product)
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-10)
