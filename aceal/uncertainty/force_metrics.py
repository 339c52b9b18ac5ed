"""Force errors resolved by magnitude and direction, on rare-event atoms vs all atoms.

Liu, He and Mo (2023) showed that a small force RMSE over a test set hides large errors
on atoms that are migrating (vacancy, interstitial hops), and proposed two per-atom
metrics, reported as distributions rather than averages:

* force-magnitude error ``|F_pred| - |F_ref|`` (eV/Å, signed: > 0 means too strong);
* force-direction angle ``arccos(F_pred . F_ref / (|F_pred| |F_ref|))`` (degrees, 0 to 180).

The angle is undefined when either force is (nearly) zero; such atoms get ``NaN`` in the
distribution, are left out of the angle statistics and are counted in ``n_undefined``.
The angle is computed as ``atan2(|F_pred x F_ref|, F_pred . F_ref)``: the same value, but
exact for parallel forces (no ``NaN`` or 1e-7 degree rounding residue from ``arccos``).

Several frames are handled by concatenating their per-atom arrays (and offsetting or
concatenating the rare-event masks) before calling :func:`rare_event_force_metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aceal.errors import AcealInputError

__all__ = [
    "ErrorStats",
    "ForceErrorDistribution",
    "RareEventForceMetrics",
    "force_direction_angle",
    "force_magnitude_error",
    "rare_event_force_metrics",
    "summarize_errors",
]


def _check_forces(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=float)
    r = np.asarray(ref, dtype=float)
    if p.ndim != 2 or p.shape[1] != 3 or p.shape != r.shape:
        raise AcealInputError(
            f"forces must both have shape (n_atoms, 3); got {p.shape} and {r.shape}"
        )
    return p, r


def force_magnitude_error(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per-atom force-magnitude error ``|F_pred| - |F_ref|`` (eV/Å), shape (n_atoms,)."""
    p, r = _check_forces(pred, ref)
    return np.linalg.norm(p, axis=1) - np.linalg.norm(r, axis=1)


def force_direction_angle(pred: np.ndarray, ref: np.ndarray, min_force: float = 1e-6) -> np.ndarray:
    """Per-atom angle (degrees) between predicted and reference forces, shape (n_atoms,).

    Parameters
    ----------
    pred, ref : ndarray, shape (n_atoms, 3)
        Predicted and reference forces (eV/Å).
    min_force : float
        Below this magnitude (eV/Å) a force has no direction: the angle is ``NaN``.
    """
    p, r = _check_forces(pred, ref)
    np_ = np.linalg.norm(p, axis=1)
    nr = np.linalg.norm(r, axis=1)
    defined = (np_ >= min_force) & (nr >= min_force)
    ang = np.full(p.shape[0], np.nan)
    # atan2(|p x r|, p . r) equals arccos of the cosine but stays accurate for nearly
    # (anti)parallel forces, where arccos loses ~1e-7 deg to rounding
    cross = np.linalg.norm(np.cross(p[defined], r[defined]), axis=1)
    dot = np.einsum("ij,ij->i", p[defined], r[defined])
    ang[defined] = np.degrees(np.arctan2(cross, dot))
    return ang


