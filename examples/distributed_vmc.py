"""Variational Monte Carlo for the TFIM chain with the samples sharded over processes.

The problem and the phases of one iteration (Metropolis sampling with local updates, local
energies, stochastic reconfiguration) are those of `tfim_vmc.py`, imported from it unchanged.
What this script adds is JAX's distributed runtime:

- every process runs this same script; `jax.distributed.initialize` joins them, and the devices
  of all processes form one mesh with a single `batch` axis;
- the Markov chains are one global `(n_chains, L)` array sharded over that axis: each process
  creates and holds only its own rows (`jax.make_array_from_process_local_data`), so the
  sampling, the local energies and the per-sample log-derivatives run where the rows live;
- the parameters are replicated: batch means and the SR solve are reductions over the sharded
  samples, which XLA turns into collectives (gloo on CPU), so every process takes the same step.

    python examples/distributed_vmc.py                     # 2 local processes, L=16, checked
    python examples/distributed_vmc.py --processes 4       # 4 local processes
    python examples/distributed_vmc.py --smoke             # a few seconds, used in CI
    srun python examples/distributed_vmc.py --cluster      # one process per task, SLURM/Open MPI

With `--processes N` the script launches N copies of itself on this machine (loopback only),
each with `--local-devices` CPU devices; with `--cluster` it is one of the processes a cluster
launcher started and `jax.distributed.initialize()` reads the cluster's environment. Process 0
prints the energies and, except with `--smoke`, checks the final energy against the exact
free-fermion value.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import eqx_rbm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tfim_vmc import free_fermion_energy, local_energies, sample

jax.config.update("jax_enable_x64", True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2, help="local processes to launch (default 2)")
    parser.add_argument("--local-devices", type=int, default=1, help="CPU devices per process (default 1)")
    parser.add_argument("--cluster", action="store_true", help="started by a cluster launcher (SLURM, MPI)")
    parser.add_argument("--length", "-L", type=int, default=16, help="number of spins (default 16)")
    parser.add_argument("--field", type=float, default=1.0, help="transverse field h (default 1)")
    parser.add_argument("--alpha", type=float, default=1, help="hidden-unit density (default 1)")
    parser.add_argument("--samples", type=int, default=512, help="samples per iteration (default 512)")
    parser.add_argument("--chains", type=int, default=64, help="Markov chains, all processes (default 64)")
    parser.add_argument("--iterations", type=int, default=150, help="SR iterations (default 150)")
    parser.add_argument("--lr", type=float, default=0.05, help="SR step size (default 0.05)")
    parser.add_argument("--diag-shift", type=float, default=1e-3, help="SR diagonal shift (default 1e-3)")
    parser.add_argument(
        "--tolerance", type=float, default=1e-3, help="relative error to reach (default 1e-3)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI (L=8, 5 iterations)")
    # Set by the launcher for the processes it starts.
    parser.add_argument("--process-id", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--coordinator", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.length, args.samples, args.chains, args.iterations = 8, 64, 16, 5
    if args.samples % args.chains:
        parser.error("--samples must be a multiple of --chains")
    n_devices = args.processes * args.local_devices
    if not args.cluster and args.chains % n_devices:
        parser.error(
            f"--chains must be a multiple of the {n_devices} devices (--processes x --local-devices)"
        )
    return args


# --------------------------------------------------------------------------- launcher


def launch(args: argparse.Namespace, argv: list[str], timeout: float = 1800) -> int:
    """Starts `args.processes` copies of this script on localhost and waits for all of them."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    with contextlib.ExitStack() as stack:
        logs = [stack.enter_context(tempfile.TemporaryFile("w+")) for _ in range(args.processes)]
        return _run_children(args, argv, port, env, logs, timeout)


def _run_children(
    args: argparse.Namespace, argv: list[str], port: int, env: dict[str, str], logs: list, timeout: float
) -> int:
    """Runs the processes until all succeed, one fails (then stops the rest) or time runs out."""
    children = [
        subprocess.Popen(
            [sys.executable, __file__, *argv, "--process-id", str(i), "--coordinator", f"127.0.0.1:{port}"],
            env=env,
            # Process 0 reports; the others speak only when they fail.
            stdout=None if i == 0 else logs[i],
            stderr=None if i == 0 else subprocess.STDOUT,
        )
        for i in range(args.processes)
    ]
    deadline = time.monotonic() + timeout
    try:
        while True:
            codes = [child.poll() for child in children]
            failed = [i for i, code in enumerate(codes) if code not in (None, 0)]
            if failed or all(code == 0 for code in codes):
                break
            if time.monotonic() > deadline:
                print(f"no result after {timeout:.0f} s", file=sys.stderr)
                return 1
            time.sleep(0.2)
    finally:
        # A failed process leaves the others waiting in a collective: stop them.
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    for i in failed:
        print(f"process {i} exited with {codes[i]}", file=sys.stderr)
        if i > 0:  # process 0 wrote to this terminal already
            logs[i].seek(0)
            print(logs[i].read()[-5000:], file=sys.stderr)
    return 1 if failed else 0


