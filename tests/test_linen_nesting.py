"""The twins inside other Flax models: compact and setup parents, lifted transforms, NetKet's blocks."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import require

try:
    import flax.linen as nn
    import flax.serialization

    import eqx_rbm.linen as linen
except ImportError:  # reported by the fixture below
    pass


@pytest.fixture(autouse=True)
def _flax():
    require("flax")


SPINS = jnp.asarray(np.random.default_rng(0).choice([-1.0, 1.0], size=(4, 6)))
OCCUPATIONS = (SPINS + 1) / 2
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def same_leaves(a, b) -> bool:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return jax.tree.structure(a) == jax.tree.structure(b) and all(np.array_equal(x, y) for x, y in pairs)


def wrapper(rbm_cls):
    class PlusMinus(nn.Module):
        """0/1 occupations to +-1 spins, then the RBM."""

        @nn.compact
        def __call__(self, s):
            return rbm_cls(alpha=2)(2 * s - 1)

    return PlusMinus()


def test_compact_parent_init_apply_tabulate_match_netket():
    nk = require("netket")
    ours, theirs = wrapper(linen.RBM), wrapper(nk.models.RBM)
    variables = ours.init(jax.random.key(0), OCCUPATIONS)
    assert same_leaves(variables, theirs.init(jax.random.key(0), OCCUPATIONS))
    assert variables["params"]["RBM_0"]["Dense"]["kernel"].shape == (6, 12)
    np.testing.assert_array_equal(ours.apply(variables, OCCUPATIONS), theirs.apply(variables, OCCUPATIONS))
    table = ours.tabulate(jax.random.key(0), OCCUPATIONS)
    assert table == theirs.tabulate(jax.random.key(0), OCCUPATIONS)
    assert "RBM_0/Dense" in ANSI.sub("", table)


def test_symm_exp_sum_matches_netket():
    nk = require("netket")
    group = nk.graph.Chain(6).translation_group()
    ours = nk.nn.blocks.SymmExpSum(module=linen.RBM(alpha=1), symm_group=group)
    theirs = nk.nn.blocks.SymmExpSum(module=nk.models.RBM(alpha=1), symm_group=group)
    variables = theirs.init(jax.random.key(1), SPINS)
    assert same_leaves(ours.init(jax.random.key(1), SPINS), variables)
    np.testing.assert_allclose(
        ours.apply(variables, SPINS), theirs.apply(variables, SPINS), rtol=1e-13, atol=0
    )
    # Symmetric: a translated configuration has the same amplitude.
    shifted = jnp.roll(SPINS, 1, axis=-1)
    np.testing.assert_allclose(ours.apply(variables, shifted), ours.apply(variables, SPINS), rtol=1e-12)


def test_setup_parent_and_two_networks():
    nk = require("netket")

    class ModulusPhase(nn.Module):
        rbm_cls: type

        def setup(self):
            self.modulus = self.rbm_cls(alpha=1)
            self.phase = self.rbm_cls(alpha=2, use_visible_bias=False)

        def __call__(self, x):
            return self.modulus(x) + 1j * self.phase(x)

    ours, theirs = ModulusPhase(linen.RBM), ModulusPhase(nk.models.RBM)
    variables = ours.init(jax.random.key(2), SPINS)
    assert same_leaves(variables, theirs.init(jax.random.key(2), SPINS))
    assert set(variables["params"]) == {"modulus", "phase"}
    np.testing.assert_array_equal(ours.apply(variables, SPINS), theirs.apply(variables, SPINS))


def test_lifted_vmap_jit_and_remat():
    nk = require("netket")

    def ensemble(rbm_cls):
        # Three independent RBMs, one per leading slice of the input.
        return nn.vmap(
            rbm_cls,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=0,
        )(alpha=1)

    x = jnp.stack([SPINS, -SPINS, SPINS[::-1]])
    ours, theirs = ensemble(linen.RBM), ensemble(nk.models.RBM)
    variables = ours.init(jax.random.key(3), x)
    assert variables["params"]["Dense"]["kernel"].shape == (3, 6, 6)
    assert same_leaves(variables, theirs.init(jax.random.key(3), x))
    np.testing.assert_array_equal(ours.apply(variables, x), theirs.apply(variables, x))
    for transform in (nn.jit, nn.remat):
        lifted = transform(linen.RBM)(alpha=1)
        single = lifted.init(jax.random.key(4), SPINS)
        assert same_leaves(single, transform(nk.models.RBM)(alpha=1).init(jax.random.key(4), SPINS))
        np.testing.assert_array_equal(lifted.apply(single, SPINS), linen.RBM(alpha=1).apply(single, SPINS))


def test_multival_nested_and_vmapped_over_samples():
    nk = require("netket")
    levels = jnp.asarray(np.random.default_rng(3).integers(0, 3, size=(5, 4)), dtype=jnp.int32)

    class Twice(nn.Module):
        rbm_cls: type

        @nn.compact
        def __call__(self, x):
            return jax.vmap(self.rbm_cls(n_classes=3, name="inner"))(x) * 2

    ours, theirs = Twice(linen.RBMMultiVal), Twice(nk.models.RBMMultiVal)
    variables = ours.init(jax.random.key(5), levels)
    assert same_leaves(variables, theirs.init(jax.random.key(5), levels))
    np.testing.assert_array_equal(ours.apply(variables, levels), theirs.apply(variables, levels))


def test_subclass_overriding_call_initialises():
    nk = require("netket")

    class Shifted(linen.RBM):
        @nn.compact
        def __call__(self, input):
            return super().__call__(input) + 1.0

    variables = Shifted(alpha=2).init(jax.random.key(6), SPINS)
    assert same_leaves(variables, nk.models.RBM(alpha=2).init(jax.random.key(6), SPINS))
    np.testing.assert_array_equal(
        Shifted(alpha=2).apply(variables, SPINS), linen.RBM(alpha=2).apply(variables, SPINS) + 1.0
    )


def test_flax_module_api_comes_from_flax():
    twin = linen.RBM(alpha=2)
    variables = twin.init(jax.random.key(0), SPINS)
    bound = twin.bind(variables)
    assert not bound.is_initializing() and not bound.has_rng("params")
    unbound, same = bound.unbind()
    assert unbound == twin and same_leaves(same, variables)
    assert twin.clone(alpha=3).alpha == 3
    _, state = twin.apply(variables, SPINS, mutable=["intermediates"], capture_intermediates=True)
    assert state["intermediates"]["Dense"]["__call__"][0].shape == (4, 12)
    restored = flax.serialization.from_bytes(variables, flax.serialization.to_bytes(variables))
    assert same_leaves(restored, variables)
    out, initial = twin.init_with_output(jax.random.key(0), SPINS)
    np.testing.assert_array_equal(out, twin.apply(initial, SPINS))
