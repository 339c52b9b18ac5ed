"""Error metrics of a model against reference labels, overall and per ``config_type``.

Energies are compared per atom (eV/atom), forces per Cartesian component (eV/Å), stresses
per Voigt component (eV/Å³, only where the reference has a stress).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from aceal.fit.data import Labels

__all__ = ["Prediction", "predict", "error_metrics", "format_metrics"]


@dataclass
class Prediction:
    """Model prediction for one configuration: energy (eV), forces (N,3) eV/Å, stress (6,)."""

    energy: float
    forces: np.ndarray
    stress: np.ndarray | None


def predict(model, structures: Sequence[Atoms]) -> list[Prediction]:
    """Predict energy, forces and (for periodic cells) stress with an ACE model.

    ``model`` is an :class:`aceal.model.ACEModel` or a path to a saved one; evaluation goes
    through :class:`aceal.calculator.ACECalculator`.
    """
    from aceal.calculator import ACECalculator

    calc = ACECalculator(model)
    out = []
    for atoms in structures:
        a = atoms.copy()
        a.calc = calc
        e = float(a.get_potential_energy())
        f = np.array(a.get_forces())
        s = np.array(a.get_stress(voigt=True)) if bool(np.all(a.pbc)) else None
        out.append(Prediction(e, f, s))
    return out


def _stats(err: list[np.ndarray]) -> tuple[float | None, float | None, int]:
    if not err:
        return None, None, 0
    e = np.concatenate([np.ravel(x) for x in err])
    if e.size == 0:
        return None, None, 0
    return float(np.mean(np.abs(e))), float(np.sqrt(np.mean(e**2))), int(e.size)


def _block(labels: Sequence[Labels], preds: Sequence[Prediction], natoms: Sequence[int]
           ) -> dict:
    de, df, ds = [], [], []
    for lab, p, n in zip(labels, preds, natoms, strict=True):
        if lab.energy is not None:
            de.append(np.array([(p.energy - lab.energy) / n]))
        if lab.forces is not None:
            df.append(p.forces - lab.forces)
        if lab.stress is not None and p.stress is not None:
            ds.append(p.stress - lab.stress)
    out: dict = {"n_configs": len(labels), "n_atoms": int(sum(natoms))}
    for name, err in (("energy", de), ("forces", df), ("stress", ds)):
        mae, rmse, count = _stats(err)
        out[f"{name}_mae"] = mae
        out[f"{name}_rmse"] = rmse
        out[f"n_{name}"] = count
    return out


def error_metrics(labels: Sequence[Labels], predictions: Sequence[Prediction],
                  natoms: Sequence[int]) -> dict:
    """MAE and RMSE overall and per ``config_type``.

    Returns
    -------
    dict
        ``n_configs``, ``n_atoms``, ``energy_mae``/``energy_rmse`` (eV/atom),
        ``forces_mae``/``forces_rmse`` (eV/Å per component), ``stress_mae``/``stress_rmse``
        (eV/Å³), counts ``n_energy``/``n_forces``/``n_stress`` and ``by_config_type``
        (``{config_type: same keys}``). A value is ``None`` where there is no reference.
    """
    out = _block(labels, predictions, natoms)
    groups: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        groups.setdefault(lab.config_type, []).append(i)
    out["by_config_type"] = {
        ct: _block([labels[i] for i in idx], [predictions[i] for i in idx],
                   [natoms[i] for i in idx])
        for ct, idx in sorted(groups.items())
    }
    return out


def _fmt(x: float | None, scale: float) -> str:
    return "       -" if x is None else f"{x * scale:8.3f}"


def format_metrics(metrics: dict, title: str = "") -> str:
    """Human-readable table: energy meV/atom, forces eV/Å, stress meV/Å³ (MAE and RMSE)."""
    lines = []
    if title:
        lines.append(title)
    lines.append(f"{'config_type':<20}{'n':>5}  {'E MAE':>8}{'E RMSE':>8}  {'F MAE':>8}"
                 f"{'F RMSE':>8}  {'S MAE':>8}{'S RMSE':>8}")
    lines.append(f"{'':<25}  {'meV/atom':>16}  {'eV/Å':>16}  {'meV/Å³':>16}")
    rows = list(metrics["by_config_type"].items()) + [("overall", metrics)]
    for name, m in rows:
        lines.append(f"{name:<20}{m['n_configs']:>5}  {_fmt(m['energy_mae'], 1e3)}"
                     f"{_fmt(m['energy_rmse'], 1e3)}  {_fmt(m['forces_mae'], 1)}"
                     f"{_fmt(m['forces_rmse'], 1)}  {_fmt(m['stress_mae'], 1e3)}"
                     f"{_fmt(m['stress_rmse'], 1e3)}")
    return "\n".join(lines)
