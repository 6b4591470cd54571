"""The fused Pallas sweep kernel against a plain jnp loop, and re_log_cosh against mpmath."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

from eqx_rbm import log_cosh
from eqx_rbm.numerics._re_log_cosh import re_log_cosh
from eqx_rbm.sampling._fused import fused_available, fused_sweeps

jax.config.update("jax_enable_x64", True)

N_SITES, N_HIDDEN, N_CHAINS, SWEEPS = 5, 7, 7, 3
SPINS = np.array([[-1.0], [1.0]])
ONE_HOT = np.eye(4)


def reference(kernel3, visible3, table, classes, theta, hidden_sum, sites, offsets, log_u, sweep_size):
    """The sweep semantics step by step, with the library's complex log cosh."""
    rows = jnp.arange(classes.shape[0])

    def step(state, moves):
        classes, theta, hidden_sum = state
        site, offset, lu = moves
        old = classes[rows, site]
        new = (old + offset) % table.shape[0]
        d = table[new] - table[old]
        dtheta = (d[:, :, None] * kernel3[site]).sum(axis=1)
        new_sum = log_cosh(theta + dtheta).sum(axis=-1)
        log_ratio = new_sum - hidden_sum
        if visible3 is not None:
            log_ratio = log_ratio + (d * visible3[site]).sum(axis=-1)
        accept = lu < 2 * jnp.real(log_ratio)
        classes = classes.at[rows, site].set(jnp.where(accept, new, old))
        theta = jnp.where(accept[:, None], theta + dtheta, theta)
        hidden_sum = jnp.where(accept, new_sum, hidden_sum)
        return (classes, theta, hidden_sum), (classes, accept)

    (classes, theta, hidden_sum), (history, accepted) = lax.scan(
        step, (classes, theta, hidden_sum), (sites, offsets, log_u)
    )
    samples = history[sweep_size - 1 :: sweep_size]
    return classes, theta, hidden_sum, samples, accepted.sum(axis=0, dtype=jnp.int32)


def make_case(dtype, table, visible, seed, n_steps=SWEEPS * N_SITES + 2):
    rng = np.random.default_rng(seed)
    n_states, fps = table.shape

    def draw(*shape):
        x = rng.normal(size=shape) * 0.4
        if np.dtype(dtype).kind == "c":
            x = x + 1j * rng.normal(size=shape) * 0.4
        return jnp.asarray(x, dtype)

    kernel3, bias = draw(N_SITES, fps, N_HIDDEN), draw(N_HIDDEN)
    visible3 = draw(N_SITES, fps) if visible else None
    table = jnp.asarray(table, jnp.finfo(dtype).dtype)
    classes = jnp.asarray(rng.integers(0, n_states, (N_CHAINS, N_SITES)), jnp.int32)
    theta = features_theta(kernel3, table, classes, bias)
    moves = (
        jnp.asarray(rng.integers(0, N_SITES, (n_steps, N_CHAINS)), jnp.int32),
        jnp.asarray(rng.integers(1, n_states, (n_steps, N_CHAINS)), jnp.int32),
        jnp.log(jnp.asarray(rng.uniform(size=(n_steps, N_CHAINS)), jnp.finfo(dtype).dtype)),
    )
    return (kernel3, visible3, table, classes, theta, log_cosh(theta).sum(-1), *moves), bias


def features_theta(kernel3, table, classes, bias):
    return jnp.einsum("bsc,scm->bm", table[classes], kernel3, precision=lax.Precision.HIGHEST) + bias


# Both tables, with and without visible bias, and blocks
# that do not divide the 7 chains (None picks 1 chain per program for so few
# chains). complex64 shares the complex path; it is lowered for CUDA below.
# The real and the complex arithmetic each run with both tables and with and
# without visible bias; float32 and float64 share the real path (the dtype sets
# precision, not branches), as any two powers of two share the padded blocks.
CASES = [
    pytest.param(jnp.float32, SPINS, True, 4, id="float32-spins-visible"),
    pytest.param(jnp.float64, ONE_HOT, False, None, id="float64-onehot"),
    pytest.param(jnp.complex128, SPINS, True, None, id="complex128-spins-visible"),
    pytest.param(jnp.complex128, ONE_HOT, False, 4, id="complex128-onehot"),
]


