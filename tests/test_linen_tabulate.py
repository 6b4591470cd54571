"""tabulate draws the same table as Flax does for NetKet's models."""

from __future__ import annotations

import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require

import eqx_rbm.linen as linen

ANSI = re.compile(r"\x1b\[[0-9;]*m")

SPINS = jnp.asarray(np.random.default_rng(0).choice([-1.0, 1.0], size=(6, 5)))
LEVELS = jnp.asarray(np.random.default_rng(1).integers(0, 3, size=(6, 4)), dtype=jnp.int32)


def plain(table: str) -> str:
    return ANSI.sub("", table)


RBM_CASES = [
    ({"alpha": 2}, SPINS, {}),
    ({"alpha": 2}, SPINS, {"depth": 0}),
    ({"alpha": 1, "use_visible_bias": False}, SPINS, {"depth": 0}),
    ({"alpha": 3, "use_hidden_bias": False, "param_dtype": jnp.complex64}, SPINS[0], {}),
    ({"alpha": 2}, SPINS.astype(jnp.float32), {"console_kwargs": {"width": 200}}),
]


@pytest.mark.parametrize(("config", "x", "options"), RBM_CASES)
def test_rbm_table_matches_netket(config, x, options):
    nk = require("netket")
    require("rich")
    key = jax.random.key(0)
    ours = linen.RBM(**config).tabulate(key, x, **options)
    reference = nk.models.RBM(**config).tabulate(key, x, **options)
    assert plain(ours) == plain(reference)
    # Styles too: the markup is the one Flax emits.
    assert ours == reference


@pytest.mark.parametrize("options", [{}, {"depth": 1}, {"depth": 0}, {"show_repeated": True}])
def test_multival_table_matches_netket(options):
    nk = require("netket")
    require("rich")
    key = jax.random.key(0)
    ours = linen.RBMMultiVal(3, alpha=2).tabulate(key, LEVELS, **options)
    reference = nk.models.RBMMultiVal(n_classes=3, alpha=2).tabulate(key, LEVELS, **options)
    assert plain(ours) == plain(reference)
    assert "RBM/Dense" in plain(ours) or options.get("depth") is not None


def test_rich_kwargs_reach_rich():
    nk = require("netket")
    require("rich")
    key = jax.random.key(0)
    options = {
        "console_kwargs": {"width": 120, "force_terminal": False},
        "table_kwargs": {"title_justify": "left", "caption_justify": "left"},
        "column_kwargs": {"justify": "right"},
    }
    ours = linen.RBM(alpha=2).tabulate(key, SPINS, **options)
    assert "\x1b[" not in ours
    assert ours == nk.models.RBM(alpha=2).tabulate(key, SPINS, **options)
    assert ours != linen.RBM(alpha=2).tabulate(key, SPINS)
    # Unlike Flax, the defaults can be overridden.
    custom = linen.RBM(alpha=2).tabulate(
        key, SPINS, table_kwargs={"title": "custom title", "show_lines": False}
    )
    assert "custom title" in custom and "RBM Summary" not in custom


def test_table_rows_and_totals():
    require("rich")
    table = plain(linen.RBM(alpha=2).tabulate(jax.random.key(0), jax.ShapeDtypeStruct((6, 5), jnp.float64)))
    rows = [line for line in table.splitlines() if line.startswith("│")]
    assert rows[0].split("│")[1:6] == [
        " " * 7,
        " RBM    ",
        " float64[6,5] ",
        " float64[6]    ",
        " visible_bias: float64[5] ",
    ]
    assert "Total Parameters: 65 (520 B)" in table
    assert "│ Dense │ Dense" in table


def test_missing_rich_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "rich.console", None)
    with pytest.raises(ImportError, match=r'pip install "eqx_rbm\[tabulate\]"'):
        linen.RBM().tabulate(jax.random.key(0), SPINS)


def test_bad_depth():
    require("rich")
    with pytest.raises(TypeError, match="depth: expected None or a non-negative int, got -1"):
        linen.RBM().tabulate(jax.random.key(0), SPINS, depth=-1)
