"""The Metropolis sampler: its chains sample |psi|^2, its state stays exact, its arguments are checked."""

from __future__ import annotations

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import chi_squared_p, normal_init

import eqx_rbm

N_CHAINS = 256
# Sweeps between kept samples: enough for the chains to decorrelate on these tiny systems.
THIN = 4
P_VALUE = 1e-3


def _init(scale):
    return dict(
        kernel_init=normal_init(scale),
        hidden_bias_init=normal_init(scale),
        visible_bias_init=normal_init(scale),
    )


def _models():
    complex_init = {k: normal_init(0.3, jnp.complex128) for k in _init(0.3)}
    return {
        "rbm": (eqx_rbm.RBM(5, alpha=2, **_init(0.3), key=jax.random.key(0)), (-1.0, 1.0)),
        "complex": (
            eqx_rbm.RBM(5, alpha=1, param_dtype=jnp.complex128, **complex_init, key=jax.random.key(1)),
            (-1.0, 1.0),
        ),
        "multival": (
            eqx_rbm.RBMMultiVal(3, 3, local_states=(0, 1, 2), **_init(0.3), key=jax.random.key(2)),
            (0, 1, 2),
        ),
    }


def _histogram(samples: np.ndarray, states: tuple, configurations: np.ndarray) -> np.ndarray:
    """Counts of each configuration (rows of `configurations`) among `samples`."""
    index = {tuple(c): i for i, c in enumerate(configurations.tolist())}
    counts = np.zeros(len(configurations))
    for row in samples.reshape(-1, samples.shape[-1]).tolist():
        counts[index[tuple(row)]] += 1
    return counts


@eqx.filter_jit
def _log_psi(model, x):
    # One compiled program: eagerly, each operation of the model compiles on its own.
    return model(x)


def _exact(model, configurations: np.ndarray, power: float = 2.0) -> np.ndarray:
    log_p = power * np.real(np.asarray(_log_psi(model, jnp.asarray(configurations))))
    p = np.exp(log_p - log_p.max())
    return p / p.sum()


def _exact_draws(model, configurations: np.ndarray, seed: int) -> np.ndarray:
    """Chains started in |psi|^2 itself: a correct sampler keeps them there, a wrong one drifts away."""
    rng = np.random.default_rng(seed)
    return configurations[rng.choice(len(configurations), size=N_CHAINS, p=_exact(model, configurations))]


def _run(model, x, key, **kwargs):
    """`metropolis`'s samples, state and acceptance from chains at `x`, and the local state computed
    afresh from the final configurations: one compiled program (eagerly, each operation of
    `local_state` would compile on its own)."""

    @jax.jit
    def run(x, key):
        samples, state, acceptance = eqx_rbm.metropolis(model, eqx_rbm.local_state(model, x), key, **kwargs)
        return samples, state, acceptance, eqx_rbm.local_state(model, state.x)

    return run(jnp.asarray(x), key)


