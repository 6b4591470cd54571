r"""The interface every model of the RBM family implements.

A model of the family encodes a configuration $x$ (one value per site) into
visible features, and is, in its *dense view*, an RBM on those features:

$$\log\psi(x) = \sum_h f(\theta_h) + \phi(x)\cdot a, \qquad \theta = \phi(x)\,W + b,$$

with $\phi$ the encoding (the identity for spins, one-hot blocks for
multi-valued sites), $W$ of shape `(n_features, n_hidden)` and
`n_features = n_sites * features_per_site`. Local updates, derivatives,
samplers and interop are written once against this view.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Self

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from beartype import beartype
from jax.core import Tracer
from jax.sharding import AxisType, NamedSharding, PartitionSpec
from jaxtyping import Array, Inexact, Num, PRNGKeyArray, jaxtyped

from ._checks import check_param_dtype, guarded_zero, n_hidden_for

Initializer = Callable[..., Any]
"""The `jax.nn.initializers` signature: `init(key, shape, dtype) -> Array`."""

default_init: Initializer = jax.nn.initializers.normal(stddev=0.01)
"""Normal with standard deviation 0.01: NetKet's default for every RBM parameter."""


class Given:
    """An initializer returning a given array as it is (used by `from_arrays`)."""

    def __init__(self, value: Any):
        self.value = value

    def __call__(self, key: PRNGKeyArray, shape: tuple[int, ...], dtype: Any) -> Array:
        del key, dtype
        return jnp.asarray(self.value)


def initialise(name: str, init: Initializer, key: PRNGKeyArray, shape: tuple[int, ...], dtype: Any) -> Array:
    """`init(key, shape, dtype)`, refusing a result of another shape or dtype.

    Arrays given to `from_arrays` keep their own floating or complex dtype, as
    Flax's parameters do.
    """
    value = jnp.asarray(init(key, shape, dtype))
    if value.shape != shape:
        raise ValueError(f"{name}: the initializer returned shape {value.shape}, expected {shape}")
    if isinstance(init, Given):
        if not jnp.issubdtype(value.dtype, jnp.inexact):
            raise TypeError(f"{name}: expected a floating or complex array, got dtype {value.dtype}")
    elif value.dtype != dtype:
        raise TypeError(f"{name}: the initializer returned dtype {value.dtype}, expected param_dtype={dtype}")
    return value


def infer_alpha(n_visible: int, n_hidden: int) -> float | int:
    """An `alpha` with `int(alpha * n_visible) == n_hidden` (an int when it divides)."""
    if n_hidden % n_visible == 0:
        return n_hidden // n_visible
    alpha = n_hidden / n_visible
    while int(alpha * n_visible) < n_hidden:  # the quotient can round down by an ulp
        alpha = float(np.nextafter(alpha, np.inf))
    return alpha


class Dense(NamedTuple):
    """The parameters of a model's dense view; `None` for a disabled bias."""

    kernel: Array
    """Shape `(n_features, n_hidden)`."""
    hidden_bias: Array | None
    """Shape `(n_hidden,)`."""
    visible_bias: Array | None
    """Shape `(n_features,)`."""


def on_mesh_of(x: Any, param: Array) -> Array:
    """`param`, replicated on the explicit mesh that `x` is sharded over, if any.

    A product with a batch-sharded `x` has a transpose that contracts the
    batch axis. Under explicit axes JAX takes that gradient's sharding from the
    parameter's type, and a parameter on no mesh leaves it ambiguous (a
    `ShardingTypeError` unless `jax.set_mesh` is in effect). Outside explicit
    meshes this returns `param` unchanged and adds nothing to the program.
    """
    if not isinstance(x, Tracer) or not jax.sharding.get_abstract_mesh().empty:
        return param  # eager calls need nothing; under jax.set_mesh JAX knows the mesh
    sharding = jax.typeof(x).sharding
    mesh = sharding.mesh
    if mesh.empty or AxisType.Explicit not in mesh.axis_types or all(p is None for p in sharding.spec):
        return param  # no explicit batch sharding (also each sample inside jax.vmap)
    if not jax.typeof(param).sharding.mesh.empty:
        return param
    return jax.sharding.reshard(param, NamedSharding(mesh, PartitionSpec()))


