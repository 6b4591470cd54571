"""Batch-preserving gathers and contractions that also work under explicit mesh axes.

Under a mesh with *explicit* axis types (`jax.make_mesh`'s default), JAX
refuses operations whose output sharding is ambiguous: a gather from a
replicated table with batch-sharded indices, a product contracting the
sharded batch axis, or a Gram matrix whose two axes would both be sharded.
These helpers state the intended output sharding there (batch-sharded rows,
replicated reductions) and are plain `jax.numpy` calls otherwise.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import AxisType, PartitionSpec


def _explicit() -> bool:
    mesh = jax.sharding.get_abstract_mesh()
    return not mesh.empty and any(t == AxisType.Explicit for t in mesh.axis_types)


def _spec(a: Any) -> tuple:
    """`a`'s partition spec padded to one entry per dimension (explicit meshes only)."""
    spec = tuple(jax.typeof(a).sharding.spec)
    return spec + (None,) * (jnp.ndim(a) - len(spec))


def gather_rows(table: jax.Array, index: jax.Array) -> jax.Array:
    """`table[index]` along axis 0, shaped `(*index.shape, *table.shape[1:])`.

    Indices must already be validated: out-of-range ones are clipped. Under
    explicit axes the output is sharded like `index`, never gathered onto
    every device.
    """
    if not _explicit():
        return jnp.take(table, index, axis=0, mode="clip")
    spec = PartitionSpec(*_spec(index), *(None,) * (table.ndim - 1))
    return table.at[index].get(mode="clip", out_sharding=spec)


def batch_contract(a: jax.Array, b: jax.Array, precision: Any = None) -> jax.Array:
    """$a^T b$, summing over the leading (batch) axis of both; replicated under explicit axes."""
    dtype = jnp.result_type(a, b)
    return jax.lax.dot_general(
        a.astype(dtype),
        b.astype(dtype),
        (((0,), (0,)), ((), ())),
        precision=precision,
        out_sharding=PartitionSpec() if _explicit() else None,
    )


def replicated(a: jax.Array) -> jax.Array:
    """`a` on every device under explicit axes (for a batch vector used along columns)."""
    return jax.sharding.reshard(a, PartitionSpec()) if _explicit() else a


def gram(a: jax.Array, b: jax.Array, precision: Any = None) -> jax.Array:
    """$a b^T$ for two batches of rows: an `(n, n)` matrix whose rows keep `a`'s sharding."""
    if _explicit():
        b = jax.sharding.reshard(b, PartitionSpec())
    if not (jnp.iscomplexobj(a) or jnp.iscomplexobj(b)):
        return jnp.matmul(a, b.T, precision=precision)
    # XLA's complex product on CPU is several times slower than real products
    # doing the same multiplications: a b^T = [Re a | Im a] [Re b | -Im b]^T
    # + i [Re a | Im a] [Im b | Re b]^T.
    a, b = jnp.asarray(a), jnp.asarray(b)
    rows = jnp.concatenate([a.real, a.imag], axis=-1)
    real = jnp.concatenate([b.real, -b.imag], axis=-1)
    imag = jnp.concatenate([b.imag, b.real], axis=-1)
    return jax.lax.complex(
        jnp.matmul(rows, real.T, precision=precision), jnp.matmul(rows, imag.T, precision=precision)
    )
