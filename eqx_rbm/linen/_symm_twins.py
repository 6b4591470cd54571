"""NetKet's RBMSymm, and its multi-valued sibling, as Flax Linen modules whose maths is eqx_rbm's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import flax.linen as nn
import numpy as np
from jaxtyping import Array, Inexact, Num, Real

from ..internal._checks import feature_dtype_for
from ..models._model import AbstractRBM
from ..models._multival_symm import RBMMultiValSymm as EqxRBMMultiValSymm
from ..models._one_hot import OneHot
from ..models._parts import Initializer, dense_theta
from ..models._permutations import PermutationTable, check_filters, check_symmetries
from ..models._symm import RBMSymm as EqxRBMSymm
from ..models._symm import symm_default_init, tie
from ..numerics._log_cosh import log_cosh
from ._twins import Dense, Twin, _check_config, _checked, _input_size, check_classes, equinox_model


class DenseSymmMatrix(Dense):
    """The filters and hidden bias of a symmetric RBM at NetKet's paths; returns $\\theta$ as `(F, G)`.

    Named like NetKet's layer so that Flax's tables show NetKet's rows; the
    product itself is the Equinox models' dense view.
    """

    symmetries: PermutationTable

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """`x` of shape `(*batch, in_features, n_sites)`; returns `(*batch, features, n_symmetries)`."""
        # NetKet's names and creation order (bias first): the same keys.
        bias = (
            self.param(
                "bias", _checked("hidden_bias_init", self.bias_init), (self.features,), self.param_dtype
            )
            if self.use_bias
            else None
        )
        kernel = self.param(
            "kernel",
            _checked("kernel_init", self.kernel_init),
            (self.features, *x.shape[-2:]),
            self.param_dtype,
        )
        dense = tie(kernel, bias, None, self.symmetries)
        batch = x.shape[:-2]
        features = x.swapaxes(-1, -2).reshape(*batch, x.shape[-1] * x.shape[-2])
        theta = dense_theta(features, dense.kernel, dense.hidden_bias, self.precision)
        return theta.reshape(*batch, self.features, self.symmetries.n_symmetries)


def _symm_config(module: Any) -> None:
    # A PermutationTable keeps the module hashable, which Flax's transforms need.
    object.__setattr__(module, "symmetries", check_symmetries(module.symmetries))
    _check_config(module)


def _filters(module: Any, n_sites: int, per_site: int) -> int:
    table = module.symmetries
    if n_sites != table.n_sites:
        raise ValueError(
            f"x: expected shape (*batch, n_sites) with n_sites={table.n_sites} (that of symmetries), "
            f"got {n_sites} sites"
        )
    return check_filters(module.alpha, n_sites * per_site, table)


def _dense(module: Any, n_filters: int) -> DenseSymmMatrix:
    return DenseSymmMatrix(
        name="Dense",
        symmetries=module.symmetries,
        features=n_filters,
        use_bias=module.use_hidden_bias,
        param_dtype=module.param_dtype,
        precision=module.precision,
        kernel_init=module.kernel_init,
        bias_init=module.hidden_bias_init,
    )


def _visible_bias(module: Any, per_site: int) -> Array | None:
    if not module.use_visible_bias:
        return None
    init = _checked("visible_bias_init", module.visible_bias_init)
    return module.param("visible_bias", init, (per_site,), module.param_dtype)


class RBMSymm(Twin):
    """`netket.models.RBMSymm` as a Flax Linen module computed by [`eqx_rbm.RBMSymm`][].

    Same attributes, order, defaults and parameters as NetKet's model: the
    same key gives the same variables, `{"params": {"Dense": {"bias",
    "kernel"}, "visible_bias"}}` with `kernel` of shape `(F, 1, N)`, `apply`
    the same numbers, and `tabulate` the same table. `symmetries` may be
    anything [`eqx_rbm.RBMSymm`][] accepts (a `PermutationGroup`, a
    `HashableArray`, an integer array); the twin keeps it as a validated,
    hashable table.

    ```python
    import jax
    import jax.numpy as jnp
    import netket as nk
    import eqx_rbm.linen

    jax.config.update("jax_enable_x64", True)
    twin = eqx_rbm.linen.RBMSymm(nk.graph.Chain(8).translation_group(), alpha=2)
    variables = twin.init(jax.random.key(0), jnp.ones((1, 8)))
    twin.apply(variables, jnp.ones((5, 8))).shape  # (5,)
    ```

    **Arguments:** (in NetKet's order)

    - `symmetries`: the `(n_symmetries, n_sites)` table of site permutations (required).
    - `param_dtype`, `activation`, `alpha`, `use_hidden_bias`,
      `use_visible_bias`, `precision`: as for [`eqx_rbm.RBMSymm`][].
    - `kernel_init`, `hidden_bias_init`, `visible_bias_init`: initializers
      (default normal, standard deviation 0.1, as NetKet's).
    """

    symmetries: Any
    param_dtype: Any = np.float64
    activation: Callable[[Array], Array] = log_cosh
    alpha: float | int = 1
    use_hidden_bias: bool = True
    use_visible_bias: bool = True
    precision: Any = None
    kernel_init: Initializer = symm_default_init
    hidden_bias_init: Initializer = symm_default_init
    visible_bias_init: Initializer = symm_default_init
    equinox: ClassVar[type[AbstractRBM]] = EqxRBMSymm

    def __post_init__(self) -> None:
        _symm_config(self)
        super().__post_init__()

    # `x_in`: the name of NetKet's argument.
    @nn.compact
    def __call__(self, x_in: Num[Array, "*batch n_sites"]) -> Inexact[Array, "*batch"]:
        """$\\log\\psi$ of configurations `x_in` of shape `(*batch, n_sites)`."""
        n_sites = _input_size(x_in, allow_complex=True)
        n_filters = _filters(self, n_sites, 1)
        theta = _dense(self, n_filters)(x_in[..., None, :])
        visible_bias = _visible_bias(self, 1)
        dense = self.variables["params"]["Dense"]
        model = equinox_model(self, dense["kernel"], dense.get("bias"), visible_bias)
        return model.log_psi_from_features(x_in, theta.reshape(*theta.shape[:-2], -1))


class RBMMultiValSymm(Twin):
    """[`eqx_rbm.RBMMultiValSymm`][] as a Flax Linen module (NetKet has no such model).

    The attributes of [`eqx_rbm.linen.RBMSymm`][] in the same order, with
    `n_classes` after `symmetries` and `local_states` last, as in
    [`eqx_rbm.linen.RBMMultiVal`][]. The variables are those of
    [`eqx_rbm.RBMMultiValSymm`][]: `{"params": {"Dense": {"bias": (F,),
    "kernel": (F, n_classes, N)}, "visible_bias": (n_classes,)}}`, and the
    same key gives the same variables as the Equinox constructor. The one-hot
    features reach the `Dense` row as `(*batch, n_classes, n_sites)`, the
    input layout of NetKet's `DenseSymm`.
    """

    symmetries: Any
    n_classes: int
    param_dtype: Any = np.float64
    activation: Callable[[Array], Array] = log_cosh
    alpha: float | int = 1
    use_hidden_bias: bool = True
    use_visible_bias: bool = True
    precision: Any = None
    kernel_init: Initializer = symm_default_init
    hidden_bias_init: Initializer = symm_default_init
    visible_bias_init: Initializer = symm_default_init
    local_states: Sequence[float] | None = None
    equinox: ClassVar[type[AbstractRBM]] = EqxRBMMultiValSymm

    def __post_init__(self) -> None:
        check_classes(self)
        _symm_config(self)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: Real[Array, "*batch n_sites"]) -> Inexact[Array, "*batch"]:
        """$\\log\\psi$ of local states `x` of shape `(*batch, n_sites)`."""
        n_sites = _input_size(x, allow_complex=False)
        n_filters = _filters(self, n_sites, self.n_classes)
        # Encoded inline: a Flax submodule here would be a table row of its own.
        encode = OneHot(
            self.n_classes, local_states=self.local_states, dtype=feature_dtype_for(self.param_dtype)
        )
        features = encode(x)
        blocks = features.reshape(*x.shape, self.n_classes).swapaxes(-1, -2)
        theta = _dense(self, n_filters)(blocks)
        visible_bias = _visible_bias(self, self.n_classes)
        dense = self.variables["params"]["Dense"]
        model = equinox_model(self, dense["kernel"], dense.get("bias"), visible_bias)
        return model.log_psi_from_features(features, theta.reshape(*theta.shape[:-2], -1))
