"""NetKet's RBMSymm variables layout, for both symmetric models.

`{"params": {"Dense": {"bias": (F,), "kernel": (F, C, N)}, "visible_bias": (C,)}}`,
with C = 1 for RBMSymm (NetKet's own layout) and C = n_classes for
RBMMultiValSymm (DenseSymm with the classes as input features). Keys are in
NetKet's creation order: the bias before the kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jaxtyping import Array

from ._checks import check_positive_int
from ._model import AbstractRBM
from ._multival_symm import RBMMultiValSymm
from ._permutations import PermutationTable, check_symmetries, n_filters_for
from ._symm import AbstractSymmRBM, RBMSymm
from ._variables_checks import VariablesError, describe, layout_arrays, layout_key_problems, leaf_problems


def symm_params(model: AbstractSymmRBM) -> dict[str, Any]:
    """`params` of a symmetric model: NetKet's RBMSymm layout, in its key order."""
    dense: dict[str, Any] = {}
    if model.hidden_bias is not None:
        dense["bias"] = model.hidden_bias
    dense["kernel"] = model.kernel
    params: dict[str, Any] = {"Dense": dense}
    if model.visible_bias is not None:
        params["visible_bias"] = model.visible_bias
    return params


def symm_problems(
    params: Any,
    table: PermutationTable,
    n_classes: int | None,
    alpha: float | int | None,
    flags: tuple[bool | None, bool | None],
) -> list[str]:
    """Every problem of `params` as a symmetric model's, as `path: message` lines."""
    if not isinstance(params, Mapping):
        return [f"params: expected a mapping with keys ['Dense', 'visible_bias'], got {describe(params)}"]
    dense, problems = layout_key_problems("params", params, flags)
    per_site = 1 if n_classes is None else n_classes
    what = "1" if n_classes is None else "n_classes"
    shapes, leaf_issues = leaf_problems(
        "params",
        {
            "Dense/kernel": (dense.get("kernel"), 3, f"(n_filters, {what}, n_sites)"),
            "Dense/bias": (dense.get("bias"), 1, "(n_filters,)"),
            "visible_bias": (params.get("visible_bias"), 1, f"({what},)"),
        },
    )
    problems += leaf_issues
    kernel = shapes.get("Dense/kernel")
    if kernel is None:
        return problems
    n_filters = kernel[0]
    expected = (per_site, table.n_sites)
    if kernel[1:] != expected or n_filters == 0:
        hint = ""
        if n_classes is None and kernel[1] > 1:
            hint = f"; for RBMMultiValSymm variables pass n_classes={kernel[1]}"
        problems.append(
            f"params/Dense/kernel: expected shape (n_filters, {what}, n_sites) = (n_filters, {expected[0]}, "
            f"{expected[1]}) with n_filters >= 1 for symmetries of {table.n_sites} sites, got shape {kernel}"
            + hint
        )
    elif alpha is not None:
        n_features, n_symmetries = table.n_sites * per_site, table.n_symmetries
        want = n_filters_for(alpha, n_features, n_symmetries)
        if want != n_filters:
            problems.append(
                f"params/Dense/kernel: expected {want} filters (int(alpha * n_features / n_symmetries) with "
                f"alpha={alpha}, n_features={n_features}, n_symmetries={n_symmetries}), got shape {kernel}"
            )
    visible = "n_classes," if n_classes is not None else "one weight shared by every site"
    for name, size, label in (("Dense/bias", n_filters, "n_filters,"), ("visible_bias", per_site, visible)):
        shape = shapes.get(name)
        if shape is not None and shape != (size,):
            problems.append(f"params/{name}: expected shape {(size,)} ({label}), got shape {shape}")
    return problems


def build_symm_model(
    params: Any,
    problems: list[str],
    *,
    symmetries: Any,
    n_classes: int | None,
    local_states: Sequence[float] | None,
    alpha: float | int | None,
    flags: tuple[bool | None, bool | None],
    activation: Callable[[Array], Array],
    precision: Any,
) -> AbstractRBM:
    """The symmetric model of `params`, or a `VariablesError` listing `problems` and its own."""
    table = check_symmetries(symmetries)
    if n_classes is not None:
        n_classes = check_positive_int("n_classes", n_classes)
    problems = problems + symm_problems(params, table, n_classes, alpha, flags)
    if problems:
        raise VariablesError("variables", problems)
    arrays = layout_arrays(params)
    settings = {"symmetries": table, "alpha": alpha, "activation": activation, "precision": precision}
    if n_classes is None:
        return RBMSymm.from_arrays(*arrays, **settings)
    return RBMMultiValSymm.from_arrays(*arrays, n_classes=n_classes, local_states=local_states, **settings)
