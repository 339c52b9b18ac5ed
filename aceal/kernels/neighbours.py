"""Linear-scaling neighbour lists (cell/bin lists) with numba kernels.

The public entry points are :func:`neighbour_list` (one-shot full list) and
:class:`NeighbourList` (reusable list with a Verlet skin for molecular dynamics).

Conventions
-----------
All lengths are in Å. For a pair (i, j, shift) the displacement vector is::

    d = positions[j] + shift @ cell - positions[i]

where ``positions`` are the positions *as given* (not wrapped) and ``shift`` is an
integer lattice vector that is zero along non-periodic directions. The list is full:
both i->j and j->i appear. The self pair (i == j with zero shift) is excluded, but
periodic images of an atom itself (i == j, non-zero shift) are included.

Algorithm
---------
An *effective cell* is built whose periodic rows are the given cell vectors and whose
non-periodic rows are orthonormal vectors spanning the complement of the periodic
subspace (so a zero or degenerate cell is fine when that direction is not periodic).
Atoms are wrapped into the cell along periodic directions, binned on a grid in
fractional coordinates whose bin heights (perpendicular to the bin faces) are at least
the cutoff where possible, and every atom searches the ``(2 r_k + 1)`` bins per
direction that can hold a neighbour, ``r_k = ceil(cutoff / bin_height_k)``. For cells
smaller than the cutoff this automatically visits the many periodic images needed.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from aceal.errors import AcealInputError

__all__ = ["NeighbourList", "neighbour_list"]

# relative tolerance on |sin| of the angle spanned by periodic cell vectors
_DEGENERATE_TOL = 1e-8
# absolute lower bound on the length of a periodic cell vector (Å)
_MIN_LENGTH = 1e-8
# bins per cutoff length: bin heights >= cutoff / _BIN_SUBDIV, searched +-_BIN_SUBDIV bins
_BIN_SUBDIV = 2


# --------------------------------------------------------------------------- kernels


@njit(cache=True)
def _grow_int(a, n):
    out = np.empty(max(2 * a.shape[0], n), dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True)
def _grow_rows(a, n):
    out = np.empty((max(2 * a.shape[0], n), a.shape[1]), dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


class BinGrid(NamedTuple):
    """Atoms binned on a grid in fractional coordinates of the effective cell (:func:`_build`)."""

    ws: np.ndarray  # (n, 3) float64 positions wrapped along periodic rows (Å), ws[k]: order[k]
    ecell: np.ndarray  # (3, 3) float64 effective cell (periodic rows equal the cell)
    n0: np.ndarray  # (n, 3) int64 wrap shifts per atom: positions = wrapped + n0 @ cell
    bins: np.ndarray  # (n, 3) int64 bin index of each atom along each direction
    order: np.ndarray  # (n,) int64 atoms sorted by linear bin index
    bin_start: np.ndarray  # (nbins_total + 1,) int64 CSR offsets of the bins into order
    nbins: np.ndarray  # (3,) int64 bins per direction
    reach: np.ndarray  # (3,) int64 search half-width in bins
    periodic: np.ndarray  # (3,) bool


class SortScratch(NamedTuple):
    """Scratch of :func:`_sort_segment`, each of length >= the longest segment."""

    key: np.ndarray  # int64
    perm: np.ndarray  # int64
    tj: np.ndarray  # int64
    ts: np.ndarray  # (m, 3) int64
    td: np.ndarray  # (m, 3) float64


@njit(cache=True)
def _search(positions, cell, grid, cutoff, capacity, max_candidates):
    """Cell-list search.

    Parameters
    ----------
    positions : (n, 3) float64, positions as given (Å).
    cell : (3, 3) float64, the given cell (Å); rows are lattice vectors.
    grid : :class:`BinGrid` of the atoms.
    cutoff : float, Å.
    capacity : int, initial guess for the number of pairs.
    max_candidates : int, upper bound on the atoms in the bins searched by one atom.
    """
    ws = grid.ws
    ecell = grid.ecell
    n0 = grid.n0
    bins = grid.bins
    order = grid.order
    bin_start = grid.bin_start
    nbins = grid.nbins
    reach = grid.reach
    periodic = grid.periodic
    n = positions.shape[0]
    c2 = cutoff * cutoff
    c2_pre = c2 * (1.0 + 1e-9) + 1e-300  # generous prefilter on wrapped coordinates
    first = np.zeros(n + 1, dtype=np.int64)
    cap = max(capacity, 16)
    jbuf = np.empty(cap, dtype=np.int64)
    sbuf = np.empty((cap, 3), dtype=np.int64)
    dbuf = np.empty((cap, 3), dtype=np.float64)
    # per-atom scratch: candidates (sorted index k, bin-image shift)
    ck = np.empty(max_candidates, dtype=np.int64)
    cs = np.empty((max_candidates, 3), dtype=np.int64)
    scratch = SortScratch(
        np.empty(max_candidates, dtype=np.int64),
        np.empty(max_candidates, dtype=np.int64),
        np.empty(max_candidates, dtype=np.int64),
        np.empty((max_candidates, 3), dtype=np.int64),
        np.empty((max_candidates, 3), dtype=np.float64),
    )
    inv = np.empty(n, dtype=np.int64)
    for k in range(n):
        inv[order[k]] = k
    npairs = 0
    nb0, nb1, nb2 = nbins[0], nbins[1], nbins[2]
    r0, r1, r2 = reach[0], reach[1], reach[2]
    p0, p1, p2 = periodic[0], periodic[1], periodic[2]
    for i in range(n):
        m = 0
        b0i, b1i, b2i = bins[i, 0], bins[i, 1], bins[i, 2]
        ki = inv[i]
        wi0, wi1, wi2 = ws[ki, 0], ws[ki, 1], ws[ki, 2]
        for o0 in range(-r0, r0 + 1):
            t0 = b0i + o0
            if p0:
                bb0 = t0 % nb0
                s0 = (t0 - bb0) // nb0
            else:
                if t0 < 0 or t0 >= nb0:
                    continue
                bb0 = t0
                s0 = 0
            for o1 in range(-r1, r1 + 1):
                t1 = b1i + o1
                if p1:
                    bb1 = t1 % nb1
                    s1 = (t1 - bb1) // nb1
                else:
                    if t1 < 0 or t1 >= nb1:
                        continue
                    bb1 = t1
                    s1 = 0
                for o2 in range(-r2, r2 + 1):
                    t2 = b2i + o2
                    if p2:
                        bb2 = t2 % nb2
                        s2 = (t2 - bb2) // nb2
                    else:
                        if t2 < 0 or t2 >= nb2:
                            continue
                        bb2 = t2
                        s2 = 0
                    off0 = s0 * ecell[0, 0] + s1 * ecell[1, 0] + s2 * ecell[2, 0] - wi0
                    off1 = s0 * ecell[0, 1] + s1 * ecell[1, 1] + s2 * ecell[2, 1] - wi1
                    off2 = s0 * ecell[0, 2] + s1 * ecell[1, 2] + s2 * ecell[2, 2] - wi2
                    bid = (bb0 * nb1 + bb1) * nb2 + bb2
                    kend = bin_start[bid + 1]
                    for k in range(bin_start[bid], kend):
                        x = ws[k, 0] + off0
                        y = ws[k, 1] + off1
                        z = ws[k, 2] + off2
                        if x * x + y * y + z * z < c2_pre:
                            ck[m] = k
                            cs[m, 0] = s0
                            cs[m, 1] = s1
                            cs[m, 2] = s2
                            m += 1
        # exact test on the positions as given; turn bin-image shifts into lattice shifts
        if npairs + m > jbuf.shape[0]:
            jbuf = _grow_int(jbuf, npairs + m)
            sbuf = _grow_rows(sbuf, npairs + m)
            dbuf = _grow_rows(dbuf, npairs + m)
        start = npairs
        for q in range(m):
            j = order[ck[q]]
            sh0 = cs[q, 0] - n0[j, 0] + n0[i, 0]
            sh1 = cs[q, 1] - n0[j, 1] + n0[i, 1]
            sh2 = cs[q, 2] - n0[j, 2] + n0[i, 2]
            if j == i and sh0 == 0 and sh1 == 0 and sh2 == 0:
                continue
            dx = (positions[j, 0] + sh0 * cell[0, 0] + sh1 * cell[1, 0]
                  + sh2 * cell[2, 0] - positions[i, 0])
            dy = (positions[j, 1] + sh0 * cell[0, 1] + sh1 * cell[1, 1]
                  + sh2 * cell[2, 1] - positions[i, 1])
            dz = (positions[j, 2] + sh0 * cell[0, 2] + sh1 * cell[1, 2]
                  + sh2 * cell[2, 2] - positions[i, 2])
            if dx * dx + dy * dy + dz * dz >= c2:
                continue
            jbuf[npairs] = j
            sbuf[npairs, 0] = sh0
            sbuf[npairs, 1] = sh1
            sbuf[npairs, 2] = sh2
            dbuf[npairs, 0] = dx
            dbuf[npairs, 1] = dy
            dbuf[npairs, 2] = dz
            npairs += 1
        _sort_segment(jbuf, sbuf, dbuf, start, npairs, scratch)
        first[i + 1] = npairs
    return first, jbuf[:npairs].copy(), dbuf[:npairs].copy(), sbuf[:npairs].copy()


@njit(cache=True)
def _sort_segment(jbuf, sbuf, dbuf, start, stop, scratch):
    """Sort rows start:stop of (j, shift, d) in place by (j, shift) lexicographically
    (``scratch``: a :class:`SortScratch` of length >= stop - start)."""
    key = scratch.key
    perm = scratch.perm
    tj = scratch.tj
    ts = scratch.ts
    td = scratch.td
    m = stop - start
    if m < 2:
        return
    lo0, lo1, lo2 = sbuf[start, 0], sbuf[start, 1], sbuf[start, 2]
    hi0, hi1, hi2 = lo0, lo1, lo2
    for p in range(start + 1, stop):
        lo0 = min(lo0, sbuf[p, 0])
        lo1 = min(lo1, sbuf[p, 1])
        lo2 = min(lo2, sbuf[p, 2])
        hi0 = max(hi0, sbuf[p, 0])
        hi1 = max(hi1, sbuf[p, 1])
        hi2 = max(hi2, sbuf[p, 2])
    w0 = hi0 - lo0 + 1
    w1 = hi1 - lo1 + 1
    w2 = hi2 - lo2 + 1
    sorted_already = True
    for p in range(m):
        q = start + p
        key[p] = ((jbuf[q] * w0 + (sbuf[q, 0] - lo0)) * w1 + (sbuf[q, 1] - lo1)) * w2 + (
            sbuf[q, 2] - lo2
        )
        perm[p] = p
        if p > 0 and key[p] < key[p - 1]:
            sorted_already = False
    if sorted_already:
        return
    if m <= 32:  # insertion sort: no allocation, fast for short lists
        for a in range(1, m):
            kv = key[a]
            pv = perm[a]
            b = a - 1
            while b >= 0 and key[b] > kv:
                key[b + 1] = key[b]
                perm[b + 1] = perm[b]
                b -= 1
            key[b + 1] = kv
            perm[b + 1] = pv
    else:
        perm[:m] = np.argsort(key[:m])
    for p in range(m):
        q = start + p
        tj[p] = jbuf[q]
        for c in range(3):
            ts[p, c] = sbuf[q, c]
            td[p, c] = dbuf[q, c]
    for p in range(m):
        q = perm[p]
        jbuf[start + p] = tj[q]
        for c in range(3):
            sbuf[start + p, c] = ts[q, c]
            dbuf[start + p, c] = td[q, c]


@njit(cache=True)
def _displacements(positions, cell, first, j, shift, d):
    """Fill ``d[p] = positions[j[p]] + shift[p] @ cell - positions[i]`` in place (Å)."""
    n = first.shape[0] - 1
    for i in range(n):
        for p in range(first[i], first[i + 1]):
            jj = j[p]
            s0, s1, s2 = shift[p, 0], shift[p, 1], shift[p, 2]
            for c in range(3):
                d[p, c] = (positions[jj, c] + s0 * cell[0, c] + s1 * cell[1, c]
                           + s2 * cell[2, c] - positions[i, c])


@njit(cache=True)
def _max_sq_displacement(a, b):
    out = 0.0
    for i in range(a.shape[0]):
        x = a[i, 0] - b[i, 0]
        y = a[i, 1] - b[i, 1]
        z = a[i, 2] - b[i, 2]
        r2 = x * x + y * y + z * z
        if r2 > out:
            out = r2
    return out


# ------------------------------------------------------------------- input handling


def _as_inputs(positions, cell, pbc) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pos = np.ascontiguousarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise AcealInputError(f"positions must have shape (n_atoms, 3), got {pos.shape}")
    if not np.all(np.isfinite(pos)):
        bad = np.flatnonzero(~np.all(np.isfinite(pos), axis=1))
        raise AcealInputError(
            f"positions contain NaN or inf (atom indices {bad[:10].tolist()}"
            f"{'...' if bad.size > 10 else ''})"
        )
    c = np.array(cell, dtype=np.float64)
    if c.shape == (3,):
        c = np.diag(c)
    if c.shape != (3, 3):
        raise AcealInputError(f"cell must have shape (3, 3) or (3,), got {c.shape}")
    if not np.all(np.isfinite(c)):
        raise AcealInputError("cell contains NaN or inf")
    c = np.ascontiguousarray(c)
    p = np.asarray(pbc, dtype=bool)
    if p.ndim == 0:
        p = np.repeat(p, 3)
    if p.shape != (3,):
        raise AcealInputError(f"pbc must be a bool or 3 bools, got shape {p.shape}")
    return pos, c, p.copy()


def _check_cutoff(cutoff) -> float:
    try:
        rc = float(cutoff)
    except (TypeError, ValueError) as exc:
        raise AcealInputError(f"cutoff must be a number (Å), got {cutoff!r}") from exc
    if not math.isfinite(rc) or rc <= 0.0:
        raise AcealInputError(f"cutoff must be a finite positive length (Å), got {cutoff!r}")
    return rc


def _effective_cell(cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """Periodic rows of ``cell`` completed by an orthonormal basis of their complement."""
    per = np.flatnonzero(pbc)
    names = "abc"
    for k in per:
        if np.linalg.norm(cell[k]) < _MIN_LENGTH:
            raise AcealInputError(
                f"cell vector {names[k]} is zero (|{names[k]}| < {_MIN_LENGTH} Å) "
                f"but direction {k} is periodic"
            )
    if per.size >= 2:
        vecs = cell[per]
        gram = vecs @ vecs.T
        vol = math.sqrt(max(np.linalg.det(gram), 0.0))
        if vol <= _DEGENERATE_TOL * float(np.prod(np.linalg.norm(vecs, axis=1))):
            raise AcealInputError(
                "periodic cell vectors "
                + ", ".join(names[k] for k in per)
                + " are linearly dependent (zero-volume/degenerate cell); "
                "give a non-degenerate cell or switch off pbc along those directions"
            )
    ecell = np.zeros((3, 3))
    ecell[per] = cell[per]
    nonper = np.flatnonzero(~pbc)
    if per.size == 0:
        ecell = np.eye(3)
    elif per.size == 1:
        a = cell[per[0]] / np.linalg.norm(cell[per[0]])
        e = np.zeros(3)
        e[np.argmin(np.abs(a))] = 1.0
        u = np.cross(a, e)
        u /= np.linalg.norm(u)
        v = np.cross(a, u)
        ecell[nonper[0]] = u
        ecell[nonper[1]] = v / np.linalg.norm(v)
    elif per.size == 2:
        nrm = np.cross(cell[per[0]], cell[per[1]])
        ecell[nonper[0]] = nrm / np.linalg.norm(nrm)
    return ecell


def _build(pos: np.ndarray, cell: np.ndarray, pbc: np.ndarray, rc: float):
    n = pos.shape[0]
    if n == 0:
        return (np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64),
                np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    ecell = _effective_cell(cell, pbc)
    # fractional coordinates in the effective cell: pos = frac @ ecell
    frac = np.linalg.solve(ecell.T, pos.T).T
    n0 = np.zeros((n, 3), dtype=np.int64)
    n0[:, pbc] = np.floor(frac[:, pbc]).astype(np.int64)
    frac = frac - n0
    wrapped = pos - n0.astype(np.float64) @ ecell

    det = abs(np.linalg.det(ecell))
    heights = np.array(
        [det / np.linalg.norm(np.cross(ecell[(k + 1) % 3], ecell[(k + 2) % 3])) for k in range(3)]
    )
    # extent along each direction, in fractional units (1 for periodic directions)
    lo = np.where(pbc, 0.0, frac.min(axis=0))
    span = np.where(pbc, 1.0, frac.max(axis=0) - lo)
    extent = span * heights  # Å, perpendicular
    nbins = np.maximum(1, np.floor(extent / (rc / _BIN_SUBDIV))).astype(np.int64)
    # keep the grid no larger than ~4 bins per atom (sparse systems, big vacuum)
    max_bins = 4 * n + 64
    while np.prod(nbins) > max_bins:
        nbins = np.maximum(1, nbins // 2)
    bin_height = extent / nbins
    with np.errstate(divide="ignore", invalid="ignore"):
        reach = np.where(bin_height > 0, np.ceil(rc / bin_height * (1.0 + 1e-12)), 0.0)
    reach = np.where(pbc, reach, np.minimum(reach, nbins - 1)).astype(np.int64)

    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(span > 0, (frac - lo) / np.where(span > 0, span, 1.0), 0.0)
    bins = np.clip(np.floor(u * nbins).astype(np.int64), 0, nbins - 1)
    lin = (bins[:, 0] * nbins[1] + bins[:, 1]) * nbins[2] + bins[:, 2]
    order = np.argsort(lin, kind="stable").astype(np.int64)
    nbt = int(np.prod(nbins))
    bin_start = np.zeros(nbt + 1, dtype=np.int64)
    np.cumsum(np.bincount(lin, minlength=nbt), out=bin_start[1:])

    # pair-count guess from the mean density (bounded to avoid silly allocations)
    vol = float(np.prod(np.maximum(extent, rc)))
    guess = int(min(n * (4.0 / 3.0 * math.pi * rc**3 * n / vol) * 1.1 + n, 5e7))
    counts = np.diff(bin_start)
    n_visit = int(np.prod(np.minimum(2 * reach + 1, np.where(pbc, 2 * reach + 1, nbins))))
    max_candidates = int(min(counts.max() * n_visit, n * np.prod(2 * reach + 1)))
    grid = BinGrid(
        np.ascontiguousarray(wrapped[order]), ecell, n0, bins, order, bin_start, nbins, reach,
        pbc,
    )  # fmt: skip
    first, j, d, shift = _search(pos, cell, grid, rc, guess, max_candidates)
    return first, j, d, shift


# ------------------------------------------------------------------------- public API


def neighbour_list(
    positions: np.ndarray, cell: np.ndarray, pbc, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Full neighbour list of all pairs closer than ``cutoff``.

    Parameters
    ----------
    positions : array_like, shape (n_atoms, 3)
        Cartesian positions in Å, as given (they may lie outside the cell).
    cell : array_like, shape (3, 3) or (3,)
        Lattice vectors as rows (Å); a length-3 array is taken as an orthorhombic cell.
        May be zero/degenerate along non-periodic directions.
    pbc : bool or sequence of 3 bool
        Periodicity along each cell vector.
    cutoff : float
        Cutoff radius in Å; pairs with ``|d| < cutoff`` are kept.

    Returns
    -------
    first : ndarray, shape (n_atoms + 1,), int64
        CSR offsets: the pairs of atom ``i`` are ``first[i]:first[i+1]``.
    j : ndarray, shape (n_pairs,), int64
        Neighbour indices.
    d : ndarray, shape (n_pairs, 3), float64
        Displacements ``positions[j] + shift @ cell - positions[i]`` in Å.
    shift : ndarray, shape (n_pairs, 3), int64
        Integer lattice shifts (zero along non-periodic directions).

    Pairs of each atom are sorted by ``j`` and then lexicographically by ``shift``.
    Both i->j and j->i are listed; the self pair (``i == j``, zero shift) is not.

    Raises
    ------
    AcealInputError
        Non-finite positions or cell, a non-positive cutoff, or a zero/degenerate cell
        vector along a periodic direction.
    """
    rc = _check_cutoff(cutoff)
    pos, c, p = _as_inputs(positions, cell, pbc)
    return _build(pos, c, p, rc)


