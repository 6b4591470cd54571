"""The models whose parameters are their dense view: NetKet's RBM and RBMMultiVal, and their layout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

import equinox as eqx
import jax
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from ..internal._checks import check_alpha, n_hidden_for
from ._build import given_arrays
from ._model import AbstractRBM
from ._parts import Dense, Flags, Inits, Parameters, initialise, outer_product_rows, replace_parameters
from ._variables_checks import (
    Loading,
    VariablesError,
    describe,
    key_problems,
    layout_arrays,
    layout_key_problems,
    layout_tree,
    leaf_problems,
    shape_problems,
)


def infer_alpha(n_visible: int, n_hidden: int) -> float | int:
    """An `alpha` with `int(alpha * n_visible) == n_hidden` (an int when it divides)."""
    if n_hidden % n_visible == 0:
        return n_hidden // n_visible
    alpha = n_hidden / n_visible
    while int(alpha * n_visible) < n_hidden:  # the quotient can round down by an ulp
        alpha = float(np.nextafter(alpha, np.inf))
    return alpha


def dense_given(
    kernel: Array, hidden_bias: Any, visible_bias: Any, alpha: float | int | None, n_classes: int | None
) -> tuple[int, dict[str, Any]]:
    """`from_arrays` of a dense model: its number of sites and the `__init__` keywords holding the arrays.

    `n_classes` is `None` for spins (one feature per site).
    """
    if n_classes is None and kernel.ndim != 2:
        raise ValueError(f"kernel: expected shape (n_visible, n_hidden), got shape {kernel.shape}")
    if n_classes is not None and (kernel.ndim != 2 or kernel.shape[0] % n_classes):
        raise ValueError(
            f"kernel: expected shape (n_sites * n_classes, n_hidden) with n_classes={n_classes}, "
            f"got shape {kernel.shape}"
        )
    n_features, n_hidden = kernel.shape
    alpha = infer_alpha(n_features, n_hidden) if alpha is None else alpha
    return n_features // (n_classes or 1), given_arrays(kernel, hidden_bias, visible_bias, alpha)


class AbstractDenseRBM(AbstractRBM, strict=True):
    """A model of the RBM family whose parameters are its dense view.

    `kernel` has shape `(n_features, n_hidden)`, `hidden_bias` `(n_hidden,)`
    and `visible_bias` `(n_features,)`, with `n_hidden = int(alpha *
    n_features)`. NetKet stores them under `params/Dense/kernel`,
    `params/Dense/bias` and `params/visible_bias`, below the modules named by
    `netket_path` (`("RBM",)` for an `RBMMultiVal`).
    """

    factorised_kernel: ClassVar[bool] = True
    if TYPE_CHECKING:  # pyright does not know equinox's AbstractClassVar
        netket_path: ClassVar[tuple[str, ...]]
    else:
        netket_path: eqx.AbstractClassVar[tuple[str, ...]]

    @property
    def n_sites(self) -> int:
        """Number of sites, `n_features // features_per_site`."""
        return self.kernel.shape[0] // self.features_per_site

    def dense(self) -> Dense:
        return Dense(self.kernel, self.hidden_bias, self.visible_bias)

    def from_dense_gradient(self, gradient: Dense) -> Self:
        return replace_parameters(self, *gradient)

    def log_derivative_rows(self, features: Array, dactivation: Array) -> Self:
        # The dense view is the parameters: the rows are the outer product itself.
        return outer_product_rows(self, features, dactivation)

    def draw_parameters(
        self, n_sites: int, flags: Flags, dtype: Any, inits: Inits, key: PRNGKeyArray
    ) -> Parameters:
        """One key each, split in NetKet's order; a disabled bias is `None`."""
        n_features = n_sites * self.encoding.features_per_site
        n_hidden = n_hidden_for(self.alpha, n_features)
        shapes = ((n_features, n_hidden), (n_hidden,), (n_features,))
        names = ("kernel_init", "hidden_bias_init", "visible_bias_init")
        used = (True, *flags)
        kernel, hidden, visible = (
            initialise(name, init, k, shape, dtype) if on else None
            for name, init, k, shape, on in zip(
                names, inits, jax.random.split(key, 3), shapes, used, strict=True
            )
        )
        assert kernel is not None
        return kernel, hidden, visible

    def layout(self) -> dict[str, Any]:
        return self.encoding.layout()

    def params_tree(self) -> dict[str, Any]:
        tree = layout_tree(self.kernel, self.hidden_bias, self.visible_bias, bias_first=False)
        for name in reversed(self.netket_path):
            tree = {name: tree}
        return tree

    @classmethod
    def from_params(cls, params: Any, problems: list[str], layout: dict[str, Any], loading: Loading) -> Self:
        prefix = "params"
        for name in cls.netket_path:
            if not isinstance(params, Mapping):
                problems = [
                    *problems,
                    f"{prefix}: expected a mapping with key [{name!r}], got {describe(params)}",
                ]
                raise VariablesError("variables", problems)
            problems = problems + key_problems(prefix, params, {name}, {})
            if name not in params:
                raise VariablesError("variables", problems)
            params, prefix = params[name], f"{prefix}/{name}"
        problems = problems + dense_problems(params, prefix, layout.get("n_classes"), loading)
        if problems:
            raise VariablesError("variables", problems)
        return cls.from_arrays(*layout_arrays(params), **layout, **loading.settings())


def kernel_problems(path: str, shape: tuple[int, ...], alpha: Any) -> list[str]:
    """The problems of a dense layer's `(n_visible, n_hidden)` kernel shape: no visible units, or
    `n_hidden` other than `int(alpha * n_visible)` for a given `alpha`."""
    n_visible, n_hidden = shape
    if n_visible == 0:
        return [f"{path}: expected n_visible > 0, got shape {shape}"]
    if alpha is not None and n_hidden != n_hidden_for(check_alpha(alpha), n_visible):
        return [
            f"{path}: expected shape {(n_visible, n_hidden_for(alpha, n_visible))} "
            f"(n_hidden = int(alpha * n_visible) with alpha={alpha}), got shape {shape}"
        ]
    return []


def dense_problems(params: Any, prefix: str, n_classes: int | None, loading: Loading) -> list[str]:
    """Every problem of `params` as a dense model's, as `path: message` lines."""
    dense, problems = layout_key_problems(prefix, params, loading.flags)
    if dense is None:
        return problems
    alpha = loading.alpha
    leaves = {
        "Dense/kernel": (dense.get("kernel"), 2, "(n_visible, n_hidden)"),
        "Dense/bias": (dense.get("bias"), 1, "(n_hidden,)"),
        "visible_bias": (params.get("visible_bias"), 1, "(n_visible,)"),
    }
    shapes, leaf_issues = leaf_problems(prefix, leaves)
    problems += leaf_issues
    kernel = shapes.get("Dense/kernel")
    if kernel is None:
        return problems
    n_visible, n_hidden = kernel
    if n_classes is not None and n_visible % n_classes:
        problems.append(
            f"{prefix}/Dense/kernel: expected n_visible = n_sites * n_classes, a multiple of "
            f"n_classes={n_classes}, got shape {kernel}"
        )
    problems += kernel_problems(f"{prefix}/Dense/kernel", kernel, alpha)
    expected = {"Dense/bias": (n_hidden, "n_hidden,"), "visible_bias": (n_visible, "n_visible,")}
    return problems + shape_problems(prefix, shapes, expected)
