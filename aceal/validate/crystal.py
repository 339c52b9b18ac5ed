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
