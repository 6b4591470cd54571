"""NetKet-layout variable dictionaries to and from the Equinox models, without Flax."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._checks import check_alpha, check_positive_int, n_hidden_for
from ._log_cosh import log_cosh
from ._model import AbstractRBM
from ._multival import RBMMultiVal
from ._rbm import RBM

# Where each model's RBM parameters sit below params, as in NetKet.
_NESTING: dict[type, tuple[str, ...]] = {RBM: (), RBMMultiVal: ("RBM",)}

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


def to_variables(model: AbstractRBM) -> VariableDict:
    """The Flax-style variables of an Equinox model, in NetKet's layout.

    **Arguments:**

    - `model`: an [`eqx_rbm.RBM`][] or [`eqx_rbm.RBMMultiVal`][].

    **Returns:**

    Plain nested dicts holding the model's own arrays (no copies):
    `{"params": {"Dense": {"kernel": ..., "bias": ...}, "visible_bias": ...}}` for
    an RBM, without `bias` / `visible_bias` when that bias is off, and
    `{"params": {"RBM": {...}}}` for an RBMMultiVal. This is the tree that
    `netket.models.RBM(...).init` returns, key order included.
    """
    nesting = _NESTING.get(type(model))
    if nesting is None:
        raise TypeError(
            "model: expected an eqx_rbm.RBM or eqx_rbm.RBMMultiVal, got "
            f"{type(model).__module__}.{type(model).__qualname__}"
        )
    params = _rbm_params(model)
    for name in reversed(nesting):
        params = {name: params}
    return {"params": params}


def _rbm_params(rbm: AbstractRBM) -> dict[str, Any]:
    dense: dict[str, Any] = {"kernel": rbm.kernel}
    if rbm.hidden_bias is not None:
        dense["bias"] = rbm.hidden_bias
    params: dict[str, Any] = {"Dense": dense}
    if rbm.visible_bias is not None:
        params["visible_bias"] = rbm.visible_bias
    return params


def from_variables(
    variables: Mapping[str, Any],
    *,
    n_classes: int | None = None,
    local_states: Sequence[float] | None = None,
    alpha: float | int | None = None,
    use_hidden_bias: bool | None = None,
    use_visible_bias: bool | None = None,
    activation: Callable[[Array], Array] = log_cosh,
    precision: Any = None,
) -> AbstractRBM:
    """The Equinox model held by NetKet-layout variables; needs no Flax.

    The layout says which model it is: `{"params": {"RBM": ...}}` is an
    RBMMultiVal, `{"params": {"Dense": ..., "visible_bias": ...}}` an RBM.
    Sizes and biases come from the arrays; what no array holds is passed in.

    **Arguments:**

    - `variables`: `{"params": ...}` as plain dicts (from `numpy`, msgpack,
      orbax, ...) or any mapping (a `flax.core.FrozenDict`, NetKet's
      `MCState.variables`). The state dict of a serialized NetKet `MCState`
      (a mapping with a `"variables"` entry and no `"params"`) is accepted too.
    - `n_classes`: local states per site; required for an RBMMultiVal, refused
      for an RBM.
    - `local_states`: the values a site takes (RBMMultiVal only), default
      `0, ..., n_classes - 1`.
    - `alpha`: hidden-unit density. `None` infers it from the kernel's shape
      (`n_hidden / n_visible`, an int when it divides); a value is checked
      against `n_hidden = int(alpha * n_visible)`.
    - `use_hidden_bias`, `use_visible_bias`: `None` takes each bias when it is
      present; a bool requires it present (`True`) or absent (`False`).
    - `activation`, `precision`: as for [`eqx_rbm.RBM`][].

    **Returns:**

    An [`eqx_rbm.RBM`][] or [`eqx_rbm.RBMMultiVal`][] holding the given arrays
    (JAX arrays as they are, NumPy arrays with the same bits). Parameters may
    have any floating or complex dtype, each its own; the model promotes them
    as Flax's `Dense` does.

    **Raises:**

    [`eqx_rbm.VariablesError`][] (a `ValueError`) listing every path that is
    missing, unexpected, or of the wrong rank, shape or dtype.
    """
    params = _params_of(variables)
    multival = n_classes is not None or (isinstance(params, Mapping) and "RBM" in params)
    if multival and n_classes is None:
        raise TypeError(
            "n_classes: required for RBMMultiVal variables (they hold params/RBM); "
            "pass n_classes=<number of local states per site>"
        )
    if not multival and local_states is not None:
        raise TypeError(
            f"local_states: only for RBMMultiVal variables; pass n_classes too, got {local_states!r}"
        )
    return build_model(
        variables,
        multival=multival,
        n_classes=n_classes,
        local_states=local_states,
        alpha=alpha,
        use_hidden_bias=use_hidden_bias,
        use_visible_bias=use_visible_bias,
        activation=activation,
        precision=precision,
    )


def _params_of(variables: Any) -> Any:
    if not isinstance(variables, Mapping):
        raise TypeError(f"variables: expected a mapping {{'params': ...}}, got {type(variables).__name__}")
    if "params" not in variables and isinstance(variables.get("variables"), Mapping):
        variables = variables["variables"]
    return variables.get("params")


def build_model(
    variables: Mapping[str, Any],
    *,
    multival: bool,
    n_classes: int | None,
    local_states: Sequence[float] | None,
    alpha: float | int | None,
    use_hidden_bias: bool | None,
    use_visible_bias: bool | None,
    activation: Callable[[Array], Array],
    precision: Any,
) -> AbstractRBM:
    """`from_variables` for a model kind decided by the caller (a twin knows its own)."""
    if "params" not in variables and isinstance(variables.get("variables"), Mapping):
        variables = variables["variables"]
    if alpha is not None:
        alpha = check_alpha(alpha)
    if not callable(activation):
        raise TypeError(f"activation: expected a callable, got {activation!r}")
    if multival:
        n_classes = check_positive_int("n_classes", n_classes)
    problems = [f"{key}: unexpected collection" for key in variables if key != "params"]
    if "params" not in variables:
        problems.insert(0, "params: missing (expected the 'params' collection)")
        raise VariablesError("variables", problems)
    params = variables["params"]
    flags = (use_hidden_bias, use_visible_bias)
    if multival:
        if not isinstance(params, Mapping):
            problems.append(f"params: expected a mapping with key ['RBM'], got {_describe(params)}")
        else:
            problems += _key_problems("params", params, {"RBM"}, {})
            if "RBM" in params:
                problems += _rbm_problems(params["RBM"], "params/RBM", n_classes, alpha, flags)
    else:
        problems += _rbm_problems(params, "params", None, alpha, flags)
    if problems:
        raise VariablesError("variables", problems)
    arrays = _arrays(params["RBM"] if multival else params)
    settings = {"alpha": alpha, "activation": activation, "precision": precision}
    if not multival:
        return RBM.from_arrays(*arrays, **settings)
    assert n_classes is not None
    return RBMMultiVal.from_arrays(*arrays, n_classes=n_classes, local_states=local_states, **settings)


def _arrays(params: Mapping[str, Any]) -> tuple[Array, Array | None, Array | None]:
    dense = params["Dense"]
    return (
        jnp.asarray(dense["kernel"]),
        jnp.asarray(dense["bias"]) if "bias" in dense else None,
        jnp.asarray(params["visible_bias"]) if "visible_bias" in params else None,
    )


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return f"a mapping with keys {sorted(map(str, value))}"
    return f"{type(value).__name__} {value!r}" if np.isscalar(value) else type(value).__name__


def _key_problems(
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


def _rbm_problems(
    params: Any,
    prefix: str,
    n_classes: int | None,
    alpha: float | int | None,
    flags: tuple[bool | None, bool | None],
) -> list[str]:
    """Every problem of `params` as an RBM's, as `path: message` lines."""
    if not isinstance(params, Mapping):
        return [f"{prefix}: expected a mapping with keys ['Dense', 'visible_bias'], got {_describe(params)}"]
    use_hidden_bias, use_visible_bias = flags
    problems = _key_problems(
        prefix, params, {"Dense"}, {"visible_bias": ("use_visible_bias", use_visible_bias)}
    )
    dense = params.get("Dense")
    if "Dense" in params and not isinstance(dense, Mapping):
        problems.append(
            f"{prefix}/Dense: expected a mapping with keys ['bias', 'kernel'], got {_describe(dense)}"
        )
    if not isinstance(dense, Mapping):
        dense = {}
    else:
        optional = {"bias": ("use_hidden_bias", use_hidden_bias)}
        problems += _key_problems(f"{prefix}/Dense", dense, {"kernel"}, optional)
    leaves = {
        "Dense/kernel": (dense.get("kernel"), 2, "(n_visible, n_hidden)"),
        "Dense/bias": (dense.get("bias"), 1, "(n_hidden,)"),
        "visible_bias": (params.get("visible_bias"), 1, "(n_visible,)"),
    }
    shapes: dict[str, tuple[int, ...]] = {}
    for name, (value, rank, layout) in leaves.items():
        if value is None:
            continue
        path = f"{prefix}/{name}"
        shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
        if shape is None or dtype is None:
            problems.append(f"{path}: expected an array, got {_describe(value)}")
            continue
        if len(shape) != rank:
            problems.append(f"{path}: expected {rank}-D {layout}, got shape {tuple(shape)}")
            continue
        shapes[name] = tuple(shape)
        problems += _dtype_problems(path, dtype)
    kernel = shapes.get("Dense/kernel")
    if kernel is None:
        return problems
    n_visible, n_hidden = kernel
    if n_classes is not None and n_visible % n_classes:
        problems.append(
            f"{prefix}/Dense/kernel: expected n_visible = n_sites * n_classes, a multiple of "
            f"n_classes={n_classes}, got shape {kernel}"
        )
    if n_visible == 0:
        problems.append(f"{prefix}/Dense/kernel: expected n_visible > 0, got shape {kernel}")
    elif alpha is not None and n_hidden != n_hidden_for(check_alpha(alpha), n_visible):
        problems.append(
            f"{prefix}/Dense/kernel: expected shape {(n_visible, n_hidden_for(alpha, n_visible))} "
            f"(n_hidden = int(alpha * n_visible) with alpha={alpha}), got shape {kernel}"
        )
    for name, expected, what in (
        ("Dense/bias", n_hidden, "n_hidden"),
        ("visible_bias", n_visible, "n_visible"),
    ):
        shape = shapes.get(name)
        if shape is not None and shape != (expected,):
            problems.append(f"{prefix}/{name}: expected shape {(expected,)} ({what},), got shape {shape}")
    return problems


def _dtype_problems(path: str, dtype: Any) -> list[str]:
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
