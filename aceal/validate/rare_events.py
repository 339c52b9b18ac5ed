"""Force errors on rare-event atoms of a labelled trajectory (Liu, He, Mo 2023).

Low average force errors can hide large errors on the few atoms caught in the middle
of a hop. Given frames with reference forces and a model calculator, this module
reports per-atom

- the force-magnitude error ``|F_pred| - |F_ref|`` (eV/Å), and
- the force-direction angle ``arccos(F_pred . F_ref / (|F_pred| |F_ref|))`` (degrees),

on the rare-event atoms and on all atoms, as distributions and summary statistics.
Rare-event atoms are those displaced more than ``threshold`` x the nearest-neighbour
distance from their site in the first frame (minimum image), or user-given indices.

The per-atom metrics and their summary statistics are those of
:mod:`aceal.uncertainty.force_metrics` (one implementation serves the active-learning
loop and validation); this module adds trajectory handling (labelling, rare-event masks
over frames) and the flat report layout of the validation suite.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator
from ase.geometry import find_mic

from aceal.errors import AcealInputError
from aceal.uncertainty.force_metrics import (
    ForceErrorDistribution,
    rare_event_force_metrics,
)

__all__ = [
    "rare_event_mask",
    "rare_event_metrics",
    "label_frames",
    "plot_rare_events",
]


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


def _stats(group: ForceErrorDistribution) -> dict:
    """Summary of one atom group in this module's flat key layout (eV/Å, degrees).

    The numbers are :func:`aceal.uncertainty.force_metrics.summarize_errors` of the
    group's magnitude errors and (defined) angles; angles are >= 0, so the percentiles
    of their absolute values are their percentiles.
    """
    mag, ang = group.magnitude_stats, group.angle_stats
    return {
        "n_atoms": int(group.magnitude_error.size),
        "mag_err_mean_eV_per_A": mag.mean,
        "mag_err_mae_eV_per_A": mag.mae,
        "mag_err_rmse_eV_per_A": mag.rmse,
        "mag_err_max_abs_eV_per_A": mag.max,
        "mag_err_p95_abs_eV_per_A": mag.p95,
        "angle_mean_deg": ang.mean,
        "angle_median_deg": ang.p50,
        "angle_p95_deg": ang.p95,
        "angle_max_deg": ang.max,
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
    pred = []
    for at in frames:
        a = at.copy()
        a.calc = calc
        pred.append(np.asarray(a.get_forces(), float))
    # all frames as one (n_frames * n_atoms, 3) set: the per-atom metrics are per row
    m = rare_event_force_metrics(
        np.concatenate(pred), np.concatenate(ref), mask.ravel(), min_force=min_force
    )
    return {
        "n_frames": len(frames),
        "n_rare_atom_frames": int(mask.sum()),
        "all": _stats(m.all),
        "rare": _stats(m.rare),
        "distributions": {
            group: {
                "mag_err_eV_per_A": getattr(m, group).magnitude_error.tolist(),
                "angle_deg": getattr(m, group).angle.tolist(),
            }
            for group in ("all", "rare")
        },
    }


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