def dense_theta(features: Any, kernel: Array, hidden_bias: Array | None, precision: Any) -> Array:
    """$\\theta = \\phi W + b$ for features of shape `(*batch, n_features)`.

    The product promotes as `flax.linen.Dense` does: to the dtype of the
    features and parameters together.
    """
    params = [p for p in (kernel, hidden_bias) if p is not None]
    dtype = jnp.result_type(features, *params)
    kernel = kernel.astype(dtype)
    rows = math.prod(features.shape[:-1])
    dims = (((features.ndim - 1,), (0,)), ((), ()))
    if jnp.issubdtype(dtype, jnp.complexfloating) and not jnp.iscomplexobj(features) and rows >= 8:
        # Real features against complex weights: one real product with
        # [Re W | Im W] does a quarter of the multiplications of a complex one.
        # Below a few rows, building [Re W | Im W] costs more than it saves.
        features = jnp.asarray(features, jnp.finfo(dtype).dtype)
        both = jnp.concatenate([kernel.real, kernel.imag], axis=-1)
        both = jax.lax.dot_general(features, on_mesh_of(features, both), dims, precision=precision)
        n_hidden = kernel.shape[-1]
        theta = jax.lax.complex(both[..., :n_hidden], both[..., n_hidden:])
    else:
        features = jnp.asarray(features, dtype)
        theta = jax.lax.dot_general(features, on_mesh_of(features, kernel), dims, precision=precision)
    if hidden_bias is not None:
        theta = theta + hidden_bias.astype(dtype)
    return theta


class AbstractRBM(eqx.Module):
    r"""A model of the RBM family: an RBM on encoded visible features.

    Subclasses say how a configuration is encoded (`site_features`, with the
    value checks `check_values` and `values_invalid`) and which dense RBM
    parameters they stand for (`dense`, with its transpose
    `from_dense_gradient`); the forward pass, local updates
    ([`eqx_rbm.LocalState`][]), closed-form derivatives, the sampler and the
    variables adapters are written once against these members. Two members
    let a model whose dense view ties parameters (a symmetric one) keep the
    derivatives cheap: `log_derivative_rows` and `factorised_kernel`.

    Every model is built through its `__init__` or its `from_arrays`
    classmethod.
    """

    kernel: eqx.AbstractVar[Array]
    hidden_bias: eqx.AbstractVar[Array | None]
    visible_bias: eqx.AbstractVar[Array | None]
    activation: eqx.AbstractVar[Callable[[Array], Array]]
    precision: eqx.AbstractVar[Any]
    alpha: eqx.AbstractVar[float | int]
    if TYPE_CHECKING:  # pyright does not know equinox's AbstractClassVar
        factorised_kernel: ClassVar[bool]
    else:
        factorised_kernel: eqx.AbstractClassVar[bool]
    """Whether [`eqx_rbm.Jacobian.kernel`][] uses the factorised form of the dense view.

    That form is exact when `dense()` returns the parameters themselves. A
    model whose dense view ties several entries to one parameter (a
    symmetric one) sets it false: its kernel is the Gram matrix of the
    materialised `(n_samples, n_params)` rows.
    """

    @property
    @abc.abstractmethod
    def n_sites(self) -> int:
        """Number of sites, the length of a configuration."""

    @property
    @abc.abstractmethod
    def features_per_site(self) -> int:
        """Visible features per site: 1 for spins, `n_classes` for one-hot sites."""

    @abc.abstractmethod
    def site_features(self, values: Array) -> Array:
        """Features of site values, shape `(*values.shape, features_per_site)`, unchecked."""

    @abc.abstractmethod
    def check_values(self, values: Any, name: str) -> None:
        """Raises on site values this model cannot encode (dtype at trace time, values eagerly)."""

    @abc.abstractmethod
    def values_invalid(self, values: Array) -> Array | None:
        """A traced scalar, true when some value is not encodable; `None` when all are."""

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

    def invalid_message(self, name: str) -> str:
        """The run-time error for values `values_invalid` flags."""
        return f"{name} holds a value this model cannot encode"

    def theta(self, x: Any) -> Inexact[Array, "*batch n_hidden"]:
        """Hidden pre-activations $\\theta = \\phi(x) W + b$, shape `(*batch, n_hidden)`."""
        dense = self.dense()
        return dense_theta(self.encode(x), dense.kernel, dense.hidden_bias, self.precision)

    def log_psi_from_theta(self, x: Any, theta: Array) -> Inexact[Array, "*batch"]:
        """$\\log\\psi(x)$ given the pre-activations `theta` of the same `x`."""
        return self.log_psi_from_features(self.encode(x), theta)

    def log_psi_from_features(self, features: Any, theta: Array) -> Inexact[Array, "*batch"]:
        """$\\sum_h f(\\theta_h) + \\phi \\cdot a$ for already encoded features."""
        out = jnp.sum(self.activation(theta), axis=-1)
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