@pytest.mark.parametrize(("dtype", "table", "visible", "block_chains"), CASES)
def test_matches_reference(dtype, table, visible, block_chains):
    """Same random numbers, same decisions; 2 steps past the last sweep run the remainder loop."""
    args, bias = make_case(dtype, table, visible, seed=len(table) + 3 * visible)
    out = fused_sweeps(*args, sweep_size=N_SITES, interpret=True, block_chains=block_chains)
    classes, theta, hidden_sum, samples, n_accepted = out
    ref_classes, ref_theta, ref_sum, ref_samples, ref_accepted = jax.jit(reference, static_argnums=9)(
        *args, N_SITES
    )
    np.testing.assert_array_equal(n_accepted, ref_accepted)
    np.testing.assert_array_equal(classes, ref_classes)
    np.testing.assert_array_equal(samples, ref_samples)
    assert samples.shape == (SWEEPS, N_CHAINS, N_SITES) and samples.dtype == jnp.int32
    assert 0 < int(n_accepted.sum()) < SWEEPS * N_SITES * N_CHAINS
    rtol = 1e-5 if jnp.finfo(dtype).bits == 32 else 1e-12
    assert theta.dtype == dtype and hidden_sum.dtype == jnp.finfo(dtype).dtype
    np.testing.assert_allclose(theta, ref_theta, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(hidden_sum, jnp.real(ref_sum), rtol=rtol, atol=rtol)
    fresh = features_theta(args[0], args[2], classes, bias)
    np.testing.assert_allclose(theta, fresh, rtol=0, atol=1e-10 if rtol < 1e-6 else 1e-5)


def test_no_complete_sweep():
    args, _ = make_case(jnp.float64, SPINS, False, seed=0, n_steps=3)
    classes, _, _, samples, n_accepted = fused_sweeps(*args, sweep_size=N_SITES, interpret=True)
    ref = reference(*args, N_SITES)
    assert samples.shape == (0, N_CHAINS, N_SITES)
    np.testing.assert_array_equal(classes, ref[0])
    np.testing.assert_array_equal(n_accepted, ref[4])


def test_zero_steps_returns_the_input_state():
    args, _ = make_case(jnp.complex128, SPINS, True, seed=0, n_steps=0)
    classes, theta, hidden_sum, samples, n_accepted = fused_sweeps(*args, sweep_size=2, interpret=True)
    np.testing.assert_array_equal(classes, args[3])
    np.testing.assert_array_equal(theta, args[4])
    np.testing.assert_array_equal(hidden_sum, jnp.real(args[5]))
    assert samples.shape == (0, N_CHAINS, N_SITES) and not n_accepted.any()


def _triton_modules(lowered):
    """The Triton IR modules in a StableHLO module lowered for CUDA.

    jax 0.10 and 0.11 embed the IR in a `__gpu$xla.gpu.triton` call for XLA to
    compile; a jax that compiles it while lowering emits `triton_kernel_call_ffi`.
    """
    from jax._src.lib.mlir import ir
    from jax._src.pallas.triton import lowering as triton_lowering

    calls = []

    def walk(op):
        for region in op.regions:
            for block in region.blocks:
                for inner in block.operations:
                    if inner.operation.name == "stablehlo.custom_call":
                        calls.append(inner)
                    walk(inner.operation)

    walk(lowered.compiler_ir("stablehlo").operation)
    targets = [ir.StringAttr(call.attributes["call_target_name"]).value for call in calls]
    if "triton_kernel_call_ffi" in targets:  # already compiled to PTX
        return []
    assert targets == ["__gpu$xla.gpu.triton"], targets
    config = ir.DictAttr(calls[0].attributes["mhlo.backend_config"])
    with triton_lowering._new_ir_context():
        return [ir.Module.parse(ir.StringAttr(config["ir"]).value_bytes)]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64, jnp.complex64, jnp.complex128])
