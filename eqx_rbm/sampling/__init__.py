"""Local updates and Metropolis sampling: `LocalState`, the moves, `metropolis` and its paths."""

from ._local import LocalState, accept, exchange_log_ratios, local_state, propose, site_log_ratios
from ._sampler import metropolis

__all__ = [
    "LocalState",
    "accept",
    "exchange_log_ratios",
    "local_state",
    "metropolis",
    "propose",
    "site_log_ratios",
]
