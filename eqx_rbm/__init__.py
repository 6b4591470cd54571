"""Restricted Boltzmann machines as Equinox modules, numerically identical to NetKet's."""

from ._log_cosh import log_cosh
from ._multival import RBMMultiVal
from ._one_hot import OneHot
from ._rbm import RBM

__version__ = "0.1.0"

__all__ = ["RBM", "OneHot", "RBMMultiVal", "__version__", "log_cosh"]
