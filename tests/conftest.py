"""Test configuration: 64-bit mode, the session's compilation cache, the compiler settings per file
and the order of the files. Shared utilities live in tests/helpers.py."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import jax
import pytest

# The tests exercise float64 and complex128 models, which need x64. The library
# itself never touches this flag; building a 64-bit model without it is an error.
jax.config.update("jax_enable_x64", True)


# One compilation cache for the session, on disk, shared by the xdist workers and the processes the
# tests spawn (they inherit the environment): a program that several of them compile (NetKet's
# samplers and drivers on the same Hilbert spaces, the same models' initializers, the references
# that sharded runs compare against) is compiled once. Its key holds the compiler settings below, so
# the two settings never share an entry. Made by the first process (the xdist controller, or the
# only one), removed when it ends; a directory given in the environment is used as it is (JAX read
# it, with its other settings, when this file imported JAX).
_made_cache: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _made_cache
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return
    _made_cache = tempfile.mkdtemp(prefix="eqx_rbm-tests-jax-cache-")
    # Small programs too: most of the suite's are, and a hit costs a file read.
    settings = {
        "compilation_cache_dir": _made_cache,
        "persistent_cache_min_compile_time_secs": 0.0,
        "persistent_cache_min_entry_size_bytes": 0,
    }
    for name, value in settings.items():
        os.environ[f"JAX_{name.upper()}"] = str(value)  # for the workers and spawned processes
        jax.config.update(f"jax_{name}", value)  # this process imported JAX already


def pytest_unconfigure(config: pytest.Config) -> None:
    if _made_cache is not None:
        shutil.rmtree(_made_cache, ignore_errors=True)


# Files whose assertions sit far above rounding: recipes and docs pages (energies within a
# tolerance), statistical sampling tests, processes that compare one program's results with
# themselves (sharded against one device, restored against saved), two computations of the same
# quantity compared to 1e-10-1e-12 relative, thousands of ulp in 64-bit (closed-form derivatives
# against autodiff, values and gradients against NetKet's, the library's SR and the twins in
# NetKet's drivers against NetKet's own, local updates against full evaluations), and the
# accept/reject decisions of two sampler paths (equal unless a uniform draw lands within rounding
# of a log-ratio). They compile without LLVM's expensive optimisation passes
# (`jax_disable_most_optimizations`): the same XLA programs and code paths, in less optimised
# machine code, which compiles about a third faster. Every other file (parity with NetKet and
# mpmath to a few ulp, paths that must agree bit for bit) compiles as users do: the machine code
# decides the last bits.
FAST_COMPILE = frozenset(
    {
        "test_docs.py",
        "test_recipes_quantax.py",
        "test_recipes_netket.py",
        "test_recipes_orbax.py",
        "jvmc_ground_state.py",
        "test_lattice_vmc.py",
        "test_examples.py",
        "test_multiprocess.py",
        "test_sharding.py",
        "test_local_sharding.py",
        "test_transforms.py",
        "test_symm_bose_hubbard.py",
        "test_netket_sampler.py",
        "test_benchmarks_vmc.py",
        "test_benchmarks_scale.py",
        "test_flax_optional.py",
        "test_modphase_sampling.py",
        "test_sr.py",
        "test_derivatives.py",
        "test_symm_derivatives.py",
        "test_symm_local.py",
        "test_rbm_parity.py",
        "test_symm_linen_drivers.py",
        "test_netket_optional.py",
        "test_local.py",
        "test_sampler.py",
        "test_x64.py",
    }
)
_fast: bool | None = None  # unset: the first file sets it either way (JAX_DISABLE_MOST_OPTIMIZATIONS too)


@pytest.fixture(autouse=True, scope="module")
def _compiler_settings(request: pytest.FixtureRequest) -> Iterator[None]:
    global _fast
    fast = request.path.name in FAST_COMPILE
    if fast != _fast:
        # Compiled programs are cached without the setting in their key: a switch starts afresh.
        jax.clear_caches()
        jax.config.update("jax_disable_most_optimizations", fast)
        _fast = fast
    if fast:  # and in the processes these files spawn
        os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"
    else:
        os.environ.pop("JAX_DISABLE_MOST_OPTIMIZATIONS", None)
    yield


# The most expensive files, heaviest first (their compilations and spawned processes). xdist
# hands out whole files (`--dist loadfile` in pyproject.toml, so that a file's compiled models
# and module fixtures are built once) in collection order: with these first, the file that
# finishes last is a short one and neither worker waits on the other at the end.
HEAVY_FIRST = (
    "test_docs.py",
    "test_netket_sampler.py",
    "test_recipes_quantax.py",
    "test_lattice_vmc.py",
    "test_multiprocess.py",
    "test_modphase_sampling.py",
    "test_rbm_parity.py",
    "test_sr.py",
    "test_derivatives.py",
    "test_symm_linen.py",
    "test_symm.py",
    "test_sampler.py",
)


def pytest_collection_modifyitems(items: list) -> None:
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    # The FAST_COMPILE files first, so that each worker switches the compiler settings once.
    # A stable sort: the other files, and the tests within each file, keep their order.
    items.sort(
        key=lambda item: (item.path.name not in FAST_COMPILE, rank.get(item.path.name, len(HEAVY_FIRST)))
    )
