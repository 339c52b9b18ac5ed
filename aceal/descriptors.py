"""Basis-function values and design-matrix rows of a linear ACE basis.

:func:`design_rows` gives, per configuration, the linear map from coefficients ``c`` to the
model's energy, forces and stress: ``E = energy @ c + sum_i E0(Z_i)``,
``F = (forces @ c).reshape(-1, 3)``, ``stress = stress @ c`` (ASE Voigt order
xx yy zz yz xz xy, eV/Å³; ``None`` unless the cell is fully periodic).
:func:`per_atom_basis` gives ``B_k(i)``, the descriptors used for extrapolation grades,
entropy and diversity selection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
from ase import Atoms

from aceal.basis.tables import KernelTables, build_tables
from aceal.errors import AcealInputError
from aceal.evaluation import species_indices
from aceal.kernels.design import (
    ChannelTables,
    Configurations,
    DesignOutputs,
    FunctionTables,
    basis_values,
)
from aceal.kernels.design import design_rows as _design_rows_kernel
from aceal.kernels.evaluate import Neighbours
from aceal.kernels.neighbours import neighbour_list


@dataclass
class DesignRows:
    """Rows of one configuration (columns = basis functions)."""

    energy: np.ndarray  # (n_basis,) eV per unit coefficient
    forces: np.ndarray  # (3 * natoms, n_basis) eV/Å, atom-major (F_0x, F_0y, F_0z, F_1x, ...)
    stress: np.ndarray | None  # (6, n_basis) eV/Å³, None for non-periodic cells
    natoms: int
    numbers: np.ndarray


class DesignTables:
    """Kernel tables of a basis (unit coefficients) plus per-function channel lists, bundled
    for the kernels of :mod:`aceal.kernels.design`: ``tables.base``, :attr:`functions` and
    :attr:`channels`."""

    def __init__(self, basis) -> None:
        self.basis = basis
        self.elements = list(basis.elements)
        pot = basis.ctilde_potential(np.ones(len(basis)), merge=False)
        t: KernelTables = build_tables(pot)
        self.tables = t
        by_species = basis.functions_by_species()
        kmap = np.concatenate(
            [np.asarray(by_species.get(mu, []), dtype=np.int64) for mu in range(t.nelem)]
        )
        if kmap.size != t.nfunc:
            raise AcealInputError("basis and its C-tilde form disagree on the number of functions")
        self.col_r1 = kmap[t.r1_func]
        # higher-rank functions: runs of equal comb_func
        cf = t.comb_func
        starts = np.flatnonzero(np.r_[True, cf[1:] != cf[:-1]]) if cf.size else np.zeros(0, int)
        self.func_comb_off = np.r_[starts, cf.size].astype(np.int64)
        self.col_h = kmap[cf[starts]] if cf.size else np.zeros(0, dtype=np.int64)
        self.hf_off = np.searchsorted(starts, t.comb_off).astype(np.int64)
        nlm = (t.lmax + 1) ** 2
        fch_off, chans = [0], []
        for h in range(len(starts)):
            a0 = t.comb_aoff[self.func_comb_off[h]]
            a1 = t.comb_aoff[self.func_comb_off[h + 1]]
            ch = t.comb_aidx[a0:a1]
            rem = ch % nlm
            ell = np.floor(np.sqrt(rem + 0.5)).astype(np.int64)
            m = rem - ell * ell - ell
            pos = np.unique(ch - m + np.abs(m))  # the +|m| channel
            chans.append(pos)
            fch_off.append(fch_off[-1] + len(pos))
        chan = np.concatenate(chans) if chans else np.zeros(0, dtype=np.int64)
        mn, rem = chan // nlm, chan % nlm
        ell = np.floor(np.sqrt(rem + 0.5)).astype(np.int64)
        m = rem - ell * ell - ell
        self.fch_off = np.asarray(fch_off, dtype=np.int64)
        self.fch_chan = chan.astype(np.int64)
        self.fch_mu = (mn // t.nradmax).astype(np.int64)
        self.fch_nl = ((mn % t.nradmax) * (t.lmax + 1) + ell).astype(np.int64)
        self.fch_lm = (ell * (ell + 1) // 2 + m).astype(np.int64)
        self.fch_m = m.astype(np.int64)
        self.functions = FunctionTables(
            int(t.rankmax), t.r1_off, t.r1_idx, self.col_r1, self.hf_off, self.func_comb_off,
            self.col_h, t.comb_aoff, t.comb_aidx, t.comb_coef,
        )  # fmt: skip
        self.channels = ChannelTables(
            self.fch_off, self.fch_chan, self.fch_mu, self.fch_nl, self.fch_lm, self.fch_m
        )


def _neighbours(structures: Sequence[Atoms], elements, cutoff):
    firsts, js, ds, species, conf_off = [], [], [], [], [0]
    pair_off = 0
    for atoms in structures:
        if not np.all(np.isfinite(atoms.positions)):
            raise AcealInputError("a structure has non-finite positions")
        first, j, d, _ = neighbour_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)
        firsts.append(first[:-1] + pair_off)
        js.append(j + conf_off[-1])
        ds.append(d)
        species.append(species_indices(atoms.numbers, elements))
        pair_off += len(j)
        conf_off.append(conf_off[-1] + len(atoms))
    first = np.concatenate(firsts + [np.array([pair_off])]).astype(np.int64)
    return (
        first,
        np.concatenate(js).astype(np.int64),
        np.concatenate(ds) if ds else np.zeros((0, 3)),
        np.concatenate(species).astype(np.int64),
        np.asarray(conf_off, dtype=np.int64),
    )


def design_rows(
    basis_or_tables, structures: Sequence[Atoms], num_threads: int | None = None
) -> list[DesignRows]:
    """Energy, force and stress rows of every structure (see module docstring).

    ``basis_or_tables`` is an :class:`~aceal.basis.ACEBasis` or a prebuilt
    :class:`DesignTables` (reuse it across batches). Parallel over structures.
    """
    dt = basis_or_tables if isinstance(basis_or_tables, DesignTables) else DesignTables(
        basis_or_tables
    )
    structures = list(structures)
    if not structures:
        return []
    t = dt.tables
    nb = len(dt.basis)
    first, j, d, species, conf_off = _neighbours(structures, dt.elements, t.cutoff)
    nconf = len(structures)
    volume = np.array([a.get_volume() if a.pbc.all() else 0.0 for a in structures])
    natoms = np.diff(conf_off)
    npairs = np.array([first[conf_off[c + 1]] - first[conf_off[c]] for c in range(nconf)])
    order = np.argsort(-(npairs + natoms), kind="stable").astype(np.int64)
    res = DesignOutputs(
        energy=np.zeros((nconf, nb)),
        forces_t=np.zeros((nb, 3 * conf_off[-1])),
        stress=np.zeros((nconf, 6, nb)),
        overlap=np.full(nconf, -1, dtype=np.int64),
    )
    nthreads = numba.get_num_threads() if num_threads is None else int(num_threads)
    _design_rows_kernel(
        Configurations(conf_off, order, volume), Neighbours(first, j, d, species), t.base,
        dt.functions, dt.channels, res, max(1, nthreads),
    )  # fmt: skip
    energy, forces_t, stress, overlap = res
    bad = np.flatnonzero(overlap >= 0)
    if bad.size:
        raise AcealInputError(f"structure {int(bad[0])} has overlapping atoms")
    out = []
    for c, atoms in enumerate(structures):
        rows = slice(3 * conf_off[c], 3 * conf_off[c + 1])
        out.append(
            DesignRows(
                energy=energy[c],
                forces=forces_t[:, rows].T,
                stress=stress[c] if volume[c] > 0 else None,
                natoms=len(atoms),
                numbers=atoms.numbers.copy(),
            )
        )
    return out


def per_atom_basis(
    basis_or_tables, atoms: Atoms, num_threads: int | None = None
) -> np.ndarray:
    """Basis values ``B_k(i)``, shape ``(natoms, n_basis)`` (0 for other species' functions)."""
    dt = basis_or_tables if isinstance(basis_or_tables, DesignTables) else DesignTables(
        basis_or_tables
    )
    t = dt.tables
    first, j, d, species, _ = _neighbours([atoms], dt.elements, t.cutoff)
    out = np.zeros((len(atoms), len(dt.basis)))
    overlap = np.full(len(atoms), -1, dtype=np.int64)
    nthreads = numba.get_num_threads() if num_threads is None else int(num_threads)
    basis_values(
        Neighbours(first, j, d, species), t.base, dt.functions, out, overlap, max(1, nthreads)
    )
    if np.any(overlap >= 0):
        raise AcealInputError("the structure has overlapping atoms")
    return out
