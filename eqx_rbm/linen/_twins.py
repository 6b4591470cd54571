"""Linen-style twins of NetKet's RBM models, usable without Flax."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar, cast

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, Num, PRNGKeyArray, Real

from .._checks import (
    check_alpha,
    check_last_dim,
    check_numeric,
    check_param_dtype,
    check_positive_int,
    n_hidden_for,
)
from .._log_cosh import log_cosh
from .._multival import RBMMultiVal as EqxRBMMultiVal
from .._one_hot import _check_local_states
from .._rbm import RBM as EqxRBM
from .._rbm import Initializer, _initialise, default_init
from ._bound import DEFAULT_MUTABLE, Call, Root, Scope, check_filter, copy_tree, normalise_rngs
from ._variables import VariableDict, VariablesError, build_model, check_multival_params, check_rbm_params

T = TypeVar("T")
RNGs = PRNGKeyArray | Mapping[str, PRNGKeyArray]
"""A key (it feeds the `'params'` stream) or a mapping from stream names to keys."""

Input = Num[ArrayLike, "*batch n"] | jax.ShapeDtypeStruct


def is_twin(value: Any) -> bool:
    return isinstance(value, _Twin)


def _is_abstract(*values: Any) -> bool:
    leaves = jax.tree.leaves(values, is_leaf=lambda v: isinstance(v, jax.ShapeDtypeStruct))
    return any(isinstance(v, jax.ShapeDtypeStruct) for v in leaves)


def _evaluate(fn: Callable[..., T], *args: Any) -> T:
    # ShapeDtypeStruct inputs (lazy_init, tabulate) are evaluated for their
    # shape only, so that creating parameters never computes on an input.
    if _is_abstract(*args):
        return jax.eval_shape(fn, *args)
    return fn(*args)


def _abstract(tree: Any) -> Any:
    return jax.tree.map(lambda v: jax.ShapeDtypeStruct(jnp.shape(v), jnp.result_type(v)), tree)


def _abstract_array(value: Any) -> Any:
    if isinstance(value, jax.Array | np.ndarray):
        return jax.ShapeDtypeStruct(value.shape, value.dtype)
    return value


def _root_for(variables: Any, rngs: Any, mutable: Any) -> Root:
    """The variable store of an `apply` or `bind`: a copy of `variables`, checked."""
    if not isinstance(variables, Mapping):
        raise TypeError(f"variables: expected a mapping {{'params': ...}}, got {type(variables).__name__}")
    check_filter("mutable", mutable)
    return Root(
        copy_tree(variables),
        rngs=normalise_rngs("rngs", rngs, required=False),
        mutable=mutable,
        initializing=False,
    )


class _Twin:
    """The Flax `Module` behaviour shared by the twins; subclasses are frozen dataclasses."""

    _scope: Scope | None = None

    if TYPE_CHECKING:
        # The dataclass fields every twin defines.
        __dataclass_fields__: ClassVar[dict[str, Any]]
        param_dtype: Any
        activation: Callable[[Array], Array]
        alpha: float | int
        use_hidden_bias: bool
        use_visible_bias: bool
        precision: Any
        kernel_init: Initializer
        hidden_bias_init: Initializer
        visible_bias_init: Initializer

    # Configuration checks shared by both twins.
    def _check_config(self) -> None:
        check_alpha(self.alpha)
        try:
            dtype = jnp.dtype(self.param_dtype)
        except TypeError as err:
            raise TypeError(
                f"param_dtype: expected a floating or complex dtype, got {self.param_dtype!r}"
            ) from err
        if not jnp.issubdtype(dtype, jnp.inexact):
            raise TypeError(f"param_dtype: expected a floating or complex dtype, got {dtype}")
        # A dtype object (not np.float64 vs jnp.float64) keeps equality and hashing consistent.
        object.__setattr__(self, "param_dtype", dtype)
        for name in ("activation", "kernel_init", "hidden_bias_init", "visible_bias_init"):
            value = getattr(self, name)
            if not callable(value):
                raise TypeError(f"{name}: expected a callable, got {value!r}")
        for name in ("use_hidden_bias", "use_visible_bias"):
            value = getattr(self, name)
            if not isinstance(value, bool | np.bool_):
                raise TypeError(f"{name}: expected a bool, got {value!r} ({type(value).__name__})")
            object.__setattr__(self, name, bool(value))

    def __repr__(self) -> str:
        parts = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.default is not dataclasses.MISSING and _same(value, field.default):
                continue
            parts.append(f"{field.name}={_short_repr(value)}")
        return f"{type(self).__name__}({', '.join(parts)})"

    # ----------------------------------------------------------------- Flax API

    def init_with_output(
        self,
        rngs: RNGs,
        *args: Any,
        method: Callable[..., Any] | str | None = None,
        mutable: Any = DEFAULT_MUTABLE,
        **kwargs: Any,
    ) -> tuple[Any, VariableDict]:
        """Like `init`, but returns `(output, variables)`."""
        rngs = normalise_rngs("rngs", rngs, required=True)
        check_filter("mutable", mutable)
        root = Root({}, rngs=rngs, mutable=mutable, initializing=True)
        out = self._run(root, method, args, kwargs)
        return out, root.mutated()

    def init(
        self,
        rngs: RNGs,
        *args: Any,
        method: Callable[..., Any] | str | None = None,
        mutable: Any = DEFAULT_MUTABLE,
        **kwargs: Any,
    ) -> VariableDict:
        """Creates the variables by running `method` (default `__call__`) on the inputs.

        Sizes come from the input's last dimension, as in NetKet: `n_visible =
        x.shape[-1]` (times `n_classes` for RBMMultiVal). Keys are derived
        from `rngs` exactly as Flax derives them, so the same key gives the
        same parameters as `netket.models.RBM(...).init` with the default
        initializers.

        **Arguments:**

        - `rngs`: a PRNG key, or a mapping `{"params": key, ...}`.
        - `*args`, `**kwargs`: passed to `method`, e.g. a batch of configurations.
        - `method`: `None` (the model), a method name such as `"theta"`, a
          method, or any function `fn(module, *args, **kwargs)` that receives
          the bound twin.
        - `mutable`: the collections that may be created or changed; default
          every collection except `"intermediates"`.

        **Returns:**

        The variables as plain nested dicts, e.g. `{"params": {...}}`.
        """
        if method is None and not kwargs:
            # The output is discarded and the parameters depend on the input's
            # shape only, so the model is evaluated for shapes alone.
            args = tuple(jax.tree.map(_abstract_array, args))
        return self.init_with_output(rngs, *args, method=method, mutable=mutable, **kwargs)[1]

    def lazy_init(
        self,
        rngs: RNGs,
        *args: Any,
        method: Callable[..., Any] | str | None = None,
        mutable: Any = DEFAULT_MUTABLE,
        **kwargs: Any,
    ) -> VariableDict:
        """`init` for inputs given as `jax.ShapeDtypeStruct`.

        The parameters only depend on the input's shape, so they are created
        for real while the model itself is evaluated with `jax.eval_shape`:
        nothing is computed on an input. The result equals `init`'s.

        **Arguments:** as for `init`; any array may be a `jax.ShapeDtypeStruct`.

        **Returns:**

        The variables as plain nested dicts.
        """
        variables = self.init(rngs, *args, method=method, mutable=mutable, **kwargs)
        abstract = [
            "/".join(str(getattr(k, "key", k)) for k in path)
            for path, leaf in jax.tree_util.tree_flatten_with_path(
                variables, is_leaf=lambda v: isinstance(v, jax.ShapeDtypeStruct)
            )[0]
            if isinstance(leaf, jax.ShapeDtypeStruct)
        ]
        if abstract:
            raise ValueError(
                f"lazy_init: the variables at {abstract} depend on the value of an input given as a "
                "jax.ShapeDtypeStruct; pass a concrete array for that input instead"
            )
        return variables

    def apply(
        self,
        variables: Mapping[str, Any],
        *args: Any,
        rngs: RNGs | None = None,
        method: Callable[..., Any] | str | None = None,
        mutable: Any = False,
        **kwargs: Any,
    ) -> Any:
        """Evaluates `method` (default: $\\log\\psi$) with the given variables.

        **Arguments:**

        - `variables`: `{"params": ...}` in NetKet's layout (plain dict,
          FrozenDict, `MCState.variables`, ...), plus any other collections.
        - `*args`, `**kwargs`: passed to `method`, e.g. configurations of shape
          `(*batch, n_visible)`.
        - `rngs`: optional key or mapping of keys, for methods that need them.
        - `method`: as for `init`.
        - `mutable`: `False` (default), `True`, a collection name, a list of
          names or a `eqx_rbm.linen.DenyList`.

        **Returns:**

        The output, or `(output, mutated_variables)` when `mutable` is not `False`.
        """
        root = _root_for(variables, rngs, mutable)
        out = self._run(root, method, args, kwargs)
        if mutable is not False:
            return out, root.mutated()
        return out

    def bind(self, variables: Mapping[str, Any], *, rngs: RNGs | None = None, mutable: Any = False) -> Self:
        """A copy of this twin bound to `variables`, usable interactively.

        **Arguments:**

        - `variables`: the variables to bind (copied, so `put_variable` never
          changes the caller's dicts).
        - `rngs`: optional key or mapping of keys.
        - `mutable`: the collections that `put_variable`, `perturb` and `sow`
          may change.

        **Returns:**

        The bound twin: calling it evaluates the model, `.variables` gives the
        variables and `.unbind()` gives `(twin, variables)` back.
        """
        root = _root_for(variables, rngs, mutable)
        return self._bound_to(Scope(root))

    def unbind(self) -> tuple[Self, VariableDict]:
        """`(unbound twin, variables)` of a bound twin."""
        scope = self._require_scope("unbind")
        unbound = copy.copy(self)
        object.__setattr__(unbound, "_scope", None)
        return unbound, copy_tree(scope.variables())

    @property
    def variables(self) -> VariableDict:
        """The variables of a bound twin, as plain nested dicts."""
        return copy_tree(self._require_scope("variables").variables())

    def put_variable(self, col: str, name: str, value: Any) -> None:
        """Sets variable `name` of collection `col`; the collection must be mutable.

        **Arguments:**

        - `col`: the collection, e.g. `"params"`.
        - `name`: the variable's name in this module, e.g. `"visible_bias"`.
        - `value`: the new value.
        """
        self._require_scope("put_variable").put_variable(col, name, value)

    def has_rng(self, name: str) -> bool:
        """Whether an RNG stream `name` was given to `init`/`apply`/`bind`."""
        return self._require_scope("has_rng").has_rng(name)

    def make_rng(self, name: str = "params") -> PRNGKeyArray:
        """A fresh key from stream `name` (falling back to `"params"`), derived as in Flax."""
        return self._require_scope("make_rng").make_rng(name)

    def is_initializing(self) -> bool:
        """Whether the twin is running under `init`."""
        return self._require_scope("is_initializing").root.initializing

    def is_mutable_collection(self, col: str) -> bool:
        """Whether collection `col` may be changed."""
        return self._require_scope("is_mutable_collection").is_mutable(col)

    def perturb(self, name: str, value: T, collection: str = "perturbations") -> T:
        """Adds a zero variable to an intermediate value, to take gradients with respect to it.

        When `collection` is mutable and has no variable `name` yet, a variable
        of zeros shaped like `value` is recorded. When the variables hold
        `collection`, the result is `value + variable`, so the gradient with
        respect to the variable is the gradient with respect to `value`.
        Without the collection this is a no-op.

        **Arguments:**

        - `name`: the variable's name.
        - `value`: the intermediate value (an array or a pytree of arrays).
        - `collection`: default `"perturbations"`.

        **Returns:**

        `value`, perturbed when the collection is present.
        """
        scope = self._require_scope("perturb")
        if scope.is_mutable(collection) and not scope.has_variable(collection, name):
            zeros = jax.tree.map(lambda v: jnp.zeros(jnp.shape(v), jnp.result_type(v)), value)
            scope.put_variable(collection, name, zeros)
        if collection in scope.root.variables:
            if not scope.has_variable(collection, name):
                raise ValueError(
                    f"perturb: the variables hold collection {collection!r} but no variable {name!r} in it"
                )
            if _is_abstract(value):
                return value
            return jax.tree.map(jnp.add, value, scope.get_variable(collection, name))
        return value

    def sow(
        self,
        col: str,
        name: str,
        value: Any,
        reduce_fn: Callable[[Any, Any], Any] = lambda xs, x: (*xs, x),
        init_fn: Callable[[], Any] = tuple,
    ) -> bool:
        """Stores `value` in collection `col` if it is mutable (appending to a tuple by default).

        **Returns:**

        Whether the value was stored.
        """
        scope = self._require_scope("sow")
        if not scope.is_mutable(col):
            return False
        current = scope.get_variable(col, name) if scope.has_variable(col, name) else init_fn()
        scope.put_variable(col, name, reduce_fn(current, value))
        return True

    def tabulate(
        self,
        rngs: RNGs,
        *args: Any,
        depth: int | None = None,
        show_repeated: bool = False,
        mutable: Any = True,
        console_kwargs: Mapping[str, Any] | None = None,
        table_kwargs: Mapping[str, Any] = MappingProxyType({}),
        column_kwargs: Mapping[str, Any] = MappingProxyType({}),
        **kwargs: Any,
    ) -> str:
        """The summary table Flax draws for NetKet's model on the same input.

        Columns path, module, inputs, outputs and one per collection; one row
        per module call (the model, then `Dense`; or the model, `RBM`,
        `RBM/Dense`); a total row and a `Total Parameters` caption. Nothing is
        computed: the model runs under `jax.eval_shape`. Needs `rich`
        (`pip install "eqx_rbm[tabulate]"`).

        **Arguments:**

        - `rngs`, `*args`, `**kwargs` (including `method`): as for `init`.
        - `depth`: deepest module level shown; deeper parameters are counted in
          their shown ancestor's row. `None` shows every level.
        - `show_repeated`: also show repeated calls of the same module.
        - `mutable`: as for `init`.
        - `console_kwargs`, `table_kwargs`, `column_kwargs`: extra keyword
          arguments for `rich.console.Console`, `rich.table.Table` and
          `Table.add_column`.

        **Returns:**

        The rendered table, with ANSI styles.
        """
        from ._tabulate import tabulate

        return tabulate(
            self,
            rngs,
            args,
            kwargs,
            depth=depth,
            show_repeated=show_repeated,
            mutable=mutable,
            console_kwargs=console_kwargs,
            table_kwargs=table_kwargs,
            column_kwargs=column_kwargs,
        )

    def to_equinox(self) -> EqxRBM | EqxRBMMultiVal:
        """The Equinox model holding a bound twin's parameters."""
        scope = self._require_scope("to_equinox")
        params = scope.collection("params")
        problems = self._check_params(params, self._params_prefix(scope))
        if problems:
            raise VariablesError("variables", problems)
        assert params is not None
        return build_model(self, params)

    # -------------------------------------------------------------- internals

    def _check_params(self, params: Any, prefix: str) -> list[str]:
        raise NotImplementedError

    def _create_params(self, scope: Scope, x: Any, what: str) -> None:
        raise NotImplementedError

    @staticmethod
    def _params_prefix(scope: Scope) -> str:
        return "/".join(("params", *scope.path))

    def _bound_to(self, scope: Scope) -> Self:
        bound = copy.copy(self)
        object.__setattr__(bound, "_scope", scope)
        return bound

    def _require_scope(self, what: str) -> Scope:
        if self._scope is None:
            raise ValueError(
                f"{type(self).__name__}.{what}: the module is unbound (it holds no variables); use "
                f"module.bind(variables).{what}, or module.init(...) / module.apply(variables, ...)"
            )
        return self._scope

    def _resolve(self, method: Callable[..., Any] | str | None) -> Callable[..., Any]:
        if method is None:
            return type(self).__call__
        if isinstance(method, str):
            attribute = getattr(type(self), method, None)
            if attribute is None or isinstance(attribute, property) or not callable(attribute):
                raise TypeError(
                    f"method: expected the name of a method of {type(self).__name__}, got {method!r}"
                )
            return attribute
        if not callable(method):
            raise TypeError(f"method: expected None, a method name or a callable, got {method!r}")
        if is_twin(getattr(method, "__self__", None)):
            # A method of some twin instance: call its function on the bound twin.
            return cast(Any, method).__func__
        return method

    def _run(self, root: Root, method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        fn = self._resolve(method)
        bound = self._bound_to(Scope(root))
        return fn(bound, *args, **kwargs)

    def _model_for(self, x: Any, what: str) -> EqxRBM | EqxRBMMultiVal:
        scope = self._require_scope(what)
        params = scope.collection("params")
        if not params:
            self._create_params(scope, x, what)
            params = scope.collection("params")
        problems = self._check_params(params, self._params_prefix(scope))
        if problems:
            raise VariablesError("variables", problems)
        assert params is not None
        return build_model(self, params)

    def _check_new_params(self, scope: Scope, x: Any, what: str) -> int:
        """Checks that parameters may be created; returns the input's last dimension."""
        where = self._params_prefix(scope)
        if not scope.is_mutable("params"):
            raise ValueError(
                f"{type(self).__name__}.{what}: the variables hold no parameters at {where!r} and the "
                "'params' collection is not mutable; pass variables from init (or to_variables)"
            )
        if not scope.has_rng("params"):
            raise ValueError(
                f"{type(self).__name__}.{what}: creating the parameters at {where!r} needs a 'params' RNG "
                "stream; pass a key (or {'params': key}) as rngs"
            )
        shape = jnp.shape(x) if not isinstance(x, jax.ShapeDtypeStruct) else x.shape
        if len(shape) == 0:
            raise ValueError(
                f"x: expected shape (*batch, n_visible) with at least one dimension, got shape {shape}"
            )
        return check_positive_int("x.shape[-1]", shape[-1])

    def _initialise_rbm(self, scope: Scope, n_visible: int) -> None:
        dtype = check_param_dtype(self.param_dtype)
        n_hidden = n_hidden_for(self.alpha, n_visible)
        dense = scope.child("Dense")
        dense.put_variable(
            "params",
            "kernel",
            _initialise(
                "kernel_init", self.kernel_init, dense.make_rng("params"), (n_visible, n_hidden), dtype
            ),
        )
        if self.use_hidden_bias:
            dense.put_variable(
                "params",
                "bias",
                _initialise(
                    "hidden_bias_init", self.hidden_bias_init, dense.make_rng("params"), (n_hidden,), dtype
                ),
            )
        if self.use_visible_bias:
            scope.put_variable(
                "params",
                "visible_bias",
                _initialise(
                    "visible_bias_init", self.visible_bias_init, scope.make_rng("params"), (n_visible,), dtype
                ),
            )

    def _record(
        self, suffix: tuple[str, ...], module: str, method: str, args: tuple[Any, ...], outputs: Any
    ) -> None:
        scope = self._scope
        if scope is None or scope.root.calls is None:
            return
        scope.root.calls.append(
            Call((*scope.path, *suffix), module, method, _abstract(args), {}, _abstract(outputs))
        )

    def _recording(self) -> bool:
        return self._scope is not None and self._scope.root.calls is not None


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a is b or a == b)
    except Exception:
        return False


def _short_repr(value: Any) -> str:
    if isinstance(value, np.dtype):
        return str(value)
    if callable(value) and hasattr(value, "__qualname__"):
        return value.__qualname__.replace(".<locals>", "")
    return repr(value)


@dataclasses.dataclass(frozen=True, repr=False)
class RBM(_Twin):
    """Linen-style twin of `netket.models.RBM`, backed by [`eqx_rbm.RBM`][].

    Same constructor keywords, defaults and attribute names as NetKet's model,
    and the same `init` / `apply` protocol, so it replaces `nk.models.RBM` in a
    NetKet script. It holds no parameters: `init` returns them in NetKet's
    layout `{"params": {"Dense": {"kernel", "bias"}, "visible_bias"}}`.

    ```python
    import jax
    import jax.numpy as jnp
    import eqx_rbm.linen

    jax.config.update("jax_enable_x64", True)
    twin = eqx_rbm.linen.RBM(alpha=2)
    variables = twin.init(jax.random.key(0), jnp.ones((1, 8)))
    twin.apply(variables, jnp.ones((5, 8))).shape  # (5,)
    ```

    **Arguments:** (all optional, as dataclass fields in NetKet's order)

    - `param_dtype`: dtype of the parameters (default float64).
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

    def __post_init__(self) -> None:
        self._check_config()

    def _check_params(self, params: Any, prefix: str) -> list[str]:
        return check_rbm_params(self, params, prefix, n_classes=None)

    def _create_params(self, scope: Scope, x: Any, what: str) -> None:
        n_visible = self._check_new_params(scope, x, what)
        self._initialise_rbm(scope, n_visible)

    def _model(self, x: Any, what: str) -> EqxRBM:
        check_numeric("x", x, allow_complex=True)
        model = self._model_for(x, what)
        assert isinstance(model, EqxRBM)
        check_last_dim("x", tuple(x.shape), model.n_visible, "n_visible")
        return model

    # `input`, not `x`: NetKet's RBM takes its configurations under that keyword.
    def __call__(self, input: Input) -> Inexact[Array, "*batch"]:
        """$\\log\\psi(x)$ for configurations `input` of shape `(*batch, n_visible)` (bound twins only)."""
        x = input
        model = self._model(x, "__call__")
        out = _evaluate(model, x)
        if self._recording():
            self._record((), type(self).__name__, "__call__", (x,), out)
            self._record(("Dense",), "Dense", "__call__", (x,), jax.eval_shape(model.theta, _abstract(x)))
        return out

    def theta(self, x: Input) -> Inexact[Array, "*batch n_hidden"]:
        """Hidden pre-activations $xW + b$ (the output of NetKet's `Dense` layer)."""
        model = self._model(x, "theta")
        out = _evaluate(model.theta, x)
        if self._recording():
            self._record((), type(self).__name__, "theta", (x,), out)
            self._record(("Dense",), "Dense", "__call__", (x,), out)
        return out

    def log_psi_from_theta(
        self, x: Input, theta: Inexact[ArrayLike, "*batch n_hidden"]
    ) -> Inexact[Array, "*batch"]:
        """$\\log\\psi$ given the pre-activations `theta` of the same `x`."""
        model = self._model(x, "log_psi_from_theta")
        out = _evaluate(model.log_psi_from_theta, x, theta)
        self._record((), type(self).__name__, "log_psi_from_theta", (x, theta), out)
        return out


_RBMTwin = RBM


@dataclasses.dataclass(frozen=True, repr=False)
class RBMMultiVal(_Twin):
    """Linen-style twin of `netket.models.RBMMultiVal`, backed by [`eqx_rbm.RBMMultiVal`][].

    Same keywords, defaults and attribute names as NetKet's model, plus
    `local_states`. Its variables are `{"params": {"RBM": {...RBM layout...}}}`
    with `n_visible = n_sites * n_classes`.

    Two differences from NetKet, both those of [`eqx_rbm.RBMMultiVal`][]: a
    site value outside `local_states` is an error, and `precision` reaches the
    inner RBM (NetKet drops it; the default `None` gives identical numbers).

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

    def __post_init__(self) -> None:
        n_classes = check_positive_int("n_classes", self.n_classes)
        if n_classes < 2:
            raise ValueError(f"n_classes: expected at least 2 classes, got {n_classes}")
        object.__setattr__(self, "n_classes", n_classes)
        if self.local_states is not None:
            # A tuple keeps the twin hashable.
            object.__setattr__(self, "local_states", _check_local_states(self.local_states, n_classes))
        self._check_config()

    def _check_params(self, params: Any, prefix: str) -> list[str]:
        return check_multival_params(self, params, prefix)

    def _create_params(self, scope: Scope, x: Any, what: str) -> None:
        n_sites = self._check_new_params(scope, x, what)
        self._initialise_rbm(scope.child("RBM"), n_sites * self.n_classes)

    def _model(self, x: Any, what: str) -> EqxRBMMultiVal:
        check_numeric("x", x, allow_complex=False)
        model = self._model_for(x, what)
        assert isinstance(model, EqxRBMMultiVal)
        check_last_dim("x", tuple(x.shape), model.n_sites, "n_sites")
        return model

    def __call__(self, x: Input) -> Inexact[Array, "*batch"]:
        """$\\log\\psi(x)$ for local states `x` of shape `(*batch, n_sites)` (bound twins only)."""
        model = self._model(x, "__call__")
        out = _evaluate(model, x)
        if self._recording():
            features = jax.eval_shape(model.one_hot, _abstract(x))
            self._record((), type(self).__name__, "__call__", (x,), out)
            self._record(("RBM",), "RBM", "__call__", (features,), out)
            self._record(
                ("RBM", "Dense"), "Dense", "__call__", (features,), jax.eval_shape(model.rbm.theta, features)
            )
        return out

    def one_hot(self, x: Real[ArrayLike, "*batch n_sites"]) -> Inexact[Array, "*batch n_features"]:
        """The one-hot features fed to the inner RBM, shape `(*batch, n_sites * n_classes)`."""
        model = self._model(x, "one_hot")
        out = _evaluate(model.one_hot, x)
        self._record((), type(self).__name__, "one_hot", (x,), out)
        return out

    @property
    def RBM(self) -> _RBMTwin:
        """The inner RBM as a bound [`eqx_rbm.linen.RBM`][] twin (bound twins only)."""
        scope = self._require_scope("RBM")
        inner = _RBMTwin(
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
        return inner._bound_to(scope.child("RBM"))


def to_linen(model: EqxRBM | EqxRBMMultiVal) -> tuple[RBM | RBMMultiVal, VariableDict]:
    """The twin and the variables of an Equinox model: the inverse of [`eqx_rbm.linen.from_variables`][].

    **Arguments:**

    - `model`: an [`eqx_rbm.RBM`][] or [`eqx_rbm.RBMMultiVal`][].

    **Returns:**

    `(twin, variables)` with `from_variables(twin, variables)` equal to
    `model`. Initializers are not stored in an Equinox model, so the twin has
    the default ones.
    """
    from ._variables import to_variables

    variables = to_variables(model)
    if isinstance(model, EqxRBMMultiVal):
        rbm = model.rbm
        default_states = tuple(range(model.n_classes))
        twin: RBM | RBMMultiVal = RBMMultiVal(
            model.n_classes,
            param_dtype=rbm.param_dtype,
            activation=rbm.activation,
            alpha=rbm.alpha,
            use_hidden_bias=rbm.use_hidden_bias,
            use_visible_bias=rbm.use_visible_bias,
            precision=rbm.precision,
            local_states=None if model.local_states == default_states else model.local_states,
        )
    else:
        twin = RBM(
            param_dtype=model.param_dtype,
            activation=model.activation,
            alpha=model.alpha,
            use_hidden_bias=model.use_hidden_bias,
            use_visible_bias=model.use_visible_bias,
            precision=model.precision,
        )
    return twin, variables
