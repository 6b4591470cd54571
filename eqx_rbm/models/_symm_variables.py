"""NetKet's RBMSymm variables layout, for both symmetric models.

`{"params": {"Dense": {"bias": (F,), "kernel": (F, C, N)}, "visible_bias": (C,)}}`,
with C = 1 for RBMSymm (NetKet's own layout) and C = n_classes for
RBMMultiValSymm (DenseSymm with the classes as input features). Keys are in
NetKet's creation order: the bias before the kernel.
"""

from __future__ import annotations

from typing import Any

from ._permutations import PermutationTable, n_filters_for
from ._variables_checks import Loading, layout_key_problems, leaf_problems, shape_problems


def symm_problems(params: Any, table: PermutationTable, n_classes: int | None, loading: Loading) -> list[str]:
    """Every problem of `params` as a symmetric model's, as `path: message` lines."""
    dense, problems = layout_key_problems("params", params, loading.flags)
    if dense is None:
        return problems
    alpha = loading.alpha
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
    expected = {"Dense/bias": (n_filters, "n_filters,"), "visible_bias": (per_site, visible)}
    return problems + shape_problems("params", shapes, expected)
