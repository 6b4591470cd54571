"""Variational Monte Carlo for spin models on periodic chains and square lattices.

Models (conventions in examples/_physics.py; energies are reported per site):

- transverse-field Ising, H = -J1 sum_<ij> s^z s^z - J2 sum_<<ij>> s^z s^z - h sum_i s^x (Pauli
  matrices), sampled with single spin flips;
- Heisenberg, H = J1 sum_<ij> S.S + J2 sum_<<ij>> S.S with spin-1/2 operators (S.S units),
  sampled at zero magnetisation with exchange moves over the nearest-neighbour bonds. `--marshall`
  rotates the Hamiltonian by the Marshall sign rule (the exchange elements of bonds joining the
  two sublattices change sign), after which the unfrustrated ground state is positive and real
  parameters suffice; `--complex` gives complex128 parameters, log psi holomorphic in them.

<ij> and <<ij>> are nearest and next-nearest neighbours. The network is the dense `eqx_rbm.RBM`
(`--alpha`) or, with `--symmetric`, `eqx_rbm.RBMSymm` with its filters tied over the lattice
translations. Local energies come from `eqx_rbm.site_log_ratios` (Ising) and
`eqx_rbm.exchange_log_ratios` over all bonds (Heisenberg); stochastic reconfiguration from the
closed-form `eqx_rbm.jacobian` kernel, as in tfim_vmc.py, with the diagonal shift (and optionally
the step) decreasing geometrically over the first `--schedule-steps` iterations. The result is
printed next to an exact reference where one is known: free fermions for the TFIM chain, exact
diagonalisation up to 16 sites, the L=80 Heisenberg chain value of the issue, and quantum Monte
Carlo for the 10x10 Heisenberg lattice; for Heisenberg chains also the Bethe-ansatz value of the
infinite chain, 1/4 - ln 2 = -0.443147180560 per site.

Long runs: `--checkpoint PATH` saves the parameters, optimiser state, chains, random key, iteration
and energy history every `--checkpoint-every` iterations, at the end and on Ctrl-C or SIGTERM;
the same command with `--resume` continues the run bit for bit, as if it had never stopped.

Reproduction commands of the "Research scale" issue (results, times and hardware: docs/examples.md).
Carleo and Troyer's networks are translation-symmetric, as `--symmetric` is here; each command ran on
one core of a 2-core AMD EPYC, the 10x10 alpha=16 one on both.

    # TFIM chain L=80, h=1: relative error <= 1e-4 against free fermions, -1.273321360724 per site
    python examples/lattice_vmc.py --model ising --length 80 --field 1 --symmetric --alpha 2 \\
        --iterations 1000 --schedule-steps 800 --lr-final 0.01 --final-samples 131072 \\
        --checkpoint runs/tfim_chain80_symm2.npz
    # Heisenberg chain L=80: <= 2e-4 against -0.443275951872 per site
    python examples/lattice_vmc.py --model heisenberg --length 80 --marshall --symmetric --alpha 4 \\
        --iterations 1000 --schedule-steps 800 --lr-final 0.01 --final-samples 131072 \\
        --checkpoint runs/heisenberg_chain80_symm4.npz
    # Heisenberg 10x10, translation-symmetric RBM, alpha=16: <= 9.7e-4 (quantax's) against QMC,
    # -0.671549(4), in 30 minutes; 4096 samples per iteration from iteration 300
    python examples/lattice_vmc.py --model heisenberg --lattice square --length 10 --marshall \\
        --symmetric --alpha 16 --init-std 0.01 --lr 0.03 --lr-final 0.005 --samples 1024 \\
        --late-samples 4096 --late-from 300 --iterations 856 --schedule-steps 1100 \\
        --final-samples 65536 --checkpoint runs/heisenberg_square10_symm16.npz
    # the same with the dense RBM, alpha=1 (varbench's dense RBM alpha=1: relative error 1.06e-2);
    # its 10,200 parameters need more samples per iteration than the symmetric network's 1617
    python examples/lattice_vmc.py --model heisenberg --lattice square --length 10 --marshall \\
        --alpha 1 --samples 4096 --chains 512 --iterations 600 --schedule-steps 500 --lr-final 0.01 \\
        --final-samples 65536 --checkpoint runs/heisenberg_square10_dense1.npz
    # the dense RBM, alpha=1, started from a translation-symmetric RBM with alpha=1 (1 minute),
    # its filters unrolled into the dense kernel (--init-from)
    python examples/lattice_vmc.py --model heisenberg --lattice square --length 10 --marshall \\
        --symmetric --alpha 1 --init-std 0.01 --lr 0.03 --iterations 300 --schedule-steps 300 \\
        --lr-final 0.01 --final-samples 65536 --checkpoint runs/heisenberg_square10_symm1.npz
    python examples/lattice_vmc.py --model heisenberg --lattice square --length 10 --marshall \\
        --alpha 1 --init-from runs/heisenberg_square10_symm1.npz --samples 4096 --chains 512 \\
        --lr 0.003 --iterations 200 --schedule-steps 200 --diag-shift 1e-2 --diag-shift-final 1e-3 \\
        --final-samples 65536 --checkpoint runs/heisenberg_square10_dense1_from_symm1.npz

    python examples/lattice_vmc.py --smoke    # a few seconds, used in CI
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import eqx_rbm

# The examples are scripts, not a package: their shared helpers sit next to them.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _physics import BETHE_ANSATZ_PER_SITE, Hamiltonian, Lattice, build_hamiltonian, reference_energy
from _vmc import (
    CheckpointError,
    DivergenceError,
    Run,
    differences,
    load_checkpoint,
    load_run,
    restore_tree,
    save_plot,
    save_run,
    train,
)

jax.config.update("jax_enable_x64", True)

SMOKE = {
    "alpha": 1,
    "samples": 256,
    "chains": 32,
    "iterations": 20,
    "schedule_steps": 20,
    "final_samples": 1024,
}
"""--smoke changes these defaults (and the lattice to L=8 or 4x4); flags given explicitly still win."""
SYSTEM = ("model", "lattice", "length", "field", "j1", "j2", "marshall")
"""The arguments that define the Hamiltonian and its lattice."""
RUN_DEFINING = (
    *SYSTEM,
    *("alpha", "symmetric", "complex", "init_std", "init_from"),
    *("samples", "chains", "burn_in", "lr", "lr_final", "diag_shift", "diag_shift_final", "schedule_steps"),
    *("seed", "late_samples", "late_from"),
)
"""The arguments a resumed run must share with its checkpoint; the others (--iterations, ...) may change."""
INIT_FROM_SHARED = (*SYSTEM, "alpha", "complex")
"""What a --init-from checkpoint's run must share with the dense run it starts."""
POSITIVE = (
    *("alpha", "samples", "chains", "final_samples", "schedule_steps", "checkpoint_every"),
    *("lr", "lr_final", "diag_shift", "diag_shift_final"),
)
LENGTH = {"chain": 40, "square": 10}
"""The default --length of each lattice."""
CHUNK_ELEMENTS = 2**24
"""Local energies are evaluated in chunks of at most this many activations (samples x terms x hidden)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        description=__doc__[: __doc__.index("Reproduction commands")],
        epilog=__doc__[__doc__.index("Reproduction commands") :],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    add = parser.add_argument_group("system").add_argument
    add("--model", choices=("ising", "heisenberg"), default="ising", help="the Hamiltonian (default ising)")
    add("--lattice", choices=("chain", "square"), default="chain", help="periodic chain or L x L square")
    add("--length", "-L", type=int, help="chain length or square side (default 40 chain, 10 square)")
    add("--field", type=float, help="transverse field h, Ising only (default 1)")
    add("--j1", type=float, default=1.0, help="nearest-neighbour coupling J1 (default 1)")
    add("--j2", type=float, default=0.0, help="next-nearest-neighbour coupling J2 (default 0)")
    add("--marshall", action="store_true", help="Heisenberg: Marshall-sign-rotated Hamiltonian (even L)")
    add = parser.add_argument_group("network").add_argument
    add("--alpha", type=float, default=2.0, help="hidden-unit (feature) density (default 2)")
    add("--symmetric", action="store_true", help="eqx_rbm.RBMSymm over the lattice translations")
    add("--complex", action="store_true", help="complex128 parameters (holomorphic log psi)")
    add(
        "--init-std",
        type=float,
        help="standard deviation of the normal initial parameters (default: the network's, as "
        "NetKet's: 0.01 for RBM, 0.1 for RBMSymm)",
    )
    add(
        "--init-from",
        type=Path,
        help="dense network only: start from the wave function of a --symmetric run's checkpoint "
        "(same system, --alpha and dtype), its tied filters unrolled into the dense kernel",
    )
    add = parser.add_argument_group("sampling and optimisation").add_argument
    add("--samples", type=int, default=1024, help="samples per iteration (default 1024)")
    add("--late-samples", type=int, help="samples per iteration from --late-from on (default: --samples)")
    add("--late-from", type=int, help="the iteration from which --late-samples apply (default: never)")
    add("--chains", type=int, default=128, help="Markov chains (default 128)")
    add("--burn-in", type=int, default=4, help="sweeps discarded per iteration (default 4)")
    add(
        "--iterations", type=int, default=300, help="total SR iterations, resumed ones included (default 300)"
    )
    add("--lr", type=float, default=0.05, help="SR step size (default 0.05)")
    add("--lr-final", type=float, help="step size after --schedule-steps (default: --lr, constant)")
    add("--diag-shift", type=float, default=1e-2, help="initial SR diagonal shift (default 1e-2)")
    add("--diag-shift-final", type=float, default=1e-4, help="SR shift after --schedule-steps (default 1e-4)")
    add("--schedule-steps", type=int, default=300, help="iterations of geometric decay (default 300)")
    add("--final-samples", type=int, default=16384, help="samples of the final estimate (default 16384)")
    add("--seed", type=int, default=0, help="random seed (default 0)")
    add = parser.add_argument_group("long runs and output").add_argument
    add("--checkpoint", type=Path, help="checkpoint file (.npz), written atomically")
    add("--checkpoint-every", type=int, default=10, help="iterations between checkpoints (default 10)")
    add("--resume", action="store_true", help="continue the run saved in --checkpoint")
    add("--plot", type=Path, help="where to save the convergence plot (default lattice_vmc.png)")
    add("--no-plot", action="store_true", help="do not save a plot")
    add("--smoke", action="store_true", help="tiny run for CI: L=8 chain or 4x4, alpha 1, 20 iterations")
    if "--smoke" in argv:
        parser.set_defaults(**SMOKE)
    args = parser.parse_args(argv)
    if args.length is None:
        args.length = {"chain": 8, "square": 4}[args.lattice] if args.smoke else LENGTH[args.lattice]
    if args.plot is None:
        args.plot = Path(tempfile.mkdtemp() if args.smoke else ".") / "lattice_vmc.png"
    if args.field is not None and args.model != "ising":
        parser.error(f"--field: the transverse field is a term of the Ising model, got --model {args.model}")
    args.field = 1.0 if args.field is None and args.model == "ising" else args.field
    args.lr_final = args.lr if args.lr_final is None else args.lr_final
    for name in POSITIVE:
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')}: expected a positive value, got {getattr(args, name)}")
    if args.init_from is not None and (args.symmetric or args.init_std is not None):
        parser.error(
            "--init-from: starts a dense network (without --symmetric) from a checkpoint; "
            f"got --symmetric {args.symmetric}, --init-std {args.init_std}"
        )
    if args.init_std is not None and not args.init_std > 0:
        parser.error(f"--init-std: expected a positive value, got {args.init_std}")
    if args.burn_in < 0 or args.iterations < 0:
        parser.error(f"--burn-in, --iterations: expected values >= 0, got {args.burn_in}, {args.iterations}")
    if args.length < 2:
        parser.error(f"--length: expected at least 2 sites per side, got {args.length}")
    if args.samples % args.chains or args.final_samples % args.chains:
        parser.error(f"--samples and --final-samples: expected multiples of --chains={args.chains}")
    if (args.late_samples is None) != (args.late_from is None):
        parser.error(
            "--late-samples and --late-from: give both (the samples, and the iteration they start at), "
            f"got --late-samples {args.late_samples} and --late-from {args.late_from}"
        )
    if args.late_samples is not None and (args.late_samples <= 0 or args.late_samples % args.chains):
        parser.error(
            f"--late-samples: expected a positive multiple of --chains={args.chains}, got {args.late_samples}"
        )
    if args.late_from is not None and args.late_from < 0:
        parser.error(f"--late-from: expected an iteration >= 0, got {args.late_from}")
    if args.resume and args.checkpoint is None:
        parser.error("--resume: expected --checkpoint PATH, the checkpoint to continue from")
    try:
        system(args)
    except ValueError as err:
        parser.error(str(err))
    return args


def system(args: argparse.Namespace) -> tuple[Lattice, Hamiltonian]:
    lattice = Lattice(args.length, 1 if args.lattice == "chain" else 2)
    if args.model == "heisenberg" and lattice.n_sites % 2:
        raise ValueError(
            f"--length: Heisenberg runs at zero magnetisation, an even number of sites; got {lattice.n_sites}"
        )
    options = {"j1": args.j1, "j2": args.j2, "field": args.field or 0.0, "marshall": args.marshall}
    return lattice, build_hamiltonian(args.model, lattice, **options)


# --------------------------------------------------------------------------- model, sampling, local energies


def build_model(args: argparse.Namespace, lattice: Lattice, key: jax.Array) -> eqx_rbm.AbstractRBM:
    dtype = jnp.complex128 if args.complex else jnp.float64
    alpha = int(args.alpha) if float(args.alpha).is_integer() else args.alpha
    inits = {}
    if args.init_std is not None:
        # RBMSymm's default, 0.1, sums over many tied filters: on a 10x10 lattice with alpha=16 the
        # amplitudes of neighbouring configurations start e^30 apart and the first SR steps diverge.
        init = jax.nn.initializers.normal(args.init_std, dtype)
        inits = {"kernel_init": init, "hidden_bias_init": init, "visible_bias_init": init}
    if args.symmetric:
        return eqx_rbm.RBMSymm(lattice.translations(), alpha=alpha, param_dtype=dtype, key=key, **inits)
    return eqx_rbm.RBM(lattice.n_sites, alpha=alpha, param_dtype=dtype, key=key, **inits)


def unrolled(args: argparse.Namespace, lattice: Lattice) -> eqx_rbm.RBM:
    """The dense RBM whose log psi is that of the symmetric network in the --init-from checkpoint.

    A translation-symmetric RBM with `alpha` filters is a dense RBM with `alpha * N` hidden units
    whose weights are tied: its dense view (`.dense()`) has the dense network's shapes, so the two
    give the same wave function, and the dense run starts where the symmetric run ended.
    """
    path = args.init_from
    arrays, meta = load_checkpoint(path)
    saved = meta.get("run", {})
    wanted = {name: getattr(args, name) for name in INIT_FROM_SHARED} | {"symmetric": True}
    if lines := differences({name: saved.get(name) for name in wanted}, wanted):
        raise CheckpointError(
            f"--init-from {path}: give the checkpoint of a --symmetric run of this system, --alpha and "
            f"dtype; {lines}"
        )
    template = build_model(argparse.Namespace(**{**vars(args), **saved}), lattice, jax.random.key(0))
    dense = restore_tree(template, arrays, "model", path).dense()
    return eqx_rbm.RBM.from_arrays(dense.kernel, dense.hidden_bias, dense.visible_bias)


def initial_chains(ham: Hamiltonian, n_chains: int, key: jax.Array) -> jax.Array:
    if ham.moves is None:
        return jax.random.choice(key, jnp.array([-1.0, 1.0]), (n_chains, ham.n_sites))
    # Exchange moves keep the magnetisation, so the chains start where they must stay: at zero.
    balanced = jnp.repeat(jnp.array([1.0, -1.0]), ham.n_sites // 2)
    return jax.vmap(lambda k: jax.random.permutation(k, balanced))(jax.random.split(key, n_chains))


def sample(model, chains, key, ham: Hamiltonian, n_per_chain: int, burn_in: int):
    """New chains, samples (n_per_chain * n_chains, N) with the chain index fastest, and the acceptance."""
    state = eqx_rbm.local_state(model, chains)  # the parameters changed: rebuild the cache
    pairs = None if ham.moves is None else np.asarray(ham.moves)
    history, state, acceptance = eqx_rbm.metropolis(
        model, state, key, n_sweeps=burn_in + n_per_chain, pairs=pairs
    )
    return state.x, history[burn_in:].reshape(-1, ham.n_sites), jnp.mean(acceptance)


def local_energies(model, samples, ham: Hamiltonian) -> jax.Array:
    """E_loc(x) = <x|H|psi> / <x|psi> for samples of shape (*batch, N); complex for complex parameters."""
    state = eqx_rbm.local_state(model, samples)
    bonds = np.asarray(ham.bonds)
    couplings = jnp.asarray(ham.couplings)
    zz = samples[..., bonds[:, 0]] * samples[..., bonds[:, 1]]
    if ham.model == "ising":
        flips = eqx_rbm.site_log_ratios(model, state, -samples)
        return -(zz @ couplings) - ham.field * jnp.sum(jnp.exp(flips), axis=-1)
    ratios = eqx_rbm.exchange_log_ratios(model, state, bonds)
    # 1/2 (S+S- + S-S+) swaps an anti-aligned pair with element 1/2 and removes an aligned one:
    # (1 - x_i x_j) / 4 is that element. An aligned pair's log-ratio is exactly 0, so exp is finite.
    exchange = (1 - zz) / 4 * jnp.exp(ratios)
    return (zz / 4) @ couplings + exchange @ (couplings * jnp.asarray(ham.signs))


def chunked_local_energies(model, samples, ham: Hamiltonian, budget: int = CHUNK_ELEMENTS) -> jax.Array:
    """`local_energies` of (n, N) samples, in chunks that bound the (chunk, terms, n_hidden) log-ratios."""
    terms = ham.n_sites if ham.model == "ising" else len(ham.bonds)
    n = samples.shape[0]
    n_chunks = -(-n * terms * model.n_hidden // budget)
    if n_chunks <= 1:
        return local_energies(model, samples, ham)
    # Each chunk one batched call, not lax.map's batch_size (a vmap of one sample per call, for which
    # the library cannot see the batch); the last chunk padded with copies of the first sample.
    chunk = -(-n // n_chunks)
    padded = jnp.concatenate([samples, jnp.broadcast_to(samples[:1], (n_chunks * chunk - n, ham.n_sites))])
    chunks = padded.reshape(n_chunks, chunk, ham.n_sites)
    return jax.lax.map(lambda x: local_energies(model, x, ham), chunks).reshape(-1)[:n]


# --------------------------------------------------------------------------- one SR iteration


def geometric(start: float, end: float, k: Any, steps: int) -> Any:
    """From `start` at iteration 0 to `end` at `steps`, geometrically, then constant.

    Not tied to --iterations, so that a run resumed with more iterations follows the same schedule.
    """
    return start * (end / start) ** (jnp.minimum(k, steps) / steps)


@functools.cache
def sr_optimiser(lr: float, lr_final: float, steps: int) -> optax.GradientTransformation:
    # Cached: the same optimiser object for the same settings lets `update` reuse its compiled program.
    return optax.sgd(lambda count: geometric(lr, lr_final, count, steps))


@eqx.filter_jit
def measure(model, chains, key, ham: Hamiltonian, per_chain: int, burn_in: int):
    chains, samples, acceptance = sample(model, chains, key, ham, per_chain, burn_in)
    e_loc = chunked_local_energies(model, samples, ham)
    return chains, samples, e_loc, (jnp.mean(e_loc).real / ham.n_sites, jnp.var(e_loc), acceptance)


@eqx.filter_jit
def update(optimiser, model, opt_state, direction):
    updates, opt_state = optimiser.update(direction, opt_state)
    return eqx.apply_updates(model, updates), opt_state


def step(run: Run, args: argparse.Namespace, ham: Hamiltonian) -> tuple[Run, tuple]:
    """One VMC iteration: sampling and local energies, the SR direction, the optimiser update."""
    key, k_step = jax.random.split(run.key)
    chains, samples, e_loc, stats = measure(
        run.model, run.chains, k_step, ham, samples_at(args, run.iteration) // args.chains, args.burn_in
    )
    shift = float(geometric(args.diag_shift, args.diag_shift_final, run.iteration, args.schedule_steps))
    direction = eqx_rbm.sr_gradient(run.model, samples, e_loc, diag_shift=shift)
    optimiser = sr_optimiser(args.lr, args.lr_final, args.schedule_steps)
    model, opt_state = update(optimiser, run.model, run.opt_state, direction)
    return Run(model, opt_state, chains, key, run.iteration + 1), stats


# The final estimate's programs, compiled once per process (tests run `main` several times).
final_sample = eqx.filter_jit(sample)
final_energies = eqx.filter_jit(chunked_local_energies)


def samples_at(args: argparse.Namespace, iteration: int) -> int:
    """Samples of an iteration (counted from 0): --late-samples from --late-from on, else --samples."""
    late = args.late_from is not None and iteration >= args.late_from
    return args.late_samples if late else args.samples


def defining(args: argparse.Namespace) -> dict[str, Any]:
    """The arguments a checkpoint's run is identified by (see RUN_DEFINING)."""
    values = {name: getattr(args, name) for name in RUN_DEFINING}
    return {name: str(v) if isinstance(v, Path) else v for name, v in values.items()}


