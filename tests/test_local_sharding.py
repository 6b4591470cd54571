"""Local updates and closed-form derivatives on batch-sharded inputs, under both mesh flavours.

`jax.make_mesh` gives *explicit* axes, where JAX refuses gathers and
contractions whose output sharding is ambiguous; `jax.sharding.Mesh` gives
*auto* axes. Both must give the unsharded numbers with batch-sharded outputs.
JAX fixes the number of host devices when it starts, so the check runs in a
fresh interpreter with four simulated CPU devices.
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
    N_ROWS = 16

    def check(name, sharded, reference):
        leaves = jax.tree.leaves(sharded)
        for out, ref in zip(leaves, jax.tree.leaves(reference), strict=True):
            np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=1e-13, atol=1e-13, err_msg=name)
        return leaves

    def check_rows(name, out):
        # The batch axis must stay split over the four devices, not gathered.
        assert len(out.addressable_shards) == 4, (name, out.sharding)
        assert out.addressable_shards[0].data.shape[0] == out.shape[0] // 4, (name, out.sharding)

    wide = jax.nn.initializers.normal(0.5)
    inits = dict(kernel_init=wide, hidden_bias_init=wide, visible_bias_init=wide, key=jax.random.key(0))
    models = {
        "RBM float64": eqx_rbm.RBM(8, alpha=2, **inits),
        "RBM complex128": eqx_rbm.RBM(8, alpha=2, param_dtype=jnp.complex128, **inits),
        "RBMMultiVal": eqx_rbm.RBMMultiVal(6, 3, use_hidden_bias=False, **inits),
    }

    def inputs(model, seed):
        rng = np.random.default_rng(seed)
        states = np.array([0, 1, 2]) if isinstance(model, eqx_rbm.RBMMultiVal) else np.array([-1.0, 1.0])
        n_sites = model.n_sites
        x = rng.choice(states, size=(N_ROWS, n_sites))
        sites = np.stack([rng.choice(n_sites, size=2, replace=False) for _ in range(N_ROWS)])
        values = rng.choice(states, size=(N_ROWS, 2))
        accept = rng.random(N_ROWS) < 0.5
        return x, sites, values, accept

    @eqx.filter_jit
    def local(model, x, sites, values, accept):
        theta = model.theta(x)
        state = eqx_rbm.local_state(model, x)
        delta, proposed = eqx_rbm.propose(model, state, sites, values)
        new_theta, moved = proposed.theta, proposed.x
        kept = eqx_rbm.accept(state, proposed, accept)
        delta2 = eqx_rbm.exchange_log_ratios(model, state, np.array([[0, 1], [2, model.n_sites - 1]]))
        # Every site set to the value of its right neighbour: valid states, some unchanged.
        per_site = eqx_rbm.site_log_ratios(model, state, jnp.roll(x, 1, axis=-1))
        return (theta, delta, new_theta, moved, delta2, kept.x, kept.theta, kept.hidden_sum, per_site)

    @eqx.filter_jit
    def derivatives(model, x, v):
        tree = eqx_rbm.log_derivatives(model, x)
        plain = eqx_rbm.jacobian(model, x)
        centred = eqx_rbm.jacobian(model, x, centred=True)
        round_trip = centred.matvec(centred.rmatvec(v))
        batched = (jax.tree.leaves(tree), plain.kernel(), centred.kernel(), round_trip, centred.flat())
        return batched, (plain.rmatvec(v), centred.rmatvec(v))

    flavours = {
        "auto": Mesh(np.array(jax.devices()), ("batch",), axis_types=(AxisType.Auto,)),
        "explicit": jax.make_mesh((4,), ("batch",)),
    }
    assert flavours["explicit"].axis_types == (AxisType.Explicit,)
    for name, model in models.items():
        x, sites, values, accept = inputs(model, 1)
        v = np.random.default_rng(2).normal(size=N_ROWS)
        ref_local = local(model, x, sites, values, accept)
        ref_derivatives = derivatives(model, x, v)
        for flavour, mesh in flavours.items():
            rows = NamedSharding(mesh, P("batch"))
            with jax.set_mesh(mesh):
                args = [jax.device_put(jnp.asarray(a), rows) for a in (x, sites, values, accept)]
                out = local(model, *args)
                for leaf in check(f"{name} {flavour} local", out, ref_local):
                    check_rows(f"{name} {flavour} local", leaf)
                batched, replicated = derivatives(model, args[0], jax.device_put(jnp.asarray(v), rows))
                for leaf in check(f"{name} {flavour} derivatives", batched, ref_derivatives[0]):
                    check_rows(f"{name} {flavour} derivatives", leaf)
                check(f"{name} {flavour} rmatvec", replicated, ref_derivatives[1])
            print(name, flavour, "ok")
    print("local sharding ok")
    """
)


def test_local_updates_and_derivatives_under_both_mesh_flavours():
    assert "local sharding ok" in run_on_host_devices(SCRIPT)
