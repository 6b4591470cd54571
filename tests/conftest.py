"""Test configuration: 64-bit mode. Shared utilities live in tests/helpers.py."""

from __future__ import annotations

import jax

# The tests exercise float64 and complex128 models, which need x64. The library
# itself never touches this flag; building a 64-bit model without it is an error.
jax.config.update("jax_enable_x64", True)
