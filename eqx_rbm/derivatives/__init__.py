"""Closed-form log-derivatives, the Jacobian kernel and stochastic reconfiguration."""

from ._derivatives import Jacobian, jacobian, log_derivatives
from ._sr import sr_gradient

__all__ = ["Jacobian", "jacobian", "log_derivatives", "sr_gradient"]
