"""Local updates agree with recomputing log psi from scratch."""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eqx_rbm
from eqx_rbm import local_state, propose_move
from eqx_rbm._local import hidden_theta, log_psi_ratio, set_sites

TOL = {"rtol": 1e-10, "atol": 1e-10}
N_CHAINS = 7
N_SPIN = 12
SPIN_STATES = (-1.0, 1.0)
BOSON_STATES = (0, 1, 2, 3, 4)

# Parameters far from NetKet's 0.01 default, so that theta spans the region
# where log cosh is neither linear nor quadratic.
wide = jax.nn.initializers.normal(stddev=0.7)
wide_c = jax.nn.initializers.normal(stddev=0.7, dtype=jnp.complex128)


@functools.cache
def _rbm(dtype=jnp.float64, **kwargs):
    init = wide_c if jnp.issubdtype(dtype, jnp.complexfloating) else wide
    return eqx_rbm.RBM(
        N_SPIN,
        alpha=2,
        param_dtype=dtype,
        kernel_init=init,
        hidden_bias_init=init,
        visible_bias_init=init,
        key=jax.random.key(1),
        **kwargs,
    )


@functools.cache
def _multival(**kwargs):
    return eqx_rbm.RBMMultiVal(
        6,
        len(BOSON_STATES),
        local_states=BOSON_STATES,
        alpha=1.5,
        kernel_init=wide,
        hidden_bias_init=wide,
        visible_bias_init=wide,
        key=jax.random.key(2),
        **kwargs,
    )


def _proposal(rng: np.random.Generator, n_chains: int, n_sites: int, k: int, states) -> tuple:
    x = rng.choice(np.asarray(states), size=(n_chains, n_sites))
    sites = np.stack([rng.choice(n_sites, size=k, replace=False) for _ in range(n_chains)])
    new_values = rng.choice(np.asarray(states), size=(n_chains, k))
    return jnp.asarray(x), jnp.asarray(sites), jnp.asarray(new_values)


@eqx.filter_jit
def _local_and_full(model, x, sites, new_values):
    theta = hidden_theta(model, x)
    delta, new_theta = log_psi_ratio(model, x, theta, sites, new_values)
    x_new = set_sites(x, sites, new_values)
    return delta, new_theta, model(x_new) - model(x), hidden_theta(model, x_new)


@eqx.filter_jit
def _state_and_full(model, x, sites, new_values):
    delta, proposed = propose_move(model, local_state(model, x), sites, new_values)
    x_new = set_sites(x, sites, new_values)
    full = local_state(model, x_new)
    return delta, proposed, model(x_new) - model(x), full, model(x_new)


def _assert_matches_full(model, x, sites, new_values):
    delta, new_theta, full_delta, full_theta = _local_and_full(model, x, sites, new_values)
    assert delta.shape == x.shape[:-1]
    assert new_theta.shape == full_theta.shape
    assert delta.dtype == full_delta.dtype
    np.testing.assert_allclose(delta, full_delta, **TOL)
    np.testing.assert_allclose(new_theta, full_theta, **TOL)
    # The cached-state API gives the same ratio and a state equal to a fresh one.
    delta, proposed, full_delta, fresh, log_psi = _state_and_full(model, x, sites, new_values)
    assert delta.dtype == full_delta.dtype
    np.testing.assert_allclose(delta, full_delta, **TOL)
    np.testing.assert_array_equal(proposed.x, fresh.x)
    np.testing.assert_allclose(proposed.theta, fresh.theta, **TOL)
    np.testing.assert_allclose(proposed.hidden_sum, fresh.hidden_sum, **TOL)
    np.testing.assert_allclose(proposed.log_psi(model), log_psi, **TOL)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.sampled_from([1, 3]))
def test_rbm_matches_full_recomputation(seed, k):
    x, sites, new_values = _proposal(np.random.default_rng(seed), N_CHAINS, N_SPIN, k, SPIN_STATES)
    _assert_matches_full(_rbm(), x, sites, new_values)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.sampled_from([2]))
