"""Log-ratios of local energies as products (eqx_rbm.sampling._ratios) agree with the sum of activations.

With complex parameters the product form knows the phase of psi(x')/psi(x) modulo 2 pi: real parts are
compared as they are, imaginary parts through the phase difference wrapped into (-pi, pi].
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
from eqx_rbm.sampling import _ratios
from eqx_rbm.sampling._log_ratios import _exchange_log_ratios, _site_log_ratios

N_SITES, BATCH = 16, 128  # BATCH * N_SITES moves: MIN_MOVES at least, so products run
assert BATCH * N_SITES >= _ratios.MIN_MOVES
PAIRS = np.array(
    [(i, (i + 1) % N_SITES) for i in range(N_SITES)] + [(i, (i + 4) % N_SITES) for i in range(8)]
)


def _rbm(std: float, dtype=jnp.float64, **kwargs):
    init = normal_init(std, dtype)
    return eqx_rbm.RBM(
        N_SITES,
        alpha=3,
        param_dtype=dtype,
        kernel_init=init,
        hidden_bias_init=init,
        visible_bias_init=init,
        key=jax.random.key(3),
        **kwargs,
    )


def _spins(seed: int = 0, batch: int = BATCH, dtype=jnp.float64):
    return jax.random.choice(jax.random.key(seed), jnp.array([-1.0, 1.0], dtype), (batch, N_SITES))


# Compiled once per model structure and shapes: tests whose models differ only in their values share them.
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


def _swapped(x, pairs):
    """Every configuration with each pair exchanged, by plain indexing: (batch, n_pairs, n_sites)."""
    out = np.repeat(np.asarray(x)[:, None, :], len(pairs), axis=1)
    for p, (i, j) in enumerate(pairs):
        out[:, p, [i, j]] = out[:, p, [j, i]]
    return jnp.asarray(out)


def _in_bounds(model, pairs=None) -> bool:
    kernel = model.dense().kernel
    rows = kernel if pairs is None else kernel[pairs[:, 0]] - kernel[pairs[:, 1]]
    return bool(_ratios.within_bounds(2 * rows))


def _exchange_products(model, x, atol_sums: float, atol_full: float):
    """Exchange log-ratios as products, checked against the sum of activations and against log psi."""
    assert _in_bounds(model, PAIRS)
    products, sums = _both(model, x)
    assert not np.array_equal(products, sums)  # rounded differently: the products did run
    np.testing.assert_allclose(products, sums, rtol=1e-12, atol=atol_sums)
    full = model(_swapped(x, PAIRS)) - model(x)[:, None]
    np.testing.assert_allclose(products, full, rtol=1e-10, atol=atol_full)
    return products


@pytest.mark.parametrize("visible", [True, False])
def test_exchange_products_match_sums_and_recomputation(visible):
    model, x = _rbm(0.15, use_visible_bias=visible), _spins()
    products = _exchange_products(model, x, atol_sums=1e-12, atol_full=1e-10)
    aligned = np.asarray(x[:, PAIRS[:, 0]] == x[:, PAIRS[:, 1]])
    assert aligned.any() and (~aligned).any()
    assert np.all(np.asarray(products)[aligned] == 0.0)  # an unchanged configuration: exactly 0


def test_site_products_match_sums_and_recomputation():
    model, x = _rbm(0.15), _spins(1)
    assert _in_bounds(model)
    # Every other site keeps its value: those ratios must be exactly 0.
    keep = jnp.arange(N_SITES) % 2 == 0
    new_values = jnp.where(keep, x, -x)
    products, sums = _both(model, x, new_values)
    assert not np.array_equal(products, sums)  # rounded differently: the products did run
    np.testing.assert_allclose(products, sums, rtol=1e-12, atol=1e-12)
    flipped = jnp.where(jnp.eye(N_SITES, dtype=bool), new_values[:, None, :], x[:, None, :])
    np.testing.assert_allclose(products, model(flipped) - model(x)[:, None], rtol=1e-10, atol=1e-10)
    assert np.all(np.asarray(products)[:, np.asarray(keep)] == 0.0)


def test_symmetric_model_products_match_sums():
    symmetries = [np.roll(np.arange(N_SITES), g) for g in range(N_SITES)]
    init = normal_init(0.05)
    model = eqx_rbm.RBMSymm(
        symmetries, alpha=2, kernel_init=init, hidden_bias_init=init, key=jax.random.key(4)
    )
    x = _spins(2)
    assert _in_bounds(model, PAIRS)
    # A model enters the products through its dense view and per-site rows alone (`site_rows` in
    # sampling/_log_ratios.py), the same for site moves and exchanges, which the RBM's tests cover
    # both: the exchanges check the symmetric model's rows.
    products, sums = _both(model, x)
    assert not np.array_equal(products, sums)  # rounded differently: the products did run
    np.testing.assert_allclose(products, sums, rtol=1e-12, atol=1e-12)


def test_float32_products_match_sums():
    model, x = _rbm(0.15, jnp.float32), _spins(3, dtype=jnp.float32)
    assert _in_bounds(model, PAIRS)
    products, sums = _both(model, x)
    assert products.dtype == jnp.float32
    np.testing.assert_allclose(products, sums, rtol=1e-4, atol=1e-4)


def test_large_rows_match_sums_to_a_few_ulp():
    """Rows with entries past 9 (as trained filters grow) and row sums past 600: one exact form, no
    overflow."""
    model = _rbm(1.5)
    kernel = jnp.clip(jnp.tile(model.kernel, (1, 8)), -2.2, 2.2)  # 384 hidden units
    kernel = kernel.at[:, ::64].multiply(3.0)  # 6 entries per row up to 6.6
    model = eqx_rbm.RBM.from_arrays(kernel, jnp.tile(model.hidden_bias, 8), model.visible_bias)
    x = _spins(7)
    rows = 2 * (kernel[PAIRS[:, 0]] - kernel[PAIRS[:, 1]])
    assert float(jnp.max(jnp.abs(rows))) > 12 and float(jnp.max(jnp.sum(jnp.abs(rows), axis=-1))) > 600
    _exchange_products(model, x, atol_sums=1e-11, atol_full=1e-9)


def test_past_the_bounds_the_sum_is_kept_bit_for_bit():
    # 48 hidden units whose |a| average about 18: rows past 64 * 9 = 576.
    model, x = _rbm(8.0), _spins(4)
    assert not _in_bounds(model, PAIRS)
    products, sums = _both(model, x)
    np.testing.assert_array_equal(products, sums)


def test_more_than_two_values_keep_the_sum_bit_for_bit():
    # Spins moved to +-1 and to 3: changes of 2 and 4, not one step.
    model, x = _rbm(0.15), _spins(5)
    new_values = jnp.where(jnp.arange(N_SITES) % 3 == 0, 3.0, -x)
    products, sums = _both(model, x, new_values)
    np.testing.assert_array_equal(products, sums)


@pytest.mark.parametrize("kind", ["multival", "small batch"])
def test_not_applied_elsewhere(kind):
    if kind == "multival":
        init = normal_init(0.15)
        model = eqx_rbm.RBMMultiVal(
            N_SITES,
            2,
            local_states=(0, 1),
            alpha=1,
            kernel_init=init,
            hidden_bias_init=init,
            visible_bias_init=init,
            key=jax.random.key(6),
        )
        x = (_spins(6) > 0).astype(jnp.float64)
    else:
        model, x = _rbm(0.15), _spins(6, batch=4)
    products, sums = _both(model, x)
    np.testing.assert_array_equal(products, sums)


def _assert_same_ratio(actual, expected, tol: float):
    """Equal real parts, and phases equal modulo 2 pi, to `tol` absolute."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    np.testing.assert_allclose(actual.real, expected.real, rtol=tol, atol=tol)
    phase = np.angle(np.exp(1j * (actual.imag - expected.imag)))  # wrapped into (-pi, pi]
    np.testing.assert_allclose(phase, 0.0, atol=tol)


