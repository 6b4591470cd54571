"""eqx_rbm.sr_gradient against a dense solve on autodiff Jacobians and against NetKet's VMC_SR update."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import flat_params, netket_vmc_sr, random_params_init, require
from jax.flatten_util import ravel_pytree

import eqx_rbm

L, SHIFT = 6, 1e-2
CHAIN_TRANSLATIONS = np.array([np.roll(np.arange(L), k) for k in range(L)])
BOSON_STATES = (0, 1, 2)
INIT = random_params_init(0.5)


def _model(kind: str, dtype=jnp.float64, seed: int = 0):
    inits = dict(kernel_init=INIT, hidden_bias_init=INIT, visible_bias_init=INIT, key=jax.random.key(seed))
    if kind == "rbm":
        return eqx_rbm.RBM(L, alpha=1, param_dtype=dtype, **inits)
    if kind == "rbm-no-hidden-bias":
        return eqx_rbm.RBM(L, alpha=1, param_dtype=dtype, use_hidden_bias=False, **inits)
    if kind == "multival":
        return eqx_rbm.RBMMultiVal(4, len(BOSON_STATES), alpha=1, param_dtype=dtype, **inits)
    assert kind == "symm"
    return eqx_rbm.RBMSymm(CHAIN_TRANSLATIONS, alpha=2, param_dtype=dtype, **inits)


def _samples(model, n: int, seed: int) -> jax.Array:
    rng = np.random.default_rng(seed)
    if isinstance(model, eqx_rbm.RBMMultiVal):
        return jnp.asarray(rng.choice(np.asarray(BOSON_STATES), size=(n, model.n_sites)))
    return jnp.asarray(rng.choice([-1.0, 1.0], size=(n, model.n_sites)))


def _energies(n: int, seed: int, complex_: bool) -> jax.Array:
    rng = np.random.default_rng(seed)
    e = rng.normal(size=n) + (1j * rng.normal(size=n) if complex_ else 0)
    return jnp.asarray(e)


SPACES = ("samples", "parameters", "auto")


@eqx.filter_jit
def _updates_and_jacobian(model, x, energies):
    """sr_gradient in the three spaces and the per-sample autodiff Jacobian, in one compiled call."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    flat, unravel = ravel_pytree(params)
    holomorphic = bool(jnp.iscomplexobj(flat))

    def log_psi(p, s):
        return eqx.combine(unravel(p), static)(s)

    o = jax.vmap(jax.grad(log_psi, holomorphic=holomorphic), in_axes=(None, 0))(flat, x)
    updates = {
        space: eqx_rbm.sr_gradient(model, x, energies, diag_shift=SHIFT, space=space) for space in SPACES
    }
    return updates, o


def _dense_reference(o, energies, shift) -> np.ndarray:
    """(S + shift) delta = F by numpy, S and F from the per-sample autodiff Jacobian `o`."""
    o = np.asarray(o)
    y = o - o.mean(axis=0)
    n = len(o)
    e = np.asarray(energies)
    e = e if np.iscomplexobj(o) else e.real
    s = y.conj().T @ y / n + shift * np.eye(y.shape[1])
    return np.linalg.solve(s, y.conj().T @ (e - e.mean()) / n)


def _relative(actual, expected) -> float:
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


# Every case runs all three spaces. The number of samples selects no code path but "auto"'s
# choice (the Jacobian and both solves are written once for any n): both sizes for the real and
# the complex RBM, so that "auto" takes each space for each, and one size for the other models.
DENSE_CASES = [
    ("rbm", jnp.float64, False),
    ("rbm", jnp.float64, True),
    ("rbm", jnp.complex128, False),
    ("rbm", jnp.complex128, True),
    ("rbm-no-hidden-bias", jnp.float64, False),
    ("multival", jnp.float64, False),
    ("symm", jnp.complex128, True),
]


@pytest.mark.parametrize(
    ("kind", "dtype", "more_samples"),
    DENSE_CASES,
    ids=[f"{k}-{jnp.dtype(d).name}-{'n>n_params' if m else 'n<n_params'}" for k, d, m in DENSE_CASES],
)
def test_matches_a_dense_solve_on_autodiff_jacobians(kind, dtype, more_samples):
    model = _model(kind, dtype)
    n_params = flat_params(model).size
    n = 2 * n_params + 3 if more_samples else n_params // 2
    x = _samples(model, n, seed=1)
    energies = _energies(n, seed=2, complex_=True)  # real parameters use the real part only
    updates, o = _updates_and_jacobian(model, x, energies)
    expected = _dense_reference(o, energies, SHIFT)
    for space, delta in updates.items():
        assert type(delta) is type(model)
        assert all(
            a.shape == b.shape and a.dtype == b.dtype
            for a, b in zip(jax.tree.leaves(delta), jax.tree.leaves(model), strict=True)
        )
        assert _relative(flat_params(delta), expected) < 1e-10, space
    if kind == "rbm-no-hidden-bias":
        assert delta.hidden_bias is None


