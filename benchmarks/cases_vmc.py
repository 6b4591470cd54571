"""End-to-end case: one variational Monte Carlo iteration, eqx_rbm's example against NetKet.

The problem is the periodic transverse-field Ising chain of `examples/tfim_vmc.py`:
H = -J sum_i s^z_i s^z_(i+1) - h sum_i s^x_i, an RBM, samples from single-spin-flip Metropolis
chains (one sweep of L proposals per sample, some sweeps discarded), and a stochastic
reconfiguration (SR) step with a fixed diagonal shift applied by `optax.sgd`.

eqx_rbm's side is the example's own step (`make_step`, jitted programs) and its phases (`sample`,
`local_energies`, `sr_direction`), imported from the script. NetKet's side is an `MCState`
with `MetropolisLocal`, `IsingJax`, and `nk.driver.VMC_SR` (NetKet's driver for SR solved
exactly, by Cholesky, here in its kernel form since there are fewer samples than parameters);
`nk.driver.VMC` with the `nk.optimizer.SR` preconditioner is timed alongside. NetKet's
phases are `MCState.sample`, `MCState.local_estimators` and the SR solve that `VMC_SR` calls
(the kernel form computed without storing the Jacobian, its automatic choice here).
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from .common import DTYPES, EQX, NETKET, Result, netket
from .timing import Candidate, Settings, timed

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tfim_vmc.py"


def load_example() -> ModuleType:
    """`examples/tfim_vmc.py` as a module (the examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("tfim_vmc", EXAMPLE)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"cannot load the VMC example: expected it at {EXAMPLE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ours(
    dtype_name: str, length: int, alpha: int, n_samples: int, n_chains: int, burn_in: int, shift: float
) -> dict[str, Candidate]:
    import optax

    example = load_example()
    field, coupling = 1.0, 1.0
    per_chain = n_samples // n_chains
    k_model, k_chains, k_step = jax.random.split(jax.random.key(0), 3)
    model, chains = example.initial_state(
        length, alpha, n_chains, k_model, k_chains, complex_params=dtype_name.startswith("complex")
    )
    optimiser = optax.sgd(0.05)
    opt_state = optimiser.init(eqx.filter(model, eqx.is_inexact_array))
    step = example.make_step(optimiser, per_chain=per_chain, burn_in=burn_in, field=field, coupling=coupling)
    sample = jax.jit(lambda m, c, k: example.sample(m, c, k, per_chain, burn_in)[1])
    local = jax.jit(lambda m, s: example.local_energies(m, s, field, coupling))
    samples = sample(model, chains, k_step)
    e_loc = local(model, samples)
    return {
        EQX: Candidate(step, (model, opt_state, chains, k_step, jnp.asarray(shift))),
        "eqx_rbm sample": Candidate(sample, (model, chains, k_step)),
        "eqx_rbm local energies": Candidate(local, (model, samples)),
        # Already compiled as the example runs it; another jax.jit would merge its programs.
        "eqx_rbm SR": Candidate(example.sr_direction, (model, samples, e_loc, jnp.asarray(shift))),
    }


def _netket_state(nk: Any, dtype: Any, length: int, alpha: int, n_samples: int, n_chains: int, burn_in: int):
    hilbert = nk.hilbert.Spin(0.5, N=length)
    # NetKet's Ising is H = -h sum s^x + J sum s^z s^z: J = -1 is the ferromagnetic chain above.
    hamiltonian = nk.operator.IsingJax(hilbert, nk.graph.Chain(length, pbc=True), h=1.0, J=-1.0)
    sampler = nk.sampler.MetropolisLocal(hilbert, n_chains=n_chains)
    state = nk.vqs.MCState(
        sampler,
        nk.models.RBM(alpha=alpha, param_dtype=dtype),
        n_samples=n_samples,
        n_discard_per_chain=burn_in,
        seed=0,
        sampler_seed=1,
    )
    return hamiltonian, state


