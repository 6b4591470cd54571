"""RBMModPhase against NetKet's RBMModPhase: variables, log psi, twin, derivatives, bad input."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import leaves_identical, random_params_init, require, spins

import eqx_rbm

N, ALPHA = 6, 2
DTYPES = [jnp.float64, jnp.complex128]
IDS = ["float64", "complex128"]


def _netket(**kwargs):
    return require("netket").models.RBMModPhase(**kwargs)


def _pair(dtype, use_hidden_bias=True, init=None, seed=0):
    """(ours, NetKet's module, NetKet's variables) from the same key."""
    inits = {} if init is None else {"kernel_init": init, "hidden_bias_init": init}
    key = jax.random.key(seed)
    settings = dict(alpha=ALPHA, param_dtype=dtype, use_hidden_bias=use_hidden_bias, **inits)
    model = eqx_rbm.RBMModPhase(N, **settings, key=key)
    reference = _netket(**settings)
    return model, reference, reference.init(key, jnp.ones((1, N)))


def _ulp_close(actual, expected, ulps=8):
    """Each component within `ulps` units in the last place of the largest value."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    eps = np.finfo(expected.dtype).eps
    scale = np.max(np.abs(expected))
    assert np.max(np.abs(actual - expected)) <= ulps * eps * scale


# The hidden-bias flag selects its branches (the keys drawn in `draw_parameters`, the bias added to
# theta) the same way for every dtype, and the dtype enters the same way with and without it: both
# flags in float64, complex parameters with the bias.
@pytest.mark.parametrize(
    ("dtype", "use_hidden_bias"),
    [(jnp.float64, True), (jnp.float64, False), (jnp.complex128, True)],
    ids=["float64-True", "float64-False", "complex128-True"],
)
def test_same_key_gives_netkets_variables_and_log_psi(dtype, use_hidden_bias):
    model, reference, variables = _pair(dtype, use_hidden_bias)
    ours = eqx_rbm.to_variables(model)
    assert leaves_identical(ours, dict(variables))  # the default initializers, NetKet's keys
    assert list(ours["params"]) == list(variables["params"]) == ["Dense_0", "Dense_1"]
    # Larger weights than the default, so that log cosh is far from its quadratic regime.
    model, reference, variables = _pair(dtype, use_hidden_bias, init=random_params_init(0.5), seed=1)
    rng = np.random.default_rng(0)
    xs = [jnp.asarray(spins(rng, shape, N)) for shape in [(), (5,), (2, 3)]]
    # One compiled program for each library, every batch shape traced inside it.
    all_theirs = jax.jit(lambda v, xs: [reference.apply(v, x) for x in xs])(variables, xs)
    all_ours = jax.jit(lambda m, xs: [m(x) for x in xs])(model, xs)
    for x, ours, theirs in zip(xs, all_ours, all_theirs, strict=True):
        assert theirs.dtype == jnp.complex128
        _ulp_close(ours, theirs)
        if x.ndim == 3:  # eagerly the batch dimensions take the same path: one shape, the deepest
            _ulp_close(model(x), theirs)


@pytest.mark.parametrize("use_hidden_bias", [True, False])
def test_from_variables_reads_netkets_variables_without_flax_arguments(use_hidden_bias):
    """NetKet's RBMModPhase variables (Dense_0, Dense_1) load as an RBMModPhase, not as an RBM."""
    _, reference, variables = _pair(jnp.float64, use_hidden_bias, init=random_params_init(0.5), seed=2)
    loaded = eqx_rbm.from_variables(variables)
    assert type(loaded) is eqx_rbm.RBMModPhase and loaded.use_hidden_bias == use_hidden_bias
    x = jnp.asarray(spins(np.random.default_rng(1), (7,), N))
    _ulp_close(loaded(x), reference.apply(variables, x))
    # An RBM's variables still load as an RBM, and a broken tree names the RBM layout's problems.
    init = random_params_init()  # drawn with NumPy: only the layout matters here
    rbm = eqx_rbm.RBM(
        N, kernel_init=init, hidden_bias_init=init, visible_bias_init=init, key=jax.random.key(0)
    )
    assert type(eqx_rbm.from_variables(eqx_rbm.to_variables(rbm))) is eqx_rbm.RBM
    with pytest.raises(eqx_rbm.VariablesError, match="params/Dense: missing"):
        eqx_rbm.from_variables({"params": {"visible_bias": jnp.zeros(N)}})


def test_float32_parameters_give_complex64():
    model, reference, variables = _pair(jnp.float32, init=random_params_init(0.5))
    x = jnp.asarray(spins(np.random.default_rng(1), (7,), N, np.float32))
    theirs = reference.apply(variables, x)
    assert model(x).dtype == theirs.dtype == jnp.complex64
    _ulp_close(model(x), theirs, ulps=16)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_twin_matches_netket_and_round_trips(dtype):
    require("flax")
    import eqx_rbm.linen

    init = random_params_init(0.5)
    twin = eqx_rbm.linen.RBMModPhase(alpha=ALPHA, param_dtype=dtype, kernel_init=init, hidden_bias_init=init)
    reference = _netket(alpha=ALPHA, param_dtype=dtype, kernel_init=init, hidden_bias_init=init)
    x = jnp.asarray(spins(np.random.default_rng(2), (9,), N))
    key = jax.random.key(4)
    variables = twin.init(key, x)
    assert leaves_identical(dict(variables), dict(reference.init(key, x)))
    _ulp_close(twin.apply(variables, x), reference.apply(variables, x))

    model = eqx_rbm.linen.to_equinox(twin, variables)
    assert type(model) is eqx_rbm.RBMModPhase
    assert leaves_identical(eqx_rbm.to_variables(model), dict(variables))
    back_twin, back_variables = eqx_rbm.linen.to_linen(model)
    assert type(back_twin) is eqx_rbm.linen.RBMModPhase
    assert (back_twin.alpha, back_twin.use_hidden_bias, back_twin.param_dtype) == (ALPHA, True, dtype)
    assert leaves_identical(back_variables, dict(variables))
    np.testing.assert_array_equal(back_twin.apply(back_variables, x), model(x))


