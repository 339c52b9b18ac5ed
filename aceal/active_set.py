"""D-optimal active sets (MaxVol) and pacemaker's extrapolation grade gamma.

Pure numpy/scipy on plain descriptor arrays. It sits below the calculator (which grades
atoms with it through :mod:`aceal.grade`); :mod:`aceal.uncertainty` re-exports its names.

For one element, stack the per-atom descriptors (ACE basis values ``B_k(i)``) of all
training atoms into a tall matrix ``B`` of shape ``(n_atoms, n_features)``. The active set
``A`` is the square submatrix of ``n_features`` rows of largest ``|det|`` (D-optimality),
found by MaxVol (Goreinov, Tyrtyshnikov et al., "How to find a good submatrix", 2010).
Every row ``b`` can then be written ``b = c A`` with ``c = b A^{-1}``; the extrapolation
grade (Lysogorskiy et al. 2023, pacemaker) is

    gamma(b) = max_j |(b A^{-1})_j|.

MaxVol stops when every training row has ``|c_j| <= tol``, so gamma <= tol (1.01 by
default) on the training set; gamma > 1 means extrapolation, and pacemaker users collect
at gamma ~ 5 and stop at ~ 25. gamma is invariant to any invertible linear change of
the features (``B -> B T``), so descriptor scaling does not matter.

Rank-deficient data (fewer training atoms than features, or features that never vary,
as for a perfect crystal) has no square nonsingular active set. Then the descriptors
are projected on the ``r``-dimensional row space of the training matrix (singular values
above ``rcond * s_max``), the active set is the ``r`` MaxVol rows in that space, and

    gamma(b) = max( max_j |(b V (A V)^{-1})_j| , ||b - b V V^T|| / rho )

where ``V`` (n_features, r) spans the row space and ``rho`` is the smallest singular value
of ``A V``: a component outside everything seen in training is graded as if the training
data extended in that direction only as far as in its least explored direction (in the
full-rank case a displacement ``x`` along the weakest singular direction gives gamma of
order ``x / rho``). With full rank, ``V V^T = I`` and this is exactly pacemaker's formula.
It is a heuristic: strictly, any out-of-span component is unbounded extrapolation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from aceal.errors import AcealInputError, UnknownElementError

__all__ = [
    "ActiveSetInverse",
    "active_set_inverse",
    "build_active_set",
    "extrapolation_grade",
    "extrapolation_grade_by_element",
    "maxvol",
]


def maxvol(
    matrix: np.ndarray, tol: float = 1.01, max_iters: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Select ``n_cols`` rows of a tall matrix whose square submatrix has (near-)maximal volume.

    Starts from the rows chosen by a column-pivoted QR of ``matrix.T`` and swaps one row
    at a time (rank-1 update of the coefficients) while some ``|C_ij| > tol``; each swap
    multiplies ``|det|`` by ``|C_ij|``, so the iteration terminates.

    Parameters
    ----------
    matrix : ndarray, shape (n_rows, n_cols), n_rows >= n_cols
        Full column rank.
    tol : float
        Stop when all coefficients satisfy ``|C_ij| <= tol`` (>= 1).
    max_iters : int, optional
        Maximum number of swaps; default ``100 * n_cols``.

    Returns
    -------
    rows : ndarray of int, shape (n_cols,)
        Selected row indices; ``matrix[rows]`` is the dominant submatrix.
    coefficients : ndarray, shape (n_rows, n_cols)
        ``C = matrix @ inv(matrix[rows])``; ``C[rows]`` is the identity.

    Raises
    ------
    AcealInputError
        If the matrix is wider than tall, ``tol < 1``, or it is (numerically) rank deficient.
    """
    a = np.asarray(matrix, dtype=float)
    if a.ndim != 2 or a.shape[0] < a.shape[1] or a.shape[1] == 0:
        raise AcealInputError(f"maxvol needs a tall matrix (n_rows >= n_cols), got {a.shape}")
    if tol < 1.0:
        raise AcealInputError(f"maxvol tol must be >= 1, got {tol}")
    r = a.shape[1]
    _, rdiag, piv = scipy.linalg.qr(a.T, mode="economic", pivoting=True)
    diag = np.abs(np.diag(rdiag))
    if diag[-1] <= 1e-12 * diag[0]:
        raise AcealInputError(
            f"maxvol: matrix of shape {a.shape} is rank deficient; reduce it first "
            "(build_active_set does this)"
        )
    rows = piv[:r].copy()
    coeff = np.linalg.solve(a[rows].T, a.T).T
    max_iters = 100 * r if max_iters is None else int(max_iters)
    for it in range(max_iters):
        flat = int(np.argmax(np.abs(coeff)))
        i, j = divmod(flat, r)
        pivot = coeff[i, j]
        if abs(pivot) <= tol:
            break
        row_i = coeff[i].copy()
        row_i[j] -= 1.0
        coeff -= np.outer(coeff[:, j] / pivot, row_i)
        rows[j] = i
        if (it + 1) % 50 == 0:  # refresh to stop rounding errors accumulating
            coeff = np.linalg.solve(a[rows].T, a.T).T
    return rows, coeff


