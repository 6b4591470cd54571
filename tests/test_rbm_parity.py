"""RBM and RBMMultiVal agree with NetKet's models: values and gradients, to 1e-12 relative (1e-5 in
32-bit). That real RBMs give NetKet's very bits under jit is tests/test_rbm_bits.py's."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (
    BATCH_SHAPES,
    PARAM_DTYPES,
    assert_close,
    input_dtype,
    netket_rbm_variables,
    random_params_init,
    require,
    spins,
)

import eqx_rbm


def value_and_grad(f, dtype):
    """Jitted (params, x) -> (log psi, gradient of sum log psi); holomorphic for complex."""
    holomorphic = bool(jnp.issubdtype(dtype, jnp.complexfloating))

    def total(params, x):
        out = f(params, x)
        return jnp.sum(out), out

    return jax.jit(jax.grad(total, has_aux=True, holomorphic=holomorphic))


def values_and_grads(ours, theirs, dtype):
    """Jitted (params, variables, xs) -> [(ours at x, theirs at x) for x in xs], each `value_and_grad`'s.

    Each `x` is traced on its own, with its own shape, inside one compiled
    program: one compilation for both models and every batch shape.
    """
    our_fn, their_fn = value_and_grad(ours, dtype), value_and_grad(theirs, dtype)
    return jax.jit(lambda params, variables, xs: [(our_fn(params, x), their_fn(variables, x)) for x in xs])


# Both biases at every dtype; each other bias combination once, at a real or a complex dtype (both
# kinds, one 32-bit and one 64-bit, among them). A disabled bias only drops a term, the same way at
# every dtype (`if ... is not None` in the model, whatever the dtype).
CASES = [(dtype, True, True) for dtype in PARAM_DTYPES] + [
    (jnp.float64, True, False),
    (jnp.complex64, False, True),
    (jnp.complex64, False, False),
]


# From 8 rows on, real configurations meet complex weights as one real product with
# [Re W | Im W]; below, as a complex product. Complex parameters with both biases also take a batch
# of 8 rows (the first on the real product) beside BATCH_SHAPES (at most 6 rows): both product
# paths give NetKet's values and holomorphic gradients, in the same compiled program.
PRODUCT_SHAPES = [(2, 4)]


@pytest.mark.parametrize(("param_dtype", "use_hidden_bias", "use_visible_bias"), CASES)
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
    nk_shapes = jax.tree.map(jnp.shape, jax.eval_shape(reference.init, jax.random.key(1), jnp.ones((1, n))))
    assert jax.tree.map(jnp.shape, variables) == nk_shapes

    rng = np.random.default_rng(0)
    both_products = jnp.issubdtype(param_dtype, jnp.complexfloating) and use_hidden_bias and use_visible_bias
    shapes = BATCH_SHAPES + PRODUCT_SHAPES if both_products else BATCH_SHAPES
    xs = [jnp.asarray(spins(rng, shape, n, input_dtype(param_dtype))) for shape in shapes]
    params, static = eqx.partition(model, eqx.is_array)
    both = values_and_grads(lambda p, x: eqx.combine(p, static)(x), reference.apply, param_dtype)
    for shape, x, ((our_grads, ours), (their_grads, theirs)) in zip(
        shapes, xs, both(params, variables, xs), strict=True
    ):
        assert ours.shape == shape
        assert ours.dtype == theirs.dtype
        assert_close(ours, theirs, param_dtype, f"log psi, batch {shape}")
        if shape == BATCH_SHAPES[-1]:  # eagerly the batch dimensions take the same path: one shape
            assert_close(model(x), theirs, param_dtype, f"eager log psi, batch {shape}")
        assert_close(our_grads.kernel, their_grads["params"]["Dense"]["kernel"], param_dtype, "d kernel")
        if use_hidden_bias:
            assert_close(our_grads.hidden_bias, their_grads["params"]["Dense"]["bias"], param_dtype, "d b")
        if use_visible_bias:
            assert_close(our_grads.visible_bias, their_grads["params"]["visible_bias"], param_dtype, "d a")


@pytest.mark.parametrize(("param_dtype", "use_hidden_bias", "use_visible_bias"), CASES)
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
    nk_init = jax.eval_shape(reference.init, jax.random.key(1), jnp.zeros((1, n_sites), jnp.int32))
    nk_shapes = jax.tree.map(jnp.shape, nk_init)
    assert jax.tree.map(jnp.shape, variables) == nk_shapes

    rng = np.random.default_rng(1)
    xs = [jnp.asarray(rng.integers(0, n_classes, size=(*shape, n_sites))) for shape in BATCH_SHAPES]
    params, static = eqx.partition(model, eqx.is_array)
    both = values_and_grads(lambda p, x: eqx.combine(p, static)(x), reference.apply, param_dtype)
    for shape, x, ((our_grads, ours), (their_grads, theirs)) in zip(
        BATCH_SHAPES, xs, both(params, variables, xs), strict=True
    ):
        assert ours.shape == shape
        assert_close(ours, theirs, param_dtype, f"log psi, batch {shape}")
        if x.ndim == 3:  # eagerly the batch dimensions take the same path: one shape, the deepest
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
    theirs = jax.jit(nk.models.RBM(alpha=2).apply)(netket_rbm_variables(model), jnp.asarray(x))
    assert_close(model(jnp.asarray(x)), theirs, jnp.float64, "int8 input")
    assert_close(model(x), theirs, jnp.float64, "numpy input")


def test_fractional_alpha_uses_netkets_rounding():
    nk = require("netket")
    for n, alpha in [(7, 0.5), (10, 1.25), (3, 0.3), (9, 0.0)]:
        # Shapes only: both constructions traced, nothing drawn or compiled.
        model = eqx.filter_eval_shape(eqx_rbm.RBM, n, alpha=alpha, key=jax.random.key(0))
        variables = jax.eval_shape(nk.models.RBM(alpha=alpha).init, jax.random.key(0), jnp.ones((1, n)))
        assert model.n_hidden == variables["params"]["Dense"]["kernel"].shape[1]
        assert model.alpha == alpha


def test_precision_reaches_the_inner_rbm():
    model = eqx_rbm.RBMMultiVal(3, 2, precision=jax.lax.Precision.HIGHEST, key=jax.random.key(0))
    assert model.precision == jax.lax.Precision.HIGHEST
    jaxpr = jax.make_jaxpr(model)(jnp.zeros(3))
    dots = [e for e in jaxpr.eqns if e.primitive.name == "dot_general"]
    assert dots
    assert all("HIGHEST" in str(e.params["precision"]) for e in dots)