@dataclass(frozen=True)
class ErrorStats:
    """Summary of an error distribution; ``NaN`` entries are ignored.

    Attributes
    ----------
    n : int
        Number of finite values used.
    n_undefined : int
        Number of ``NaN`` values left out (e.g. angles of zero forces).
    mean : float
        Mean of the signed values.
    mae : float
        Mean absolute value.
    rmse : float
        Root mean square.
    p50, p95, max : float
        50th and 95th percentiles and maximum of the absolute values.
    """

    n: int
    n_undefined: int
    mean: float
    mae: float
    rmse: float
    p50: float
    p95: float
    max: float

    def as_dict(self) -> dict[str, float]:
        """Plain dictionary (for JSON reports)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def summarize_errors(values: np.ndarray) -> ErrorStats:
    """Summary statistics of an error distribution (same units as ``values``)."""
    v = np.asarray(values, dtype=float).ravel()
    finite = v[np.isfinite(v)]
    n_undefined = int(v.size - finite.size)
    if finite.size == 0:
        nan = float("nan")
        return ErrorStats(0, n_undefined, nan, nan, nan, nan, nan, nan)
    a = np.abs(finite)
    return ErrorStats(
        n=int(finite.size),
        n_undefined=n_undefined,
        mean=float(finite.mean()),
        mae=float(a.mean()),
        rmse=float(np.sqrt(np.mean(finite**2))),
        p50=float(np.percentile(a, 50)),
        p95=float(np.percentile(a, 95)),
        max=float(a.max()),
    )


@dataclass(frozen=True)
class ForceErrorDistribution:
    """Per-atom force-magnitude errors (eV/Å) and angles (degrees) of a group of atoms."""

    magnitude_error: np.ndarray
    angle: np.ndarray
    magnitude_stats: ErrorStats
    angle_stats: ErrorStats

    @classmethod
    def from_arrays(cls, magnitude_error: np.ndarray, angle: np.ndarray) -> ForceErrorDistribution:
        """Build the distribution and its summaries from per-atom arrays."""
        return cls(
            magnitude_error, angle, summarize_errors(magnitude_error), summarize_errors(angle)
        )


@dataclass(frozen=True)
class RareEventForceMetrics:
    """Liu-He-Mo force metrics for rare-event atoms, the other atoms, and all atoms."""

    rare: ForceErrorDistribution
    other: ForceErrorDistribution
    all: ForceErrorDistribution

    def as_dict(self) -> dict[str, dict[str, dict[str, float]]]:
        """Summary statistics only, nested as group -> metric -> statistic."""
        return {
            group: {
                "magnitude_error": getattr(self, group).magnitude_stats.as_dict(),
                "angle": getattr(self, group).angle_stats.as_dict(),
            }
            for group in ("rare", "other", "all")
        }


def rare_event_force_metrics(
    pred: np.ndarray,
    ref: np.ndarray,
    rare_atoms: np.ndarray | Sequence[int] | None = None,
    min_force: float = 1e-6,
) -> RareEventForceMetrics:
    """Force-magnitude and direction errors for rare-event atoms vs all atoms.

    Parameters
    ----------
    pred, ref : ndarray, shape (n_atoms, 3)
        Predicted and reference forces (eV/Å).
    rare_atoms : boolean mask of shape (n_atoms,) or sequence of indices, optional
        Atoms in a rare event (e.g. ``RareEventMonitor.flagged_atoms()``). None: no atom.
    min_force : float
        Forces smaller than this (eV/Å) have no direction (angle ``NaN``).

    Returns
    -------
    RareEventForceMetrics
        Distributions and summaries for the ``rare``, ``other`` and ``all`` groups.
    """
    p, r = _check_forces(pred, ref)
    n = p.shape[0]
    mask = np.zeros(n, dtype=bool)
    if rare_atoms is not None:
        sel = np.asarray(rare_atoms)
        if sel.dtype == bool:
            if sel.shape != (n,):
                raise AcealInputError(f"rare_atoms mask has shape {sel.shape}, expected ({n},)")
            mask = sel.copy()
        elif sel.size:
            if sel.min() < -n or sel.max() >= n:
                raise AcealInputError(f"rare_atoms index out of range for {n} atoms")
            mask[sel.astype(int)] = True
    mag = force_magnitude_error(p, r)
    ang = force_direction_angle(p, r, min_force)
    return RareEventForceMetrics(
        rare=ForceErrorDistribution.from_arrays(mag[mask], ang[mask]),
        other=ForceErrorDistribution.from_arrays(mag[~mask], ang[~mask]),
        all=ForceErrorDistribution.from_arrays(mag, ang),
    )
