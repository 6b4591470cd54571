"""Restricted Boltzmann machines as Equinox modules, numerically identical to NetKet's."""

from .derivatives import Jacobian, jacobian, log_derivatives, sr_gradient
from .models import (
    RBM,
    AbstractDenseRBM,
    AbstractEncoding,
    AbstractRBM,
    AbstractSymmRBM,
    Dense,
    OneHot,
    RBMModPhase,
    RBMMultiVal,
    RBMMultiValSymm,
    RBMSymm,
    Spins,
)
from .numerics import log_cosh
from .sampling import (
    LocalState,
    accept,
    exchange_log_ratios,
    local_state,
    metropolis,
    propose,
    site_log_ratios,
)
from .variables import VariablesError, from_variables, to_variables

__version__ = "0.2.1"

__all__ = [
    "RBM",
    "AbstractDenseRBM",
    "AbstractEncoding",
    "AbstractRBM",
    "AbstractSymmRBM",
    "Dense",
    "Jacobian",
    "LocalState",
    "OneHot",
    "RBMModPhase",
    "RBMMultiVal",
    "RBMMultiValSymm",
    "RBMSymm",
    "Spins",
    "VariablesError",
    "__version__",
    "accept",
    "exchange_log_ratios",
    "from_variables",
    "jacobian",
    "local_state",
    "log_cosh",
    "log_derivatives",
    "metropolis",
    "propose",
    "site_log_ratios",
    "sr_gradient",
    "to_variables",
]
