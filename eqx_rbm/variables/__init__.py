"""Flax-style variable dicts to and from models, without Flax."""

from ._variables import VariablesError as VariablesError
from ._variables import from_variables as from_variables
from ._variables import to_variables as to_variables