# --------------------------------------------------------------------------- one process


def connect(args: argparse.Namespace) -> None:
    jax.config.update("jax_num_cpu_devices", args.local_devices)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if args.cluster:
        jax.distributed.initialize()  # SLURM, Open MPI, Kubernetes...: read from the environment
    else:
        jax.distributed.initialize(
            coordinator_address=args.coordinator,
            num_processes=args.processes,
            process_id=args.process_id,
            initialization_timeout=120,
        )


def run(args: argparse.Namespace) -> float:
    connect(args)
    rank, n_devices = jax.process_index(), jax.device_count()
    report = print if rank == 0 else (lambda *a, **k: None)
    if args.chains % n_devices:
        raise ValueError(f"--chains={args.chains} must be a multiple of the {n_devices} devices")
    # Auto axes: tfim_vmc's sampler draws its random numbers unsharded and flattens its
    # (sweeps, chains) history into one sample axis; the compiler decides how to split both,
    # where explicit axes would ask for the output sharding of that reshape.
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    rows = NamedSharding(mesh, P("batch"))
    exact = free_fermion_energy(args.length, args.field, 1.0)
    report(
        f"TFIM L={args.length} h={args.field}: {jax.process_count()} processes, {n_devices} devices, "
        f"exact energy {exact:.8f}"
    )

    # Same seed everywhere: identical replicated parameters and step keys in every process.
    key = jax.random.key(args.seed)
    k_model, k_chains, key = jax.random.split(key, 3)
    model = eqx_rbm.RBM(args.length, alpha=args.alpha, key=k_model)
    all_chains = np.asarray(jax.random.choice(k_chains, jnp.array([-1.0, 1.0]), (args.chains, args.length)))
    # This process's rows, as the mesh assigns them to its devices.
    mine = sorted(
        index[0].indices(args.chains)[:2]
        for index in rows.addressable_devices_indices_map(all_chains.shape).values()
    )
    local = all_chains[mine[0][0] : mine[-1][1]]

    optimiser = optax.sgd(args.lr)
    per_chain = args.samples // args.chains

    @eqx.filter_jit
    def step(model, opt_state, chains, key):
        chains, samples = sample(model, chains, key, per_chain, 4)
        e_loc = local_energies(model, samples, args.field, 1.0)
        direction = eqx_rbm.sr_gradient(model, samples, e_loc, diag_shift=args.diag_shift)
        updates, opt_state = optimiser.update(direction, opt_state)
        return eqx.apply_updates(model, updates), opt_state, chains, jnp.mean(e_loc).real

    with jax.set_mesh(mesh):
        chains = jax.make_array_from_process_local_data(rows, local, all_chains.shape)
        opt_state = optimiser.init(eqx.filter(model, eqx.is_inexact_array))
        start = time.perf_counter()
        energies = []
        for k in range(args.iterations):
            key, k_step = jax.random.split(key)
            model, opt_state, chains, energy = step(model, opt_state, chains, k_step)
            energies.append(float(energy))  # replicated: readable in every process
            if k % 25 == 0 or k == args.iterations - 1:
                report(f"iteration {k:4d}  energy {energies[-1]:.6f}")
        assert chains.sharding.is_equivalent_to(rows, 2), chains.sharding
        elapsed = time.perf_counter() - start

    final = float(np.mean(energies[-max(1, args.iterations // 5) :]))
    rel_err = abs(final - exact) / abs(exact)
    report(f"{args.iterations} SR iterations of {args.samples} samples in {elapsed:.1f} s")
    # The estimate: the mean training energy over the last fifth of the iterations.
    report(f"final energy {final:.6f} exact {exact:.6f} relative error {rel_err:.3e}")
    jax.distributed.shutdown()
    if not args.smoke and rel_err > args.tolerance:
        raise SystemExit(f"relative error {rel_err:.2e} above --tolerance={args.tolerance:.0e}")
    return rel_err


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.cluster or args.process_id is not None:
        run(args)
    else:
        sys.exit(launch(args, argv))


if __name__ == "__main__":
    main()
