"""Local updates through LocalState agree with recomputing log psi from scratch."""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import normal_init
from hypothesis import given, settings
from hypothesis import strategies as st

import eqx_rbm
from eqx_rbm import accept, exchange_log_ratios, local_state, propose, site_log_ratios

TOL = {"rtol": 1e-10, "atol": 1e-10}
N_CHAINS = 7
N_SPIN = 12
SPIN_STATES = (-1.0, 1.0)
BOSON_STATES = (0, 1, 2, 3, 4)

# Parameters far from NetKet's 0.01 default, so that theta spans the region
# where log cosh is neither linear nor quadratic.
wide = normal_init(0.7)
wide_c = normal_init(0.7, dtype=jnp.complex128)


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


def _moved(x, sites, new_values):
    """x with the proposal applied, by plain indexing (the reference for the state's x)."""
    out = np.array(x)
    for index in np.ndindex(out.shape[:-1]):
        out[index][np.asarray(sites)[index]] = np.asarray(new_values)[index]
    return jnp.asarray(out)


@eqx.filter_jit
def _state_and_full(model, x, sites, new_values, x_new):
    delta, proposed = propose(model, local_state(model, x), sites, new_values)
    return delta, proposed, model(x_new) - model(x), local_state(model, x_new), model(x_new)


def _assert_matches_full(model, x, sites, new_values, tol=TOL):
    x_new = _moved(x, sites, new_values)
    delta, proposed, full_delta, fresh, log_psi = _state_and_full(model, x, sites, new_values, x_new)
    assert delta.shape == x.shape[:-1]
    assert delta.dtype == full_delta.dtype
    np.testing.assert_allclose(delta, full_delta, **tol)
    np.testing.assert_array_equal(proposed.x, x_new)
    np.testing.assert_allclose(proposed.theta, fresh.theta, **tol)
    np.testing.assert_allclose(proposed.hidden_sum, fresh.hidden_sum, **tol)
    np.testing.assert_allclose(proposed.log_psi(model), log_psi, **tol)
    return delta, proposed, full_delta, fresh


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


# Local updates reach a model through its features (`encode`, `site_features`) only, so the dtype
# takes the same path for both models: float32 once, on the RBM.
@pytest.mark.parametrize(
    "model",
    [
        _rbm(use_hidden_bias=False, use_visible_bias=False),
        _rbm(jnp.float32),
        _multival(use_visible_bias=False),
    ],
    ids=["rbm-no-bias", "rbm-float32", "multival-no-visible-bias"],
)
def test_variants_match_full_recomputation(model):
    states = BOSON_STATES if isinstance(model, eqx_rbm.RBMMultiVal) else SPIN_STATES
    x, sites, new_values = _proposal(np.random.default_rng(0), N_CHAINS, model.n_sites, 2, states)
    if isinstance(model, eqx_rbm.RBM):
        # Inputs in the parameters' dtype: float64 inputs would promote the result, as in NetKet.
        x, new_values = x.astype(model.param_dtype), new_values.astype(model.param_dtype)
    tol = {"rtol": 1e-4, "atol": 1e-4} if model.param_dtype == jnp.float32 else TOL
    delta = _assert_matches_full(model, x, sites, new_values, tol)[0]
    assert delta.dtype == model.param_dtype


def test_unbatched_and_multi_batch_dims():
    model = _rbm()
    x, sites, new_values = _proposal(np.random.default_rng(3), 6, N_SPIN, 2, SPIN_STATES)

    @eqx.filter_jit
    def deltas(x, sites, new_values):
        return propose(model, local_state(model, x), sites, new_values)[0]

    single = deltas(x[0], sites[0], new_values[0])
    assert single.shape == ()
    full = model(_moved(x, sites, new_values)) - model(x)
    np.testing.assert_allclose(single, full[0], **TOL)
    two_dims = deltas(*(a.reshape(2, 3, -1) for a in (x, sites, new_values)))
    assert two_dims.shape == (2, 3)
    np.testing.assert_allclose(two_dims.reshape(-1), full, **TOL)


