"""Encodings as components of the models: Spins, OneHot, and what the models delegate to them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest

import eqx_rbm


def _models() -> list[eqx_rbm.AbstractRBM]:
    group = nk.graph.Chain(4).translation_group()
    key = jax.random.key(0)
    return [
        eqx_rbm.RBM(4, key=key),
        eqx_rbm.RBMMultiVal(4, 3, local_states=(-2, 0, 2), key=key),
        eqx_rbm.RBMSymm(group, key=key),
        eqx_rbm.RBMMultiValSymm(group, 3, key=key),
    ]


def test_spins_encode_the_value_itself_and_propose_plus_minus_one():
    spins = eqx_rbm.Spins()
    assert spins.local_states == (-1.0, 1.0) and spins.features_per_site == 1 and spins.two_valued
    values = jnp.array([[0.5 + 1j, -3.0]])
    np.testing.assert_array_equal(np.asarray(spins.site_features(values)), np.asarray(values)[..., None])
    assert spins.values_invalid(values) is None and spins.layout() == {}
    assert eqx_rbm.Spins((0, 1, 2)).local_states == (0, 1, 2)


@pytest.mark.parametrize("states", [(1.0,), (1.0, 1.0), "ab"])
def test_spins_refuse_fewer_than_two_distinct_states(states):
    with pytest.raises((ValueError, TypeError), match="local_states: "):
        eqx_rbm.Spins(states)


def test_one_hot_is_an_encoding_with_its_classes_as_features():
    encoding = eqx_rbm.OneHot(3, local_states=(-2, 0, 2))
    assert isinstance(encoding, eqx_rbm.AbstractEncoding)
    assert encoding.features_per_site == 3 and not encoding.two_valued
    assert encoding.layout() == {"n_classes": 3, "local_states": (-2, 0, 2)}
    assert eqx_rbm.OneHot(2).layout() == {"n_classes": 2, "local_states": None}  # the default is left out


@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_models_answer_through_their_encoding(model):
    encoding = model.encoding
    assert isinstance(encoding, eqx_rbm.AbstractEncoding)
    assert model.local_states == encoding.local_states
    assert model.features_per_site == encoding.features_per_site
    assert model.n_features == model.n_sites * encoding.features_per_site
    values = jnp.asarray([encoding.local_states[i % 2] for i in range(model.n_sites)])
    np.testing.assert_array_equal(
        np.asarray(model.site_features(values)), np.asarray(encoding.site_features(values))
    )
    # The encoding holds no arrays: the model's leaves are its parameters only.
    assert len(jax.tree.leaves(model)) == 3


@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_layout_rebuilds_the_model_from_its_arrays(model):
    assert set(model.layout()) == model.layout_keywords
    rebuilt = type(model).from_arrays(
        model.kernel, model.hidden_bias, model.visible_bias, **model.layout(), alpha=model.alpha
    )
    assert type(rebuilt) is type(model) and rebuilt.local_states == model.local_states
    x = jnp.asarray([model.local_states[i % 2] for i in range(model.n_sites)])
    np.testing.assert_array_equal(np.asarray(rebuilt(x)), np.asarray(model(x)))


def test_metropolis_proposes_a_spin_models_local_states_by_default():
    model = eqx_rbm.RBM(6, key=jax.random.key(1))
    x = jnp.ones((4, 6))
    samples, _, _ = eqx_rbm.metropolis(model, eqx_rbm.local_state(model, x), jax.random.key(2), n_sweeps=3)
    assert set(np.unique(np.asarray(samples)).tolist()) <= {-1.0, 1.0}
