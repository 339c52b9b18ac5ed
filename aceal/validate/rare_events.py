"""Force errors on rare-event atoms of a labelled trajectory (Liu, He, Mo 2023).

Low average force errors can hide large errors on the few atoms caught in the middle
of a hop. Given frames with reference forces and a model calculator, this module
reports per-atom

- the force-magnitude error ``|F_pred| - |F_ref|`` (eV/Å), and
- the force-direction angle ``arccos(F_pred . F_ref / (|F_pred| |F_ref|))`` (degrees),

on the rare-event atoms and on all atoms, as distributions and summary statistics.
Rare-event atoms are those displaced more than ``threshold`` x the nearest-neighbour
distance from their site in the first frame (minimum image), or user-given indices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator
from ase.geometry import find_mic

from aceal.errors import AcealInputError

__all__ = [
    "force_magnitude_error",
    "force_angle_deg",
    "rare_event_mask",
    "rare_event_metrics",
    "label_frames",
    "plot_rare_events",
]


def force_magnitude_error(f_pred: np.ndarray, f_ref: np.ndarray) -> np.ndarray:
    """Per-atom ``|F_pred| - |F_ref|`` (eV/Å) for arrays of shape (n, 3)."""
    return np.linalg.norm(f_pred, axis=-1) - np.linalg.norm(f_ref, axis=-1)


def force_angle_deg(f_pred: np.ndarray, f_ref: np.ndarray, min_norm: float = 1e-8) -> np.ndarray:
    """Per-atom angle (degrees, 0..180) between predicted and reference forces.

    NaN where either force is shorter than ``min_norm`` eV/Å (direction undefined).
    """
    npred = np.linalg.norm(f_pred, axis=-1)
    nref = np.linalg.norm(f_ref, axis=-1)
    ok = (npred > min_norm) & (nref > min_norm)
    ang = np.full(npred.shape, np.nan)
    # atan2(|a x b|, a . b): accurate also for nearly parallel forces (arccos is not)
    cross = np.linalg.norm(np.cross(f_pred[ok], f_ref[ok]), axis=-1)
    ang[ok] = np.degrees(np.arctan2(cross, (f_pred[ok] * f_ref[ok]).sum(axis=-1)))
    return ang


def nearest_neighbour_distance(atoms: Atoms) -> float:
    """Shortest interatomic distance (Å, minimum image) in a frame."""
    d = atoms.get_all_distances(mic=True)
    np.fill_diagonal(d, np.inf)
    return float(d.min())


def rare_event_mask(
    frames: Sequence[Atoms], threshold: float = 0.3, nn_distance: float | None = None
) -> np.ndarray:
    """Boolean (n_frames, n_atoms): atom displaced > threshold x d_NN from its first-frame site.

    Parameters
    ----------
    threshold
        Fraction of the nearest-neighbour distance.
    nn_distance
        d_NN in Å; default the shortest distance in the first frame.
    """
    first = frames[0]
    dnn = nearest_neighbour_distance(first) if nn_distance is None else float(nn_distance)
    mask = []
    for at in frames:
        if len(at) != len(first):
            raise AcealInputError("rare-event metrics need frames with the same atoms")
        d, dl = find_mic(at.positions - first.positions, first.cell, first.pbc)
        mask.append(dl > threshold * dnn)
    return np.array(mask)


def _ref_forces(at: Atoms, key: str | None) -> np.ndarray:
    if key is not None:
        if key not in at.arrays:
            raise AcealInputError(f"frame has no per-atom array {key!r} with reference forces")
        return np.asarray(at.arrays[key], float)
    if at.calc is not None and "forces" in getattr(at.calc, "results", {}):
        return np.asarray(at.calc.results["forces"], float)
    for k in ("forces", "REF_forces", "ref_forces"):
        if k in at.arrays:
            return np.asarray(at.arrays[k], float)
    raise AcealInputError(
        "frame has no reference forces (attach a SinglePointCalculator or arrays['forces'])"
    )


def label_frames(frames: Sequence[Atoms], calc: Calculator) -> list[Atoms]:
    """Copies of ``frames`` carrying ``calc``'s energy and forces as SinglePointCalculators."""
    out = []
    for at in frames:
        a = at.copy()
        a.calc = calc
        e, f = a.get_potential_energy(), a.get_forces()
        a.calc = SinglePointCalculator(a, energy=e, forces=f)
        out.append(a)
    return out