def test_integer_spins_and_vmap():
    model = _rbm()
    x, sites, new_values = _proposal(np.random.default_rng(4), N_CHAINS, N_SPIN, 1, SPIN_STATES)

    @eqx.filter_jit
    def deltas(x, sites, new_values):
        state = local_state(model, x)
        batched = propose(model, state, sites, new_values)[0]
        mapped = jax.vmap(propose, in_axes=(None, 0, 0, 0))(model, state, sites, new_values)[0]
        return batched, mapped

    batched, mapped = deltas(x.astype(jnp.int8), sites.astype(jnp.int32), new_values.astype(jnp.int8))
    full = model(_moved(x, sites, new_values)) - model(x)
    np.testing.assert_allclose(batched, full, **TOL)
    np.testing.assert_allclose(mapped, full, **TOL)


def test_unchanged_site_contributes_exactly_zero():
    model = _multival()
    x, sites, _ = _proposal(np.random.default_rng(5), N_CHAINS, 6, 2, BOSON_STATES)
    same = jnp.take_along_axis(x, sites, axis=-1)
    state = local_state(model, x)
    delta, proposed = eqx.filter_jit(propose)(model, state, sites, same)
    np.testing.assert_array_equal(delta, 0.0)
    np.testing.assert_array_equal(proposed.theta, state.theta)


@pytest.mark.parametrize("kind", ["multival", "complex"])
def test_metropolis_chain_stays_consistent(kind):
    """Many accepted and rejected moves, then compare with a fresh state."""
    model = _multival() if kind == "multival" else _rbm(jnp.complex128)
    states = jnp.asarray(BOSON_STATES if kind == "multival" else SPIN_STATES)
    n_sites, n_steps = model.n_sites, 100
    x0 = jax.random.choice(jax.random.key(7), states, (N_CHAINS, n_sites))

    @jax.jit
    def run(x, key):
        def step(state, key):
            k_site, k_value, k_accept = jax.random.split(key, 3)
            sites = jax.random.randint(k_site, (N_CHAINS, 1), 0, n_sites)
            values = jax.random.choice(k_value, states, (N_CHAINS, 1))
            delta, proposed = propose(model, state, sites, values)
            mask = jax.random.uniform(k_accept, (N_CHAINS,)) < jnp.exp(2 * delta.real)
            return accept(state, proposed, mask), mask

        return jax.lax.scan(step, local_state(model, x), jax.random.split(key, n_steps))

    state, accepted = run(x0, jax.random.key(8))
    assert 0 < int(accepted.sum()) < accepted.size
    assert not np.array_equal(state.x, x0)
    fresh = local_state(model, state.x)
    np.testing.assert_allclose(state.theta, fresh.theta, **TOL)
    np.testing.assert_allclose(state.hidden_sum, fresh.hidden_sum, **TOL)
    np.testing.assert_allclose(state.log_psi(model), model(state.x), **TOL)


def test_accept_selects_per_chain():
    model = _multival()
    # The shapes of test_unchanged_site_contributes_exactly_zero: its compiled proposal serves.
    x, sites, new_values = _proposal(np.random.default_rng(13), N_CHAINS, 6, 2, BOSON_STATES)
    state = local_state(model, x)
    _, proposed = eqx.filter_jit(propose)(model, state, sites, new_values)
    mask = jnp.array([True, False, False, True, False, True, True])
    kept = accept(state, proposed, mask)
    for field in ("x", "theta", "hidden_sum"):
        got, new, old = (np.asarray(getattr(s, field)) for s in (kept, proposed, state))
        np.testing.assert_array_equal(got[np.asarray(mask)], new[np.asarray(mask)])
        np.testing.assert_array_equal(got[~np.asarray(mask)], old[~np.asarray(mask)])
    with pytest.raises(ValueError, match=r"mask: expected one boolean per chain, shape \(7,\)"):
        accept(state, proposed, mask[:2])


