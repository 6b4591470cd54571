"""Restricted Boltzmann machines as Equinox modules, numerically identical to NetKet's."""

from ._local import hidden_theta, log_psi_ratio, set_sites
from ._log_cosh import log_cosh
from ._multival import RBMMultiVal
from ._one_hot import OneHot
from ._rbm import RBM

__version__ = "0.1.0"

__all__ = [
    "RBM",
    "OneHot",
    "RBMMultiVal",
    "__version__",
    "hidden_theta",
    "log_cosh",
    "log_psi_ratio",
    "set_sites",
]