def _stats(mag: np.ndarray, ang: np.ndarray) -> dict:
    ang = ang[np.isfinite(ang)]
    n = int(mag.size)

    def q(x, p):
        return float(np.percentile(x, p)) if x.size else float("nan")

    return {
        "n_atoms": n,
        "mag_err_mean_eV_per_A": float(mag.mean()) if n else float("nan"),
        "mag_err_mae_eV_per_A": float(np.abs(mag).mean()) if n else float("nan"),
        "mag_err_rmse_eV_per_A": float(np.sqrt((mag**2).mean())) if n else float("nan"),
        "mag_err_max_abs_eV_per_A": float(np.abs(mag).max()) if n else float("nan"),
        "mag_err_p95_abs_eV_per_A": q(np.abs(mag), 95),
        "angle_mean_deg": float(ang.mean()) if ang.size else float("nan"),
        "angle_median_deg": q(ang, 50),
        "angle_p95_deg": q(ang, 95),
        "angle_max_deg": float(ang.max()) if ang.size else float("nan"),
    }


def rare_event_metrics(
    frames: Sequence[Atoms],
    calc: Calculator,
    indices: Sequence[int] | None = None,
    threshold: float = 0.3,
    nn_distance: float | None = None,
    forces_key: str | None = None,
    min_force: float = 0.05,
) -> dict:
    """Force-magnitude and force-angle errors of ``calc`` on rare-event atoms vs all atoms.

    Parameters
    ----------
    frames
        Trajectory; each frame carries reference forces (SinglePointCalculator
        results, or ``arrays[forces_key]``).
    calc
        Model calculator to assess.
    indices
        Rare-event atoms given by the user (used in every frame); default: the
        displacement criterion of :func:`rare_event_mask`.
    threshold, nn_distance
        See :func:`rare_event_mask`.
    min_force
        Angles are left out (NaN) where the reference or predicted force is below
        this (eV/Å): the direction of a near-zero force is noise.

    Returns
    -------
    dict
        ``all`` and ``rare``: summary statistics (:func:`_stats` keys, eV/Å and deg);
        ``distributions``: ``{"all"|"rare": {"mag_err_eV_per_A": [...],
        "angle_deg": [...]}}``; ``n_frames``, ``n_rare_atom_frames``.
    """
    if len(frames) == 0:
        raise AcealInputError("rare-event metrics need at least one frame")
    ref = [_ref_forces(at, forces_key) for at in frames]
    if indices is not None:
        mask = np.zeros((len(frames), len(frames[0])), bool)
        mask[:, list(indices)] = True
    else:
        mask = rare_event_mask(frames, threshold, nn_distance)
    mags, angs = [], []
    for at, fr in zip(frames, ref, strict=True):
        a = at.copy()
        a.calc = calc
        fp = a.get_forces()
        mags.append(force_magnitude_error(fp, fr))
        angs.append(force_angle_deg(fp, fr, min_norm=min_force))
    mags, angs = np.array(mags), np.array(angs)
    out = {
        "n_frames": len(frames),
        "n_rare_atom_frames": int(mask.sum()),
        "all": _stats(mags.ravel(), angs.ravel()),
        "rare": _stats(mags[mask], angs[mask]),
        "distributions": {
            "all": {"mag_err_eV_per_A": mags.ravel().tolist(), "angle_deg": angs.ravel().tolist()},
            "rare": {"mag_err_eV_per_A": mags[mask].tolist(), "angle_deg": angs[mask].tolist()},
        },
    }
    return out


def plot_rare_events(metrics: dict, path: str, title: str = "") -> str:
    """Histograms of force-magnitude error and force angle, all vs rare-event atoms (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for key, color in (("all", "tab:blue"), ("rare", "tab:red")):
        d = metrics["distributions"][key]
        mag = np.asarray(d["mag_err_eV_per_A"], float)
        ang = np.asarray(d["angle_deg"], float)
        ang = ang[np.isfinite(ang)]
        label = f"{key} atoms (n={mag.size})"
        if mag.size:
            axes[0].hist(mag, bins=30, density=True, alpha=0.5, color=color, label=label)
        if ang.size:
            axes[1].hist(ang, bins=30, density=True, alpha=0.5, color=color, label=label)
    axes[0].set_xlabel("|F_pred| - |F_ref| (eV/Å)")
    axes[1].set_xlabel("force angle (deg)")
    for ax in axes:
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return str(path)
