"""Lattices, spin Hamiltonians and exact reference energies shared by the VMC examples.

Not an example itself: the example scripts put this folder on `sys.path` and import it (the examples
are scripts, not a package). Run on its own it checks its exact references against each other and
against closed-form values, in a second or two.

Conventions: spins are x_i = +-1 (s^z_i = x_i for the Ising model, S^z_i = x_i / 2 for Heisenberg).

- Transverse-field Ising: H = -J1 sum_<ij> s^z_i s^z_j - J2 sum_<<ij>> s^z_i s^z_j - h sum_i s^x_i
  with Pauli matrices.
- Heisenberg: H = J1 sum_<ij> S_i.S_j + J2 sum_<<ij>> S_i.S_j with spin-1/2 operators S = sigma / 2,
  so that a bond contributes x_i x_j / 4 on the diagonal and 1/2 (S+S- + S-S+), which exchanges an
  anti-aligned pair with matrix element 1/2, off it.

<ij> are nearest and <<ij>> next-nearest neighbours of a periodic chain or square lattice, each pair
counted once (on the smallest lattices two displacements can join the same pair, as in NetKet's
graphs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product

import numpy as np

BETHE_ANSATZ_PER_SITE = 0.25 - math.log(2)
"""Heisenberg chain, L -> infinity, per site in S.S units (Hulthen 1938): -0.443147180560."""
HEISENBERG_CHAIN_80_PER_SITE = -0.443275951872
"""Heisenberg chain, L = 80, periodic, per site in S.S units: the reference of the "Research scale" issue."""
SQUARE_10X10_QMC_PER_SITE = (-0.671549, 0.000004)
"""Heisenberg 10 x 10 periodic square lattice, per site: QMC, Sandvik, Phys. Rev. B 56, 11678 (1997)."""
MAX_ED_SITES = 16
"""Largest lattice diagonalised exactly (2^16 states for Ising, 12870 at zero magnetisation)."""


def free_fermion_energy(n_spins: int, field: float, coupling: float) -> float:
    """Ground-state energy of the periodic TFIM chain from its Jordan-Wigner solution.

    The ground state has even parity prod_i s^x_i = +1, where the fermions obey antiperiodic
    boundary conditions: k = (2n + 1) pi / L for n = 0, ..., L - 1.
    """
    k = (2 * np.arange(n_spins) + 1) * np.pi / n_spins
    return float(-np.sum(np.sqrt(coupling**2 + field**2 - 2 * coupling * field * np.cos(k))))


@dataclass(frozen=True)
class Lattice:
    """A periodic chain (`dimension=1`, L sites) or square lattice (`dimension=2`, L x L sites).

    Site (x, y) of the square lattice has index x * L + y, NetKet's `nk.graph.Square` order.
    """

    length: int
    dimension: int

    @property
    def n_sites(self) -> int:
        return self.length**self.dimension

    @property
    def bipartite(self) -> bool:
        # Periodic boundaries keep the checkerboard colouring only for an even side.
        return self.length % 2 == 0

    def coordinates(self) -> np.ndarray:
        """(n_sites, dimension) integer coordinates, row i for site i."""
        return np.array(list(product(range(self.length), repeat=self.dimension)))

    def index(self, coordinates: np.ndarray) -> np.ndarray:
        wrapped = np.mod(coordinates, self.length)
        return wrapped @ (self.length ** np.arange(self.dimension - 1, -1, -1))

    def bonds(self, order: int) -> tuple[tuple[int, int], ...]:
        """Nearest (`order=1`) or next-nearest (`order=2`) neighbour pairs (i < j), each once."""
        steps = {
            (1, 1): [(1,)],
            (1, 2): [(2,)],
            (2, 1): [(1, 0), (0, 1)],
            (2, 2): [(1, 1), (1, -1)],
        }[(self.dimension, order)]
        sites = self.coordinates()
        pairs = set()
        for step in steps:
            for i, j in zip(self.index(sites), self.index(sites + np.array(step)), strict=True):
                if i != j:
                    pairs.add((int(min(i, j)), int(max(i, j))))
        return tuple(sorted(pairs))

    def translations(self) -> np.ndarray:
        """(n_sites, n_sites) table: row g maps every site to its image under the g-th translation."""
        sites = self.coordinates()
        return np.stack([self.index(sites + shift) for shift in sites])

    def sublattice(self) -> np.ndarray:
        """0 or 1 per site: the checkerboard colouring (meaningful on a bipartite lattice)."""
        return np.sum(self.coordinates(), axis=1) % 2


@dataclass(frozen=True)
class Hamiltonian:
    """A spin Hamiltonian as the VMC step needs it: hashable, so it can be a static jit argument.

    `signs` multiply the exchange elements (Heisenberg): -1 on a bond the Marshall rotation
    exp(i pi sum_{j in B} S^z_j) crosses, i.e. one joining the two sublattices. `moves` are the
    sampler's exchange pairs (the nearest-neighbour bonds, which keep the magnetisation) or None
    for single spin flips.
    """

    model: str
    n_sites: int
    bonds: tuple[tuple[int, int], ...]
    couplings: tuple[float, ...]
    signs: tuple[float, ...]
    field: float
    moves: tuple[tuple[int, int], ...] | None


def build_hamiltonian(
    model: str, lattice: Lattice, *, j1: float, j2: float, field: float, marshall: bool
) -> Hamiltonian:
    """The `Hamiltonian` of `model` ("ising" or "heisenberg") on `lattice` (see the module docstring)."""
    if model not in ("ising", "heisenberg"):
        raise ValueError(f"model: expected 'ising' or 'heisenberg', got {model!r}")
    if marshall and (model != "heisenberg" or not lattice.bipartite):
        raise ValueError(
            f"marshall: the Marshall sign rule needs the Heisenberg model on a bipartite lattice (even L), "
            f"got model {model!r} with L={lattice.length}"
        )
    nearest = lattice.bonds(1)
    second = lattice.bonds(2) if j2 != 0 else ()
    if set(nearest) & set(second):
        raise ValueError(
            f"j2: on this lattice (L={lattice.length}) next-nearest neighbours coincide with nearest "
            "ones; use a larger L or j2=0"
        )
    bonds = nearest + second
    colour = lattice.sublattice()
    signs = tuple(-1.0 if marshall and colour[i] != colour[j] else 1.0 for i, j in bonds)
    return Hamiltonian(
        model=model,
        n_sites=lattice.n_sites,
        bonds=bonds,
        couplings=(float(j1),) * len(nearest) + (float(j2),) * len(second),
        signs=signs,
        field=float(field) if model == "ising" else 0.0,
        moves=nearest if model == "heisenberg" else None,
    )


def sparse_hamiltonian(ham: Hamiltonian):
    """The Hamiltonian as a scipy CSR matrix on all 2^N states (Ising) or the S^z = 0 sector.

    Basis state c has x_i = 1 - 2 * bit_i(c). Heisenberg moves keep the magnetisation and the
    VMC samples at zero magnetisation, so its sector is the one to compare with; for an even
    number of sites every spin multiplet has a member there, so it holds the ground state too.
    """
    import scipy.sparse

    n = ham.n_sites
    codes = np.arange(2**n, dtype=np.int64)
    spins = 1 - 2 * ((codes[:, None] >> np.arange(n)) & 1)
    if ham.model == "heisenberg":
        sector = np.sum(spins, axis=1) == 0
        codes, spins = codes[sector], spins[sector]
    diagonal = np.zeros(len(codes))
    rows, columns, values = [], [], []

    def connect(mask: np.ndarray, flipped: np.ndarray, element: float) -> None:
        rows.append(np.flatnonzero(mask))
        columns.append(np.searchsorted(codes, flipped))
        values.append(np.full(len(flipped), element))

    for (i, j), coupling, sign in zip(ham.bonds, ham.couplings, ham.signs, strict=True):
        aligned = spins[:, i] * spins[:, j]
        if ham.model == "ising":
            diagonal -= coupling * aligned
        else:
            diagonal += coupling * aligned / 4
            anti = aligned < 0
            connect(anti, codes[anti] ^ ((1 << i) | (1 << j)), coupling * sign / 2)
    if ham.model == "ising":
        for i in range(n):
            connect(np.ones(len(codes), bool), codes ^ (1 << i), -ham.field)
    off = scipy.sparse.coo_matrix(
        (np.concatenate(values or [[]]), (np.concatenate(rows or [[]]), np.concatenate(columns or [[]]))),
        shape=(len(codes), len(codes)),
    )
    return (off + scipy.sparse.diags(diagonal)).tocsr()


def exact_ground_energy(ham: Hamiltonian) -> float:
    """The ground-state energy (total, not per site) by exact diagonalisation: Lanczos, or dense when tiny."""
    if ham.n_sites > MAX_ED_SITES:
        raise ValueError(
            f"n_sites: exact diagonalisation is limited to {MAX_ED_SITES} sites, got {ham.n_sites}"
        )
    import scipy.sparse.linalg

    matrix = sparse_hamiltonian(ham)
    if matrix.shape[0] <= 256:
        return float(np.linalg.eigvalsh(matrix.toarray())[0])
    # A fixed start vector keeps the result reproducible to the last digit.
    start = np.ones(matrix.shape[0])
    return float(scipy.sparse.linalg.eigsh(matrix, k=1, which="SA", v0=start, tol=1e-14)[0][0])


def reference_energy(ham: Hamiltonian, lattice: Lattice) -> tuple[float, str] | None:
    """A per-site ground-state energy to compare with, and where it comes from; None when none is known."""
    n, j1 = ham.n_sites, ham.couplings[0]
    j2 = len(ham.bonds) > len(lattice.bonds(1))
    if ham.model == "ising" and lattice.dimension == 1 and not j2:
        return free_fermion_energy(n, ham.field, j1) / n, "free fermions"
    if n <= MAX_ED_SITES:
        return exact_ground_energy(ham) / n, "exact diagonalisation"
    # The quoted values are for J1 = 1 without J2; the energy scales with an antiferromagnetic J1.
    if ham.model == "heisenberg" and not j2 and j1 > 0:
        if lattice.dimension == 1 and lattice.length == 80:
            return j1 * HEISENBERG_CHAIN_80_PER_SITE, "L=80 value of the issue"
        if lattice.dimension == 2 and lattice.length == 10:
            return j1 * SQUARE_10X10_QMC_PER_SITE[0], "QMC, Sandvik 1997, +-4e-6"
    return None


def self_check() -> None:
    """Exact references against closed forms: free fermions, and the 4-site ring (E0 = -2 J) with and
    without the Marshall rotation."""
    for n, field in [(6, 0.5), (8, 1.0), (7, 1.5)]:
        ham = build_hamiltonian("ising", Lattice(n, 1), j1=1.0, j2=0.0, field=field, marshall=False)
        assert abs(exact_ground_energy(ham) - free_fermion_energy(n, field, 1.0)) < 1e-9 * n
    for marshall in (False, True):
        ring = build_hamiltonian("heisenberg", Lattice(4, 1), j1=1.0, j2=0.0, field=0.0, marshall=marshall)
        assert abs(exact_ground_energy(ring) + 2.0) < 1e-12
    print("exact references: free fermions, the 4-site Heisenberg ring and the Marshall rotation agree")


if __name__ == "__main__":
    # `.ci/run` runs every examples/*.py with --smoke; for this helper that is its self-check.
    self_check()
