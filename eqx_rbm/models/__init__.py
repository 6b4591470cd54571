"""The model interface, the site encodings, the four NetKet models and their permutation tables."""

from ._dense import AbstractDenseRBM
from ._encoding import AbstractEncoding, Spins
from ._model import AbstractRBM, Dense
from ._multival import RBMMultiVal
from ._multival_symm import RBMMultiValSymm
from ._one_hot import OneHot
from ._rbm import RBM
from ._symm import AbstractSymmRBM, RBMSymm

__all__ = [
    "RBM",
    "AbstractDenseRBM",
    "AbstractEncoding",
    "AbstractRBM",
    "AbstractSymmRBM",
    "Dense",
    "OneHot",
    "RBMMultiVal",
    "RBMMultiValSymm",
    "RBMSymm",
    "Spins",
]