# --- all single-site and exchange ratios ---------------------------------------


def _model_and_states(kind):
    if kind == "multival":
        return _multival(), BOSON_STATES
    return _rbm(jnp.complex128 if kind == "complex" else jnp.float64), SPIN_STATES


@eqx.filter_jit
def _site_ratios_and_full(model, x, new_values):
    ratios = site_log_ratios(model, local_state(model, x), new_values)
    n_sites = x.shape[-1]
    # Proposal i sets site i only: a diagonal mask over (sample, proposal, site).
    on_site = jnp.eye(n_sites, dtype=bool)
    proposals = jnp.where(on_site, new_values[..., None, :], x[..., None, :])
    return ratios, model(proposals) - model(x)[..., None]


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["real", "complex", "multival"]))
def test_site_log_ratios_match_full_recomputation(seed, kind):
    rng = np.random.default_rng(seed)
    model, states = _model_and_states(kind)
    x = jnp.asarray(rng.choice(np.asarray(states), size=(N_CHAINS, model.n_sites)))
    new_values = jnp.asarray(rng.choice(np.asarray(states), size=(N_CHAINS, model.n_sites)))
    ratios, full = _site_ratios_and_full(model, x, new_values)
    assert ratios.shape == full.shape == x.shape
    assert ratios.dtype == full.dtype
    np.testing.assert_allclose(ratios, full, **TOL)
    # A site that keeps its value has a ratio of exactly zero.
    same = np.asarray(new_values) == np.asarray(x)
    np.testing.assert_array_equal(np.asarray(ratios)[same], 0.0)


