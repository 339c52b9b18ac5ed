"""Per-element reference energies ``E0`` (eV/atom).

The model energy is ``sum_i E0[Z_i] + sum_k c_k B_k``.  ``E0`` is either given, taken from
isolated-atom configurations in the data, pre-fitted here by least squares of the energy
per atom against the composition, ``E/N ~ sum_Z (n_Z/N) E0[Z]`` (with one element the mean
energy per atom; ``e0.method: composition``), or fitted jointly with the coefficients
(``e0.method: fit``, see :mod:`aceal.fit.assembly` and
:func:`aceal.fit.solvers.profile_out`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from aceal.errors import AcealInputError

__all__ = ["fit_e0", "isolated_atom_e0", "reference_energy", "check_e0"]


def reference_energy(numbers: np.ndarray, e0: Mapping[str, float]) -> float:
    """``sum_i E0[Z_i]`` (eV) for atomic numbers ``numbers``."""
    z, counts = np.unique(np.asarray(numbers), return_counts=True)
    return float(sum(e0[chemical_symbols[int(zz)]] * int(n)
                     for zz, n in zip(z, counts, strict=True)))


def check_e0(e0: Mapping[str, float], elements: Sequence[str], where: str = "e0.values"
             ) -> dict[str, float]:
    """Validate given reference energies: every element present, known symbols, floats."""
    out = {}
    for el, v in e0.items():
        if el not in atomic_numbers:
            raise AcealInputError(f"{where}.{el}: unknown element")
        out[el] = float(v)
    missing = [el for el in elements if el not in out]
    if missing:
        raise AcealInputError(f"{where}: no reference energy for {', '.join(missing)}")
    return out


def fit_e0(numbers_list: Sequence[np.ndarray], energies: Sequence[float],
           elements: Sequence[str]) -> dict[str, float]:
    """Least-squares reference energies from energy per atom vs composition.

    Parameters
    ----------
    numbers_list
        Atomic numbers of each configuration.
    energies
        Total energies (eV), same order; configurations without energy must be left out.
    elements
        Chemical symbols to fit; an element that never occurs gets the minimum-norm value.

    Returns
    -------
    dict
        ``{symbol: E0}`` in eV/atom.
    """
    if len(energies) == 0:
        raise AcealInputError("e0: cannot fit reference energies without any energies")
    zs = [atomic_numbers[el] for el in elements]
    x = np.zeros((len(energies), len(zs)))
    for row, numbers in enumerate(numbers_list):
        numbers = np.asarray(numbers)
        for col, z in enumerate(zs):
            x[row, col] = np.count_nonzero(numbers == z) / len(numbers)
    y = np.array([e / len(n) for e, n in zip(energies, numbers_list, strict=True)])
    sol, *_ = np.linalg.lstsq(x, y, rcond=None)
    return {el: float(v) for el, v in zip(elements, sol, strict=True)}


def isolated_atom_e0(structures, energies: Sequence[float | None], elements: Sequence[str]
                     ) -> dict[str, float]:
    """Reference energies from single-atom configurations (one per element).

    Raises :class:`AcealInputError` if an element has no isolated-atom configuration.
    """
    found: dict[str, float] = {}
    for atoms, e in zip(structures, energies, strict=True):
        if len(atoms) == 1 and e is not None:
            found.setdefault(atoms.get_chemical_symbols()[0], float(e))
    missing = [el for el in elements if el not in found]
    if missing:
        raise AcealInputError(f"e0.method isolated: no single-atom configuration with an "
                              f"energy for {', '.join(missing)}")
    return {el: found[el] for el in elements}
