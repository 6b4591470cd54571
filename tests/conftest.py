"""Test configuration: 64-bit mode. Shared utilities live in tests/helpers.py."""

from __future__ import annotations

import jax

# The tests exercise float64 and complex128 models, which need x64. The library
# itself never touches this flag; building a 64-bit model without it is an error.
jax.config.update("jax_enable_x64", True)


# The most expensive files, heaviest first (their compilations and spawned processes). xdist
# hands out whole files (`--dist loadfile` in pyproject.toml, so that a file's compiled models
# and module fixtures are built once) in collection order: with these first, the file that
# finishes last is a short one and neither worker waits on the other at the end.
HEAVY_FIRST = (
    "test_rbm_parity.py",
    "test_docs.py",
    "test_netket_sampler.py",
    "test_sr.py",
    "test_recipes_quantax.py",
    "test_derivatives.py",
    "test_lattice_vmc.py",
    "test_linen_twins.py",
    "test_multiprocess.py",
    "test_local_sharding.py",
)


def pytest_collection_modifyitems(items: list) -> None:
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    # A stable sort: the other files, and the tests within each file, keep their order.
    items.sort(key=lambda item: rank.get(item.path.name, len(HEAVY_FIRST)))
