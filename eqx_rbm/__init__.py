"""Restricted Boltzmann machines as Equinox modules, numerically identical to NetKet's."""

from ._derivatives import Jacobian, jacobian, log_derivatives
from ._local import hidden_theta, log_psi_ratio, set_sites
from ._local_state import LocalState, accept_moves, local_state, propose_move, site_log_ratios
from ._log_cosh import log_cosh
from ._multival import RBMMultiVal
from ._one_hot import OneHot
from ._rbm import RBM
from ._variables import VariablesError, from_variables, to_variables

__version__ = "0.1.0"

__all__ = [
    "RBM",
    "Jacobian",
    "LocalState",
    "OneHot",
    "RBMMultiVal",
    "VariablesError",
    "__version__",
    "accept_moves",
    "from_variables",
    "hidden_theta",
    "jacobian",
    "local_state",
    "log_cosh",
    "log_derivatives",
    "log_psi_ratio",
    "propose_move",
    "set_sites",
    "site_log_ratios",
    "to_variables",
]
