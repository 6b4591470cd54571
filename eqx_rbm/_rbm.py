"""The restricted Boltzmann machine as an Equinox module."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from beartype import beartype
from jax.core import Tracer
from jax.sharding import AxisType, NamedSharding, PartitionSpec
from jaxtyping import Array, Inexact, Num, PRNGKeyArray, jaxtyped

from ._checks import (
    check_alpha,
    check_last_dim,
    check_numeric,
    check_param_dtype,
    check_positive_int,
    n_hidden_for,
)
from ._log_cosh import log_cosh

Initializer = Callable[..., Any]
"""The `jax.nn.initializers` signature: `init(key, shape, dtype) -> Array`."""

default_init: Initializer = jax.nn.initializers.normal(stddev=0.01)
"""Normal with standard deviation 0.01: NetKet's default for every RBM parameter."""


def _initialise(
    name: str, init: Initializer, key: PRNGKeyArray, shape: tuple[int, ...], dtype: np.dtype
) -> Array:
    value = jnp.asarray(init(key, shape, dtype))
    if value.shape != shape:
        raise ValueError(f"{name}: the initializer returned shape {value.shape}, expected {shape}")
    if value.dtype != dtype:
        raise TypeError(f"{name}: the initializer returned dtype {value.dtype}, expected param_dtype={dtype}")
    return value


def _on_mesh_of(x: Any, param: Array) -> Array:
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


class RBM(eqx.Module):
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
    _alpha: float | int = eqx.field(static=True)

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
        self._alpha = check_alpha(alpha)
        dtype = check_param_dtype(param_dtype)
        if not callable(activation):
            raise TypeError(f"activation: expected a callable, got {activation!r}")
        n_hidden = n_hidden_for(alpha, n_visible)
        k_kernel, k_hidden, k_visible = jax.random.split(key, 3)
        self.kernel = _initialise("kernel_init", kernel_init, k_kernel, (n_visible, n_hidden), dtype)
        self.hidden_bias = (
            _initialise("hidden_bias_init", hidden_bias_init, k_hidden, (n_hidden,), dtype)
            if use_hidden_bias
            else None
        )
        self.visible_bias = (
            _initialise("visible_bias_init", visible_bias_init, k_visible, (n_visible,), dtype)
            if use_visible_bias
            else None
        )
        self.activation = activation
        self.precision = precision

    @property
    def n_visible(self) -> int:
        """Number of visible units, `kernel.shape[0]`."""
        return self.kernel.shape[0]

    @property
    def n_hidden(self) -> int:
        """Number of hidden units, `kernel.shape[1]`."""
        return self.kernel.shape[1]

    @property
    def alpha(self) -> float | int:
        """The hidden-unit density the model was built with."""
        return self._alpha

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

    @jaxtyped(typechecker=beartype)
    def __call__(self, x: Num[Array | np.ndarray, "*batch n_visible"]) -> Inexact[Array, "*batch"]:
        """**Arguments:**

        - `x`: configurations of shape `(*batch, n_visible)`, with any number of
          leading batch dimensions (including none).

        **Returns:**

        $\\log\\psi(x)$ of shape `(*batch,)`, in the dtype that `x` and the
        parameters promote to (as `flax.linen.Dense` does).
        """
        check_numeric("x", x, allow_complex=True)
        check_last_dim("x", x.shape, self.n_visible, "n_visible")
        return self.log_psi_from_theta(x, self.theta(x))

    def theta(self, x: Array | np.ndarray) -> Array:
        """Hidden pre-activations $\\theta = xW + b$, shape `(*batch, n_hidden)`."""
        params = [p for p in (self.kernel, self.hidden_bias) if p is not None]
        dtype = jnp.result_type(x, *params)
        kernel = self.kernel.astype(dtype)
        rows = math.prod(x.shape[:-1])
        if jnp.issubdtype(dtype, jnp.complexfloating) and not jnp.iscomplexobj(x) and rows >= 8:
            # Real configurations against complex weights: one real product with
            # [Re W | Im W] does a quarter of the multiplications of a complex one.
            # Below a few rows, building [Re W | Im W] costs more than it saves.
            x = jnp.asarray(x, jnp.finfo(dtype).dtype)
            both = jax.lax.dot_general(
                x,
                _on_mesh_of(x, jnp.concatenate([kernel.real, kernel.imag], axis=-1)),
                (((x.ndim - 1,), (0,)), ((), ())),
                precision=self.precision,
            )
            n_hidden = kernel.shape[-1]
            theta = jax.lax.complex(both[..., :n_hidden], both[..., n_hidden:])
        else:
            x = jnp.asarray(x, dtype)
            theta = jax.lax.dot_general(
                x,
                _on_mesh_of(x, kernel),
                (((x.ndim - 1,), (0,)), ((), ())),
                precision=self.precision,
            )
        if self.hidden_bias is not None:
            theta = theta + self.hidden_bias.astype(dtype)
        return theta

    def log_psi_from_theta(self, x: Array | np.ndarray, theta: Array) -> Array:
        """$\\log\\psi$ given the pre-activations `theta` of the same `x`."""
        out = jnp.sum(self.activation(theta), axis=-1)
        if self.visible_bias is not None:
            out = out + jnp.dot(x, _on_mesh_of(x, self.visible_bias), precision=self.precision)
        return out
