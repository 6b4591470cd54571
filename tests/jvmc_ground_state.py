"""jVMC ground-state searches with the recipe of docs/other-libraries.md.

The file name does not match `test_*.py`, so the main test run does not
collect it: jVMC pins an older JAX than the test extra. `.ci/run` runs it by
path in a virtual environment of its own, where a missing jVMC is an error.
"""

from __future__ import annotations

from functools import reduce
from types import ModuleType

import numpy as np
import pytest
from helpers import load_recipe, require
from test_recipes_jvmc import N_SITES, occupations


@pytest.fixture(scope="module")
def recipe() -> ModuleType:
    require("jVMC")
    return load_recipe("jvmc_rbm")


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
def test_ground_state(recipe: ModuleType, symmetries, steps, tolerance) -> None:
    dense = dense_tfim()
    exact = float(np.linalg.eigvalsh(dense)[0])
    psi, energy = recipe.ground_state(recipe.SpinRBM(), n_sites=N_SITES, symmetries=symmetries, steps=steps)
    assert psi.holomorphic  # jVMC found the complex twin holomorphic by itself
    assert abs(energy - exact) < tolerance * abs(exact), (energy, exact)
    np.testing.assert_allclose(full_sum_energy(psi, dense), energy, rtol=1e-10)