def init_parameters(
    n_features: int,
    alpha: float | int,
    *,
    param_dtype: Any,
    use_hidden_bias: bool,
    use_visible_bias: bool,
    inits: tuple[Initializer, Initializer, Initializer],
    key: PRNGKeyArray,
) -> tuple[Array, Array | None, Array | None]:
    """`(kernel, hidden_bias, visible_bias)` of a dense RBM on `n_features` features, drawn as NetKet does.

    `n_hidden = int(alpha * n_features)`; one key each, split in NetKet's
    order; a disabled bias is `None`.
    """
    n_hidden = n_hidden_for(alpha, n_features)
    shapes = ((n_features, n_hidden), (n_hidden,), (n_features,))
    dtype = check_param_dtype(param_dtype)
    keys = jax.random.split(key, 3)
    names = ("kernel_init", "hidden_bias_init", "visible_bias_init")
    used = (True, use_hidden_bias, use_visible_bias)
    kernel, hidden, visible = (
        initialise(name, init, k, shape, dtype) if on else None
        for name, init, k, shape, on in zip(names, inits, keys, shapes, used, strict=True)
    )
    assert kernel is not None
    return kernel, hidden, visible


def given_arrays(kernel: Array, hidden_bias: Any, visible_bias: Any, alpha: float | int | None) -> dict:
    """The `__init__` keywords that make a model hold the given arrays (see `from_arrays`)."""
    n_features, n_hidden = kernel.shape
    return {
        "alpha": infer_alpha(n_features, n_hidden) if alpha is None else alpha,
        "use_hidden_bias": hidden_bias is not None,
        "use_visible_bias": visible_bias is not None,
        "param_dtype": kernel.dtype,
        "kernel_init": Given(kernel),
        "hidden_bias_init": Given(hidden_bias),
        "visible_bias_init": Given(visible_bias),
        "key": jax.random.key(0),  # unused: every initializer returns its array
    }


def gradient_like(model: Any, kernel: Any, hidden_bias: Any, visible_bias: Any) -> Any:
    """The model-shaped pytree of a gradient given on the dense view; disabled biases stay `None`."""
    return model.from_dense_gradient(
        Dense(
            kernel,
            hidden_bias if model.use_hidden_bias else None,
            visible_bias if model.use_visible_bias else None,
        )
    )


def dense_log_derivative_rows(model: Any, features: Array, dactivation: Array) -> Any:
    """`log_derivative_rows` of a model whose dense view is its parameters: the outer product."""
    kernel = features[..., :, None] * dactivation[..., None, :]
    return gradient_like(model, kernel, dactivation, features)


def replace_parameters(model: Any, kernel: Any, hidden_bias: Any, visible_bias: Any) -> Any:
    """`model` with its three parameter fields replaced (a `None` bias stays `None`)."""
    where = lambda m: (m.kernel, m.hidden_bias, m.visible_bias)  # noqa: E731
    return eqx.tree_at(where, model, (kernel, hidden_bias, visible_bias), is_leaf=lambda v: v is None)
