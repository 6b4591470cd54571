"""Numerics with no knowledge of models: the stable log cosh and its backend-specific forms."""

from ._log_cosh import log_cosh as log_cosh
