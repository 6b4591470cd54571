"""The jVMC recipe of docs/other-libraries.md (docs/recipes/jvmc_rbm.py).

The input-convention tests need only Flax. The ground-state tests need jVMC,
which pins an older JAX than the main test environment: `.ci/run` runs this
file in a virtual environment of its own with EQX_RBM_JVMC=1, where a missing
jVMC is an error; elsewhere they are skipped when jVMC is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from functools import reduce
from pathlib import Path
from types import ModuleType

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require

import eqx_rbm

N_SITES = 6


def load_recipe(name: str) -> ModuleType:
    """Imports docs/recipes/<name>.py, the file the documentation page shows."""
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parent.parent / "docs" / "recipes" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def recipe() -> ModuleType:
    require("flax")
    return load_recipe("jvmc_rbm")


@pytest.fixture(scope="module")
def jvmc() -> ModuleType:
    if os.environ.get("EQX_RBM_JVMC") == "1" or importlib.util.find_spec("jVMC") is not None:
        return require("jVMC")
    pytest.skip("jVMC is not installed: .ci/run tests this recipe in a virtual environment of its own")


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


def dense_tfim(h: float = 1.0) -> np.ndarray:
    """-sum Z_i Z_{i+1} - h sum X_i on a ring, the first site the most significant bit."""
    x, z, eye = np.array([[0.0, 1.0], [1.0, 0.0]]), np.diag([1.0, -1.0]), np.eye(2)

    def at(o: np.ndarray, i: int) -> np.ndarray:
        return reduce(np.kron, [o if j == i else eye for j in range(N_SITES)])

    return -sum(at(z, i) @ at(z, (i + 1) % N_SITES) + h * at(x, i) for i in range(N_SITES))


def full_sum_energy(psi, dense: np.ndarray) -> float:
    """The energy of jVMC's state from its log amplitudes on every configuration."""
    log_psi = np.asarray(psi(occupations()[None]))[0]
    amplitudes = np.exp(log_psi - log_psi.real.max())
    return float(np.real(np.vdot(amplitudes, dense @ amplitudes) / np.vdot(amplitudes, amplitudes)))


@pytest.mark.parametrize(
    "symmetries, steps, tolerance",
    [((), 60, 2e-3), (("translation", "reflection", "spinflip"), 40, 5e-5)],
    ids=["plain", "orbit"],
)
def test_ground_state(recipe: ModuleType, jvmc: ModuleType, symmetries, steps, tolerance) -> None:
    dense = dense_tfim()
    exact = float(np.linalg.eigvalsh(dense)[0])
    psi, energy = recipe.ground_state(recipe.SpinRBM(), n_sites=N_SITES, symmetries=symmetries, steps=steps)
    assert psi.holomorphic  # jVMC found the complex twin holomorphic by itself
    assert abs(energy - exact) < tolerance * abs(exact), (energy, exact)
    np.testing.assert_allclose(full_sum_energy(psi, dense), energy, rtol=1e-10)
