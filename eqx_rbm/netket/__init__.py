"""NetKet samplers for eqx_rbm's models, with local updates (needs `eqx_rbm[netket]`).

[`eqx_rbm.netket.MetropolisLocal`][] and [`eqx_rbm.netket.MetropolisExchange`][]
take the arguments of NetKet's samplers of the same names and return a
`netket.sampler.MetropolisSampler` whose chains keep their
[`eqx_rbm.LocalState`][] and move through [`eqx_rbm.metropolis`][]: a
proposal costs a few kernel rows instead of a forward pass.
"""

try:
    import netket  # noqa: F401
except ImportError as err:
    raise ImportError(
        'eqx_rbm.netket needs NetKet: pip install "eqx_rbm[netket]"\n'
        "(without it, eqx_rbm.metropolis samples eqx_rbm's models directly)"
    ) from err

from ._rules import ExchangeMoves, SiteMoves
from ._sampler import (
    NETKET_VERSION,
    LocalUpdateSampler,
    LocalUpdateSamplerState,
    MetropolisExchange,
    MetropolisLocal,
)

__all__ = [
    "NETKET_VERSION",
    "ExchangeMoves",
    "LocalUpdateSampler",
    "LocalUpdateSamplerState",
    "MetropolisExchange",
    "MetropolisLocal",
    "SiteMoves",
]
