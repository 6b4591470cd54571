"""Two processes on JAX's distributed runtime give the single-process numbers.

The test starts two Python processes on localhost, each with two CPU devices,
joined by `jax.distributed.initialize` and gloo collectives. Each process holds
only its own rows of one batch-sharded global array. The same functions run in
this process without any distribution; every shard that comes back must match
the corresponding rows to 1e-12, and batch-shaped outputs must stay sharded.
Both mesh flavours are covered, each made current with `jax.set_mesh`.

Run directly (`python tests/test_multiprocess.py worker PORT ID DIR`) this file
is the worker.
"""

from __future__ import annotations

import itertools
import os
import pickle
import socket
import subprocess
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqx_rbm

# Every test here spawns Python processes.
pytestmark = pytest.mark.slow

N_PROCESSES = 2
LOCAL_DEVICES = 2
N_SAMPLES, N_SPINS = 32, 10
FLAVOURS = ("auto", "explicit")
TIMEOUT_S = 240


def models() -> dict[str, eqx.Module]:
    key = jax.random.key(0)
    return {
        "float64": eqx_rbm.RBM(N_SPINS, alpha=2, param_dtype=jnp.float64, key=key),
        "complex128": eqx_rbm.RBM(N_SPINS, alpha=2, param_dtype=jnp.complex128, key=key),
        "multival": eqx_rbm.RBMMultiVal(N_SPINS, 2, local_states=(-1, 1), key=key),
    }


def inputs() -> np.ndarray:
    return np.random.default_rng(0).choice([-1.0, 1.0], size=(N_SAMPLES, N_SPINS))


@eqx.filter_jit
def forward(model, x):
    return model(x)


@eqx.filter_jit
def grad(model, x):
    return eqx.filter_grad(lambda m: jnp.mean(m(x).real))(model)


@eqx.filter_jit
def jacobian(model, x):
    # The per-sample Jacobian of stochastic reconfiguration.
    per_sample = eqx.filter_grad(lambda m, s: m(s).real)
    return jax.vmap(per_sample, in_axes=(None, 0))(model, x)


@eqx.filter_jit
def flip_sweep(model, x):
    """Flips every site of every row in turn with the local-update API.

    Returns the log psi ratios of each move, (batch, n_sites), and the final
    configurations and pre-activations.
    """
    # Site indices built from x itself are sharded like x's rows.
    first = jnp.zeros_like(x[:, :1], dtype=jnp.int32)

    def move(state, site):
        sites = first + site
        flipped = -jnp.take_along_axis(state.x, sites, axis=-1)
        return eqx_rbm.propose(model, state, sites, flipped)[::-1]

    state, deltas = jax.lax.scan(move, eqx_rbm.local_state(model, x), jnp.arange(x.shape[-1]))
    return jnp.moveaxis(deltas, 0, -1), state.x, state.theta


def computations(model: str) -> dict[str, object]:
    """Name -> function of (model, x) for each model of `models()`."""
    if model == "multival":
        # Eagerly, OneHot checks only the rows this process holds.
        return {"forward": forward, "eager": lambda model, x: model(x), "grad": grad}
    return {"forward": forward, "grad": grad, "jacobian": jacobian, "sweep": flip_sweep}


# --------------------------------------------------------------------------- worker


