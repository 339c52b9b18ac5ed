"""pacemaker's active-set-inverse file (``.asi``), read by LAMMPS ``pair_style pace/extrapolation``.

Format (pyace ``save_active_inverse_set``; LAMMPS/ML-PACE ``ACEBEvaluator::load_active_set``):
an *uncompressed* numpy ``.npz`` archive with one float64 C-ordered array per element,
keyed by the chemical symbol. The array of element ``X`` is ``A^{-1}`` of its active set, of
shape ``(n_functions_X, n_functions_X)``: rows are pacemaker's B functions of central
element ``X`` in pacemaker's order (rank-1 functions first, then the sorted higher-rank
ones), columns the active-set atoms, so that ``γ_i = max_j |(b_i A^{-1})_j|`` where ``b_i``
are the projections of atom ``i``. LAMMPS requires one array for every element of the
potential and square arrays (or ``n_functions * ndensity`` for a non-linear grade; aceal
models are linear, so always ``n_functions``).

aceal's active sets are in aceal's basis; :class:`~aceal.formats.pace_bbasis.PaceBBasisMap`
converts them (``T @ A^{-1}``), which leaves γ unchanged. The ``.asi`` file only makes
sense together with the B-basis ``.yaml`` written by
:func:`~aceal.formats.pace_bbasis.write_pace_bbasis` from the same basis.

Rank deficiency: pacemaker assumes a square, invertible active set. aceal's active set of
an element whose training atoms do not span all its basis functions (fewer distinct
environments than functions, e.g. only perfect crystals) is rank deficient
(:class:`~aceal.active_set.ActiveSetInverse` with a ``complement``); such a set has no
``.asi`` form and :func:`asi_arrays` raises :class:`~aceal.errors.AcealInputError` naming
the element and its rank: add more varied training structures (or use a smaller basis), or
keep using aceal's own ``.asi.npz`` file and γ.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers

from aceal.errors import AcealInputError

__all__ = ["asi_arrays", "grader_inverses_from_asi", "read_asi", "write_asi"]


def write_asi(path: str | Path, inverses: Mapping[str, np.ndarray]) -> None:
    """Write per-element ``A^{-1}`` arrays (already in pacemaker's basis) to ``path``.

    Parameters
    ----------
    path
        Output file, conventionally ``<potential>.asi``.
    inverses
        Chemical symbol → square float array ``(n_functions, n_functions)``.
    """
    arrays = {}
    for el, a in inverses.items():
        if el not in atomic_numbers:
            raise AcealInputError(f"write_asi: {el!r} is not a chemical symbol")
        arr = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
        if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
            raise AcealInputError(
                f"write_asi: the active-set inverse of {el} must be square, got {arr.shape}"
            )
        if not np.isfinite(arr).all():
            raise AcealInputError(f"write_asi: the active-set inverse of {el} has NaN or inf")
        arrays[el] = arr
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)  # uncompressed, as pyace writes it (and LAMMPS' cnpy reads)
    tmp.replace(path)


def read_asi(path: str | Path) -> dict[str, np.ndarray]:
    """Read a pacemaker ``.asi`` file: chemical symbol → ``A^{-1}`` (pacemaker's basis)."""
    path = Path(path)
    if not path.is_file():
        raise AcealInputError(f"{path}: active-set file not found")
    if not zipfile.is_zipfile(path):
        raise AcealInputError(f"{path}: not a pacemaker .asi file (not a numpy .npz archive)")
    with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as data:
        out = {k: np.asarray(data[k], dtype=float) for k in data.files}
    for el, a in out.items():
        if el not in atomic_numbers:
            raise AcealInputError(f"{path}: key {el!r} is not a chemical symbol")
        if a.ndim != 2 or a.shape[0] != a.shape[1]:
            raise AcealInputError(f"{path}: the array of {el} is not square ({a.shape})")
    return out


def asi_arrays(grader) -> dict[str, np.ndarray]:
    """pacemaker ``.asi`` arrays of an :class:`~aceal.grade.ExtrapolationGrader`.

    Raises
    ------
    AcealInputError
        If an element of the basis has no active set, or an active set is rank deficient.
    """
    from aceal.formats.pace_bbasis import pace_bbasis_map

    basis = grader.basis
    bmap = pace_bbasis_map(basis)
    out = {}
    for el in bmap.elements:
        z = atomic_numbers[el]
        inv = grader.inverses.get(z)
        if inv is None:
            raise AcealInputError(
                f"no active set for {el}: LAMMPS pace/extrapolation needs one for every "
                "element of the potential"
            )
        n = len(bmap.columns[el])
        if inv.complement is not None or inv.matrix.shape != (n, n):
            rank = inv.matrix.shape[1]
            raise AcealInputError(
                f"the active set of {el} is rank deficient (rank {rank} of {n} basis "
                "functions): pacemaker's .asi format needs a square, full-rank active set. "
                "Train on more varied structures or use a smaller basis; aceal's own "
                ".asi.npz keeps the rank-deficient set"
            )
        out[el] = bmap.to_pace_inverse(el, inv.matrix)
    return out


def grader_inverses_from_asi(basis, path: str | Path) -> dict:
    """Per atomic number ``(A^-1, rho)`` of a ``.asi`` file written for ``basis``
    (pacemaker's basis converted back to aceal's; ``rho`` the smallest singular value of
    the active set), for :class:`~aceal.active_set.ActiveSetInverse`."""
    from aceal.formats.pace_bbasis import pace_bbasis_map

    arrays = read_asi(path)
    bmap = pace_bbasis_map(basis)
    unknown = sorted(set(arrays) - set(bmap.elements))
    if unknown:
        raise AcealInputError(f"{path}: elements {unknown} are not in the model")
    out = {}
    for el, a in arrays.items():
        n = len(bmap.columns[el])
        if a.shape != (n, n):
            raise AcealInputError(
                f"{path}: the array of {el} has shape {a.shape}, the model has {n} functions "
                f"centred on {el}"
            )
        inv = bmap.from_pace_inverse(el, a)
        s = np.linalg.svd(np.linalg.inv(inv), compute_uv=False)
        out[atomic_numbers[el]] = (inv, float(s[-1]))
    return out
