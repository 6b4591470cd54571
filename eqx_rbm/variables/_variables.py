"""NetKet-layout variable dictionaries to and from the Equinox models, without Flax."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jaxtyping import Array

from ..internal._checks import check_alpha, check_positive_int
from ..models._model import AbstractRBM, final_models
from ..models._multival import RBMMultiVal
from ..models._variables_checks import Loading, VariableDict, VariablesError
from ..numerics._log_cosh import log_cosh


def family_names(prefix: str = "eqx_rbm.", attribute: str = "__name__") -> str:
    """The final models (or their twins, `attribute="twin_name"`) as "a or b or c", for messages."""
    return " or ".join(f"{prefix}{getattr(kind, attribute)}" for kind in final_models())


def to_variables(model: AbstractRBM) -> VariableDict:
    """The Flax-style variables of an Equinox model, in NetKet's layout.

    **Arguments:**

    - `model`: an [`eqx_rbm.RBM`][], [`eqx_rbm.RBMMultiVal`][],
      [`eqx_rbm.RBMSymm`][] or [`eqx_rbm.RBMMultiValSymm`][].

    **Returns:**

    Plain nested dicts holding the model's own arrays (no copies):
    `{"params": {"Dense": {"kernel": ..., "bias": ...}, "visible_bias": ...}}` for
    an RBM, without `bias` / `visible_bias` when that bias is off,
    `{"params": {"RBM": {...}}}` for an RBMMultiVal, and
    `{"params": {"Dense": {"bias": (F,), "kernel": (F, C, N)}, "visible_bias": (C,)}}`
    for the symmetric models (C = 1 for an RBMSymm, `n_classes` for an
    RBMMultiValSymm). This is the tree that NetKet's `init` returns
    (`netket.models.RBM`, `RBMMultiVal`, `RBMSymm`), key order included.
    """
    if not isinstance(model, AbstractRBM):
        raise TypeError(
            f"model: expected an {family_names()}, got {type(model).__module__}.{type(model).__qualname__}"
        )
    return {"params": model.params_tree()}


def from_variables(
    variables: Mapping[str, Any],
    *,
    symmetries: Any = None,
    n_classes: int | None = None,
    local_states: Sequence[float] | None = None,
    alpha: float | int | None = None,
    use_hidden_bias: bool | None = None,
    use_visible_bias: bool | None = None,
    activation: Callable[[Array], Array] = log_cosh,
    precision: Any = None,
) -> AbstractRBM:
    """The Equinox model held by NetKet-layout variables; needs no Flax.

    The layout and the arguments say which model it is: with `symmetries`,
    an RBMSymm (an RBMMultiValSymm with `n_classes` too); otherwise
    `{"params": {"RBM": ...}}` is an RBMMultiVal and
    `{"params": {"Dense": ..., "visible_bias": ...}}` an RBM.
    Sizes and biases come from the arrays; what no array holds is passed in.

    **Arguments:**

    - `variables`: `{"params": ...}` as plain dicts (from `numpy`, msgpack,
      orbax, ...) or any mapping (a `flax.core.FrozenDict`, NetKet's
      `MCState.variables`). The state dict of a serialized NetKet `MCState`
      (a mapping with a `"variables"` entry and no `"params"`) is accepted too.
    - `symmetries`: the `(n_symmetries, n_sites)` permutation table of a
      symmetric model (as for [`eqx_rbm.RBMSymm`][]); required when
      `params/Dense/kernel` is 3-D, refused otherwise.
    - `n_classes`: local states per site; required for an RBMMultiVal or an
      RBMMultiValSymm, refused for an RBM or an RBMSymm.
    - `local_states`: the values a site takes (with `n_classes` only), default
      `0, ..., n_classes - 1`.
    - `alpha`: hidden-unit density. `None` infers it from the kernel's shape
      (`n_hidden / n_visible`, an int when it divides; for the symmetric models
      the smallest alpha giving the kernel's filters); a value is checked
      against `n_hidden = int(alpha * n_visible)` (symmetric models:
      `n_filters = int(alpha * n_features / n_symmetries)`).
    - `use_hidden_bias`, `use_visible_bias`: `None` takes each bias when it is
      present; a bool requires it present (`True`) or absent (`False`).
    - `activation`, `precision`: as for [`eqx_rbm.RBM`][].

    **Returns:**

    An [`eqx_rbm.RBM`][], [`eqx_rbm.RBMMultiVal`][], [`eqx_rbm.RBMSymm`][] or
    [`eqx_rbm.RBMMultiValSymm`][] holding the given arrays
    (JAX arrays as they are, NumPy arrays with the same bits). Parameters may
    have any floating or complex dtype, each its own; the model promotes them
    as Flax's `Dense` does.

    **Raises:**

    [`eqx_rbm.VariablesError`][] (a `ValueError`) listing every path that is
    missing, unexpected, or of the wrong rank, shape or dtype.
    """
    params = _params_of(variables)
    if symmetries is None and _kernel_rank(params) == 3:
        raise TypeError(
            "symmetries: required for symmetric variables (params/Dense/kernel is 3-D, "
            "(n_filters, features_per_site, n_sites)); pass symmetries=<the (n_symmetries, n_sites) "
            "permutation table the model was built with>"
        )
    nested = RBMMultiVal.netket_path[0]
    if n_classes is None and symmetries is None and isinstance(params, Mapping) and nested in params:
        raise TypeError(
            f"n_classes: required for RBMMultiVal variables (they hold params/{nested}); "
            "pass n_classes=<number of local states per site>"
        )
    if n_classes is None and local_states is not None:
        raise TypeError(
            f"local_states: only for RBMMultiVal variables; pass n_classes too, got {local_states!r}"
        )
    layout: dict[str, Any] = {} if symmetries is None else {"symmetries": symmetries}
    if n_classes is not None:
        layout |= {"n_classes": n_classes, "local_states": local_states}
    # The final models whose layout keywords were given; where several share them (models
    # told apart by their variables' keys), the first whose variables these are.
    kinds = [kind for kind in final_models() if kind.layout_keywords == layout.keys()]
    settings = {
        "alpha": alpha,
        "use_hidden_bias": use_hidden_bias,
        "use_visible_bias": use_visible_bias,
        "activation": activation,
        "precision": precision,
    }
    first_error: VariablesError | None = None
    for kind in kinds:
        try:
            return build_model(kind, variables, layout, **settings)
        except VariablesError as error:
            first_error = first_error or error
    assert first_error is not None  # every layout-keyword set belongs to a final model
    raise first_error


def _kernel_rank(params: Any) -> int | None:
    dense = params.get("Dense") if isinstance(params, Mapping) else None
    kernel = dense.get("kernel") if isinstance(dense, Mapping) else None
    return getattr(kernel, "ndim", None)


def _params_of(variables: Any) -> Any:
    if not isinstance(variables, Mapping):
        raise TypeError(f"variables: expected a mapping {{'params': ...}}, got {type(variables).__name__}")
    if "params" not in variables and isinstance(variables.get("variables"), Mapping):
        variables = variables["variables"]
    return variables.get("params")


def build_model(
    kind: type[AbstractRBM],
    variables: Mapping[str, Any],
    layout: dict[str, Any],
    *,
    alpha: float | int | None,
    use_hidden_bias: bool | None,
    use_visible_bias: bool | None,
    activation: Callable[[Array], Array],
    precision: Any,
) -> AbstractRBM:
    """`from_variables` for a model `kind` decided by the caller (a twin knows its own).

    `layout` holds the values of `kind.layout_keywords`.
    """
    if "params" not in variables and isinstance(variables.get("variables"), Mapping):
        variables = variables["variables"]
    if alpha is not None:
        alpha = check_alpha(alpha)
    if not callable(activation):
        raise TypeError(f"activation: expected a callable, got {activation!r}")
    if "n_classes" in layout:
        layout = {**layout, "n_classes": check_positive_int("n_classes", layout["n_classes"])}
    problems = [f"{key}: unexpected collection" for key in variables if key != "params"]
    if "params" not in variables:
        problems.insert(0, "params: missing (expected the 'params' collection)")
        raise VariablesError("variables", problems)
    loading = Loading(alpha, (use_hidden_bias, use_visible_bias), activation, precision)
    return kind.from_params(variables["params"], problems, layout, loading)
