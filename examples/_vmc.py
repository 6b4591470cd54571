"""Variational Monte Carlo plumbing shared by the VMC examples: checkpointed runs, the plot.

Not an example itself: the example scripts put this folder on `sys.path` and import it. Run on its
own it writes, reads back and corrupts a checkpoint in a temporary folder.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import signal
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from rich.progress import Progress

# --------------------------------------------------------------------------- checkpoints

CHECKPOINT_FORMAT = "eqx_rbm examples checkpoint, version 1"


class CheckpointError(Exception):
    """A checkpoint that cannot be used: unreadable, corrupted, or written by another run."""


class DivergenceError(Exception):
    """A run whose energy, variance or parameters became non-finite (NaN or infinite)."""


def _digest(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save_checkpoint(path: Path, arrays: dict[str, Any], meta: dict[str, Any]) -> None:
    """Writes `arrays` and the JSON-able `meta` to `path` as one `.npz`, atomically.

    The file is written next to `path` and moved over it with `os.replace`, so a crash or a
    second Ctrl-C during the write leaves the previous checkpoint intact. A SHA-256 of the
    contents, stored with them, lets `load_checkpoint` tell a damaged file from a good one.
    """
    payload = {name: np.asarray(value) for name, value in arrays.items()}
    payload["meta"] = np.array(json.dumps({"format": CHECKPOINT_FORMAT, **meta}, sort_keys=True))
    payload["sha256"] = np.array(_digest(payload))
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp's file is private (0600); give the checkpoint the mode any new file would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        with os.fdopen(descriptor, "wb") as file:
            np.savez(file, **payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def load_checkpoint(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and metadata of a checkpoint written by `save_checkpoint`, verified.

    Raises `CheckpointError`, naming the file, when it is missing, cannot be read (truncated, not
    a checkpoint) or its contents do not match their checksum.
    """
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except Exception as err:  # zipfile, numpy and OS errors alike mean an unusable file
        raise CheckpointError(
            f"checkpoint {path} cannot be read, it is truncated or corrupted ({type(err).__name__}: {err}); "
            "restore a copy or delete it to start the run again"
        ) from err
    if "meta" not in arrays or "sha256" not in arrays:
        raise CheckpointError(
            f"checkpoint {path}: not a checkpoint of these examples (no meta or sha256 entry)"
        )
    stored = str(arrays.pop("sha256"))
    if _digest(arrays) != stored:
        raise CheckpointError(
            f"checkpoint {path} is corrupted: its contents do not match their SHA-256 checksum; "
            "restore a copy or delete it to start the run again"
        )
    meta = json.loads(str(arrays.pop("meta")))
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint {path}: expected format {CHECKPOINT_FORMAT!r}, got {meta.get('format')!r}"
        )
    return arrays, meta


