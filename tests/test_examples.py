"""Fast checks of the exact references the example scripts compare against.

The scripts themselves run in CI with `--smoke`; here only their exact-diagonalisation and
free-fermion helpers are imported and checked against independent results, in a few seconds.
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from helpers import require

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    require("optax")
    require("rich")
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dense_tfim(n_spins: int, field: float, coupling: float, periodic: bool) -> np.ndarray:
    """The TFIM Hamiltonian built from Kronecker products, independent of the scripts' bit tricks."""
    sx = np.array([[0.0, 1.0], [1.0, 0.0]])
    sz = np.diag([1.0, -1.0])

    def site_op(op: np.ndarray, i: int) -> np.ndarray:
        out = np.eye(1)
        for j in range(n_spins):
            out = np.kron(out, op if j == i else np.eye(2))
        return out

    h = np.zeros((2**n_spins, 2**n_spins))
    n_bonds = n_spins if periodic else n_spins - 1
    for i in range(n_bonds):
        h -= coupling * site_op(sz, i) @ site_op(sz, (i + 1) % n_spins)
    for i in range(n_spins):
        h -= field * site_op(sx, i)
    return h


@pytest.mark.parametrize(("n_spins", "field", "periodic"), [(6, 1.0, True), (7, 0.4, False), (8, 2.5, True)])
def test_lanczos_ground_energy(n_spins: int, field: float, periodic: bool) -> None:
    example = load("tfim_ground_state")
    expected = np.linalg.eigvalsh(dense_tfim(n_spins, field, 1.0, periodic))[0]
    assert example.exact_ground_energy(n_spins, field, 1.0, periodic) == pytest.approx(expected, rel=1e-11)


@pytest.mark.parametrize(("n_spins", "field"), [(4, 0.3), (6, 1.0), (5, 2.0), (8, 0.9)])
def test_free_fermion_energy(n_spins: int, field: float) -> None:
    example = load("tfim_vmc")
    expected = np.linalg.eigvalsh(dense_tfim(n_spins, field, 1.0, True))[0]
    assert example.free_fermion_energy(n_spins, field, 1.0) == pytest.approx(expected, rel=1e-11)
    assert example.dense_ed_energy(n_spins, field, 1.0) == pytest.approx(expected, rel=1e-11)


def test_bose_hubbard_two_sites() -> None:
    example = load("bose_hubbard")
    t, u = 1.0, 4.0
    states = example.fixed_number_sector(2, 2, 3)
    assert sorted(map(tuple, states.tolist())) == [(0, 2), (1, 1), (2, 0)]
    h = example.hamiltonian(states, 3, t, u)
    # Symmetric sector {(|20> + |02>)/sqrt2, |11>}: [[U, -2t], [-2t, 0]].
    assert np.linalg.eigvalsh(h)[0] == pytest.approx(u / 2 - np.sqrt(u**2 / 4 + 4 * t**2), rel=1e-12)


def test_bose_hubbard_sector_and_truncation() -> None:
    example = load("bose_hubbard")
    states = example.fixed_number_sector(6, 6, 3)
    brute = [s for s in itertools.product(range(4), repeat=6) if sum(s) == 6]
    assert len(states) == len(brute) == 336
    h = example.hamiltonian(states, 3, 1.0, 4.0)
    np.testing.assert_allclose(h, h.T)
    # Without interaction and far from the cut-off, one boson hops freely: E = -2t.
    one = example.fixed_number_sector(6, 1, 3)
    assert np.linalg.eigvalsh(example.hamiltonian(one, 3, 1.0, 0.0))[0] == pytest.approx(-2.0)


def all_spins(n_spins: int) -> np.ndarray:
    """Every configuration, in the order of `dense_tfim`'s basis (site 0 the most significant, +1 first)."""
    bits = (np.arange(2**n_spins)[:, None] >> np.arange(n_spins - 1, -1, -1)) & 1
    return (1 - 2 * bits).astype(float)


@pytest.mark.parametrize("complex_params", [False, True])
def test_vmc_local_energies_and_sr_gradient(complex_params: bool) -> None:
    """The VMC example's phases against dense linear algebra and per-sample autodiff."""
    import jax
    import jax.numpy as jnp

    import eqx_rbm

    example = load("tfim_vmc")
    n_spins, field, coupling, shift = 6, 0.7, 1.0, 1e-2
    model, _ = example.initial_state(
        n_spins, 1, 4, jax.random.key(0), jax.random.key(1), complex_params=complex_params
    )
    # Larger parameters than the initialisation's, so that the local energies vary.
    model = jax.tree.map(lambda p: 30 * p, model)
    configs = all_spins(n_spins)
    psi = np.exp(np.asarray(model(jnp.asarray(configs))))
    h_psi = dense_tfim(n_spins, field, coupling, True) @ psi
    samples = jnp.asarray(configs[::3])
    e_loc = example.local_energies(model, samples, field, coupling)
    np.testing.assert_allclose(e_loc, (h_psi / psi)[::3], rtol=1e-10)
    assert jnp.iscomplexobj(e_loc) == complex_params

    direction = eqx_rbm.sr_gradient(model, samples, e_loc, diag_shift=shift)
    grads = jax.vmap(jax.grad(lambda m, x: m(x), holomorphic=complex_params), in_axes=(None, 0))(
        model, samples
    )
    o = np.concatenate([np.asarray(g).reshape(len(samples), -1) for g in jax.tree.leaves(grads)], axis=1)
    y = o - o.mean(axis=0)
    n = len(samples)
    s = y.conj().T @ y / n + shift * np.eye(y.shape[1])
    f = y.conj().T @ (np.asarray(e_loc) - np.mean(e_loc)) / n
    expected = np.linalg.solve(s, f)
    got = np.concatenate([np.asarray(d).ravel() for d in jax.tree.leaves(direction)])
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)
