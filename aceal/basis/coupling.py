"""Rotation- and inversion-invariant couplings of products of atomic bases.

For a multiset of ``nu >= 2`` factors with angular momenta ``ls = (l_1..l_nu)`` the
invariants are

    B = sum_m C_m prod_t A[mu_t, n_t, l_t, m_t],     sum_t m_t = 0.

Construction
------------
1. *Generalised Clebsch-Gordan coefficients* for every coupling tree
   ``((l_1 l_2)L_1 l_3)L_2 ... l_nu) -> 0`` (all admissible intermediates ``L_1..L_{nu-2}``,
   the last one must equal ``l_nu``)::

       C_m = <l_1 m_1 l_2 m_2|L_1 M_1> <L_1 M_1 l_3 m_3|L_2 M_2> ...
             <L_{nu-2} M_{nu-2} l_nu m_nu|0 0>

   These vectors are orthonormal over the ``m``-tuples and span all SO(3) invariants.
2. *Symmetrisation*: the product of ``A``'s is symmetric under permutations of identical
   factors (same ``(mu, n, l)``), so each vector is averaged over those permutations.
3. *Independence*: a modified Gram-Schmidt pass over the symmetrised vectors, in the fixed
   order of the coupling trees (intermediates ``L`` lexicographically), keeps the vectors
   whose residual norm exceeds ``tol`` (relative); the number kept is checked against the
   numerical rank from an SVD.  Sign convention: the first coefficient (in ``m``-tuple
   order) with ``|C| > 1e-6 max|C|`` is positive.  The result is an orthonormal (in the
   coefficient space), deterministic basis of the symmetric invariants.

Parity choice
-------------
Only ``sum_t l_t`` even is used.  Then every invariant is also invariant under inversion
(``A_l -> (-1)^l A_l``) and *real*: with ``A[l,-m] = (-1)^m conj(A[l,m])`` and
``C_{-m} = (-1)^{sum l} C_m`` one gets ``conj(B) = B``.  (For odd ``sum l`` the SO(3)
invariants are purely imaginary pseudo-scalars; PACE's ``Re(...)`` would discard them.)

Half storage
------------
Because ``C_{-m} = C_m`` and ``Re prod A_{-m} = Re prod A_m`` (when ``sum m = 0``, even
``sum l``), the pair ``{m, -m}`` is stored once, as the tuple whose first non-zero ``m`` is
positive, with coefficient ``2 C_m``; the all-zero tuple keeps ``C_0``.  Then
``B = sum_{half} c_m Re(prod_t A_{m_t})`` exactly, which is what the kernel evaluates.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache

import numpy as np

from aceal.basis.angular import cg_block

__all__ = [
    "Coupling",
    "canonical_groups",
    "coupling_trees",
    "generalized_cg",
    "invariant_couplings",
    "m_tuples",
]

_REL_TOL = 1e-8  # relative residual norm below which a vector is linearly dependent
_ZERO_TOL = 1e-12  # relative size below which a stored coefficient is dropped


@dataclass(frozen=True)
class Coupling:
    """Independent invariant couplings of one ``(ls, groups)`` pattern.

    Attributes
    ----------
    ms_full : numpy.ndarray
        ``(K, nu)`` int array, all ``m``-tuples with ``sum m = 0``.
    coeffs_full : numpy.ndarray
        ``(nfunc, K)`` orthonormal rows ``C_m`` of the invariants.
    ms_half : numpy.ndarray
        ``(K', nu)`` the half set of tuples (first non-zero ``m`` positive, or all zero)
        on which at least one invariant has a non-zero coefficient.
    coeffs_half : numpy.ndarray
        ``(nfunc, K')`` coefficients for ``B = sum c Re(prod A)`` on ``ms_half``.
    """

    ms_full: np.ndarray
    coeffs_full: np.ndarray
    ms_half: np.ndarray
    coeffs_half: np.ndarray

    @property
    def nfunc(self) -> int:
        return self.coeffs_full.shape[0]


def canonical_groups(labels: tuple) -> tuple[int, ...]:
    """Relabel factor identities as ``0, 1, ...`` by first appearance.

    ``labels`` is any tuple of hashables (e.g. the ``(mu, n, l)`` factors); equal labels
    mark identical (exchangeable) factors.
    """
    seen: dict = {}
    return tuple(seen.setdefault(x, len(seen)) for x in labels)


@cache
def m_tuples(ls: tuple[int, ...]) -> np.ndarray:
    """All ``(m_1..m_nu)`` with ``|m_t| <= l_t`` and ``sum m_t = 0``, lexicographic order."""
    nu = len(ls)
    ranges = [range(-ll, ll + 1) for ll in ls[:-1]]
    rows = []
    for head in itertools.product(*ranges):
        last = -sum(head)
        if abs(last) <= ls[-1]:
            rows.append((*head, last))
    out = np.array(rows, dtype=np.int64).reshape(-1, nu)
    out.setflags(write=False)
    return out


@cache
def coupling_trees(ls: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """Intermediate angular momenta ``(L_1..L_{nu-2})`` of all trees coupling ``ls`` to 0.

    Sorted lexicographically.  For ``nu = 2`` the single tree is ``()`` if ``l_1 == l_2``.
    """
    nu = len(ls)
    if nu < 2:
        raise ValueError("coupling needs at least two factors")
    if nu == 2:
        return ((),) if ls[0] == ls[1] else ()
    out = []

    def rec(prev: int, t: int, acc: list[int]) -> None:
        # couple prev with ls[t] to L; the final L (before the last factor) must equal ls[-1]
        if t == nu - 1:
            if prev == ls[-1]:
                out.append(tuple(acc))
            return
        rest = sum(ls[t + 1 :])
        for big_l in range(abs(prev - ls[t]), prev + ls[t] + 1):
            if big_l > rest:  # cannot be coupled back to zero
                break
            acc.append(big_l)
            rec(big_l, t + 1, acc)
            acc.pop()

    rec(ls[0], 1, [])
    return tuple(out)


def generalized_cg(ls: tuple[int, ...], tree: tuple[int, ...], ms: np.ndarray) -> np.ndarray:
    """Generalised Clebsch-Gordan coefficients of one coupling tree on ``m``-tuples ``ms``."""
    nu = len(ls)
    big_ls = (*tree, 0)
    coef = np.ones(ms.shape[0])
    cum_m = ms[:, 0].copy()
    prev = ls[0]
    for t in range(1, nu):
        big_l = big_ls[t - 1]
        block = cg_block(prev, ls[t], big_l)
        ok = np.abs(cum_m) <= prev
        idx = np.clip(cum_m + prev, 0, 2 * prev)
        coef *= np.where(ok, block[idx, ms[:, t] + ls[t]], 0.0)
        cum_m = cum_m + ms[:, t]
        prev = big_l
    return coef


def _encode(ms: np.ndarray, ls: tuple[int, ...]) -> np.ndarray:
    code = np.zeros(ms.shape[0], dtype=np.int64)
    for t, ll in enumerate(ls):
        code = code * (2 * ll + 1) + (ms[:, t] + ll)
    return code


def _group_permutations(groups: tuple[int, ...]) -> list[tuple[int, ...]]:
    """All permutations of positions that only exchange positions with the same label."""
    nu = len(groups)
    blocks: dict[int, list[int]] = {}
    for pos, g in enumerate(groups):
        blocks.setdefault(g, []).append(pos)
    per_block = [list(itertools.permutations(pos)) for pos in blocks.values()]
    perms = []
    for choice in itertools.product(*per_block):
        perm = list(range(nu))
        for positions, image in zip(blocks.values(), choice, strict=True):
            for p, q in zip(positions, image, strict=True):
                perm[p] = q
        perms.append(tuple(perm))
    return perms


def _sign_fix(v: np.ndarray) -> np.ndarray:
    big = np.abs(v).max()
    first = int(np.argmax(np.abs(v) > 1e-6 * big))
    return -v if v[first] < 0 else v


@cache
def invariant_couplings(ls: tuple[int, ...], groups: tuple[int, ...]) -> Coupling:
    """Linearly independent, permutation-symmetric, real invariants for ``ls``.

    Parameters
    ----------
    ls : tuple of int
        Angular momenta of the ``nu >= 2`` factors.
    groups : tuple of int
        Identity labels of the factors (see :func:`canonical_groups`); factors with the same
        label are exchangeable and must have the same ``l``.

    Returns
    -------
    Coupling
        Possibly with zero functions (e.g. odd ``sum l``).
    """
    ls = tuple(int(v) for v in ls)
    groups = tuple(int(v) for v in groups)
    nu = len(ls)
    if len(groups) != nu:
        raise ValueError("ls and groups must have the same length")
    for a in range(nu):
        for b in range(nu):
            if groups[a] == groups[b] and ls[a] != ls[b]:
                raise ValueError("identical factors must have the same l")
    ms = m_tuples(ls)
    empty = Coupling(
        ms_full=ms,
        coeffs_full=np.zeros((0, ms.shape[0])),
        ms_half=np.zeros((0, nu), dtype=np.int64),
        coeffs_half=np.zeros((0, 0)),
    )
    trees = coupling_trees(ls)
    if sum(ls) % 2 == 1 or not trees:
        return empty
    vecs = np.array([generalized_cg(ls, tree, ms) for tree in trees])

    # symmetrise over permutations of identical factors
    perms = _group_permutations(groups)
    if len(perms) > 1:
        codes = _encode(ms, ls)
        order = np.argsort(codes)
        sym = np.zeros_like(vecs)
        for perm in perms:
            pcodes = _encode(ms[:, list(perm)], ls)
            idx = order[np.searchsorted(codes, pcodes, sorter=order)]
            sym += vecs[:, idx]
        vecs = sym / len(perms)

    # numerical rank and a deterministic orthonormal basis (greedy modified Gram-Schmidt)
    sv = np.linalg.svd(vecs, compute_uv=False)
    rank = int(np.sum(sv > _REL_TOL * sv[0])) if sv.size and sv[0] > 0 else 0
    basis: list[np.ndarray] = []
    for v in vecs:
        norm0 = np.linalg.norm(v)
        if norm0 <= _REL_TOL:
            continue
        w = v.copy()
        for _ in range(2):  # re-orthogonalise for stability
            for b in basis:
                w -= (b @ w) * b
        norm = np.linalg.norm(w)
        if norm > _REL_TOL * norm0:
            basis.append(w / norm)
    if len(basis) != rank:
        raise RuntimeError(
            f"coupling of ls={ls} groups={groups}: Gram-Schmidt kept {len(basis)} vectors "
            f"but the numerical rank is {rank}"
        )
    if not basis:
        return empty
    coeffs = np.array([_sign_fix(b) for b in basis])
    coeffs[np.abs(coeffs) < 1e-14] = 0.0

    # half storage: keep m-tuples whose first non-zero entry is positive (or all zero)
    nz = ms != 0
    first = np.argmax(nz, axis=1)
    lead = ms[np.arange(ms.shape[0]), first]
    zero_row = ~nz.any(axis=1)
    keep = (lead > 0) | zero_row
    factor = np.where(zero_row, 1.0, 2.0)
    half_c = coeffs[:, keep] * factor[keep]
    used = np.abs(half_c).max(axis=0) > _ZERO_TOL * np.abs(half_c).max()
    ms_half = np.ascontiguousarray(ms[keep][used])
    half_c = np.ascontiguousarray(half_c[:, used])
    for arr in (coeffs, ms_half, half_c):
        arr.setflags(write=False)
    return Coupling(ms_full=ms, coeffs_full=coeffs, ms_half=ms_half, coeffs_half=half_c)
