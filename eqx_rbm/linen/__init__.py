"""NetKet's RBM models as Flax Linen modules, computed by eqx_rbm (needs `eqx_rbm[flax]`).

[`eqx_rbm.linen.RBM`][], [`eqx_rbm.linen.RBMMultiVal`][] and
[`eqx_rbm.linen.RBMSymm`][] are `flax.linen.Module`s with NetKet's attributes
and parameters, so they replace `netket.models.RBM` / `RBMMultiVal` /
`RBMSymm` anywhere, nested inside other Flax models included;
[`eqx_rbm.linen.RBMMultiValSymm`][] is the twin of
[`eqx_rbm.RBMMultiValSymm`][], and [`eqx_rbm.linen.RBMModPhase`][] that of
[`eqx_rbm.RBMModPhase`][] (NetKet's `RBMModPhase`). [`eqx_rbm.linen.to_linen`][] turns an Equinox
model into a twin and its variables, and [`eqx_rbm.linen.to_equinox`][] turns a
twin and variables back; the Flax-free converters they build on are [`eqx_rbm.from_variables`][]
and [`eqx_rbm.to_variables`][].
"""

try:
    import flax.linen  # noqa: F401
except ImportError as err:
    raise ImportError(
        'eqx_rbm.linen needs Flax: pip install "eqx_rbm[flax]"\n'
        "(eqx_rbm.from_variables and eqx_rbm.to_variables convert NetKet-layout variables without it)"
    ) from err

from ._modphase_twin import RBMModPhase
from ._symm_twins import RBMMultiValSymm, RBMSymm
from ._twins import RBM, RBMMultiVal, to_equinox, to_linen

__all__ = ["RBM", "RBMModPhase", "RBMMultiVal", "RBMMultiValSymm", "RBMSymm", "to_equinox", "to_linen"]
