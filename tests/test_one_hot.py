"""OneHot: feature order, local states, dtypes, shape rules and unknown values."""

from __future__ import annotations

import equinox as eqx
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import require
from hypothesis import given, settings
from hypothesis import strategies as st

import eqx_rbm
from eqx_rbm import OneHot


def test_default_states_match_jax_one_hot_in_site_major_order():
    x = jnp.array([[0, 2, 1], [1, 1, 0]])
    features = OneHot(3)(x)
    assert features.shape == (2, 9)
    expected = jax.nn.one_hot(x, 3).reshape(2, 9)
    np.testing.assert_array_equal(np.asarray(features), np.asarray(expected))
    # Feature site * n_classes + class is set.
    assert features[0, 0 * 3 + 0] == 1 and features[0, 1 * 3 + 2] == 1 and features[0, 2 * 3 + 1] == 1


def test_matches_netkets_encoding_inside_rbm_multival():
    # NetKet's RBMMultiVal encodes through jax.nn.one_hot followed by a reshape; the
    # parity tests of RBMMultiVal pin the full model, this pins the encoding itself.
    require("netket")
    x = np.random.default_rng(0).integers(0, 4, size=(3, 5))
    ours = OneHot(4)(jnp.asarray(x))
    theirs = jax.nn.one_hot(jnp.asarray(x), 4).reshape(3, 20)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


@pytest.mark.parametrize(
    ("local_states", "x", "classes"),
    [
        ((-2, 0, 2), [2, -2, 0], [2, 0, 1]),
        ((-1, 1), [1.0, -1.0, -1.0], [1, 0, 0]),
        ((0.5, -0.5), [-0.5, 0.5], [1, 0]),
        ((3, 1, 2), [1, 2, 3], [1, 2, 0]),
    ],
)
def test_local_states_select_classes_in_their_order(local_states, x, classes):
    n = len(local_states)
    features = np.asarray(OneHot(n, local_states=local_states)(jnp.asarray(x)))
    expected = np.eye(n)[classes].reshape(-1)
    np.testing.assert_array_equal(features, expected)


@settings(max_examples=12, deadline=None)
@given(
    batch=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3),
    n_sites=st.integers(1, 5),
    n_classes=st.integers(2, 5),
    seed=st.integers(0, 2**16),
)
def test_shape_rule(batch, n_sites, n_classes, seed):
    x = np.random.default_rng(seed).integers(0, n_classes, size=(*batch, n_sites))
    features = OneHot(n_classes)(x)
    assert features.shape == (*batch, n_sites * n_classes)
    # Exactly one feature per site.
    np.testing.assert_array_equal(np.asarray(features).reshape(*batch, n_sites, n_classes).sum(-1), 1)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64, jnp.int8, jnp.bfloat16])
def test_output_dtype_is_selectable(dtype):
    assert OneHot(2, dtype=dtype)(jnp.array([0, 1])).dtype == dtype


def test_default_dtype_is_jax_default_float():
    assert OneHot(2)(jnp.array([0, 1])).dtype == jnp.result_type(float)


@pytest.mark.parametrize(
    ("local_states", "x", "bad", "index"),
    [
        (None, [[0, 1], [3, 0]], "3", "(1, 0)"),
        ((-1, 1), [1, 0, -1], "0", "(1,)"),
        (None, [0.0, 1.5], "1.5", "(1,)"),
        ((-2, 0, 2), [2, -1], "-1", "(1,)"),
    ],
)
def test_unknown_value_raises_naming_value_and_position(local_states, x, bad, index):
    layer = OneHot(3 if local_states is None or len(local_states) == 3 else 2, local_states=local_states)
    with pytest.raises(ValueError, match="local_states") as info:
        layer(np.asarray(x))
    message = str(info.value)
    assert f"got {bad} at index {index}" in message


def test_unknown_value_under_jit_is_a_runtime_error():
    layer = OneHot(2, local_states=(-1, 1))
    call = eqx.filter_jit(lambda m, x: m(x))
    np.testing.assert_array_equal(np.asarray(call(layer, jnp.array([1, -1]))), [0, 1, 1, 0])
    with pytest.raises(Exception, match="not one of local_states"):
        jax.block_until_ready(call(layer, jnp.array([1, 0])))


def test_unknown_value_under_vmap_and_jax_jit():
    layer = OneHot(2)
    with pytest.raises(Exception, match="not one of local_states"):
        jax.block_until_ready(jax.jit(jax.vmap(lambda x: layer(x)))(jnp.array([[0, 1], [2, 0]])))


