"""to_variables / from_variables for the symmetric models: NetKet's RBMSymm layout, round trips, errors."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import leaves_identical, nested_keys, require

import eqx_rbm

CHAIN = np.array([np.roll(np.arange(6), k) for k in range(6)])


@pytest.mark.parametrize(("hidden", "visible"), [(True, True), (False, True), (True, False)])
def test_rbmsymm_layout_is_netkets(hidden, visible):
    nk = require("netket")
    group = nk.graph.Square(3).space_group()
    flags = {"use_hidden_bias": hidden, "use_visible_bias": visible}
    x = jnp.asarray(np.random.default_rng(0).choice([-1.0, 1.0], size=(4, 9)))
    net = nk.models.RBMSymm(group, alpha=16, **flags)
    reference = net.init(jax.random.key(2), x)
    model = eqx_rbm.RBMSymm(group, alpha=16, **flags, key=jax.random.key(2))
    ours = eqx_rbm.to_variables(model)
    assert type(ours) is dict and nested_keys(ours) == nested_keys(reference)  # key order included
    assert leaves_identical(ours, reference)
    assert ours["params"]["Dense"]["kernel"] is model.kernel
    back = eqx_rbm.from_variables(jax.tree.map(np.asarray, reference), symmetries=group)
    assert isinstance(back, eqx_rbm.RBMSymm) and back.alpha == 16 and back.n_filters == 2
    assert (back.use_hidden_bias, back.use_visible_bias) == (hidden, visible)
    np.testing.assert_array_equal(back(x), net.apply(reference, x))


def test_round_trips_are_exact():
    # alpha=1.5 gives one filter as alpha=1 does: the arrays record only the filters, so the
    # smallest alpha giving them comes back unless alpha is passed.
    symm = eqx_rbm.RBMSymm(CHAIN, alpha=1.5, param_dtype=jnp.complex128, key=jax.random.key(0))
    multival = eqx_rbm.RBMMultiValSymm(
        CHAIN,
        3,
        local_states=(-2, 0, 2),
        use_hidden_bias=False,
        param_dtype=jnp.float32,
        key=jax.random.key(1),
    )
    assert symm.n_filters == 1
    options = [
        {"symmetries": CHAIN, "alpha": 1.5},
        {"symmetries": CHAIN.tolist(), "n_classes": 3, "local_states": (-2, 0, 2)},
    ]
    for model, kwargs in zip((symm, multival), options, strict=True):
        variables = eqx_rbm.to_variables(model)
        back = eqx_rbm.from_variables(jax.tree.map(np.asarray, variables), **kwargs)
        assert type(back) is type(model) and bool(eqx.tree_equal(back, model))
        same = eqx_rbm.from_variables(variables, **kwargs)
        assert all(a is b for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(model), strict=True))
    assert eqx_rbm.from_variables(eqx_rbm.to_variables(symm), symmetries=CHAIN).alpha == 1
    layout = eqx_rbm.to_variables(multival)["params"]
    assert jax.tree.map(jnp.shape, layout) == {"Dense": {"kernel": (3, 3, 6)}, "visible_bias": (3,)}


def test_which_model_and_configuration():
    variables = eqx_rbm.to_variables(eqx_rbm.RBMSymm(CHAIN, alpha=2, key=jax.random.key(0)))
    with pytest.raises(
        TypeError, match=r"symmetries: required for symmetric variables \(params/Dense/kernel is 3-D"
    ):
        eqx_rbm.from_variables(variables)
    with pytest.raises(TypeError, match="local_states: only for RBMMultiVal variables"):
        eqx_rbm.from_variables(variables, symmetries=CHAIN, local_states=(0, 1))
    model = eqx_rbm.from_variables(variables, symmetries=CHAIN, alpha=2.0, activation=jnp.tanh)
    assert model.alpha == 2 and model.activation is jnp.tanh
    with pytest.raises(ValueError, match=r"symmetries: expected every row to be a permutation"):
        eqx_rbm.from_variables(variables, symmetries=np.zeros((2, 6), int))
    with pytest.raises(TypeError, match=r"model: expected an eqx_rbm\.RBM or .*eqx_rbm\.RBMMultiValSymm"):
        eqx_rbm.to_variables(3)


def problems_of(variables, **options) -> list[str]:
    with pytest.raises(eqx_rbm.VariablesError) as info:
        eqx_rbm.from_variables(variables, **options)
    return info.value.problems


def test_every_offending_path_is_listed():
    good = eqx_rbm.to_variables(eqx_rbm.RBMSymm(CHAIN, alpha=2, key=jax.random.key(0)))["params"]
    bad = {
        "Dense": {"kernel": good["Dense"]["kernel"].astype(jnp.int32), "bias": jnp.zeros(3), "extra": 1},
        "visible_bias": jnp.zeros(2),
    }
    problems = problems_of({"params": bad, "cache": {}}, symmetries=CHAIN)
    assert sorted(problems) == sorted(
        [
            "cache: unexpected collection",
            "params/Dense/extra: unexpected key",
            "params/Dense/kernel: expected a floating or complex array, got dtype int32",
            "params/Dense/bias: expected shape (2,) (n_filters,), got shape (3,)",
            "params/visible_bias: expected shape (1,) (one weight shared by every site), got shape (2,)",
        ]
    )
    problems = problems_of({"params": good}, symmetries=CHAIN, alpha=1, use_visible_bias=False)
    assert problems == [
        "params/visible_bias: unexpected key (the model has use_visible_bias=False)",
        "params/Dense/kernel: expected 1 filters (int(alpha * n_features / n_symmetries) with alpha=1, "
        "n_features=6, n_symmetries=6), got shape (2, 1, 6)",
    ]
    problems = problems_of({"params": good}, symmetries=[np.roll(np.arange(5), k) for k in range(5)])
    assert problems[0].startswith(
        "params/Dense/kernel: expected shape (n_filters, 1, n_sites) = (n_filters, 1, 5)"
    )
    multival = eqx_rbm.to_variables(eqx_rbm.RBMMultiValSymm(CHAIN, 3, key=jax.random.key(0)))
    problems = problems_of(multival, symmetries=CHAIN)
    assert problems[0].endswith("got shape (3, 3, 6); for RBMMultiValSymm variables pass n_classes=3")
    assert problems_of({"params": {"Dense": {"kernel": [1.0]}}}, symmetries=CHAIN, n_classes=2) == [
        "params/Dense/kernel: expected an array, got list"
    ]
