"""The restricted Boltzmann machine as an Equinox module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray

from ._checks import check_alpha, check_numeric, check_positive_int
from ._log_cosh import log_cosh
from ._model import (
    AbstractRBM,
    Dense,
    Initializer,
    default_init,
    dense_log_derivative_rows,
    given_arrays,
    init_parameters,
    replace_parameters,
)


def check_activation(activation: Callable[[Array], Array]) -> Callable[[Array], Array]:
    if not callable(activation):
        raise TypeError(f"activation: expected a callable, got {activation!r}")
    return activation


class RBM(AbstractRBM):
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
    factorised_kernel: ClassVar[bool] = True

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
        self.alpha = check_alpha(alpha)
        self.kernel, self.hidden_bias, self.visible_bias = init_parameters(
            n_visible,
            self.alpha,
            param_dtype=param_dtype,
            use_hidden_bias=use_hidden_bias,
            use_visible_bias=use_visible_bias,
            inits=(kernel_init, hidden_bias_init, visible_bias_init),
            key=key,
        )
        self.activation = check_activation(activation)
        self.precision = precision

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
        kernel = jnp.asarray(kernel)
        if kernel.ndim != 2:
            raise ValueError(f"kernel: expected shape (n_visible, n_hidden), got shape {kernel.shape}")
        return cls(
            kernel.shape[0],
            activation=activation,
            precision=precision,
            **given_arrays(kernel, hidden_bias, visible_bias, alpha),
        )

    @property
    def n_visible(self) -> int:
        """Number of visible units, `kernel.shape[0]`."""
        return self.kernel.shape[0]

    @property
    def n_sites(self) -> int:
        """Number of sites, `n_visible`."""
        return self.kernel.shape[0]

    @property
    def features_per_site(self) -> int:
        return 1

    def site_features(self, values: Array) -> Array:
        return values[..., None]

    def check_values(self, values: Any, name: str) -> None:
        check_numeric(name, values, allow_complex=True)

    def values_invalid(self, values: Array) -> Array | None:
        return None

    def dense(self) -> Dense:
        return Dense(self.kernel, self.hidden_bias, self.visible_bias)

    def from_dense_gradient(self, gradient: Dense) -> RBM:
        return replace_parameters(self, *gradient)

    def log_derivative_rows(self, features: Array, dactivation: Array) -> RBM:
        return dense_log_derivative_rows(self, features, dactivation)
