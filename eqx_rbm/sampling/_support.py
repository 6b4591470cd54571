"""Which models the specialised paths take: the one place that names an activation.

The sum of activations works for any element-wise activation and any
encoding. The product form (`_ratios`, `_flip`) and the fused kernel
(`_fused`) rest on identities of `log_cosh`; the complex range handling of
`_activations` on its periodicity. They ask here, and nowhere else compares an
activation.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from ..models._model import AbstractRBM
from ..models._parts import ONE_GROUP
from ..numerics._log_cosh import log_cosh

UNITS_PER_LOG = {jnp.dtype(jnp.float64): 64, jnp.dtype(jnp.float32): 8}
"""The pre-activation dtypes of the product form (real parameters only), and for each the most
factors that multiply before a logarithm is taken (`_ratios`)."""


COMPLEX_UNITS_PER_LOG = {jnp.dtype(jnp.complex128): 32}
"""The complex pre-activation dtypes of the local energies' product form, and for each the most
factors that multiply before a logarithm is taken (`_ratios`)."""


def takes_log_cosh(model: AbstractRBM) -> bool:
    """Whether the model's activation is [`eqx_rbm.log_cosh`][] itself."""
    return model.activation is log_cosh


def _two_valued_log_cosh(model: AbstractRBM) -> bool:
    """`log_cosh` and one feature per site, so that a two-valued move changes the pre-activations
    by a fixed row: what both product forms rest on."""
    return takes_log_cosh(model) and model.encoding.features_per_site == 1


def takes_products(model: AbstractRBM, dtype: Any) -> bool:
    """Whether the product form can stand for the model's activations (the moves and bounds aside).

    `log_cosh`, real pre-activations, and an encoding with one feature per
    site, so that a two-valued move changes the pre-activations by a fixed row.
    """
    return _two_valued_log_cosh(model) and jnp.dtype(dtype) in UNITS_PER_LOG


def takes_complex_products(model: AbstractRBM, dtype: Any) -> bool:
    """Whether the complex product form of the log-ratios can stand for the model's activations.

    As `takes_products`, for complex pre-activations, and one group of hidden
    units with coefficient 1: the product form knows the phase modulo
    $2\\pi$ only, which a coefficient other than 1 would carry into the
    modulus or the phase.
    """
    return (
        _two_valued_log_cosh(model)
        and model.hidden_coefficients == ONE_GROUP
        and jnp.dtype(dtype) in COMPLEX_UNITS_PER_LOG
    )


def fused_refusal(model: AbstractRBM, single_site: bool) -> str | None:
    """Why the fused kernel cannot run this model, or `None` when it can (dtypes aside).

    The kernel runs single-site moves and sums every hidden unit's `log_cosh`
    with coefficient 1.
    """
    if not single_site:
        return "runs single-site moves only, got exchange moves (pairs)"
    if not takes_log_cosh(model):
        return f"runs the log_cosh activation only, got activation={model.activation!r}"
    if model.hidden_coefficients != ONE_GROUP:
        return f"runs one group of hidden units, got hidden_coefficients={model.hidden_coefficients}"
    return None