def test_complex_exchange_products_match_sums_recomputation_and_netket():
    import netket as nk

    model, x = _rbm(0.3, jnp.complex128), _spins(0)
    products, sums = _both(model, x)
    assert products.dtype == jnp.complex128
    assert not np.array_equal(products, sums)  # rounded differently: the products did run
    # Phases of whole products wrap: not the sum with its rounding changed.
    assert np.max(np.abs(np.asarray(products.imag - sums.imag))) > math.pi
    _assert_same_ratio(products, sums, 1e-12)
    _assert_same_ratio(products, model(_swapped(x, PAIRS)) - model(x)[:, None], 1e-10)
    # NetKet's RBM with the same variables: its log psi of the exchanged configurations.
    reference, variables = nk.models.RBM(alpha=3, param_dtype=jnp.complex128), eqx_rbm.to_variables(model)
    netket = reference.apply(variables, _swapped(x, PAIRS)) - reference.apply(variables, x)[:, None]
    _assert_same_ratio(products, netket, 1e-10)
    aligned = np.asarray(x[:, PAIRS[:, 0]] == x[:, PAIRS[:, 1]])
    assert aligned.any() and (~aligned).any()
    assert np.all(np.asarray(products)[aligned] == 0.0)  # an unchanged configuration: exactly 0


