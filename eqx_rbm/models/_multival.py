"""RBM on one-hot encoded local states, NetKet's RBMMultiVal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray

from ..internal._checks import check_param_dtype, check_positive_int, feature_dtype_for
from ..numerics._log_cosh import log_cosh
from ._build import build
from ._dense import AbstractDenseRBM, dense_given
from ._one_hot import OneHot
from ._parts import Initializer, default_init


class RBMMultiVal(AbstractDenseRBM, strict=True):
    """RBM for sites with more than two local states, NetKet's `netket.models.RBMMultiVal`.

    Each site's local state is one-hot encoded by [`eqx_rbm.OneHot`][] into
    `n_classes` features, and the `n_sites * n_classes` features feed an RBM
    with `n_hidden = int(alpha * n_sites * n_classes)`: `kernel` has shape
    `(n_sites * n_classes, n_hidden)`, feature `site * n_classes + c` being
    class `c` of `site`.

    Two deliberate differences from NetKet: a value outside `local_states` is
    an error instead of an all-zero feature row, and `precision` reaches the
    products (NetKet drops it).

    ```python
    import jax
    import jax.numpy as jnp
    import eqx_rbm

    jax.config.update("jax_enable_x64", True)
    model = eqx_rbm.RBMMultiVal(6, 4, key=jax.random.key(0))  # bosons, n_max = 3
    model(jnp.array([0, 1, 3, 2, 0, 0])).shape  # ()
    ```
    """

    kernel: Inexact[Array, "n_features n_hidden"]
    hidden_bias: Inexact[Array, " n_hidden"] | None
    visible_bias: Inexact[Array, " n_features"] | None
    encoding: OneHot  # pyright: ignore[reportIncompatibleVariableOverride]
    """The one-hot encoding of `local_states`."""
    activation: Callable[[Array], Array] = eqx.field(static=True)
    precision: Any = eqx.field(static=True)
    alpha: float | int = eqx.field(static=True)
    netket_path: ClassVar[tuple[str, ...]] = ("RBM",)
    layout_keywords: ClassVar[frozenset[str]] = frozenset({"n_classes", "local_states"})
    twin_name: ClassVar[str] = "RBMMultiVal"

    def __init__(
        self,
        n_sites: int,
        n_classes: int,
        *,
        local_states: Sequence[float] | None = None,
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

        - `n_sites`: number of sites (the length of an input configuration).
        - `n_classes`: number of local states per site, at least 2.
        - `local_states`: the values a site can take, in order; default
          `0, ..., n_classes - 1` (see [`eqx_rbm.OneHot`][]).
        - every other keyword, `key` included, as for [`eqx_rbm.RBM`][], with
          `n_visible = n_sites * n_classes`.
        """
        n_sites = check_positive_int("n_sites", n_sites)
        feature_dtype = feature_dtype_for(check_param_dtype(param_dtype))
        encoding = OneHot(n_classes, local_states=local_states, dtype=feature_dtype)
        inits = (kernel_init, hidden_bias_init, visible_bias_init)
        flags = (use_hidden_bias, use_visible_bias)
        build(self, encoding, n_sites, alpha, flags, param_dtype, activation, precision, inits, key)

    @classmethod
    def from_arrays(
        cls,
        kernel: ArrayLike,
        hidden_bias: ArrayLike | None = None,
        visible_bias: ArrayLike | None = None,
        *,
        n_classes: int,
        local_states: Sequence[float] | None = None,
        alpha: float | int | None = None,
        activation: Callable[[Array], Array] = log_cosh,
        precision: Any = None,
    ) -> RBMMultiVal:
        """An `RBMMultiVal` holding the given arrays as they are (tracers included).

        **Arguments:**

        - `kernel`: shape `(n_sites * n_classes, n_hidden)`, floating or complex.
        - `hidden_bias`, `visible_bias`: shapes `(n_hidden,)` and
          `(n_sites * n_classes,)`, or `None` for a model without that bias.
        - `n_classes`, `local_states`: as for `__init__`.
        - `alpha`: as for [`eqx_rbm.RBM.from_arrays`][].
        - `activation`, `precision`: as for `__init__`.

        **Returns:**

        The `RBMMultiVal`, built through `__init__` so that every check runs.
        """
        n_classes = check_positive_int("n_classes", n_classes)
        n_sites, given = dense_given(jnp.asarray(kernel), hidden_bias, visible_bias, alpha, n_classes)
        settings = {"activation": activation, "precision": precision}
        return cls(n_sites, n_classes, local_states=local_states, **settings, **given)

    @property
    def n_classes(self) -> int:
        """Number of local states per site."""
        return self.encoding.n_classes
