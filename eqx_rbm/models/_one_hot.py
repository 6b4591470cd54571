"""One-hot encoding of local quantum numbers, with a check for unknown states."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from beartype import beartype
from jax.core import Tracer
from jaxtyping import Array, Num, Real, jaxtyped

from ..internal._checks import check_feature_dtype, check_numeric, check_positive_int, guarded_zero
from ._encoding import AbstractEncoding, check_local_states


class OneHot(AbstractEncoding, strict=True):
    """One-hot encoding of each site's local state, in NetKet's feature order (NetKet's `RBMMultiVal`).

    A site holding the $c$-th entry of `local_states` becomes the feature vector
    $e_c$ of length `n_classes`; features are laid out site-major, so feature
    `site * n_classes + c` is 1 for that site. The layer has no parameters.

    Unlike `jax.nn.one_hot` (and hence NetKet's `RBMMultiVal`), a value that is
    not one of `local_states` is an error rather than a row of zeros: eagerly a
    `ValueError` naming the value and its position, under `jax.jit` a runtime
    error raised through `equinox.error_if`.

    ```python
    import jax.numpy as jnp
    from eqx_rbm import OneHot

    spin_one = OneHot(3, local_states=(-2, 0, 2))
    spin_one(jnp.array([2, -2]))  # [0., 0., 1., 1., 0., 0.]
    ```
    """

    n_classes: int = eqx.field(static=True)
    local_states: tuple[float | int, ...] = eqx.field(static=True)
    dtype: Any = eqx.field(static=True)

    def __init__(self, n_classes: int, *, local_states: Sequence[float] | None = None, dtype: Any = None):
        """**Arguments:**

        - `n_classes`: number of values a site can take, at least 2.
        - `local_states`: those values, in order; the default is
          `0, 1, ..., n_classes - 1`, which is what NetKet assumes. Spin-1/2 in
          NetKet's convention is `(-1, 1)`, spin-1 is `(-2, 0, 2)`.
        - `dtype`: dtype of the output features; the default is JAX's default
          floating dtype (float64 with x64 enabled, float32 otherwise).
        """
        n_classes = check_positive_int("n_classes", n_classes)
        if n_classes < 2:
            raise ValueError(f"n_classes: expected at least 2 classes, got {n_classes}")
        self.n_classes = n_classes
        self.local_states = check_local_states(local_states, n_classes)
        if dtype is not None:
            dtype = check_feature_dtype(dtype)
        self.dtype = dtype

    @jaxtyped(typechecker=beartype)
    def __call__(self, x: Real[Array | np.ndarray, "*batch n_sites"]) -> Num[Array, "*batch n_features"]:
        """**Arguments:**

        - `x`: local states of shape `(*batch, n_sites)`, integer or floating.

        **Returns:**

        Features of shape `(*batch, n_sites * n_classes)` and dtype `self.dtype`.
        """
        check_numeric("x", x, allow_complex=False)
        traced = isinstance(x, Tracer)
        if not traced:
            # Checked on the caller's own array, before any conversion: with x64 off
            # jnp.asarray would wrap int64 values and round float64 ones onto states.
            self._raise_on_unknown(x, "x")
        match = self.matches(x)
        dtype = self.dtype if self.dtype is not None else jnp.result_type(float)
        # Explicit sizes: a -1 cannot be inferred for an empty batch.
        features = match.astype(dtype).reshape(*match.shape[:-2], match.shape[-2] * match.shape[-1])
        if traced:
            features = features + guarded_zero(
                dtype,
                ~jnp.all(jnp.any(match, axis=-1)),
                f"OneHot: x holds a value that is not one of local_states={self.local_states}; "
                f"{self._fix_hint()}",
            )
        return features

    def matches(self, x: Array | np.ndarray) -> jax.Array:
        """Boolean array of shape `(*batch, n_sites, n_classes)`: site equals state."""
        x = jnp.asarray(x)
        states, representable = self._states_for(x.dtype)
        match = x[..., None] == jnp.asarray(states)
        if not representable.all():
            match = match & jnp.asarray(representable)
        return match

    @property
    def features_per_site(self) -> int:
        """`n_classes`: one feature per local state."""
        return self.n_classes

    def layout(self) -> dict[str, Any]:
        """`n_classes`, and `local_states` unless they are the default `0..n_classes-1`."""
        default = self.local_states == tuple(range(self.n_classes))
        return {"n_classes": self.n_classes, "local_states": None if default else self.local_states}

    def site_features(self, values: Array) -> Array:
        """Features of shape `(*values.shape, n_classes)`, unchecked (a model's `site_features`)."""
        return self.matches(values).astype(self.dtype if self.dtype is not None else jnp.result_type(float))

    def check_values(self, values: Any, name: str) -> None:
        """Raises on a non-real dtype, and eagerly on a value outside `local_states`."""
        check_numeric(name, values, allow_complex=False)
        if not isinstance(values, Tracer):
            # Before any conversion: with x64 off jnp.asarray could wrap or
            # round an unknown value onto a state.
            array = values if isinstance(values, jax.Array) else np.asarray(values)
            self._raise_on_unknown(array, name)

    def values_invalid(self, values: Array) -> Array:
        """A traced scalar, true when some value is outside `local_states`."""
        return ~jnp.all(jnp.any(self.matches(values), axis=-1))

    def invalid_message(self, name: str) -> str:
        """The run-time error for the values `values_invalid` flags."""
        return f"{name} holds a value that is not one of local_states={self.local_states}; " + (
            self._fix_hint()
        )

    def _states_for(self, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
        """The local states in an input's dtype, and which of them it can hold exactly."""
        states = np.asarray(self.local_states)
        with np.errstate(invalid="ignore", over="ignore"):
            cast = states.astype(dtype)
        if jnp.issubdtype(dtype, jnp.floating):
            # A floating input is compared in its own precision, so that a float32
            # sampler's rounding of the state 0.1 is that state, whatever x64 says.
            if len(np.unique(cast)) < len(cast):
                raise ValueError(
                    f"x: local_states={self.local_states} are not distinct in x's dtype {np.dtype(dtype)}; "
                    "pass x in a wider floating dtype"
                )
            return cast, np.ones(len(cast), bool)
        # An integer input can never equal a fractional or out-of-range state.
        return cast, cast == states

    def _fix_hint(self) -> str:
        """How to fix an unknown value, for the first line of the error."""
        n = self.n_classes
        if self.local_states == tuple(range(n)):
            # NetKet's Spin(S) holds 2*m for m = -S..S: n classes spaced by 2.
            spins = tuple(range(1 - n, n, 2))
            return (
                f"pass local_states={spins} for NetKet's spin values (the default "
                f"0..{n - 1} suits Fock occupations), or the values your sites take"
            )
        return "pass local_states listing every value a site can take, in order"

    def _raise_on_unknown(self, x: Any, name: str) -> None:
        """Raises a `ValueError` naming `name`, the first unknown value and its index."""
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            # A global array spread over processes: each checks the rows it holds.
            blocks = {
                tuple(s.indices(n)[0] for s, n in zip(shard.index, x.shape, strict=True)): shard.data
                for shard in x.addressable_shards
            }
        else:
            blocks = {(0,) * np.ndim(x): x}
        first, n_bad = None, 0
        for offset, block in sorted(blocks.items()):
            block = np.asarray(block)
            states, representable = self._states_for(block.dtype)
            bad = np.argwhere(~((block[..., None] == states) & representable).any(axis=-1))
            if len(bad) and first is None:
                local = tuple(int(i) for i in bad[0])
                first = (block[local].item(), tuple(o + i for o, i in zip(offset, local, strict=True)))
            n_bad += len(bad)
        if first is None:
            return
        raise ValueError(
            f"{name}: expected every value to be one of local_states={self.local_states}, "
            f"got {first[0]!r} at index {first[1]}; {self._fix_hint()} "
            f"({n_bad} unknown value(s) in total)"
        )