def worker(port: int, process_id: int, outdir: Path) -> None:
    from jax.sharding import AxisType, Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=N_PROCESSES,
        process_id=process_id,
        initialization_timeout=60,
    )
    assert jax.process_count() == N_PROCESSES and jax.local_device_count() == LOCAL_DEVICES
    meshes = {
        "auto": Mesh(np.array(jax.devices()), ("batch",)),
        "explicit": jax.make_mesh((N_PROCESSES * LOCAL_DEVICES,), ("batch",)),
    }
    assert meshes["explicit"].axis_types == (AxisType.Explicit,)
    spins = inputs()
    results = {}
    for flavour, mesh in meshes.items():
        rows = NamedSharding(mesh, P("batch"))
        # This process's rows of the global batch: contiguous, one block per local device.
        blocks = sorted(
            s[0].indices(N_SAMPLES)[:2] for s in rows.addressable_devices_indices_map(spins.shape).values()
        )
        assert all(a[1] == b[0] for a, b in itertools.pairwise(blocks)), blocks
        local = spins[blocks[0][0] : blocks[-1][1]]
        with jax.set_mesh(mesh):
            x = jax.make_array_from_process_local_data(rows, local, spins.shape)
            assert not x.is_fully_addressable
            for kind, model in models().items():
                for name, fn in computations(kind).items():
                    for i, leaf in enumerate(jax.tree.leaves(fn(model, x))):
                        batched = name != "grad"
                        if batched:
                            assert leaf.sharding.is_equivalent_to(rows, leaf.ndim), (name, leaf.sharding)
                        else:
                            assert leaf.sharding.is_fully_replicated, (name, leaf.sharding)
                        shards = [(s.index, np.asarray(s.data)) for s in leaf.addressable_shards]
                        results[flavour, kind, name, i] = shards
    # A failed runtime check raises in both processes instead of leaving one
    # waiting at a collective (auto axes; see eqx_rbm.internal._checks.guarded_zero).
    with jax.set_mesh(meshes["auto"]):
        rows = NamedSharding(meshes["auto"], P("batch"))
        bad = np.where(np.arange(N_SAMPLES)[:, None] == 5, 0.0, spins)  # row 5: process 0 only
        x = jax.make_array_from_callback(spins.shape, rows, lambda index: bad[index])
        try:
            jax.block_until_ready(forward(models()["multival"], x))
        except Exception as err:
            assert "not one of local_states=(-1, 1)" in str(err), err
            results["error raised"] = True
    with open(outdir / f"process{process_id}.pkl", "wb") as f:
        pickle.dump(results, f)
    jax.distributed.shutdown()


# --------------------------------------------------------------------------- test


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(outdir: Path) -> list[subprocess.Popen]:
    env = dict(os.environ)
    env["JAX_PLATFORMS"] = "cpu"
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={LOCAL_DEVICES}"
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    port = _free_port()
    processes = []
    for i in range(N_PROCESSES):
        # Output goes to files: nothing blocks on a full pipe while we poll.
        with open(outdir / f"process{i}.log", "w") as log:
            processes.append(
                subprocess.Popen(
                    [sys.executable, __file__, "worker", str(port), str(i), str(outdir)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    return processes


def _wait(processes: list[subprocess.Popen], outdir: Path) -> None:
    """Waits for every process; as soon as one fails, or at the time-out, all are killed."""
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while True:
            codes = [p.poll() for p in processes]
            if all(c == 0 for c in codes) or any(c not in (None, 0) for c in codes):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    codes = [p.returncode for p in processes]
    logs = "\n".join(
        f"--- process {i}:\n{(outdir / f'process{i}.log').read_text()[-3000:]}" for i in range(len(codes))
    )
    # Negative codes are signals: -9 for the processes stopped here.
    assert codes == [0] * len(codes), f"exit codes {codes} (time-out {TIMEOUT_S} s)\n{logs}"


def test_two_processes_match_one(tmp_path: Path) -> None:
    start = time.perf_counter()
    _wait(_launch(tmp_path), tmp_path)
    wall = time.perf_counter() - start
    shards = {}
    for i in range(N_PROCESSES):
        with open(tmp_path / f"process{i}.pkl", "rb") as f:
            shards[i] = pickle.load(f)
    assert all(shards[i].get("error raised") for i in range(N_PROCESSES)), "a runtime check did not raise"
    spins = inputs()
    worst = 0.0
    for flavour in FLAVOURS:
        for kind, model in models().items():
            for name, fn in computations(kind).items():
                reference = [np.asarray(leaf) for leaf in jax.tree.leaves(fn(model, spins))]
                for i, ref in enumerate(reference):
                    covered = np.zeros(ref.shape, bool)
                    for process in range(N_PROCESSES):
                        for index, data in shards[process][flavour, kind, name, i]:
                            np.testing.assert_allclose(
                                data, ref[index], rtol=1e-12, atol=1e-12, err_msg=f"{flavour} {kind} {name}"
                            )
                            covered[index] = True
                            worst = max(worst, float(np.max(np.abs(data - ref[index]), initial=0.0)))
                    assert covered.all(), (flavour, kind, name, i)
    print(f"two processes: {wall:.1f} s wall, largest difference from one process {worst:.1e}")


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    worker(int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
