"""NetKet drop-in: train `eqx_rbm.linen.RBM` with NetKet, then continue in Equinox.

This example needs NetKet (and Flax, which NetKet installs); without them it prints what is
missing and exits successfully. It

1. trains `eqx_rbm.linen.RBM` (a `flax.linen.Module` twin of `netket.models.RBM`) on the transverse-field
   Ising chain with NetKet's own machinery: `MetropolisLocal` sampler, `MCState`, the `VMC` driver
   with stochastic reconfiguration, and compares with NetKet's Lanczos ground-state energy;
2. saves the trained variables with `flax.serialization.to_bytes`;
3. reads the file back with `flax.serialization.msgpack_restore`, turns the variables into an
   Equinox `eqx_rbm.RBM` with `eqx_rbm.linen.to_equinox`, and checks that it gives bit-for-bit
   the same log-amplitudes as the NetKet state (and as `netket.models.RBM` with the same
   variables), then computes its exact variational energy by summation;
4. saves the Equinox model back in NetKet's layout (`eqx_rbm.to_variables`, which needs no Flax),
   loads those bytes into a fresh NetKet `MCState`, and checks the round trip.

Expected result of the default run (L=12, h=1, alpha=1, 300 iterations): identical log-amplitudes
after each conversion and an exact variational energy within about 6e-5 (relative) of the ground state.

    python examples/netket_drop_in.py            # default run
    python examples/netket_drop_in.py --smoke    # under a minute, used in CI
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", "-L", type=int, default=12, help="number of spins (default 12)")
    parser.add_argument("--field", type=float, default=1.0, help="transverse field h (default 1)")
    parser.add_argument("--alpha", type=float, default=1, help="hidden-unit density (default 1)")
    parser.add_argument("--samples", type=int, default=1024, help="samples per iteration (default 1024)")
    parser.add_argument("--iterations", type=int, default=300, help="VMC iterations (default 300)")
    parser.add_argument("--lr", type=float, default=0.05, help="learning rate (default 0.05)")
    parser.add_argument("--diag-shift", type=float, default=0.01, help="SR diagonal shift (default 0.01)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="where to write the .msgpack files (default: a temporary directory)",
    )
    parser.add_argument(
        "--plot", type=Path, default=Path("netket_drop_in.png"), help="where to save the plot"
    )
    parser.add_argument("--no-plot", action="store_true", help="do not save a plot")
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI (L=6, 20 iterations)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.length, args.samples, args.iterations = 6, 256, 20
        args.plot = Path(tempfile.mkdtemp()) / "netket_drop_in.png"
    if args.out_dir is None:
        args.out_dir = Path(tempfile.mkdtemp())
    return args


def missing_dependencies() -> list[str]:
    return [name for name in ("netket", "flax") if importlib.util.find_spec(name) is None]


def exact_sum_energy(model, n_spins: int, field: float) -> float:
    """<psi|H|psi>/<psi|psi> of an Equinox model by summation over all 2^L configurations (pure JAX)."""
    bits = (np.arange(2**n_spins)[:, None] >> np.arange(n_spins)) & 1
    configs = jnp.asarray(1.0 - 2.0 * bits)
    flipped = jnp.asarray(np.arange(2**n_spins)[:, None] ^ (1 << np.arange(n_spins)))
    log_psi = model(configs)
    ising = -jnp.sum(configs * jnp.roll(configs, -1, axis=1), axis=1)
    local = ising - field * jnp.sum(jnp.exp(log_psi[flipped] - log_psi[:, None]), axis=1)
    return float(jnp.sum(jax.nn.softmax(2 * log_psi.real) * local).real)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = missing_dependencies()
    if missing:
        print(
            f"SKIPPED: this example needs NetKet and Flax; not installed: {', '.join(missing)} "
            "(python -m pip install netket). Nothing was run."
        )
        return 0

    import flax.serialization
    import netket as nk

    import eqx_rbm
    import eqx_rbm.linen

    start = time.perf_counter()
    n = args.length
    graph = nk.graph.Chain(n, pbc=True)
    hilbert = nk.hilbert.Spin(0.5, N=n)
    # NetKet's Ising is -h sum sx + J sum sz sz: J = -1 is the ferromagnetic chain of the other examples.
    hamiltonian = nk.operator.Ising(hilbert, graph, h=args.field, J=-1.0)
    exact = float(nk.exact.lanczos_ed(hamiltonian)[0])
    print(f"TFIM chain L={n} h={args.field} periodic: Lanczos ground energy {exact:.8f}")

    # 1. NetKet training with the Linen-style twin, exactly as with netket.models.RBM.
    twin = eqx_rbm.linen.RBM(alpha=args.alpha, param_dtype=jnp.float64)
    sampler = nk.sampler.MetropolisLocal(hilbert, n_chains=16)
    vstate = nk.vqs.MCState(sampler, twin, n_samples=args.samples, seed=args.seed, sampler_seed=args.seed + 1)
    driver = nk.driver.VMC(
        hamiltonian,
        nk.optimizer.Sgd(learning_rate=args.lr),
        variational_state=vstate,
        preconditioner=nk.optimizer.SR(diag_shift=args.diag_shift),
    )
    log = nk.logging.RuntimeLog()
    driver.run(n_iter=args.iterations, out=log, show_progress=True)
    energies = np.asarray(log.data["Energy"]["Mean"]).real
    vmc = vstate.expect(hamiltonian)
    print(f"NetKet VMC energy {vmc.mean.real:.6f} +- {vmc.error_of_mean:.6f}")

    # 2. Save the trained variables with Flax's serialization.
    args.out_dir.mkdir(parents=True, exist_ok=True)
    netket_file = args.out_dir / "rbm_netket.msgpack"
    netket_file.write_bytes(flax.serialization.to_bytes(vstate.variables))

    # 3. Load them into an Equinox model.
    restored = flax.serialization.msgpack_restore(netket_file.read_bytes())
    model = eqx_rbm.linen.to_equinox(twin, restored)
    assert isinstance(model, eqx_rbm.RBM)
    x = vstate.samples.reshape(-1, n)
    # Compiled programs are compared with compiled programs: eager, op-by-op evaluation may round
    # differently in the last bit.
    log_psi = eqx.filter_jit(lambda model, x: model(x))
    same = bool(jnp.all(log_psi(model, x) == vstate.log_value(x)))
    print(f"Equinox model from {netket_file.name}: {model.n_hidden} hidden units, log psi identical: {same}")
    reference = nk.models.RBM(alpha=args.alpha, param_dtype=jnp.float64)
    same_as_netket = bool(jnp.all(jax.jit(reference.apply)(restored, x) == log_psi(model, x)))
    print(f"netket.models.RBM with the same variables gives identical log psi: {same_as_netket}")
    if not (same and same_as_netket):
        raise AssertionError("the Equinox model disagrees with the NetKet state")
    energy = exact_sum_energy(model, n, args.field) if n <= 16 else float("nan")

    # 4. Save the Equinox model in NetKet's layout and load it into a fresh MCState.
    equinox_file = args.out_dir / "rbm_equinox.msgpack"
    equinox_file.write_bytes(flax.serialization.to_bytes(eqx_rbm.to_variables(model)))
    fresh = nk.vqs.MCState(sampler, twin, n_samples=args.samples, seed=args.seed + 7)
    fresh.variables = flax.serialization.from_bytes(fresh.variables, equinox_file.read_bytes())
    round_trip = bool(jnp.all(fresh.log_value(x) == log_psi(model, x)))
    print(f"NetKet state loaded from {equinox_file.name}: log psi identical: {round_trip}")
    if not round_trip:
        raise AssertionError("the round trip through to_variables changed the wave function")

    rel_err = abs(energy - exact) / abs(exact)
    print(f"files written to {args.out_dir}; {time.perf_counter() - start:.1f} s")
    if not args.no_plot:
        save_plot(args.plot, energies, exact, f"NetKet VMC with eqx_rbm.linen.RBM, L={n}")
    print(
        f"final energy {energy:.8f} exact {exact:.8f} relative error {rel_err:.3e} (exact sum, Equinox model)"
    )
    return 0


def save_plot(path: Path, energies: np.ndarray, exact: float, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    errors = np.maximum(np.abs(energies - exact) / abs(exact), 1e-16)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.semilogy(errors)
    ax.set_xlabel("iteration")
    ax.set_ylabel("relative energy error (Monte Carlo)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"plot saved to {path}")


if __name__ == "__main__":
    sys.exit(main())