@dataclass(frozen=True)
class ActiveSetInverse:
    """What is needed to grade new atoms of one element against its active set.

    Attributes
    ----------
    matrix : ndarray, shape (n_features, n_active)
        ``A^{-1}`` for a full-rank square active set, else ``V (A V)^{-1}``.
    complement : ndarray, shape (n_features, n_features - n_active) or None
        Orthonormal basis of the directions never seen in training (None if full rank).
    residual_scale : float
        ``rho``: smallest singular value of the active set in its row space (feature units).
    """

    matrix: np.ndarray
    complement: np.ndarray | None = None
    residual_scale: float = 1.0


def _row_space(b: np.ndarray, rcond: float) -> np.ndarray:
    """Orthonormal basis (n_features, r) of the numerical row space of ``b``."""
    r_factor = scipy.linalg.qr(b, mode="r")[0] if b.shape[0] > b.shape[1] else b
    try:  # divide and conquer: ~5x faster on ~1000 features
        _, s, vt = scipy.linalg.svd(r_factor, full_matrices=False, lapack_driver="gesdd")
    except np.linalg.LinAlgError:  # gesdd did not converge: the robust QR iteration
        _, s, vt = scipy.linalg.svd(r_factor, full_matrices=False, lapack_driver="gesvd")
    if s[0] == 0.0:
        raise AcealInputError("all descriptors are zero: no active set")
    return vt[s > rcond * s[0]].T


def _maxvol_rows(b: np.ndarray, tol: float, max_iters: int | None, batch_size: int) -> np.ndarray:
    """MaxVol over a tall full-rank matrix, in batches of ``batch_size`` rows."""
    r = b.shape[1]
    if b.shape[0] == r:
        return np.arange(r)
    if b.shape[0] <= batch_size:
        return maxvol(b, tol, max_iters)[0]
    selected = np.arange(0)
    start = 0
    while start < b.shape[0]:
        stop = max(start + batch_size, r)
        candidates = np.concatenate([selected, np.arange(start, min(stop, b.shape[0]))])
        rows, _ = maxvol(b[candidates], tol, max_iters)
        selected = np.sort(candidates[rows])
        start = stop
    # the batches are each dominant; one last pass over all rows guarantees |c| <= tol
    coeff = b @ np.linalg.inv(b[selected])
    if np.abs(coeff).max() > tol:
        return maxvol(b, tol, max_iters)[0]
    return selected


def build_active_set(
    per_atom_descriptors_by_element: Mapping[int, np.ndarray],
    tol: float = 1.01,
    max_iters: int | None = None,
    rcond: float = 1e-8,
    batch_size: int = 100000,
    return_indices: bool = False,
) -> dict[int, np.ndarray] | tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """D-optimal active set per element.

    Parameters
    ----------
    per_atom_descriptors_by_element : mapping of int to ndarray (n_atoms_z, n_features)
        For each atomic number, the descriptors of all its training atoms.
    tol : float
        MaxVol tolerance: training atoms end with gamma <= tol.
    max_iters : int, optional
        Maximum MaxVol swaps per batch.
    rcond : float
        Singular values below ``rcond * s_max`` are treated as zero (rank deficiency: see
        the module docstring).
    batch_size : int
        Rows given to one MaxVol call; larger sets are swept batch by batch (the running
        active set plus the next batch), then checked against all rows.
    return_indices : bool
        Also return, per element, the indices of the chosen training atoms.

    Returns
    -------
    dict of int to ndarray (n_active, n_features)
        Active set rows per element; ``n_active = rank <= n_features``. With
        ``return_indices``, a second dict maps each element to the row indices.
    """
    active: dict[int, np.ndarray] = {}
    indices: dict[int, np.ndarray] = {}
    for z, desc in per_atom_descriptors_by_element.items():
        b = np.asarray(desc, dtype=float)
        if b.ndim != 2 or b.shape[0] == 0:
            raise AcealInputError(
                f"descriptors of element {z} must be a non-empty 2-D array, got {b.shape}"
            )
        if not np.isfinite(b).all():
            raise AcealInputError(f"descriptors of element {z} contain NaN or inf")
        v = _row_space(b, rcond)
        rows = _maxvol_rows(b @ v, tol, max_iters, batch_size)
        active[int(z)] = b[rows].copy()
        indices[int(z)] = np.asarray(rows, dtype=int)
    return (active, indices) if return_indices else active


