"""Metropolis sweeps of single-site moves for a batch of chains in one Pallas kernel.

The kernel sees any model of the RBM family in its dense form: each site holds
a local-state index (class) `c`, whose features `table[c]` multiply the site's
rows `kernel3[site]` of the dense kernel. Before the kernel runs, the features
are folded into the kernel, `state_kernel[site, c] = table[c] @ kernel3[site]`,
so that a move `old -> new` at `site` changes theta by the difference of two
rows, `state_kernel[site, new] - state_kernel[site, old]`: two gathers per
move, whatever the number of features per site. For spin and one-hot tables,
whose entries are 0 and +-1, this difference is bit for bit `d @ kernel3[site]`
with `d = table[new] - table[old]`.

One program of the grid runs one block of chains through all steps. Its
classes, theta, hidden sums and acceptance counts are carried through the loop
as values (registers on a GPU): nothing of the chains' state goes through
global memory between steps, so no step needs a barrier, and the only memory
traffic per step is the pre-drawn random numbers and the two gathered rows of
the kernel (cached, as the whole kernel is shared by all programs).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pltriton
from jaxtyping import Array, ArrayLike, Float, Inexact, Int

from ..numerics._re_log_cosh import re_log_cosh

_LOG2 = math.log(2.0)
_DTYPES = tuple(np.dtype(name) for name in ("float32", "float64", "complex64", "complex128"))
_GPU_BACKENDS = ("gpu", "cuda", "rocm")
# A block's theta lives in registers for the whole loop, next to about five
# temporaries of its size (gathered rows, proposed theta, log cosh): 16 KiB
# keeps all of them within the register file of one streaming multiprocessor.
_THETA_BLOCK_BYTES = 16 * 1024
_MAX_BLOCK_CHAINS = 64
# Each step of a block is a chain of dependent memory accesses and reductions:
# blocks are made smaller until there are this many programs, about four per
# streaming multiprocessor of an H100 or H200 (132), to switch between.
_MIN_PROGRAMS = 512
# Threads per program: enough that theta takes this many 32-bit registers each.
_WORDS_PER_THREAD = 16
_MAX_WARPS = 16


def fused_available(dtype: Any, backend: str | None = None, *, interpret: bool = False) -> bool:
    """Whether [`fused_sweeps`][] applies to parameters of `dtype` on `backend`.

    **Arguments:**

    - `dtype`: the parameters' dtype.
    - `backend`: a JAX backend or lowering platform name (`"gpu"`, `"cuda"`,
      `"rocm"`, `"cpu"`, ...); `None` means `jax.default_backend()`.
    - `interpret`: whether the kernel would run in Pallas' interpret mode,
      which works on any backend (slowly: it is meant for tests).

    **Returns:**

    `True` for float32, float64, complex64 and complex128 parameters on a GPU,
    or on any backend in interpret mode; `False` otherwise.
    """
    try:
        supported = np.dtype(dtype) in _DTYPES
    except TypeError:
        return False
    if backend is None:
        backend = jax.default_backend()
    return supported and (interpret or backend.lower() in _GPU_BACKENDS)


def _log_cosh(x: Array) -> Array:
    z = jnp.abs(x)
    return z + jnp.log1p(jnp.exp(-2 * z)) - _LOG2


def _sweep_kernel(*refs: Any, has_visible: bool, n_hidden: int, sweep_size: int) -> None:
    sites_ref, offset_ref, log_u_ref, kernel_ref, *rest = refs
    visible_ref = rest.pop(0) if has_visible else None
    classes_ref, theta_ref, sum_ref, classes_out, theta_out, sum_out, samples_out, accepted_out = rest
    n_steps = sites_ref.shape[0]
    n_parts, n_sites, n_states = kernel_ref.shape[:3]
    block, n_hidden_pad = theta_ref.shape[1:]
    site_column = lax.broadcasted_iota(jnp.int32, classes_ref.shape, 1)
    live = lax.broadcasted_iota(jnp.int32, (block, n_hidden_pad), 1) < n_hidden

    def step(t, state):
        classes, thetas, hidden_sum, accepted = state
        # Clamping keeps the gathers inside the arrays whatever the caller passes.
        site = jnp.clip(sites_ref[t, :], 0, n_sites - 1)
        at_site = site_column == site[:, None]
        old = jnp.clip(jnp.sum(jnp.where(at_site, classes, 0), axis=1, dtype=jnp.int32), 0, n_states - 1)
        new = jnp.clip((old + offset_ref[t, :]) % n_states, 0, n_states - 1)
        proposed = tuple(
            theta + (kernel_ref[part, site, new, :] - kernel_ref[part, site, old, :])
            for part, theta in enumerate(thetas)
        )
        log_cosh = _log_cosh(*proposed) if n_parts == 1 else re_log_cosh(*proposed)
        # Padding columns hold theta = 0, whose log cosh may round to a tiny non-zero.
        new_sum = jnp.sum(jnp.where(live, log_cosh, 0), axis=1)
        log_ratio = new_sum - hidden_sum
        if visible_ref is not None:
            log_ratio = log_ratio + (visible_ref[site, new] - visible_ref[site, old])
        accept = log_u_ref[t, :] < 2 * log_ratio
        classes = jnp.where(at_site & accept[:, None], new[:, None], classes)
        thetas = tuple(
            jnp.where(accept[:, None], p, theta) for p, theta in zip(proposed, thetas, strict=True)
        )
        hidden_sum = jnp.where(accept, new_sum, hidden_sum)
        return classes, thetas, hidden_sum, accepted + accept.astype(jnp.int32)

    def sweep(k, state):
        state = lax.fori_loop(0, sweep_size, lambda j, s: step(k * sweep_size + j, s), state)
        samples_out[k] = state[0]
        return state

    state = (
        classes_ref[...],
        tuple(theta_ref[part] for part in range(n_parts)),
        sum_ref[...],
        jnp.zeros((block,), jnp.int32),
    )
    n_samples = n_steps // sweep_size
    state = lax.fori_loop(0, n_samples, sweep, state)
    classes, thetas, hidden_sum, accepted = lax.fori_loop(n_samples * sweep_size, n_steps, step, state)
    classes_out[...] = classes
    for part, theta in enumerate(thetas):
        theta_out[part] = theta
    sum_out[...] = hidden_sum
    accepted_out[...] = accepted


def _next_power_of_2(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def _block_chains(n_chains: int, theta_row_bytes: int) -> int:
    fits = max(1, _THETA_BLOCK_BYTES // theta_row_bytes)
    spread = max(1, n_chains // _MIN_PROGRAMS)
    # Largest power of two within all three bounds.
    return 1 << (min(fits, spread, _MAX_BLOCK_CHAINS).bit_length() - 1)


def _check_shape(name: str, value: Array, shape: tuple[int, ...], meaning: str) -> None:
    if value.shape != shape:
        raise ValueError(f"{name}: expected shape {shape} {meaning}, got {value.shape}")


def _check_kind(name: str, value: Array, kind: Any, meaning: str) -> None:
    if not jnp.issubdtype(value.dtype, kind):
        raise TypeError(f"{name}: expected {meaning}, got dtype {value.dtype}")


@functools.partial(jax.jit, static_argnames=("sweep_size", "interpret", "block_chains"))
def fused_sweeps(
    kernel3: Inexact[Array, "sites fps hidden"],
    visible3: Inexact[Array, "sites fps"] | None,
    table: Float[ArrayLike, "states fps"],
    classes: Int[Array, "chains sites"],
    theta: Inexact[Array, "chains hidden"],
    hidden_sum: Inexact[Array, " chains"],
    sites: Int[Array, "steps chains"],
    offsets: Int[Array, "steps chains"],
    log_u: Float[Array, "steps chains"],
    *,
    sweep_size: int,
    interpret: bool = False,
    block_chains: int | None = None,
) -> tuple[
    Int[Array, "chains sites"],
    Inexact[Array, "chains hidden"],
    Float[Array, " chains"],
    Int[Array, "samples chains sites"],
    Int[Array, " chains"],
]:
    r"""Runs `T` Metropolis steps of single-site moves on a batch of chains in one kernel launch.

    For each step `t` and chain `b`: with `s = sites[t, b]`,
    `old = classes[b, s]`, `new = (old + offsets[t, b]) % n_states` and
    `d = table[new] - table[old]`, the proposed theta is
    `theta[b] + d @ kernel3[s]`, `new_sum` the sum of its $\log\cosh$, and the
    move is accepted if `log_u[t, b] < 2 Re(new_sum - hidden_sum[b] + d @ visible3[s])`;
    then `classes[b, s]`, `theta[b]` and `hidden_sum[b]` take the new values.
    After every `sweep_size` steps, `classes` is recorded as a sample.

    The caller draws the random numbers. An offset in `[1, n_states)` gives
    the site one of its *other* states whatever its current one, so moves can
    be drawn in advance (for spins, the offset 1 is a flip). Indices out of
    range are clamped, which keeps the kernel's memory accesses
    in bounds but is a caller's error.

    For complex parameters only the real part of $\log\psi$ enters the
    acceptance: the kernel carries the real and imaginary parts of theta and
    only the real part of the hidden sum, using [`re_log_cosh`][]. The returned
    `hidden_sum` is then that real part; the caller recomputes the complex
    hidden sum from the returned theta (one evaluation per chain).

    **Arguments:**

    - `kernel3`: the dense kernel as `(n_sites, fps, M)`, float32, float64,
      complex64 or complex128.
    - `visible3`: the visible bias as `(n_sites, fps)` in the same precision,
      or `None`.
    - `table`: the real features of each local state, `(n_states, fps)`
      (floating or integer).
    - `classes`: the chains' local-state indices, `(C, n_sites)` integers.
    - `theta`: `features @ W + b` per chain, `(C, M)`, of `kernel3`'s dtype.
    - `hidden_sum`: the sum of $\log\cosh(\theta)$ per chain, `(C,)` (real or complex).
    - `sites`, `offsets`: the proposed moves, `(T, C)` integers.
    - `log_u`: logarithms of uniform draws on (0, 1), `(T, C)` real.
    - `sweep_size`: steps between recorded samples.
    - `interpret`: run in Pallas' interpret mode (any backend; for tests).
    - `block_chains`: chains per program, a power of two; `None` picks the
      largest whose theta fits in 16 KiB, leaving at least 512 programs where
      there are enough chains.

    **Returns:**

    A tuple `(classes, theta, hidden_sum, samples, n_accepted)`: the final
    classes `(C, n_sites)` int32, theta `(C, M)` of `kernel3`'s dtype, the real
    part of the hidden sum `(C,)`, the samples `(T // sweep_size, C, n_sites)`
    int32 and the number of accepted moves per chain `(C,)` int32.
    """
    kernel3, table = jnp.asarray(kernel3), jnp.asarray(table)
    classes, theta, hidden_sum = jnp.asarray(classes), jnp.asarray(theta), jnp.asarray(hidden_sum)
    sites, offsets, log_u = jnp.asarray(sites), jnp.asarray(offsets), jnp.asarray(log_u)
    if kernel3.ndim != 3:
        raise ValueError(f"kernel3: expected shape (n_sites, fps, n_hidden), got {kernel3.shape}")
    if kernel3.dtype not in _DTYPES:
        expected = ", ".join(map(str, _DTYPES))
        raise TypeError(f"kernel3: expected one of the dtypes {expected}, got {kernel3.dtype}")
    n_sites, fps, n_hidden = kernel3.shape
    if table.ndim != 2 or table.shape[1] != fps:
        raise ValueError(f"table: expected shape (n_states, {fps}) (fps from kernel3), got {table.shape}")
    if not (jnp.issubdtype(table.dtype, jnp.floating) or jnp.issubdtype(table.dtype, jnp.integer)):
        raise TypeError(
            f"table: expected real features (a floating or integer dtype), got dtype {table.dtype}"
        )
    if visible3 is not None:
        visible3 = jnp.asarray(visible3)
        _check_shape("visible3", visible3, (n_sites, fps), "(n_sites, fps), as kernel3")
        _check_kind("visible3", visible3, jnp.inexact, "a floating or complex array")
    if classes.ndim != 2 or classes.shape[1] != n_sites:
        raise ValueError(f"classes: expected shape (n_chains, {n_sites}), got {classes.shape}")
    n_chains = classes.shape[0]
    if n_chains == 0:
        raise ValueError("classes: expected at least one chain, got shape (0, ...)")
    _check_kind("classes", classes, jnp.integer, "an integer array")
    _check_shape("theta", theta, (n_chains, n_hidden), "(n_chains, n_hidden)")
    if theta.dtype != kernel3.dtype:
        raise TypeError(f"theta: expected kernel3's dtype {kernel3.dtype}, got {theta.dtype}")
    _check_shape("hidden_sum", hidden_sum, (n_chains,), "(n_chains,)")
    _check_kind("hidden_sum", hidden_sum, jnp.inexact, "a floating or complex array")
    if sites.ndim != 2 or sites.shape[1] != n_chains:
        raise ValueError(f"sites: expected shape (n_steps, {n_chains}), got {sites.shape}")
    n_steps = sites.shape[0]
    _check_shape("offsets", offsets, sites.shape, "(n_steps, n_chains), as sites")
    _check_shape("log_u", log_u, sites.shape, "(n_steps, n_chains), as sites")
    _check_kind("sites", sites, jnp.integer, "an integer array")
    _check_kind("offsets", offsets, jnp.integer, "an integer array")
    _check_kind("log_u", log_u, jnp.floating, "a real floating array")
    if isinstance(sweep_size, bool) or not isinstance(sweep_size, int):
        raise TypeError(f"sweep_size: expected a positive int, got {sweep_size!r}")
    if sweep_size <= 0:
        raise ValueError(f"sweep_size: expected a positive int, got {sweep_size}")
    if block_chains is not None and (
        isinstance(block_chains, bool)
        or not isinstance(block_chains, int)
        or block_chains <= 0
        or block_chains & (block_chains - 1)
    ):
        raise ValueError(f"block_chains: expected None or a positive power of two, got {block_chains!r}")

    real = jnp.finfo(kernel3.dtype).dtype
    complex_ = jnp.issubdtype(kernel3.dtype, jnp.complexfloating)
    classes = classes.astype(jnp.int32)
    hidden_sum = jnp.real(hidden_sum).astype(real)
    n_samples = n_steps // sweep_size
    if n_steps == 0:
        samples = jnp.zeros((0, n_chains, n_sites), jnp.int32)
        return classes, theta, hidden_sum, samples, jnp.zeros((n_chains,), jnp.int32)

    def parts(x: Array) -> Array:
        return jnp.stack([x.real, x.imag]) if complex_ else x[None].astype(real)

    table = table.astype(real)
    # The features of every state folded into the kernel; elementwise, so that
    # no matrix unit rounds the products (and 0/+-1 tables give exact rows).
    state_kernel = parts((table[None, :, :, None] * kernel3[:, None, :, :]).sum(axis=2))
    n_parts = state_kernel.shape[0]
    hidden_pad, sites_pad = _next_power_of_2(n_hidden), _next_power_of_2(n_sites)
    if block_chains is None:
        block_chains = _block_chains(n_chains, n_parts * hidden_pad * real.itemsize)
    chains_pad = -(-n_chains // block_chains) * block_chains

    # Triton's tensors have power-of-two sizes: hidden units and sites are padded.
    state_kernel = jnp.pad(state_kernel, ((0, 0), (0, 0), (0, 0), (0, hidden_pad - n_hidden)))
    steps_in = [
        jnp.pad(x.astype(dtype), ((0, 0), (0, chains_pad - n_chains)))
        for x, dtype in ((sites, jnp.int32), (offsets, jnp.int32), (log_u, real))
    ]
    model_in = [state_kernel]
    if visible3 is not None:
        model_in.append((table[None] * jnp.real(visible3)[:, None, :].astype(real)).sum(axis=2))
    chains_in = [
        jnp.pad(classes, ((0, chains_pad - n_chains), (0, sites_pad - n_sites))),
        jnp.pad(parts(theta), ((0, 0), (0, chains_pad - n_chains), (0, hidden_pad - n_hidden))),
        jnp.pad(hidden_sum, (0, chains_pad - n_chains)),
    ]

    def whole(x: Array) -> pl.BlockSpec:
        return pl.BlockSpec(x.shape, lambda i: (0,) * x.ndim)

    chain_specs = [
        pl.BlockSpec((block_chains, sites_pad), lambda i: (i, 0)),
        pl.BlockSpec((n_parts, block_chains, hidden_pad), lambda i: (0, i, 0)),
        pl.BlockSpec((block_chains,), lambda i: (i,)),
    ]
    out_shape = [
        jax.ShapeDtypeStruct((chains_pad, sites_pad), jnp.int32),
        jax.ShapeDtypeStruct((n_parts, chains_pad, hidden_pad), real),
        jax.ShapeDtypeStruct((chains_pad,), real),
        # Pallas needs a non-empty block even when no sweep completes.
        jax.ShapeDtypeStruct((max(n_samples, 1), chains_pad, sites_pad), jnp.int32),
        jax.ShapeDtypeStruct((chains_pad,), jnp.int32),
    ]
    out_specs = [
        *chain_specs,
        pl.BlockSpec((max(n_samples, 1), block_chains, sites_pad), lambda i: (0, i, 0)),
        pl.BlockSpec((block_chains,), lambda i: (i,)),
    ]
    words = n_parts * block_chains * hidden_pad * real.itemsize // 4
    num_warps = min(_MAX_WARPS, _next_power_of_2(max(1, words // (32 * _WORDS_PER_THREAD))))
    kernel = functools.partial(
        _sweep_kernel,
        has_visible=visible3 is not None,
        n_hidden=n_hidden,
        sweep_size=sweep_size,
    )
    out = pl.pallas_call(
        kernel,
        out_shape=out_shape,
        grid=(chains_pad // block_chains,),
        in_specs=[pl.BlockSpec((n_steps, block_chains), lambda i: (0, i))] * 3
        + [whole(x) for x in model_in]
        + chain_specs,
        out_specs=out_specs,
        compiler_params=pltriton.CompilerParams(num_warps=num_warps, num_stages=1),
        interpret=interpret,
    )(*steps_in, *model_in, *chains_in)
    classes, theta_parts, hidden_sum, samples, n_accepted = out
    theta_parts = theta_parts[:, :n_chains, :n_hidden]
    theta = lax.complex(theta_parts[0], theta_parts[1]) if complex_ else theta_parts[0]
    return (
        classes[:n_chains, :n_sites],
        theta.astype(kernel3.dtype),
        hidden_sum[:n_chains],
        samples[:n_samples, :n_chains, :n_sites],
        n_accepted[:n_chains],
    )
