"""Batch-sharded inputs give the unsharded numbers, sharded the same way.

JAX fixes the number of host devices when it starts, so the check runs in a
fresh interpreter with four simulated CPU devices.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import jax
    import jax.numpy as jnp
    import numpy as np
    import equinox as eqx
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    jax.config.update("jax_enable_x64", True)
    import eqx_rbm
    from eqx_rbm._local import hidden_theta, log_psi_ratio

    assert jax.device_count() == 4, jax.devices()
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    rows = NamedSharding(mesh, P("batch"))

    def check(name, sharded, reference):
        sharded_leaves = jax.tree.leaves(sharded)
        for out, ref in zip(sharded_leaves, jax.tree.leaves(reference), strict=True):
            np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=1e-13, atol=1e-13, err_msg=name)
        return sharded_leaves

    def check_rows(name, out):
        # The batch axis of the output must stay split over the four devices.
        assert out.sharding.is_equivalent_to(rows, out.ndim), (name, out.sharding)
        assert len(out.addressable_shards) == 4, name
        assert out.addressable_shards[0].data.shape[0] == out.shape[0] // 4, (name, out.sharding)

    key = jax.random.key(0)
    spins = jax.random.choice(key, jnp.array([-1.0, 1.0]), (64, 16))
    bosons = jax.random.randint(key, (64, 8), 0, 4)
    for dtype in (jnp.float64, jnp.complex128):
        rbm = eqx_rbm.RBM(16, alpha=2, param_dtype=dtype, key=key)
        forward = eqx.filter_jit(lambda m, x: m(x))
        name = f"RBM {dtype.__name__}"
        (out,) = check(name, forward(rbm, jax.device_put(spins, rows)), forward(rbm, spins))
        check_rows(name, out)

    multival = eqx_rbm.RBMMultiVal(8, 4, key=key)
    forward = eqx.filter_jit(lambda m, x: m(x))
    (out,) = check("RBMMultiVal", forward(multival, jax.device_put(bosons, rows)), forward(multival, bosons))
    check_rows("RBMMultiVal", out)

    # Gradient of a batch mean: the parameters are replicated, the reduction
    # over the sharded batch is an all-reduce.
    rbm = eqx_rbm.RBM(16, alpha=2, key=key)
    grad = eqx.filter_jit(eqx.filter_grad(lambda m, x: jnp.mean(m(x))))
    check("grad", grad(rbm, jax.device_put(spins, rows)), grad(rbm, spins))

    # Per-sample Jacobian, as stochastic reconfiguration uses it.
    jac = eqx.filter_jit(lambda m, x: jax.vmap(eqx.filter_grad(lambda m, s: m(s)), in_axes=(None, 0))(m, x))
    leaves = check("jacobian", jac(rbm, jax.device_put(spins, rows)), jac(rbm, spins))
    for leaf in leaves:
        check_rows("jacobian", leaf)

    # Local updates with one chain per row.
    sites = jax.random.randint(key, (64, 2), 0, 8).at[:, 1].add(8)
    values = -jnp.take_along_axis(spins, sites, axis=-1)

    @eqx.filter_jit
    def ratio(m, x, sites, values):
        return log_psi_ratio(m, x, hidden_theta(m, x), sites, values)

    sharded = ratio(rbm, *(jax.device_put(a, rows) for a in (spins, sites, values)))
    delta, new_theta = check("log_psi_ratio", sharded, ratio(rbm, spins, sites, values))
    check_rows("log_psi_ratio delta", delta)
    check_rows("log_psi_ratio theta", new_theta)
    print("sharding ok")
    """
)


def test_batch_sharding_matches_unsharded():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
    env["JAX_PLATFORMS"] = "cpu"
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-5000:]}"
    assert "sharding ok" in result.stdout