# --------------------------------------------------------------------------- the run


class Result(NamedTuple):
    model: Any
    energies: list[float]
    energy: float
    error: float
    exact: float | None
    relative_error: float | None


def main(argv: list[str] | None = None) -> Result:
    args = parse_args(argv)
    start = time.perf_counter()
    lattice, ham = system(args)
    reference = reference_energy(ham, lattice)
    shape = f"L={args.length}" if lattice.dimension == 1 else f"{args.length}x{args.length}"
    terms = f"J1={args.j1} J2={args.j2}" + (f" h={args.field}" if ham.model == "ising" else "")
    print(
        f"{args.model} {args.lattice} {shape} periodic, {terms}"
        + (", Marshall sign" if args.marshall else "")
    )
    if reference is not None:
        print(f"exact energy per site {reference[0]:.12f} ({reference[1]})")
    if ham.model == "heisenberg" and lattice.dimension == 1:
        print(f"Bethe ansatz, infinite chain: {BETHE_ANSATZ_PER_SITE:.12f} per site")

    k_model, k_chains, key = jax.random.split(jax.random.key(args.seed), 3)
    # A resumed run takes its parameters from its own checkpoint: the --init-from file is not read.
    start_from = args.init_from is not None and not args.resume
    model = unrolled(args, lattice) if start_from else build_model(args, lattice, k_model)
    optimiser = sr_optimiser(args.lr, args.lr_final, args.schedule_steps)
    opt_state = optimiser.init(eqx.filter(model, eqx.is_inexact_array))
    run = Run(model, opt_state, initial_chains(ham, args.chains, k_chains), key, 0)
    energies: list[float] = []
    variances: list[float] = []
    arguments = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    meta = {"run": defining(args), "arguments": arguments}
    if args.resume:
        run, energies, variances = load_run(args.checkpoint, run, defining(args), args.iterations)
        print(f"resumed from {args.checkpoint} at iteration {run.iteration}")
    elif args.checkpoint is not None:
        if args.checkpoint.exists():
            raise CheckpointError(
                f"checkpoint {args.checkpoint} exists: add --resume to continue its run, "
                "or choose another path"
            )
        save_run(args.checkpoint, run, energies, variances, meta)  # fails now, not hours later, if unwritable
    n_params = sum(leaf.size for leaf in jax.tree.leaves(eqx.filter(run.model, eqx.is_inexact_array)))
    print(f"{type(run.model).__name__} alpha={args.alpha:g}, {n_params} parameters, {run.model.param_dtype}")

    run = train(
        run,
        lambda run: step(run, args, ham),
        energies,
        variances,
        iterations=args.iterations,
        checkpoint=args.checkpoint,
        every=args.checkpoint_every,
        meta=meta,
        remedy="a smaller --init-std (e.g. 0.01) or --lr",
    )

    # Final estimate: a larger sample from thermalised chains; error bar from the per-chain means.
    _, k_final = jax.random.split(run.key)
    n_final = args.final_samples // args.chains
    _, samples, _ = final_sample(run.model, run.chains, k_final, ham, n_final, 4 * args.burn_in)
    e_loc = np.concatenate(
        [np.asarray(final_energies(run.model, s, ham)) for s in jnp.split(samples, n_final)]
    )
    variance = float(np.var(e_loc))
    per_site = e_loc.real / ham.n_sites  # the energy is the real part; the imaginary parts average to zero
    final = float(per_site.mean())
    error = float(per_site.reshape(n_final, args.chains).mean(axis=0).std() / np.sqrt(args.chains))
    exact = None if reference is None else reference[0]
    rel_err = None if exact is None else abs(final - exact) / abs(exact)
    late = "" if args.late_from is None else f" ({args.late_samples} from iteration {args.late_from})"
    print(
        f"{run.iteration} SR iterations of {args.samples} samples{late}, {time.perf_counter() - start:.1f} s"
    )
    if not args.no_plot:
        save_plot(args.plot, energies, exact, f"VMC {args.model} {args.lattice} {shape}, per site")
    if exact is None:
        print(
            f"final energy per site {final:.8f} +- {error:.8f} (no exact reference) variance {variance:.3e}"
        )
    else:
        print(
            f"final energy per site {final:.8f} +- {error:.8f} exact {exact:.8f} "
            f"relative error {rel_err:.3e} variance {variance:.3e}"
        )
    return Result(run.model, energies, final, error, exact, rel_err)


if __name__ == "__main__":
    try:
        main()
    except (CheckpointError, DivergenceError) as err:
        sys.exit(f"error: {err}")
