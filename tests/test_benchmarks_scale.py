"""The scale cases of the benchmark runner: their lattice, their parameter count, their limits."""

from __future__ import annotations

import jax
import pytest
from helpers import require

import eqx_rbm
from benchmarks import scale


def test_torus_bonds_are_netkets_square_lattice():
    nk = require("netket")
    for length in (3, 4, 6):
        ours = {tuple(sorted(b)) for b in scale.torus_bonds(length).tolist()}
        theirs = {tuple(sorted(e)) for e in nk.graph.Square(length, pbc=True).edges()}
        assert ours == theirs
        assert len(scale.torus_bonds(length)) == 2 * length * length


@pytest.mark.parametrize("length, alpha", [(3, 1), (4, 4)])
def test_parameter_count(length, alpha):
    model = eqx_rbm.RBM(length * length, alpha=alpha, key=jax.random.key(0))
    assert scale.n_parameters(length, alpha) == sum(a.size for a in jax.tree.leaves(model))


@pytest.mark.slow
def test_a_side_past_the_memory_limit_is_recorded(monkeypatch):
    monkeypatch.setattr(scale, "MEMORY_LIMIT", 64 * 2**20)  # any Python with JAX imported is past it
    params = {"side": "eqx_rbm", "dtype": "float64", "length": 3, "alpha": 1, "samples": 32, "chains": 16}
    out = scale._side({**params, "repeats": 1})
    assert set(out) == {"eqx_rbm status"}
    assert out["eqx_rbm status"].startswith("out of memory (stopped at")


@pytest.mark.slow
def test_a_side_reports_its_times_and_peak():
    params = {"side": "eqx_rbm", "dtype": "float64", "length": 3, "alpha": 1, "samples": 32, "chains": 16}
    out = scale._side({**params, "repeats": 1})
    assert set(out) == {"eqx_rbm", "eqx_rbm sample", "eqx_rbm local energies", "eqx_rbm SR", "eqx_rbm peak"}
    assert all(v > 0 for v in out.values())
    assert 50 * 2**20 < out["eqx_rbm peak"] < scale.MEMORY_LIMIT
