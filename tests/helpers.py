"""Shared test utilities."""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import eqx_rbm

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(name: str) -> ModuleType:
    """Imports an optional test dependency: skip locally if missing, fail in CI."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        if IN_CI:
            pytest.fail(f"{name} is required in CI (install the test extra): {err}", pytrace=False)
        pytest.skip(f"{name} is not installed")
        raise  # unreachable; keeps type checkers happy


PARAM_DTYPES = [jnp.float32, jnp.float64, jnp.complex64, jnp.complex128]
BATCH_SHAPES = [(), (5,), (2, 3)]
BIAS_FLAGS = list(itertools.product([True, False], repeat=2))


def tolerance(dtype) -> float:
    """Relative tolerance of the parity checks: ~1e-12 in 64-bit, ~1e-5 in 32-bit."""
    return 1e-12 if np.finfo(dtype).bits == 64 else 1e-5


def assert_close(actual, expected, dtype, what=""):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(float(np.max(np.abs(expected), initial=0.0)), 1e-300)
    err = float(np.max(np.abs(actual - expected), initial=0.0)) / scale
    assert err <= tolerance(dtype), f"{what}: relative error {err:.3e} > {tolerance(dtype):.0e}"


def normal_init(stddev: float, dtype=None):
    """`jax.nn.initializers.normal(stddev, dtype)` for test models, drawn with NumPy.

    A concrete key seeds NumPy's generator with its bits, so that a test model
    costs no compiled random-number program (`jax.random.normal` compiles one
    per shape and dtype, about 0.2 s each, most of what building a small model
    costs). Under tracing (`eval_shape`, `jit`) the key draws with
    `jax.random.normal`. Complex values have independent real and imaginary
    parts of variance 1/2 each, as `jax.random.normal` draws them. Not for tests
    that compare against the bits of NetKet's or Flax's own initialization.
    """

    def init(key, shape, param_dtype=dtype):
        import jax
        import jax.numpy as jnp

        param_dtype = jnp.float64 if param_dtype is None else param_dtype
        if isinstance(key, jax.core.Tracer):
            return stddev * jax.random.normal(key, shape, param_dtype)
        rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
        values = rng.standard_normal(shape)
        if jnp.issubdtype(param_dtype, jnp.complexfloating):
            values = (values + 1j * rng.standard_normal(shape)) / np.sqrt(2)
        return jnp.asarray(stddev * values, param_dtype)

    return init


def random_params_init(scale=0.3):
    """An initializer with larger weights than the default, so parity is tested
    where log cosh is far from its quadratic regime (`normal_init(scale)`)."""
    return normal_init(scale)


def input_dtype(param_dtype):
    """The real dtype of configurations for a model of `param_dtype`: float64 for 64-bit parameters."""
    return np.float64 if np.finfo(param_dtype).bits == 64 else np.float32


def spins(rng: np.random.Generator, shape, n, dtype=np.float64):
    return rng.choice(np.array([-1.0, 1.0]), size=(*shape, n)).astype(dtype)


def chi_squared_p(counts: np.ndarray, probabilities: np.ndarray) -> float:
    """The p-value of observed configuration `counts` under `probabilities` (the samplers' tests)."""
    from scipy import stats

    expected = probabilities * counts.sum()
    # Merge the rare configurations into one bin so that every expected count is >= 5.
    rare = expected < 5
    observed = np.append(counts[~rare], counts[rare].sum())
    expected = np.append(expected[~rare], expected[rare].sum())
    keep = expected > 0
    return float(stats.chisquare(observed[keep], expected[keep]).pvalue)


def configuration_counts(samples, configurations) -> np.ndarray:
    """How often each row of `configurations` occurs among `samples` (a KeyError: a sample outside them)."""
    index = {tuple(c): i for i, c in enumerate(np.asarray(configurations).tolist())}
    counts = np.zeros(len(configurations))
    for row in np.asarray(samples).reshape(-1, np.shape(samples)[-1]).tolist():
        counts[index[tuple(row)]] += 1
    return counts


def netket_vmc_sr(module, variables, *, n_sites: int, field: float, shift: float, use_ntk: bool, n: int):
    """NetKet's `VMC_SR` on the periodic TFIM chain: `(x, update, local energies)` of its own `n` samples.

    `x` holds the samples as float64 `(n, n_sites)`; `update` is the `params` tree of NetKet's update.
    """
    nk = require("netket")
    import jax.numpy as jnp

    hilbert = nk.hilbert.Spin(0.5, N=n_sites)
    # NetKet's Ising is -h sum s^x + J sum s^z s^z: J = -1 is the ferromagnetic chain.
    hamiltonian = nk.operator.IsingJax(hilbert, nk.graph.Chain(n_sites, pbc=True), h=field, J=-1.0)
    state = nk.vqs.MCState(
        nk.sampler.MetropolisLocal(hilbert, n_chains=16),
        module,
        n_samples=n,
        variables=variables,
        sampler_seed=1,
    )
    driver = nk.driver.VMC_SR(
        hamiltonian,
        nk.optimizer.Sgd(0.1),
        diag_shift=shift,
        variational_state=state,
        use_ntk=use_ntk,
        on_the_fly=False,  # the dense NTK: its on-the-fly form compiles for longer
    )
    state.sample()
    x = jnp.asarray(state.samples, jnp.float64).reshape(-1, n_sites)
    _, update = driver.compute_loss_and_update()
    assert np.array_equal(np.asarray(state.samples).reshape(-1, n_sites), x)  # the same samples
    energies = np.asarray(state.local_estimators(hamiltonian).data).reshape(-1)
    return x, update, energies


def netket_rbm_variables(model: eqx_rbm.RBM) -> dict:
    """The same parameters in NetKet's variable layout (for feeding NetKet)."""
    params: dict = {"Dense": {"kernel": model.kernel}}
    if model.hidden_bias is not None:
        params["Dense"]["bias"] = model.hidden_bias
    if model.visible_bias is not None:
        params["visible_bias"] = model.visible_bias
    return {"params": params}


def leaves_identical(a, b) -> bool:
    """Same tree, and every leaf has the same dtype, shape and bits."""
    import jax

    if jax.tree.structure(a) != jax.tree.structure(b):
        return False
    return all(
        np.asarray(x).dtype == np.asarray(y).dtype
        and np.asarray(x).shape == np.asarray(y).shape
        and np.asarray(x).tobytes() == np.asarray(y).tobytes()
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def nested_keys(tree, prefix=()) -> list[tuple]:
    """Every key path of nested mappings, in their order."""
    out = []
    for k, v in tree.items():
        out.append((*prefix, k))
        if isinstance(v, dict):
            out += nested_keys(v, (*prefix, k))
    return out


def load_recipe(name: str) -> ModuleType:
    """Imports docs/recipes/<name>.py, the file the documentation page shows."""
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parent.parent / "docs" / "recipes" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_on_host_devices(script: str, n_devices: int = 4, timeout: int = 300) -> str:
    """Runs `script` in a fresh interpreter with `n_devices` CPU devices; returns its stdout.

    JAX fixes the number of host devices when it starts, hence the subprocess.
    """
    env = dict(os.environ)
    flag = f"--xla_force_host_platform_device_count={n_devices}"
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + flag).strip()
    env["JAX_PLATFORMS"] = "cpu"
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-5000:]}"
    return result.stdout