def _theirs(
    dtype_name: str, length: int, alpha: int, n_samples: int, n_chains: int, burn_in: int, shift: float
) -> dict[str, Candidate]:
    import optax
    from netket._src.ngd.sr_srt_common import get_samples_and_pdf, sr, srt
    from netket._src.ngd.srt_onthefly import srt_onthefly

    nk = netket()
    dtype = DTYPES[dtype_name]
    hamiltonian, state = _netket_state(nk, dtype, length, alpha, n_samples, n_chains, burn_in)
    driver = nk.driver.VMC_SR(hamiltonian, optax.sgd(0.05), diag_shift=shift, variational_state=state)
    hamiltonian_sr, state_sr = _netket_state(nk, dtype, length, alpha, n_samples, n_chains, burn_in)
    preconditioner = nk.optimizer.SR(diag_shift=shift, holomorphic=dtype_name.startswith("complex") or None)
    with warnings.catch_warnings():
        # NetKet recommends VMC_SR here, which is the main candidate; this one is for comparison.
        warnings.simplefilter("ignore")
        driver_sr = nk.driver.VMC(
            hamiltonian_sr, optax.sgd(0.05), variational_state=state_sr, preconditioner=preconditioner
        )

    def iteration(driver=driver):
        # The body of `driver.run`'s loop, without its logging and callbacks.
        driver.reset_step()
        _, update = driver.compute_loss_and_update()
        driver.update_parameters(update)
        return driver.state.parameters

    state.sample()
    e_loc = state.local_estimators(hamiltonian)
    # The solver VMC_SR picked (it prints its choice): kernel or not, on the fly or not.
    solve = (srt_onthefly if driver.on_the_fly else srt) if driver.use_ntk else sr

    def sr_solve():
        samples, weights = get_samples_and_pdf(state)
        return solve(
            state._apply_fun,
            e_loc,
            state.parameters,
            state.model_state,
            samples,
            diag_shift=shift,
            solver_fn=driver._linear_solver,
            mode=driver.mode,
            chunk_size=driver.chunk_size_bwd,
            weights=weights,
        )[0]

    return {
        NETKET: Candidate(iteration, ()),
        "netket VMC+SR": Candidate(lambda: iteration(driver_sr), ()),
        "netket sample": Candidate(state.sample, ()),
        "netket local energies": Candidate(lambda: state.local_estimators(hamiltonian), ()),
        "netket SR": Candidate(sr_solve, ()),
    }


def vmc_cases(
    dtypes: list[str],
    s: Settings,
    *,
    length: int = 40,
    alpha: int = 2,
    n_samples: int = 1024,
    n_chains: int = 128,
    burn_in: int = 4,
    shift: float = 1e-2,
) -> Iterator[Result]:
    for dtype_name in dtypes:
        shape = (dtype_name, length, alpha, n_samples, n_chains, burn_in, shift)
        medians, rounds = timed(s, {**_ours(*shape), **_theirs(*shape)})
        derived = {"netket VMC+SR/eqx_rbm": medians["netket VMC+SR"] / medians[EQX]}
        for phase in ("sample", "local energies", "SR"):
            derived[f"{phase} netket/eqx_rbm"] = medians[f"netket {phase}"] / medians[f"eqx_rbm {phase}"]
        yield Result(
            "VMC iteration",
            f"{dtype_name} TFIM L={length} alpha={alpha} samples={n_samples} chains={n_chains}",
            {"dtype": dtype_name, "N": length, "alpha": alpha, "batch": n_samples, "chains": n_chains},
            medians,
            rounds,
            notes=f"one sweep per sample, {burn_in} discarded sweeps, SR diag_shift={shift}; "
            "eqx_rbm: examples/tfim_vmc.py's step; netket: VMC_SR's step "
            "(reset, loss and update, parameter update); phases timed separately",
            derived=derived,
        )