def test_complex_rbm_matches_full_recomputation(seed, k):
    x, sites, new_values = _proposal(np.random.default_rng(seed), N_CHAINS, N_SPIN, k, SPIN_STATES)
    _assert_matches_full(_rbm(jnp.complex128), x, sites, new_values)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_real_valued_visible_values(seed):
    # Not only +-1: any real value, which exercises the (x' - x) weighting.
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(N_CHAINS, N_SPIN)))
    sites = jnp.asarray(np.stack([rng.choice(N_SPIN, size=3, replace=False) for _ in range(N_CHAINS)]))
    new_values = jnp.asarray(rng.normal(size=(N_CHAINS, 3)))
    _assert_matches_full(_rbm(), x, sites, new_values)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.sampled_from([1, 6]))
def test_multival_matches_full_recomputation(seed, k):
    x, sites, new_values = _proposal(np.random.default_rng(seed), N_CHAINS, 6, k, BOSON_STATES)
    _assert_matches_full(_multival(), x, sites, new_values)


@pytest.mark.parametrize(
    "model",
    [
        _rbm(use_hidden_bias=False, use_visible_bias=False),
        _rbm(jnp.float32),
        _multival(use_visible_bias=False),
        _multival(param_dtype=jnp.float32),
    ],
    ids=["rbm-no-bias", "rbm-float32", "multival-no-visible-bias", "multival-float32"],
)
def test_variants_match_full_recomputation(model):
    states = BOSON_STATES if isinstance(model, eqx_rbm.RBMMultiVal) else SPIN_STATES
    n_sites = model.n_sites if isinstance(model, eqx_rbm.RBMMultiVal) else model.n_visible
    x, sites, new_values = _proposal(np.random.default_rng(0), N_CHAINS, n_sites, 2, states)
    if isinstance(model, eqx_rbm.RBM):
        # Inputs in the parameters' dtype: float64 inputs would promote the result, as in NetKet.
        x, new_values = x.astype(model.param_dtype), new_values.astype(model.param_dtype)
    delta, new_theta, full_delta, full_theta = _local_and_full(model, x, sites, new_values)
    tol = {"rtol": 1e-4, "atol": 1e-4} if model.param_dtype == jnp.float32 else TOL
    assert delta.dtype == full_delta.dtype == model.param_dtype
    np.testing.assert_allclose(delta, full_delta, **tol)
    np.testing.assert_allclose(new_theta, full_theta, **tol)


def test_unbatched_and_multi_batch_dims():
    model = _rbm()
    x, sites, new_values = _proposal(np.random.default_rng(3), 6, N_SPIN, 2, SPIN_STATES)

    @eqx.filter_jit
    def deltas(x, sites, new_values):
        return log_psi_ratio(model, x, hidden_theta(model, x), sites, new_values)[0]

    single = deltas(x[0], sites[0], new_values[0])
    assert single.shape == ()
    full = _local_and_full(model, x, sites, new_values)[2]
    np.testing.assert_allclose(single, full[0], **TOL)
    two_dims = deltas(*(a.reshape(2, 3, -1) for a in (x, sites, new_values)))
    assert two_dims.shape == (2, 3)
    np.testing.assert_allclose(two_dims.reshape(-1), full, **TOL)


def test_integer_spins_and_vmap():
    model = _rbm()
    x, sites, new_values = _proposal(np.random.default_rng(4), N_CHAINS, N_SPIN, 1, SPIN_STATES)

    @eqx.filter_jit
    def deltas(x, sites, new_values):
        theta = hidden_theta(model, x)
        batched = log_psi_ratio(model, x, theta, sites, new_values)[0]
        mapped = jax.vmap(log_psi_ratio, in_axes=(None, 0, 0, 0, 0))(model, x, theta, sites, new_values)[0]
        return batched, mapped

    batched, mapped = deltas(x.astype(jnp.int8), sites.astype(jnp.int32), new_values.astype(jnp.int8))
    full = _local_and_full(model, x, sites, new_values)[2]
    np.testing.assert_allclose(batched, full, **TOL)
    np.testing.assert_allclose(mapped, full, **TOL)


