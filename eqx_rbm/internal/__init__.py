"""Validation and sharding helpers shared by every layer (not public API)."""
