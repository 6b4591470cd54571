"""How a model turns the value of a site into visible features: one component of every model."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jaxtyping import Array

from ..internal._checks import check_numeric

LocalStates = tuple[float | int, ...]
"""The values a site can take, in order, as plain Python numbers."""


def check_local_states(local_states: Any, n_classes: int) -> LocalStates:
    """`local_states` as a tuple of `n_classes` distinct finite real numbers; `None` is `0..n_classes-1`."""
    if local_states is None:
        return tuple(range(n_classes))
    if not isinstance(local_states, Sequence | np.ndarray | jax.Array):
        raise TypeError(f"local_states: expected a sequence of {n_classes} numbers, got {local_states!r}")
    states = np.asarray(local_states)
    if states.ndim != 1 or states.dtype.kind not in "iuf":
        raise TypeError(
            f"local_states: expected a 1-D sequence of {n_classes} real numbers, got {local_states!r}"
        )
    if len(states) != n_classes:
        raise ValueError(
            f"local_states: expected {n_classes} values (n_classes={n_classes}), "
            f"got {len(states)}: {tuple(states.tolist())}"
        )
    if not np.all(np.isfinite(states)):
        raise ValueError(f"local_states: expected finite values, got {tuple(states.tolist())}")
    values, counts = np.unique(states, return_counts=True)
    if np.any(counts > 1):
        raise ValueError(
            f"local_states: values must be distinct, got duplicates {tuple(values[counts > 1].tolist())}"
        )
    # Plain Python numbers keep the module hashable and its repr readable.
    return tuple(states.tolist())


class AbstractEncoding(eqx.Module, strict=True):
    r"""How a model encodes site values into visible features $\phi(x_j)$.

    An encoding has no parameters; a model holds one as its `encoding` field
    and answers `site_features`, `features_per_site`, `local_states` and the
    value checks by asking it.
    """

    local_states: eqx.AbstractVar[LocalStates]
    """The values a site takes, in order: those single-site moves propose."""

    @property
    @abc.abstractmethod
    def features_per_site(self) -> int:
        """Visible features per site."""

    @abc.abstractmethod
    def site_features(self, values: Array) -> Array:
        """Features of site values, shape `(*values.shape, features_per_site)`, unchecked."""

    @abc.abstractmethod
    def check_values(self, values: Any, name: str) -> None:
        """Raises on site values this encoding cannot encode (dtype at trace time, values eagerly)."""

    @abc.abstractmethod
    def values_invalid(self, values: Array) -> Array | None:
        """A traced scalar, true when some value is not encodable; `None` when all are."""

    @abc.abstractmethod
    def invalid_message(self, name: str) -> str:
        """The run-time error for the values `values_invalid` flags."""

    @abc.abstractmethod
    def layout(self) -> dict[str, Any]:
        """The constructor keywords that rebuild this encoding (`n_classes`, `local_states`), or none."""

    @property
    def two_valued(self) -> bool:
        """Whether a site takes exactly two values."""
        return len(self.local_states) == 2


class Spins(AbstractEncoding, strict=True):
    """One feature per site: the value itself, $\\phi(x_j) = x_j$ (NetKet's `RBM` and `RBMSymm`).

    Any real or complex number is encodable. `local_states` only tells
    samplers which values to propose: spins 1/2 in NetKet's convention,
    `(-1, 1)`, by default.
    """

    local_states: LocalStates = eqx.field(static=True)

    def __init__(self, local_states: Sequence[float] = (-1.0, 1.0)):
        """**Arguments:**

        - `local_states`: the values a site takes, at least two, distinct; default `(-1.0, 1.0)`.
        """
        n_states = len(local_states) if isinstance(local_states, Sequence | np.ndarray) else 0
        if n_states < 2:
            raise ValueError(f"local_states: expected at least two values a site takes, got {local_states!r}")
        self.local_states = check_local_states(local_states, n_states)

    @property
    def features_per_site(self) -> int:
        return 1

    def site_features(self, values: Array) -> Array:
        return values[..., None]

    def check_values(self, values: Any, name: str) -> None:
        check_numeric(name, values, allow_complex=True)

    def values_invalid(self, values: Array) -> Array | None:
        return None

    def invalid_message(self, name: str) -> str:
        return f"{name} holds a value this model cannot encode"

    def layout(self) -> dict[str, Any]:
        return {}
