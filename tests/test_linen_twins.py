"""The Linen twins are Flax modules with NetKet's attributes, parameters and numbers."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close, require

import eqx_rbm

try:
    import flax.linen as nn

    import eqx_rbm.linen as linen
except ImportError:  # reported by the fixture below
    pass


@pytest.fixture(autouse=True)
def _flax():
    require("flax")


def same_numbers(ours, theirs) -> None:
    """Bit for bit for real outputs; complex log_cosh has its own, equally accurate, rounding."""
    assert ours.dtype == theirs.dtype
    if jnp.issubdtype(ours.dtype, jnp.complexfloating):
        assert_close(ours, theirs, ours.dtype, "log psi")
    else:
        np.testing.assert_array_equal(ours, theirs)


def identical(a, b) -> bool:
    if jax.tree.structure(a) != jax.tree.structure(b):
        return False
    return all(
        np.asarray(x).dtype == np.asarray(y).dtype and np.asarray(x).tobytes() == np.asarray(y).tobytes()
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


SPINS = jnp.asarray(np.random.default_rng(0).choice([-1.0, 1.0], size=(6, 5)))
LEVELS = jnp.asarray(np.random.default_rng(1).integers(0, 3, size=(6, 4)), dtype=jnp.int32)

# Each dtype, each bias missing, a fractional alpha: the twin hands the dtype and the flags to its
# parameters independently of each other (linen/_twins.py), so three configurations cover them.
CONFIGS = [
    {"alpha": 2},
    {"alpha": 1, "use_visible_bias": False, "param_dtype": jnp.complex128},
    {"alpha": 1.5, "use_hidden_bias": False, "param_dtype": jnp.float32},
]


@pytest.mark.parametrize("config", CONFIGS)
def test_init_and_apply_match_netket(config):
    nk = require("netket")
    twin, net = linen.RBM(**config), nk.models.RBM(**config)
    reference = net.init(jax.random.key(3), SPINS)
    assert identical(twin.init(jax.random.key(3), SPINS), reference)
    batches = (SPINS, SPINS[0], SPINS.reshape(2, 3, 5), SPINS.astype(jnp.float32))

    @jax.jit
    def both(variables, batches):
        # Every batch shape and both libraries in one compiled program: one compilation.
        return [(twin.apply(variables, x), net.apply(variables, x)) for x in batches]

    results = both(reference, batches)
    for ours, theirs in results:
        same_numbers(ours, theirs)
    # The eager path at the deepest batch.
    same_numbers(twin.apply(reference, batches[2]), results[2][1])


def test_multival_init_and_apply_match_netket():
    nk = require("netket")
    twin, net = linen.RBMMultiVal(3, alpha=2), nk.models.RBMMultiVal(n_classes=3, alpha=2)
    key = jax.random.key(11)
    reference = net.init(key, LEVELS)
    assert identical(twin.init(key, LEVELS), reference)
    batches = (LEVELS, LEVELS[2])
    both = jax.jit(lambda v, xs: [(twin.apply(v, x), net.apply(v, x)) for x in xs])  # one compilation
    results = both(reference, batches)
    for ours, theirs in results:
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(twin.apply(reference, LEVELS), results[0][1])  # the eager path
    # NetKet's setup attribute: the bound inner RBM.
    inner = twin.bind(reference).RBM
    assert isinstance(inner, linen.RBM) and inner.variables["params"].keys() == {"Dense", "visible_bias"}


def test_is_a_flax_module_with_netkets_fields_and_defaults():
    nk = require("netket")
    assert isinstance(linen.RBM(), nn.Module) and isinstance(linen.RBMMultiVal(3), nn.Module)
    for twin_cls, net_cls, required in (
        (linen.RBM, nk.models.RBM, {}),
        (linen.RBMMultiVal, nk.models.RBMMultiVal, {"n_classes": 3}),
    ):
        net_fields = [f.name for f in dataclasses.fields(net_cls)]
        ours = [f.name for f in dataclasses.fields(twin_cls) if f.name != "local_states"]
        assert ours == net_fields
        twin, net = twin_cls(**required), net_cls(**required)
        for name in net_fields:
            if not name.endswith("init") and name not in ("activation", "parent"):
                assert getattr(twin, name) == getattr(net, name), name
        key, shape = jax.random.key(0), (3, 4)
        for name in ("kernel_init", "hidden_bias_init", "visible_bias_init"):
            np.testing.assert_array_equal(
                getattr(twin, name)(key, shape, jnp.float64), getattr(net, name)(key, shape, jnp.float64)
            )
        z = jnp.linspace(-30, 30, 101)
        np.testing.assert_array_equal(twin.activation(z), net.activation(z))
    multi = linen.RBMMultiVal(3, local_states=[-1, 0, 1])
    assert multi.local_states == (-1, 0, 1)
    assert hash(multi) == hash(linen.RBMMultiVal(3, local_states=(-1, 0, 1)))


def test_lazy_init_and_netkets_input_keyword():
    nk = require("netket")
    abstract = jax.ShapeDtypeStruct(SPINS.shape, SPINS.dtype)
    key = jax.random.key(2)
    lazy = linen.RBM(alpha=2).lazy_init(key, abstract)
    assert identical(lazy, nk.models.RBM(alpha=2).init(key, SPINS))
    variables = linen.RBM(alpha=2).init(key, input=SPINS)
    assert identical(variables, lazy)
    np.testing.assert_array_equal(
        linen.RBM(alpha=2).apply(variables, input=SPINS), linen.RBM(alpha=2).apply(variables, SPINS)
    )


def test_mismatched_parameter_dtypes_promote_as_in_netket():
    nk = require("netket")
    real = nk.models.RBM(alpha=2).init(jax.random.key(0), SPINS)
    # Real parameters in a complex model, as NetKet's tests do.
    complex_config = {"alpha": 2, "param_dtype": jnp.complex128}
    ours = linen.RBM(**complex_config).apply(real, SPINS)
    theirs = nk.models.RBM(**complex_config).apply(real, SPINS)
    assert ours.dtype == theirs.dtype == jnp.float64
    np.testing.assert_array_equal(ours, theirs)
    # Each leaf its own dtype.
    mixed = jax.tree.map(lambda a: a, real)
    mixed["params"]["Dense"]["bias"] = real["params"]["Dense"]["bias"].astype(jnp.complex64)
    mixed["params"]["visible_bias"] = real["params"]["visible_bias"].astype(jnp.float32)
    ours = linen.RBM(alpha=2).apply(mixed, SPINS.astype(jnp.float32))
    theirs = nk.models.RBM(alpha=2).apply(mixed, SPINS.astype(jnp.float32))
    assert ours.dtype == jnp.complex128
    same_numbers(ours, theirs)
    # from_variables agrees with apply on such parameters.
    model = linen.to_equinox(linen.RBM(alpha=2, param_dtype=jnp.complex128), mixed)
    np.testing.assert_array_equal(model(SPINS.astype(jnp.float32)), ours)


def test_unknown_local_states_are_errors_eagerly_and_under_jit():
    twin = linen.RBMMultiVal(3, local_states=(-1, 0, 1))
    x = jnp.array([[-1, 0, 1, 1]])
    variables = twin.init(jax.random.key(0), x)
    with pytest.raises(ValueError, match=r"x: expected every value to be one of local_states=\(-1, 0, 1\)"):
        twin.apply(variables, jnp.array([[-1, 0, 2, 1]]))
    with pytest.raises(Exception, match="not one of local_states"):
        jax.block_until_ready(jax.jit(twin.apply)(variables, jnp.array([[-1, 0, 2, 1]])))
    np.testing.assert_array_equal(jax.jit(twin.apply)(variables, x), linen.to_equinox(twin, variables)(x))


def test_precision_reaches_the_inner_rbm():
    twin = linen.RBMMultiVal(3, precision=jax.lax.Precision.HIGHEST)
    variables = twin.init(jax.random.key(0), LEVELS)
    assert twin.bind(variables).RBM.precision == jax.lax.Precision.HIGHEST
    model = linen.to_equinox(twin.bind(variables))
    assert model.precision == jax.lax.Precision.HIGHEST
    jaxpr = str(jax.make_jaxpr(lambda v: twin.apply(v, LEVELS))(variables))
    assert "precision=(Precision.HIGHEST, Precision.HIGHEST)" in jaxpr


def test_to_equinox_of_a_bound_twin():
    twin = linen.RBM(alpha=2, use_hidden_bias=False)
    variables = twin.init(jax.random.key(0), SPINS)
    model = linen.to_equinox(twin.bind(variables))
    assert isinstance(model, eqx_rbm.RBM) and model.hidden_bias is None
    assert model.kernel is variables["params"]["Dense"]["kernel"]
    np.testing.assert_array_equal(model(SPINS), twin.apply(variables, SPINS))
    multi = linen.RBMMultiVal(3)
    variables = multi.init(jax.random.key(0), LEVELS)
    np.testing.assert_array_equal(
        linen.to_equinox(multi.bind(variables))(LEVELS), multi.apply(variables, LEVELS)
    )


def test_bad_configuration_names_the_argument():
    with pytest.raises(TypeError, match="param_dtype: expected a floating or complex dtype"):
        linen.RBM(param_dtype=jnp.int32)
    with pytest.raises(TypeError, match="param_dtype: expected a floating or complex dtype"):
        linen.RBM(param_dtype="nope")
    with pytest.raises(ValueError, match="alpha"):
        linen.RBM(alpha=-1)
    with pytest.raises(TypeError, match="activation: expected a callable"):
        linen.RBM(activation=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_classes: expected at least 2"):
        linen.RBMMultiVal(1)
    with pytest.raises(ValueError, match="local_states"):
        linen.RBMMultiVal(3, local_states=(0, 1))


def test_bad_inputs_name_the_argument():
    twin = linen.RBM(alpha=2)
    with pytest.raises(TypeError, match="x: expected an integer, floating or complex array, got dtype bool"):
        twin.init(jax.random.key(0), SPINS > 0)
    with pytest.raises(ValueError, match=r"x: expected shape \(\*batch, n_visible\)"):
        twin.init(jax.random.key(0), jnp.float64(1.0))
    with pytest.raises(TypeError, match="x: expected an integer or floating array, got dtype complex128"):
        linen.RBMMultiVal(3).init(jax.random.key(0), LEVELS.astype(jnp.complex128))


def test_float64_without_x64_is_a_clear_error():
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match="param_dtype: float64 needs 64-bit mode"):
            linen.RBM().init(jax.random.key(0), jnp.ones((2, 3)))
        variables = linen.RBM(param_dtype=jnp.float32).init(jax.random.key(0), jnp.ones((2, 3)))
        assert {leaf.dtype for leaf in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}


def test_initializer_returning_the_wrong_dtype_is_refused():
    def float32_init(key, shape, dtype):
        return jnp.zeros(shape, jnp.float32)

    with pytest.raises(TypeError, match="kernel_init: the initializer returned dtype float32"):
        linen.RBM(kernel_init=float32_init).init(jax.random.key(0), SPINS)


def test_to_linen_and_from_variables_round_trip():
    flax = require("flax")
    for model in (
        eqx_rbm.RBM(5, alpha=2, key=jax.random.key(0)),
        eqx_rbm.RBMMultiVal(4, 3, local_states=(-2, 0, 2), use_hidden_bias=False, key=jax.random.key(1)),
    ):
        twin, variables = linen.to_linen(model)
        assert identical(variables, eqx_rbm.to_variables(model))
        back = linen.to_equinox(twin, variables)
        assert identical(back, model) and jax.tree.structure(back) == jax.tree.structure(model)
        x = jnp.array([[-2, 0, 2, 0]]) if isinstance(model, eqx_rbm.RBMMultiVal) else SPINS
        np.testing.assert_array_equal(twin.apply(variables, x), model(x))
        # FrozenDicts and msgpack checkpoints, bit for bit.
        assert identical(linen.to_equinox(twin, flax.core.freeze(variables)), model)
        restored = flax.serialization.msgpack_restore(flax.serialization.to_bytes(variables))
        assert identical(linen.to_equinox(twin, restored), model)
        checkpoint = flax.serialization.to_bytes(eqx_rbm.to_variables(linen.to_equinox(twin, restored)))
        assert checkpoint == flax.serialization.to_bytes(variables)
    assert linen.to_linen(eqx_rbm.RBM(3, alpha=0.5, key=jax.random.key(0)))[0] == linen.RBM(alpha=0.5)


def test_from_variables_checks_against_the_twin():
    variables = eqx_rbm.to_variables(eqx_rbm.RBM(4, alpha=2, key=jax.random.key(0)))
    with pytest.raises(eqx_rbm.VariablesError) as info:
        linen.to_equinox(linen.RBM(alpha=1, use_visible_bias=False), variables)
    assert info.value.problems == [
        "params/visible_bias: unexpected key (the model has use_visible_bias=False)",
        "params/Dense/kernel: expected shape (4, 4) (n_hidden = int(alpha * n_visible) with alpha=1), "
        "got shape (4, 8)",
    ]
    with pytest.raises(eqx_rbm.VariablesError, match="params/RBM: missing"):
        linen.to_equinox(linen.RBMMultiVal(2, alpha=2), variables)
    with pytest.raises(eqx_rbm.VariablesError, match="params/RBM: unexpected key"):
        linen.to_equinox(linen.RBM(alpha=2), {"params": {"RBM": variables["params"]}})
    with pytest.raises(TypeError, match=r"module: expected an eqx_rbm\.linen\.RBM"):
        linen.to_equinox(eqx_rbm.RBM(3, key=jax.random.key(0)), variables)  # type: ignore[arg-type]
    assert eqx_rbm.VariablesError is eqx_rbm.VariablesError
