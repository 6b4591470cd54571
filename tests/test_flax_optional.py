"""Flax is optional: the core package and its variable adapters run without it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Every test here spawns Python processes.
pytestmark = pytest.mark.slow

# Run from the repository root, so that the checkout is imported, as under pytest.
ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["flax"] = None  # any import of flax now fails

    import jax
    import jax.numpy as jnp
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    import eqx_rbm

    model = eqx_rbm.RBMMultiVal(4, 3, key=jax.random.key(0))
    variables = jax.tree.map(np.asarray, eqx_rbm.to_variables(model))
    back = eqx_rbm.from_variables(variables, n_classes=3)
    x = jnp.array([[0, 1, 2, 1]])
    assert np.array_equal(back(x), model(x))
    try:
        eqx_rbm.from_variables({"params": {}})
    except eqx_rbm.VariablesError as err:
        assert "params/Dense: missing" in str(err)
    else:
        raise AssertionError("no VariablesError")
    assert not any(name == "flax" or name.startswith("flax.") for name in sys.modules if sys.modules[name])

    try:
        import eqx_rbm.linen
    except ImportError as err:
        print(str(err).splitlines()[0])
    else:
        raise AssertionError("eqx_rbm.linen imported without flax")
    """
)


def test_core_and_adapters_work_without_flax_and_linen_names_the_extra():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'eqx_rbm.linen needs Flax: pip install "eqx_rbm[flax]"'


def test_import_eqx_rbm_does_not_import_flax():
    script = "import sys, eqx_rbm; print(any(m.split('.')[0] == 'flax' for m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
