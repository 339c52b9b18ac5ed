"""Fit outputs next to the model: a JSON report and a parity-plot PNG."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aceal.fit.data import Labels
from aceal.fit.metrics import Prediction
from aceal.jsonable import to_jsonable

__all__ = ["report_paths", "write_report", "parity_plot", "to_jsonable"]


def report_paths(model_path: str | Path) -> tuple[Path, Path]:
    """``(report.json, parity.png)`` paths next to ``model_path`` (``X.yaml`` ->
    ``X.fit.json``, ``X.parity.png``)."""
    p = Path(model_path)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    return p.with_name(f"{stem}.fit.json"), p.with_name(f"{stem}.parity.png")


def write_report(path: str | Path, report: dict) -> None:
    """Write ``report`` as indented JSON."""
    Path(path).write_text(json.dumps(to_jsonable(report), indent=2) + "\n")


def _pairs(labels: Sequence[Labels], preds: Sequence[Prediction], natoms: Sequence[int]):
    e_ref, e_pred, f_ref, f_pred, s_ref, s_pred = [], [], [], [], [], []
    for lab, p, n in zip(labels, preds, natoms, strict=True):
        if lab.energy is not None:
            e_ref.append(lab.energy / n)
            e_pred.append(p.energy / n)
        if lab.forces is not None:
            f_ref.append(lab.forces.ravel())
            f_pred.append(p.forces.ravel())
        if lab.stress is not None and p.stress is not None:
            s_ref.append(lab.stress)
            s_pred.append(p.stress)

    def cat(x):
        return np.concatenate(x) if x and np.ndim(x[0]) else np.asarray(x, dtype=float)

    return {"energy": (cat(e_ref), cat(e_pred)), "forces": (cat(f_ref), cat(f_pred)),
            "stress": (cat(s_ref), cat(s_pred))}


def parity_plot(path: str | Path, sets: dict[str, tuple[Sequence[Labels], Sequence[Prediction],
                                                       Sequence[int]]]) -> None:
    """Parity plots (prediction vs reference) of energy per atom, forces and stress.

    Parameters
    ----------
    path
        PNG file to write.
    sets
        ``{"train": (labels, predictions, natoms), "test": ...}``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = {name: _pairs(*s) for name, s in sets.items()}
    panels = [("energy", "energy (eV/atom)", 1.0), ("forces", "force component (eV/Å)", 1.0),
              ("stress", "stress (GPa)", 160.21766208)]
    panels = [p for p in panels if any(d[p[0]][0].size for d in data.values())]
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(4.2 * max(len(panels), 1), 4.0),
                             squeeze=False)
    colours = {"train": "tab:blue", "test": "tab:orange"}
    for ax, (kind, label, scale) in zip(axes[0], panels, strict=False):
        lo, hi = np.inf, -np.inf
        for name, d in data.items():
            ref, pred = d[kind]
            if ref.size == 0:
                continue
            mae = float(np.mean(np.abs(pred - ref)))
            unit = {"energy": 1e3, "forces": 1.0, "stress": 1e3}[kind]
            unit_name = {"energy": "meV/atom", "forces": "eV/Å", "stress": "meV/Å³"}[kind]
            ax.scatter(ref * scale, pred * scale, s=4, alpha=0.5, lw=0,
                       color=colours.get(name), label=f"{name}: MAE {mae * unit:.3g} {unit_name}")
            lo = min(lo, ref.min() * scale, pred.min() * scale)
            hi = max(hi, ref.max() * scale, pred.max() * scale)
        if np.isfinite(lo):
            ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.set_xlabel(f"reference {label}")
        ax.set_ylabel(f"model {label}")
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
