"""Flax-style variable dicts to and from models, without Flax."""

from ._variables import VariablesError, from_variables, to_variables

__all__ = ["VariablesError", "from_variables", "to_variables"]
