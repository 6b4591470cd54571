"""The body every model's `__init__` and `from_arrays` share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
from jaxtyping import Array, PRNGKeyArray

from ..internal._checks import check_alpha, check_param_dtype
from ._encoding import AbstractEncoding
from ._parts import Flags, Given, Inits


def build(
    model: Any,
    encoding: AbstractEncoding,
    n_sites: int,
    alpha: Any,
    flags: Flags,
    param_dtype: Any,
    activation: Callable[[Array], Array],
    precision: Any,
    inits: Inits,
    key: PRNGKeyArray,
) -> None:
    """The body every model's `__init__` shares: sets each field but `symmetries`.

    `model` is the module being initialised; `flags` are `(use_hidden_bias,
    use_visible_bias)`; the parameters come from `model.draw_parameters`.
    """
    if not callable(activation):
        raise TypeError(f"activation: expected a callable, got {activation!r}")
    model.encoding = encoding
    model.alpha = check_alpha(alpha)
    model.activation = activation
    model.precision = precision
    dtype = check_param_dtype(param_dtype)
    model.kernel, model.hidden_bias, model.visible_bias = model.draw_parameters(
        n_sites, flags, dtype, inits, key
    )


def given_arrays(kernel: Array, hidden_bias: Any, visible_bias: Any, alpha: float | int) -> dict[str, Any]:
    """The `__init__` keywords that make a model hold the given arrays (see `from_arrays`)."""
    return {
        "alpha": alpha,
        "use_hidden_bias": hidden_bias is not None,
        "use_visible_bias": visible_bias is not None,
        "param_dtype": kernel.dtype,
        "kernel_init": Given(kernel),
        "hidden_bias_init": Given(hidden_bias),
        "visible_bias_init": Given(visible_bias),
        "key": jax.random.key(0),  # unused: every initializer returns its array
    }
