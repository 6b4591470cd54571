"""Test configuration: 64-bit mode and the optional-dependency guard."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import jax
import pytest

# The tests exercise float64 and complex128 models, which need x64. The library
# itself never touches this flag; building a 64-bit model without it is an error.
jax.config.update("jax_enable_x64", True)

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(name: str) -> ModuleType:
    """Imports an optional test dependency: skip locally if missing, fail in CI."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        if IN_CI:
            pytest.fail(f"{name} is required in CI (install the test extra): {err}", pytrace=False)
        pytest.skip(f"{name} is not installed")
        raise  # unreachable; keeps type checkers happy
