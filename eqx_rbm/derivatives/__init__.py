"""Closed-form log-derivatives, the Jacobian kernel and stochastic reconfiguration."""

from ._derivatives import Jacobian as Jacobian
from ._derivatives import jacobian as jacobian
from ._derivatives import log_derivatives as log_derivatives
from ._sr import sr_gradient as sr_gradient
