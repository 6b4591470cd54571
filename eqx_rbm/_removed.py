"""Errors for the names removed in 0.2 that point to their replacements (kept for one release)."""

from __future__ import annotations


def removed_name(module: str, name: str, replacements: dict[str, str]) -> object:
    """Raises the `AttributeError` of a module-level `__getattr__`, naming the replacement if any."""
    if name in replacements:
        raise AttributeError(
            f"{module}.{name} was removed in eqx_rbm 0.2; use {replacements[name]} instead "
            "(see the CHANGELOG for every renamed name)"
        )
    raise AttributeError(f"module {module!r} has no attribute {name!r}")
