"""The pieces the model interface is built from: initializers, the groups of
hidden units and their coefficients, the dense view's parameters and its
product $\\theta = \\phi W + b$."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.core import Tracer
from jax.sharding import AxisType, NamedSharding, PartitionSpec
from jaxtyping import Array, PRNGKeyArray

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


Inits = tuple[Initializer, Initializer, Initializer]
"""`(kernel_init, hidden_bias_init, visible_bias_init)`."""
Flags = tuple[bool, bool]
"""`(use_hidden_bias, use_visible_bias)`."""
Parameters = tuple[Array, Array | None, Array | None]
"""`(kernel, hidden_bias, visible_bias)`, a disabled bias `None`."""


Coefficients = tuple[complex | float | int, ...]
"""The output coefficients $c_g$ of the groups of hidden units, one per group."""

ONE_GROUP: Coefficients = (1,)
"""Every hidden unit in one group with coefficient 1: $\\log\\psi = \\sum_h f(\\theta_h) + \\phi\\cdot a$."""


def weighted_groups(coefficients: Coefficients, per_group: Callable[..., Array], *arrays: Array) -> Array:
    """$\\sum_g c_g\\,$`per_group(*arrays[..., g])`, each array's last axis split into the equal groups.

    One group of coefficient 1 is `per_group(*arrays)` itself. A coefficient
    1 multiplies nothing, so that a real group's term stays real until a
    complex coefficient joins it (as NetKet's `re + 1j * im` does).
    """
    if coefficients == ONE_GROUP:
        return per_group(*arrays)
    splits = [jnp.split(a, len(coefficients), axis=-1) for a in arrays]
    out: Any = None
    for g, c in enumerate(coefficients):
        if c == 0 and any(coefficients):  # a group that contributes nothing is not evaluated
            continue
        term = per_group(*(parts[g] for parts in splits))
        term = term if c == 1 else c * term
        out = term if out is None else out + term
    return out


def grouped_sum(coefficients: Coefficients, values: Array) -> Array:
    """$\\sum_g c_g \\sum_{h \\in g} v_h$ over the last axis (for one group of 1, the plain sum)."""
    return weighted_groups(coefficients, lambda block: jnp.sum(block, axis=-1), values)


def grouped_scale(coefficients: Coefficients, values: Array) -> Array:
    """`values` with each group's units times its coefficient $c_g$ (last axis; one group of 1: unchanged)."""
    if coefficients == ONE_GROUP:
        return values
    blocks = jnp.split(values, len(coefficients), axis=-1)
    scaled = [b if c == 1 else c * b for c, b in zip(coefficients, blocks, strict=True)]
    return jnp.concatenate(scaled, axis=-1)


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


def gradient_like(model: Any, kernel: Any, hidden_bias: Any, visible_bias: Any) -> Any:
    """The model-shaped pytree of a gradient given on the dense view; disabled biases stay `None`."""
    return model.from_dense_gradient(
        Dense(
            kernel,
            hidden_bias if model.use_hidden_bias else None,
            visible_bias if model.use_visible_bias else None,
        )
    )


def outer_product_rows(model: Any, features: Array, dactivation: Array) -> Any:
    """`log_derivative_rows` of a model whose dense view holds each parameter once: the outer product."""
    kernel = features[..., :, None] * dactivation[..., None, :]
    return gradient_like(model, kernel, dactivation, features)


def replace_parameters(model: Any, kernel: Any, hidden_bias: Any, visible_bias: Any) -> Any:
    """`model` with its three parameter fields replaced (a `None` bias stays `None`)."""
    where = lambda m: (m.kernel, m.hidden_bias, m.visible_bias)  # noqa: E731
    return eqx.tree_at(where, model, (kernel, hidden_bias, visible_bias), is_leaf=lambda v: v is None)
