"""Real RBMs give NetKet's very bits under jit, complex ones a few ulp of them (the README's promise).

Whether two programs give the same bits is decided by the machine code: this file compiles as
users do (tests/conftest.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import PARAM_DTYPES, input_dtype, netket_rbm_variables, random_params_init, require, spins

import eqx_rbm


@pytest.mark.parametrize("param_dtype", PARAM_DTYPES)
def test_jitted_values_match_netket_bit_for_bit_when_real(param_dtype):
    # Real models perform NetKet's floating-point operations, so under jit the
    # compiled programs give the very same bits (the README promises it).
    # Complex models use a real-arithmetic log cosh and a real product with
    # [Re W | Im W]: a few ulp of the result's magnitude apart, never more.
    nk = require("netket")
    init = random_params_init()
    model = eqx_rbm.RBM(16, alpha=2, param_dtype=param_dtype, kernel_init=init, key=jax.random.key(5))
    x = jnp.asarray(spins(np.random.default_rng(5), (64,), 16, input_dtype(param_dtype)))
    ours = np.asarray(jax.jit(lambda m, x: m(x))(model, x))
    theirs = np.asarray(
        jax.jit(nk.models.RBM(alpha=2, param_dtype=param_dtype).apply)(netket_rbm_variables(model), x)
    )
    if not np.iscomplexobj(theirs):
        np.testing.assert_array_equal(ours, theirs)
        return
    eps = np.finfo(theirs.dtype).eps
    scale = np.maximum(np.abs(theirs), 1.0)
    assert np.max(np.abs(ours - theirs) / scale) < 64 * eps, np.max(np.abs(ours - theirs) / scale)
