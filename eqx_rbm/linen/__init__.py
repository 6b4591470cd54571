"""NetKet's RBM models as Flax Linen modules, computed by eqx_rbm (needs `eqx_rbm[flax]`).

[`eqx_rbm.linen.RBM`][] and [`eqx_rbm.linen.RBMMultiVal`][] are
`flax.linen.Module`s with NetKet's attributes and parameters, so they replace
`netket.models.RBM` / `RBMMultiVal` anywhere, nested inside other Flax models
included. [`eqx_rbm.linen.from_variables`][] and [`eqx_rbm.linen.to_linen`][]
move parameters between a twin and an Equinox model; the Flax-free
converters they build on are [`eqx_rbm.from_variables`][] and
[`eqx_rbm.to_variables`][].
"""

try:
    import flax.linen  # noqa: F401
except ImportError as err:
    raise ImportError(
        'eqx_rbm.linen needs Flax: pip install "eqx_rbm[flax]"\n'
        "(eqx_rbm.from_variables and eqx_rbm.to_variables convert NetKet-layout variables without it)"
    ) from err

from .._variables import VariableDict, VariablesError, to_variables
from ._twins import RBM, RBMMultiVal, from_variables, to_linen

__all__ = [
    "RBM",
    "RBMMultiVal",
    "VariableDict",
    "VariablesError",
    "from_variables",
    "to_linen",
    "to_variables",
]
