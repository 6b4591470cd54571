"""RBM and RBMMultiVal agree with NetKet's models: values and gradients."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (
    BATCH_SHAPES,
    BIAS_FLAGS,
    PARAM_DTYPES,
    assert_close,
    netket_rbm_variables,
    random_params_init,
    require,
    spins,
)

import eqx_rbm


def input_dtype(param_dtype):
    return np.float64 if np.finfo(param_dtype).bits == 64 else np.float32


def value_and_grad(f, dtype):
    """Jitted (params, x) -> (log psi, gradient of sum log psi); holomorphic for complex."""
    holomorphic = bool(jnp.issubdtype(dtype, jnp.complexfloating))

    def total(params, x):
        out = f(params, x)
        return jnp.sum(out), out

    return jax.jit(jax.grad(total, has_aux=True, holomorphic=holomorphic))


@pytest.mark.parametrize(("use_hidden_bias", "use_visible_bias"), BIAS_FLAGS)
@pytest.mark.parametrize("param_dtype", PARAM_DTYPES)
def test_rbm_matches_netket(param_dtype, use_hidden_bias, use_visible_bias):
    nk = require("netket")
    n, alpha = 6, 1.5
    init = random_params_init()
    model = eqx_rbm.RBM(
        n,
        alpha=alpha,
        use_hidden_bias=use_hidden_bias,
        use_visible_bias=use_visible_bias,
        param_dtype=param_dtype,
        kernel_init=init,
        hidden_bias_init=init,
        visible_bias_init=init,
        key=jax.random.key(0),
    )
    reference = nk.models.RBM(
        alpha=alpha,
        param_dtype=param_dtype,
        use_hidden_bias=use_hidden_bias,
        use_visible_bias=use_visible_bias,
    )
    variables = netket_rbm_variables(model)
    # Same sizes as NetKet's own init on an input of this width.
    nk_shapes = jax.tree.map(jnp.shape, reference.init(jax.random.key(1), jnp.ones((1, n))))
    assert jax.tree.map(jnp.shape, variables) == nk_shapes

    rng = np.random.default_rng(0)
    params, static = eqx.partition(model, eqx.is_array)
    ours_fn = value_and_grad(lambda p, x: eqx.combine(p, static)(x), param_dtype)
    theirs_fn = value_and_grad(reference.apply, param_dtype)
    for shape in BATCH_SHAPES:
        x = jnp.asarray(spins(rng, shape, n, input_dtype(param_dtype)))
        our_grads, ours = ours_fn(params, x)
        their_grads, theirs = theirs_fn(variables, x)
        assert ours.shape == shape
        assert ours.dtype == theirs.dtype
        assert_close(ours, theirs, param_dtype, f"log psi, batch {shape}")
        assert_close(model(x), theirs, param_dtype, f"eager log psi, batch {shape}")
        assert_close(our_grads.kernel, their_grads["params"]["Dense"]["kernel"], param_dtype, "d kernel")
        if use_hidden_bias:
            assert_close(our_grads.hidden_bias, their_grads["params"]["Dense"]["bias"], param_dtype, "d b")
        if use_visible_bias:
            assert_close(our_grads.visible_bias, their_grads["params"]["visible_bias"], param_dtype, "d a")


@pytest.mark.parametrize("rows", [3, 8, 40])
@pytest.mark.parametrize("param_dtype", [jnp.complex64, jnp.complex128])
def test_complex_rbm_matches_netket_on_both_product_paths(param_dtype, rows):
    # From 8 rows on, real configurations meet complex weights as one real
    # product with [Re W | Im W]; below, as a complex product. Both must give
    # NetKet's values and holomorphic gradients.
    nk = require("netket")
    n, init = 12, random_params_init()
    model = eqx_rbm.RBM(
        n,
        alpha=2,
        param_dtype=param_dtype,
        kernel_init=init,
        hidden_bias_init=init,
        visible_bias_init=init,
        key=jax.random.key(3),
    )
    x = jnp.asarray(spins(np.random.default_rng(rows), (rows,), n, input_dtype(param_dtype)))
    params, static = eqx.partition(model, eqx.is_array)
    our_grads, ours = value_and_grad(lambda p, x: eqx.combine(p, static)(x), param_dtype)(params, x)
    reference = nk.models.RBM(alpha=2, param_dtype=param_dtype)
    their_grads, theirs = value_and_grad(reference.apply, param_dtype)(netket_rbm_variables(model), x)
    assert_close(ours, theirs, param_dtype, f"log psi, {rows} rows")
    assert_close(our_grads.kernel, their_grads["params"]["Dense"]["kernel"], param_dtype, "d kernel")
    assert_close(our_grads.hidden_bias, their_grads["params"]["Dense"]["bias"], param_dtype, "d b")
    assert_close(our_grads.visible_bias, their_grads["params"]["visible_bias"], param_dtype, "d a")


@pytest.mark.parametrize(("use_hidden_bias", "use_visible_bias"), BIAS_FLAGS)
@pytest.mark.parametrize("param_dtype", PARAM_DTYPES)
def test_multival_matches_netket(param_dtype, use_hidden_bias, use_visible_bias):
    nk = require("netket")
    n_sites, n_classes, alpha = 4, 3, 2
    init = random_params_init()
    model = eqx_rbm.RBMMultiVal(
        n_sites,
        n_classes,
        alpha=alpha,
        use_hidden_bias=use_hidden_bias,
        use_visible_bias=use_visible_bias,
        param_dtype=param_dtype,
        kernel_init=init,
        hidden_bias_init=init,
        visible_bias_init=init,
        key=jax.random.key(2),
    )
    reference = nk.models.RBMMultiVal(
        n_classes=n_classes,
        alpha=alpha,
        param_dtype=param_dtype,
        use_hidden_bias=use_hidden_bias,
        use_visible_bias=use_visible_bias,
    )
    variables = {"params": {"RBM": netket_rbm_variables(model)["params"]}}
    nk_shapes = jax.tree.map(jnp.shape, reference.init(jax.random.key(1), jnp.zeros((1, n_sites), jnp.int32)))
    assert jax.tree.map(jnp.shape, variables) == nk_shapes

    rng = np.random.default_rng(1)
    params, static = eqx.partition(model, eqx.is_array)
    ours_fn = value_and_grad(lambda p, x: eqx.combine(p, static)(x), param_dtype)
    theirs_fn = value_and_grad(reference.apply, param_dtype)
    for shape in BATCH_SHAPES:
        x = jnp.asarray(rng.integers(0, n_classes, size=(*shape, n_sites)))
        our_grads, ours = ours_fn(params, x)
        their_grads, theirs = theirs_fn(variables, x)
        assert ours.shape == shape
        assert_close(ours, theirs, param_dtype, f"log psi, batch {shape}")
        assert_close(model(x), theirs, param_dtype, f"eager log psi, batch {shape}")
        rbm_grads = their_grads["params"]["RBM"]
        assert_close(our_grads.kernel, rbm_grads["Dense"]["kernel"], param_dtype, "d kernel")
        if use_hidden_bias:
            assert_close(our_grads.hidden_bias, rbm_grads["Dense"]["bias"], param_dtype, "d b")
        if use_visible_bias:
            assert_close(our_grads.visible_bias, rbm_grads["visible_bias"], param_dtype, "d a")


def test_integer_and_int8_inputs_match_netket():
    nk = require("netket")
    model = eqx_rbm.RBM(5, alpha=2, kernel_init=random_params_init(), key=jax.random.key(3))
    x = np.random.default_rng(4).choice(np.array([-1, 1], np.int8), size=(7, 5))
    theirs = nk.models.RBM(alpha=2).apply(netket_rbm_variables(model), jnp.asarray(x))
    assert_close(model(jnp.asarray(x)), theirs, jnp.float64, "int8 input")
    assert_close(model(x), theirs, jnp.float64, "numpy input")


def test_fractional_alpha_uses_netkets_rounding():
    nk = require("netket")
    for n, alpha in [(7, 0.5), (10, 1.25), (3, 0.3), (9, 0.0)]:
        model = eqx_rbm.RBM(n, alpha=alpha, key=jax.random.key(0))
        variables = nk.models.RBM(alpha=alpha).init(jax.random.key(0), jnp.ones((1, n)))
        assert model.n_hidden == variables["params"]["Dense"]["kernel"].shape[1]
        assert model.alpha == alpha


def test_precision_reaches_the_inner_rbm():
    model = eqx_rbm.RBMMultiVal(3, 2, precision=jax.lax.Precision.HIGHEST, key=jax.random.key(0))
    assert model.precision == jax.lax.Precision.HIGHEST
    jaxpr = jax.make_jaxpr(model)(jnp.zeros(3))
    dots = [e for e in jaxpr.eqns if e.primitive.name == "dot_general"]
    assert dots
    assert all("HIGHEST" in str(e.params["precision"]) for e in dots)


@pytest.mark.parametrize("param_dtype", PARAM_DTYPES)
def test_jitted_values_match_netket_bit_for_bit_when_real(param_dtype):
    # Real models perform NetKet's floating-point operations, so under jit the
    # compiled programs give the very same bits (the README promises it).
    # Complex models use a real-arithmetic log cosh and a real product with
    # [Re W | Im W]: a few ulp of the result's magnitude apart, never more.
    nk = require("netket")
    init = random_params_init()
    model = eqx_rbm.RBM(16, alpha=2, param_dtype=param_dtype, kernel_init=init, key=jax.random.key(5))
    x = jnp.asarray(spins(np.random.default_rng(5), (64,), 16, input_dtype(param_dtype)))
    ours = np.asarray(jax.jit(lambda m, x: m(x))(model, x))
    theirs = np.asarray(
        jax.jit(nk.models.RBM(alpha=2, param_dtype=param_dtype).apply)(netket_rbm_variables(model), x)
    )
    if not np.iscomplexobj(theirs):
        np.testing.assert_array_equal(ours, theirs)
        return
    eps = np.finfo(theirs.dtype).eps
    scale = np.maximum(np.abs(theirs), 1.0)
    assert np.max(np.abs(ours - theirs) / scale) < 64 * eps, np.max(np.abs(ours - theirs) / scale)
