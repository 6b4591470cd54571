"""Flax's tabulate draws the same table for the twins as for NetKet's models."""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import require

with contextlib.suppress(ImportError):  # reported by the fixture below
    import eqx_rbm.linen as linen


@pytest.fixture(autouse=True)
def _flax():
    require("flax")


SPINS = jnp.asarray(np.random.default_rng(0).choice([-1.0, 1.0], size=(6, 5)))
LEVELS = jnp.asarray(np.random.default_rng(1).integers(0, 3, size=(6, 4)), dtype=jnp.int32)

RBM_CASES = [
    ({"alpha": 2}, SPINS, {}),
    ({"alpha": 1, "use_visible_bias": False}, SPINS, {"depth": 0}),
    ({"alpha": 3, "use_hidden_bias": False, "param_dtype": jnp.complex64}, SPINS[0], {}),
    ({"alpha": 2}, SPINS.astype(jnp.float32), {"console_kwargs": {"width": 200}}),
]


@pytest.mark.parametrize(("config", "x", "options"), RBM_CASES)
def test_rbm_table_matches_netket(config, x, options):
    nk = require("netket")
    key = jax.random.key(0)
    ours = linen.RBM(**config).tabulate(key, x, **options)
    assert ours == nk.models.RBM(**config).tabulate(key, x, **options)  # styles included
    assert "│ Dense │ Dense" in ours or options.get("depth") == 0


@pytest.mark.parametrize("options", [{}, {"depth": 1}, {"show_repeated": True}])
def test_multival_table_matches_netket(options):
    nk = require("netket")
    key = jax.random.key(0)
    ours = linen.RBMMultiVal(3, alpha=2).tabulate(key, LEVELS, **options)
    assert ours == nk.models.RBMMultiVal(n_classes=3, alpha=2).tabulate(key, LEVELS, **options)
