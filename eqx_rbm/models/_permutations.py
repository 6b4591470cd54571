"""Tables of site permutations: validation, hashing, and the filter count they give."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from jax.core import Tracer
from jaxtyping import Array

from ..internal._checks import check_alpha


class PermutationTable:
    """A validated `(n_symmetries, n_sites)` table of site permutations, hashable.

    Being hashable, it is static configuration of a module and an attribute of
    a Flax module. `np.asarray(table)` gives the table back (read-only).
    """

    __slots__ = ("_hash", "array", "inverse")

    def __init__(self, array: np.ndarray):
        self.array = np.array(array, dtype=np.int32)
        self.array.flags.writeable = False
        # inverse[g, r] = j where array[g, j] = r: the transposes of the ties gather with it.
        self.inverse = np.argsort(self.array, axis=1).astype(np.int32)
        self.inverse.flags.writeable = False
        self._hash = hash((self.array.shape, hashlib.sha1(self.array.tobytes()).hexdigest()))

    @property
    def n_symmetries(self) -> int:
        return self.array.shape[0]

    @property
    def n_sites(self) -> int:
        return self.array.shape[1]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.array.shape[0], self.array.shape[1])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.array if dtype is None else self.array.astype(dtype)

    def __len__(self) -> int:
        return self.n_symmetries

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, PermutationTable):
            return NotImplemented
        return self._hash == other._hash and np.array_equal(self.array, other.array)

    def __repr__(self) -> str:
        return f"PermutationTable(n_symmetries={self.n_symmetries}, n_sites={self.n_sites})"


def check_symmetries(symmetries: Any) -> PermutationTable:
    """The table of `symmetries` (anything `np.asarray` makes a table of), validated."""
    if isinstance(symmetries, PermutationTable):
        return symmetries
    if isinstance(symmetries, Tracer):
        raise TypeError("symmetries: expected a concrete (n_symmetries, n_sites) table, got a traced array")
    try:
        table = np.asarray(symmetries)
    except Exception as err:
        raise TypeError(
            f"symmetries: expected a (n_symmetries, n_sites) table of site permutations, got {symmetries!r}"
        ) from err
    if table.ndim != 2 or table.shape[0] == 0 or table.shape[1] == 0:
        raise ValueError(
            "symmetries: expected a 2-D (n_symmetries, n_sites) table with at least one row and one site, "
            f"got shape {table.shape}"
        )
    if table.dtype.kind not in "iu":
        raise TypeError(
            f"symmetries: expected an integer table of site indices, got dtype {table.dtype} "
            "(pass a netket PermutationGroup, a HashableArray or an integer array)"
        )
    n_sites = table.shape[1]
    bad = np.flatnonzero(np.any(np.sort(table, axis=1) != np.arange(n_sites), axis=1))
    if len(bad):
        row = int(bad[0])
        raise ValueError(
            f"symmetries: expected every row to be a permutation of range({n_sites}), "
            f"got row {row}: {table[row].tolist()} ({len(bad)} bad row(s) in total)"
        )
    return PermutationTable(table)


def n_filters_for(alpha: float | int, n_features: int, n_symmetries: int) -> int:
    # NetKet's rule, int(alpha * n_sites / n_symm), with n_features for n_sites.
    return int(alpha * n_features / n_symmetries)


def alpha_for(n_filters: int, n_features: int, n_symmetries: int) -> float | int:
    """The smallest `alpha` with `n_filters_for(alpha, ...) >= n_filters` (an int when it divides)."""
    if (n_filters * n_symmetries) % n_features == 0:
        return n_filters * n_symmetries // n_features
    alpha = n_filters * n_symmetries / n_features
    while n_filters_for(alpha, n_features, n_symmetries) < n_filters:  # the quotient can round down
        alpha = float(np.nextafter(alpha, np.inf))
    return alpha


def check_filters(alpha: float | int, n_features: int, table: PermutationTable) -> int:
    """The number of filters `alpha` gives, refusing zero."""
    n_filters = n_filters_for(alpha, n_features, table.n_symmetries)
    if n_filters == 0:
        raise ValueError(
            f"alpha: alpha={alpha} gives int(alpha * n_features / n_symmetries) = 0 filters for "
            f"n_features={n_features} and n_symmetries={table.n_symmetries}; expected at least 1 filter, "
            f"which needs alpha >= {alpha_for(1, n_features, table.n_symmetries)}"
        )
    return n_filters


def check_kernel_shape(kernel: Array, table: PermutationTable, features_per_site: int, what: str) -> int:
    """The number of filters of a given kernel, which must be `(n_filters, features_per_site, n_sites)`."""
    expected = (features_per_site, table.n_sites)
    if kernel.ndim != 3 or kernel.shape[1:] != expected or kernel.shape[0] == 0:
        raise ValueError(
            f"kernel: expected shape (n_filters, {what}, n_sites) = (n_filters, {expected[0]}, "
            f"{expected[1]}) with n_filters >= 1 for these symmetries, got shape {kernel.shape}"
        )
    return kernel.shape[0]


def check_given_alpha(alpha: float | int | None, n_filters: int, n_features: int, table: PermutationTable):
    """`alpha` for a kernel of `n_filters` filters: inferred when `None`, else checked."""
    if alpha is None:
        return alpha_for(n_filters, n_features, table.n_symmetries)
    alpha = check_alpha(alpha)
    if n_filters_for(alpha, n_features, table.n_symmetries) != n_filters:
        raise ValueError(
            f"alpha: expected int(alpha * n_features / n_symmetries) = {n_filters} (the kernel's filters) "
            f"with n_features={n_features} and n_symmetries={table.n_symmetries}, got alpha={alpha}, "
            f"which gives {n_filters_for(alpha, n_features, table.n_symmetries)}"
        )
    return alpha
