"""The package's layers: each sub-package imports only from itself and the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

import eqx_rbm

PACKAGE = Path(eqx_rbm.__file__).parent
# Lowest first: a module may import from its own sub-package and any listed before it.
LAYERS = ("internal", "numerics", "models", "variables", "derivatives", "sampling", "linen", "netket")


def _imported_packages(path: Path) -> set[str]:
    """The eqx_rbm sub-packages a module imports from (relative imports only: the package uses no others)."""
    here = path.relative_to(PACKAGE).parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = list(here[: len(here) - node.level + 1]) + (node.module.split(".") if node.module else [])
            # `from .. import x` from a sub-package names the sub-package x itself
            found.add(parts[0] if parts else node.names[0].name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("eqx_rbm."):
            found.add(node.module.split(".")[1])
    return found


def test_every_module_lives_in_a_layer():
    flat = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert flat == [], f"modules outside the sub-packages: {flat}"
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert folders == sorted(LAYERS)


def test_no_module_imports_a_higher_layer():
    upward = []
    for layer_index, layer in enumerate(LAYERS):
        for path in sorted((PACKAGE / layer).glob("*.py")):
            for package in _imported_packages(path):
                if package in LAYERS and LAYERS.index(package) > layer_index:
                    upward.append(f"{path.relative_to(PACKAGE)} imports {package}")
    assert upward == []


def test_the_check_sees_imports():
    # The walk above must find real edges, or an empty result proves nothing.
    assert _imported_packages(PACKAGE / "netket" / "_sampler.py") >= {"models", "sampling"}
    assert _imported_packages(PACKAGE / "sampling" / "_local.py") >= {"internal", "models"}
