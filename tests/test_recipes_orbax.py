"""The orbax recipe of docs/other-libraries.md (docs/recipes/orbax_roundtrip.py): bit-exact round trips."""

from __future__ import annotations

from pathlib import Path
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
    require("orbax.checkpoint")
    return load_recipe("orbax_roundtrip")


BUILDERS = {
    "RBM complex128": lambda key: eqx_rbm.RBM(8, alpha=2, param_dtype=jnp.complex128, key=key),
    "RBM float32, no hidden bias": lambda key: eqx_rbm.RBM(
        8, alpha=1.5, use_hidden_bias=False, param_dtype=jnp.float32, key=key
    ),
    "RBMMultiVal": lambda key: eqx_rbm.RBMMultiVal(
        5, n_classes=3, local_states=(-1.0, 0.0, 1.0), alpha=1, key=key
    ),
}


def assert_bit_identical(restored, model) -> None:
    leaves, restored_leaves = jax.tree.leaves(model), jax.tree.leaves(restored)
    assert jax.tree.structure(restored) == jax.tree.structure(model)
    for a, b in zip(leaves, restored_leaves, strict=True):
        assert isinstance(b, jax.Array) and b.dtype == a.dtype and b.shape == a.shape
        np.testing.assert_array_equal(np.asarray(b).view(np.uint8), np.asarray(a).view(np.uint8))


def inputs(model) -> jax.Array:
    states = jnp.asarray(model.local_states if isinstance(model, eqx_rbm.RBMMultiVal) else (-1.0, 1.0))
    n = model.n_sites if isinstance(model, eqx_rbm.RBMMultiVal) else model.n_visible
    return jax.random.choice(jax.random.key(3), states, (7, n))


@pytest.mark.parametrize("name", list(BUILDERS))
def test_model_round_trip_is_bit_exact(recipe: ModuleType, tmp_path: Path, name: str) -> None:
    build = BUILDERS[name]
    model = build(jax.random.key(0))
    recipe.save_model(tmp_path / "model", model)
    template = eqx.filter_eval_shape(build, jax.random.key(1))
    assert not any(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(template))
    restored = recipe.restore_model(tmp_path / "model", template)
    assert type(restored) is type(model)
    assert_bit_identical(restored, model)
    x = inputs(model)
    np.testing.assert_array_equal(restored(x), model(x))


@pytest.mark.parametrize("name", list(BUILDERS))
def test_variables_round_trip_is_bit_exact_and_netket_reads_it(
    recipe: ModuleType, tmp_path: Path, name: str
) -> None:
    nk = require("netket")
    model = BUILDERS[name](jax.random.key(0))
    variables = eqx_rbm.to_variables(model)
    recipe.save_variables(tmp_path / "variables", variables)
    restored_variables = recipe.restore_variables(tmp_path / "variables")
    assert jax.tree.structure(restored_variables) == jax.tree.structure(variables)
    assert_bit_identical(restored_variables, variables)

    multival = isinstance(model, eqx_rbm.RBMMultiVal)
    restored = eqx_rbm.from_variables(
        restored_variables,
        **({"n_classes": model.n_classes, "local_states": model.local_states} if multival else {}),
        alpha=model.alpha,
    )
    assert_bit_identical(restored, model)
    # NetKet's own model evaluates the restored variables to the same numbers.
    x = inputs(model)
    if multival:
        reference = nk.models.RBMMultiVal(
            n_classes=model.n_classes, alpha=model.alpha, param_dtype=model.param_dtype
        )
        x = jnp.searchsorted(jnp.asarray(model.local_states), x)  # NetKet's classes 0..n-1
    else:
        reference = nk.models.RBM(
            alpha=model.alpha, use_hidden_bias=model.use_hidden_bias, param_dtype=model.param_dtype
        )
    np.testing.assert_allclose(reference.apply(restored_variables, x), restored(inputs(model)), rtol=1e-6)