def test_complex_site_products_match_sums_and_recomputation():
    model, x = _rbm(0.3, jnp.complex128), _spins(1)
    keep = jnp.arange(N_SITES) % 2 == 0  # every other site keeps its value: exactly 0
    new_values = jnp.where(keep, x, -x)
    products, sums = _both(model, x, new_values)
    assert not np.array_equal(products, sums)
    _assert_same_ratio(products, sums, 1e-12)
    flipped = jnp.where(jnp.eye(N_SITES, dtype=bool), new_values[:, None, :], x[:, None, :])
    _assert_same_ratio(products, model(flipped) - model(x)[:, None], 1e-10)
    assert np.all(np.asarray(products)[:, np.asarray(keep)] == 0.0)


def test_complex_symmetric_model_products_match_sums():
    symmetries = [np.roll(np.arange(N_SITES), g) for g in range(N_SITES)]
    init = normal_init(0.1, jnp.complex128)
    model = eqx_rbm.RBMSymm(
        symmetries, alpha=2, param_dtype=jnp.complex128, kernel_init=init, hidden_bias_init=init,
        key=jax.random.key(4),
    )  # fmt: skip
    products, sums = _both(model, _spins(2))
    assert not np.array_equal(products, sums)
    _assert_same_ratio(products, sums, 1e-12)


def test_complex_large_rows_and_pre_activations_match_sums():
    """Rows of modulus up to 17.6 and pre-activations far into both half-planes: no overflow, a few
    ulp."""
    model = _rbm(1.2, jnp.complex128)
    kernel = model.kernel * (4.4 / jnp.max(jnp.abs(model.kernel)))  # |2 W| up to 8.8 ...
    kernel = kernel.at[:, 0].multiply(2.0)  # ... and to 17.6 in one hidden unit
    model = eqx_rbm.RBM.from_arrays(kernel, 10 * model.hidden_bias, model.visible_bias)
    x = _spins(7)
    theta = eqx_rbm.local_state(model, x).theta
    assert float(jnp.max(jnp.abs(theta.real))) > 20 and float(jnp.max(2 * jnp.abs(kernel))) > 9
    assert _in_bounds(model)
    products, sums = _both(model, x, -x)
    assert not np.array_equal(products, sums)
    # The ratios themselves reach e^(+-50): compared relative to their size.
    _assert_same_ratio(products, sums, 1e-12 * float(jnp.max(jnp.abs(sums.real))))


def test_complex_proposal_onto_a_zero_of_psi_keeps_the_sum_bit_for_bit():
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
def test_complex_not_applied_where_the_phase_would_matter_or_to_complex64(kind):
    """complex64 keeps the sum; so does a complex RBMModPhase, whose phase group multiplies its log by i."""
    x = _spins(6)
    if kind == "complex64":  # float64 spins would promote the pre-activations to complex128
        model, x = _rbm(0.3, jnp.complex64), x.astype(jnp.float32)
    else:
        init = normal_init(0.3, jnp.complex128)
        model = eqx_rbm.RBMModPhase(
            N_SITES, alpha=2, param_dtype=jnp.complex128, kernel_init=init, hidden_bias_init=init,
            key=jax.random.key(5),
        )  # fmt: skip
    products, sums = _both(model, x)
    np.testing.assert_array_equal(products, sums)
