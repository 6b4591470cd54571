"""MkDocs hooks: an offline math renderer.

- MathJax is copied into the site from the `django-static-mathjax` package (the `docs` extra), so
  formulas are typeset without a network when the site is viewed.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

MATHJAX_DEST = "assets/mathjax"
# The combined MathJax component that mkdocs.yml loads; the subfolders next to it hold what it loads
# on demand (TeX extensions, CHTML fonts, accessibility and menu code).
MATHJAX_ENTRY = "tex-mml-chtml.js"


def _mathjax_root() -> Path:
    try:
        package = importlib.resources.files("mathjax")
    except ModuleNotFoundError as err:
        raise PluginError(
            "MathJax is not installed: the docs need the django-static-mathjax package "
            '(python -m pip install ".[docs]")'
        ) from err
    root = Path(str(package)) / "static" / "mathjax"
    if not (root / "es5" / MATHJAX_ENTRY).is_file():
        raise PluginError(f"{root / 'es5' / MATHJAX_ENTRY} is missing: reinstall django-static-mathjax")
    return root


def mathjax_files(root: Path) -> list[tuple[str, Path]]:
    """(path under the MathJax folder of the site, source file) of what the site needs."""
    es5 = root / "es5"
    wanted = [(MATHJAX_ENTRY, es5 / MATHJAX_ENTRY), ("LICENSE", root / "LICENSE")]
    for folder in sorted(p for p in es5.iterdir() if p.is_dir()):
        wanted += [(p.relative_to(es5).as_posix(), p) for p in sorted(folder.rglob("*")) if p.is_file()]
    return wanted


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for relative, source in mathjax_files(_mathjax_root()):
        files.append(File.generated(config, f"{MATHJAX_DEST}/{relative}", abs_src_path=str(source)))
    return files
