"""MkDocs hooks: an offline math renderer and the recorded benchmark results.

- MathJax is copied into the site from the `django-static-mathjax` package (the `docs` extra), so
  formulas are typeset without a network when the site is viewed.
- `benchmarks/results/*.png` (the scale plots) are copied into the site under `assets/benchmarks/`.
- From `benchmarks/results/<backend>.json`, the build draws `assets/benchmarks/<backend>-vs-netket.svg`
  (NetKet's time over eqx_rbm's for the headline cases) and replaces a line
  `<!-- benchmark-table: <backend> -->` of a page with a table of the same cases, so that every
  measured number comes from the recorded file and none is copied by hand.
"""

from __future__ import annotations

import html
import importlib.resources
import json
import re
from pathlib import Path
from typing import Any, NamedTuple

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
ASSETS = "assets/benchmarks"
MATHJAX_DEST = "assets/mathjax"
# The combined MathJax component that mkdocs.yml loads; the subfolders next to it hold what it loads
# on demand (TeX extensions, CHTML fonts, accessibility and menu code).
MATHJAX_ENTRY = "tex-mml-chtml.js"

_TABLE_MARKER = re.compile(r"^<!-- benchmark-table: (?P<backend>[a-z0-9]+) -->[ \t]*$", re.MULTILINE)


class Headline(NamedTuple):
    """One case of the summary: a row of the recorded results and the NetKet candidate it is compared to."""

    group: str
    case: str
    netket: str
    label: str


HEADLINES = (
    Headline(
        "VMC iteration",
        "float64 L=40 alpha=2 samples=1024 chains=128",
        "netket",
        "VMC iteration, float64, vs `VMC_SR` (exact SR)",
    ),
    Headline(
        "VMC iteration",
        "float64 L=40 alpha=2 samples=1024 chains=128",
        "netket VMC+SR",
        "same, vs `VMC` with `SR` (conjugate gradients)",
    ),
    Headline(
        "VMC iteration",
        "complex128 L=40 alpha=2 samples=1024 chains=128",
        "netket",
        "VMC iteration, complex128, vs `VMC_SR` (exact SR)",
    ),
    Headline(
        "VMC iteration",
        "complex128 L=40 alpha=2 samples=1024 chains=128",
        "netket VMC+SR",
        "same, vs `VMC` with `SR` (conjugate gradients)",
    ),
    Headline(
        "RBM forward", "float64 N=256 alpha=2 batch=4096", "netket", "forward, float64, N=256, batch 4096"
    ),
    Headline(
        "RBM forward", "float32 N=256 alpha=2 batch=4096", "netket", "forward, float32, N=256, batch 4096"
    ),
    Headline(
        "RBM forward",
        "complex128 N=256 alpha=2 batch=4096",
        "netket",
        "forward, complex128, N=256, batch 4096",
    ),
    Headline(
        "grad of mean log psi",
        "float64 N=64 alpha=2 batch=4096",
        "netket",
        "`jax.grad` of mean log ψ, float64, N=64",
    ),
    Headline(
        "grad of mean log psi",
        "complex128 N=64 alpha=2 batch=4096",
        "netket",
        "holomorphic `jax.grad`, complex128, N=64",
    ),
    Headline(
        "per-sample jacobian",
        "float64 N=40 alpha=2 batch=1024",
        "netket",
        "per-sample log-derivatives, float64, N=40",
    ),
    Headline(
        "RBMMultiVal forward",
        "float64 n_classes=8 N=64 alpha=1 batch=4096",
        "netket",
        "RBMMultiVal forward, 8 classes, N=64",
    ),
    Headline("RBMSymm", "float64 L=10 alpha=16 batch=1024", "netket", "RBMSymm forward, 10x10, alpha=16"),
    Headline(
        "NetKet sampler",
        "float64 L=40 alpha=2 samples=1024 chains=128",
        "netket",
        "`MCState.sample()`, `eqx_rbm.netket.MetropolisLocal` vs NetKet's",
    ),
    Headline("import time", "repeats=3", "netket", "import time"),
)


class Row(NamedTuple):
    label: str
    eqx_rbm: float
    netket: float

    @property
    def ratio(self) -> float:
        return self.netket / self.eqx_rbm


def _recorded_backends() -> list[str]:
    # <backend>-<group>.json (cpu-scale, cpu-heisenberg) holds one group's cases: no headline rows.
    return sorted(path.stem for path in RESULTS.glob("*.json") if "-" not in path.stem)


def _load(backend: str) -> dict[str, Any]:
    path = RESULTS / f"{backend}.json"
    if not path.is_file():
        raise PluginError(f"no recorded benchmark results for backend {backend!r}: {path} does not exist")
    return json.loads(path.read_text(encoding="utf-8"))


