"""Research-scale VMC iterations of benchmarks/vmc.py, each library in a process of its own (see the
notes below), so that a run past the memory or time limit is recorded as such instead of taking the
machine with it. `python -m benchmarks.scale '{"side": "eqx_rbm", "dtype": "float64", "length": 10, ...}'`
runs one side and prints its medians as JSON."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .timing import Candidate, measures, time_alternating

ROOT = Path(__file__).resolve().parents[1]  # where `python -m benchmarks.scale` finds this package
MEMORY_LIMIT = 14 * 2**30  # resident bytes past which a side is stopped (the machine has 24 GiB)
TIME_LIMIT = 900.0  # seconds a side may take, compiling and every round included
BUDGET = 20.0  # seconds of timed rounds per side after the first `repeats`, at most 20 rounds in all


def torus_bonds(length: int) -> np.ndarray:
    """The 2 N nearest-neighbour bonds of a periodic length x length square lattice."""
    site = np.arange(length * length).reshape(length, length)
    right, down = np.roll(site, -1, axis=1), np.roll(site, -1, axis=0)
    return np.concatenate([np.stack([site, right], -1), np.stack([site, down], -1)]).reshape(-1, 2)


def n_parameters(length: int, alpha: int) -> int:
    n = length * length
    return n * alpha * n + alpha * n + n


def run_side(side: str, dtype: str, length: int, alpha: int, samples: int, chains: int, repeats: int):
    """Median seconds of an iteration and its phases on one side, and the process's peak memory."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    from . import vmc

    if side == "eqx_rbm":  # NetKet not even imported: the peak is eqx_rbm's own
        candidates = vmc.ours(dtype, alpha, samples, chains, torus_bonds(length))
    else:
        import netket as nk

        hamiltonian = vmc.tfim(nk.graph.Square(length, pbc=True))
        model = nk.models.RBM(alpha=alpha, param_dtype=jnp.dtype(dtype))
        sampler = nk.sampler.MetropolisLocal(hamiltonian.hilbert, n_chains=chains)
        driver = vmc.netket_driver(hamiltonian, model, sampler, samples)
        candidates = {
            "netket": Candidate(vmc.iteration, (driver,)),
            "netket sample": Candidate(driver.state.sample),
        }
    # At most 20 rounds; one round (--smoke) says whether it runs.
    medians = time_alternating(candidates, repeats, BUDGET if repeats > 1 else 0.0, max_rounds=20)[0]
    # VmHWM, not getrusage's ru_maxrss: that one starts from the peak of the process that forked this one.
    return medians | {f"{side} peak": float(_memory("self", "VmHWM"))}


def _memory(pid: int | str, field: str = "VmRSS") -> int:
    """A memory figure of /proc/<pid>/status in bytes; 0 once the process is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith(field)), 0)


def _side(params: dict) -> dict[str, float | str]:
    """One side in a child process, stopped past the memory or time limit."""
    command = [sys.executable, "-m", "benchmarks.scale", json.dumps(params)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    start, peak, side = time.perf_counter(), 0, params["side"]
    while child.poll() is None:
        peak = max(peak, _memory(child.pid))
        if peak > MEMORY_LIMIT or time.perf_counter() - start > TIME_LIMIT:
            child.kill()
            child.wait()
            why = "out of memory" if peak > MEMORY_LIMIT else "past the time limit"
            limit = f"{MEMORY_LIMIT / 2**30:.0f} GiB" if peak > MEMORY_LIMIT else f"{TIME_LIMIT:.0f} s"
            return {f"{side} status": f"{why} (stopped at {peak / 2**30:.1f} GiB, {limit} limit)"}
        time.sleep(0.1)
    out, err = child.communicate()
    if child.returncode != 0:
        last = (err.strip().splitlines() or ["no output"])[-1]
        return {f"{side} status": f"failed with exit status {child.returncode}: {last[:200]}"}
    return json.loads(out.strip().splitlines()[-1])


@measures(
    "VMC at scale",
    ratios=("netket sample/eqx_rbm sample", "netket peak/eqx_rbm peak"),
    notes="TFIM on a periodic length x length square lattice, h=1, as the VMC iteration rows; each "
    "library in a process of its own, one after the other (benchmarks/scale.py): peak is the process's "
    f"maximum resident memory, its imports included; a side past {MEMORY_LIMIT / 2**30:.0f} GiB or "
    f"{TIME_LIMIT:.0f} s is stopped and recorded so",
)
def scale(**params: str | int) -> dict[str, float | str]:
    return _side({"side": "eqx_rbm", **params}) | _side({"side": "netket", **params})


if __name__ == "__main__":
    print(json.dumps(run_side(**json.loads(sys.argv[1]))))
