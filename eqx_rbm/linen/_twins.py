"""NetKet's RBM models as Flax Linen modules whose maths is eqx_rbm's."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from typing import Any, ClassVar

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Inexact, Num, PRNGKeyArray, Real

from ..internal._checks import (
    check_alpha,
    check_numeric,
    check_param_dtype,
    check_positive_int,
    feature_dtype_for,
    n_hidden_for,
)
from ..models._encoding import check_local_states
from ..models._model import AbstractRBM
from ..models._multival import RBMMultiVal as EqxRBMMultiVal
from ..models._one_hot import OneHot
from ..models._parts import Initializer, default_init, dense_theta, initialise
from ..models._rbm import RBM as EqxRBM
from ..numerics._log_cosh import log_cosh
from ..variables._variables import VariableDict, build_model, family_names, to_variables


def _checked(name: str, init: Initializer) -> Initializer:
    """`init` refusing a 64-bit dtype without x64 and a result of the wrong shape or dtype."""

    def checked_init(key: PRNGKeyArray, shape: tuple[int, ...], dtype: Any) -> Array:
        return initialise(name, init, key, shape, check_param_dtype(dtype))

    return checked_init


def _check_config(module: Any) -> None:
    check_alpha(module.alpha)
    try:
        inexact = module.param_dtype is not None and jnp.issubdtype(
            jnp.dtype(module.param_dtype), jnp.inexact
        )
    except TypeError:
        inexact = False
    if not inexact:
        raise TypeError(f"param_dtype: expected a floating or complex dtype, got {module.param_dtype!r}")
    # The initializers a twin has: one without a visible bias has no visible_bias_init.
    names = [
        name for name in ("kernel_init", "hidden_bias_init", "visible_bias_init") if hasattr(module, name)
    ]
    for name in ("activation", *names):
        if not callable(getattr(module, name)):
            raise TypeError(f"{name}: expected a callable, got {getattr(module, name)!r}")


def check_classes(module: Any) -> None:
    """Checks `n_classes` and stores `local_states` as a tuple (a multi-valued twin's `__post_init__`)."""
    n_classes = check_positive_int("n_classes", module.n_classes)
    if n_classes < 2:
        raise ValueError(f"n_classes: expected at least 2 classes, got {n_classes}")
    if module.local_states is not None:
        # A tuple keeps the module hashable, which Flax's transforms need.
        object.__setattr__(module, "local_states", check_local_states(module.local_states, n_classes))


def _input_size(x: Any, *, allow_complex: bool) -> int:
    check_numeric("x", x, allow_complex=allow_complex)
    if jnp.ndim(x) == 0:
        raise ValueError(
            f"x: expected shape (*batch, n_visible) with at least one dimension, got shape {x.shape}"
        )
    return check_positive_int("x.shape[-1]", x.shape[-1])


class Dense(nn.Module):
    """The kernel and hidden bias of an RBM, at NetKet's paths; returns $\\theta = xW + b$.

    Named like `flax.linen.Dense` so that Flax's tables show NetKet's rows; the
    product itself is `eqx_rbm.RBM.theta`.
    """

    features: int
    use_bias: bool
    param_dtype: Any
    precision: Any
    kernel_init: Initializer
    bias_init: Initializer

    @nn.compact
    def __call__(self, inputs: Array) -> Array:
        # Same names, order and arguments as flax.linen.Dense: the same keys.
        kernel = self.param(
            "kernel",
            _checked("kernel_init", self.kernel_init),
            (inputs.shape[-1], self.features),
            self.param_dtype,
        )
        bias = (
            self.param(
                "bias", _checked("hidden_bias_init", self.bias_init), (self.features,), self.param_dtype
            )
            if self.use_bias
            else None
        )
        return dense_theta(inputs, kernel, bias, self.precision)


def hidden_layer(module: Any, name: str, n_visible: int) -> Dense:
    """The twin's `Dense` layer `name`: `int(alpha * n_visible)` hidden units with its settings."""
    return Dense(
        name=name,
        features=n_hidden_for(module.alpha, n_visible),
        use_bias=module.use_hidden_bias,
        param_dtype=module.param_dtype,
        precision=module.precision,
        kernel_init=module.kernel_init,
        bias_init=module.hidden_bias_init,
    )


class Twin(nn.Module):
    """What every twin provides to the converters: `equinox`, the Equinox model it computes with.

    A twin has the attributes its Equinox model's `layout_keywords` name
    (`n_classes`, `local_states`, `symmetries`), and `alpha`, `activation`,
    `precision` and the bias flags.
    """

    equinox: ClassVar[type[AbstractRBM]]


def layout(module: Any) -> dict[str, Any]:
    """The twin's values of its Equinox model's `layout_keywords`."""
    return {name: getattr(module, name) for name in module.equinox.layout_keywords}


def equinox_model(module: Any, kernel: Array, hidden_bias: Any, visible_bias: Any) -> AbstractRBM:
    """The Equinox model of a twin holding its parameters.

    A function, not a method: a method of the twin would be a row of Flax's tables that NetKet's lack.
    """
    from_arrays: Any = module.equinox.from_arrays  # each model has its own keywords
    settings = {"alpha": module.alpha, "activation": module.activation, "precision": module.precision}
    return from_arrays(kernel, hidden_bias, visible_bias, **layout(module), **settings)


class RBM(Twin):
    """`netket.models.RBM` as a Flax Linen module computed by [`eqx_rbm.RBM`][].

    Same attributes, order, defaults and parameters as NetKet's model: the
    same key gives the same variables, `{"params": {"Dense": {"kernel",
    "bias"}, "visible_bias"}}`, and `apply` the same numbers. Being a Flax
    module, it nests in any Flax model (NetKet's `SymmExpSum` included) and has
    all of Flax's module API.

    ```python
    import jax
    import jax.numpy as jnp
    import eqx_rbm.linen

    jax.config.update("jax_enable_x64", True)
    twin = eqx_rbm.linen.RBM(alpha=2)
    variables = twin.init(jax.random.key(0), jnp.ones((1, 8)))
    twin.apply(variables, jnp.ones((5, 8))).shape  # (5,)
    ```

    **Arguments:** (all optional, in NetKet's order)

    - `param_dtype`: dtype of the parameters `init` creates (default float64).
      Parameters of another floating or complex dtype promote, as in Flax.
    - `activation`: non-linearity applied to the hidden pre-activations
      (default [`eqx_rbm.log_cosh`][], bit-identical to NetKet's).
    - `alpha`: hidden-unit density, `n_hidden = int(alpha * n_visible)`.
    - `use_hidden_bias`, `use_visible_bias`: whether the biases exist.
    - `precision`: `jax.lax.Precision` of the matrix products.
    - `kernel_init`, `hidden_bias_init`, `visible_bias_init`: initializers
      `(key, shape, dtype) -> array` (default normal, standard deviation 0.01).
    """

    param_dtype: Any = np.float64
    activation: Callable[[Array], Array] = log_cosh
    alpha: float | int = 1
    use_hidden_bias: bool = True
    use_visible_bias: bool = True
    precision: Any = None
    kernel_init: Initializer = default_init
    hidden_bias_init: Initializer = default_init
    visible_bias_init: Initializer = default_init
    equinox: ClassVar[type[AbstractRBM]] = EqxRBM

    def __post_init__(self) -> None:
        _check_config(self)
        super().__post_init__()

    # `input`, not `x`: NetKet's RBM takes its configurations under that keyword.
    @nn.compact
    def __call__(self, input: Num[Array, "*batch n_visible"]) -> Inexact[Array, "*batch"]:
        """$\\log\\psi$ of configurations `input` of shape `(*batch, n_visible)`."""
        n_visible = _input_size(input, allow_complex=True)
        theta = hidden_layer(self, "Dense", n_visible)(input)
        visible_bias = (
            self.param(
                "visible_bias",
                _checked("visible_bias_init", self.visible_bias_init),
                (n_visible,),
                self.param_dtype,
            )
            if self.use_visible_bias
            else None
        )
        dense = self.variables["params"]["Dense"]
        rbm = equinox_model(self, dense["kernel"], dense.get("bias"), visible_bias)
        return rbm.log_psi_from_features(input, theta)


class RBMMultiVal(Twin):
    """`netket.models.RBMMultiVal` as a Flax Linen module computed by [`eqx_rbm.RBMMultiVal`][].

    Same attributes, order, defaults and parameters as NetKet's model, plus
    `local_states`; the variables are `{"params": {"RBM": {...RBM layout...}}}`
    with `n_visible = n_sites * n_classes`. Two differences from NetKet, both
    those of [`eqx_rbm.RBMMultiVal`][]: a site value outside `local_states` is
    an error (eagerly, and at run time under `jax.jit`), and `precision`
    reaches the inner RBM.

    **Arguments:**

    - `n_classes`: number of local states per site (required).
    - every [`eqx_rbm.linen.RBM`][] argument, in the same order.
    - `local_states`: the values a site takes, in order; default `0, ..., n_classes - 1`.
    """

    n_classes: int
    param_dtype: Any = np.float64
    activation: Callable[[Array], Array] = log_cosh
    alpha: float | int = 1
    use_hidden_bias: bool = True
    use_visible_bias: bool = True
    precision: Any = None
    kernel_init: Initializer = default_init
    hidden_bias_init: Initializer = default_init
    visible_bias_init: Initializer = default_init
    local_states: Sequence[float] | None = None
    equinox: ClassVar[type[AbstractRBM]] = EqxRBMMultiVal

    def __post_init__(self) -> None:
        check_classes(self)
        _check_config(self)
        super().__post_init__()

    def setup(self) -> None:
        # A setup attribute, as in NetKet: `bound.RBM` is the inner model.
        self.RBM = RBM(
            param_dtype=self.param_dtype,
            activation=self.activation,
            alpha=self.alpha,
            use_hidden_bias=self.use_hidden_bias,
            use_visible_bias=self.use_visible_bias,
            precision=self.precision,
            kernel_init=self.kernel_init,
            hidden_bias_init=self.hidden_bias_init,
            visible_bias_init=self.visible_bias_init,
        )

    def __call__(self, x: Real[Array, "*batch n_sites"]) -> Inexact[Array, "*batch"]:
        """$\\log\\psi$ of local states `x` of shape `(*batch, n_sites)`."""
        _input_size(x, allow_complex=False)
        # Encoded inline: a method of this module would be a row of Flax's table that NetKet's lacks.
        encode = OneHot(
            self.n_classes, local_states=self.local_states, dtype=feature_dtype_for(self.param_dtype)
        )
        return self.RBM(encode(x))


def to_equinox(module: Twin, variables: Mapping[str, Any] | None = None) -> AbstractRBM:
    """The Equinox model described by a twin and NetKet-layout variables.

    [`eqx_rbm.from_variables`][] with the configuration read from the twin;
    the inverse of [`eqx_rbm.linen.to_linen`][].

    **Arguments:**

    - `module`: an [`eqx_rbm.linen.RBM`][], [`eqx_rbm.linen.RBMMultiVal`][],
      [`eqx_rbm.linen.RBMSymm`][] or [`eqx_rbm.linen.RBMMultiValSymm`][]
      (bound or not). It carries what no array holds: `activation`,
      `precision`, `alpha`, the bias flags, for the multi-valued twins
      `n_classes` and `local_states`, and for the symmetric ones `symmetries`.
    - `variables`: `{"params": ...}` in NetKet's layout, as for
      [`eqx_rbm.from_variables`][] (plain dicts, FrozenDicts,
      `MCState.variables`, a restored `MCState` state dict); default: the
      variables of a bound `module`.

    **Returns:**

    The Equinox model of the twin's kind ([`eqx_rbm.RBM`][], ...) holding the given arrays.
    `param_dtype` only says what `init` creates: parameters of any floating or
    complex dtype are taken as they are and promote exactly as in the twin's
    `apply`.

    **Raises:**

    [`eqx_rbm.VariablesError`][] listing every missing, unexpected or
    mis-shaped path for the twin's settings.
    """
    if not isinstance(module, Twin):
        raise TypeError(f"module: expected an {family_names('eqx_rbm.linen.', 'twin_name')}, got {module!r}")
    if variables is None:
        if module.scope is None:
            raise ValueError(
                "variables: pass the variables (to_equinox(twin, variables)) or a bound twin "
                "(twin.bind(variables)); got an unbound twin and no variables"
            )
        variables = module.variables
    if not isinstance(variables, Mapping):
        raise TypeError(f"variables: expected a mapping {{'params': ...}}, got {type(variables).__name__}")
    # A bias the model kind has no switch for is absent (None would take one when present).
    flags = {name: getattr(module, name) for name in module.equinox.bias_keywords}
    return build_model(
        module.equinox,
        variables,
        layout(module),
        alpha=module.alpha,
        use_hidden_bias=flags.get("use_hidden_bias", False),
        use_visible_bias=flags.get("use_visible_bias", False),
        activation=module.activation,
        precision=module.precision,
    )


def to_linen(model: AbstractRBM) -> tuple[Twin, VariableDict]:
    """The twin and the variables of an Equinox model: the inverse of [`eqx_rbm.linen.to_equinox`][].

    **Arguments:**

    - `model`: an [`eqx_rbm.RBM`][], [`eqx_rbm.RBMMultiVal`][],
      [`eqx_rbm.RBMSymm`][] or [`eqx_rbm.RBMMultiValSymm`][].

    **Returns:**

    `(twin, variables)` with `to_equinox(twin, variables)` equal to
    `model`. Initializers are not stored in an Equinox model, so the twin has
    the default ones.
    """
    if not isinstance(model, AbstractRBM):
        raise TypeError(f"model: expected an {family_names()}, got {type(model).__name__}")
    settings: dict[str, Any] = {
        "param_dtype": model.param_dtype,
        "activation": model.activation,
        "alpha": model.alpha,
        **{name: getattr(model, name) for name in model.bias_keywords},
        "precision": model.precision,
    }
    # By name: the twins are defined in this package, above the models that name them.
    twin: type[Twin] = getattr(import_module("eqx_rbm.linen"), model.twin_name)
    return twin(**model.layout(), **settings), to_variables(model)
