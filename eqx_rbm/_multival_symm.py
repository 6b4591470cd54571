"""Symmetric RBM on one-hot encoded local states: RBMSymm's filters over RBMMultiVal's features."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray

from ._checks import check_param_dtype, check_positive_int, feature_dtype_for
from ._log_cosh import log_cosh
from ._model import Given, Initializer
from ._one_hot import OneHot
from ._permutations import (
    PermutationTable,
    check_filters,
    check_given_alpha,
    check_kernel_shape,
    check_symmetries,
)
from ._symm import AbstractSymmRBM, init_symm_parameters, symm_default_init, symm_settings


class RBMMultiValSymm(AbstractSymmRBM):
    r"""Symmetric RBM for sites with more than two local states (no NetKet counterpart).

    Each site is one-hot encoded by [`eqx_rbm.OneHot`][] into $C$ =
    `n_classes` features, and the site permutations move whole one-hot blocks:

    $$\log\psi(x) = \sum_{j} a_{c(x_j)} + \sum_{f,g} f\Big(b_f + \sum_j W_{f,\,c(x_j),\,P_{gj}}\Big),$$

    with $c(x_j)$ the class of site $j$'s value, $P$ = `symmetries`, `kernel`
    $W$ of shape `(n_filters, n_classes, n_sites)` (NetKet's `DenseSymm`
    layout with the classes as input features), `hidden_bias` $b$
    `(n_filters,)` and `visible_bias` $a$ `(n_classes,)`, one weight per
    class shared by all sites. The number of filters follows the rule of
    every model of the family, `int(alpha * n_features / n_symmetries)` with
    `n_features = n_sites * n_classes`, so that at equal `alpha` the dense
    view has as many hidden units as an [`eqx_rbm.RBMMultiVal`][]'s.

    As for `RBMMultiVal`, a value outside `local_states` is an error.

    ```python
    import jax
    import jax.numpy as jnp
    import netket as nk
    import eqx_rbm

    jax.config.update("jax_enable_x64", True)
    group = nk.graph.Chain(6).translation_group()
    model = eqx_rbm.RBMMultiValSymm(group, 4, alpha=1, key=jax.random.key(0))  # n_max = 3
    model.kernel.shape  # (4, 4, 6): int(1 * 6 * 4 / 6) filters
    model(jnp.array([0, 1, 3, 2, 0, 0])).shape  # ()
    ```
    """

    kernel: Inexact[Array, "n_filters n_classes n_sites"]
    hidden_bias: Inexact[Array, " n_filters"] | None
    visible_bias: Inexact[Array, " n_classes"] | None
    one_hot: OneHot
    symmetries: PermutationTable = eqx.field(static=True)
    activation: Callable[[Array], Array] = eqx.field(static=True)
    precision: Any = eqx.field(static=True)
    alpha: float | int = eqx.field(static=True)

    def __init__(
        self,
        symmetries: Any,
        n_classes: int,
        *,
        local_states: Sequence[float] | None = None,
        alpha: float | int = 1,
        use_hidden_bias: bool = True,
        use_visible_bias: bool = True,
        param_dtype: Any = jnp.float64,
        activation: Callable[[Array], Array] = log_cosh,
        precision: Any = None,
        kernel_init: Initializer = symm_default_init,
        hidden_bias_init: Initializer = symm_default_init,
        visible_bias_init: Initializer = symm_default_init,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `symmetries`: the `(n_symmetries, n_sites)` table of site permutations,
          as for [`eqx_rbm.RBMSymm`][].
        - `n_classes`: number of local states per site, at least 2.
        - `local_states`: the values a site can take, in order; default
          `0, ..., n_classes - 1` (see [`eqx_rbm.OneHot`][]).
        - `alpha`: feature density;
          `n_filters = int(alpha * n_sites * n_classes / n_symmetries)`, at least 1.
        - every other keyword, `key` included, as for [`eqx_rbm.RBMSymm`][]
          (the same key gives the parameters that NetKet's `init` would draw
          for this layout).
        """
        self.symmetries, self.alpha, self.activation = symm_settings(symmetries, alpha, activation)
        dtype = check_param_dtype(param_dtype)
        self.one_hot = OneHot(n_classes, local_states=local_states, dtype=feature_dtype_for(dtype))
        n_classes, n_sites = self.one_hot.n_classes, self.symmetries.n_sites
        n_filters = check_filters(self.alpha, n_sites * n_classes, self.symmetries)
        self.kernel, self.hidden_bias, self.visible_bias = init_symm_parameters(
            ((n_filters, n_classes, n_sites), (n_filters,), (n_classes,)),
            dtype=dtype,
            use_hidden_bias=use_hidden_bias,
            use_visible_bias=use_visible_bias,
            inits=(kernel_init, hidden_bias_init, visible_bias_init),
            key=key,
        )
        self.precision = precision

    @classmethod
    def from_arrays(
        cls,
        kernel: ArrayLike,
        hidden_bias: ArrayLike | None = None,
        visible_bias: ArrayLike | None = None,
        *,
        symmetries: Any,
        n_classes: int,
        local_states: Sequence[float] | None = None,
        alpha: float | int | None = None,
        activation: Callable[[Array], Array] = log_cosh,
        precision: Any = None,
    ) -> RBMMultiValSymm:
        """An `RBMMultiValSymm` holding the given arrays as they are (tracers included).

        **Arguments:**

        - `kernel`: shape `(n_filters, n_classes, n_sites)`, floating or complex.
        - `hidden_bias`, `visible_bias`: shapes `(n_filters,)` and
          `(n_classes,)`, or `None` for a model without that bias.
        - `symmetries`, `n_classes`, `local_states`: as for `__init__`.
        - `alpha`: `None` infers the smallest one giving `n_filters`; a given
          value must satisfy `int(alpha * n_sites * n_classes / n_symmetries) == n_filters`.
        - `activation`, `precision`: as for `__init__`.

        **Returns:**

        The `RBMMultiValSymm`, built through `__init__` so that every check runs.
        """
        kernel = jnp.asarray(kernel)
        table = check_symmetries(symmetries)
        n_classes = check_positive_int("n_classes", n_classes)
        n_filters = check_kernel_shape(kernel, table, n_classes, "n_classes")
        return cls(
            table,
            n_classes,
            local_states=local_states,
            alpha=check_given_alpha(alpha, n_filters, table.n_sites * n_classes, table),
            use_hidden_bias=hidden_bias is not None,
            use_visible_bias=visible_bias is not None,
            param_dtype=kernel.dtype,
            activation=activation,
            precision=precision,
            kernel_init=Given(kernel),
            hidden_bias_init=Given(hidden_bias),
            visible_bias_init=Given(visible_bias),
            key=jax.random.key(0),  # unused: every initializer returns its array
        )

    @property
    def n_classes(self) -> int:
        return self.one_hot.n_classes

    @property
    def local_states(self) -> tuple[float | int, ...]:
        return self.one_hot.local_states

    def site_features(self, values: Array) -> Array:
        return self.one_hot.site_features(values)

    def check_values(self, values: Any, name: str) -> None:
        self.one_hot.check_values(values, name)

    def values_invalid(self, values: Array) -> Array | None:
        return self.one_hot.values_invalid(values)

    def invalid_message(self, name: str) -> str:
        return self.one_hot.invalid_message(name)
