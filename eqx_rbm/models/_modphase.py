r"""Two RBMs for the modulus and the phase of the wave function, NetKet's RBMModPhase."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray

from ..internal._checks import check_positive_int, n_hidden_for
from ..numerics._log_cosh import log_cosh
from ._build import build
from ._dense import infer_alpha, kernel_problems
from ._encoding import Spins
from ._model import AbstractRBM
from ._parts import (
    Dense,
    Flags,
    Given,
    Initializer,
    Inits,
    Parameters,
    default_init,
    initialise,
    outer_product_rows,
)
from ._symm import _flax_key
from ._variables_checks import (
    Loading,
    VariablesError,
    describe,
    key_problems,
    leaf_problems,
    shape_problems,
)

LAYERS = ("Dense_0", "Dense_1")
"""NetKet's names of the modulus and phase layers, in creation order."""


class RBMModPhase(AbstractRBM, strict=True):
    r"""Separate RBMs for the modulus and the phase, NetKet's `netket.models.RBMModPhase`.

    $$\log\psi(x) = \sum_j f\big((x W_0 + b_0)_j\big) + i \sum_j f\big((x W_1 + b_1)_j\big)$$

    (Torlai et al., Nature Physics 14, 447 (2018)): with real parameters the
    first RBM gives $\log|\psi|$ and the second the phase, so $\log\psi$ is
    complex. $f$ = `activation` (default [`eqx_rbm.log_cosh`][]); there is no
    visible bias. `kernel` stacks $W_0$ and $W_1$, shape
    `(2, n_visible, n_hidden)`, and `hidden_bias` stacks $b_0$ and $b_1$,
    `(2, n_hidden)`, with `n_hidden = int(alpha * n_visible)` each. In the
    dense view the two layers are one kernel `(n_visible, 2 * n_hidden)` whose
    two groups of hidden units have the coefficients `(1, 1j)`, so local
    updates, closed-form derivatives, SR and the samplers work as for the
    other models. The same `key` gives the same parameters as NetKet's `init`.

    ```python
    import jax
    import jax.numpy as jnp
    import eqx_rbm

    jax.config.update("jax_enable_x64", True)
    model = eqx_rbm.RBMModPhase(8, alpha=2, key=jax.random.key(0))
    model.kernel.shape  # (2, 8, 16): modulus and phase
    log_psi = model(jnp.ones((100, 8)))
    log_psi.shape, log_psi.dtype  # (100,), complex128
    ```
    """

    kernel: Inexact[Array, "2 n_visible n_hidden"]
    hidden_bias: Inexact[Array, "2 n_hidden"] | None
    visible_bias: None  # pyright: ignore[reportIncompatibleVariableOverride]
    """Always `None`: NetKet's RBMModPhase has no visible bias."""
    activation: Callable[[Array], Array] = eqx.field(static=True)
    precision: Any = eqx.field(static=True)
    alpha: float | int = eqx.field(static=True)
    encoding: Spins  # pyright: ignore[reportIncompatibleVariableOverride]
    """Each site's value is its feature; samplers propose `(-1, 1)`."""
    layout_keywords: ClassVar[frozenset[str]] = frozenset()
    twin_name: ClassVar[str] = "RBMModPhase"
    # The dense view permutes the parameters without tying any: the factorised SR kernel is exact.
    factorised_kernel: ClassVar[bool] = True
    hidden_coefficients: ClassVar[tuple[complex | float | int, ...]] = (1, 1j)
    bias_keywords: ClassVar[tuple[str, ...]] = ("use_hidden_bias",)

    def __init__(
        self,
        n_visible: int,
        *,
        alpha: float | int = 1,
        use_hidden_bias: bool = True,
        param_dtype: Any = jnp.float64,
        activation: Callable[[Array], Array] = log_cosh,
        precision: Any = None,
        kernel_init: Initializer = default_init,
        hidden_bias_init: Initializer = default_init,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `n_visible`: number of visible units (the length of an input configuration).
        - `alpha`: hidden-unit density of each RBM; `n_hidden = int(alpha * n_visible)`.
        - `use_hidden_bias`: whether both RBMs add a hidden bias before the activation.
        - `param_dtype`: dtype of every parameter, as for [`eqx_rbm.RBM`][]
          (default float64; with complex parameters $\\log\\psi$ is holomorphic in them).
        - `activation`, `precision`: as for [`eqx_rbm.RBM`][].
        - `kernel_init`, `hidden_bias_init`: initializers `(key, shape, dtype)`,
          called once per RBM with shapes `(n_visible, n_hidden)` and
          `(n_hidden,)`; default normal with standard deviation 0.01, as NetKet's.
        - `key`: a `jax.random` key, keyword-only.
        """
        n_visible = check_positive_int("n_visible", n_visible)
        inits = (kernel_init, hidden_bias_init, default_init)
        flags = (use_hidden_bias, False)
        build(self, Spins(), n_visible, alpha, flags, param_dtype, activation, precision, inits, key)

    @classmethod
    def from_arrays(
        cls,
        kernel: ArrayLike,
        hidden_bias: ArrayLike | None = None,
        *,
        alpha: float | int | None = None,
        activation: Callable[[Array], Array] = log_cosh,
        precision: Any = None,
    ) -> RBMModPhase:
        """An `RBMModPhase` holding the given arrays as they are (tracers included).

        **Arguments:**

        - `kernel`: shape `(2, n_visible, n_hidden)`, the modulus kernel then
          the phase kernel, floating or complex.
        - `hidden_bias`: shape `(2, n_hidden)`, or `None` for RBMs without hidden bias.
        - `alpha`: the hidden-unit density to record; `None` infers it from the
          kernel's shape. A given value must satisfy `int(alpha * n_visible) == n_hidden`.
        - `activation`, `precision`: as for `__init__`.

        **Returns:**

        The `RBMModPhase`, built through `__init__` so that every check runs.
        """
        kernel = jnp.asarray(kernel)
        if kernel.ndim != 3 or kernel.shape[0] != 2:
            raise ValueError(
                "kernel: expected shape (2, n_visible, n_hidden), the modulus and phase kernels "
                f"stacked, got shape {kernel.shape}"
            )
        _, n_visible, n_hidden = kernel.shape
        alpha = infer_alpha(n_visible, n_hidden) if alpha is None and n_visible else alpha
        return cls(
            n_visible,
            alpha=1 if alpha is None else alpha,
            use_hidden_bias=hidden_bias is not None,
            param_dtype=kernel.dtype,
            activation=activation,
            precision=precision,
            kernel_init=Given(kernel),
            hidden_bias_init=Given(hidden_bias),
            key=jax.random.key(0),  # unused: every initializer returns its array
        )

    @property
    def n_sites(self) -> int:
        """Number of sites, `kernel.shape[1]`."""
        return self.kernel.shape[1]

    @property
    def n_visible(self) -> int:
        """Number of visible units, the same as `n_sites`."""
        return self.n_sites

    def dense(self) -> Dense:
        """The dense view: kernel `(n_visible, 2 * n_hidden)`, the modulus units first."""
        kernel = jnp.concatenate([self.kernel[0], self.kernel[1]], axis=-1)
        hidden = None if self.hidden_bias is None else self.hidden_bias.reshape(-1)
        return Dense(kernel, hidden, None)

    def from_dense_gradient(self, gradient: Dense) -> Self:
        kernel = gradient.kernel
        if kernel is not None:
            *batch, n_visible, n_units = kernel.shape
            kernel = jnp.moveaxis(kernel.reshape(*batch, n_visible, 2, n_units // 2), -2, -3)
        hidden = gradient.hidden_bias
        if hidden is not None:
            hidden = hidden.reshape(*hidden.shape[:-1], 2, hidden.shape[-1] // 2)
        where = lambda m: (m.kernel, m.hidden_bias)  # noqa: E731
        return eqx.tree_at(where, self, (kernel, hidden), is_leaf=lambda v: v is None)

    def log_derivative_rows(self, features: Array, dactivation: Array) -> Self:
        # The dense view permutes the parameters: the rows are the outer product, regrouped.
        return outer_product_rows(self, features, dactivation)

    def draw_parameters(
        self, n_sites: int, flags: Flags, dtype: Any, inits: Inits, key: PRNGKeyArray
    ) -> Parameters:
        """The keys NetKet's `init` uses: `Dense_0/kernel`, `Dense_0/bias`, then the same for `Dense_1`."""
        n_hidden = n_hidden_for(self.alpha, n_sites)
        kernel_init, hidden_init, _ = inits
        use_hidden_bias = flags[0]
        if isinstance(kernel_init, Given):  # from_arrays: the stacked arrays themselves
            kernel = initialise("kernel_init", kernel_init, key, (2, n_sites, n_hidden), dtype)
            hidden = (
                initialise("hidden_bias_init", hidden_init, key, (2, n_hidden), dtype)
                if use_hidden_bias
                else None
            )
            return kernel, hidden, None
        kernels = [
            initialise("kernel_init", kernel_init, _flax_key(key, layer, 1), (n_sites, n_hidden), dtype)
            for layer in LAYERS
        ]
        if not use_hidden_bias:
            return jnp.stack(kernels), None, None
        biases = [
            initialise("hidden_bias_init", hidden_init, _flax_key(key, layer, 2), (n_hidden,), dtype)
            for layer in LAYERS
        ]
        return jnp.stack(kernels), jnp.stack(biases), None

    def layout(self) -> dict[str, Any]:
        return {}

    def params_tree(self) -> dict[str, Any]:
        """NetKet's `{"Dense_0": {"kernel", "bias"}, "Dense_1": {...}}` (slices of the stacked arrays)."""
        tree: dict[str, Any] = {}
        for i, layer in enumerate(LAYERS):
            tree[layer] = {"kernel": self.kernel[i]}
            if self.hidden_bias is not None:
                tree[layer]["bias"] = self.hidden_bias[i]
        return tree

    @classmethod
    def from_params(cls, params: Any, problems: list[str], layout: dict[str, Any], loading: Loading) -> Self:
        del layout  # RBMModPhase has no layout keywords
        problems = problems + _problems(params, loading)
        if problems:
            raise VariablesError("variables", problems)
        kernel = jnp.stack([jnp.asarray(params[layer]["kernel"]) for layer in LAYERS])
        hidden = None
        if "bias" in params[LAYERS[0]]:
            hidden = jnp.stack([jnp.asarray(params[layer]["bias"]) for layer in LAYERS])
        model: Any = cls.from_arrays(kernel, hidden, **loading.settings())  # a subclass's own from_arrays
        return model


def _problems(params: Any, loading: Loading) -> list[str]:
    """Every problem of `params` as an RBMModPhase's, as `path: message` lines."""
    prefix = "params"
    if not isinstance(params, Mapping):
        return [f"{prefix}: expected a mapping with keys {list(LAYERS)}, got {describe(params)}"]
    problems = key_problems(prefix, params, set(LAYERS), {})
    use_hidden_bias = loading.flags[0]
    if use_hidden_bias is None:  # take the biases when the first layer has one
        first = params.get(LAYERS[0])
        use_hidden_bias = isinstance(first, Mapping) and "bias" in first
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in LAYERS:
        dense = params.get(layer)
        if dense is None:
            continue
        path = f"{prefix}/{layer}"
        if not isinstance(dense, Mapping):
            problems.append(f"{path}: expected a mapping with keys ['bias', 'kernel'], got {describe(dense)}")
            continue
        optional = {"bias": ("use_hidden_bias", use_hidden_bias)}
        problems += key_problems(path, dense, {"kernel"}, optional)
        leaves = {
            f"{layer}/kernel": (dense.get("kernel"), 2, "(n_visible, n_hidden)"),
            f"{layer}/bias": (dense.get("bias") if use_hidden_bias else None, 1, "(n_hidden,)"),
        }
        found, issues = leaf_problems(prefix, leaves)
        shapes |= found
        problems += issues
    kernels = [shapes.get(f"{layer}/kernel") for layer in LAYERS]
    if kernels[0] is None:
        return problems
    n_hidden = kernels[0][1]
    if kernels[1] is not None and kernels[1] != kernels[0]:
        problems.append(
            f"{prefix}/{LAYERS[1]}/kernel: expected the shape of {LAYERS[0]}/kernel, {kernels[0]}, "
            f"got shape {kernels[1]}"
        )
    problems += kernel_problems(f"{prefix}/{LAYERS[0]}/kernel", kernels[0], loading.alpha)
    biases = {f"{layer}/bias": (n_hidden, "n_hidden,") for layer in LAYERS}
    return problems + shape_problems(prefix, shapes, biases)