def test_lowers_for_cuda(dtype):
    """Pallas' Triton lowering runs without a GPU; any failure in it fails here."""
    args, _ = make_case(dtype, ONE_HOT, True, seed=0, n_steps=42)
    shapes = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), args)
    # From jax 0.11 the Triton lowering takes the target GPU from the abstract
    # mesh when there is none; jax 0.10 falls back to compute capability 9.0.
    h200 = jax.sharding.AbstractDevice(device_kind="NVIDIA H200", num_cores=None, platform="gpu")
    with jax.sharding.use_abstract_mesh(jax.sharding.AbstractMesh((), (), abstract_device=h200)):
        traced = jax.jit(functools.partial(fused_sweeps, sweep_size=N_SITES)).trace(*shapes)
        try:
            lowered = traced.lower(lowering_platforms=("cuda",))
        except RuntimeError as err:
            # Where jax compiles the Triton IR to PTX while lowering, that
            # needs the CUDA plugin; this error comes after the IR was built.
            if "does not have a Triton compilation handler" not in str(err):
                raise
            return
    for module in _triton_modules(lowered):
        assert module.operation.verify()
        text = str(module)
        assert text.count("scf.for") == 3  # the sweeps, the steps of one sweep, the remainder
        assert "tt.load" in text and "tt.store" in text


@pytest.mark.parametrize(
    ("dtype", "backend", "interpret", "expected"),
    [
        (jnp.float32, "gpu", False, True),
        (jnp.complex128, "cuda", False, True),
        (jnp.float64, "cpu", False, False),
        (jnp.float64, "cpu", True, True),
        (jnp.float16, "gpu", False, False),
        (jnp.int32, "gpu", True, False),
        ("not a dtype", "gpu", False, False),
    ],
)
def test_fused_available(dtype, backend, interpret, expected):
    assert fused_available(dtype, backend, interpret=interpret) is expected


def _replace(args, index, value):
    return (*args[:index], value, *args[index + 1 :])


@pytest.mark.parametrize(
    ("index", "change", "kwargs", "error", "match"),
    [
        (0, lambda x: x[0], {}, ValueError, "kernel3: expected shape"),
        (0, lambda x: x.astype(jnp.float16), {}, TypeError, "kernel3: expected one of the dtypes"),
        (1, lambda x: x[:, :1], {}, ValueError, "visible3: expected shape"),
        (2, lambda x: x[:, :2], {}, ValueError, "table: expected shape"),
        (2, lambda x: x.astype(jnp.complex128), {}, TypeError, "table: expected real features"),
        (3, lambda x: x[:, 1:], {}, ValueError, "classes: expected shape"),
        (3, lambda x: x.astype(jnp.float64), {}, TypeError, "classes: expected an integer"),
        (4, lambda x: x.astype(jnp.float32), {}, TypeError, "theta: expected kernel3's dtype"),
        (4, lambda x: x[:-1], {}, ValueError, "theta: expected shape"),
        (5, lambda x: x[:-1], {}, ValueError, "hidden_sum: expected shape"),
        (6, lambda x: x[:, :-1], {}, ValueError, "sites: expected shape"),
        (7, lambda x: x[1:], {}, ValueError, "offsets: expected shape"),
        (8, lambda x: x.astype(jnp.int32), {}, TypeError, "log_u: expected a real"),
        (0, lambda x: x, {"sweep_size": 0}, ValueError, "sweep_size: expected a positive int, got 0"),
        (0, lambda x: x, {"sweep_size": 2.0}, TypeError, "sweep_size: expected a positive int, got 2.0"),
        (0, lambda x: x, {"block_chains": 3}, ValueError, "block_chains: expected None or a positive power"),
    ],
)
def test_bad_input(index, change, kwargs, error, match):
    args, _ = make_case(jnp.float64, ONE_HOT, True, seed=0, n_steps=4)
    with pytest.raises(error, match=match):
        fused_sweeps(*_replace(args, index, change(args[index])), **{"sweep_size": 2, **kwargs})


