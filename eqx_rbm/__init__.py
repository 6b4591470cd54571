"""Restricted Boltzmann machines as Equinox modules, numerically identical to NetKet's."""

from ._dense import AbstractDenseRBM
from ._derivatives import Jacobian, jacobian, log_derivatives
from ._encoding import AbstractEncoding, Spins
from ._local import LocalState, accept, exchange_log_ratios, local_state, propose, site_log_ratios
from ._log_cosh import log_cosh
from ._model import AbstractRBM, Dense
from ._modphase import RBMModPhase
from ._multival import RBMMultiVal
from ._multival_symm import RBMMultiValSymm
from ._one_hot import OneHot
from ._rbm import RBM
from ._sampler import metropolis
from ._sr import sr_gradient
from ._symm import AbstractSymmRBM, RBMSymm
from ._variables import VariablesError, from_variables, to_variables

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
