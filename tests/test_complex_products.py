"""Complex log-ratios as products (eqx_rbm.sampling._ratios.complex_log_products) against the sum of
activations, full recomputation and NetKet's log psi.

The product form knows the phase of psi(x')/psi(x) modulo 2 pi: real parts are compared as they are,
imaginary parts through the phase difference wrapped into (-pi, pi].
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import normal_init

import eqx_rbm
from eqx_rbm.sampling._log_ratios import _exchange_log_ratios, _site_log_ratios

N_SITES, BATCH = 16, 256  # BATCH * N_SITES moves: at least MIN_MOVES, so products may run
PAIRS = np.array(
    [(i, (i + 1) % N_SITES) for i in range(N_SITES)] + [(i, (i + 4) % N_SITES) for i in range(8)]
)


def _rbm(std: float, alpha: int = 4, dtype=jnp.complex128):
    init = normal_init(std, dtype)
    kw = {"kernel_init": init, "hidden_bias_init": init, "visible_bias_init": init}
    return eqx_rbm.RBM(N_SITES, alpha=alpha, param_dtype=dtype, key=jax.random.key(3), **kw)


def _spins(seed: int, batch: int = BATCH):
    return jax.random.choice(jax.random.key(seed), jnp.array([-1.0, 1.0]), (batch, N_SITES))


@functools.partial(jax.jit, static_argnames="product")
def _exchange(model, state, *, product):
    return _exchange_log_ratios(model, state, PAIRS, product=product)


@functools.partial(jax.jit, static_argnames="product")
def _sites(model, state, new_values, *, product):
    return _site_log_ratios(model, state, new_values, product=product)


def _both(model, x, new_values=None):
    """(products, sums) of the exchange or, with `new_values`, single-site log-ratios."""
    state = eqx_rbm.local_state(model, x)
    if new_values is None:
        return _exchange(model, state, product=True), _exchange(model, state, product=False)
    return _sites(model, state, new_values, product=True), _sites(model, state, new_values, product=False)


def _assert_same_ratio(actual, expected, tol: float):
    """Equal real parts, and phases equal modulo 2 pi, to `tol` absolute."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    np.testing.assert_allclose(actual.real, expected.real, rtol=tol, atol=tol)
    phase = np.angle(np.exp(1j * (actual.imag - expected.imag)))  # wrapped into (-pi, pi]
    np.testing.assert_allclose(phase, 0.0, atol=tol)


def _swapped(x, pairs):
    out = np.repeat(np.asarray(x)[:, None, :], len(pairs), axis=1)
    for p, (i, j) in enumerate(pairs):
        out[:, p, [i, j]] = out[:, p, [j, i]]
    return jnp.asarray(out)


def test_exchange_products_match_sums_recomputation_and_netket():
    import netket as nk

    model, x = _rbm(0.3), _spins(0)
    products, sums = _both(model, x)
    assert products.dtype == jnp.complex128
    assert not np.array_equal(products, sums)  # rounded differently: the products did run
    # Phases of whole chunks wrap: the product form is not the sum with its rounding changed.
    assert np.max(np.abs(np.asarray(products.imag - sums.imag))) > math.pi
    _assert_same_ratio(products, sums, 1e-12)
    _assert_same_ratio(products, model(_swapped(x, PAIRS)) - model(x)[:, None], 1e-10)
    # NetKet's RBM with the same variables: its log psi of the exchanged configurations.
    reference = nk.models.RBM(alpha=4, param_dtype=jnp.complex128)
    variables = eqx_rbm.to_variables(model)
    netket = reference.apply(variables, _swapped(x, PAIRS)) - reference.apply(variables, x)[:, None]
    _assert_same_ratio(products, netket, 1e-10)
    aligned = np.asarray(x[:, PAIRS[:, 0]] == x[:, PAIRS[:, 1]])
    assert aligned.any() and (~aligned).any()
    assert np.all(np.asarray(products)[aligned] == 0.0)  # an unchanged configuration: exactly 0


