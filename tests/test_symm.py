"""RBMSymm and RBMMultiValSymm: NetKet parity, NetKet's initial parameters, the dense view, errors."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_params_init, require

import eqx_rbm

INIT = random_params_init(0.5)


def groups(nk):
    """Chain translations, square translations, and the square's space group (rotations, reflections)."""
    return {
        "chain": nk.graph.Chain(8).translation_group(),
        "square": nk.graph.Square(3).translation_group(),
        "space": nk.graph.Square(3).space_group(),
    }


def within_ulps(ours, theirs, n_ulps=8):
    """Equal to a few ulp of the largest magnitude, in the dtype of the result."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    eps = np.finfo(theirs.dtype).eps
    error = np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1.0)
    assert error <= n_ulps * eps, f"{error / eps:.1f} ulp"


# The group reaches the model only as a permutation table (gathered the same way for translations
# and the space group's rotations and reflections) and the biases only drop terms: each group and
# each dtype at least once, real and complex on the square.
@pytest.mark.parametrize(
    ("group", "dtype"),
    [
        ("chain", jnp.float64),
        ("square", jnp.float32),
        ("square", jnp.complex128),
        ("space", jnp.complex64),
    ],
)
def test_rbmsymm_matches_netket(group, dtype):
    nk = require("netket")
    table = groups(nk)[group]
    n_symm, n_sites = np.asarray(table).shape
    alpha = 2 * n_symm / n_sites  # two filters
    flags = {"use_hidden_bias": group != "square", "use_visible_bias": group != "chain"}
    inits = {"kernel_init": INIT, "hidden_bias_init": INIT, "visible_bias_init": INIT}
    net = nk.models.RBMSymm(table, alpha=alpha, param_dtype=dtype, **flags, **inits)
    model = eqx_rbm.RBMSymm(table, alpha=alpha, param_dtype=dtype, **flags, **inits, key=jax.random.key(3))
    assert model.n_filters == 2 and model.n_hidden == 2 * n_symm
    real = jnp.finfo(dtype).dtype
    x = jnp.asarray(np.random.default_rng(0).choice([-1.0, 1.0], size=(16, n_sites)), real)
    variables = net.init(jax.random.key(3), x)  # the same key: the same parameters
    assert jax.tree.leaves(variables) == [] or all(
        np.array_equal(a, b)
        for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(eqx_rbm.to_variables(model)), strict=True)
    )
    within_ulps(model(x), net.apply(variables, x))
    holomorphic = bool(jnp.issubdtype(dtype, jnp.complexfloating))

    @jax.jit
    def both(model, variables, x):
        params, static = eqx.partition(model, eqx.is_inexact_array)
        ours = jax.grad(lambda p: jnp.sum(eqx.combine(p, static)(x)), holomorphic=holomorphic)(params)
        theirs = jax.grad(lambda v: jnp.sum(net.apply(v, x)), holomorphic=holomorphic)(variables)
        return model(x), net.apply(variables, x), eqx.combine(ours, static), theirs

    ours, theirs, our_grad, their_grad = both(model, variables, x)
    within_ulps(ours, theirs)
    ours_as_variables = eqx_rbm.to_variables(our_grad)
    for a, b in zip(jax.tree.leaves(ours_as_variables), jax.tree.leaves(their_grad), strict=True):
        within_ulps(a, b, n_ulps=64)  # sums over the group in another order


@pytest.mark.parametrize(
    "flags", [{}, {"use_hidden_bias": False}, {"use_visible_bias": False, "param_dtype": jnp.complex64}]
)
def test_same_key_gives_netkets_initial_parameters(flags):
    nk = require("netket")
    table = nk.graph.Chain(6).translation_group()
    x = jnp.ones((1, 6), jnp.finfo(flags.get("param_dtype", jnp.float64)).dtype)
    variables = nk.models.RBMSymm(table, alpha=3, **flags).init(jax.random.PRNGKey(11), x)
    model = eqx_rbm.RBMSymm(table, alpha=3, **flags, key=jax.random.PRNGKey(11))
    ours = eqx_rbm.to_variables(model)
    assert jax.tree.structure(ours) == jax.tree.structure(jax.tree.map(np.asarray, dict(variables)))
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(variables), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_multival_matches_netkets_dense_symm_on_one_hot_blocks():
    nk = require("netket")
    table = nk.graph.Square(3).space_group()
    inits = {"kernel_init": INIT, "hidden_bias_init": INIT, "visible_bias_init": INIT}
    model = eqx_rbm.RBMMultiValSymm(
        table, 3, local_states=(-2, 0, 2), alpha=16, **inits, key=jax.random.key(0)
    )
    # int(16 * 9 * 3 / 72) filters over (n_classes, n_sites).
    assert model.kernel.shape == (6, 3, 9) and model.visible_bias.shape == (3,) and model.n_hidden == 6 * 72
    x = jnp.asarray(np.random.default_rng(1).choice([-2, 0, 2], size=(12, 9)))
    one_hot = jax.nn.one_hot((x + 2) // 2, 3)  # (batch, site, class)
    layer = nk.nn.DenseSymm(symmetries=table, features=6, mode="matrix")
    params = {"kernel": model.kernel, "bias": model.hidden_bias}
    theta = layer.apply({"params": params}, one_hot.swapaxes(-1, -2))
    expected = jnp.sum(nk.nn.activation.log_cosh(theta), axis=(-2, -1)) + one_hot.sum(-2) @ model.visible_bias
    within_ulps(model(x), expected)


def test_multival_same_key_as_the_symmetric_layout():
    require("netket")
    table = np.array([[0, 1, 2, 3], [1, 2, 3, 0], [2, 3, 0, 1], [3, 0, 1, 2]])
    model = eqx_rbm.RBMMultiValSymm(table, 3, alpha=2, key=jax.random.key(5))
    rbmsymm = eqx_rbm.RBMSymm(table, alpha=6, key=jax.random.key(5))
    # The same NetKet keys; the multi-valued kernel has more entries from the same key.
    assert model.kernel.shape == (6, 3, 4) and rbmsymm.kernel.shape == (6, 1, 4)
    np.testing.assert_array_equal(model.hidden_bias, rbmsymm.hidden_bias)


def test_dense_view_and_its_transpose():
    table = np.array([[0, 1, 2, 3, 4], [4, 0, 1, 2, 3], [0, 4, 3, 2, 1], [2, 1, 0, 4, 3]])
    model = eqx_rbm.RBMMultiValSymm(table, 3, alpha=4, kernel_init=INIT, key=jax.random.key(1))
    dense = model.dense()
    n_filters, n_classes, n_sites = model.kernel.shape
    assert dense.kernel.shape == (n_sites * n_classes, n_filters * len(table))
    for f, c, g, j in [(0, 0, 0, 0), (1, 2, 3, 4), (2, 1, 2, 0)]:
        # Feature j * C + c, hidden unit f * G + g: filter f's entry at the permuted site.
        assert dense.kernel[j * n_classes + c, f * len(table) + g] == model.kernel[f, c, table[g, j]]
    np.testing.assert_array_equal(dense.hidden_bias, np.repeat(model.hidden_bias, len(table)))
    np.testing.assert_array_equal(dense.visible_bias, np.tile(model.visible_bias, n_sites))
    # from_dense_gradient is the transpose of dense(), with batch dimensions.
    params, static = eqx.partition(model, eqx.is_inexact_array)
    transpose = jax.linear_transpose(lambda p: eqx.combine(p, static).dense(), params)
    rng = np.random.default_rng(2)
    batch = [eqx_rbm.Dense(*(jnp.asarray(rng.normal(size=a.shape)) for a in dense)) for _ in range(3)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *batch)
    ours = model.from_dense_gradient(stacked)
    for k, gradient in enumerate(batch):
        (expected,) = transpose(gradient)
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(expected), strict=True):
            np.testing.assert_allclose(a[k], b, rtol=1e-13, atol=1e-13)


def test_symmetries_accepted_forms_are_one_static_configuration():
    nk = require("netket")
    group = nk.graph.Chain(6).translation_group()
    table = np.asarray(group)
    forms = [group, nk.utils.HashableArray(table), table, table.tolist(), table.astype(np.int8)]
    models = [eqx_rbm.RBMSymm(form, alpha=2, key=jax.random.key(0)) for form in forms]
    for model in models[1:]:
        assert eqx.tree_equal(model, models[0])
        assert jax.tree.structure(model) == jax.tree.structure(models[0])  # one compiled program for all
        assert hash(model.symmetries) == hash(models[0].symmetries)
    np.testing.assert_array_equal(np.asarray(models[0].symmetries), table)
    assert models[0].n_symmetries == 6 and models[0].n_sites == 6
    with pytest.raises(ValueError, match="read-only"):
        models[0].symmetries.array[0, 0] = 1


def test_bad_symmetries_and_alpha():
    table = np.array([[0, 1, 2, 3], [1, 2, 3, 0], [2, 3, 0, 1], [3, 0, 1, 2]])
    key = jax.random.key(0)
    with pytest.raises(
        ValueError, match=r"symmetries: expected a 2-D \(n_symmetries, n_sites\) table.*got shape \(4,\)"
    ):
        eqx_rbm.RBMSymm(table[0], key=key)
    with pytest.raises(TypeError, match=r"symmetries: expected an integer table.*got dtype float64"):
        eqx_rbm.RBMSymm(table.astype(float), key=key)
    bad = table.copy()
    bad[2] = [0, 0, 1, 2]
    with pytest.raises(ValueError, match=r"permutation of range\(4\), got row 2: \[0, 0, 1, 2\]"):
        eqx_rbm.RBMSymm(bad, key=key)
    with pytest.raises(ValueError, match=r"alpha: alpha=0.5 gives .* 0 filters .*alpha >= 1"):
        eqx_rbm.RBMSymm(table, alpha=0.5, key=key)
    with pytest.raises(ValueError, match=r"n_features=6 and n_symmetries=4.*needs alpha >= 0.666"):
        eqx_rbm.RBMMultiValSymm(table[:, :2] % 2, 3, alpha=0.5, key=key)  # two sites, three classes
    with pytest.raises(TypeError, match="activation: expected a callable"):
        eqx_rbm.RBMSymm(table, activation=3, key=key)  # pyright: ignore[reportArgumentType]
    assert eqx_rbm.RBMSymm(table, alpha=1, key=key).n_filters == 1


def test_from_arrays():
    table = np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1]])
    model = eqx_rbm.RBMSymm.from_arrays(jnp.ones((2, 1, 3)), jnp.zeros(2), None, symmetries=table)
    assert model.alpha == 2 and not model.use_visible_bias and model.n_filters == 2
    odd = eqx_rbm.RBMMultiValSymm.from_arrays(jnp.ones((1, 2, 3)), symmetries=table, n_classes=2)
    assert odd.alpha == 0.5 and odd.n_filters == 1
    with pytest.raises(
        ValueError, match=r"kernel: expected shape \(n_filters, 1, n_sites\) = \(n_filters, 1, 3\)"
    ):
        eqx_rbm.RBMSymm.from_arrays(jnp.ones((2, 3)), symmetries=table)
    with pytest.raises(ValueError, match=r"alpha: expected int\(alpha \* n_features / n_symmetries\) = 2"):
        eqx_rbm.RBMSymm.from_arrays(jnp.ones((2, 1, 3)), symmetries=table, alpha=1)
    with pytest.raises(ValueError, match=r"\(n_filters, n_classes, n_sites\) = \(n_filters, 3, 3\)"):
        eqx_rbm.RBMMultiValSymm.from_arrays(jnp.ones((2, 2, 3)), symmetries=table, n_classes=3)


def test_multival_unknown_state():
    table = np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1]])
    model = eqx_rbm.RBMMultiValSymm(table, 3, key=jax.random.key(0))
    with pytest.raises(
        ValueError, match=r"x: expected every value to be one of local_states=\(0, 1, 2\).*got 5"
    ):
        model(np.array([[0, 1, 5]]))
    with pytest.raises(Exception, match="not one of local_states"):
        jax.block_until_ready(eqx.filter_jit(lambda m, x: m(x))(model, jnp.array([[0, 1, 5]])))
    with pytest.raises(ValueError, match=r"x: expected shape \(\*batch, n_sites\) with n_sites=3"):
        model(jnp.zeros((2, 9), jnp.int32))
