"""RBM and RBMMultiVal: construction, properties, shape rules and bad input."""

from __future__ import annotations

import equinox as eqx
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import spins
from hypothesis import given, settings
from hypothesis import strategies as st

import eqx_rbm


def test_fields_are_the_parameters():
    model = eqx_rbm.RBM(6, alpha=2, key=jax.random.key(0))
    leaves = jax.tree.leaves(model)
    assert len(leaves) == 3
    assert [leaf.shape for leaf in leaves] == [(6, 12), (12,), (6,)]
    assert model.kernel.shape == (6, 12)
    assert model.hidden_bias is not None and model.hidden_bias.shape == (12,)
    assert model.visible_bias is not None and model.visible_bias.shape == (6,)


def test_properties():
    model = eqx_rbm.RBM(
        10, alpha=0.5, use_visible_bias=False, param_dtype=jnp.complex64, key=jax.random.key(0)
    )
    assert (model.n_visible, model.n_hidden, model.alpha) == (10, 5, 0.5)
    assert model.use_hidden_bias and not model.use_visible_bias
    assert model.visible_bias is None
    assert model.param_dtype == jnp.complex64
    assert all(leaf.dtype == jnp.complex64 for leaf in jax.tree.leaves(model))
    for name in ["n_visible", "n_hidden", "alpha", "use_hidden_bias", "use_visible_bias", "param_dtype"]:
        with pytest.raises(AttributeError):
            setattr(model, name, 1)


def test_multival_properties():
    model = eqx_rbm.RBMMultiVal(5, 3, local_states=(-2, 0, 2), alpha=2, key=jax.random.key(0))
    assert (model.n_sites, model.n_classes, model.local_states) == (5, 3, (-2, 0, 2))
    assert model.n_features == 15 and model.n_hidden == 30 and model.kernel.shape == (15, 30)
    assert model.alpha == 2 and model.use_hidden_bias and model.use_visible_bias
    assert model.param_dtype == jnp.float64
    assert isinstance(model.encoding, eqx_rbm.OneHot)
    # A valid spin-1 configuration evaluates; log psi is that of an RBM on the features.
    x = jnp.array([2, 0, -2, 0, 2])
    dense = eqx_rbm.RBM.from_arrays(model.kernel, model.hidden_bias, model.visible_bias)
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(dense(model.encoding(x))))


def test_default_initialisation_is_normal_with_stddev_001():
    model = eqx_rbm.RBM(200, alpha=2, key=jax.random.key(0))
    for leaf in jax.tree.leaves(model):
        values = np.asarray(leaf)
        assert abs(values.mean()) < 5 * 0.01 / np.sqrt(values.size)
        assert abs(values.std() - 0.01) < 0.01 * 5 / np.sqrt(2 * values.size)


def test_same_key_same_model_and_different_keys_differ():
    a = eqx_rbm.RBM(4, key=jax.random.key(1))
    b = eqx_rbm.RBM(4, key=jax.random.key(1))
    c = eqx_rbm.RBM(4, key=jax.random.key(2))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert not np.array_equal(np.asarray(a.kernel), np.asarray(c.kernel))
    # The three parameter groups are drawn from independent keys.
    assert not np.array_equal(np.asarray(a.kernel[:, 0]), np.asarray(a.visible_bias))


def test_custom_initialisers_get_shape_and_dtype():
    seen = []

    def init(key, shape, dtype):
        seen.append((shape, jnp.dtype(dtype)))
        return jnp.full(shape, 0.5, dtype)

    model = eqx_rbm.RBM(
        3,
        alpha=2,
        param_dtype=jnp.float32,
        kernel_init=init,
        hidden_bias_init=init,
        visible_bias_init=init,
        key=jax.random.key(0),
    )
    assert seen == [((3, 6), jnp.float32), ((6,), jnp.float32), ((3,), jnp.float32)]
    x = jnp.array([1.0, -1.0, 1.0], jnp.float32)
    expected = 6 * np.log(np.cosh(np.float32(0.5 + 0.5))) + 0.5
    np.testing.assert_allclose(float(model(x)), expected, rtol=1e-6)


def test_custom_activation_is_used():
    model = eqx_rbm.RBM(4, alpha=1, activation=jnp.tanh, key=jax.random.key(0))
    x = jnp.array([1.0, -1.0, 1.0, 1.0])
    theta = x @ model.kernel + model.hidden_bias
    expected = jnp.sum(jnp.tanh(theta)) + x @ model.visible_bias
    np.testing.assert_allclose(float(model(x)), float(expected), rtol=1e-14)


