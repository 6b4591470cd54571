"""eqx_rbm.to_variables / from_variables: NetKet's layout without Flax, exact round trips, clear errors."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import netket_rbm_variables, require

import eqx_rbm


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


def as_numpy(tree):
    """What numpy, msgpack or orbax hand back: plain dicts of NumPy arrays."""
    return jax.tree.map(np.asarray, tree)


@pytest.mark.parametrize(
    ("use_hidden_bias", "use_visible_bias"), [(True, True), (False, False), (True, False), (False, True)]
)
def test_rbm_layout_matches_netket_init(use_hidden_bias, use_visible_bias):
    nk = require("netket")
    flags = {"use_hidden_bias": use_hidden_bias, "use_visible_bias": use_visible_bias}
    reference = nk.models.RBM(alpha=2, **flags).init(jax.random.key(1), jnp.ones((6, 5)))
    model = eqx_rbm.RBM(5, alpha=2, key=jax.random.key(7), **flags)
    ours = eqx_rbm.to_variables(model)
    assert type(ours) is dict and type(ours["params"]) is dict
    # Same keys in the same order as Flax creates them, same shapes and dtypes.
    assert nested_keys(ours) == nested_keys(reference)
    assert jax.tree.map(lambda a: (a.shape, a.dtype), ours) == jax.tree.map(
        lambda a: (a.shape, a.dtype), reference
    )
    assert ours["params"]["Dense"]["kernel"] is model.kernel  # the model's own arrays
    # Back, with sizes and biases read from the arrays.
    back = eqx_rbm.from_variables(as_numpy(reference))
    assert isinstance(back, eqx_rbm.RBM) and back.alpha == 2 and back.n_visible == 5
    assert back.use_hidden_bias == use_hidden_bias and back.use_visible_bias == use_visible_bias
    x = jnp.asarray(np.random.default_rng(0).choice([-1.0, 1.0], size=(3, 5)))
    np.testing.assert_array_equal(back(x), nk.models.RBM(alpha=2, **flags).apply(reference, x))


def test_multival_from_netket_variables_matches_netket():
    nk = require("netket")
    x = jnp.asarray(np.random.default_rng(1).integers(0, 3, size=(5, 4)), dtype=jnp.int32)
    net = nk.models.RBMMultiVal(n_classes=3, alpha=1.5)
    variables = net.init(jax.random.key(4), x)
    model = eqx_rbm.from_variables(as_numpy(variables), n_classes=3)
    assert isinstance(model, eqx_rbm.RBMMultiVal)
    assert (model.n_sites, model.n_classes, model.alpha, model.n_hidden) == (4, 3, 1.5, 18)
    np.testing.assert_array_equal(model(x), net.apply(variables, x))
    assert nested_keys(eqx_rbm.to_variables(model)) == nested_keys(variables)
    assert leaves_identical(eqx_rbm.to_variables(model), variables)


def test_round_trip_from_equinox_model_is_exact():
    rbm = eqx_rbm.RBM(5, alpha=2, param_dtype=jnp.complex128, key=jax.random.key(0))
    multival = eqx_rbm.RBMMultiVal(
        4, 3, local_states=(-2, 0, 2), use_hidden_bias=False, param_dtype=jnp.float32, key=jax.random.key(1)
    )
    for model, options in ((rbm, {}), (multival, {"n_classes": 3, "local_states": (-2, 0, 2)})):
        variables = eqx_rbm.to_variables(model)
        # Through NumPy, as from a checkpoint: same bits, JAX arrays again.
        back = eqx_rbm.from_variables(as_numpy(variables), **options)
        assert bool(eqx.tree_equal(back, model)) and leaves_identical(back, model)
        assert all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(back))
        # JAX arrays are kept as they are.
        same = eqx_rbm.from_variables(variables, **options)
        assert all(a is b for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(model), strict=True))


def test_helpers_layout_agrees():
    # tests/helpers builds NetKet's layout by hand; the adapter must agree.
    model = eqx_rbm.RBM(4, alpha=3, use_visible_bias=False, key=jax.random.key(2))
    assert leaves_identical(eqx_rbm.to_variables(model), netket_rbm_variables(model))


def test_configuration_arguments():
    model = eqx_rbm.RBM(4, alpha=2, key=jax.random.key(0))
    variables = eqx_rbm.to_variables(model)
    back = eqx_rbm.from_variables(
        variables, alpha=2, activation=jnp.tanh, precision=jax.lax.Precision.HIGHEST, use_hidden_bias=True
    )
    assert back.activation is jnp.tanh and back.precision == jax.lax.Precision.HIGHEST
    # A state dict of a serialized MCState: its "variables" entry is used.
    assert leaves_identical(eqx_rbm.from_variables({"variables": variables, "n_samples": 8}), model)
    # alpha inferred: an int when it divides, else the ratio.
    odd = eqx_rbm.to_variables(eqx_rbm.RBM(4, alpha=0.5, key=jax.random.key(0)))
    assert eqx_rbm.from_variables(odd).alpha == 0.5
    with pytest.raises(TypeError, match="n_classes: required for RBMMultiVal variables"):
        eqx_rbm.from_variables({"params": {"RBM": variables["params"]}})
    with pytest.raises(TypeError, match="local_states: only for RBMMultiVal variables"):
        eqx_rbm.from_variables(variables, local_states=(0, 1))
    with pytest.raises(TypeError, match="activation: expected a callable"):
        eqx_rbm.from_variables(variables, activation=3)
    with pytest.raises(TypeError, match="alpha: expected a non-negative real number"):
        eqx_rbm.from_variables(variables, alpha="2")
    with pytest.raises(TypeError, match="variables: expected a mapping"):
        eqx_rbm.from_variables([1, 2])
    with pytest.raises(TypeError, match=r"model: expected an eqx_rbm\.RBM or .*eqx_rbm\.RBMMultiVal or "):
        eqx_rbm.to_variables(3)


def error_lines(variables, **options) -> list[str]:
    with pytest.raises(eqx_rbm.VariablesError) as info:
        eqx_rbm.from_variables(variables, **options)
    assert isinstance(info.value, ValueError)
    assert str(info.value).splitlines()[0].startswith("variables do not match the model; fix the paths below")
    return info.value.problems


def test_every_offending_path_is_listed():
    problems = error_lines(
        {"params": {"Dense": {"kernel": jnp.zeros(8), "extra": jnp.zeros(2)}}, "batch_stats": {}},
        use_hidden_bias=True,
        use_visible_bias=True,
    )
    assert sorted(problems) == sorted(
        [
            "batch_stats: unexpected collection",
            "params/visible_bias: missing (the model has use_visible_bias=True)",
            "params/Dense/bias: missing (the model has use_hidden_bias=True)",
            "params/Dense/extra: unexpected key",
            "params/Dense/kernel: expected 2-D (n_visible, n_hidden), got shape (8,)",
        ]
    )


def test_shape_dtype_and_flag_errors():
    good = eqx_rbm.to_variables(eqx_rbm.RBM(4, alpha=2, key=jax.random.key(0)))["params"]
    bad = {
        "Dense": {"kernel": good["Dense"]["kernel"].astype(jnp.int32), "bias": jnp.zeros(7)},
        "visible_bias": jnp.zeros(3),
    }
    problems = error_lines({"params": bad})
    assert "params/Dense/kernel: expected a floating or complex array, got dtype int32" in problems
    assert "params/Dense/bias: expected shape (8,) (n_hidden,), got shape (7,)" in problems
    assert "params/visible_bias: expected shape (4,) (n_visible,), got shape (3,)" in problems
    problems = error_lines({"params": good}, alpha=1)
    assert problems == [
        "params/Dense/kernel: expected shape (4, 4) (n_hidden = int(alpha * n_visible) with alpha=1), "
        "got shape (4, 8)"
    ]
    problems = error_lines({"params": good}, use_visible_bias=False)
    assert problems == ["params/visible_bias: unexpected key (the model has use_visible_bias=False)"]
    # Mixed floating dtypes are fine: they promote.
    mixed = {**good, "visible_bias": good["visible_bias"].astype(jnp.complex64)}
    assert eqx_rbm.from_variables({"params": mixed}).visible_bias.dtype == jnp.complex64


def test_missing_params_and_wrong_types():
    assert error_lines({}) == ["params: missing (expected the 'params' collection)"]
    assert error_lines({"params": jnp.zeros(3)})[0].startswith("params: expected a mapping")
    problems = error_lines({"params": {"Dense": {"kernel": [[1.0]], "bias": 1.0}}})
    assert "params/Dense/kernel: expected an array, got list" in problems
    assert "params/Dense/bias: expected an array, got float 1.0" in problems
    assert error_lines({"params": {"Dense": {"kernel": jnp.zeros((0, 2))}}}) == [
        "params/Dense/kernel: expected n_visible > 0, got shape (0, 2)"
    ]


def test_multival_errors():
    params = eqx_rbm.to_variables(eqx_rbm.RBM(10, key=jax.random.key(0)))["params"]
    problems = error_lines({"params": {"RBM": params}}, n_classes=3)
    assert problems == [
        "params/RBM/Dense/kernel: expected n_visible = n_sites * n_classes, a multiple of n_classes=3, "
        "got shape (10, 10)"
    ]
    problems = error_lines({"params": params}, n_classes=2)
    assert "params/RBM: missing" in problems and "params/Dense: unexpected key" in problems


def test_float64_without_x64_is_a_clear_error():
    variables = as_numpy(eqx_rbm.to_variables(eqx_rbm.RBM(3, key=jax.random.key(0))))
    with jax.enable_x64(False):
        problems = error_lines(variables)
    assert problems[0].startswith("params/Dense/kernel: dtype float64 needs 64-bit mode")
    assert len(problems) == 3
