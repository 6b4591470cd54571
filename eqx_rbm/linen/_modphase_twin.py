"""NetKet's RBMModPhase as a Flax Linen module whose maths is eqx_rbm's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Inexact, Num

from ..models._model import AbstractRBM
from ..models._modphase import LAYERS
from ..models._modphase import RBMModPhase as EqxRBMModPhase
from ..models._parts import Initializer, default_init
from ..numerics._log_cosh import log_cosh
from ._twins import Twin, _check_config, _input_size, hidden_layer


class RBMModPhase(Twin):
    """`netket.models.RBMModPhase` as a Flax Linen module computed by [`eqx_rbm.RBMModPhase`][].

    Same attributes, order, defaults and parameters as NetKet's model: the
    same key gives the same variables, `{"params": {"Dense_0": {"kernel",
    "bias"}, "Dense_1": {"kernel", "bias"}}}` (modulus, then phase), and
    `apply` the same numbers.

    ```python
    import jax
    import jax.numpy as jnp
    import eqx_rbm.linen

    jax.config.update("jax_enable_x64", True)
    twin = eqx_rbm.linen.RBMModPhase(alpha=2)
    variables = twin.init(jax.random.key(0), jnp.ones((1, 8)))
    twin.apply(variables, jnp.ones((5, 8))).dtype  # complex128
    ```

    **Arguments:** (all optional, in NetKet's order)

    - `param_dtype`: dtype of the parameters `init` creates (default float64).
    - `activation`: non-linearity of both RBMs (default [`eqx_rbm.log_cosh`][]).
    - `alpha`: hidden-unit density of each RBM, `n_hidden = int(alpha * n_visible)`.
    - `use_hidden_bias`: whether both RBMs have a hidden bias.
    - `precision`: `jax.lax.Precision` of the matrix products.
    - `kernel_init`, `hidden_bias_init`: initializers `(key, shape, dtype) -> array`
      (default normal, standard deviation 0.01).
    """

    param_dtype: Any = np.float64
    activation: Callable[[Array], Array] = log_cosh
    alpha: float | int = 1
    use_hidden_bias: bool = True
    precision: Any = None
    kernel_init: Initializer = default_init
    hidden_bias_init: Initializer = default_init
    equinox: ClassVar[type[AbstractRBM]] = EqxRBMModPhase

    def __post_init__(self) -> None:
        _check_config(self)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: Num[Array, "*batch n_visible"]) -> Inexact[Array, "*batch"]:
        """$\\log\\psi$ of configurations `x` of shape `(*batch, n_visible)`."""
        n_visible = _input_size(x, allow_complex=True)
        thetas = [hidden_layer(self, layer, n_visible)(x) for layer in LAYERS]
        params = self.variables["params"]
        kernel = jnp.stack([params[layer]["kernel"] for layer in LAYERS])
        bias = jnp.stack([params[layer]["bias"] for layer in LAYERS]) if self.use_hidden_bias else None
        settings = {"alpha": self.alpha, "activation": self.activation, "precision": self.precision}
        model = EqxRBMModPhase.from_arrays(kernel, bias, **settings)
        return model.log_psi_from_features(x, jnp.concatenate(thetas, axis=-1))
