"""Runs every ```python block of README.md and docs/**/*.md, so the documentation cannot drift.

Each Markdown file is one test case: its blocks run in order in one fresh namespace, as a reader
would paste them into a single session. Blocks fenced as ```text, ```bash, ... are not run. A page
whose code imports an optional package (netket, flax, optax) gets it through `require`, which skips
locally when it is missing and fails in CI.
"""

from __future__ import annotations

import re
from pathlib import Path

import jax
import pytest
from helpers import require

ROOT = Path(__file__).resolve().parent.parent
OPTIONAL = ("netket", "flax", "optax")

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")


def markdown_files() -> list[Path]:
    """README.md and the docs pages that hold at least one Python block."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [f for f in files if f.is_file() and python_blocks(f.read_text(encoding="utf-8"))]


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, source) of each fenced block whose info string starts with `python`."""
    blocks: list[tuple[int, str]] = []
    lines = text.splitlines()
    k = 0
    while k < len(lines):
        m = _FENCE.match(lines[k])
        if m is None:
            k += 1
            continue
        indent, fence, info = m["indent"], m["fence"], m["info"].strip()
        body: list[str] = []
        k += 1
        while k < len(lines):
            line = lines[k]
            stripped = line.strip()
            if stripped.startswith(fence[0] * len(fence)) and set(stripped) <= {fence[0]}:
                break
            body.append(line[len(indent) :] if line.startswith(indent) else line)
            k += 1
        language = info.split()[0].lower() if info else ""
        if language in {"python", "py"}:
            blocks.append((k - len(body) + 1, "\n".join(body) + "\n"))
        k += 1
    return blocks


def test_blocks_are_found() -> None:
    """Guards the collector itself: README.md has at least one Python block."""
    assert python_blocks((ROOT / "README.md").read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_code_runs(path: Path) -> None:
    blocks = python_blocks(path.read_text(encoding="utf-8"))
    source = "\n".join(code for _, code in blocks)
    for name in OPTIONAL:
        if re.search(rf"^\s*(import|from)\s+{name}\b", source, flags=re.MULTILINE):
            require(name)
    jax.config.update("jax_enable_x64", True)
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    for line, code in blocks:
        try:
            compiled = compile(code, f"{path.relative_to(ROOT)}:{line}", "exec")
            exec(compiled, namespace)
        except Exception as err:
            raise AssertionError(
                f"the Python block at {path.relative_to(ROOT)}:{line} failed: {err!r}"
            ) from err