# Every example takes the same path with other sizes, each compiled afresh: five suffice.
@settings(max_examples=5, deadline=None)
@given(
    batch=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3),
    n=st.integers(1, 6),
    alpha=st.sampled_from([0.5, 1, 2]),
    seed=st.integers(0, 2**16),
)
def test_shape_rule_any_batch(batch, n, alpha, seed):
    model = eqx_rbm.RBM(n, alpha=alpha, key=jax.random.key(seed))
    x = spins(np.random.default_rng(seed), batch, n)
    out = model(jnp.asarray(x))
    assert out.shape == batch
    # Batching never changes a value: each entry equals the unbatched evaluation (under jit:
    # one compilation per example instead of one per operation).
    flat = x.reshape(-1, n)
    single = eqx.filter_jit(lambda m, row: m(row))
    singles = np.array([float(single(model, jnp.asarray(row))) for row in flat[:3]])
    # A batch and a single row may sum in other orders (a matrix product against a vector one), so
    # the values agree to a few ulp of the summands, not of a sum that cancels (0.045 - 0.045 + ...
    # gave 1.7e-4, 2e-14 apart in relative terms). The summands' size: |x_i W_ij|, |b_j|, |a_i x_i|
    # and log cosh(theta_j) >= 0, with theta's rounding passed on through |tanh| <= 1.
    w, b, a = (np.asarray(p) for p in (model.kernel, model.hidden_bias, model.visible_bias))
    theta = flat[:3] @ w + b
    size = np.sum(np.log(np.cosh(theta)), axis=-1) + sum(np.sum(np.abs(p)) for p in (w, b, a))
    difference = np.abs(np.asarray(out).reshape(-1)[:3] - singles)
    np.testing.assert_array_less(difference, 8 * np.finfo(float).eps * size)


@settings(max_examples=4, deadline=None)  # as above
@given(
    batch=hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3),
    n_sites=st.integers(1, 4),
    n_classes=st.integers(2, 4),
    seed=st.integers(0, 2**16),
)
def test_multival_shape_rule_any_batch(batch, n_sites, n_classes, seed):
    model = eqx_rbm.RBMMultiVal(n_sites, n_classes, key=jax.random.key(seed))
    x = np.random.default_rng(seed).integers(0, n_classes, size=(*batch, n_sites))
    assert model(x).shape == batch


def test_output_dtype_follows_promotion():
    key = jax.random.key(0)
    x32 = jnp.ones((2, 3), jnp.float32)

    def dtype_of(model_class, *args, param_dtype, x):
        # Promotion is decided at trace time: build and call the model under eval_shape.
        return eqx.filter_eval_shape(lambda: model_class(*args, param_dtype=param_dtype, key=key)(x)).dtype

    assert dtype_of(eqx_rbm.RBM, 3, param_dtype=jnp.float32, x=x32) == jnp.float32
    assert dtype_of(eqx_rbm.RBM, 3, param_dtype=jnp.float64, x=x32) == jnp.float64
    assert dtype_of(eqx_rbm.RBM, 3, param_dtype=jnp.complex64, x=x32) == jnp.complex64
    assert dtype_of(eqx_rbm.RBM, 3, param_dtype=jnp.float32, x=jnp.ones((2, 3), jnp.int8)) == jnp.float32
    assert dtype_of(eqx_rbm.RBMMultiVal, 3, 2, param_dtype=jnp.float32, x=jnp.zeros(3, int)) == jnp.float32


