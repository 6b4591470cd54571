"""The local energies of the benchmark runner's VMC cases agree with NetKet's operators."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import require

import eqx_rbm
from benchmarks import vmc


@eqx.filter_jit
def _log_ratios(model, connected, x):
    # One compiled program: eagerly, each operation of the two evaluations compiles on its own.
    return model(connected) - model(x)[:, None]


def netket_local_energies(operator, model, x):
    connected, elements = operator.get_conn_padded(np.asarray(x))
    log_psi = _log_ratios(model, jnp.asarray(connected, jnp.float64), x)
    return jnp.sum(jnp.asarray(elements) * jnp.exp(log_psi), axis=-1)


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
    ours = vmc.local_energies(model, x, np.asarray(graph.edges()), heisenberg=True, product=product)
    expected = netket_local_energies(hamiltonian, model, x)
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-10)


# The lattice reaches our side only as the array of bonds, and the dtype only the model: each
# dtype and each lattice once.
@pytest.mark.parametrize(("dtype", "lattice"), [(jnp.float64, "chain"), (jnp.complex128, "square")])
def test_tfim_energies_match_netkets_operator(dtype, lattice):
    nk = require("netket")
    graph = nk.graph.Chain(12, pbc=True) if lattice == "chain" else nk.graph.Square(4, pbc=True)
    hamiltonian = vmc.tfim(graph)  # what the runner's NetKet side samples
    model = eqx_rbm.RBM(graph.n_nodes, alpha=2, param_dtype=dtype, key=jax.random.key(0))
    x = jnp.asarray(hamiltonian.hilbert.random_state(jax.random.key(1), 128), jnp.float64)
    ours = vmc.local_energies(model, x, np.asarray(graph.edges()))
    expected = netket_local_energies(hamiltonian.to_local_operator(), model, x)
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-10)
