"""Extrapolation grade γ of a linear ACE model (pacemaker's D-optimality criterion).

The active set of each element is chosen by MaxVol among the training atoms' basis
vectors ``B(i)`` (only the functions centred on that element). For a new atom,
``γ_i = max_j |(B(i) A^{-1})_j|``: γ <= 1 means interpolation, and pacemaker's users
collect configurations above ~5 and stop MD above ~25.

Below the calculator in the layer order (``ACECalculator(active_set=...)`` loads an
:class:`ExtrapolationGrader`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from aceal.active_set import (
    ActiveSetInverse,
    active_set_inverse,
    build_active_set,
    extrapolation_grade,
)
from aceal.descriptors import DesignTables, per_atom_basis
from aceal.errors import AcealInputError


class ExtrapolationGrader:
    """Grades atoms against a model's training set.

    Parameters
    ----------
    basis
        The model's :class:`~aceal.basis.ACEBasis`.
    inverses
        Per atomic number, the :class:`ActiveSetInverse` of that element's active set
        (features = the basis functions centred on that element).
    """

    def __init__(self, basis, inverses: dict[int, ActiveSetInverse]) -> None:
        self.basis = basis
        self.inverses = dict(inverses)
        self._tables: DesignTables | None = None
        self._columns = {
            atomic_numbers[el]: np.flatnonzero(basis.species == mu)
            for mu, el in enumerate(basis.elements)
        }

    @property
    def tables(self) -> DesignTables:
        if self._tables is None:
            self._tables = DesignTables(self.basis)
        return self._tables

    @classmethod
    def from_training(
        cls, basis, structures: Sequence[Atoms], tol: float = 1.01, batch_size: int = 100000
    ) -> ExtrapolationGrader:
        """Choose active sets by MaxVol over all atoms of ``structures``."""
        self = cls(basis, {})
        per_element: dict[int, list[np.ndarray]] = {}
        for atoms in structures:
            b = per_atom_basis(self.tables, atoms)
            for z, cols in self._columns.items():
                mask = atoms.numbers == z
                if mask.any():
                    per_element.setdefault(z, []).append(b[np.ix_(mask, cols)])
        if not per_element:
            raise AcealInputError("no training atoms to build an active set from")
        rows = {z: np.vstack(v) for z, v in per_element.items()}
        active = build_active_set(rows, tol=tol, batch_size=batch_size)
        self.inverses = {}
        for z, inv in active_set_inverse(active).items():
            if inv.complement is not None:
                # components outside the active set's span that the training atoms already
                # have are numerical noise of the rank cut: measure in units of the largest
                seen = float(np.linalg.norm(rows[z] @ inv.complement, axis=1).max())
                inv = replace(inv, residual_scale=max(inv.residual_scale, seen))
            self.inverses[z] = inv
        return self

    def __call__(self, atoms: Atoms) -> np.ndarray:
        """Per-atom γ (dimensionless); atoms of an element without active set get inf."""
        b = per_atom_basis(self.tables, atoms)
        gamma = np.full(len(atoms), np.inf)
        for z, inv in self.inverses.items():
            mask = atoms.numbers == z
            if mask.any():
                gamma[mask] = extrapolation_grade(b[np.ix_(mask, self._columns[z])], inv)
        return gamma

    def save(self, path: str | Path) -> None:
        """Write the active-set inverses to ``path``.

        ``*.asi``: pacemaker's active-set-inverse file for LAMMPS ``pair_style
        pace/extrapolation``, in the basis of the B-basis ``.yaml`` that
        :func:`aceal.formats.pace_bbasis.write_pace_bbasis` writes for this model (full-rank
        active sets only, see :mod:`aceal.formats.asi`). Any other name (conventionally
        ``*.asi.npz``): aceal's own file, which also keeps rank-deficient sets.
        """
        if Path(path).suffix == ".asi":
            from aceal.formats.asi import asi_arrays, write_asi

            write_asi(path, asi_arrays(self))
            return
        arrays = {}
        for z, inv in self.inverses.items():
            arrays[f"matrix_{z}"] = inv.matrix
            arrays[f"scale_{z}"] = np.array(inv.residual_scale)
            if inv.complement is not None:
                arrays[f"complement_{z}"] = inv.complement
        np.savez(path, **arrays)

    @classmethod
    def load(cls, basis, path: str | Path) -> ExtrapolationGrader:
        """Read :meth:`save`'s file: aceal's ``.asi.npz`` or a pacemaker ``.asi`` written
        for this basis."""
        path = Path(path)
        if not path.is_file():
            raise AcealInputError(f"{path}: active-set file not found")
        if path.suffix == ".asi":
            from aceal.formats.asi import grader_inverses_from_asi

            return cls(basis, {z: ActiveSetInverse(inv, None, rho) for z, (inv, rho)
                               in grader_inverses_from_asi(basis, path).items()})
        with np.load(path) as data:
            zs = sorted({int(k.split("_")[1]) for k in data.files if k.startswith("matrix_")})
            inverses = {
                z: ActiveSetInverse(
                    data[f"matrix_{z}"],
                    data[f"complement_{z}"] if f"complement_{z}" in data.files else None,
                    float(data[f"scale_{z}"]),
                )
                for z in zs
            }
        grader = cls(basis, inverses)
        for z, inv in inverses.items():
            if inv.matrix.shape[0] != len(grader._columns.get(z, ())):
                raise AcealInputError(f"{path}: active set does not match the model's basis")
        return grader
