"""The NetKet recipe of docs/other-libraries.md (docs/recipes/netket_vmc.py): an Equinox model in
NetKet's variational states and the Flax twins, against NetKet's exact diagonalisation."""

from __future__ import annotations

from types import ModuleType

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import load_recipe, require

import eqx_rbm


@pytest.fixture(scope="module")
def recipe() -> ModuleType:
    require("netket")
    require("flax")
    require("optax")
    return load_recipe("netket_vmc")


@pytest.fixture(scope="module")
def ring(recipe: ModuleType):
    import netket as nk

    hilbert, hamiltonian = recipe.ising_ring(6)
    return hilbert, hamiltonian, float(nk.exact.lanczos_ed(hamiltonian, k=1)[0])


def exact_energy(hilbert, hamiltonian, vstate) -> float:
    import netket as nk

    full = nk.vqs.FullSumState(hilbert, vstate.model, variables=vstate.variables)
    return float(full.expect(hamiltonian).mean.real)


def test_equinox_model_is_a_netket_model(recipe: ModuleType, ring) -> None:
    import netket as nk

    hilbert, _, _ = ring
    model = eqx_rbm.RBM(hilbert.size, alpha=2, key=jax.random.key(0))
    vstate = nk.vqs.MCState(nk.sampler.MetropolisLocal(hilbert), model, n_samples=64, seed=0)
    assert isinstance(vstate.model, eqx_rbm.RBM) and eqx.tree_equal(vstate.model, model)
    x = hilbert.all_states()
    np.testing.assert_array_equal(vstate.log_value(x), model(x))
    # NetKet's own RBM reads the same parameters from eqx_rbm.to_variables.
    reference = nk.models.RBM(alpha=2).apply(eqx_rbm.to_variables(model), x)
    np.testing.assert_allclose(reference, model(x), rtol=1e-14)


@pytest.mark.parametrize("n_samples", [None, 1008], ids=["FullSumState", "MCState"])
def test_equinox_model_ground_state(recipe: ModuleType, ring, n_samples) -> None:
    hilbert, hamiltonian, exact = ring
    model = eqx_rbm.RBM(hilbert.size, alpha=2, key=jax.random.key(0))
    vstate = recipe.ground_state(model, hilbert, hamiltonian, n_samples=n_samples)
    trained = vstate.model
    assert isinstance(trained, eqx_rbm.RBM) and not eqx.tree_equal(trained, model)
    energy = exact_energy(hilbert, hamiltonian, vstate)
    assert abs(energy - exact) < 1e-4 * abs(exact), (energy, exact)


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.complex128])
def test_twin_ground_state_and_conversion(recipe: ModuleType, ring, dtype) -> None:
    import eqx_rbm.linen

    hilbert, hamiltonian, exact = ring
    twin = eqx_rbm.linen.RBM(alpha=2, param_dtype=dtype)
    vstate = recipe.ground_state(twin, hilbert, hamiltonian)
    energy = exact_energy(hilbert, hamiltonian, vstate)
    assert abs(energy - exact) < 1e-4 * abs(exact), (energy, exact)
    # The trained variables are NetKet's layout: they become an Equinox model and back.
    model = eqx_rbm.linen.to_equinox(twin, vstate.variables)
    assert model.param_dtype == dtype
    x = hilbert.all_states()
    np.testing.assert_allclose(model(x), vstate.log_value(x), rtol=1e-13)
