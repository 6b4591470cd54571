"""The model interface, the site encodings, the four NetKet models and their permutation tables."""

from ._dense import AbstractDenseRBM as AbstractDenseRBM
from ._encoding import AbstractEncoding as AbstractEncoding
from ._encoding import Spins as Spins
from ._model import AbstractRBM as AbstractRBM
from ._modphase import RBMModPhase as RBMModPhase
from ._multival import RBMMultiVal as RBMMultiVal
from ._multival_symm import RBMMultiValSymm as RBMMultiValSymm
from ._one_hot import OneHot as OneHot
from ._parts import Dense as Dense
from ._rbm import RBM as RBM
from ._symm import AbstractSymmRBM as AbstractSymmRBM
from ._symm import RBMSymm as RBMSymm
