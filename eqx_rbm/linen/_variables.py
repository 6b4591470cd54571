"""Conversion between Equinox models and NetKet-layout variable dictionaries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Inexact

from .._checks import check_alpha, check_param_dtype, feature_dtype_for, n_hidden_for
from .._multival import RBMMultiVal as EqxRBMMultiVal
from .._one_hot import OneHot
from .._rbm import RBM as EqxRBM

if TYPE_CHECKING:
    from ._twins import RBM, RBMMultiVal

VariableDict = dict[str, Any]
"""Nested plain dicts `{collection: {name: array or subtree}}`, as Flax's `init` returns."""


class VariablesError(ValueError):
    """A variables dictionary does not match the twin it is used with.

    The message lists every offending path, one per line.
    """

    def __init__(self, what: str, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{what} do not match the module ({len(self.problems)} problem(s)):\n{lines}")


def to_variables(model: EqxRBM | EqxRBMMultiVal) -> VariableDict:
    """The Flax-style variables of an Equinox model, in NetKet's layout.

    **Arguments:**

    - `model`: an [`eqx_rbm.RBM`][] or [`eqx_rbm.RBMMultiVal`][].

    **Returns:**

    Plain nested dicts holding the model's own arrays (no copies):
    `{"params": {"Dense": {"kernel": ..., "bias": ...}, "visible_bias": ...}}` for
    an RBM, without `bias` / `visible_bias` when that bias is off, and
    `{"params": {"RBM": {...}}}` for an RBMMultiVal. This is exactly the tree
    that `netket.models.RBM(...).init` returns, key order included.
    """
    if isinstance(model, EqxRBMMultiVal):
        return {"params": {"RBM": _rbm_params(model.rbm)}}
    if isinstance(model, EqxRBM):
        return {"params": _rbm_params(model)}
    raise TypeError(
        f"model: expected an eqx_rbm.RBM or eqx_rbm.RBMMultiVal, got {type(model).__module__}."
        f"{type(model).__qualname__}"
    )


def _rbm_params(rbm: EqxRBM) -> dict[str, Any]:
    dense: dict[str, Any] = {"kernel": rbm.kernel}
    if rbm.hidden_bias is not None:
        dense["bias"] = rbm.hidden_bias
    params: dict[str, Any] = {"Dense": dense}
    if rbm.visible_bias is not None:
        params["visible_bias"] = rbm.visible_bias
    return params


def from_variables(module: RBM | RBMMultiVal, variables: Mapping[str, Any]) -> EqxRBM | EqxRBMMultiVal:
    """The Equinox model described by a twin and a variables dictionary.

    **Arguments:**

    - `module`: an [`eqx_rbm.linen.RBM`][] or [`eqx_rbm.linen.RBMMultiVal`][]
      (bound or not). It carries what no array holds: `activation`,
      `precision`, `alpha`, and for RBMMultiVal `n_classes` and `local_states`.
    - `variables`: `{"params": ...}` in NetKet's layout, as a plain dict, a
      `flax.core.FrozenDict`, `MCState.variables`, or the result of
      `flax.serialization.msgpack_restore` on serialized variables. The state
      dict of a serialized NetKet `MCState` (a mapping with a `"variables"`
      entry and no `"params"`) is accepted too; its `"variables"` are used.

    **Returns:**

    An [`eqx_rbm.RBM`][] or [`eqx_rbm.RBMMultiVal`][] holding the given arrays
    (NumPy arrays become JAX arrays with the same bits).

    **Raises:**

    `VariablesError` (a `ValueError`) listing every path that is missing,
    unexpected, or of the wrong rank, shape or dtype for the module's flags.
    """
    from ._twins import RBMMultiVal, is_twin

    if not is_twin(module):
        raise TypeError(f"module: expected an eqx_rbm.linen.RBM or eqx_rbm.linen.RBMMultiVal, got {module!r}")
    if not isinstance(variables, Mapping):
        raise TypeError(f"variables: expected a mapping {{'params': ...}}, got {type(variables).__name__}")
    if "params" not in variables and isinstance(variables.get("variables"), Mapping):
        variables = variables["variables"]
    problems = [f"{key}: unexpected collection" for key in variables if key != "params"]
    if "params" not in variables:
        problems.insert(0, "params: missing (expected the 'params' collection)")
        raise VariablesError("variables", problems)
    params = variables["params"]
    if isinstance(module, RBMMultiVal):
        problems += check_multival_params(module, params, "params")
    else:
        problems += check_rbm_params(module, params, "params", n_classes=None)
    if problems:
        raise VariablesError("variables", problems)
    return build_model(module, params)


def build_model(module: Any, params: Mapping[str, Any]) -> EqxRBM | EqxRBMMultiVal:
    """Assembles the Equinox model from already validated `params`."""
    from ._twins import RBMMultiVal

    if isinstance(module, RBMMultiVal):
        rbm = _assemble_rbm(module, params["RBM"])
        one_hot = OneHot(
            module.n_classes,
            local_states=module.local_states,
            dtype=feature_dtype_for(module.param_dtype),
        )
        model = object.__new__(EqxRBMMultiVal)
        object.__setattr__(model, "one_hot", one_hot)
        object.__setattr__(model, "rbm", rbm)
        return model
    return _assemble_rbm(module, params)


def _assemble_rbm(module: Any, params: Mapping[str, Any]) -> EqxRBM:
    # Bypassing __init__ avoids drawing throw-away random parameters on every
    # apply; the twin has already validated everything __init__ would check.
    dense = params["Dense"]
    fields = {
        "kernel": _as_jax(dense["kernel"]),
        "hidden_bias": _as_jax(dense["bias"]) if "bias" in dense else None,
        "visible_bias": _as_jax(params["visible_bias"]) if "visible_bias" in params else None,
        "activation": module.activation,
        "precision": module.precision,
        "_alpha": check_alpha(module.alpha),
    }
    model = object.__new__(EqxRBM)
    for name, value in fields.items():
        object.__setattr__(model, name, value)
    return model


def _as_jax(value: Any) -> Inexact[Array, "*shape"]:
    # jnp.asarray keeps JAX arrays (and tracers) as they are and copies NumPy
    # arrays bit for bit; the dtype was checked against param_dtype before.
    return jnp.asarray(value)


def _shape_of(value: Any) -> tuple[int, ...] | None:
    shape = getattr(value, "shape", None)
    if shape is None or getattr(value, "dtype", None) is None:
        return None
    return tuple(shape)


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return f"a mapping with keys {sorted(map(str, value))}"
    return f"{type(value).__name__} {value!r}" if np.isscalar(value) else type(value).__name__


def check_rbm_params(module: Any, params: Any, prefix: str, *, n_classes: int | None) -> list[str]:
    """Every problem of `params` against an RBM with the module's flags, as `path: message` lines."""
    dtype = check_param_dtype(module.param_dtype)
    problems: list[str] = []
    if not isinstance(params, Mapping):
        return [f"{prefix}: expected a mapping with keys ['Dense', 'visible_bias'], got {_describe(params)}"]
    expected_top = {"Dense"} | ({"visible_bias"} if module.use_visible_bias else set())
    expected_dense = {"kernel"} | ({"bias"} if module.use_hidden_bias else set())
    problems += _key_problems(prefix, params, expected_top)
    dense = params.get("Dense")
    if "Dense" in params and not isinstance(dense, Mapping):
        problems.append(
            f"{prefix}/Dense: expected a mapping with keys {sorted(expected_dense)}, got {_describe(dense)}"
        )
        dense = None
    elif isinstance(dense, Mapping):
        problems += _key_problems(f"{prefix}/Dense", dense, expected_dense)
    else:
        dense = None

    leaves = {
        "Dense/kernel": (dense or {}).get("kernel"),
        "Dense/bias": (dense or {}).get("bias") if module.use_hidden_bias else None,
        "visible_bias": params.get("visible_bias") if module.use_visible_bias else None,
    }
    ranks = {
        "Dense/kernel": (2, "(n_visible, n_hidden)"),
        "Dense/bias": (1, "(n_hidden,)"),
        "visible_bias": (1, "(n_visible,)"),
    }
    shapes: dict[str, tuple[int, ...]] = {}
    for name, value in leaves.items():
        if value is None:
            continue
        path = f"{prefix}/{name}"
        shape = _shape_of(value)
        if shape is None:
            problems.append(f"{path}: expected an array, got {_describe(value)}")
            continue
        rank, layout = ranks[name]
        if len(shape) != rank:
            problems.append(f"{path}: expected {rank}-D {layout}, got shape {shape}")
            continue
        shapes[name] = shape
        got = jnp.dtype(value.dtype)
        if got != dtype:
            problems.append(f"{path}: expected dtype {dtype} (param_dtype), got {got}")

    kernel = shapes.get("Dense/kernel")
    if kernel is not None:
        n_visible, n_hidden = kernel
        if n_classes is not None and n_visible % n_classes:
            problems.append(
                f"{prefix}/Dense/kernel: expected n_visible = n_sites * n_classes, a multiple of "
                f"n_classes={n_classes}, got shape {kernel}"
            )
        expected_hidden = n_hidden_for(module.alpha, n_visible)
        if n_hidden != expected_hidden:
            problems.append(
                f"{prefix}/Dense/kernel: expected shape {(n_visible, expected_hidden)} "
                f"(n_hidden = int(alpha * n_visible) with alpha={module.alpha}), got shape {kernel}"
            )
        bias = shapes.get("Dense/bias")
        if bias is not None and bias != (n_hidden,):
            problems.append(
                f"{prefix}/Dense/bias: expected shape {(n_hidden,)} (n_hidden,), got shape {bias}"
            )
        visible = shapes.get("visible_bias")
        if visible is not None and visible != (n_visible,):
            problems.append(
                f"{prefix}/visible_bias: expected shape {(n_visible,)} (n_visible,), got shape {visible}"
            )
    return problems


def check_multival_params(module: Any, params: Any, prefix: str) -> list[str]:
    """Every problem of `params` against an RBMMultiVal with the module's flags."""
    if not isinstance(params, Mapping):
        return [f"{prefix}: expected a mapping with key ['RBM'], got {_describe(params)}"]
    problems = _key_problems(prefix, params, {"RBM"})
    if "RBM" in params:
        problems += check_rbm_params(module, params["RBM"], f"{prefix}/RBM", n_classes=module.n_classes)
    return problems


def _key_problems(prefix: str, mapping: Mapping[str, Any], expected: set[str]) -> list[str]:
    problems = []
    for key in sorted(expected - set(mapping)):
        hint = _flag_hint(key, present=False)
        problems.append(f"{prefix}/{key}: missing{hint}")
    for key in sorted(set(map(str, mapping)) - expected):
        hint = _flag_hint(key, present=True)
        problems.append(f"{prefix}/{key}: unexpected key{hint}")
    return problems


def _flag_hint(key: str, *, present: bool) -> str:
    flag = {"bias": "use_hidden_bias", "visible_bias": "use_visible_bias"}.get(key)
    if flag is None:
        return ""
    return f" (the module has {flag}={not present})"