def tree_arrays(tree: Any, prefix: str) -> dict[str, np.ndarray]:
    """The array leaves of a pytree (a model, an optimiser state) as `{prefix/i: array}`."""
    leaves = jax.tree.leaves(eqx.filter(tree, eqx.is_array))
    return {f"{prefix}/{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)}


@eqx.filter_jit
def all_finite(*trees: Any) -> jax.Array:
    """Whether every inexact array leaf of `trees` is finite: one reduction, one number to the host."""
    leaves = jax.tree.leaves(eqx.filter(trees, eqx.is_inexact_array))
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def restore_tree(template: Any, arrays: dict[str, np.ndarray], prefix: str, path: Path) -> Any:
    """`template` with its array leaves replaced by `arrays[prefix/i]`, checked leaf by leaf."""
    params, static = eqx.partition(template, eqx.is_array)
    leaves, treedef = jax.tree.flatten(params)
    stored = sorted((k for k in arrays if k.startswith(f"{prefix}/")), key=lambda k: int(k.split("/")[-1]))
    if len(stored) != len(leaves):
        raise CheckpointError(f"checkpoint {path}: expected {len(leaves)} {prefix} arrays, got {len(stored)}")
    restored = []
    for name, leaf in zip(stored, leaves, strict=True):
        value = arrays[name]
        if value.shape != leaf.shape or value.dtype != leaf.dtype:
            raise CheckpointError(
                f"checkpoint {path}: {name} expected shape {leaf.shape} {leaf.dtype}, "
                f"got {value.shape} {value.dtype}"
            )
        restored.append(jnp.asarray(value))
    return eqx.combine(jax.tree.unflatten(treedef, restored), static)


def differences(saved: dict[str, Any], current: dict[str, Any]) -> str:
    """The arguments of `current` and a checkpoint's `saved` ones that differ, as a sentence ("" if none)."""
    names = sorted(set(saved) | set(current))
    return ", ".join(
        f"--{n.replace('_', '-')} is {current.get(n)!r} here but {saved.get(n)!r} in the checkpoint"
        for n in names
        if saved.get(n) != current.get(n)
    )


def check_same_run(path: Path, saved: dict[str, Any], current: dict[str, Any]) -> None:
    """Refuses to resume when an argument that defines the run differs from the checkpoint's."""
    if lines := differences(saved, current):
        raise CheckpointError(
            f"checkpoint {path} belongs to another run: {lines}. Resume with the run's own arguments, "
            "or choose another --checkpoint path for a new run"
        )


# --------------------------------------------------------------------------- a checkpointed run


class Run(NamedTuple):
    """Everything an iteration changes, replaced as one value so that Ctrl-C never sees half of it."""

    model: Any
    opt_state: Any
    chains: jax.Array
    key: jax.Array
    iteration: int


def save_run(path: Path, run: Run, energies: list, variances: list, meta: dict[str, Any]) -> None:
    """`run` and the energy history to `path`; `meta["run"]` identifies the run for `load_run`."""
    arrays = {
        **tree_arrays(run.model, "model"),
        **tree_arrays(run.opt_state, "optimiser"),
        "chains": np.asarray(run.chains),
        "key": np.asarray(jax.random.key_data(run.key)),
        # The lists may hold one entry more than `run` when Ctrl-C fell between the two updates.
        "energies": np.asarray(energies[: run.iteration], dtype=float),
        "variances": np.asarray(variances[: run.iteration], dtype=float),
    }
    save_checkpoint(path, arrays, {**meta, "iteration": run.iteration})


def load_run(path: Path, template: Run, run: dict[str, Any], iterations: int) -> tuple[Run, list, list]:
    """The run saved by `save_run`, shaped like `template`, if it is the run `run` identifies."""
    arrays, meta = load_checkpoint(path)
    check_same_run(path, meta.get("run", {}), run)
    missing = {"chains", "key", "energies", "variances"} - set(arrays)
    iteration = int(meta.get("iteration", -1))
    if missing or iteration < 0 or len(arrays.get("energies", ())) != iteration:
        raise CheckpointError(
            f"checkpoint {path}: incomplete (missing {sorted(missing)}, iteration {iteration})"
        )
    if iteration > iterations:
        raise CheckpointError(
            f"checkpoint {path} is at iteration {iteration}, beyond --iterations {iterations}: "
            "ask for at least as many iterations as it holds"
        )
    chains = arrays["chains"]
    if chains.shape != template.chains.shape or chains.dtype != template.chains.dtype:
        raise CheckpointError(
            f"checkpoint {path}: chains of shape {chains.shape} {chains.dtype}, "
            f"expected {template.chains.shape} {template.chains.dtype}"
        )
    model = restore_tree(template.model, arrays, "model", path)
    if not bool(all_finite(model)):
        raise CheckpointError(
            f"checkpoint {path} holds non-finite parameters (written before runs checked for divergence); "
            "start the run again, with a smaller --init-std or --lr"
        )
    restored = Run(
        model,
        restore_tree(template.opt_state, arrays, "optimiser", path),
        jnp.asarray(chains),
        jax.random.wrap_key_data(jnp.asarray(arrays["key"])),
        iteration,
    )
    return restored, arrays["energies"].tolist(), arrays["variances"].tolist()


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def train(
    run: Run,
    step: Callable[[Run], tuple[Run, tuple]],
    energies: list,
    variances: list,
    *,
    iterations: int,
    checkpoint: Path | None,
    every: int,
    meta: dict[str, Any],
    remedy: str = "a smaller step",
) -> Run:
    """`step` until `iterations`, with a progress bar; `step` returns the new run and
    (energy, variance, acceptance), the energies appended to the lists.

    With a `checkpoint` path, the run is saved every `every` iterations, at the end, and on Ctrl-C
    or SIGTERM, after which the process exits with status 130.

    An iteration whose energy, variance or new parameters are not finite is not kept: the run
    stops with a `DivergenceError` naming the iteration and suggesting `remedy`, after saving the
    last finite state (so that a checkpoint never holds non-finite parameters).
    """
    save = None if checkpoint is None else functools.partial(save_run, checkpoint, meta=meta)
    # A batch system stops a job with SIGTERM: treat it as Ctrl-C, which saves before exiting.
    handler = save is not None and threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if handler else None
    try:
        with Progress(transient=True) as progress:
            task = progress.add_task("VMC", total=iterations, completed=run.iteration)
            while run.iteration < iterations:
                new, (energy, variance, acceptance) = step(run)
                broken = _non_finite(energy=energy, variance=variance, parameters=new.model)
                if broken:
                    kept = f"; iteration {run.iteration} is saved in {checkpoint}" if save else ""
                    raise DivergenceError(
                        f"restart with {remedy}: the run diverged at iteration {run.iteration + 1}, whose "
                        f"{' and '.join(broken)} became non-finite (the last finite state is iteration "
                        f"{run.iteration}{kept})"
                    )
                energies.append(float(energy))
                variances.append(float(variance))
                run = new
                description = f"E {energy:.6f} var {variance:.2e} acceptance {acceptance:.2f}"
                progress.update(task, advance=1, description=description)
                if save is not None and run.iteration % every == 0:
                    save(run, energies, variances)
    except DivergenceError:
        if save is not None:
            save(run, energies, variances)
        raise
    except KeyboardInterrupt:
        if save is None:
            raise
        save(run, energies, variances)
        print(f"interrupted: iteration {run.iteration} saved to {checkpoint}; add --resume to continue")
        raise SystemExit(130) from None
    finally:
        if handler:
            signal.signal(signal.SIGTERM, previous)
    if save is not None:
        save(run, energies, variances)
    return run


def _non_finite(**values: Any) -> list[str]:
    """The names of the values (numbers or pytrees) holding a NaN or an infinity."""
    names = {"parameters": "parameters after the SR update"}
    finite = {name: bool(all_finite(jax.tree.map(jnp.asarray, value))) for name, value in values.items()}
    return [names.get(name, name) for name, ok in finite.items() if not ok]


# --------------------------------------------------------------------------- plot


def save_plot(
    path: Path, energies: list[float], exact: float | None, title: str, target: float | None = None
) -> None:
    """The relative error of the energies against `exact` per iteration, or the energies without one."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    fig, ax = plt.subplots(figsize=(5, 3.5))
    if exact is None:
        ax.plot(energies)
        ax.set_ylabel("energy (Monte Carlo)")
    else:
        ax.semilogy(np.maximum(np.abs(np.asarray(energies) - exact) / abs(exact), 1e-16))
        ax.set_ylabel("relative energy error (Monte Carlo)")
    if target is not None:
        ax.axhline(target, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("iteration")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"plot saved to {path}")


def self_check() -> None:
    """A checkpoint written, read back, then refused once truncated and once with a flipped byte."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "check.npz"
        save_checkpoint(path, {"x": np.arange(1000.0)}, {"iteration": 3})
        arrays, meta = load_checkpoint(path)
        assert meta["iteration"] == 3 and np.array_equal(arrays["x"], np.arange(1000.0))
        data = path.read_bytes()
        for damaged in (data[: len(data) // 2], data[:4000] + bytes([data[4000] ^ 1]) + data[4001:]):
            path.write_bytes(damaged)
            try:
                load_checkpoint(path)
            except CheckpointError:
                continue
            raise AssertionError("a damaged checkpoint was accepted")
    print("checkpoints: round trip, truncated and corrupted files refused")


if __name__ == "__main__":
    # `.ci/run` runs every examples/*.py with --smoke; for this helper that is its self-check.
    self_check()
