"""to_variables / from_variables: NetKet's layout, exact round trips, clear errors."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require

import eqx_rbm
import eqx_rbm.linen as linen


def leaves_identical(a, b) -> bool:
    """Same tree, and every leaf has the same dtype, shape and bits."""
    if jax.tree.structure(a) != jax.tree.structure(b):
        return False
    return all(
        np.asarray(x).dtype == np.asarray(y).dtype
        and np.asarray(x).shape == np.asarray(y).shape
        and np.asarray(x).tobytes() == np.asarray(y).tobytes()
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def nested_keys(tree, prefix=()):
    out = []
    for k, v in tree.items():
        out.append((*prefix, k))
        if isinstance(v, dict):
            out += nested_keys(v, (*prefix, k))
    return out


@pytest.mark.parametrize(
    ("use_hidden_bias", "use_visible_bias"), [(True, True), (False, False), (True, False), (False, True)]
)
def test_rbm_layout_matches_netket_init(use_hidden_bias, use_visible_bias):
    nk = require("netket")
    flags = {"use_hidden_bias": use_hidden_bias, "use_visible_bias": use_visible_bias}
    x = jnp.ones((6, 5))
    reference = nk.models.RBM(alpha=2, **flags).init(jax.random.key(1), x)
    model = eqx_rbm.RBM(5, alpha=2, key=jax.random.key(7), **flags)
    ours = linen.to_variables(model)
    assert type(ours) is dict and type(ours["params"]) is dict
    # Same keys in the same order as Flax creates them, same shapes and dtypes.
    assert nested_keys(ours) == nested_keys(reference)
    shapes = jax.tree.map(lambda a: (a.shape, a.dtype), ours)
    assert shapes == jax.tree.map(lambda a: (a.shape, a.dtype), reference)
    assert ours["params"]["Dense"]["kernel"] is model.kernel  # the model's own arrays


def test_multival_layout_matches_netket_init():
    nk = require("netket")
    x = jnp.ones((6, 4), dtype=jnp.int32)
    reference = nk.models.RBMMultiVal(n_classes=3).init(jax.random.key(1), x)
    model = eqx_rbm.RBMMultiVal(4, 3, key=jax.random.key(2))
    ours = linen.to_variables(model)
    assert nested_keys(ours) == nested_keys(reference)
    assert jax.tree.map(jnp.shape, ours) == jax.tree.map(jnp.shape, reference)
    assert ours["params"]["RBM"]["Dense"]["kernel"] is model.rbm.kernel


@pytest.mark.parametrize(("use_hidden_bias", "use_visible_bias"), [(True, True), (False, False)])
def test_round_trip_from_netket_variables(use_hidden_bias, use_visible_bias):
    nk = require("netket")
    flags = {"use_hidden_bias": use_hidden_bias, "use_visible_bias": use_visible_bias}
    x = jnp.asarray(np.random.default_rng(0).choice([-1.0, 1.0], size=(6, 5)))
    net = nk.models.RBM(alpha=2.1, **flags)
    variables = net.init(jax.random.key(3), x)
    twin = linen.RBM(alpha=2.1, **flags)
    model = linen.from_variables(twin, variables)
    assert isinstance(model, eqx_rbm.RBM)
    assert model.alpha == 2.1 and model.use_hidden_bias == use_hidden_bias
    assert model.use_visible_bias == use_visible_bias and model.n_hidden == 10
    np.testing.assert_array_equal(model(x), net.apply(variables, x))
    assert leaves_identical(linen.to_variables(model), variables)


def test_round_trip_from_equinox_model_is_exact():
    for model in (
        eqx_rbm.RBM(5, alpha=2, key=jax.random.key(0)),
        eqx_rbm.RBMMultiVal(4, 3, local_states=(-2, 0, 2), use_hidden_bias=False, key=jax.random.key(1)),
    ):
        twin, variables = linen.to_linen(model)
        back = linen.from_variables(twin, variables)
        assert bool(eqx.tree_equal(back, model))
        assert jax.tree.structure(back) == jax.tree.structure(model)
        assert leaves_identical(back, model)


def test_multival_from_netket_variables_matches_netket():
    nk = require("netket")
    x = jnp.asarray(np.random.default_rng(1).integers(0, 3, size=(5, 4)), dtype=jnp.int32)
    net = nk.models.RBMMultiVal(n_classes=3)
    variables = net.init(jax.random.key(4), x)
    model = linen.from_variables(linen.RBMMultiVal(3), variables)
    assert isinstance(model, eqx_rbm.RBMMultiVal) and model.n_sites == 4 and model.n_classes == 3
    np.testing.assert_array_equal(model(x), net.apply(variables, x))
    assert leaves_identical(linen.to_variables(model), variables)


def test_accepts_frozendict_and_msgpack_checkpoint():
    flax = require("flax")
    require("flax.serialization")
    model = eqx_rbm.RBM(5, alpha=2, key=jax.random.key(5))
    twin, variables = linen.to_linen(model)
    frozen = flax.core.freeze(variables)
    assert leaves_identical(linen.from_variables(twin, frozen), model)
    restored = flax.serialization.msgpack_restore(flax.serialization.to_bytes(variables))
    assert isinstance(restored["params"]["Dense"]["kernel"], np.ndarray)
    back = linen.from_variables(twin, restored)
    assert isinstance(back.kernel, jax.Array)
    assert leaves_identical(back, model)
    # Back to bytes: the same checkpoint, byte for byte.
    assert flax.serialization.to_bytes(linen.to_variables(back)) == flax.serialization.to_bytes(variables)


def error_lines(twin, variables) -> list[str]:
    with pytest.raises(linen.VariablesError) as info:
        linen.from_variables(twin, variables)
    assert isinstance(info.value, ValueError)
    return info.value.problems


def test_every_offending_path_is_listed():
    k = jnp.zeros((4, 8))
    problems = error_lines(
        linen.RBM(alpha=2),
        {"params": {"Dense": {"kernel": jnp.zeros(8), "extra": k}}, "batch_stats": {}},
    )
    assert "params/Dense/kernel: expected 2-D (n_visible, n_hidden), got shape (8,)" in problems
    assert any(p.startswith("params/Dense/bias: missing") and "use_hidden_bias=True" in p for p in problems)
    assert any(p.startswith("params/visible_bias: missing") for p in problems)
    assert any(p.startswith("params/Dense/extra: unexpected") for p in problems)
    assert any(p.startswith("batch_stats: unexpected") for p in problems)
    assert len(problems) == 5


def test_shape_dtype_and_flag_errors():
    good = linen.to_variables(eqx_rbm.RBM(4, alpha=2, key=jax.random.key(0)))["params"]
    bad = {
        "Dense": {"kernel": good["Dense"]["kernel"].astype(jnp.float32), "bias": jnp.zeros(7)},
        "visible_bias": jnp.zeros(3),
    }
    problems = error_lines(linen.RBM(alpha=2), {"params": bad})
    assert "params/Dense/kernel: expected dtype float64 (param_dtype), got float32" in problems
    assert any(p.startswith("params/Dense/bias: expected shape (8,)") for p in problems)
    assert any(p.startswith("params/visible_bias: expected shape (4,)") for p in problems)
    # alpha disagrees with the kernel's shape
    problems = error_lines(linen.RBM(alpha=1), {"params": good})
    assert any("n_hidden = int(alpha * n_visible) with alpha=1" in p for p in problems)
    # a bias the twin does not use
    problems = error_lines(linen.RBM(alpha=2, use_visible_bias=False), {"params": good})
    assert problems == ["params/visible_bias: unexpected key (the module has use_visible_bias=False)"]


def test_missing_params_and_wrong_types():
    assert error_lines(linen.RBM(), {})[0].startswith("params: missing")
    assert error_lines(linen.RBM(), {"params": jnp.zeros(3)})[0].startswith("params: expected a mapping")
    problems = error_lines(linen.RBM(), {"params": {"Dense": {"kernel": [[1.0]], "bias": 1.0}}})
    assert any(p.startswith("params/Dense/kernel: expected an array, got list") for p in problems)
    with pytest.raises(TypeError, match="variables: expected a mapping"):
        linen.from_variables(linen.RBM(), [1, 2])
    with pytest.raises(TypeError, match=r"module: expected an eqx_rbm\.linen\.RBM"):
        linen.from_variables(eqx_rbm.RBM(3, key=jax.random.key(0)), {"params": {}})
    with pytest.raises(TypeError, match=r"model: expected an eqx_rbm\.RBM"):
        linen.to_variables(linen.RBM())


def test_multival_errors():
    params = linen.to_variables(eqx_rbm.RBM(10, key=jax.random.key(0)))["params"]
    problems = error_lines(linen.RBMMultiVal(3), {"params": {"RBM": params}})
    assert any(
        p.startswith("params/RBM/Dense/kernel: expected n_visible = n_sites * n_classes") for p in problems
    )
    problems = error_lines(linen.RBMMultiVal(2), {"params": params})
    assert "params/RBM: missing" in problems and "params/Dense: unexpected key" in problems


def test_alpha_is_normalised_as_in_the_equinox_constructor():
    twin = linen.RBM(alpha=np.float32(0.5))
    variables = twin.init(jax.random.key(0), jnp.ones((1, 4)))
    model = linen.from_variables(twin, variables)
    assert type(model.alpha) is float and model.alpha == 0.5
    assert model.alpha == eqx_rbm.RBM(4, alpha=np.float32(0.5), key=jax.random.key(0)).alpha
