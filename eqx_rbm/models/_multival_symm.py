"""Symmetric RBM on one-hot encoded local states: RBMSymm's filters over RBMMultiVal's features."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray

from ..internal._checks import check_param_dtype, check_positive_int, feature_dtype_for
from ..numerics._log_cosh import log_cosh
from ._build import build
from ._one_hot import OneHot
from ._parts import Initializer
from ._permutations import PermutationTable, check_symmetries
from ._symm import AbstractSymmRBM, symm_default_init, symm_given


class RBMMultiValSymm(AbstractSymmRBM, strict=True):
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
    encoding: OneHot  # pyright: ignore[reportIncompatibleVariableOverride]
    """The one-hot encoding of `local_states`."""
    symmetries: PermutationTable = eqx.field(static=True)
    activation: Callable[[Array], Array] = eqx.field(static=True)
    precision: Any = eqx.field(static=True)
    alpha: float | int = eqx.field(static=True)
    layout_keywords: ClassVar[frozenset[str]] = frozenset({"symmetries", "n_classes", "local_states"})
    twin_name: ClassVar[str] = "RBMMultiValSymm"

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
        self.symmetries = check_symmetries(symmetries)
        feature_dtype = feature_dtype_for(check_param_dtype(param_dtype))
        encoding = OneHot(n_classes, local_states=local_states, dtype=feature_dtype)
        inits = (kernel_init, hidden_bias_init, visible_bias_init)
        flags = (use_hidden_bias, use_visible_bias)
        n_sites = self.symmetries.n_sites
        build(self, encoding, n_sites, alpha, flags, param_dtype, activation, precision, inits, key)

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
        n_classes = check_positive_int("n_classes", n_classes)
        kernel = jnp.asarray(kernel)
        table, given = symm_given(kernel, hidden_bias, visible_bias, alpha, symmetries, n_classes)
        settings = {"activation": activation, "precision": precision}
        return cls(table, n_classes, local_states=local_states, **settings, **given)

    @property
    def n_classes(self) -> int:
        """Number of local states per site."""
        return self.encoding.n_classes
