"""Product-form Metropolis steps (eqx_rbm.sampling._flip) against the sum of activations they replace."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import normal_init

import eqx_rbm
from eqx_rbm.sampling import _flip, _sampler
from eqx_rbm.sampling._moves import ExchangeMoves, SiteMoves

N_SITES, N_CHAINS, SWEEP = 10, 64, 30


def _model(scale: float, dtype=jnp.float64, visible: bool = True, states=(-1.0, 1.0)):
    init = normal_init(scale)
    return eqx_rbm.RBM(
        N_SITES,
        alpha=3,
        param_dtype=dtype,
        use_visible_bias=visible,
        kernel_init=init,
        hidden_bias_init=init,
        visible_bias_init=init,
        key=jax.random.key(0),
    )


def _start(model, states, pairs, seed=1):
    rng = np.random.default_rng(seed)
    if pairs is None:
        x = rng.choice(states, size=(N_CHAINS, N_SITES))
    else:  # exchanges keep the number of each value: start with both present
        x = np.stack([rng.permutation(np.repeat(states, N_SITES // 2)) for _ in range(N_CHAINS)])
    return eqx_rbm.local_state(model, jnp.asarray(x, model.param_dtype))


def _both(model, states, pairs, key):
    """One sweep through each path, from the same state and the same random numbers."""
    state = _start(model, states, pairs)
    states = jnp.asarray(states, state.x.dtype)
    dense = model.dense()
    real = jnp.finfo(model.param_dtype).dtype
    n_moves = N_SITES if pairs is None else len(pairs)
    draws = _sampler.draw(key, SWEEP, N_CHAINS, n_moves, 2, real)
    moves = SiteMoves() if pairs is None else ExchangeMoves(pairs)
    table = _flip.rows(model, dense, states, moves, real)
    assert _flip.applies(model, state, 2)
    by_sum = _sampler.portable_sweep(model, dense, state, draws, states, moves)
    by_product = _flip.sweep(model, table, state, draws, states, moves)
    return table, by_sum, by_product


PAIRS = jnp.asarray([(i, (i + 1) % N_SITES) for i in range(N_SITES)] + [(0, 5)], jnp.int32)


# The visible bias enters the product steps once, after the move set has combined the per-site
# rows (`_flip.rows`, `_flip.sweep`): without it, one move set covers that branch. The local states
# are a traced array: both sets share each compiled program.
@pytest.mark.parametrize(
    ("pairs", "visible"),
    [(None, True), (PAIRS, True), (None, False)],
    ids=["flips-visible", "exchanges-visible", "flips"],
)
@pytest.mark.parametrize("states", [(-1.0, 1.0), (0.0, 1.0)], ids=["spins", "occupations"])
def test_product_steps_make_the_same_decisions(pairs, visible, states):
    model = _model(0.3, visible=visible)
    table, (state_s, accepted_s), (state_p, accepted_p) = _both(model, states, pairs, jax.random.key(2))
    assert bool(_flip.within_bounds(table))
    np.testing.assert_array_equal(state_p.x, state_s.x)
    np.testing.assert_array_equal(accepted_p, accepted_s)
    assert 0 < int(jnp.sum(accepted_p)) < N_CHAINS * SWEEP  # both outcomes were exercised
    np.testing.assert_allclose(state_p.theta, state_s.theta, rtol=0, atol=1e-13)
    np.testing.assert_allclose(state_p.hidden_sum, state_s.hidden_sum, rtol=1e-13, atol=1e-13)
    # ... and the state is that of its configurations, from scratch.
    fresh = eqx_rbm.local_state(model, state_p.x)
    np.testing.assert_allclose(state_p.theta, fresh.theta, rtol=0, atol=1e-12)


def test_float32_decisions_agree():
    model = _model(0.3, dtype=jnp.float32)
    _, (state_s, accepted_s), (state_p, accepted_p) = _both(model, (-1.0, 1.0), None, jax.random.key(3))
    # float32 ratios differ in the last bits: a decision may flip only where
    # log u lies within that distance of the log-ratio; with these draws none does.
    np.testing.assert_array_equal(accepted_p, accepted_s)
    np.testing.assert_array_equal(state_p.x, state_s.x)


def test_bounds():
    """Rows whose largest entries sum past the budget of a product are refused, so that metropolis
    keeps the sum of activations; a few large entries are not."""
    dtype = jnp.float64
    states = jnp.asarray([-1.0, 1.0])
    model = _model(0.1)

    def within(row_zero: float, entries=slice(None)) -> bool:
        kernel = model.kernel.at[0, entries].set(row_zero)
        changed = eqx_rbm.RBM.from_arrays(kernel, model.hidden_bias, model.visible_bias)
        return bool(_flip.within_bounds(_flip.rows(changed, changed.dense(), states, SiteMoves(), dtype)))

    # 30 hidden units, at most 64 factors per logarithm: a row's 30 entries |a| = 2 |w| may sum to
    # 64 * 9 = 576. 2 * 9.5 * 30 = 570 is within, 2 * 9.7 * 30 = 582 is not.
    assert within(9.5)
    assert not within(9.7)
    # Three entries of |a| = 80, far past the mean of 9, sum with the rest to about 245.
    assert within(40.0, slice(0, 3))
    assert not within(300.0, slice(0, 1))  # one factor alone may reach e^600


@pytest.mark.parametrize("pairs", [None, PAIRS], ids=["flips", "exchanges"])
def test_large_rows_make_the_same_decisions(pairs):
    """Row sums of thousands, and entries past 9 (as trained filters grow): the product neither
    overflows nor loses digits."""
    model = _model(1.0)
    kernel = jnp.clip(jnp.tile(model.kernel, (1, 40)), -2.0, 2.0)  # 1200 hidden units
    kernel = kernel.at[:, ::100].multiply(3.0)  # 12 entries per row up to 6: |a| up to 12 or 24
    model = eqx_rbm.RBM.from_arrays(kernel, jnp.tile(model.hidden_bias, 40), model.visible_bias)
    table, (state_s, accepted_s), (state_p, accepted_p) = _both(model, (-1.0, 1.0), pairs, jax.random.key(5))
    assert bool(_flip.within_bounds(table))
    assert float(jnp.max(jnp.abs(table.a))) > 11
    assert float(jnp.max(jnp.sum(jnp.abs(table.a), axis=-1))) > 1000
    np.testing.assert_array_equal(state_p.x, state_s.x)
    np.testing.assert_array_equal(accepted_p, accepted_s)
    assert 0 < int(jnp.sum(accepted_p)) < N_CHAINS * SWEEP
    np.testing.assert_allclose(state_p.theta, state_s.theta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(state_p.hidden_sum, state_s.hidden_sum, rtol=1e-13, atol=1e-11)


def test_metropolis_falls_back_past_the_bounds():
    """Past the bounds metropolis gives exactly what the sum of activations gives."""
    model = _model(0.1)
    model = eqx_rbm.RBM.from_arrays(model.kernel.at[0, :].set(10.0), model.hidden_bias, model.visible_bias)
    states = jnp.asarray([-1.0, 1.0])
    assert not bool(_flip.within_bounds(_flip.rows(model, model.dense(), states, SiteMoves(), jnp.float64)))
    state = _start(model, (-1.0, 1.0), None)
    key = jax.random.key(4)
    samples, final, acceptance = eqx_rbm.metropolis(model, state, key, n_sweeps=3)

    # The same sweeps with the sum of activations, written out with the sampler's pieces.
    current, accepted = state, 0
    for k in jax.random.split(key, 3):
        draws = _sampler.draw(k, N_SITES, N_CHAINS, N_SITES, 2, jnp.float64)
        current, n = _sampler.portable_sweep(model, model.dense(), current, draws, states, SiteMoves())
        accepted = accepted + n
    np.testing.assert_array_equal(final.x, current.x)
    np.testing.assert_array_equal(samples[-1], current.x)
    np.testing.assert_array_equal(acceptance, accepted / (3 * N_SITES))
    np.testing.assert_array_equal(final.hidden_sum, current.hidden_sum)


def test_not_applied_to_other_models():
    # NumPy-drawn parameters: whether products apply depends on the model's type and dtype only.
    inits = {f"{name}_init": normal_init(0.1) for name in ("kernel", "hidden_bias", "visible_bias")}
    complex_model = eqx_rbm.RBM(4, param_dtype=jnp.complex128, key=jax.random.key(0), **inits)
    multival = eqx_rbm.RBMMultiVal(4, 3, key=jax.random.key(0), **inits)
    spins = eqx_rbm.RBM(4, key=jax.random.key(0), **inits)
    x = jnp.ones((2, 4))
    assert not _flip.applies(complex_model, eqx_rbm.local_state(complex_model, x), 2)
    assert not _flip.applies(multival, eqx_rbm.local_state(multival, jnp.zeros((2, 4))), 3)
    assert not _flip.applies(spins, eqx_rbm.local_state(spins, x), 3)