KEY = jax.random.key(0)


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: eqx_rbm.RBM(0, key=KEY), ValueError, "n_visible: expected a positive int, got 0"),
        (lambda: eqx_rbm.RBM(-3, key=KEY), ValueError, "n_visible: expected a positive int, got -3"),
        (lambda: eqx_rbm.RBM(4.0, key=KEY), TypeError, r"n_visible: expected a positive int, got 4.0"),
        (lambda: eqx_rbm.RBM(True, key=KEY), TypeError, "n_visible: expected a positive int, got True"),
        (lambda: eqx_rbm.RBM(4, alpha=-1, key=KEY), ValueError, "alpha: expected a finite non-negative"),
        (lambda: eqx_rbm.RBM(4, alpha=float("nan"), key=KEY), ValueError, "alpha: expected a finite"),
        (lambda: eqx_rbm.RBM(4, alpha="2", key=KEY), TypeError, "alpha: expected a non-negative real"),
        (
            lambda: eqx_rbm.RBM(4, param_dtype=jnp.int32, key=KEY),
            TypeError,
            "param_dtype: expected a floating",
        ),
        (
            lambda: eqx_rbm.RBM(4, param_dtype="banana", key=KEY),
            TypeError,
            "param_dtype: expected a floating",
        ),
        (lambda: eqx_rbm.RBM(4, activation=3, key=KEY), TypeError, "activation: expected a callable"),
        (lambda: eqx_rbm.RBM(4), TypeError, "key"),
        (
            lambda: eqx_rbm.RBM(4, kernel_init=lambda k, s, d: jnp.zeros((2,), d), key=KEY),
            ValueError,
            r"kernel_init: the initializer returned shape \(2,\), expected \(4, 4\)",
        ),
        (
            lambda: eqx_rbm.RBM(4, kernel_init=lambda k, s, d: jnp.zeros(s, jnp.float32), key=KEY),
            TypeError,
            "kernel_init: the initializer returned dtype float32, expected param_dtype=float64",
        ),
        (lambda: eqx_rbm.RBMMultiVal(0, 2, key=KEY), ValueError, "n_sites: expected a positive int, got 0"),
        (lambda: eqx_rbm.RBMMultiVal(3, 1, key=KEY), ValueError, "n_classes: expected at least 2"),
        (lambda: eqx_rbm.RBMMultiVal(3, 2, alpha=-0.5, key=KEY), ValueError, "alpha"),
        (lambda: eqx_rbm.RBMMultiVal(3, 3, local_states=(0, 1), key=KEY), ValueError, "local_states"),
        (lambda: eqx_rbm.RBMMultiVal(3, 2, local_states=(1, 1), key=KEY), ValueError, "duplicates"),
    ],
)
def test_bad_construction(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_wrong_last_dimension_names_argument_expected_and_got():
    model = eqx_rbm.RBM(6, key=KEY)
    with pytest.raises(
        ValueError, match=r"x: expected shape \(\*batch, n_sites\) with n_sites=6, got shape \(2, 5\)"
    ):
        model(jnp.ones((2, 5)))
    multival = eqx_rbm.RBMMultiVal(4, 3, key=KEY)
    with pytest.raises(
        ValueError, match=r"x: expected shape \(\*batch, n_sites\) with n_sites=4, got shape \(12,\)"
    ):
        multival(jnp.zeros(12, int))


def test_wrong_rank_or_dtype_fails_at_trace_time_naming_x():
    model = eqx_rbm.RBM(3, key=KEY)
    for bad in [jnp.float64(1.0), np.array(["a", "b", "c"]), jnp.ones(3, bool)]:
        with pytest.raises(Exception, match=r"'x'|x:") as info:
            jax.jit(lambda x: model(x))(bad) if not isinstance(bad, np.ndarray) else model(bad)
        assert "n_sites" in str(info.value) or "dtype" in str(info.value)
    with pytest.raises(Exception, match=r"'x'|x:"):
        model([1.0, 1.0, 1.0])  # a list is not an array


def test_multival_rejects_unknown_local_state_and_complex_input():
    model = eqx_rbm.RBMMultiVal(3, 3, local_states=(-2, 0, 2), key=KEY)
    with pytest.raises(ValueError, match=r"got 1 at index \(0, 2\)"):
        model(np.array([[0, 2, 1], [0, 0, 0]]))
    with pytest.raises(Exception, match=r"'x'|x:"):
        model(jnp.zeros(3, complex))


def test_repr_is_readable():
    text = repr(eqx_rbm.RBMMultiVal(2, 3, key=KEY))
    assert "RBMMultiVal(" in text and "OneHot(" in text and "kernel=f64[6,6]" in text


def test_bfloat16_input_and_empty_batch():
    model = eqx_rbm.RBM(4, key=KEY)
    x = jnp.array([1.0, -1.0, 1.0, 1.0])
    np.testing.assert_allclose(float(model(x.astype(jnp.bfloat16))), float(model(x)), rtol=1e-14)
    assert model(jnp.zeros((0, 4))).shape == (0,)
    assert eqx_rbm.RBMMultiVal(4, 3, key=KEY)(jnp.zeros((0, 4), int)).shape == (0,)


def test_param_dtype_none_is_refused():
    with pytest.raises(TypeError, match="param_dtype: expected a floating or complex dtype, got None"):
        eqx_rbm.RBM(4, param_dtype=None, key=KEY)


def test_gradient_through_multival_with_respect_to_input_is_zero():
    model = eqx_rbm.RBMMultiVal(3, 3, key=KEY)
    grad = jax.grad(lambda x: model(x))(jnp.array([0.0, 2.0, 1.0]))
    np.testing.assert_array_equal(np.asarray(grad), np.zeros(3))
