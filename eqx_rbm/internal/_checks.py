"""Argument validation shared by the modules.

Every check raises at construction or trace time with a message naming the
argument, what was expected and what was received.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, PartitionSpec


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a positive int, got {value!r} ({type(value).__name__})")
    if value <= 0:
        raise ValueError(f"{name}: expected a positive int, got {value}")
    return int(value)


def check_alpha(alpha: Any) -> float | int:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"alpha: expected a non-negative real number, got {alpha!r} ({type(alpha).__name__})")
    if not math.isfinite(float(alpha)) or alpha < 0:
        raise ValueError(f"alpha: expected a finite non-negative real number, got {alpha}")
    # Plain Python numbers keep the static configuration hashable and printable.
    return int(alpha) if isinstance(alpha, numbers.Integral) else float(alpha)


def n_hidden_for(alpha: float | int, n_visible: int) -> int:
    # NetKet's rule, kept verbatim so that sizes agree for fractional alpha.
    return int(alpha * n_visible)


def check_param_dtype(param_dtype: Any) -> np.dtype:
    """Returns the dtype, refusing integer dtypes and 64-bit dtypes without x64."""
    if param_dtype is None:  # jnp.dtype(None) would quietly mean float64
        raise TypeError("param_dtype: expected a floating or complex dtype, got None")
    try:
        dtype = jnp.dtype(param_dtype)
    except TypeError as err:
        raise TypeError(f"param_dtype: expected a floating or complex dtype, got {param_dtype!r}") from err
    if not jnp.issubdtype(dtype, jnp.inexact):
        raise TypeError(f"param_dtype: expected a floating or complex dtype, got {dtype}")
    check_dtype_available("param_dtype", dtype)
    return dtype


def feature_dtype_for(param_dtype: Any) -> np.dtype:
    """One-hot features in the parameters' real precision: exact 0/1 values that
    never upcast a float32 model to float64."""
    return jnp.finfo(param_dtype).dtype


def check_feature_dtype(dtype: Any) -> np.dtype:
    """Returns the dtype of one-hot features: any integer, floating or complex dtype."""
    try:
        result = jnp.dtype(dtype)
    except TypeError as err:
        raise TypeError(f"dtype: expected a numeric dtype for the features, got {dtype!r}") from err
    if not _is_numeric(result, allow_complex=True):
        raise TypeError(f"dtype: expected a numeric dtype for the features, got {result}")
    check_dtype_available("dtype", result)
    return result


def _is_numeric(dtype: Any, *, allow_complex: bool) -> bool:
    # jnp.issubdtype, unlike numpy's dtype kinds, knows bfloat16 and friends.
    kinds = (jnp.integer, jnp.floating) + ((jnp.complexfloating,) if allow_complex else ())
    return any(jnp.issubdtype(dtype, kind) for kind in kinds)


def check_dtype_available(name: str, dtype: np.dtype) -> None:
    # With x64 off JAX would quietly store float64 parameters as float32.
    if jax.dtypes.canonicalize_dtype(dtype) != dtype:
        raise ValueError(
            f"{name}: {dtype} needs 64-bit mode, which is disabled. Enable it with "
            "jax.config.update('jax_enable_x64', True) (or JAX_ENABLE_X64=1) before "
            f"creating arrays, or pass {name}=jnp.float32 / jnp.complex64."
        )


def check_last_dim(name: str, shape: tuple[int, ...], expected: int, what: str) -> None:
    if len(shape) == 0 or shape[-1] != expected:
        raise ValueError(
            f"{name}: expected shape (*batch, {what}) with {what}={expected}, got shape {tuple(shape)}"
        )


def check_numeric(name: str, x: Any, *, allow_complex: bool) -> None:
    dtype = getattr(x, "dtype", None)
    if dtype is None or not _is_numeric(dtype, allow_complex=allow_complex):
        kind = "an integer, floating or complex array" if allow_complex else "an integer or floating array"
        got = f"dtype {dtype}" if dtype is not None else type(x).__name__
        raise TypeError(f"{name}: expected {kind}, got {got}")


def guarded_zero(dtype: Any, invalid: Any, message: str) -> jax.Array:
    """A scalar zero that raises `message` at run time where `invalid` is true.

    Callers add it to their results. Guarding the results themselves would make
    `error_if` gather batch-sharded arrays onto every device.
    """
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or mesh.size == 1 or any(t != AxisType.Auto for t in mesh.axis_types):
        return eqx.error_if(jnp.zeros((), dtype), invalid, message)
    # On a multi-device auto mesh a callback runs on device 0 alone: when it raises,
    # the other devices wait for its result until XLA aborts the process. Run per
    # device instead, so that every device raises together.
    return jax.shard_map(
        lambda bad: eqx.error_if(jnp.zeros((), dtype), bad, message),
        mesh=mesh,
        in_specs=PartitionSpec(),
        out_specs=PartitionSpec(),
        check_vma=False,
    )(invalid)