@eqx.filter_jit
def _exchange_ratios_and_full(model, x, pairs):
    ratios = exchange_log_ratios(model, local_state(model, x), pairs)
    i, j = pairs[:, 0], pairs[:, 1]
    positions = jnp.arange(x.shape[-1])
    # Proposal p swaps sites i_p and j_p.
    swap = jnp.where(
        positions == i[:, None],
        j[:, None],
        jnp.where(positions == j[:, None], i[:, None], positions),
    )
    proposals = x[..., swap]
    return ratios, model(proposals) - model(x)[..., None]


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["real", "complex", "multival"]))
def test_exchange_log_ratios_match_full_recomputation(seed, kind):
    rng = np.random.default_rng(seed)
    model, states = _model_and_states(kind)
    n = model.n_sites
    x = jnp.asarray(rng.choice(np.asarray(states), size=(N_CHAINS, n)))
    bonds = np.array([(i, (i + 1) % n) for i in range(n)] + [(0, n // 2)])
    ratios, full = _exchange_ratios_and_full(model, x, bonds)
    assert ratios.shape == full.shape == (N_CHAINS, len(bonds))
    assert ratios.dtype == full.dtype
    np.testing.assert_allclose(ratios, full, **TOL)
    # Exchanging two equal values changes nothing: exactly zero.
    equal = np.asarray(x)[:, bonds[:, 0]] == np.asarray(x)[:, bonds[:, 1]]
    np.testing.assert_array_equal(np.asarray(ratios)[equal], 0.0)


def test_exchange_log_ratios_errors():
    model = _rbm()
    state = local_state(model, jnp.ones((3, N_SPIN)))
    with pytest.raises(ValueError, match=r"sites: expected indices in \[0, 12\).*got 12"):
        exchange_log_ratios(model, state, np.array([[0, 12]]))
    with pytest.raises(ValueError, match=r"sites: expected distinct sites.*\[3, 3\]"):
        exchange_log_ratios(model, state, np.array([[0, 1], [3, 3]]))
    with pytest.raises(Exception, match=r"exchange_log_ratios: a pair holds a site out of \[0, 12\)"):
        jax.block_until_ready(eqx.filter_jit(exchange_log_ratios)(model, state, jnp.array([[0, 1], [2, 2]])))


def test_site_log_ratios_errors():
    model = _multival()
    x, _, _ = _proposal(np.random.default_rng(14), 3, 6, 1, BOSON_STATES)
    state = local_state(model, x)
    with pytest.raises(
        ValueError, match=r"new_values: expected one value per site, the shape of state.x \(3, 6\)"
    ):
        site_log_ratios(model, state, x[:, :2])
    bad = np.asarray(x).copy()
    bad[1, 4] = 9
    with pytest.raises(
        ValueError, match=r"new_values: expected every value to be one of local_states.*got 9"
    ):
        site_log_ratios(model, state, bad)
    with pytest.raises(Exception, match=r"site_log_ratios: a value .*not one of local_states"):
        jax.block_until_ready(eqx.filter_jit(site_log_ratios)(model, state, jnp.asarray(bad)))
    with pytest.raises(ValueError, match=r"state: expected x of shape \(\*batch, 6\), theta of shape"):
        site_log_ratios(model, local_state(_rbm(), jnp.ones((3, N_SPIN))), x)


# --- errors -------------------------------------------------------------------


@pytest.fixture(scope="module")
def spin_case():
    model = _rbm()
    x, sites, new_values = _proposal(np.random.default_rng(9), 3, N_SPIN, 2, SPIN_STATES)
    return model, local_state(model, x), sites, new_values


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
    model, state, _, new_values = spin_case
    with pytest.raises(ValueError, match=message):
        propose(model, state, jnp.array(bad_sites), new_values)


@pytest.mark.parametrize("bad_sites", [[[0, 1], [2, N_SPIN], [4, 5]], [[0, 1], [3, 3], [4, 5]]])
def test_bad_sites_under_jit(spin_case, bad_sites):
    model, state, _, new_values = spin_case
    with pytest.raises(Exception, match="propose: a site index is out of \\[0, 12\\) or repeated"):
        jax.block_until_ready(eqx.filter_jit(propose)(model, state, jnp.array(bad_sites), new_values))


def test_bad_shapes_and_dtypes(spin_case):
    model, state, sites, new_values = spin_case
    short = eqx.tree_at(lambda s: s.theta, state, state.theta[:, :5])
    with pytest.raises(ValueError, match=r"state: expected x of shape \(\*batch, 12\), theta of shape"):
        propose(model, short, sites, new_values)
    with pytest.raises(TypeError, match="sites"):
        propose(model, state, sites.astype(jnp.float64), new_values)
    with pytest.raises((TypeError, ValueError), match="new_values"):
        propose(model, state, sites, new_values[:, :1])
    with pytest.raises((TypeError, ValueError), match="sites"):
        propose(model, state, sites[:2], new_values[:2])
    with pytest.raises(TypeError, match="model"):
        propose(object(), state, sites, new_values)  # pyright: ignore[reportArgumentType]
    with pytest.raises(ValueError, match=r"x: expected shape \(\*batch, n_sites\) with n_sites=12"):
        local_state(model, state.x[:, :3])


def test_multival_unknown_values():
    model = _multival()
    x, sites, new_values = _proposal(np.random.default_rng(10), 3, 6, 1, BOSON_STATES)
    state = local_state(model, x)
    bad = new_values.at[1, 0].set(7)
    with pytest.raises(
        ValueError, match=r"new_values: expected every value to be one of local_states=.*got 7"
    ):
        propose(model, state, sites, bad)
    with pytest.raises(Exception, match="not one of local_states"):
        jax.block_until_ready(eqx.filter_jit(propose)(model, state, sites, bad))
    with pytest.raises(TypeError, match="new_values: expected an integer or floating array"):
        propose(model, state, sites, new_values.astype(jnp.complex128))
    located = np.asarray(new_values).copy()
    located[2, 0] = 9
    with pytest.raises(ValueError, match=r"new_values: .* got 9 at index \(2, 0\)"):
        propose(model, state, sites, located)
