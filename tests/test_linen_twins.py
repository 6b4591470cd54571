"""The Linen-style twins behave like NetKet's Flax models (init, apply, bind, ...)."""

from __future__ import annotations

import ast
import dataclasses
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require

import eqx_rbm
import eqx_rbm.linen as linen


def identical(a, b) -> bool:
    if jax.tree.structure(a) != jax.tree.structure(b):
        return False
    return all(
        np.asarray(x).dtype == np.asarray(y).dtype and np.asarray(x).tobytes() == np.asarray(y).tobytes()
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


SPINS = jnp.asarray(np.random.default_rng(0).choice([-1.0, 1.0], size=(6, 5)))
LEVELS = jnp.asarray(np.random.default_rng(1).integers(0, 3, size=(6, 4)), dtype=jnp.int32)

CONFIGS = [
    {"alpha": 2},
    {"alpha": 1.5, "use_hidden_bias": False},
    {"alpha": 1, "use_visible_bias": False, "param_dtype": jnp.complex128},
]


@pytest.mark.parametrize("config", CONFIGS)
def test_init_and_apply_match_netket(config):
    nk = require("netket")
    twin, net = linen.RBM(**config), nk.models.RBM(**config)
    reference = net.init(jax.random.key(3), SPINS)
    ours = twin.init(jax.random.key(3), SPINS)
    assert type(ours) is dict and type(ours["params"]) is dict
    assert identical(ours, reference)
    np.testing.assert_array_equal(twin.apply(reference, SPINS), net.apply(reference, SPINS))


def test_rngs_forms_and_input_shapes_match_netket():
    nk = require("netket")
    twin, net = linen.RBM(alpha=2), nk.models.RBM(alpha=2)
    for rngs in (jax.random.PRNGKey(4), {"params": jax.random.key(5)}):
        assert identical(twin.init(rngs, SPINS[0]), net.init(rngs, SPINS[0]))
    assert identical(twin.init(jax.random.key(9), SPINS), twin.init(jax.random.key(9), SPINS))
    reference = net.init(jax.random.key(3), SPINS)
    for x in (SPINS[0], SPINS.reshape(2, 3, 5)):
        np.testing.assert_array_equal(twin.apply(reference, x), net.apply(reference, x))
    jitted = jax.jit(twin.apply)(reference, SPINS)
    np.testing.assert_array_equal(jitted, net.apply(reference, SPINS))


def test_multival_init_and_apply_match_netket():
    nk = require("netket")
    twin, net = linen.RBMMultiVal(3), nk.models.RBMMultiVal(n_classes=3)
    key = jax.random.key(11)
    reference = net.init(key, LEVELS)
    assert identical(twin.init(key, LEVELS), reference)
    np.testing.assert_array_equal(twin.apply(reference, LEVELS), net.apply(reference, LEVELS))
    np.testing.assert_array_equal(twin.apply(reference, LEVELS[2]), net.apply(reference, LEVELS[2]))


def test_lazy_init_matches_init_and_flax():
    nk = require("netket")
    abstract = jax.ShapeDtypeStruct(SPINS.shape, SPINS.dtype)
    key = jax.random.key(2)
    lazy = linen.RBM(alpha=2).lazy_init(key, abstract)
    assert identical(lazy, linen.RBM(alpha=2).init(key, SPINS))
    assert identical(lazy, nk.models.RBM(alpha=2).lazy_init(key, abstract))
    twin = linen.RBMMultiVal(3)
    lazy = twin.lazy_init(key, jax.ShapeDtypeStruct(LEVELS.shape, LEVELS.dtype))
    assert identical(lazy, twin.init(key, LEVELS))

    def theta_only(m, x):
        return m.theta(x)

    # A method other than the model: only its shapes are evaluated too.
    expected = linen.RBM(alpha=2).init(key, SPINS)
    assert identical(linen.RBM(alpha=2).lazy_init(key, abstract, method=theta_only), expected)


def test_fields_and_defaults_follow_netket():
    nk = require("netket")
    for twin_cls, net_cls, required in (
        (linen.RBM, nk.models.RBM, {}),
        (linen.RBMMultiVal, nk.models.RBMMultiVal, {"n_classes": 3}),
    ):
        net_fields = [f.name for f in dataclasses.fields(net_cls) if f.name not in ("parent", "name")]
        ours = [f.name for f in dataclasses.fields(twin_cls)]
        assert ours[: len(net_fields)] == net_fields
        twin, net = twin_cls(**required), net_cls(**required)
        for name in net_fields:
            if name.endswith("init") or name == "activation":
                continue
            value = getattr(twin, name)
            assert value == getattr(net, name), name
        # Default initializers and activation: same numbers as NetKet's.
        key, shape = jax.random.key(0), (3, 4)
        for name in ("kernel_init", "hidden_bias_init", "visible_bias_init"):
            np.testing.assert_array_equal(
                getattr(twin, name)(key, shape, jnp.float64), getattr(net, name)(key, shape, jnp.float64)
            )
        z = jnp.linspace(-30, 30, 101)
        np.testing.assert_array_equal(twin.activation(z), net.activation(z))
    assert [f.name for f in dataclasses.fields(linen.RBMMultiVal)][-1] == "local_states"


def test_frozen_hashable_comparable_readable():
    a, b = linen.RBM(alpha=2), linen.RBM(alpha=2, param_dtype=jnp.float64)
    assert a == b and hash(a) == hash(b)
    assert a != linen.RBM(alpha=3) and a != linen.RBMMultiVal(2, alpha=2)
    assert len({a, b, linen.RBM(alpha=3)}) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.alpha = 3  # type: ignore[misc]
    assert repr(a) == "RBM(alpha=2)"
    assert repr(linen.RBM()) == "RBM()"
    assert (
        repr(linen.RBMMultiVal(3, param_dtype=jnp.complex128))
        == "RBMMultiVal(n_classes=3, param_dtype=complex128)"
    )
    multi = linen.RBMMultiVal(3, local_states=[-1, 0, 1])
    assert multi.local_states == (-1, 0, 1) and hash(multi) == hash(
        linen.RBMMultiVal(3, local_states=(-1, 0, 1))
    )
    # Bound copies keep the configuration.
    assert a.bind({"params": {}}) == a


def test_bad_configuration_names_the_argument():
    with pytest.raises(TypeError, match="param_dtype: expected a floating or complex dtype"):
        linen.RBM(param_dtype=jnp.int32)
    with pytest.raises(ValueError, match="alpha"):
        linen.RBM(alpha=-1)
    with pytest.raises(TypeError, match="activation: expected a callable"):
        linen.RBM(activation=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_classes: expected at least 2"):
        linen.RBMMultiVal(1)
    with pytest.raises(ValueError, match="local_states"):
        linen.RBMMultiVal(3, local_states=(0, 1))
    with pytest.raises(TypeError, match="use_hidden_bias: expected a bool"):
        linen.RBM(use_hidden_bias="yes")  # type: ignore[arg-type]


def test_bad_inputs_name_the_argument():
    twin = linen.RBM(alpha=2)
    variables = twin.init(jax.random.key(0), SPINS)
    with pytest.raises(TypeError, match=r"rngs: expected a PRNG key .* got int 3"):
        twin.init(3, SPINS)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"rngs: expected a mapping from stream names to PRNG keys"):
        twin.init({"params": 0}, SPINS)  # type: ignore[dict-item]
    with pytest.raises(
        ValueError, match=r"x: expected shape \(\*batch, n_visible\) with n_visible=5, got shape \(6, 4\)"
    ):
        twin.apply(variables, SPINS[:, :4])
    with pytest.raises(
        ValueError, match="hold no parameters at 'params' and the 'params' collection is not mutable"
    ):
        twin.apply({}, SPINS)
    with pytest.raises(ValueError, match="needs a 'params' RNG"):
        twin.apply({}, SPINS, mutable=True)
    with pytest.raises(TypeError, match="mutable: expected a bool"):
        twin.apply(variables, SPINS, mutable=3)
    with pytest.raises(TypeError, match="method: expected the name of a method of RBM, got 'nope'"):
        twin.apply(variables, SPINS, method="nope")
    with pytest.raises(linen.VariablesError, match="params/Dense/bias: missing"):
        twin.apply({"params": {"Dense": {"kernel": variables["params"]["Dense"]["kernel"]}}}, SPINS)


def test_methods_and_mutable_like_flax():
    nk = require("netket")
    flax = require("flax")
    twin, net = linen.RBM(alpha=2), nk.models.RBM(alpha=2)
    variables = net.init(jax.random.key(0), SPINS)
    model = linen.from_variables(twin, variables)
    for method in ("theta", linen.RBM.theta, twin.theta):
        np.testing.assert_array_equal(twin.apply(variables, SPINS, method=method), model.theta(SPINS))

    def log_psi_via_theta(m, x):
        return m.log_psi_from_theta(x, m.theta(x))

    np.testing.assert_array_equal(twin.apply(variables, SPINS, method=log_psi_via_theta), model(SPINS))
    # mutable not False: (output, mutated collections), as Flax returns them.
    filters = [
        (True, True),
        (["params"], ["params"]),
        ("params", "params"),
        (flax.core.DenyList("intermediates"), flax.core.DenyList("intermediates")),
        (linen.DenyList("params"), flax.core.DenyList("params")),
    ]
    for mutable, ref_mutable in filters:
        out, new = twin.apply(variables, SPINS, mutable=mutable)
        ref_out, ref_new = net.apply(variables, SPINS, mutable=ref_mutable)
        np.testing.assert_array_equal(out, ref_out)
        assert identical(new, dict(ref_new))
    out, new = twin.apply(variables, SPINS, mutable=["intermediates"])
    assert new == dict(net.apply(variables, SPINS, mutable=["intermediates"])[1]) == {}
    # init with a filter that excludes params cannot create them, in Flax or here.
    with pytest.raises(Exception, match="params"):
        net.init(jax.random.key(0), SPINS, mutable=linen.DenyList("params"))
    with pytest.raises(ValueError, match="'params' collection is not mutable"):
        twin.init(jax.random.key(0), SPINS, mutable=linen.DenyList("params"))


def probe(m, x):
    """The same calls on a Flax module and on a twin: returns what they observe."""
    seen = {
        "initializing": m.is_initializing(),
        "has_params_rng": m.has_rng("params"),
        "has_dropout_rng": m.has_rng("dropout"),
    }
    y = m.perturb("h", jnp.sin(x))
    m.sow("intermediates", "y", y)
    return jnp.sum(y**2), seen


def test_scope_api_matches_flax():
    nk = require("netket")
    twin, net = linen.RBM(), nk.models.RBM()
    x = SPINS[0]
    key = jax.random.key(0)
    (out, seen), variables = twin.init_with_output(key, x, method=probe)
    (ref_out, ref_seen), ref_variables = net.init_with_output(key, x, method=probe)
    assert seen == ref_seen == {"initializing": True, "has_params_rng": True, "has_dropout_rng": False}
    np.testing.assert_array_equal(out, ref_out)
    # Only the perturbation is recorded: the probe never evaluates the model.
    assert identical(variables, dict(ref_variables))
    assert set(variables) == {"perturbations"}
    # apply without the collection: perturb is a no-op; with it, y + perturbation.
    for v in ({}, variables, {"perturbations": {"h": jnp.full(5, 0.5)}}):
        ours = twin.apply(v, x, method=probe, rngs={"dropout": key})
        reference = net.apply(v, x, method=probe, rngs={"dropout": key})
        np.testing.assert_array_equal(ours[0], reference[0])
        assert ours[1] == reference[1]
    with pytest.raises(ValueError, match="no variable 'h'"):
        twin.apply({"perturbations": {}}, x, method=probe)
    out, new = twin.apply({}, x, method=probe, mutable=["intermediates"])
    ref_out, ref_new = net.apply({}, x, method=probe, mutable=["intermediates"])
    assert identical(new, dict(ref_new))


def test_perturbation_gradient_is_intermediate_gradient():
    twin = linen.RBM(alpha=2)

    def log_psi(m, x):
        theta = m.perturb("theta", m.theta(x))
        return m.log_psi_from_theta(x, theta)

    variables = twin.init(jax.random.key(0), SPINS, method=log_psi)
    assert set(variables) == {"params", "perturbations"}
    assert variables["perturbations"]["theta"].shape == (6, 10)
    np.testing.assert_array_equal(variables["perturbations"]["theta"], 0.0)
    params, perturbations = variables["params"], variables["perturbations"]

    def loss(p):
        return jnp.sum(twin.apply({"params": params, "perturbations": p}, SPINS, method=log_psi))

    grad = jax.grad(loss)(perturbations)["theta"]
    model = linen.from_variables(twin, {"params": params})
    expected = jax.grad(lambda t: jnp.sum(model.log_psi_from_theta(SPINS, t)))(model.theta(SPINS))
    np.testing.assert_array_equal(grad, expected)
    np.testing.assert_array_equal(twin.apply({"params": params}, SPINS, method=log_psi), model(SPINS))


def test_bind_unbind_put_variable():
    nk = require("netket")
    twin, net = linen.RBM(alpha=2), nk.models.RBM(alpha=2)
    variables = net.init(jax.random.key(1), SPINS)
    bound = twin.bind(variables)
    ref_bound = net.bind(variables)
    np.testing.assert_array_equal(bound(SPINS), ref_bound(SPINS))
    assert identical(bound.variables, dict(ref_bound.variables))
    assert bound.has_rng("params") is ref_bound.has_rng("params") is False
    assert bound.is_initializing() is ref_bound.is_initializing() is False
    unbound, unbound_variables = bound.unbind()
    assert unbound == twin and unbound._scope is None
    assert identical(unbound_variables, variables)
    # Immutable by default, as in Flax.
    with pytest.raises(ValueError, match="collection 'params' is not mutable"):
        bound.put_variable("params", "visible_bias", jnp.zeros(5))
    with pytest.raises(Exception, match="immutable"):
        ref_bound.put_variable("params", "visible_bias", jnp.zeros(5))
    mutable = twin.bind(variables, mutable=["params"])
    mutable.put_variable("params", "visible_bias", jnp.zeros(5))
    ref_mutable = net.bind(variables, mutable=["params"])
    ref_mutable.put_variable("params", "visible_bias", jnp.zeros(5))
    np.testing.assert_array_equal(mutable(SPINS), ref_mutable(SPINS))
    # The caller's dict is untouched.
    assert not np.all(variables["params"]["visible_bias"] == 0)
    model = mutable.to_equinox()
    assert isinstance(model, eqx_rbm.RBM)
    np.testing.assert_array_equal(model.visible_bias, 0.0)
    assert bound.bind(variables, rngs=jax.random.key(0)).has_rng("params")


def test_multival_submodule_binding():
    nk = require("netket")
    twin, net = linen.RBMMultiVal(3), nk.models.RBMMultiVal(n_classes=3)
    variables = net.init(jax.random.key(2), LEVELS)
    inner, inner_variables = twin.bind(variables).RBM.unbind()
    ref_inner, ref_inner_variables = net.bind(variables).RBM.unbind()
    assert inner == linen.RBM() and identical(inner_variables, dict(ref_inner_variables))
    features = twin.apply(variables, LEVELS, method="one_hot")
    np.testing.assert_array_equal(
        inner.apply(inner_variables, features), ref_inner.apply(ref_inner_variables, features)
    )


def test_unbound_twin_raises_like_flax():
    nk = require("netket")
    twin, net = linen.RBM(), nk.models.RBM()
    calls = {
        "variables": lambda m: m.variables,
        "has_rng": lambda m: m.has_rng("params"),
        "is_initializing": lambda m: m.is_initializing(),
        "put_variable": lambda m: m.put_variable("params", "a", 1.0),
        "unbind": lambda m: m.unbind(),
        "perturb": lambda m: m.perturb("a", 1.0),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=rf"RBM\.{name}: the module is unbound"):
            call(twin)
        with pytest.raises(Exception, match=r"unbound|Unbound"):
            call(net)
    with pytest.raises(ValueError, match=r"RBM\.__call__: the module is unbound"):
        twin(SPINS)


def test_works_without_flax(monkeypatch):
    # No module of the subpackage imports flax, not even lazily.
    package = pathlib.Path(linen.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                assert not any(alias.name.split(".")[0] == "flax" for alias in node.names), path
            if isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "flax", path
    # With flax unimportable, the whole Linen API still runs.
    monkeypatch.setitem(sys.modules, "flax", None)
    twin = linen.RBM(alpha=2)
    variables = twin.init(jax.random.key(0), SPINS)
    assert twin.apply(variables, SPINS).shape == (6,)
    assert twin.lazy_init(jax.random.key(0), jax.ShapeDtypeStruct(SPINS.shape, SPINS.dtype)).keys() == {
        "params"
    }
    bound = twin.bind(variables, mutable=True)
    bound.put_variable("params", "visible_bias", jnp.zeros(5))
    assert isinstance(bound.to_equinox(), eqx_rbm.RBM)


def test_float64_twin_without_x64_is_a_clear_error():
    twin = linen.RBM()
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match="param_dtype: float64 needs 64-bit mode"):
            twin.init(jax.random.key(0), jnp.ones((2, 3)))
        variables = linen.RBM(param_dtype=jnp.float32).init(jax.random.key(0), jnp.ones((2, 3)))
        assert {leaf.dtype for leaf in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}


def test_traced_variables_and_gradients():
    twin = linen.RBM(alpha=2)
    variables = twin.init(jax.random.key(0), SPINS)

    def total(params):
        return jnp.sum(linen.from_variables(twin, {"params": params})(SPINS))

    grad = jax.jit(jax.grad(total))(variables["params"])
    model = linen.from_variables(twin, variables)
    expected = jax.grad(lambda m: jnp.sum(m(SPINS)))(model)
    np.testing.assert_allclose(grad["Dense"]["kernel"], expected.kernel, rtol=1e-13)
    np.testing.assert_allclose(grad["visible_bias"], expected.visible_bias, rtol=1e-13)


def test_keys_follow_flax_rng_separator_flag():
    nk = require("netket")
    flax = require("flax")
    previous = flax.config.flax_fix_rng_separator
    flax.config.update("flax_fix_rng_separator", not previous)
    try:
        key = jax.random.key(8)
        ours = linen.RBM(alpha=2).init(key, SPINS)
        assert identical(ours, nk.models.RBM(alpha=2).init(key, SPINS))
    finally:
        flax.config.update("flax_fix_rng_separator", previous)
    assert not identical(ours, linen.RBM(alpha=2).init(key, SPINS))


def test_make_rng_matches_flax():
    nk = require("netket")

    def draw(m):
        # A stream that was given, one that falls back to "params", then the model's own keys.
        return [jax.random.key_data(m.make_rng(name)) for name in ("dropout", "dropout", "other")]

    rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
    ours = linen.RBM().apply({}, rngs=rngs, method=draw)
    reference = nk.models.RBM().apply({}, rngs=rngs, method=draw)
    for a, b in zip(ours, reference, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="make_rng: no RNG stream 'dropout'"):
        linen.RBM().apply({}, method=draw)


def test_netkets_keyword_argument_names_work():
    nk = require("netket")
    x = jnp.ones((2, 4))
    variables = linen.RBM(alpha=1).init(jax.random.key(0), input=x)
    reference = nk.models.RBM(alpha=1).apply(variables, input=x)
    np.testing.assert_array_equal(
        np.asarray(linen.RBM(alpha=1).apply(variables, input=x)), np.asarray(reference)
    )
    levels = jnp.zeros((2, 3), jnp.int32)
    multi = linen.RBMMultiVal(3).init(jax.random.key(0), x=levels)
    assert linen.RBMMultiVal(3).apply(multi, x=levels).shape == (2,)


def test_apply_without_parameters_names_apply():
    with pytest.raises(ValueError, match=r"RBM\.__call__: the variables hold no parameters"):
        linen.RBM().apply({}, jnp.ones((2, 4)))
