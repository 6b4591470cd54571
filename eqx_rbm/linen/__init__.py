"""Flax Linen interoperability: NetKet-layout variables and Linen-style twins.

Nothing here imports Flax. [`eqx_rbm.linen.RBM`][] and
[`eqx_rbm.linen.RBMMultiVal`][] describe a model the way `netket.models.RBM`
and `netket.models.RBMMultiVal` do (same keywords, `init`, `apply`,
`tabulate`, `bind`, ...), so they can be dropped into NetKet, while
[`eqx_rbm.linen.to_variables`][] and [`eqx_rbm.linen.from_variables`][] move
parameters between Equinox models and NetKet/Flax variable dicts, bit for bit.
"""

from ._bound import CollectionFilter, DenyList
from ._twins import RBM, RBMMultiVal, to_linen
from ._variables import VariableDict, VariablesError, from_variables, to_variables

__all__ = [
    "RBM",
    "CollectionFilter",
    "DenyList",
    "RBMMultiVal",
    "VariableDict",
    "VariablesError",
    "from_variables",
    "to_linen",
    "to_variables",
]
