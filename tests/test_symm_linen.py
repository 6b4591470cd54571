"""The symmetric Linen twins: NetKet's variables, numbers and tables (NetKet's drivers with them:
tests/test_symm_linen_drivers.py)."""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close, leaves_identical, require

import eqx_rbm

with contextlib.suppress(ImportError):  # reported by the fixture below
    import eqx_rbm.linen as linen


@pytest.fixture(autouse=True)
def _flax():
    require("flax")


SPINS = jnp.asarray(np.random.default_rng(0).choice([-1.0, 1.0], size=(6, 9)))
LEVELS = jnp.asarray(np.random.default_rng(1).integers(0, 3, size=(6, 9)), dtype=jnp.int32)
CONFIGS = [
    ({"alpha": 16}, {}),
    ({"alpha": 8, "use_hidden_bias": False, "param_dtype": jnp.complex128}, {"depth": 0}),
    (
        {"alpha": 24, "use_visible_bias": False, "param_dtype": jnp.float32},
        {"console_kwargs": {"width": 200}},
    ),
]


@pytest.mark.parametrize(("config", "options"), CONFIGS)
def test_rbmsymm_twin_matches_netket(config, options):
    nk = require("netket")
    group = nk.graph.Square(3).space_group()
    twin, net = linen.RBMSymm(group, **config), nk.models.RBMSymm(group, **config)
    key = jax.random.key(4)
    reference = net.init(key, SPINS)
    assert leaves_identical(twin.init(key, SPINS), reference)
    x = SPINS.astype(jnp.finfo(config.get("param_dtype", jnp.float64)).dtype)
    ours, theirs = jax.jit(twin.apply)(reference, x), jax.jit(net.apply)(reference, x)
    assert ours.dtype == theirs.dtype
    assert_close(ours, theirs, theirs.dtype, "apply")
    assert twin.tabulate(key, SPINS, **options) == net.tabulate(key, SPINS, **options)  # styles included
    # The twin and the Equinox model are one computation.
    model = linen.to_equinox(twin, reference)
    assert isinstance(model, eqx_rbm.RBMSymm) and model.alpha == config["alpha"]
    np.testing.assert_array_equal(model(x), twin.apply(reference, x))
    back, variables = linen.to_linen(model)
    assert isinstance(back, linen.RBMSymm) and back.symmetries == twin.symmetries
    assert leaves_identical(variables, reference) and back.alpha == twin.alpha


def test_multival_twin_is_the_equinox_model():
    nk = require("netket")
    group = nk.graph.Square(3).translation_group()
    twin = linen.RBMMultiValSymm(group, 3, alpha=2, local_states=[-1, 0, 1])
    x = LEVELS - 1
    variables = twin.init(jax.random.key(6), x)
    model = eqx_rbm.RBMMultiValSymm(group, 3, alpha=2, local_states=(-1, 0, 1), key=jax.random.key(6))
    assert leaves_identical(variables, eqx_rbm.to_variables(model))  # the same key, the same variables
    assert jax.tree.map(jnp.shape, variables) == {
        "params": {"Dense": {"bias": (6,), "kernel": (6, 3, 9)}, "visible_bias": (3,)}
    }
    np.testing.assert_array_equal(jax.jit(twin.apply)(variables, x), model(x))
    twin_back, variables_back = linen.to_linen(model)
    assert twin_back == twin and leaves_identical(variables_back, variables)
    assert isinstance(linen.to_equinox(twin.bind(variables)), eqx_rbm.RBMMultiValSymm)
    table = twin.tabulate(jax.random.key(6), x, console_kwargs={"width": 200})
    assert "│ Dense │ DenseSymmMatrix │ float64[6,3,9] │ float64[6,6,9]" in table.replace(
        "\x1b[2m", ""
    ).replace("\x1b[0m", "")
    with pytest.raises(ValueError, match=r"x: expected every value to be one of local_states=\(-1, 0, 1\)"):
        twin.apply(variables, LEVELS)


def test_twin_errors():
    table = np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1]])
    with pytest.raises(ValueError, match="symmetries: expected every row to be a permutation"):
        linen.RBMSymm(np.zeros((2, 3), int))
    with pytest.raises(ValueError, match=r"x: expected shape \(\*batch, n_sites\) with n_sites=3"):
        linen.RBMSymm(table).init(jax.random.key(0), jnp.ones((2, 4)))
    with pytest.raises(ValueError, match=r"alpha: alpha=0.5 gives .*needs alpha >= 1"):
        linen.RBMSymm(table, alpha=0.5).init(jax.random.key(0), jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="n_classes: expected at least 2 classes"):
        linen.RBMMultiValSymm(table, 1)
