"""The symmetric Linen twins: NetKet's variables, numbers and tables, and NetKet's drivers."""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close, leaves_identical, require

import eqx_rbm

with contextlib.suppress(ImportError):  # reported by the fixture below
    import eqx_rbm.linen as linen


@pytest.fixture(autouse=True)
def _flax():
    require("flax")


SPINS = jnp.asarray(np.random.default_rng(0).choice([-1.0, 1.0], size=(6, 9)))
LEVELS = jnp.asarray(np.random.default_rng(1).integers(0, 3, size=(6, 9)), dtype=jnp.int32)
CONFIGS = [
    ({"alpha": 16}, {}),
    ({"alpha": 8, "use_hidden_bias": False, "param_dtype": jnp.complex128}, {"depth": 0}),
    (
        {"alpha": 24, "use_visible_bias": False, "param_dtype": jnp.float32},
        {"console_kwargs": {"width": 200}},
    ),
]


@pytest.mark.parametrize(("config", "options"), CONFIGS)
def test_rbmsymm_twin_matches_netket(config, options):
    nk = require("netket")
    group = nk.graph.Square(3).space_group()
    twin, net = linen.RBMSymm(group, **config), nk.models.RBMSymm(group, **config)
    key = jax.random.key(4)
    reference = net.init(key, SPINS)
    assert leaves_identical(twin.init(key, SPINS), reference)
    x = SPINS.astype(jnp.finfo(config.get("param_dtype", jnp.float64)).dtype)
    ours, theirs = jax.jit(twin.apply)(reference, x), jax.jit(net.apply)(reference, x)
    assert ours.dtype == theirs.dtype
    assert_close(ours, theirs, theirs.dtype, "apply")
    assert twin.tabulate(key, SPINS, **options) == net.tabulate(key, SPINS, **options)  # styles included
    # The twin and the Equinox model are one computation.
    model = linen.to_equinox(twin, reference)
    assert isinstance(model, eqx_rbm.RBMSymm) and model.alpha == config["alpha"]
    np.testing.assert_array_equal(model(x), twin.apply(reference, x))
    back, variables = linen.to_linen(model)
    assert isinstance(back, linen.RBMSymm) and back.symmetries == twin.symmetries
    assert leaves_identical(variables, reference) and back.alpha == twin.alpha


def test_multival_twin_is_the_equinox_model():
    nk = require("netket")
    group = nk.graph.Square(3).translation_group()
    twin = linen.RBMMultiValSymm(group, 3, alpha=2, local_states=[-1, 0, 1])
    x = LEVELS - 1
    variables = twin.init(jax.random.key(6), x)
    model = eqx_rbm.RBMMultiValSymm(group, 3, alpha=2, local_states=(-1, 0, 1), key=jax.random.key(6))
    assert leaves_identical(variables, eqx_rbm.to_variables(model))  # the same key, the same variables
    assert jax.tree.map(jnp.shape, variables) == {
        "params": {"Dense": {"bias": (6,), "kernel": (6, 3, 9)}, "visible_bias": (3,)}
    }
    np.testing.assert_array_equal(jax.jit(twin.apply)(variables, x), model(x))
    twin_back, variables_back = linen.to_linen(model)
    assert twin_back == twin and leaves_identical(variables_back, variables)
    assert isinstance(linen.to_equinox(twin.bind(variables)), eqx_rbm.RBMMultiValSymm)
    table = twin.tabulate(jax.random.key(6), x, console_kwargs={"width": 200})
    assert "│ Dense │ DenseSymmMatrix │ float64[6,3,9] │ float64[6,6,9]" in table.replace(
        "\x1b[2m", ""
    ).replace("\x1b[0m", "")
    with pytest.raises(ValueError, match=r"x: expected every value to be one of local_states=\(-1, 0, 1\)"):
        twin.apply(variables, LEVELS)


def test_twin_errors():
    table = np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1]])
    with pytest.raises(ValueError, match="symmetries: expected every row to be a permutation"):
        linen.RBMSymm(np.zeros((2, 3), int))
    with pytest.raises(ValueError, match=r"x: expected shape \(\*batch, n_sites\) with n_sites=3"):
        linen.RBMSymm(table).init(jax.random.key(0), jnp.ones((2, 4)))
    with pytest.raises(ValueError, match=r"alpha: alpha=0.5 gives .*needs alpha >= 1"):
        linen.RBMSymm(table, alpha=0.5).init(jax.random.key(0), jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="n_classes: expected at least 2 classes"):
        linen.RBMMultiValSymm(table, 1)


def gradient_descent_energies(nk, hilbert, hamiltonian, model, variables, steps=3, learning_rate=0.01):
    vstate = nk.vqs.FullSumState(hilbert, model, variables=variables)
    energies = []
    for _ in range(steps):
        energy, gradient = vstate.expect_and_grad(hamiltonian)
        energies.append(complex(energy.mean))
        vstate.parameters = jax.tree.map(lambda p, g: p - learning_rate * g, vstate.parameters, gradient)
    return np.array(energies), vstate.parameters


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.complex128])
def test_full_sum_gradient_descent_matches_netket(dtype):
    nk = require("netket")
    graph = nk.graph.Chain(8)
    hilbert = nk.hilbert.Spin(0.5, 8)
    hamiltonian = nk.operator.IsingJax(hilbert, graph, h=1.0)
    group = graph.translation_group()
    net = nk.models.RBMSymm(group, alpha=2, param_dtype=dtype)
    variables = net.init(jax.random.key(0), hilbert.all_states()[:1])
    twin = linen.RBMSymm(group, alpha=2, param_dtype=dtype)
    energies, params = gradient_descent_energies(nk, hilbert, hamiltonian, twin, variables)
    ref_energies, ref_params = gradient_descent_energies(nk, hilbert, hamiltonian, net, variables)
    np.testing.assert_allclose(energies, ref_energies, rtol=1e-10, atol=0)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref_params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    assert energies[-1].real < energies[0].real


def test_mcstate_vmc_sr_matches_netket():
    nk = require("netket")
    optax = require("optax")
    graph = nk.graph.Chain(8)
    hilbert = nk.hilbert.Spin(0.5, 8)
    hamiltonian = nk.operator.IsingJax(hilbert, graph, h=1.0)
    group = graph.translation_group()

    def run(model):
        sampler = nk.sampler.MetropolisLocal(hilbert, n_chains=8)
        # 16 discarded sweeps, as many as kept: NetKet's sampling compiles one chain for both calls.
        vstate = nk.vqs.MCState(sampler, model, n_samples=128, n_discard_per_chain=16, seed=3, sampler_seed=5)
        initial = jax.tree.map(np.asarray, vstate.parameters)
        driver = nk.driver.VMC_SR(hamiltonian, optax.sgd(0.05), diag_shift=0.1, variational_state=vstate)
        log = nk.logging.RuntimeLog()
        driver.run(2, out=log, show_progress=False)
        return initial, np.asarray(log.data["Energy"]["Mean"]), vstate.parameters

    ours = run(linen.RBMSymm(group, alpha=2))
    theirs = run(nk.models.RBMSymm(group, alpha=2))
    assert leaves_identical(ours[0], theirs[0])  # the same seed, NetKet's parameters
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-10, atol=0)
    for a, b in zip(jax.tree.leaves(ours[2]), jax.tree.leaves(theirs[2]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-13)