def test_unchanged_site_contributes_exactly_zero():
    model = _multival()
    x, sites, _ = _proposal(np.random.default_rng(5), N_CHAINS, 6, 2, BOSON_STATES)
    same = jnp.take_along_axis(x, sites, axis=-1)
    delta, new_theta, _, theta = _local_and_full(model, x, sites, same)
    np.testing.assert_array_equal(delta, 0.0)
    np.testing.assert_array_equal(new_theta, theta)


def test_metropolis_chain_keeps_theta_consistent():
    """Many accepted and rejected single-site moves, then compare with a fresh theta."""
    model = _multival()
    n_sites, n_steps = model.n_sites, 100
    key = jax.random.key(7)
    x0 = jax.random.choice(key, jnp.asarray(BOSON_STATES), (N_CHAINS, n_sites))

    @jax.jit
    def run(x, key):
        def step(carry, key):
            x, theta, log_psi = carry
            k_site, k_value, k_accept = jax.random.split(key, 3)
            sites = jax.random.randint(k_site, (N_CHAINS, 1), 0, n_sites)
            values = jax.random.choice(k_value, jnp.asarray(BOSON_STATES), (N_CHAINS, 1))
            delta, new_theta = log_psi_ratio(model, x, theta, sites, values)
            accept = jax.random.uniform(k_accept, (N_CHAINS,)) < jnp.exp(2 * delta)
            x = jnp.where(accept[:, None], set_sites(x, sites, values), x)
            theta = jnp.where(accept[:, None], new_theta, theta)
            return (x, theta, log_psi + jnp.where(accept, delta, 0.0)), accept

        carry = (x, hidden_theta(model, x), model(x))
        return jax.lax.scan(step, carry, jax.random.split(key, n_steps))

    (x, theta, log_psi), accepted = run(x0, jax.random.key(8))
    assert 0 < int(accepted.sum()) < accepted.size
    assert not np.array_equal(x, x0)
    np.testing.assert_allclose(theta, hidden_theta(model, x), **TOL)
    np.testing.assert_allclose(log_psi, model(x), **TOL)


def test_set_sites():
    x = jnp.arange(12.0).reshape(3, 4)
    out = set_sites(x, jnp.array([[0, 2], [3, 1], [1, 0]]), jnp.array([[-1, -2], [-3, -4], [-5, -6]]))
    expected = np.arange(12.0).reshape(3, 4)
    expected[0, [0, 2]] = [-1, -2]
    expected[1, [3, 1]] = [-3, -4]
    expected[2, [1, 0]] = [-5, -6]
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(x, np.arange(12.0).reshape(3, 4))


# --- errors -------------------------------------------------------------------


@pytest.fixture(scope="module")
def spin_case():
    model = _rbm()
    x, sites, new_values = _proposal(np.random.default_rng(9), 3, N_SPIN, 2, SPIN_STATES)
    return model, x, hidden_theta(model, x), sites, new_values


@pytest.mark.parametrize(
    ("bad_sites", "message"),
    [
        ([[0, 1], [2, N_SPIN], [4, 5]], r"sites: expected indices in \[0, 12\).*got 12 at index \(1, 1\)"),
        ([[0, 1], [-1, 3], [4, 5]], r"sites: expected indices in \[0, 12\).*got -1"),
        ([[0, 1], [3, 3], [4, 5]], r"sites: expected distinct sites.*\[3, 3\]"),
    ],
    ids=["too-large", "negative", "repeated"],
)
def test_bad_sites_eager(spin_case, bad_sites, message):
    model, x, theta, _, new_values = spin_case
    with pytest.raises(ValueError, match=message):
        log_psi_ratio(model, x, theta, jnp.array(bad_sites), new_values)
    with pytest.raises(ValueError, match=message):
        set_sites(x, jnp.array(bad_sites), new_values)
    with pytest.raises(ValueError, match=message):
        propose_move(model, local_state(model, x), jnp.array(bad_sites), new_values)


