"""What every NetKet-layout adapter shares: the error type and the per-path checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array


class Loading(NamedTuple):
    """What building a model from variables takes besides the arrays and the layout keywords."""

    alpha: float | int | None
    """`None` infers it from the kernel's shape."""
    flags: tuple[bool | None, bool | None]
    """`(use_hidden_bias, use_visible_bias)`; `None` takes a bias when it is present."""
    activation: Callable[[Array], Array]
    precision: Any

    def settings(self) -> dict[str, Any]:
        """The `from_arrays` keywords `alpha`, `activation` and `precision`."""
        return {"alpha": self.alpha, "activation": self.activation, "precision": self.precision}


VariableDict = dict[str, Any]
"""Nested plain dicts `{collection: {name: array or subtree}}`, as Flax's `init` returns."""


class VariablesError(ValueError):
    """A variables dictionary does not have the layout of the model it should describe.

    The message lists every offending path, one per line; `problems` holds them.
    """

    def __init__(self, what: str, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(
            f"{what} do not match the model; fix the paths below ({len(self.problems)} problem(s)):\n{lines}"
        )


def describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return f"a mapping with keys {sorted(map(str, value))}"
    return f"{type(value).__name__} {value!r}" if np.isscalar(value) else type(value).__name__


def key_problems(
    prefix: str,
    mapping: Mapping[str, Any],
    required: set[str],
    optional: Mapping[str, tuple[str, bool | None]],
) -> list[str]:
    """Missing and unexpected keys. `optional` maps a bias to its flag and setting:
    `None` allows it either way, a bool requires it present or absent."""
    expected = required | {key for key, (_, setting) in optional.items() if setting}
    allowed = expected | {key for key, (_, setting) in optional.items() if setting is None}
    problems = []
    for key in sorted(expected - set(mapping)):
        hint = f" (the model has {optional[key][0]}=True)" if key in optional else ""
        problems.append(f"{prefix}/{key}: missing{hint}")
    for key in sorted(set(map(str, mapping)) - allowed):
        hint = f" (the model has {optional[key][0]}=False)" if key in optional else ""
        problems.append(f"{prefix}/{key}: unexpected key{hint}")
    return problems


def layout_arrays(params: Mapping[str, Any]) -> tuple[Array, Array | None, Array | None]:
    """`(kernel, hidden bias, visible bias)` at NetKet's `Dense/kernel`, `Dense/bias`, `visible_bias`."""
    dense = params["Dense"]
    return (
        jnp.asarray(dense["kernel"]),
        jnp.asarray(dense["bias"]) if "bias" in dense else None,
        jnp.asarray(params["visible_bias"]) if "visible_bias" in params else None,
    )


def layout_tree(kernel: Any, hidden_bias: Any, visible_bias: Any, *, bias_first: bool) -> dict[str, Any]:
    """NetKet's `{"Dense": {"kernel", "bias"}, "visible_bias"}` without the disabled biases.

    `bias_first`: NetKet's symmetric models create the hidden bias before the
    kernel, and Flax keeps creation order.
    """
    pairs = (
        (("bias", hidden_bias), ("kernel", kernel))
        if bias_first
        else (("kernel", kernel), ("bias", hidden_bias))
    )
    params: dict[str, Any] = {"Dense": {name: value for name, value in pairs if value is not None}}
    if visible_bias is not None:
        params["visible_bias"] = visible_bias
    return params


def shape_problems(
    prefix: str, shapes: Mapping[str, tuple[int, ...]], expected: Mapping[str, tuple[int, str]]
) -> list[str]:
    """The leaves of `shapes` that are not 1-D of the `expected` `(size, label)`."""
    problems = []
    for name, (size, label) in expected.items():
        shape = shapes.get(name)
        if shape is not None and shape != (size,):
            problems.append(f"{prefix}/{name}: expected shape {(size,)} ({label}), got shape {shape}")
    return problems


def layout_key_problems(
    prefix: str, params: Any, flags: tuple[bool | None, bool | None]
) -> tuple[Mapping[str, Any] | None, list[str]]:
    """The `Dense` mapping of NetKet's layout (empty when not a mapping) and the key problems.

    `None` for the mapping when `params` itself is not one. `flags` are
    `(use_hidden_bias, use_visible_bias)`, as for `key_problems`.
    """
    if not isinstance(params, Mapping):
        return None, [
            f"{prefix}: expected a mapping with keys ['Dense', 'visible_bias'], got {describe(params)}"
        ]
    use_hidden_bias, use_visible_bias = flags
    problems = key_problems(
        prefix, params, {"Dense"}, {"visible_bias": ("use_visible_bias", use_visible_bias)}
    )
    dense = params.get("Dense")
    if "Dense" in params and not isinstance(dense, Mapping):
        problems.append(
            f"{prefix}/Dense: expected a mapping with keys ['bias', 'kernel'], got {describe(dense)}"
        )
    if not isinstance(dense, Mapping):
        return {}, problems
    optional = {"bias": ("use_hidden_bias", use_hidden_bias)}
    return dense, problems + key_problems(f"{prefix}/Dense", dense, {"kernel"}, optional)


def leaf_problems(
    prefix: str, leaves: Mapping[str, tuple[Any, int, str]]
) -> tuple[dict[str, tuple[int, ...]], list[str]]:
    """Shapes of the leaves that are arrays of the right rank and the problems of the others.

    `leaves` maps a name to `(value or None, rank, layout)`; absent leaves are skipped.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    problems: list[str] = []
    for name, (value, rank, layout) in leaves.items():
        if value is None:
            continue
        path = f"{prefix}/{name}"
        shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
        if shape is None or dtype is None:
            problems.append(f"{path}: expected an array, got {describe(value)}")
            continue
        if len(shape) != rank:
            problems.append(f"{path}: expected {rank}-D {layout}, got shape {tuple(shape)}")
            continue
        shapes[name] = tuple(shape)
        problems += dtype_problems(path, dtype)
    return shapes, problems


def dtype_problems(path: str, dtype: Any) -> list[str]:
    try:
        dtype = jnp.dtype(dtype)
    except TypeError:
        return [f"{path}: expected a floating or complex array, got dtype {dtype}"]
    if not jnp.issubdtype(dtype, jnp.inexact):
        return [f"{path}: expected a floating or complex array, got dtype {dtype}"]
    if jax.dtypes.canonicalize_dtype(dtype) != dtype:
        # jnp.asarray would quietly round these to 32 bits.
        return [
            f"{path}: dtype {dtype} needs 64-bit mode; enable it with "
            "jax.config.update('jax_enable_x64', True) before loading"
        ]
    return []