def test_non_integer_float_never_matches_integer_state():
    with pytest.raises(ValueError, match=r"got 0\.5"):
        OneHot(2)(np.array([0.5, 1.0]))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_classes": 1}, ValueError, "n_classes: expected at least 2"),
        ({"n_classes": 0}, ValueError, "n_classes: expected a positive int, got 0"),
        ({"n_classes": 2.0}, TypeError, "n_classes: expected a positive int, got 2.0"),
        ({"n_classes": 3, "local_states": (0, 1)}, ValueError, r"expected 3 values .* got 2"),
        ({"n_classes": 3, "local_states": (0, 1, 1)}, ValueError, r"distinct, got duplicates \(1,\)"),
        ({"n_classes": 2, "local_states": ("a", "b")}, TypeError, "local_states: expected a 1-D"),
        ({"n_classes": 2, "local_states": (0, np.nan)}, ValueError, "local_states: expected finite"),
        ({"n_classes": 2, "local_states": 5}, TypeError, "local_states: expected a sequence"),
    ],
)
def test_bad_configuration(kwargs, error, match):
    with pytest.raises(error, match=match):
        OneHot(**kwargs)


def test_bad_inputs():
    layer = OneHot(2)
    with pytest.raises(Exception, match="x"):
        layer(np.array(["a", "b"]))
    with pytest.raises(Exception, match="x"):
        layer(jnp.array(1))  # a scalar has no site axis
    with pytest.raises(Exception, match="x"):
        layer(jnp.array([1 + 0j, 0j]))


def test_is_hashable_and_has_no_parameters():
    layer = OneHot(3, local_states=(-2, 0, 2))
    assert hash(layer) == hash(OneHot(3, local_states=[-2, 0, 2]))
    assert layer == OneHot(3, local_states=np.array([-2, 0, 2]))
    assert jax.tree.leaves(layer) == []


def test_concrete_input_closed_over_by_jit():
    layer = OneHot(3)
    good, bad = jnp.array([0, 2, 1]), jnp.array([0, 3, 1])
    np.testing.assert_array_equal(np.asarray(jax.jit(lambda: layer(good))()), np.asarray(layer(good)))
    # A concrete array is checked while tracing, with the value and its position.
    with pytest.raises(ValueError, match=r"got 3 at index \(1,\)"):
        jax.jit(lambda: layer(bad))()


def test_gradient_with_respect_to_the_input_is_zero_eagerly_and_under_jit():
    layer = OneHot(3)
    x = jnp.array([0.0, 2.0, 1.0])
    for transform in (lambda f: f, jax.jit):
        grad = transform(jax.grad(lambda x: jnp.sum(layer(x) * jnp.arange(9.0))))(x)
        np.testing.assert_array_equal(np.asarray(grad), np.zeros(3))
    _, tangent = jax.jvp(layer, (x,), (jnp.ones(3),))
    np.testing.assert_array_equal(np.asarray(tangent), np.zeros(9))


@pytest.mark.parametrize("batch", [(0,), (0, 2), (2, 0)])
def test_empty_batch(batch):
    features = OneHot(3)(jnp.zeros((*batch, 4), int))
    assert features.shape == (*batch, 12)
    assert eqx.filter_jit(lambda m, x: m(x))(OneHot(3), jnp.zeros((*batch, 4), int)).shape == (*batch, 12)


def test_float32_rounding_of_a_state_is_that_state():
    layer = OneHot(2, local_states=(0.1, 0.2))
    for x in [np.array([0.2, 0.1], np.float32), jnp.array([0.2, 0.1], jnp.float32), np.array([0.2, 0.1])]:
        np.testing.assert_array_equal(np.asarray(layer(x)), [0, 1, 1, 0])
    # A float64 value that is merely close to a state is not that state.
    with pytest.raises(ValueError, match=r"got 0\.1000000001 at index \(1,\)"):
        layer(np.array([0.2, 0.1000000001]))


def test_states_that_collapse_in_the_input_dtype_are_reported():
    layer = OneHot(2, local_states=(1.0, 1.0 + 1e-12))
    with pytest.raises(ValueError, match="not distinct in x's dtype float32"):
        layer(np.array([1.0, 1.0], np.float32))


