"""Batch-sharded inputs give the unsharded numbers, sharded the same way.

JAX fixes the number of host devices when it starts, so the check runs in a
fresh interpreter with four simulated CPU devices. It runs under both kinds of
mesh, each made current with `jax.set_mesh`: `jax.sharding.Mesh`, whose axes
are auto (the compiler propagates shardings), and `jax.make_mesh`, whose axes
are explicit by default in JAX 0.10 (shardings are part of every array's type).
"""

from __future__ import annotations

import textwrap

import pytest
from helpers import run_on_host_devices

# Every test here spawns Python processes.
pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import jax
    import jax.numpy as jnp
    import numpy as np
    import equinox as eqx
    from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

    jax.config.update("jax_enable_x64", True)
    import eqx_rbm

    assert jax.device_count() == 4, jax.devices()
    MESHES = {
        "auto": Mesh(np.array(jax.devices()), ("batch",)),
        "explicit": jax.make_mesh((4,), ("batch",)),
    }
    assert MESHES["auto"].axis_types == (AxisType.Auto,)
    assert MESHES["explicit"].axis_types == (AxisType.Explicit,)

    def check(name, sharded, reference):
        sharded_leaves = jax.tree.leaves(sharded)
        for out, ref in zip(sharded_leaves, jax.tree.leaves(reference), strict=True):
            np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=1e-13, atol=1e-13, err_msg=name)
        return sharded_leaves

    def check_rows(name, out, rows):
        # The batch axis of the output must stay split over the four devices.
        assert out.sharding.is_equivalent_to(rows, out.ndim), (name, out.sharding)
        assert len(out.addressable_shards) == 4, name
        assert out.addressable_shards[0].data.shape[0] == out.shape[0] // 4, (name, out.sharding)

    key = jax.random.key(0)
    spins = jax.random.choice(key, jnp.array([-1.0, 1.0]), (64, 16))
    bosons = jax.random.randint(key, (64, 8), 0, 4)
    forward = eqx.filter_jit(lambda m, x: m(x))
    grad = eqx.filter_jit(eqx.filter_grad(lambda m, x: jnp.mean(m(x).real)))
    # Per-sample Jacobian, as stochastic reconfiguration uses it.
    per_sample = eqx.filter_grad(lambda m, s: m(s).real)
    jac = eqx.filter_jit(lambda m, x: jax.vmap(per_sample, in_axes=(None, 0))(m, x))
    models = {
        f"RBM {dtype.__name__}": eqx_rbm.RBM(16, alpha=2, param_dtype=dtype, key=key)
        for dtype in (jnp.float64, jnp.complex128)
    }
    models["RBMMultiVal"] = eqx_rbm.RBMMultiVal(8, 4, key=key)
    one_hot = eqx_rbm.OneHot(4, local_states=(-3, -1, 1, 3))
    odd = 2 * bosons - 3

    # Local updates with one chain per row.
    rbm = models["RBM float64"]
    sites = jax.random.randint(key, (64, 2), 0, 8).at[:, 1].add(8)
    values = -jnp.take_along_axis(spins, sites, axis=-1)

    @eqx.filter_jit
    def ratio(m, x, sites, values):
        delta, proposed = eqx_rbm.propose(m, eqx_rbm.local_state(m, x), sites, values)
        return delta, proposed.theta

    # The unsharded numbers, computed once outside any mesh (each mesh context compiles anew).
    inputs = {name: bosons if name == "RBMMultiVal" else spins for name in models}
    reference = {name: tuple(f(m, inputs[name]) for f in (forward, grad, jac)) for name, m in models.items()}
    reference_one_hot, reference_ratio = forward(one_hot, odd), ratio(rbm, spins, sites, values)

    for flavour, mesh in MESHES.items():
        rows = NamedSharding(mesh, P("batch"))
        with jax.set_mesh(mesh):
            for model_name, model in models.items():
                x = jax.device_put(inputs[model_name], rows)
                ref_forward, ref_grad, ref_jac = reference[model_name]
                name = f"{flavour} {model_name}"
                (out,) = check(name, forward(model, x), ref_forward)
                check_rows(name, out, rows)
                # Gradient of a batch mean: the parameters are replicated, the
                # reduction over the sharded batch is an all-reduce.
                check(f"{name} grad", grad(model, x), ref_grad)
                leaves = check(f"{name} jacobian", jac(model, x), ref_jac)
                for leaf in leaves:
                    check_rows(f"{name} jacobian", leaf, rows)

            sharded = forward(one_hot, jax.device_put(odd, rows))
            (out,) = check(f"{flavour} OneHot", sharded, reference_one_hot)
            check_rows(f"{flavour} OneHot", out, rows)
            (out,) = check(f"{flavour} OneHot eager", one_hot(jax.device_put(odd, rows)), one_hot(odd))
            check_rows(f"{flavour} OneHot eager", out, rows)

            if flavour == "auto":
                # A failed runtime check raises on every device, rather than leaving
                # the others waiting at a collective until XLA aborts the process.
                bad = jax.device_put(np.where(np.arange(64)[:, None] == 37, 0, np.asarray(odd)), rows)
                odd_states = eqx_rbm.RBMMultiVal(8, 4, local_states=(-3, -1, 1, 3), key=key)
                for call, model in ((forward, one_hot), (jac, odd_states)):
                    try:
                        jax.block_until_ready(call(model, bad))
                    except Exception as err:
                        assert "not one of local_states=(-3, -1, 1, 3)" in str(err), err
                    else:
                        raise AssertionError("an unknown local state passed the runtime check")

            sharded = ratio(rbm, *(jax.device_put(a, rows) for a in (spins, sites, values)))
            delta, new_theta = check(f"{flavour} propose", sharded, reference_ratio)
            check_rows(f"{flavour} propose delta", delta, rows)
            check_rows(f"{flavour} propose theta", new_theta, rows)
    # Explicitly sharded inputs without jax.set_mesh: the jitted gradient still
    # finds the mesh (from the input's type) for its replicated parameter gradient.
    rows = NamedSharding(MESHES["explicit"], P("batch"))
    for name, model in models.items():
        x, (_, ref_grad, ref_jac) = jax.device_put(inputs[name], rows), reference[name]
        check(f"no set_mesh {name} grad", grad(model, x), ref_grad)
        for leaf in check(f"no set_mesh {name} jacobian", jac(model, x), ref_jac):
            check_rows(f"no set_mesh {name} jacobian", leaf, rows)
    print("sharding ok")
    """
)


def test_batch_sharding_matches_unsharded():
    assert "sharding ok" in run_on_host_devices(SCRIPT)
