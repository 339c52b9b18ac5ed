"""Evaluate a model's kernel tables on one structure (orchestration around the kernels).

Used by the ASE calculator and by anything else that needs energies, forces and the
virial from a neighbour list (fitting baselines, validation). Energies in eV, forces in
eV/Å, virial in eV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from aceal.basis.tables import KernelTables
from aceal.errors import AcealInputError
from aceal.kernels.evaluate import (
    EvaluationOutputs,
    Neighbours,
    evaluate_atoms,
    scatter_committee_gradients,
    scatter_pair_gradients,
)


@dataclass
class Evaluation:
    """Kernel output for one structure."""

    energies: np.ndarray  # (n_atoms,) site energies, eV
    densities: np.ndarray  # (n_atoms, ndensity) rho_p per atom (committee read-outs)
    forces: np.ndarray  # (n_atoms, 3) eV/Å
    virial: np.ndarray  # (3, 3) sum_ij r_ij ⊗ dE_i/dr_ij, eV (stress = virial / volume)
    forces_committee: np.ndarray | None = None  # (K, n_atoms, 3) members' forces, eV/Å

    @property
    def energy(self) -> float:
        return float(self.energies.sum())


def species_indices(numbers: np.ndarray, elements: list[str]) -> np.ndarray:
    """Map atomic numbers to the model's species indices; unknown elements raise."""
    from ase.data import atomic_numbers, chemical_symbols

    table = {atomic_numbers[el]: k for k, el in enumerate(elements)}
    out = np.empty(len(numbers), dtype=np.int64)
    for i, z in enumerate(numbers):
        k = table.get(int(z))
        if k is None:
            raise AcealInputError(
                f"element {chemical_symbols[int(z)]} (atom {i}) is not in the model "
                f"(elements: {', '.join(elements)})"
            )
        out[i] = k
    return out


def evaluate_tables(
    tables: KernelTables,
    species: np.ndarray,
    first: np.ndarray,
    neighbours: np.ndarray,
    displacements: np.ndarray,
    num_threads: int | None = None,
    committee: int = 0,
) -> Evaluation:
    """Run the evaluation kernel on a CSR neighbour list (pairs beyond the cutoff are skipped).

    ``committee = K > 0`` (linear embedding only) also returns the forces of the K
    committee members (densities ``1..K``, site energy ``E0 + rho_k + rho_core``),
    computed in the same kernel pass.

    Raises :class:`AcealInputError` when two atoms are closer than the radial spline's
    first node (an overlap), naming both atoms and their distance.
    """
    nat = len(species)
    nthreads = numba.get_num_threads() if num_threads is None else int(num_threads)
    t = tables
    ncom = int(committee)
    if ncom:
        if ncom + 1 > t.ndensity or np.any(t.emb_type != 0):
            raise AcealInputError(
                f"committee of {ncom} needs a linear embedding with {ncom + 1} densities"
            )
        pair_grad_c = np.empty((ncom, len(neighbours), 3))  # every entry is written
    else:
        pair_grad_c = np.empty((0, 0, 3))
    nbrs = Neighbours(first, neighbours, displacements, species)
    out = EvaluationOutputs(
        site_energy=np.zeros(nat),
        rho=np.zeros((nat, t.ndensity)),
        pair_grad=np.zeros((len(neighbours), 3)),
        pair_grad_c=pair_grad_c,
        overlap=np.full(nat, -1, dtype=np.int64),
    )
    evaluate_atoms(nbrs, t.base, t.embedding, t.densities, out, max(1, nthreads))
    overlap = out.overlap
    bad = np.flatnonzero(overlap >= 0)
    if bad.size:
        i = int(bad[0])
        p = int(overlap[i])
        dist = float(np.linalg.norm(displacements[p]))
        raise AcealInputError(
            f"atoms {i} and {int(neighbours[p])} are {dist:.2e} Å apart: closer than the "
            f"model can evaluate ({t.rmin.min():.1e} Å); the structure has overlapping atoms"
        )
    forces = np.zeros((nat, 3))
    virial = np.zeros((3, 3))
    scatter_pair_gradients(nbrs, out.pair_grad, forces, virial)
    forces_c = None
    if ncom:
        forces_c = np.empty((ncom, nat, 3))
        scatter_committee_gradients(nbrs, pair_grad_c, forces_c)
    return Evaluation(
        energies=out.site_energy, densities=out.rho, forces=forces, virial=virial,
        forces_committee=forces_c,
    )  # fmt: skip
