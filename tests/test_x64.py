"""64-bit parameters without jax_enable_x64 raise instead of silently downcasting."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

# Every test here spawns Python processes.
pytestmark = pytest.mark.slow


def run_without_x64(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    env["JAX_PLATFORMS"] = "cpu"
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=120
    )


def test_64_bit_models_raise_and_32_bit_models_work_without_x64():
    result = run_without_x64(
        """
        import jax, jax.numpy as jnp
        import eqx_rbm
        assert not jax.config.jax_enable_x64
        builders = {
            "RBM default": lambda: eqx_rbm.RBM(4, key=jax.random.key(0)),
            "RBM complex128": lambda: eqx_rbm.RBM(4, param_dtype=jnp.complex128, key=jax.random.key(0)),
            "RBMMultiVal default": lambda: eqx_rbm.RBMMultiVal(4, 3, key=jax.random.key(0)),
            "OneHot float64": lambda: eqx_rbm.OneHot(2, dtype=jnp.float64),
        }
        for name, build in builders.items():
            try:
                build()
            except ValueError as err:
                message = str(err)
                assert "jax_enable_x64" in message and "float32" in message, message
                print(name, "raised")
            else:
                raise SystemExit(name + " did not raise")
        model = eqx_rbm.RBM(4, param_dtype=jnp.float32, key=jax.random.key(0))
        assert model(jnp.ones(4)).dtype == jnp.float32
        multival = eqx_rbm.RBMMultiVal(4, 3, param_dtype=jnp.complex64, key=jax.random.key(0))
        assert multival(jnp.zeros(4, jnp.int32)).dtype == jnp.complex64
        # Importing the package left the global configuration alone.
        assert not jax.config.jax_enable_x64
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("raised") == 4
    assert result.stdout.strip().endswith("ok")
