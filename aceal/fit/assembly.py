"""Assembly: design rows and labels of configurations -> :class:`NormalEquations`.

Per configuration with ``N`` atoms, volume ``V`` (Å³) and weights ``w`` (see
:mod:`aceal.fit.weights`) the observations are

* energy per atom: row ``B_E / N``, target ``(E - sum_i E0[Z_i] - E_base) / N`` (eV/atom),
* forces: rows ``B_F`` (``3N``, atom-major), targets ``F - F_base`` (eV/Å),
* virial per atom: rows ``V B_S / N`` (6, Voigt), targets ``V (sigma - sigma_base) / N``
  (eV/atom), where ``sigma`` is the stress (eV/Å³, ASE sign) — only for fully periodic cells.

``E_base``/``F_base``/``sigma_base`` is an optional fixed baseline (the pair repulsion),
subtracted so that the linear part fits what the baseline does not describe.

Reference energies can be fitted jointly with the coefficients (``e0_columns``): the
elements listed get one extra column each, ``n_Z / N`` in the energy row and 0 in the
force and virial rows, and their ``E0`` is not subtracted from the target.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from ase import Atoms

from aceal.fit.data import Labels
from aceal.fit.e0 import reference_energy
from aceal.fit.normal_equations import NormalEquations
from aceal.fit.weights import Weights

__all__ = ["DesignRowsLike", "Observations", "observations", "assemble", "Baseline"]

#: ``baseline(atoms) -> (energy eV, forces (N,3) eV/Å, stress (6,) eV/Å³ or None)``
Baseline = Callable[[Atoms], tuple[float, np.ndarray, np.ndarray | None]]


class DesignRowsLike(Protocol):
    """What :func:`aceal.descriptors.design_rows` returns per configuration."""

    energy: np.ndarray           # (M,)
    forces: np.ndarray           # (3N, M)
    stress: np.ndarray | None    # (6, M), eV/Å³
    natoms: int


@dataclass
class Observations:
    """Rows, targets and weights of one configuration, per kind (``None`` if absent)."""

    rows: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    weights: dict[str, float]


def observations(atoms: Atoms, design: DesignRowsLike, labels: Labels, weights: Weights,
                 e0: Mapping[str, float], baseline: Baseline | None = None,
                 e0_columns: Sequence[str] = ()) -> Observations:
    """Fitting observations of one configuration (see module docstring).

    ``e0`` must cover the elements of ``atoms`` that are not in ``e0_columns``.
    """
    n = len(atoms)
    extra = len(e0_columns)
    w = weights.for_config(labels.config_type, labels.weight)
    base_e, base_f, base_s = (0.0, None, None)
    if baseline is not None:
        base_e, base_f, base_s = baseline(atoms)
    rows: dict[str, np.ndarray] = {}
    targets: dict[str, np.ndarray] = {}
    if labels.energy is not None and w["energy"] > 0:
        symbols = np.array(atoms.get_chemical_symbols())
        fixed = ~np.isin(symbols, list(e0_columns))
        e_ref = reference_energy(atoms.numbers[fixed], e0) + base_e
        row = np.asarray(design.energy, dtype=float) / n
        if extra:
            comp = np.array([np.count_nonzero(symbols == el) for el in e0_columns]) / n
            row = np.concatenate([row, comp])
        rows["energy"] = row[None, :]
        targets["energy"] = np.array([(labels.energy - e_ref) / n])
    if labels.forces is not None and w["forces"] > 0:
        f = labels.forces if base_f is None else labels.forces - base_f
        rows["forces"] = _pad(np.asarray(design.forces, dtype=float), extra)
        targets["forces"] = np.asarray(f, dtype=float).reshape(-1)
    if labels.stress is not None and design.stress is not None and w["virial"] > 0:
        vol_per_atom = atoms.get_volume() / n
        s = labels.stress if base_s is None else labels.stress - base_s
        rows["virial"] = _pad(np.asarray(design.stress, dtype=float) * vol_per_atom, extra)
        targets["virial"] = np.asarray(s, dtype=float) * vol_per_atom
    return Observations(rows, targets, {k: w[k] for k in rows})


def _pad(rows: np.ndarray, extra: int) -> np.ndarray:
    if not extra:
        return rows
    return np.concatenate([rows, np.zeros((rows.shape[0], extra))], axis=1)


def assemble(structures: Sequence[Atoms], labels: Sequence[Labels], weights: Weights,
             e0: Mapping[str, float], rows_fn: Callable[[list[Atoms]], list[DesignRowsLike]],
             n_basis: int, baseline: Baseline | None = None, chunk_size: int = 32,
             progress: bool | None = None, neq: NormalEquations | None = None,
             e0_columns: Sequence[str] = ()) -> NormalEquations:
    """Accumulate the normal equations of ``structures``.

    Parameters
    ----------
    structures, labels
        Configurations and their labels (same order).
    weights, e0, baseline
        See :func:`observations`.
    rows_fn
        ``rows_fn(list_of_atoms) -> list of design rows`` (e.g.
        ``lambda s: design_rows(basis, s)``); called on chunks of ``chunk_size``
        configurations so memory stays bounded.
    n_basis
        Number of basis functions.
    e0_columns
        Elements whose ``E0`` is fitted jointly: the equations then have
        ``n_basis + len(e0_columns)`` columns, the last ones the ``E0`` (eV/atom).
    progress
        Show a tqdm bar; ``None`` = only when stderr is a terminal.
    neq
        Existing normal equations to fold the data into (default: new ones).
    """
    from tqdm import tqdm

    if neq is None:
        neq = NormalEquations(n_basis + len(e0_columns))
    if progress is None:
        progress = sys.stderr.isatty()
    bar = tqdm(total=sum(len(a) for a in structures), unit="atom", desc="assembly",
               disable=not progress, file=sys.stderr)
    try:
        for start in range(0, len(structures), chunk_size):
            chunk = list(structures[start:start + chunk_size])
            designs = rows_fn(chunk)
            parts: dict[str, tuple[list, list, list]] = {}
            chunk_labels = labels[start:start + chunk_size]
            for atoms, design, lab in zip(chunk, designs, chunk_labels, strict=True):
                obs = observations(atoms, design, lab, weights, e0, baseline, e0_columns)
                for kind, r in obs.rows.items():
                    p = parts.setdefault(kind, ([], [], []))
                    p[0].append(r)
                    p[1].append(obs.targets[kind])
                    p[2].append(np.full(len(r), obs.weights[kind]))
                neq.count(1, len(atoms))
            for kind, (r, t, w) in parts.items():
                neq.add(kind, np.concatenate(r), np.concatenate(t), np.concatenate(w))
            bar.update(sum(len(a) for a in chunk))
    finally:
        bar.close()
    return neq
