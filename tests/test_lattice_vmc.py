"""examples/lattice_vmc.py: lattices, local energies and exact references against NetKet; checkpoints.

Local energies are checked against <x|H|psi> / <x|psi> from NetKet's own operators (the project's
numerical reference), built on NetKet's graphs independently of the example's bonds. The runs go
through the example's `main(argv)` in-process, on lattices small enough to take seconds.
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from pathlib import Path
from types import ModuleType

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_params_init, require

import eqx_rbm

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# One tiny Heisenberg run shared by the run tests, so that they reuse its compiled programs.
RUN = [
    *("--model", "heisenberg", "--length", "6", "--marshall", "--alpha", "1", "--samples", "64"),
    *("--chains", "16", "--final-samples", "64", "--schedule-steps", "5", "--lr-final", "0.02", "--no-plot"),
]


@pytest.fixture(scope="module")
def example() -> ModuleType:
    require("optax")
    require("rich")
    spec = importlib.util.spec_from_file_location("example_lattice_vmc", EXAMPLES / "lattice_vmc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def physics(example: ModuleType) -> ModuleType:
    return importlib.import_module("_physics")  # on sys.path once the example is loaded


def netket_graph(nk, lattice: str, length: int, j2: bool):
    order = {"max_neighbor_order": 2} if j2 else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NetKet warns that a periodic side of 2 is an open one
        return (nk.graph.Chain if lattice == "chain" else nk.graph.Square)(length, **order)


@pytest.mark.parametrize(
    ("lattice", "length"), [("chain", 4), ("chain", 7), ("square", 2), ("square", 3), ("square", 4)]
)
def test_bonds_are_netkets_edges(physics: ModuleType, lattice: str, length: int) -> None:
    nk = require("netket")
    graph = netket_graph(nk, lattice, length, j2=True)
    ours = physics.Lattice(length, 1 if lattice == "chain" else 2)
    for order in (1, 2):
        edges = sorted(tuple(sorted(e)) for e in graph.edges(filter_color=order - 1))
        assert list(ours.bonds(order)) == edges, f"order {order}"
    table = ours.translations()
    assert sorted(map(tuple, table.tolist())) == sorted(
        map(tuple, np.asarray(graph.translation_group()).tolist())
    )


def netket_hamiltonian(nk, model: str, lattice: str, length: int, *, j1, j2, field, marshall):
    """H in the example's units, from NetKet's operators: its Heisenberg is in Pauli matrices, 4 S.S."""
    graph = netket_graph(nk, lattice, length, j2=j2 != 0)
    hilbert = nk.hilbert.Spin(0.5, graph.n_nodes)
    if model == "heisenberg":
        if j2 == 0:
            return nk.operator.Heisenberg(hilbert, graph, J=j1, sign_rule=marshall) * 0.25
        return nk.operator.Heisenberg(hilbert, graph, J=[j1, j2], sign_rule=[marshall, False]) * 0.25
    # NetKet's Ising is -h sum s^x + J sum s^z s^z.
    h = nk.operator.Ising(hilbert, graph.edges(filter_color=0), h=field, J=-j1).to_local_operator()
    for i, j in graph.edges(filter_color=1) if j2 else ():
        h = h - j2 * nk.operator.spin.sigmaz(hilbert, i) @ nk.operator.spin.sigmaz(hilbert, j)
    return h


CASES = [
    ("ising", "chain", 6, 0.0, False, False),
    ("ising", "chain", 7, 0.5, False, True),
    ("ising", "square", 4, -0.4, False, False),
    ("heisenberg", "chain", 6, 0.0, False, True),
    ("heisenberg", "chain", 8, 0.4, True, True),
    ("heisenberg", "square", 2, 0.0, True, False),
    ("heisenberg", "square", 4, 0.5, True, False),
    ("heisenberg", "square", 4, 0.3, False, True),
]


@pytest.mark.parametrize(("model", "lattice", "length", "j2", "marshall", "complex_params"), CASES)
def test_local_energies_match_netket(example, physics, model, lattice, length, j2, marshall, complex_params):
    nk = require("netket")
    j1, field = 1.3, 0.7
    geometry = physics.Lattice(length, 1 if lattice == "chain" else 2)
    ham = physics.build_hamiltonian(
        model, geometry, j1=j1, j2=j2, field=field if model == "ising" else 0.0, marshall=marshall
    )
    dtype = jnp.complex128 if complex_params else jnp.float64
    init = random_params_init(0.3)
    inits = {"kernel_init": init, "hidden_bias_init": init, "visible_bias_init": init}
    rbm = eqx_rbm.RBM(geometry.n_sites, alpha=1, param_dtype=dtype, key=jax.random.key(length), **inits)
    operator = netket_hamiltonian(nk, model, lattice, length, j1=j1, j2=j2, field=field, marshall=marshall)
    assert_local_energies(example, rbm, ham, operator)


def assert_local_energies(example, model, ham, operator) -> None:
    """The example's local energies of random configurations against NetKet's matrix elements."""
    x = np.random.default_rng(1).choice([-1.0, 1.0], size=(12, ham.n_sites))
    connected, elements = operator.get_conn_padded(x)
    log_psi = jax.jit(lambda m, x: m(x))  # one program, not one per eager operation
    ratios = np.exp(np.asarray(log_psi(model, connected)) - np.asarray(log_psi(model, x))[:, None])
    expected = np.sum(elements * ratios, axis=-1)
    # Both paths: all samples at once, and in chunks of a few samples through jax.lax.map.
    energies = jax.jit(example.chunked_local_energies, static_argnums=(2, 3))
    for budget in (2**24, 200):
        got = np.asarray(energies(model, jnp.asarray(x), ham, budget))
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("model", "lattice", "length", "j2", "marshall"),
    [
        ("heisenberg", "square", 2, 0.0, True),
        ("heisenberg", "chain", 10, 0.5, False),
        ("ising", "square", 3, 0.3, False),
    ],
)
def test_exact_diagonalisation_matches_netket(physics, model, lattice, length, j2, marshall):
    nk = require("netket")
    field = 2.0
    # On all states: for an even number of sites the zero-magnetisation sector holds the ground state.
    operator = netket_hamiltonian(nk, model, lattice, length, j1=1.0, j2=j2, field=field, marshall=marshall)
    expected = nk.exact.lanczos_ed(operator)[0]
    geometry = physics.Lattice(length, 1 if lattice == "chain" else 2)
    ham = physics.build_hamiltonian(model, geometry, j1=1.0, j2=j2, field=field, marshall=marshall)
    assert physics.exact_ground_energy(ham) == pytest.approx(expected, rel=1e-10)


def test_exact_diagonalisation_of_the_4x4_lattice(physics) -> None:
    """The 4x4 Heisenberg lattice: -0.701780 per site, the literature value, which NetKet's lanczos_ed
    also gives (too slow to repeat here), with and without the Marshall rotation, which leaves the
    spectrum unchanged."""
    for marshall in (False, True):
        ham = physics.build_hamiltonian(
            "heisenberg", physics.Lattice(4, 2), j1=1.0, j2=0.0, field=0.0, marshall=marshall
        )
        assert physics.exact_ground_energy(ham) / 16 == pytest.approx(-0.701780, abs=1e-6)


def test_reference_values(physics) -> None:
    def ref(model, dimension, length, **kw):
        lattice = physics.Lattice(length, dimension)
        options = {"j1": 1.0, "j2": 0.0, "field": 1.0 if model == "ising" else 0.0, "marshall": False, **kw}
        return physics.reference_energy(physics.build_hamiltonian(model, lattice, **options), lattice)

    assert ref("ising", 1, 80)[0] == pytest.approx(-1.273321360724, abs=1e-12)
    assert ref("heisenberg", 1, 80) == (-0.443275951872, "L=80 value of the issue")
    assert ref("heisenberg", 2, 10, marshall=True)[0] == -0.671549
    assert ref("heisenberg", 1, 4)[0] == pytest.approx(-0.5)  # the 4-site ring: E0 = -2 J
    assert (
        ref("heisenberg", 1, 40) is None
        and ref("ising", 2, 6) is None
        and ref("heisenberg", 2, 10, j2=0.5) is None
    )
    assert abs(physics.BETHE_ANSATZ_PER_SITE + 0.443147180560) < 1e-12


@pytest.fixture(scope="module")
def whole(example):
    """The uninterrupted run that the interrupted ones must reproduce bit for bit."""
    return example.main([*RUN, "--iterations", "10"])


def test_short_run_lowers_the_energy(whole) -> None:
    assert np.mean(whole.energies[-3:]) < whole.energies[0] - 0.05
    assert whole.exact == pytest.approx(-0.467129272, abs=1e-8)  # exact diagonalisation, L=6
    assert whole.relative_error < 0.15


def leaves(model) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree.leaves(model)]


def assert_same_run(a, b) -> None:
    for x, y in zip(leaves(a.model), leaves(b.model), strict=True):
        assert np.array_equal(x, y), "parameters differ"
    assert a.energies == b.energies and a.energy == b.energy


def test_resumed_run_is_bit_identical(example, whole, tmp_path: Path) -> None:
    path = tmp_path / "run.npz"
    example.main([*RUN, "--iterations", "3", "--checkpoint", str(path), "--checkpoint-every", "2"])
    resumed = example.main([*RUN, "--iterations", "10", "--checkpoint", str(path), "--resume"])
    assert_same_run(whole, resumed)
    # The checkpoint now holds the end of the run: resuming it again only redoes the final estimate.
    again = example.main([*RUN, "--iterations", "10", "--checkpoint", str(path), "--resume"])
    assert_same_run(whole, again)


def test_late_samples_start_at_their_iteration(example, whole) -> None:
    samples = RUN[RUN.index("--samples") + 1]
    doubled = str(2 * int(samples))
    # From iteration 0 on, the late samples are a run with that many samples throughout.
    late = example.main([*RUN, "--iterations", "4", "--late-samples", doubled, "--late-from", "0"])
    plain = example.main([*RUN, "--iterations", "4", "--samples", doubled])
    assert_same_run(late, plain)
    # From iteration 2 on: the first two iterations are the plain run's, the later ones are not.
    switched = example.main([*RUN, "--iterations", "4", "--late-samples", doubled, "--late-from", "2"])
    assert switched.energies[:2] == whole.energies[:2]
    assert all(a != b for a, b in zip(switched.energies[2:], whole.energies[2:4], strict=True))


def test_ctrl_c_saves_a_checkpoint(example, whole, tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "run.npz"
    step, calls = example.step, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return step(*args, **kwargs)

    monkeypatch.setattr(example, "step", interrupted)
    with pytest.raises(SystemExit) as stopped:
        example.main([*RUN, "--iterations", "10", "--checkpoint", str(path), "--checkpoint-every", "4"])
    assert stopped.value.code == 130
    monkeypatch.setattr(example, "step", step)
    _, meta = importlib.import_module("_vmc").load_checkpoint(path)
    assert meta["iteration"] == 5  # saved on Ctrl-C, after the checkpoint of iteration 4
    assert_same_run(whole, example.main([*RUN, "--iterations", "10", "--checkpoint", str(path), "--resume"]))


def test_resume_refuses_other_arguments_and_existing_files(
    example, checkpoint: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "run.npz"
    path.write_bytes(checkpoint)
    with pytest.raises(example.CheckpointError, match=r"--lr is 0.1 here but 0.05 in the checkpoint") as err:
        example.main([*RUN, "--iterations", "4", "--checkpoint", str(path), "--resume", "--lr", "0.1"])
    assert str(path) in str(err.value)
    with pytest.raises(example.CheckpointError, match="exists: add --resume"):
        example.main([*RUN, "--iterations", "4", "--checkpoint", str(path)])
    with pytest.raises(example.CheckpointError, match="beyond --iterations 1"):
        example.main([*RUN, "--iterations", "1", "--checkpoint", str(path), "--resume"])
    with pytest.raises(example.CheckpointError, match="no such file"):
        example.main([*RUN, "--iterations", "4", "--checkpoint", str(tmp_path / "none.npz"), "--resume"])


@pytest.fixture(scope="module")
def checkpoint(example, tmp_path_factory) -> bytes:
    """The bytes of a checkpoint after two iterations."""
    path = tmp_path_factory.mktemp("checkpoint") / "run.npz"
    example.main([*RUN, "--iterations", "2", "--checkpoint", str(path)])
    return path.read_bytes()


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "not a checkpoint"])
def test_damaged_checkpoint_is_refused(example, checkpoint: bytes, tmp_path: Path, damage: str) -> None:
    path = tmp_path / "run.npz"
    data = checkpoint
    middle = len(data) // 2
    path.write_bytes(
        {
            "truncated": data[:middle],
            "flipped byte": data[:middle] + bytes([data[middle] ^ 0x10]) + data[middle + 1 :],
            "not a checkpoint": b"hello",
        }[damage]
    )
    with pytest.raises(example.CheckpointError, match="corrupted") as err:
        example.main([*RUN, "--iterations", "4", "--checkpoint", str(path), "--resume"])
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--marshall"], "Marshall sign rule needs the Heisenberg model"),
        (["--model", "heisenberg", "--length", "7"], "even number of sites"),
        (["--model", "heisenberg", "--lattice", "square", "--length", "3"], "even number of sites"),
        (["--model", "heisenberg", "--field", "1"], "--field"),
        (["--length", "3", "--j2", "1"], "next-nearest neighbours coincide"),
        (["--resume"], "--checkpoint PATH"),
        (["--samples", "100", "--chains", "16"], "multiples of --chains=16"),
        (["--late-samples", "256"], "--late-samples and --late-from: give both"),
        (["--late-from", "5"], "--late-samples and --late-from: give both"),
        (["--late-samples", "100", "--late-from", "5", "--chains", "16"], "positive multiple of --chains=16"),
        (["--late-samples", "256", "--late-from", "-1"], "--late-from: expected an iteration >= 0"),
        (["--init-from", "a.npz", "--symmetric"], "--init-from: starts a dense network"),
        (["--init-from", "a.npz", "--init-std", "0.1"], "--init-from: starts a dense network"),
    ],
)
def test_argument_errors(example, capsys, argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit):
        example.parse_args(argv)
    assert message in capsys.readouterr().err


def test_symmetric_network_local_energies(example, capsys) -> None:
    nk = require("netket")
    argv = ["--model", "heisenberg", "--lattice", "square", "--length", "4", "--j2", "0.5", "--marshall"]
    args = example.parse_args([*argv, "--symmetric"])
    lattice, ham = example.system(args)
    model = example.build_model(args, lattice, jax.random.key(0))
    model = jax.tree.map(lambda p: 3 * p, model)  # larger than the initialisation, so that ratios vary
    x = example.initial_chains(ham, 8, jax.random.key(1))
    for shift in lattice.translations():  # translations leave log psi unchanged
        np.testing.assert_allclose(model(x[:, shift]), model(x), rtol=1e-12)
    operator = netket_hamiltonian(nk, "heisenberg", "square", 4, j1=1.0, j2=0.5, field=0.0, marshall=True)
    assert_local_energies(example, model, ham, operator)


def test_symmetric_network_run(example, capsys) -> None:
    result = example.main([*RUN, "--symmetric", "--iterations", "3"])
    assert type(result.model).__name__ == "RBMSymm" and np.isfinite(result.energy)


def _documented_commands(text: str) -> list[list[str]]:
    """The `python examples/lattice_vmc.py ...` commands of a text, continuation lines joined."""
    joined = text.replace("\\\\\n", " ").replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    prefix = "python examples/lattice_vmc.py"
    return [line.split("#")[0].split()[2:] for line in lines if line.startswith(prefix)]


def test_the_reproduction_commands_are_the_documented_ones(example):
    """The docstring's and docs/examples.md's research-scale commands agree and parse."""
    docs = (EXAMPLES.parent / "docs" / "examples.md").read_text(encoding="utf-8")
    documented = _documented_commands(docs[docs.index("### Research-scale runs") :])
    in_script = _documented_commands(example.__doc__)
    research = [c for c in in_script if "--checkpoint" in c]
    assert len(research) == 6
    assert [c for c in documented if "--checkpoint" in c] == research
    for argv in research:
        args = example.parse_args(argv)
        assert args.checkpoint is not None and not args.smoke


@pytest.mark.parametrize("symmetric", [False, True])
def test_init_std(example, symmetric):
    flags = ["--model", "heisenberg", "--length", "40", "--alpha", "8", "--no-plot"]
    flags += ["--symmetric"] * symmetric
    args = example.parse_args([*flags, "--init-std", "0.003"])
    lattice, _ = example.system(args)
    model = example.build_model(args, lattice, jax.random.key(0))
    kernel = np.asarray(model.kernel)
    assert 0.0025 < kernel.std() < 0.0035, kernel.std()  # hundreds of draws of N(0, 0.003^2)
    default = example.build_model(example.parse_args(flags), lattice, jax.random.key(0))
    assert np.asarray(default.kernel).std() > 0.005  # 0.01 (RBM) or 0.1 (RBMSymm)
    with pytest.raises(SystemExit):
        example.parse_args([*flags, "--init-std", "0"])


def test_init_from_unrolls_a_symmetric_run(example, tmp_path: Path) -> None:
    path = tmp_path / "symmetric.npz"
    symmetric = example.main([*RUN, "--symmetric", "--iterations", "2", "--checkpoint", str(path)]).model
    args = example.parse_args([*RUN, "--init-from", str(path)])
    lattice, _ = example.system(args)
    dense = example.unrolled(args, lattice)
    assert isinstance(dense, eqx_rbm.RBM) and dense.n_hidden == symmetric.n_hidden == 6
    # The same wave function: the dense forward of the unrolled kernel against RBMSymm's own.
    x = np.random.default_rng(0).choice([-1.0, 1.0], size=(32, 6))
    np.testing.assert_allclose(np.asarray(dense(x)), np.asarray(symmetric(x)), rtol=1e-13)
    checkpoint = tmp_path / "dense_from_symmetric.npz"
    started = [*RUN, "--init-from", str(path), "--checkpoint", str(checkpoint)]
    run = example.main([*started, "--iterations", "2"])
    assert isinstance(run.model, eqx_rbm.RBM) and np.all(np.isfinite(run.energies))
    # A resume needs its own checkpoint only, not the file it started from.
    path = path.rename(tmp_path / "moved.npz")
    resumed = example.main([*started, "--iterations", "3", "--resume"])
    assert len(resumed.energies) == 3 and resumed.energies[:2] == run.energies
    # Only a symmetric run of the same system and alpha is accepted, and the message says which differs.
    dense_path = tmp_path / "dense.npz"
    example.main([*RUN, "--iterations", "1", "--checkpoint", str(dense_path)])
    with pytest.raises(example.CheckpointError, match="--symmetric is True here but False in the checkpoint"):
        example.main([*RUN, "--init-from", str(dense_path), "--iterations", "1"])
    with pytest.raises(example.CheckpointError, match=r"--alpha is 2\.0 here but 1\.0 in the checkpoint"):
        example.main([*RUN, "--alpha", "2", "--init-from", str(path), "--iterations", "1"])


@pytest.mark.parametrize("broken", ["energy", "parameters"])
def test_a_diverging_run_stops_and_keeps_its_last_finite_state(
    example, whole, tmp_path: Path, monkeypatch, broken: str
) -> None:
    """From iteration 5 on, the step returns a NaN energy, or NaN parameters as a diverged SR update
    would: the run stops with a message naming the iteration and the remedy, and the checkpoint
    holds iteration 4 of the uninterrupted run, from which --resume continues it bit for bit."""
    path = tmp_path / "run.npz"
    step = example.step

    def diverging(run, *args, **kwargs):
        new, (energy, variance, acceptance) = step(run, *args, **kwargs)
        if run.iteration < 4:
            return new, (energy, variance, acceptance)
        if broken == "energy":
            return new, (jnp.nan, variance, acceptance)
        nan_model = jax.tree.map(lambda p: p * jnp.nan, new.model)
        return new._replace(model=nan_model), (energy, variance, acceptance)

    monkeypatch.setattr(example, "step", diverging)
    argv = [*RUN, "--iterations", "10", "--checkpoint", str(path), "--checkpoint-every", "3"]
    with pytest.raises(example.DivergenceError) as err:
        example.main(argv)
    message = str(err.value)
    assert message.startswith("restart with a smaller --init-std (e.g. 0.01) or --lr")
    assert "diverged at iteration 5" in message and f"iteration 4 is saved in {path}" in message
    assert ("energy" if broken == "energy" else "parameters after the SR update") in message
    monkeypatch.setattr(example, "step", step)
    arrays, meta = importlib.import_module("_vmc").load_checkpoint(path)
    assert meta["iteration"] == 4
    assert all(np.all(np.isfinite(v)) for k, v in arrays.items() if k.startswith("model/"))
    assert_same_run(whole, example.main([*RUN, "--iterations", "10", "--checkpoint", str(path), "--resume"]))


def test_a_checkpoint_with_non_finite_parameters_is_refused(example, checkpoint: bytes, tmp_path: Path):
    vmc = importlib.import_module("_vmc")
    arrays, meta = vmc.load_checkpoint(_write(tmp_path / "good.npz", checkpoint))
    arrays["model/0"] = np.full_like(arrays["model/0"], np.nan)
    path = tmp_path / "nan.npz"
    vmc.save_checkpoint(path, arrays, meta)
    with pytest.raises(example.CheckpointError, match="non-finite parameters") as err:
        example.main([*RUN, "--iterations", "4", "--checkpoint", str(path), "--resume"])
    assert str(err.value).startswith(f"checkpoint {path} holds non-finite parameters")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
