"""The jVMC recipe of docs/other-libraries.md (docs/recipes/jvmc_rbm.py): input conventions.

These tests need only Flax. The ground-state searches need jVMC itself, which
pins an older JAX than the main test environment; they live in
`tests/jvmc_ground_state.py`, which `.ci/run` runs by path in a virtual
environment of its own.
"""

from __future__ import annotations

from types import ModuleType

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import load_recipe, require

import eqx_rbm

N_SITES = 6


@pytest.fixture(scope="module")
def recipe() -> ModuleType:
    require("flax")
    return load_recipe("jvmc_rbm")


def occupations() -> jax.Array:
    bits = (np.arange(2**N_SITES)[:, None] >> np.arange(N_SITES)[::-1]) & 1
    return jnp.asarray(bits, dtype=jnp.int32)


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.complex128])
def test_spin_rbm_is_the_twin_on_spins(recipe: ModuleType, dtype) -> None:
    n = occupations()
    net = recipe.SpinRBM(alpha=2, param_dtype=dtype)
    variables = net.init(jax.random.key(0), n[0])  # one configuration, as jVMC initialises it
    model = eqx_rbm.from_variables({"params": variables["params"]["RBM_0"]})
    assert model.param_dtype == dtype
    expected = model(2 * n - 1)
    np.testing.assert_allclose(net.apply(variables, n), expected, rtol=1e-14)
    single = net.apply(variables, n[5])
    assert single.shape == ()
    np.testing.assert_allclose(single, expected[5], rtol=1e-14)


def test_occupation_rbm_differs_by_a_constant(recipe: ModuleType) -> None:
    init = jax.nn.initializers.normal(0.3)
    model = eqx_rbm.RBM(
        N_SITES, alpha=2, param_dtype=jnp.complex128, kernel_init=init, hidden_bias_init=init,
        visible_bias_init=init, key=jax.random.key(2),
    )  # fmt: skip
    n = occupations()
    difference = recipe.occupation_rbm(model)(n) - model(2 * n - 1)
    np.testing.assert_allclose(difference, jnp.full(n.shape[0], jnp.sum(model.visible_bias)), rtol=1e-12)