def test_site_products_match_sums_and_recomputation():
    model, x = _rbm(0.3), _spins(1)
    keep = jnp.arange(N_SITES) % 2 == 0  # every other site keeps its value: exactly 0
    new_values = jnp.where(keep, x, -x)
    products, sums = _both(model, x, new_values)
    assert not np.array_equal(products, sums)
    _assert_same_ratio(products, sums, 1e-12)
    flipped = jnp.where(jnp.eye(N_SITES, dtype=bool), new_values[:, None, :], x[:, None, :])
    _assert_same_ratio(products, model(flipped) - model(x)[:, None], 1e-10)
    assert np.all(np.asarray(products)[:, np.asarray(keep)] == 0.0)


def test_symmetric_model_products_match_sums():
    symmetries = [np.roll(np.arange(N_SITES), g) for g in range(N_SITES)]
    init = normal_init(0.1, jnp.complex128)
    model = eqx_rbm.RBMSymm(
        symmetries, alpha=4, param_dtype=jnp.complex128, kernel_init=init, hidden_bias_init=init,
        key=jax.random.key(4),
    )  # fmt: skip
    x = _spins(2)
    for new_values in (None, -x):
        products, sums = _both(model, x, new_values)
        assert not np.array_equal(products, sums)
        _assert_same_ratio(products, sums, 1e-12)


def test_large_rows_and_pre_activations_match_sums():
    """Rows of modulus up to 9 and pre-activations far into both half-planes: no overflow, a few ulp."""
    model = _rbm(1.2, alpha=8)
    kernel = model.kernel * (4.4 / jnp.max(jnp.abs(model.kernel)))  # |2 W| up to 8.8
    model = eqx_rbm.RBM.from_arrays(kernel, 10 * model.hidden_bias, model.visible_bias)
    x = _spins(7)
    theta = eqx_rbm.local_state(model, x).theta
    assert float(jnp.max(jnp.abs(theta.real))) > 20 and float(jnp.max(2 * jnp.abs(kernel))) > 8
    products, sums = _both(model, x, -x)
    assert not np.array_equal(products, sums)
    # The ratios themselves reach e^(+-100): compared relative to their size.
    _assert_same_ratio(products, sums, 1e-12 * float(jnp.max(jnp.abs(sums.real))))


def test_a_proposal_onto_a_zero_of_psi_keeps_the_sum_bit_for_bit():
    """Flipping site 0 sends 64 pre-activations to i pi / 2, a zero of cosh: the products underflow."""
    n_hidden = 64
    kernel = jnp.zeros((N_SITES, n_hidden), jnp.complex128).at[0].set(1j * math.pi / 8)
    hidden_bias = jnp.full(n_hidden, 5j * math.pi / 8, jnp.complex128)
    model = eqx_rbm.RBM.from_arrays(kernel, hidden_bias)
    x = _spins(8).at[:, 0].set(1.0)  # theta = 3 i pi / 4; flipped: i pi / 2
    products, sums = _both(model, x, -x)
    assert float(jnp.min(products[:, 0].real)) < -1000  # psi(x') / psi(x) rounds to e^(-37) per unit
    np.testing.assert_array_equal(products, sums)


@pytest.mark.parametrize("kind", ["complex64", "modphase"])
def test_not_applied_where_the_phase_would_matter_or_float32(kind):
    """complex64 keeps the sum; so does a complex RBMModPhase, whose phase group multiplies its log by i."""
    if kind == "complex64":
        model = _rbm(0.3, dtype=jnp.complex64)
    else:
        init = normal_init(0.3, jnp.complex128)
        model = eqx_rbm.RBMModPhase(
            N_SITES, alpha=2, param_dtype=jnp.complex128, kernel_init=init, hidden_bias_init=init,
            key=jax.random.key(5),
        )  # fmt: skip
    x = _spins(6)
    if kind == "complex64":  # float64 spins would promote the pre-activations to complex128
        x = x.astype(jnp.float32)
    products, sums = _both(model, x)
    np.testing.assert_array_equal(products, sums)
