"""NetKet is optional: eqx_rbm runs without it, and eqx_rbm.netket names the extra."""

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
    sys.modules["netket"] = None  # any import of netket now fails

    import jax
    import jax.numpy as jnp

    import eqx_rbm

    model = eqx_rbm.RBM(4, param_dtype=jnp.float32, key=jax.random.key(0))
    state = eqx_rbm.local_state(model, jnp.ones((2, 4)))
    samples, _, _ = eqx_rbm.metropolis(model, state, jax.random.key(1), n_sweeps=2)
    assert samples.shape == (2, 2, 4)

    try:
        import eqx_rbm.netket
    except ImportError as err:
        print(str(err).splitlines()[0])
    else:
        raise AssertionError("eqx_rbm.netket imported without netket")
    """
)


def _run(script: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_core_works_without_netket_and_the_subpackage_names_the_extra():
    assert _run(SCRIPT) == 'eqx_rbm.netket needs NetKet: pip install "eqx_rbm[netket]"'


def test_import_eqx_rbm_does_not_import_netket():
    script = "import sys, eqx_rbm, eqx_rbm.linen; print(any(m.startswith('netket') for m in sys.modules))"
    assert _run(script) == "False"