def headline_rows(recorded: dict[str, Any], source: str) -> list[Row]:
    """The headline cases of one recording; a missing case or candidate stops the build."""
    # Rows are named by their title (the group of older recordings) and case.
    by_case = {(r.get("title", r["group"]), r["case"]): r for r in recorded["results"]}
    rows = []
    for h in HEADLINES:
        result = by_case.get((h.group, h.case))
        if result is None:
            raise PluginError(
                f"{source} has no case {h.group!r} / {h.case!r}: update HEADLINES in {__file__}"
            )
        times = result["median_s"]
        if result.get("unit") != "time" or "eqx_rbm" not in times or h.netket not in times:
            raise PluginError(
                f"{source}: case {h.group!r} / {h.case!r} has no times for eqx_rbm and {h.netket!r}"
            )
        rows.append(Row(h.label, float(times["eqx_rbm"]), float(times[h.netket])))
    return rows


def format_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def machine_line(machine: dict[str, Any]) -> str:
    parts = [
        f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores",
        f"backend {machine.get('backend')}",
    ]
    for name in ("jax", "netket"):
        if name in machine:
            parts.append(f"{name} {machine[name]}")
    parts.append(str(machine.get("date_utc", "date not recorded")))
    return "; ".join(parts)


def markdown_table(backend: str) -> str:
    recorded = _load(backend)
    rows = headline_rows(recorded, f"benchmarks/results/{backend}.json")
    lines = [
        "| case | eqx_rbm | NetKet | NetKet / eqx_rbm |",
        "|---|--:|--:|--:|",
        *(
            f"| {r.label} | {format_time(r.eqx_rbm)} | {format_time(r.netket)} | {r.ratio:.2f}x |"
            for r in rows
        ),
        "",
        f"Median times from `benchmarks/results/{backend}.json` ({machine_line(recorded['machine'])}).",
    ]
    return "\n".join(lines)


def _element(name: str, body: str | None = None, **attrs: object) -> str:
    """One SVG element; attribute names are written with `-` for `_`, numbers with one decimal."""
    text = "".join(
        f' {k.replace("_", "-")}="{f"{v:.1f}" if isinstance(v, float) else v}"' for k, v in attrs.items()
    )
    return f"<{name}{text}/>" if body is None else f"<{name}{text}>{html.escape(body)}</{name}>"


def ratio_chart(rows: list[Row], title: str) -> str:
    """A horizontal bar chart, as SVG, of NetKet's time over eqx_rbm's."""
    label_w, plot_w, right_w, bar_h, gap, top, bottom = 330, 380, 60, 18, 8, 44, 40
    width = label_w + plot_w + right_w
    plot_bottom = top + len(rows) * (bar_h + gap)
    height = plot_bottom + bottom
    upper = max(2, int(max(r.ratio for r in rows)) + 1)
    ink, grey = "#212121", "#616161"

    def x(value: float) -> float:
        return label_w + plot_w * value / upper

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13" role="img">',
        _element("title", title),
        _element("rect", width=width, height=height, rx=6, fill="#ffffff"),
        _element(
            "text", title, x=width / 2, y=24, text_anchor="middle", font_size=15, font_weight="bold", fill=ink
        ),
    ]
    for tick in range(upper + 1):
        parts.append(_element("line", x1=x(tick), y1=top - 4, x2=x(tick), y2=plot_bottom, stroke="#e0e0e0"))
        parts.append(
            _element("text", f"{tick}x", x=x(tick), y=plot_bottom + 16, text_anchor="middle", fill=grey)
        )
    for k, row in enumerate(rows):
        y = top + k * (bar_h + gap)
        label = row.label.replace("`", "")
        parts.append(_element("text", label, x=label_w - 8, y=y + bar_h - 5, text_anchor="end", fill=ink))
        colour = "#3f51b5" if row.ratio >= 1 else "#e65100"
        parts.append(
            _element("rect", x=label_w, y=y, width=x(row.ratio) - label_w, height=bar_h, fill=colour)
        )
        parts.append(_element("text", f"{row.ratio:.2f}x", x=x(row.ratio) + 4, y=y + bar_h - 5, fill=ink))
    parts.append(
        _element("line", x1=x(1), y1=top - 8, x2=x(1), y2=plot_bottom, stroke=ink, stroke_dasharray="4 3")
    )
    caption = "NetKet's time / eqx_rbm's (dashed: equal speed; longer is faster)"
    parts.append(
        _element("text", caption, x=label_w + plot_w / 2, y=plot_bottom + 34, text_anchor="middle", fill=grey)
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


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
    for image in sorted(RESULTS.glob("*.png")):
        files.append(File.generated(config, f"{ASSETS}/{image.name}", abs_src_path=str(image)))
    for backend in _recorded_backends():
        rows = headline_rows(_load(backend), f"benchmarks/results/{backend}.json")
        chart = ratio_chart(rows, f"NetKet's time over eqx_rbm's, {backend.upper()}, headline cases")
        files.append(File.generated(config, f"{ASSETS}/{backend}-vs-netket.svg", content=chart))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    return _TABLE_MARKER.sub(lambda m: markdown_table(m["backend"]), markdown)