def active_set_inverse(
    active_sets: Mapping[int, np.ndarray], rcond: float = 1e-12
) -> dict[int, ActiveSetInverse]:
    """Inverse of each element's active set (``A^{-1}``, or the rank-deficient form).

    Parameters
    ----------
    active_sets : mapping of int to ndarray (n_active, n_features)
        Output of :func:`build_active_set`.
    rcond : float
        Relative singular-value cutoff used to decide the rank. The rows were already
        chosen to be independent (with :func:`build_active_set`'s ``rcond``, relative to
        the whole training set), so this only rejects numerically singular sets; an active
        set's own conditioning is routinely worse than the training set's.
    """
    out: dict[int, ActiveSetInverse] = {}
    for z, a in active_sets.items():
        a = np.asarray(a, dtype=float)
        n_active, n_features = a.shape
        if n_active == n_features:
            s = np.linalg.svd(a, compute_uv=False)
            if s[-1] > rcond * s[0]:
                out[int(z)] = ActiveSetInverse(np.linalg.inv(a), None, float(s[-1]))
                continue
        _, s, vt = np.linalg.svd(a, full_matrices=True)
        rank = int((s > rcond * s[0]).sum())
        if rank < n_active:
            raise AcealInputError(
                f"active set of element {z} is singular ({n_active} rows, rank {rank})"
            )
        v = vt[:rank].T
        inverse = v @ np.linalg.inv(a @ v)
        complement = vt[rank:].T if rank < n_features else None
        out[int(z)] = ActiveSetInverse(inverse, complement, float(s[rank - 1]))
    return out


def extrapolation_grade(
    descriptors: np.ndarray, inverse: np.ndarray | ActiveSetInverse
) -> np.ndarray:
    """Extrapolation grade gamma of each atom (dimensionless).

    Parameters
    ----------
    descriptors : ndarray, shape (n_atoms, n_features)
        Per-atom descriptors of atoms of one element.
    inverse : ndarray (n_features, n_active) or ActiveSetInverse
        ``A^{-1}`` (pacemaker's ``.asi`` content) or the output of
        :func:`active_set_inverse` for that element.

    Returns
    -------
    ndarray, shape (n_atoms,)
        ``max_j |(B A^{-1})_j|``, plus the out-of-span term for rank-deficient sets.
    """
    b = np.atleast_2d(np.asarray(descriptors, dtype=float))
    if isinstance(inverse, ActiveSetInverse):
        gamma = np.abs(b @ inverse.matrix).max(axis=1)
        if inverse.complement is not None:
            residual = np.linalg.norm(b @ inverse.complement, axis=1) / inverse.residual_scale
            gamma = np.maximum(gamma, residual)
        return gamma
    return np.abs(b @ np.asarray(inverse, dtype=float)).max(axis=1)


def extrapolation_grade_by_element(
    numbers: np.ndarray,
    descriptors: np.ndarray,
    inverses: Mapping[int, np.ndarray | ActiveSetInverse],
) -> np.ndarray:
    """Per-atom gamma for a structure with several elements.

    Parameters
    ----------
    numbers : ndarray of int, shape (n_atoms,)
        Atomic numbers.
    descriptors : ndarray, shape (n_atoms, n_features)
        Per-atom descriptors (all elements share ``n_features`` here; pad if not).
    inverses : mapping of int to inverse
        Per-element output of :func:`active_set_inverse` (or raw ``A^{-1}`` arrays).

    Raises
    ------
    UnknownElementError
        If an atom's element has no active set.
    """
    numbers = np.asarray(numbers)
    b = np.asarray(descriptors, dtype=float)
    gamma = np.empty(len(numbers))
    for z in np.unique(numbers):
        if int(z) not in inverses:
            raise UnknownElementError(f"element Z={int(z)} has no active set")
        sel = numbers == z
        gamma[sel] = extrapolation_grade(b[sel], inverses[int(z)])
    return gamma
