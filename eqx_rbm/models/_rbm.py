"""The restricted Boltzmann machine as an Equinox module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray

from ..internal._checks import check_positive_int
from ..numerics._log_cosh import log_cosh
from ._build import build
from ._dense import AbstractDenseRBM, dense_given
from ._encoding import Spins
from ._parts import Initializer, default_init


class RBM(AbstractDenseRBM, strict=True):
    r"""Restricted Boltzmann machine wave function, NetKet's `netket.models.RBM`.

    $$\log\psi(x) = \sum_j f\big((xW + b)_j\big) + x \cdot a$$

    with $f$ = `activation` (default [`eqx_rbm.log_cosh`][]), $W$ = `kernel` of
    shape `(n_visible, n_hidden)`, $b$ = `hidden_bias` and $a$ = `visible_bias`.
    The fields are the parameters; everything else is static configuration, so
    the module is a pytree of exactly its parameters.

    ```python
    import jax
    import jax.numpy as jnp
    import eqx_rbm

    jax.config.update("jax_enable_x64", True)
    model = eqx_rbm.RBM(8, alpha=2, key=jax.random.key(0))
    spins = jnp.ones((100, 8))
    model(spins).shape  # (100,)
    ```
    """

    kernel: Inexact[Array, "n_visible n_hidden"]
    hidden_bias: Inexact[Array, " n_hidden"] | None
    visible_bias: Inexact[Array, " n_visible"] | None
    activation: Callable[[Array], Array] = eqx.field(static=True)
    precision: Any = eqx.field(static=True)
    alpha: float | int = eqx.field(static=True)
    encoding: Spins  # pyright: ignore[reportIncompatibleVariableOverride]
    """Each site's value is its feature; samplers propose `(-1, 1)`."""
    netket_path: ClassVar[tuple[str, ...]] = ()
    layout_keywords: ClassVar[frozenset[str]] = frozenset()
    twin_name: ClassVar[str] = "RBM"

    def __init__(
        self,
        n_visible: int,
        *,
        alpha: float | int = 1,
        use_hidden_bias: bool = True,
        use_visible_bias: bool = True,
        param_dtype: Any = jnp.float64,
        activation: Callable[[Array], Array] = log_cosh,
        precision: Any = None,
        kernel_init: Initializer = default_init,
        hidden_bias_init: Initializer = default_init,
        visible_bias_init: Initializer = default_init,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `n_visible`: number of visible units (the length of an input configuration).
        - `alpha`: hidden-unit density; `n_hidden = int(alpha * n_visible)`, as in NetKet.
        - `use_hidden_bias`: whether to add the hidden bias $b$ before the activation.
        - `use_visible_bias`: whether to add the linear visible term $x \\cdot a$.
        - `param_dtype`: dtype of every parameter: float32, float64 (default),
          complex64 or complex128. 64-bit dtypes need `jax_enable_x64`; without
          it a `ValueError` is raised rather than silently storing 32-bit values.
        - `activation`: element-wise non-linearity applied to the hidden
          pre-activations before summing them.
        - `precision`: `jax.lax.Precision` of the matrix products.
        - `kernel_init`, `hidden_bias_init`, `visible_bias_init`: initializers
          with the `jax.nn.initializers` signature `(key, shape, dtype)`.
        - `key`: a `jax.random` key, keyword-only.
        """
        n_visible = check_positive_int("n_visible", n_visible)
        inits = (kernel_init, hidden_bias_init, visible_bias_init)
        flags = (use_hidden_bias, use_visible_bias)
        build(self, Spins(), n_visible, alpha, flags, param_dtype, activation, precision, inits, key)

    @classmethod
    def from_arrays(
        cls,
        kernel: ArrayLike,
        hidden_bias: ArrayLike | None = None,
        visible_bias: ArrayLike | None = None,
        *,
        alpha: float | int | None = None,
        activation: Callable[[Array], Array] = log_cosh,
        precision: Any = None,
    ) -> RBM:
        """An `RBM` holding the given arrays as they are (tracers included).

        **Arguments:**

        - `kernel`: shape `(n_visible, n_hidden)`, floating or complex.
        - `hidden_bias`, `visible_bias`: shapes `(n_hidden,)` and `(n_visible,)`,
          or `None` for a model without that bias. Each array keeps its own
          dtype; they promote together as in `flax.linen.Dense`.
        - `alpha`: the hidden-unit density to record; `None` infers it from
          the kernel's shape. A given value must satisfy
          `int(alpha * n_visible) == n_hidden`.
        - `activation`, `precision`: as for `__init__`.

        **Returns:**

        The `RBM`, built through `__init__` so that every check runs.
        """
        n_visible, given = dense_given(jnp.asarray(kernel), hidden_bias, visible_bias, alpha, None)
        return cls(n_visible, activation=activation, precision=precision, **given)

    @property
    def n_visible(self) -> int:
        """Number of visible units, `kernel.shape[0]`."""
        return self.kernel.shape[0]
