"""Crystal helpers shared by the property routines: structures, cells, relaxation."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator
from ase.data import atomic_numbers, reference_states
from ase.optimize import BFGS, FIRE, LBFGS

from aceal.errors import AcealInputError

#: cubic structures the property routines support
CUBIC = ("fcc", "bcc", "diamond", "sc")

#: nearest-neighbour distance / lattice constant for each cubic structure
NN_OVER_A = {
    "fcc": np.sqrt(0.5),
    "bcc": np.sqrt(3.0) / 2.0,
    "diamond": np.sqrt(3.0) / 4.0,
    "sc": 1.0,
}


def element_structure(element: str, structure: str | None = None) -> tuple[str, float]:
    """Ground-state cubic structure and tabulated lattice constant (Å) of an element.

    Parameters
    ----------
    element
        Chemical symbol.
    structure
        Override of the structure (``"fcc"``, ``"bcc"``, ``"diamond"``, ``"sc"``).

    Returns
    -------
    (structure, a_guess_A)
    """
    if element not in atomic_numbers:
        raise AcealInputError(f"unknown element {element!r}")
    ref = reference_states[atomic_numbers[element]] or {}
    sym = structure or ref.get("symmetry")
    if sym not in CUBIC:
        raise AcealInputError(
            f"element {element}: structure {sym!r} is not cubic; give one of {', '.join(CUBIC)}"
        )
    a = ref.get("a") if ref.get("symmetry") == sym else None
    if a is None:  # crude guess from the covalent radius
        from ase.data import covalent_radii

        a = 2.0 * covalent_radii[atomic_numbers[element]] / NN_OVER_A[sym]
    return sym, float(a)


def cubic_cell(element: str, structure: str, a: float) -> Atoms:
    """Conventional cubic cell (fcc 4, bcc 2, diamond 8, sc 1 atoms) at lattice constant a (Å)."""
    return bulk(element, structure, a=a, cubic=True)


def supercell(element: str, structure: str, a: float, size: int) -> Atoms:
    """``size``^3 repetition of the conventional cubic cell."""
    return cubic_cell(element, structure, a).repeat((size, size, size))


def relax_positions(
    atoms: Atoms, calc: Calculator, fmax: float = 0.01, steps: int = 500, optimizer: str = "LBFGS"
) -> bool:
    """Relax atomic positions at fixed cell in place; returns True if converged.

    Parameters
    ----------
    fmax
        Force convergence threshold (eV/Å).
    optimizer
        ``"LBFGS"`` (default; no dense Hessian, fine for large cells), ``"BFGS"``
        or ``"FIRE"``.
    """
    atoms.calc = calc
    opt_cls = {"BFGS": BFGS, "LBFGS": LBFGS, "FIRE": FIRE}[optimizer]
    opt = opt_cls(atoms, logfile=None)
    return bool(opt.run(fmax=fmax, steps=steps))


def energy_per_atom(element: str, structure: str, a: float, calc: Calculator) -> float:
    """Energy per atom (eV) of the perfect crystal at lattice constant a (Å)."""
    atoms = cubic_cell(element, structure, a)
    atoms.calc = calc
    return float(atoms.get_potential_energy()) / len(atoms)


def neighbour_shells(atoms: Atoms, index: int, shells: int = 3,
                     tolerance: float = 0.1) -> tuple[list[np.ndarray], float]:
    """Unit vectors from atom ``index`` to one atom of each of its first ``shells``
    neighbour shells, and the nearest-neighbour distance (Å).

    Distances within ``tolerance`` times the nearest-neighbour distance of each other
    form one shell (minimum image in periodic directions).
    """
    from ase.geometry import get_distances

    others = np.delete(np.arange(len(atoms)), index)
    vectors, distances = get_distances(atoms.positions[index], atoms.positions[others],
                                       cell=atoms.cell, pbc=atoms.pbc)
    vectors, distances = vectors[0], distances[0]
    order = np.argsort(distances, kind="stable")
    nearest = float(distances[order[0]])
    out: list[np.ndarray] = []
    last = -np.inf
    for i in order:
        if distances[i] > last + tolerance * nearest:
            out.append(vectors[i] / distances[i])
            last = distances[i]
            if len(out) == shells:
                break
    return out, nearest


def direction_name(u: np.ndarray) -> str:
    """Miller family of a direction in the cell's Cartesian frame, e.g. ``"<211>"``."""
    u = np.abs(np.asarray(u, float))
    small = u[u > 0.2 * u.max()].min()
    return "<" + "".join(str(int(round(x / small))) for x in sorted(u, reverse=True)) + ">"


def split_dumbbell(atoms: Atoms, index: int, direction: np.ndarray,
                   half_length: float) -> Atoms:
    """Copy of ``atoms`` with atom ``index`` split into a pair ``+-half_length`` (Å) along
    ``direction`` about its site (a self-interstitial dumbbell); the new atom is last."""
    u = np.asarray(direction, float) / np.linalg.norm(direction)
    out = atoms.copy()
    site = out.positions[index].copy()
    out.positions[index] = site + half_length * u
    out += Atoms(out[index].symbol, positions=[site - half_length * u])
    return out


#: dumbbell half-length / nearest-neighbour distance of a split-dumbbell start
DUMBBELL_HALF_LENGTH = 0.35