class NeighbourList:
    """Reusable neighbour list with a Verlet skin, for molecular dynamics.

    The list holds all pairs within ``cutoff + skin`` (Å). :meth:`update` rebuilds it only
    when some atom has moved more than ``skin / 2`` since the last build, or when the
    cell, pbc, atom count or atomic numbers changed; otherwise only the displacement
    vectors ``d`` of the stored pairs are recomputed. Callers must filter pairs by their
    own cutoff (``|d| < cutoff``).

    Parameters
    ----------
    cutoff : float
        Interaction cutoff in Å.
    skin : float, optional
        Verlet skin in Å (default 0.3). ``skin = 0`` rebuilds on any motion.

    Attributes
    ----------
    first, j, d, shift : ndarray
        As returned by :func:`neighbour_list` for the cutoff ``cutoff + skin``; ``d`` is
        up to date with the positions of the last :meth:`update`.
    n_builds : int
        Number of full rebuilds so far.
    """

    def __init__(self, cutoff: float, skin: float = 0.3):
        self.cutoff = _check_cutoff(cutoff)
        try:
            skin = float(skin)
        except (TypeError, ValueError) as exc:
            raise AcealInputError(f"skin must be a number (Å), got {skin!r}") from exc
        if not math.isfinite(skin) or skin < 0.0:
            raise AcealInputError(f"skin must be a finite non-negative length (Å), got {skin}")
        self.skin = skin
        self.n_builds = 0
        self.first: np.ndarray | None = None
        self.j: np.ndarray | None = None
        self.d: np.ndarray | None = None
        self.shift: np.ndarray | None = None
        self._pos: np.ndarray | None = None
        self._cell: np.ndarray | None = None
        self._pbc: np.ndarray | None = None
        self._numbers: np.ndarray | None = None

    def _needs_rebuild(self, pos, cell, pbc, numbers) -> bool:
        if self._pos is None or self._pos.shape != pos.shape:
            return True
        if not (np.array_equal(cell, self._cell) and np.array_equal(pbc, self._pbc)):
            return True
        if (numbers is None) != (self._numbers is None):
            return True
        if numbers is not None and not np.array_equal(numbers, self._numbers):
            return True
        if pos.shape[0] == 0:
            return False
        return _max_sq_displacement(pos, self._pos) > (0.5 * self.skin) ** 2

    def update(self, positions: np.ndarray, cell: np.ndarray, pbc, numbers=None) -> bool:
        """Bring the list up to date with new positions (Å) / cell (Å) / pbc / numbers.

        Returns
        -------
        bool
            True if the list was rebuilt, False if only ``d`` was recomputed.
        """
        pos, c, p = _as_inputs(positions, cell, pbc)
        nums = None if numbers is None else np.array(numbers, dtype=np.int64).ravel()
        if nums is not None and nums.shape[0] != pos.shape[0]:
            raise AcealInputError(
                f"numbers has {nums.shape[0]} entries but there are {pos.shape[0]} atoms"
            )
        if self._needs_rebuild(pos, c, p, nums):
            self.first, self.j, self.d, self.shift = _build(pos, c, p, self.cutoff + self.skin)
            self._pos = pos.copy()
            self._cell = c.copy()
            self._pbc = p.copy()
            self._numbers = nums
            self.n_builds += 1
            return True
        _displacements(pos, c, self.first, self.j, self.shift, self.d)
        return False
