"""Bulk properties of cubic crystals: E-V curve, lattice constant, elastic constants."""

from __future__ import annotations

import warnings

import numpy as np
from ase import units
from ase.calculators.calculator import Calculator
from ase.eos import EquationOfState

from aceal.validate.crystal import cubic_cell, element_structure, relax_positions

__all__ = ["equation_of_state", "elastic_constants"]


def _eos_pass(element, structure, a_center, calc, strain, npoints):
    scales = np.linspace(1.0 - strain, 1.0 + strain, npoints)
    vols, ens = [], []
    for s in scales:
        atoms = cubic_cell(element, structure, a_center * s)
        atoms.calc = calc
        n = len(atoms)
        vols.append(atoms.get_volume() / n)
        ens.append(atoms.get_potential_energy() / n)
    vols, ens = np.array(vols), np.array(ens)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eos = EquationOfState(vols, ens, eos="birchmurnaghan")
        v0, e0, b = eos.fit()
    n_conv = len(cubic_cell(element, structure, 1.0))
    a0 = float((v0 * n_conv) ** (1.0 / 3.0))
    return a0, float(v0), float(e0), float(b), vols, ens


def equation_of_state(
    element: str,
    calc: Calculator,
    structure: str | None = None,
    a_guess: float | None = None,
    strain: float = 0.04,
    npoints: int = 9,
) -> dict:
    """Energy-volume curve and Birch-Murnaghan fit of a cubic crystal.

    Lattice constants from ``(1-strain) a`` to ``(1+strain) a`` are scanned; if the
    fitted minimum falls outside the middle half of the window, the scan is repeated
    around it (so a poor guess does not bias the fit).

    Parameters
    ----------
    element
        Chemical symbol.
    calc
        Any ASE calculator.
    structure
        ``"fcc"``, ``"bcc"``, ``"diamond"`` or ``"sc"`` (default: the element's
        ground state from :data:`ase.data.reference_states`).
    a_guess
        Starting lattice constant (Å); default the tabulated one.
    strain
        Half-width of the scan as a fraction of a.
    npoints
        Number of volumes.

    Returns
    -------
    dict
        ``a0_A`` (Å), ``v0_A3_per_atom`` (Å^3), ``e0_eV_per_atom`` (eV, cohesive energy
        with the calculator's zero), ``B_GPa`` (bulk modulus), ``structure``, and the
        scan ``volumes_A3_per_atom`` and ``energies_eV_per_atom``.
    """
    structure, a_tab = element_structure(element, structure)
    a = float(a_guess or a_tab)
    for _ in range(5):
        a0, v0, e0, b, vols, ens = _eos_pass(element, structure, a, calc, strain, npoints)
        if np.isfinite(a0) and abs(a0 / a - 1.0) < strain / 2.0:
            break
        if np.isfinite(a0) and abs(a0 / a - 1.0) < 3 * strain:
            a = a0  # re-centre on the fitted minimum
        else:  # fit outside the window: walk downhill by one window
            a *= (1.0 - 2 * strain) if ens[0] < ens[-1] else (1.0 + 2 * strain)
    return {
        "structure": structure,
        "a0_A": a0,
        "v0_A3_per_atom": v0,
        "e0_eV_per_atom": e0,
        "B_GPa": b / units.GPa,
        "volumes_A3_per_atom": vols.tolist(),
        "energies_eV_per_atom": ens.tolist(),
    }


def _strain_tensor(voigt_index: int, delta: float) -> np.ndarray:
    eps = np.zeros((3, 3))
    if voigt_index < 3:
        eps[voigt_index, voigt_index] = delta
    else:  # engineering shear strain gamma = delta
        i, j = {3: (1, 2), 4: (0, 2), 5: (0, 1)}[voigt_index]
        eps[i, j] = eps[j, i] = delta / 2.0
    return eps


def elastic_constants(
    element: str,
    calc: Calculator,
    a0: float | None = None,
    structure: str | None = None,
    delta: float = 0.005,
    relax_internal: bool | None = None,
    fmax: float = 1e-4,
) -> dict:
    """Cubic elastic constants C11, C12, C44 by central finite strains of the stress.

    Each of the six Voigt strains is applied with ``+delta`` and ``-delta`` to the
    conventional cubic cell at ``a0``; ``C[:, j] = (sigma(+) - sigma(-)) / (2 delta)``.
    Internal coordinates are relaxed at fixed strained cell when the strain produces
    forces (e.g. C44 of diamond); fcc/bcc need none by symmetry.

    Parameters
    ----------
    a0
        Lattice constant (Å); default from :func:`equation_of_state`.
    delta
        Strain amplitude (dimensionless; engineering strain for shears).
    relax_internal
        ``True``/``False`` forces internal relaxation on/off; ``None`` relaxes only
        when the largest force after straining exceeds ``fmax``.
    fmax
        Force threshold (eV/Å) for internal relaxation.

    Returns
    -------
    dict
        ``C11_GPa``, ``C12_GPa``, ``C44_GPa``, ``B_GPa`` = (C11 + 2 C12)/3,
        ``Cprime_GPa`` = (C11 - C12)/2, ``zener_anisotropy`` = 2 C44/(C11 - C12),
        ``a0_A`` used, and ``C_GPa`` the full 6x6 matrix (list of lists).
    """
    structure, _ = element_structure(element, structure)
    if a0 is None:
        a0 = equation_of_state(element, calc, structure)["a0_A"]
    ref = cubic_cell(element, structure, a0)
    c = np.zeros((6, 6))
    for j in range(6):
        stresses = []
        for sign in (1.0, -1.0):
            atoms = ref.copy()
            f = np.eye(3) + _strain_tensor(j, sign * delta)
            atoms.set_cell(ref.cell.array @ f.T, scale_atoms=True)
            atoms.calc = calc
            do_relax = relax_internal
            if do_relax is None:
                do_relax = bool(np.abs(atoms.get_forces()).max() > fmax)
            if do_relax:
                relax_positions(atoms, calc, fmax=fmax, steps=1000)
            stresses.append(atoms.get_stress(voigt=True))
        c[:, j] = (stresses[0] - stresses[1]) / (2.0 * delta) / units.GPa
    c11 = float(np.mean([c[0, 0], c[1, 1], c[2, 2]]))
    c12 = float(np.mean([c[0, 1], c[0, 2], c[1, 2], c[1, 0], c[2, 0], c[2, 1]]))
    c44 = float(np.mean([c[3, 3], c[4, 4], c[5, 5]]))
    return {
        "a0_A": float(a0),
        "C11_GPa": c11,
        "C12_GPa": c12,
        "C44_GPa": c44,
        "B_GPa": (c11 + 2.0 * c12) / 3.0,
        "Cprime_GPa": (c11 - c12) / 2.0,
        "zener_anisotropy": 2.0 * c44 / (c11 - c12) if c11 != c12 else float("nan"),
        "C_GPa": c.tolist(),
    }