def flat_params(tree):
    """The inexact array leaves of a model-shaped pytree, raveled into one vector."""
    return ravel_pytree(eqx.filter(tree, eqx.is_inexact_array))[0]


def jacobian_products(model, x, v, p) -> dict:
    """Everything an `eqx_rbm.jacobian` of `x` computes, for `centred` False ("plain") and True
    ("centred"): `(jacobian, (flat, tree rows, kernel, rmatvec(v), matvec(p)))`.

    Call it inside a jitted function, so that the products compile in one program with the rest.
    """
    out = {}
    for centred in (False, True):
        jac = eqx_rbm.jacobian(model, x, centred=centred)
        rows = jax.vmap(flat_params)(eqx.filter(jac.tree(), eqx.is_inexact_array))
        products = (jac.flat(), rows, jac.kernel(), flat_params(jac.rmatvec(v)), jac.matvec(p))
        out["centred" if centred else "plain"] = (jac, products)
    return out


def assert_sr_through_kernel(model, x, energies, shift: float, autodiff_dense, dtype) -> None:
    """The SR update through the centred Jacobian's kernel (the push-through identity,
    `Y^dagger (Y Y^dagger + n shift)^-1 (E - mean E)`) against the dense solve
    `(S + shift) delta = F` on `autodiff_dense(model, x)`, the autodiff Jacobian.
    Both come from one compiled call."""
    n = x.shape[0]

    @eqx.filter_jit
    def update_and_dense(model, x, energies):
        jac = eqx_rbm.jacobian(model, x, centred=True)
        w = jnp.linalg.solve(jac.kernel() + n * shift * jnp.eye(n), energies - energies.mean())
        update = flat_params(jac.rmatvec(w))
        return update, autodiff_dense(model, x)

    update, dense = jax.device_get(update_and_dense(model, x, jnp.asarray(energies)))
    y = dense - dense.mean(axis=0)
    s_matrix = y.conj().T @ y / n
    force = y.conj().T @ (energies - energies.mean()) / n
    expected = np.linalg.solve(s_matrix + shift * np.eye(y.shape[1]), force)
    assert_close(update, expected, dtype, "SR update")


def full_sum_descent(nk, hilbert, hamiltonian, model, variables, steps=3, learning_rate=0.05):
    """Plain gradient descent of `model` in NetKet's `FullSumState`: the energy before each step
    and the final parameters."""
    import jax

    vstate = nk.vqs.FullSumState(hilbert, model, variables=variables)
    energies = []
    for _ in range(steps):
        energy, gradient = vstate.expect_and_grad(hamiltonian)
        energies.append(complex(energy.mean))
        vstate.parameters = jax.tree.map(lambda p, g: p - learning_rate * g, vstate.parameters, gradient)
    return np.array(energies), vstate.parameters


def assert_same_run(ours, reference):
    """Two `full_sum_descent` runs agree: energies to 1e-10 relative, and the final parameters, of the
    same tree structure, leaf by leaf."""
    import jax

    (energies, params), (ref_energies, ref_params) = ours, reference
    np.testing.assert_allclose(energies, ref_energies, rtol=1e-10, atol=0)
    assert jax.tree.structure(params) == jax.tree.structure(ref_params)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref_params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
