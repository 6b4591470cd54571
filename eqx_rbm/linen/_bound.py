"""Collections, RNG streams and variable scopes behind the Linen-style twins.

This reimplements the small part of Flax's scope machinery the twins need,
without importing Flax: collection filters, RNG streams whose keys are derived
exactly as Flax derives them, and a mutable store of nested variable dicts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from collections.abc import Collection, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class DenyList:
    """A collection filter that matches every collection except those in `deny`.

    The same filter as `flax.core.DenyList`, available without Flax; a Flax
    `DenyList` is accepted wherever this one is.

    **Arguments:**

    - `deny`: a filter (bool, collection name, collection of names or another
      `DenyList`) for the collections to exclude.
    """

    deny: Any


CollectionFilter = bool | str | Collection[str] | DenyList
"""`True`/`False` (every/no collection), a name, a collection of names, or a `DenyList`."""

DEFAULT_MUTABLE = DenyList("intermediates")


def check_filter(name: str, filter_: Any) -> None:
    """Raises a `TypeError` naming `name` if `filter_` is not a collection filter."""
    if isinstance(filter_, bool | str):
        return
    if hasattr(filter_, "deny"):
        check_filter(f"{name}.deny", filter_.deny)
        return
    if isinstance(filter_, Collection) and all(isinstance(c, str) for c in filter_):
        return
    raise TypeError(
        f"{name}: expected a bool, a collection name, a collection of names or a DenyList, got {filter_!r}"
    )


def in_filter(filter_: Any, collection: str) -> bool:
    """Whether `collection` is selected by `filter_` (Flax's filter semantics)."""
    if isinstance(filter_, bool):
        return filter_
    if isinstance(filter_, str):
        return collection == filter_
    # Duck-typed so that flax.core.DenyList works without importing Flax.
    if hasattr(filter_, "deny"):
        return not in_filter(filter_.deny, collection)
    return collection in filter_


def is_key(value: Any) -> bool:
    """A typed JAX key of shape `()` or a raw `uint32[2]` key (concrete or traced)."""
    dtype = getattr(value, "dtype", None)
    shape = getattr(value, "shape", None)
    if dtype is None or shape is None:
        return False
    if jnp.issubdtype(dtype, jax.dtypes.prng_key):
        return tuple(shape) == ()
    return np.dtype(dtype) == np.uint32 and tuple(shape) == (2,)


def normalise_rngs(name: str, rngs: Any, *, required: bool) -> dict[str, Any]:
    """`rngs` as a dict of streams; a bare key feeds the `'params'` stream."""
    if rngs is None and not required:
        return {}
    if isinstance(rngs, Mapping):
        bad = {k: v for k, v in rngs.items() if not isinstance(k, str) or not is_key(v)}
        if bad:
            shown = ", ".join(f"{k!r}: {_describe_key(v)}" for k, v in bad.items())
            raise TypeError(
                f"{name}: expected a mapping from stream names to PRNG keys (jax.random.key(...) or "
                f"jax.random.PRNGKey(...)), got {shown}"
            )
        return dict(rngs)
    if is_key(rngs):
        return {"params": rngs}
    raise TypeError(
        f"{name}: expected a PRNG key (jax.random.key(...) or jax.random.PRNGKey(...)) or a mapping "
        f"{{'params': key}}, got {_describe_key(rngs)}"
    )


def _describe_key(value: Any) -> str:
    dtype = getattr(value, "dtype", None)
    if dtype is not None:
        return f"an array of shape {tuple(value.shape)} and dtype {dtype}"
    return f"{type(value).__name__} {value!r}"


def _fix_rng_separator() -> bool:
    # Follow Flax's flag when Flax is loaded, so keys agree under either setting.
    flax = sys.modules.get("flax")
    config = getattr(flax, "config", None)
    return bool(getattr(config, "flax_fix_rng_separator", False))


def fold_in_path(key: Any, data: tuple[str | int, ...]) -> Any:
    """Derives the key for `data` (scope names, then a counter) as Flax does.

    Flax hashes the static path with SHA-1 and folds the first four bytes of
    the digest, big-endian, into the stream's key, so using the same scheme
    makes `init` reproduce NetKet's parameters for the same key.
    """
    if not data:
        return key
    digest = hashlib.sha1()
    separator = _fix_rng_separator()
    for item in data:
        if separator:
            digest.update(b"\x00")
        if isinstance(item, str):
            digest.update(item.encode("utf-8"))
        else:
            digest.update(item.to_bytes((item.bit_length() + 7) // 8, byteorder="big"))
    return jax.random.fold_in(key, jnp.uint32(int.from_bytes(digest.digest()[:4], byteorder="big")))


def copy_tree(variables: Mapping[str, Any]) -> dict[str, Any]:
    """Plain nested dicts with the same leaves (FrozenDicts and mappings become dicts)."""
    return {str(k): copy_tree(v) if isinstance(v, Mapping) else v for k, v in variables.items()}


@dataclasses.dataclass
class Call:
    """One recorded module call, for `tabulate`."""

    path: tuple[str, ...]
    module: str
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    outputs: Any


class Root:
    """The state shared by a bound twin and its children."""

    def __init__(
        self,
        variables: dict[str, Any],
        *,
        rngs: dict[str, Any],
        mutable: Any,
        initializing: bool,
        calls: list[Call] | None = None,
    ):
        self.variables = variables
        self.rngs = rngs
        self.mutable = mutable
        self.initializing = initializing
        self.calls = calls
        self.counters: dict[tuple[tuple[str, ...], str], int] = {}

    def mutated(self) -> dict[str, Any]:
        return {col: value for col, value in self.variables.items() if in_filter(self.mutable, col)}


class Scope:
    """A view of a `Root` at a module path."""

    def __init__(self, root: Root, path: tuple[str, ...] = ()):
        self.root = root
        self.path = path

    def child(self, name: str) -> Scope:
        return Scope(self.root, (*self.path, name))

    def _node(self, collection: str, *, create: bool) -> dict[str, Any] | None:
        if collection not in self.root.variables:
            if not create:
                return None
            self.root.variables[collection] = {}
        node = self.root.variables[collection]
        for name in self.path:
            if name not in node:
                if not create:
                    return None
                node[name] = {}
            node = node[name]
        return node

    def variables(self) -> dict[str, Any]:
        out = {}
        for collection in self.root.variables:
            node = self._node(collection, create=False)
            if node is not None:
                out[collection] = node
        return out

    def collection(self, collection: str) -> dict[str, Any] | None:
        return self._node(collection, create=False)

    def has_variable(self, collection: str, name: str) -> bool:
        node = self._node(collection, create=False)
        return node is not None and name in node

    def get_variable(self, collection: str, name: str) -> Any:
        node = self._node(collection, create=False)
        return None if node is None else node.get(name)

    def is_mutable(self, collection: str) -> bool:
        return in_filter(self.root.mutable, collection)

    def put_variable(self, collection: str, name: str, value: Any) -> None:
        if not self.is_mutable(collection):
            where = "/" + "/".join(self.path)
            raise ValueError(
                f"put_variable: cannot set {collection!r}/{name!r} in {where!r}: collection {collection!r} "
                f"is not mutable (mutable={self.root.mutable!r}); pass mutable=[{collection!r}] or "
                "mutable=True to bind/apply/init"
            )
        node = self._node(collection, create=True)
        assert node is not None
        node[name] = value

    def has_rng(self, name: str) -> bool:
        return name in self.root.rngs

    def make_rng(self, name: str = "params") -> Any:
        if name not in self.root.rngs:
            if "params" not in self.root.rngs:
                raise ValueError(
                    f"make_rng: no RNG stream {name!r} (and no 'params' stream to fall back on); pass "
                    f"rngs={{{name!r}: key}} to init/apply/bind. Streams given: {sorted(self.root.rngs)}"
                )
            name = "params"
        counter_key = (self.path, name)
        self.root.counters[counter_key] = self.root.counters.get(counter_key, 0) + 1
        return fold_in_path(self.root.rngs[name], (*self.path, self.root.counters[counter_key]))
