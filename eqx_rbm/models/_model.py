r"""The interface every model of the RBM family implements.

A model of the family encodes a configuration $x$ (one value per site) into
visible features, and is, in its *dense view*, an RBM on those features:

$$\log\psi(x) = \sum_g c_g \sum_{h \in g} f(\theta_h) + \phi(x)\cdot a, \qquad \theta = \phi(x)\,W + b,$$

with $\phi$ the encoding (the identity for spins, one-hot blocks for
multi-valued sites), $W$ of shape `(n_features, n_hidden)`,
`n_features = n_sites * features_per_site`, and the hidden units split into
equal consecutive groups $g$ with output coefficients $c_g$
(`hidden_coefficients`: one group with $c = 1$ for NetKet's RBMs, a modulus
and a phase group, $c = (1, i)$, for `RBMModPhase`). Local updates,
derivatives, samplers and interop are written once against this view.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Self

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from beartype import beartype
from jax.core import Tracer
from jaxtyping import Array, Inexact, Num, PRNGKeyArray, jaxtyped

from ..internal._checks import guarded_zero
from ._encoding import AbstractEncoding, LocalStates
from ._parts import (
    ONE_GROUP,
    Coefficients,
    Dense,
    Flags,
    Inits,
    Parameters,
    dense_theta,
    grouped_sum,
    on_mesh_of,
)
from ._variables_checks import Loading


class AbstractRBM(eqx.Module, strict=True):
    r"""A model of the RBM family: an RBM on encoded visible features.

    A model is composed of an `encoding` (an [`eqx_rbm.AbstractEncoding`][]:
    how a site's value becomes features, which values are valid, which
    values samplers propose) and parameters that stand for a dense RBM
    (`dense`, with its transpose `from_dense_gradient`). The forward pass,
    local updates ([`eqx_rbm.LocalState`][]), closed-form derivatives, the
    sampler and the variables adapters are written once against these
    members. Two members let a model whose dense view ties parameters (a
    symmetric one) keep the derivatives cheap: `log_derivative_rows` and
    `factorised_kernel`.

    Each final model also says, as data, how it is stored and converted:
    `layout_keywords` and `layout()` (the constructor keywords no array
    holds), `params_tree()` / `from_params` (NetKet's variables layout) and
    `twin_name` (its Flax twin in `eqx_rbm.linen`).

    Every model is built through its `__init__` or its `from_arrays`
    classmethod.
    """

    kernel: eqx.AbstractVar[Array]
    hidden_bias: eqx.AbstractVar[Array | None]
    visible_bias: eqx.AbstractVar[Array | None]
    activation: eqx.AbstractVar[Callable[[Array], Array]]
    precision: eqx.AbstractVar[Any]
    alpha: eqx.AbstractVar[float | int]
    encoding: eqx.AbstractVar[AbstractEncoding]
    """How a site's value becomes features; a final model narrows it (its fields are frozen once built)."""
    if TYPE_CHECKING:  # pyright does not know equinox's AbstractClassVar
        layout_keywords: ClassVar[frozenset[str]]
        twin_name: ClassVar[str]
        from_arrays: ClassVar[Callable[..., Any]]  # each final model has its own keywords
        factorised_kernel: ClassVar[bool]
    else:
        layout_keywords: eqx.AbstractClassVar[frozenset[str]]
        twin_name: eqx.AbstractClassVar[str]
        factorised_kernel: eqx.AbstractClassVar[bool]
    """Whether [`eqx_rbm.Jacobian.kernel`][] uses the factorised form of the dense view.

    That form is exact when `dense()` returns the parameters themselves. A
    model whose dense view ties several entries to one parameter (a
    symmetric one) sets it false: its kernel is the Gram matrix of the
    materialised `(n_samples, n_params)` rows.
    """
    hidden_coefficients: ClassVar[Coefficients] = ONE_GROUP
    r"""The output coefficients $c_g$ of the dense view's groups of hidden units.

    The `n_hidden` units split into `len(hidden_coefficients)` equal
    consecutive groups, and $\log\psi = \sum_g c_g \sum_{h \in g}
    f(\theta_h) + \phi\cdot a$. Every sum over hidden units (the forward pass,
    local updates, derivatives, the SR kernel, the sampler) weighs the groups
    so; the one place that says which paths take several groups is each
    path's own `applies` check.
    """
    bias_keywords: ClassVar[tuple[str, ...]] = ("use_hidden_bias", "use_visible_bias")
    """The bias switches of the constructor and the Flax twin (NetKet's RBMModPhase has no visible bias)."""

    @property
    @abc.abstractmethod
    def n_sites(self) -> int:
        """Number of sites, the length of a configuration."""

    @property
    def features_per_site(self) -> int:
        """Visible features per site: 1 for spins, `n_classes` for one-hot sites."""
        return self.encoding.features_per_site

    @property
    def local_states(self) -> LocalStates:
        """The values a site takes (those of the encoding), as samplers propose them."""
        return self.encoding.local_states

    def site_features(self, values: Array) -> Array:
        """Features of site values, shape `(*values.shape, features_per_site)`, unchecked."""
        return self.encoding.site_features(values)

    def check_values(self, values: Any, name: str) -> None:
        """Raises on site values this model cannot encode (dtype at trace time, values eagerly)."""
        self.encoding.check_values(values, name)

    def values_invalid(self, values: Array) -> Array | None:
        """A traced scalar, true when some value is not encodable; `None` when all are."""
        return self.encoding.values_invalid(values)

    def invalid_message(self, name: str) -> str:
        """The run-time error for values `values_invalid` flags."""
        return self.encoding.invalid_message(name)

    @abc.abstractmethod
    def layout(self) -> dict[str, Any]:
        """The `from_arrays` keywords (`layout_keywords`) that no array holds, with this model's values."""

    @abc.abstractmethod
    def params_tree(self) -> dict[str, Any]:
        """The `params` collection of NetKet's variables for this model, in NetKet's key order."""

    @classmethod
    @abc.abstractmethod
    def from_params(cls, params: Any, problems: list[str], layout: dict[str, Any], loading: Loading) -> Self:
        """The model held by a `params` collection in NetKet's layout (the inverse of `params_tree`).

        **Arguments:**

        - `params`: the collection, not yet checked.
        - `problems`: problems already found in the variables around it.
        - `layout`: the `layout_keywords` and their values.
        - `loading`: `alpha`, the bias flags, `activation` and `precision`.

        **Raises:**

        [`eqx_rbm.VariablesError`][] listing `problems` and every problem of `params`.
        """

    @abc.abstractmethod
    def draw_parameters(
        self, n_sites: int, flags: Flags, dtype: Any, inits: Inits, key: PRNGKeyArray
    ) -> Parameters:
        """`(kernel, hidden_bias, visible_bias)` drawn with NetKet's keys, for `__init__` (see `build`)."""

    @abc.abstractmethod
    def dense(self) -> Dense:
        """The parameters of the dense view, `(kernel, hidden_bias, visible_bias)`."""

    @abc.abstractmethod
    def from_dense_gradient(self, gradient: Dense) -> Self:
        """The model-shaped pytree of a gradient given on the dense view.

        The arrays of `gradient` may carry leading batch dimensions (one set per
        sample), which the returned pytree keeps.
        """

    @abc.abstractmethod
    def log_derivative_rows(self, features: Array, dactivation: Array) -> Self:
        """Per-sample log-derivatives from the factors of the dense view.

        **Arguments:**

        - `features`: $\\phi(x)$, real, shape `(*batch, n_features)`.
        - `dactivation`: $f'(\\theta)$, shape `(*batch, n_hidden)`.

        **Returns:**

        `from_dense_gradient(Dense(features ⊗ dactivation, dactivation,
        features))`, a model-shaped pytree with the leading `*batch`
        dimensions, in the dtype the two promote to (a disabled bias stays
        `None`); a model with tied weights contracts the ties without forming
        the outer product.
        """

    @property
    def n_features(self) -> int:
        """Visible features, `n_sites * features_per_site`."""
        return self.n_sites * self.features_per_site

    @property
    def n_hidden(self) -> int:
        """Hidden units of the dense view, the length of $\\theta$."""
        return self.dense().kernel.shape[-1]

    @property
    def use_hidden_bias(self) -> bool:
        return self.hidden_bias is not None

    @property
    def use_visible_bias(self) -> bool:
        return self.visible_bias is not None

    @property
    def param_dtype(self) -> np.dtype:
        """The dtype of the parameters (that of `kernel`)."""
        return self.kernel.dtype

    @property
    def log_psi_dtype(self) -> np.dtype:
        """The dtype of $\\log\\psi$ and its log-derivatives: the parameters' and coefficients' promoted."""
        return np.dtype(jnp.result_type(self.param_dtype, *self.hidden_coefficients))

    @property
    def holomorphic(self) -> bool:
        """Whether $\\log\\psi$ is holomorphic in the parameters: complex ones.

        Real parameters with complex coefficients give a complex $\\log\\psi$ of
        real parameters, whose derivatives SR treats as NetKet does for
        non-holomorphic models (see [`eqx_rbm.sr_gradient`][]).
        """
        return bool(jnp.issubdtype(self.param_dtype, jnp.complexfloating))

    def encode(self, x: Any) -> Array:
        """Features $\\phi(x)$ of shape `(*batch, n_features)`, with every value checked.

        Unknown values raise a `ValueError` eagerly, and at run time (through
        `equinox.error_if`) under `jax.jit`.
        """
        self.check_values(x, "x")
        if jnp.ndim(x) == 0 or x.shape[-1] != self.n_sites:
            hint = ""
            if jnp.ndim(x) and x.shape[-1] == self.n_features != self.n_sites:
                hint = (
                    f"; pass the site values themselves, not encoded features (n_sites * "
                    f"features_per_site = {self.n_features}): the model encodes them"
                )
            raise ValueError(
                f"x: expected shape (*batch, n_sites) with n_sites={self.n_sites}, "
                f"got shape {tuple(x.shape)}{hint}"
            )
        x = jnp.asarray(x)
        features = self.site_features(x)
        features = features.reshape(*x.shape[:-1], self.n_features)
        invalid = self.values_invalid(x) if isinstance(x, Tracer) else None
        if invalid is not None:
            features = features + guarded_zero(
                features.dtype, invalid, f"{type(self).__name__}: {self.invalid_message('x')}"
            )
        return features

    def theta(self, x: Any) -> Inexact[Array, "*batch n_hidden"]:
        """Hidden pre-activations $\\theta = \\phi(x) W + b$, shape `(*batch, n_hidden)`."""
        dense = self.dense()
        return dense_theta(self.encode(x), dense.kernel, dense.hidden_bias, self.precision)

    def log_psi_from_theta(self, x: Any, theta: Array) -> Inexact[Array, "*batch"]:
        """$\\log\\psi(x)$ given the pre-activations `theta` of the same `x`."""
        return self.log_psi_from_features(self.encode(x), theta)

    def log_psi_from_features(self, features: Any, theta: Array) -> Inexact[Array, "*batch"]:
        """$\\sum_g c_g \\sum_{h \\in g} f(\\theta_h) + \\phi \\cdot a$ for already encoded features."""
        out = grouped_sum(self.hidden_coefficients, self.activation(theta))
        visible = self.dense().visible_bias
        if visible is not None:
            out = out + jnp.dot(features, on_mesh_of(features, visible), precision=self.precision)
        return out

    @jaxtyped(typechecker=beartype)
    def __call__(self, x: Num[Array | np.ndarray, "*batch n_sites"]) -> Inexact[Array, "*batch"]:
        """**Arguments:**

        - `x`: configurations of shape `(*batch, n_sites)`, with any number of
          leading batch dimensions (including none).

        **Returns:**

        $\\log\\psi(x)$ of shape `(*batch,)`, in the dtype that the features
        and the parameters promote to (as `flax.linen.Dense` does).
        """
        dense = self.dense()
        features = self.encode(x)
        theta = dense_theta(features, dense.kernel, dense.hidden_bias, self.precision)
        return self.log_psi_from_features(features, theta)


def final_models() -> tuple[type[AbstractRBM], ...]:
    """Every final model class defined so far, by name: the family that
    `from_variables` chooses from and that error messages name.

    Read from the class hierarchy, so a new model joins by subclassing
    [`eqx_rbm.AbstractRBM`][]; Equinox's strict convention names every
    abstract class `Abstract*`.
    """
    found: dict[str, type[AbstractRBM]] = {}
    pending = list(AbstractRBM.__subclasses__())
    while pending:
        kind = pending.pop()
        pending.extend(kind.__subclasses__())
        if not kind.__name__.startswith("Abstract"):
            found[f"{kind.__module__}.{kind.__qualname__}"] = kind
    return tuple(sorted(found.values(), key=lambda kind: kind.__name__))