@pytest.mark.parametrize("kind", ["rbm", "complex", "multival"])
def test_single_site_chains_sample_psi_squared(kind):
    model, states = _models()[kind]
    n = model.n_sites
    configurations = np.array(list(itertools.product(states, repeat=n)), dtype=np.float64)
    x0 = _exact_draws(model, configurations, seed=0)
    samples, state, acceptance, fresh = _run(model, x0, jax.random.key(3), n_sweeps=30 * THIN)
    kept = np.asarray(samples)[5 * THIN :: THIN]
    counts = _histogram(kept, states, configurations)
    assert chi_squared_p(counts, _exact(model, configurations)) > P_VALUE
    # The test has power: the same samples against |psi| instead of |psi|^2 fail it.
    assert chi_squared_p(counts, _exact(model, configurations, power=1.0)) < P_VALUE
    assert 0.05 < float(acceptance.mean()) < 1.0
    np.testing.assert_array_equal(state.x, samples[-1])
    # After hundreds of steps per chain the cached state is still that of its configurations.
    assert samples.shape == (30 * THIN, N_CHAINS, n)
    assert set(np.unique(np.asarray(samples)).tolist()) <= set(states)
    np.testing.assert_allclose(state.theta, fresh.theta, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(state.hidden_sum, fresh.hidden_sum, rtol=1e-10, atol=1e-10)


def test_exchange_chains_sample_psi_squared_at_fixed_magnetisation():
    model = eqx_rbm.RBM(6, alpha=2, **_init(0.3), key=jax.random.key(4))
    ring = np.array([(i, (i + 1) % 6) for i in range(6)])
    sector = np.array([c for c in itertools.product((-1.0, 1.0), repeat=6) if sum(c) == 0])
    x0 = _exact_draws(model, sector, seed=1)
    samples, _, _, _ = _run(model, x0, jax.random.key(5), n_sweeps=30 * THIN, pairs=ring)
    samples = np.asarray(samples)
    assert np.all(samples.sum(-1) == 0), "exchange moves conserve the magnetisation"
    counts = _histogram(samples[5 * THIN :: THIN], (-1.0, 1.0), sector)
    assert chi_squared_p(counts, _exact(model, sector)) > P_VALUE
    assert chi_squared_p(counts, _exact(model, sector, power=1.0)) < P_VALUE


def test_single_site_moves_always_change_the_state():
    """A move gives the site one of the *other* states, so an accepted move is never a no-op."""
    model = eqx_rbm.RBMMultiVal(2, 4, **_init(0.0), key=jax.random.key(7))
    # psi is constant: every proposal is accepted, and each step changes exactly one site.
    x0 = np.zeros((32, 2))
    samples, _, acceptance, _ = _run(model, x0, jax.random.key(8), n_sweeps=10, sweep_size=1)
    np.testing.assert_array_equal(acceptance, 1.0)
    changed = np.sum(np.diff(np.concatenate([x0[None], np.asarray(samples)]), axis=0) != 0, axis=-1)
    np.testing.assert_array_equal(changed, 1)


def _primitives_in_loops(jaxpr, inside=False) -> set[str]:
    """Names of the primitives that run inside a `scan` or `while` loop, nested jaxprs included."""
    found = set()
    for eqn in jaxpr.eqns:
        loop = inside or eqn.primitive.name in ("scan", "while")
        if inside:
            found.add(eqn.primitive.name)
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else [param]:
                sub = getattr(sub, "jaxpr", sub)
                if hasattr(sub, "eqns"):
                    found |= _primitives_in_loops(sub, loop)
    return found


def test_no_runtime_checks_inside_the_loop():
    """Values are checked once at the boundary, not in every Metropolis step, and the steps hold no
    conditional (on a GPU a conditional waits for the host)."""
    model, _ = _models()["multival"]
    state = eqx_rbm.local_state(model, jnp.zeros((8, 3)))

    def run(s, k):
        return eqx_rbm.metropolis(model, s, k, n_sweeps=3, method="portable")

    jaxpr = jax.make_jaxpr(run)(state, jax.random.key(0))
    in_loops = _primitives_in_loops(jaxpr.jaxpr)
    assert "dot_general" in in_loops or "mul" in in_loops  # the walk does reach the steps
    assert not {"pure_callback", "callback", "io_callback"} & in_loops, in_loops
    assert "cond" not in in_loops, in_loops
    # The boundary does check a traced state once, outside the loop.
    assert "cond" in _primitives_in_loops(jaxpr.jaxpr, inside=True)


def test_bad_arguments_are_named():
    model, _ = _models()["rbm"]
    state = eqx_rbm.local_state(model, jnp.ones((4, 5)))
    key = jax.random.key(0)
    with pytest.raises(TypeError, match="n_sweeps: expected a positive int"):
        eqx_rbm.metropolis(model, state, key, n_sweeps=2.5)  # pyright: ignore[reportArgumentType]
    with pytest.raises(ValueError, match=r"state: expected one batch axis of chains"):
        eqx_rbm.metropolis(model, eqx_rbm.local_state(model, jnp.ones(5)), key, n_sweeps=1)
    with pytest.raises(ValueError, match=r"state: expected every value of state.x to be one of local_states"):
        eqx_rbm.metropolis(model, eqx_rbm.local_state(model, 2 * jnp.ones((4, 5))), key, n_sweeps=1)
    with pytest.raises(ValueError, match="local_states: expected at least two distinct values"):
        eqx_rbm.metropolis(model, state, key, n_sweeps=1, local_states=(1.0,))
    with pytest.raises(ValueError, match=r"pairs: expected an integer array of shape \(n_pairs, 2\)"):
        eqx_rbm.metropolis(model, state, key, n_sweeps=1, pairs=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"sites: expected indices in \[0, 5\)"):
        eqx_rbm.metropolis(model, state, key, n_sweeps=1, pairs=np.array([[0, 5]]))
    with pytest.raises(ValueError, match="method: expected 'auto', 'fused' or 'portable'"):
        eqx_rbm.metropolis(model, state, key, n_sweeps=1, method="gpu")  # pyright: ignore[reportArgumentType]
    multival, _ = _models()["multival"]
    with pytest.raises(ValueError, match="local_states: expected every value to be one of"):
        eqx_rbm.metropolis(
            multival,
            eqx_rbm.local_state(multival, jnp.zeros((4, 3))),
            key,
            n_sweeps=1,
            local_states=(0, 1, 5),
        )


@pytest.mark.parametrize("kind", ["rbm", "complex", "multival"])
def test_fused_and_portable_paths_make_the_same_decisions(kind):
    """With the same random numbers, the fused kernel (Pallas' interpreter here) and the
    portable loop accept and reject the same proposals."""
    model, states = _models()[kind]
    x0 = np.random.default_rng(3).choice(np.asarray(states, np.float64), size=(9, model.n_sites))
    state = eqx_rbm.local_state(model, jnp.asarray(x0))
    runs = {
        method: jax.jit(lambda s, k, m=method: eqx_rbm.metropolis(model, s, k, n_sweeps=3, method=m))(
            state, jax.random.key(9)
        )
        for method in ("portable", "fused")
    }
    (portable_samples, portable, portable_rate), (fused_samples, fused, fused_rate) = runs.values()
    np.testing.assert_array_equal(fused_samples, portable_samples)
    np.testing.assert_array_equal(fused_rate, portable_rate)
    assert 0 < float(fused_rate.mean()) < 1
    np.testing.assert_allclose(fused.theta, portable.theta, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fused.hidden_sum, portable.hidden_sum, rtol=1e-12, atol=1e-12)


def test_fused_path_refuses_what_it_cannot_run():
    model = eqx_rbm.RBM(4, activation=jnp.tanh, key=jax.random.key(0))
    state = eqx_rbm.local_state(model, jnp.ones((2, 4)))
    with pytest.raises(
        ValueError,
        match=r"method: use method='portable' for this model: the fused kernel runs the log_cosh "
        r"activation only, got activation=",
    ):
        eqx_rbm.metropolis(model, state, jax.random.key(1), n_sweeps=1, method="fused")
    model, _ = _models()["rbm"]
    state = eqx_rbm.local_state(model, jnp.ones((2, 5)))
    with pytest.raises(ValueError, match="the fused kernel runs single-site moves only, got exchange moves"):
        eqx_rbm.metropolis(
            model, state, jax.random.key(1), n_sweeps=1, pairs=np.array([[0, 1]]), method="fused"
        )


@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_auto_never_runs_the_fused_kernel(monkeypatch, backend):
    """The fused kernel is opt-in until a GPU run is recorded: "auto" takes the portable path even
    where the default backend is a GPU (faked here), and its sweeps contain no Pallas call."""
    import eqx_rbm.sampling._sampler as sampler
    from eqx_rbm.sampling._moves import SiteMoves

    monkeypatch.setattr(sampler.jax, "default_backend", lambda: backend)
    model, _ = _models()["rbm"]
    state = eqx_rbm.local_state(model, jnp.ones((2, 5)))
    assert not sampler._use_fused(model, state, SiteMoves(), "auto")
    assert sampler._use_fused(model, state, SiteMoves(), "fused")
    run = lambda s: eqx_rbm.metropolis(model, s, jax.random.key(1), n_sweeps=1)  # noqa: E731
    assert "pallas_call" not in str(jax.make_jaxpr(run)(state))