def test_jit_and_eager_agree():
    model = _model("rbm", jnp.complex128)
    x = _samples(model, 20, seed=3)
    energies = _energies(20, seed=4, complex_=True)

    traces = []

    @eqx.filter_jit
    def step(model, x, energies, shift):
        traces.append(shift)
        delta = eqx_rbm.sr_gradient(model, x, energies, diag_shift=shift)
        return jax.tree.map(lambda p, d: p - 0.1 * d, model, delta)

    eager = eqx_rbm.sr_gradient(model, x, energies, diag_shift=SHIFT)
    eager = jax.tree.map(lambda p, d: p - 0.1 * d, model, eager)
    for shift in (SHIFT, jnp.asarray(SHIFT)):  # a Python float and a traced scalar
        np.testing.assert_allclose(
            flat_params(step(model, x, energies, shift)), flat_params(eager), rtol=1e-13
        )
    # A schedule of shifts given as arrays is traced, not compiled once per value.
    step(model, x, energies, jnp.asarray(2 * SHIFT))
    assert len(traces) == 2  # the Python float, static under filter_jit, and the arrays


def test_an_optax_step():
    optax = require("optax")
    model = _model("rbm")
    x = _samples(model, 16, seed=5)
    energies = _energies(16, seed=6, complex_=False)
    delta = eqx_rbm.sr_gradient(model, x, energies, diag_shift=SHIFT)
    optimiser = optax.sgd(0.1)
    updates, _ = optimiser.update(delta, optimiser.init(eqx.filter(model, eqx.is_inexact_array)))
    new = eqx.apply_updates(model, updates)
    np.testing.assert_allclose(flat_params(new), flat_params(model) - 0.1 * flat_params(delta), rtol=1e-14)


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        (dict(x=np.ones(L)), ValueError, r"x: expected one batch dimension, shape \(n_samples, n_sites\)"),
        (
            dict(local_energies=np.ones(7)),
            ValueError,
            r"local_energies: expected one energy per sample of x, shape \(8,\), got shape \(7,\)",
        ),
        (dict(local_energies=np.ones(8, bool)), TypeError, "parameter 'local_energies'"),
        (dict(diag_shift=0.0), ValueError, "diag_shift: expected a positive finite number.*got 0.0"),
        (dict(diag_shift=-1e-3), ValueError, "diag_shift: expected a positive finite number.*got -0.001"),
        (dict(diag_shift=float("nan")), ValueError, "diag_shift: expected a positive finite number.*got nan"),
        (
            dict(diag_shift=np.array(np.inf)),
            ValueError,
            "diag_shift: expected a positive finite number.*got inf",
        ),
        (
            dict(space="dense"),
            ValueError,
            "space: expected one of 'auto', 'samples', 'parameters', got 'dense'",
        ),
    ],
)
def test_bad_input(arguments, error, match):
    model = _model("rbm")
    call = dict(x=_samples(model, 8, seed=0), local_energies=np.zeros(8), diag_shift=SHIFT, space="auto")
    call.update(arguments)
    x, energies = call.pop("x"), call.pop("local_energies")
    with pytest.raises(error, match=match):
        eqx_rbm.sr_gradient(model, x, energies, **call)


# --------------------------------------------------------------------------- NetKet's VMC_SR


# Each case checks both of our spaces against NetKet's update (the reference's solve, NTK or
# QGT, does not change which of our paths run): every dtype x space pair is covered, and NetKet
# runs each of its two solves once, each dtype once.
@pytest.mark.parametrize(
    ("dtype", "use_ntk"),
    [(jnp.float64, True), (jnp.complex128, False)],
    ids=["float64-ntk", "complex128-qgt"],
)
def test_matches_netket_vmc_sr(dtype, use_ntk):
    """NetKet's update on its own samples, from the same parameters, is twice sr_gradient's.

    NetKet's `VMC_SR` returns the gradient with respect to real parameters, 2 Re F (for
    complex parameters it solves for their real and imaginary parts): twice our F.
    """
    nk = require("netket")
    field = 0.8
    model = _model("rbm", dtype)
    n = 32 if use_ntk else 128  # fewer and more samples than the 48 parameters
    x, update, netket_energies = netket_vmc_sr(
        nk.models.RBM(alpha=1, param_dtype=dtype),
        eqx_rbm.to_variables(model),
        n_sites=L,
        field=field,
        shift=SHIFT,
        use_ntk=use_ntk,
        n=n,
    )

    # The TFIM chain's local energies from the library's flip ratios, checked against NetKet's.
    ratios = jnp.exp(eqx_rbm.site_log_ratios(model, eqx_rbm.local_state(model, x), -x))
    energies = -jnp.sum(x * jnp.roll(x, -1, axis=-1), axis=-1) - field * jnp.sum(ratios, axis=-1)
    np.testing.assert_allclose(energies, netket_energies, rtol=1e-12, atol=1e-12)

    expected = flat_params(eqx_rbm.from_variables({"params": update}))
    for space in ("samples", "parameters"):
        delta = eqx_rbm.sr_gradient(model, x, energies, diag_shift=SHIFT, space=space)
        assert _relative(2 * flat_params(delta), expected) < 1e-10, space