@pytest.mark.parametrize("bad_sites", [[[0, 1], [2, N_SPIN], [4, 5]], [[0, 1], [3, 3], [4, 5]]])
def test_bad_sites_under_jit(spin_case, bad_sites):
    model, x, theta, _, new_values = spin_case
    with pytest.raises(Exception, match="out of \\[0, 12\\) or repeated"):
        jax.block_until_ready(
            eqx.filter_jit(log_psi_ratio)(model, x, theta, jnp.array(bad_sites), new_values)
        )
    with pytest.raises(Exception, match="out of \\[0, 12\\) or repeated"):
        jax.block_until_ready(eqx.filter_jit(set_sites)(x, jnp.array(bad_sites), new_values))
    with pytest.raises(Exception, match="propose_move: a site index is out of \\[0, 12\\) or repeated"):
        jax.block_until_ready(
            eqx.filter_jit(propose_move)(model, local_state(model, x), jnp.array(bad_sites), new_values)
        )


def test_bad_shapes_and_dtypes(spin_case):
    model, x, theta, sites, new_values = spin_case
    with pytest.raises(ValueError, match=r"theta: expected shape \(\*batch, n_hidden\) with n_hidden=24"):
        log_psi_ratio(model, x, theta[:, :5], sites, new_values)
    with pytest.raises(ValueError, match=r"x: expected shape \(\*batch, n_sites\) with n_sites=12"):
        log_psi_ratio(model, x[:, :5], theta, sites, new_values)
    with pytest.raises(TypeError, match="sites"):
        log_psi_ratio(model, x, theta, sites.astype(jnp.float64), new_values)
    with pytest.raises((TypeError, ValueError), match="new_values"):
        log_psi_ratio(model, x, theta, sites, new_values[:, :1])
    with pytest.raises((TypeError, ValueError), match="sites"):
        log_psi_ratio(model, x, theta, sites[:2], new_values[:2])
    with pytest.raises(TypeError, match="model"):
        log_psi_ratio(object(), x, theta, sites, new_values)  # pyright: ignore[reportArgumentType]
    with pytest.raises(ValueError, match="x: expected shape"):
        hidden_theta(model, x[:, :3])


def test_multival_unknown_values():
    model = _multival()
    x, sites, new_values = _proposal(np.random.default_rng(10), 3, 6, 1, BOSON_STATES)
    theta = hidden_theta(model, x)
    bad = new_values.at[1, 0].set(7)
    with pytest.raises(
        ValueError, match=r"new_values: expected every value to be one of local_states=.*got 7"
    ):
        log_psi_ratio(model, x, theta, sites, bad)
    with pytest.raises(Exception, match="not one of local_states"):
        jax.block_until_ready(eqx.filter_jit(log_psi_ratio)(model, x, theta, sites, bad))
    with pytest.raises(ValueError, match=r"new_values: expected every value to be one of local_states"):
        propose_move(model, local_state(model, x), sites, bad)
    with pytest.raises(Exception, match="not one of local_states"):
        jax.block_until_ready(eqx.filter_jit(propose_move)(model, local_state(model, x), sites, bad))
    with pytest.raises(TypeError, match="new_values: expected an integer or floating array"):
        log_psi_ratio(model, x, theta, sites, new_values.astype(jnp.complex128))


def test_multival_unknown_new_value_is_located():
    model = _multival()
    x, sites, new_values = _proposal(np.random.default_rng(10), 3, 6, 1, BOSON_STATES)
    bad = np.asarray(new_values).copy()
    bad[2, 0] = 9
    with pytest.raises(ValueError, match=r"new_values: .* got 9 at index \(2, 0\)"):
        log_psi_ratio(model, x, hidden_theta(model, x), sites, bad)