def _exact_re_log_cosh(a: float, b: float) -> float:
    with mpmath.workdps(60):
        return float(mpmath.re(mpmath.log(mpmath.cosh(mpmath.mpc(a, b)))))


def _check_re_log_cosh(dtype, a, b):
    a, b = np.asarray(a, dtype), np.asarray(b, dtype)
    got = np.asarray(re_log_cosh(jnp.asarray(a), jnp.asarray(b)))
    assert got.dtype == dtype
    exact = np.array(
        [_exact_re_log_cosh(x, y) for x, y in zip(a.ravel().tolist(), b.ravel().tolist(), strict=True)]
    )
    # A few ulp relative to max(|result|, 1): the sum over hidden units sees absolute errors.
    error = np.abs(got.ravel() - exact) / np.maximum(np.abs(exact), 1)
    assert np.isfinite(got).all()
    assert error.max() <= 4 * np.finfo(dtype).eps, (a.ravel()[error.argmax()], b.ravel()[error.argmax()])


def _around(x, dtype, n=3):
    """x and its n neighbouring floats on each side."""
    up = down = np.asarray(x, dtype)
    values = [up]
    for _ in range(n):
        up, down = np.nextafter(up, dtype(np.inf)), np.nextafter(down, dtype(-np.inf))
        values += [up, down]
    return values


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_re_log_cosh_grid(dtype):
    """Wide |a| (to the largest float, where cosh overflows) and b at the zeros of cosh."""
    big = float(np.finfo(dtype).max)
    re = [0.0, 1e-30, 1e-12, 1e-6, 1e-3, 0.1, 0.5, 1.0, 3.0, 10.0, 30.0, 300.0, 1e5, 1e30, big]
    im = [0.0, 1e-20, 1e-8, 0.3, 1.0, 3.0, 10.0, 1e4, -7.5]
    for zero in (math.pi / 2, -math.pi / 2, 3 * math.pi / 2, 101 * math.pi / 2):
        im += _around(zero, dtype)
    a, b = np.meshgrid(np.array(re + [-x for x in re]), np.array(im))
    _check_re_log_cosh(dtype, a, b)
    # Without the stable form, cosh overflows for large |a|.
    with np.errstate(all="ignore"):
        assert not np.isfinite(np.real(np.log(np.cosh(np.asarray(big, dtype) + 0j)))).all()


@settings(max_examples=150, deadline=None)
@given(
    a=st.floats(-50, 50) | st.floats(-1e300, 1e300),
    b=st.floats(-20, 20) | st.integers(-40, 40).map(lambda k: k * math.pi / 2),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_re_log_cosh_random(a, b, dtype):
    if dtype is np.float32:
        a = float(np.clip(a, -3e38, 3e38))
    _check_re_log_cosh(dtype, [a], [b])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_re_log_cosh_limits(dtype):
    inf = np.asarray(np.inf, dtype)
    np.testing.assert_array_equal(re_log_cosh(np.array([inf, -inf]), np.zeros(2, dtype)), [inf, inf])
    assert abs(re_log_cosh(np.asarray(0, dtype), np.asarray(0, dtype))) <= np.finfo(dtype).eps
    # The nearest float to a zero of cosh: large and negative, finite.
    near_zero = re_log_cosh(np.asarray(0, dtype), np.asarray(np.pi / 2, dtype))
    assert np.isfinite(near_zero) and near_zero < (-15 if dtype is np.float32 else -35)