@pytest.mark.parametrize(
    ("x", "bad"),
    [
        (np.array([0, -1], np.int8), "-1"),
        (np.array([0, 255], np.uint8), "255"),
        (np.array([0, 2], np.int8), "2"),
    ],
)
def test_integer_inputs_never_wrap_onto_states(x, bad):
    # 255 as int8 would be -1, and -1 as uint8 would be 255: neither may match.
    layer = OneHot(2, local_states=(0, -1)) if x.dtype == np.uint8 else OneHot(2, local_states=(0, 255))
    with pytest.raises(ValueError, match=f"got {bad} at index"):
        layer(x)


def test_bfloat16_and_float16_inputs():
    for dtype in (jnp.bfloat16, jnp.float16):
        np.testing.assert_array_equal(np.asarray(OneHot(2)(jnp.array([1, 0], dtype))), [0, 1, 1, 0])


@pytest.mark.parametrize(
    ("dtype", "match"), [("banana", "dtype: expected a numeric dtype"), (bool, "dtype: expected")]
)
def test_bad_feature_dtype_is_named(dtype, match):
    with pytest.raises(TypeError, match=match):
        OneHot(2, dtype=dtype)


def test_without_x64_unknown_values_are_caught_before_conversion():
    from test_x64 import run_without_x64

    result = run_without_x64(
        """
        import numpy as np, eqx_rbm
        for x in [np.array([0, 2**32 + 1], np.int64), np.array([0.0, 1 + 1e-12])]:
            try:
                eqx_rbm.OneHot(2)(x)
            except ValueError as err:
                print("raised:", err)
            else:
                raise SystemExit("no error for " + repr(x))
        """
    )
    assert result.returncode == 0, result.stderr
    assert "got 4294967297 at index (1,)" in result.stdout
    assert "got 1.000000000001 at index (1,)" in result.stdout


def _first_line_naming(message: str, text: str) -> str:
    """The first line of `message` that mentions `text`."""
    return next(line for line in message.splitlines() if text in line)


@pytest.mark.parametrize(("n_classes", "spins"), [(2, (-1, 1)), (3, (-2, 0, 2)), (4, (-3, -1, 1, 3))])
def test_netket_spins_with_default_states_name_the_fix_eagerly(n_classes, spins):
    # NetKet's Spin(S) samples hold 2m for m = -S..S, which the default 0..n-1 rejects.
    model = eqx_rbm.RBMMultiVal(3, n_classes, key=jax.random.key(0))
    with pytest.raises(ValueError) as info:
        model(np.array([spins[0], spins[-1], spins[0]], float))
    first = str(info.value).splitlines()[0]
    assert first.startswith("x: expected every value to be one of local_states=")
    assert f"pass local_states={spins} for NetKet's spin values" in first


def test_netket_spins_name_the_fix_under_jit():
    model = eqx_rbm.RBMMultiVal(3, 2, key=jax.random.key(0))
    x = jnp.array([[1.0, -1.0, 1.0]])
    fix = "pass local_states=(-1, 1) for NetKet's spin values"
    # Equinox's own jit reports the message on the line naming its runtime error.
    with pytest.raises(Exception) as info:
        jax.block_until_ready(eqx.filter_jit(model)(x))
    line = _first_line_naming(str(info.value), "RBMMultiVal:")
    assert "EquinoxRuntimeError: RBMMultiVal: x holds a value that is not one of local_states=(0, 1)" in line
    assert fix in line
    # Under plain jax.jit (NetKet's samplers) XLA wraps the callback's error.
    with pytest.raises(Exception) as info:
        jax.block_until_ready(jax.jit(lambda x: model(x))(x))
    assert fix in _first_line_naming(str(info.value), "RBMMultiVal:")


def test_custom_states_name_the_fix():
    layer = OneHot(2, local_states=(-1, 1))
    fix = "pass local_states listing every value a site can take"
    with pytest.raises(ValueError) as info:
        layer(np.array([0, 1]))
    assert fix in str(info.value).splitlines()[0]
    with pytest.raises(Exception) as info:
        jax.block_until_ready(eqx.filter_jit(layer)(jnp.array([0, 1])))
    assert fix in _first_line_naming(str(info.value), "OneHot:")


def test_multival_fed_one_hot_features_names_the_fix():
    model = eqx_rbm.RBMMultiVal(3, 4, key=jax.random.key(0))
    features = model.encoding(jnp.array([[0, 3, 1]]))
    with pytest.raises(ValueError) as info:
        model(features)
    first = str(info.value).splitlines()[0]
    assert first.startswith("x: expected shape (*batch, n_sites) with n_sites=3, got shape (1, 12)")
    assert "pass the site values themselves, not encoded features" in first