def _netket_jacobian(reference, variables, x, holomorphic):
    """Per-sample d log psi / d params of NetKet's apply by autodiff, as complex arrays."""

    def log_psi(v, s):
        return reference.apply(v, s)

    if holomorphic:
        return jax.vmap(jax.grad(log_psi, holomorphic=True), in_axes=(None, 0))(variables, x)
    # Real parameters, complex output: the gradients of the real and imaginary parts.
    re = jax.vmap(jax.grad(lambda v, s: log_psi(v, s).real), in_axes=(None, 0))(variables, x)
    im = jax.vmap(jax.grad(lambda v, s: log_psi(v, s).imag), in_axes=(None, 0))(variables, x)
    return jax.tree.map(lambda a, b: a + 1j * b, re, im)


def _stacked(tree, name):
    layers = tree["params"]
    return np.stack([np.asarray(layers[layer][name]) for layer in ("Dense_0", "Dense_1")], axis=1)


@eqx.filter_jit
def _closed_form(model, x, v):
    """The log-derivatives and every product of both Jacobians in one compiled program (eagerly,
    each operation would compile on its own)."""
    products = {}
    for centred in (False, True):
        jac = eqx_rbm.jacobian(model, x, centred=centred)
        products[centred] = (
            jac.flat(),
            jac.kernel(),
            jac.kernel(conjugate=False),
            jac.rmatvec(v),
            jac.matvec(model),
        )
    return eqx_rbm.log_derivatives(model, x), products


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_closed_form_derivatives_match_autodiff_of_netket(dtype):
    model, reference, variables = _pair(dtype, init=random_params_init(0.5), seed=2)
    x = jnp.asarray(spins(np.random.default_rng(3), (11,), N))
    # The reference under jit: one compilation instead of one per operation of NetKet's apply.
    netket_jacobian = jax.jit(
        lambda v, s: _netket_jacobian(reference, v, s, holomorphic=dtype == jnp.complex128)
    )
    expected = netket_jacobian(variables, x)
    v = np.random.default_rng(4).normal(size=11) + 1j * np.random.default_rng(5).normal(size=11)
    rows, products = _closed_form(model, x, jnp.asarray(v))
    assert rows.kernel.dtype == jnp.complex128 and rows.kernel.shape == (11, 2, N, ALPHA * N)
    np.testing.assert_allclose(rows.kernel, _stacked(expected, "kernel"), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(rows.hidden_bias, _stacked(expected, "bias"), rtol=1e-13, atol=1e-14)
    assert rows.visible_bias is None

    flat = np.concatenate([_stacked(expected, name).reshape(11, -1) for name in ("kernel", "bias")], -1)
    for centred in (False, True):
        jac_flat, kernel, kernel_plain, pullback, matvec = products[centred]
        o = flat - flat.mean(axis=0) if centred else flat
        np.testing.assert_allclose(jac_flat, o, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(kernel, o @ o.conj().T, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(kernel_plain, o @ o.T, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            np.concatenate([np.ravel(pullback.kernel), np.ravel(pullback.hidden_bias)]),
            o.conj().T @ v,
            rtol=1e-12,
            atol=1e-12,
        )
        np.testing.assert_allclose(
            matvec,
            o @ np.concatenate([np.ravel(model.kernel), np.ravel(model.hidden_bias)]),
            rtol=1e-12,
            atol=1e-12,
        )


def test_bad_input_is_named():
    model = eqx_rbm.RBMModPhase(N, key=jax.random.key(0))
    one_hot = jnp.zeros((4, 3 * N))  # an RBMMultiVal-style encoded input
    with pytest.raises(ValueError, match=r"x: expected shape \(\*batch, n_sites\) with n_sites=6, got shape"):
        model(one_hot)
    with pytest.raises(TypeError, match="parameter 'x'"):
        model(jnp.ones((2, N), bool))
    with pytest.raises(ValueError, match=r"kernel: expected shape \(2, n_visible, n_hidden\)"):
        eqx_rbm.RBMModPhase.from_arrays(jnp.zeros((N, 12)))
    with pytest.raises(TypeError, match="use_visible_bias"):
        eqx_rbm.RBMModPhase(N, use_visible_bias=True, key=jax.random.key(0))  # pyright: ignore[reportCallIssue]


def test_broken_variables_list_every_path():
    require("flax")
    import eqx_rbm.linen

    twin = eqx_rbm.linen.RBMModPhase(alpha=1)
    good = eqx_rbm.to_variables(eqx_rbm.RBMModPhase(N, key=jax.random.key(0)))["params"]
    broken = {
        "params": {
            "Dense_0": {"kernel": good["Dense_0"]["kernel"]},  # no bias
            "Dense_1": {"kernel": jnp.zeros((N, N + 1)), "bias": good["Dense_1"]["bias"]},
            "visible_bias": jnp.zeros(N),
        }
    }
    with pytest.raises(eqx_rbm.VariablesError) as info:
        eqx_rbm.linen.to_equinox(twin, broken)
    problems = info.value.problems
    assert "params/Dense_0/bias: missing (the model has use_hidden_bias=True)" in problems
    assert "params/visible_bias: unexpected key" in problems
    assert any(p.startswith("params/Dense_1/kernel: expected the shape of Dense_0/kernel") for p in problems)
