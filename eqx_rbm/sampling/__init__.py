"""Local updates and Metropolis sampling: `LocalState`, the moves, `metropolis` and its paths."""

from ._local import LocalState as LocalState
from ._local import accept as accept
from ._local import local_state as local_state
from ._local import propose as propose
from ._log_ratios import exchange_log_ratios as exchange_log_ratios
from ._log_ratios import site_log_ratios as site_log_ratios
from ._sampler import metropolis as metropolis
