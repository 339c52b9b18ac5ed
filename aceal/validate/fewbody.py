"""Few-body diagnostics: dimer and trimer energy curves, and an overlay plot.

Energies are binding energies in eV relative to the isolated atoms computed with the
same calculator, in a 20 Å non-periodic box; distances in Å, angles in degrees.
"""

from __future__ import annotations

from itertools import combinations_with_replacement

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.data import atomic_numbers, covalent_radii

__all__ = ["dimer_curve", "trimer_curves", "fewbody_curves", "plot_fewbody"]

BOX = 20.0  # Å


def _energy(symbols, positions, calc) -> float:
    atoms = Atoms(symbols, positions=positions, cell=[BOX] * 3, pbc=False)
    atoms.center()
    atoms.calc = calc
    return float(atoms.get_potential_energy())


def _isolated(symbols, calc) -> float:
    return sum(_energy([s], [[0.0, 0.0, 0.0]], calc) for s in symbols)


def default_distances(el1: str, el2: str, n: int = 40, r_max: float = 6.0) -> np.ndarray:
    """Grid from 0.6 x the sum of covalent radii to ``r_max`` Å."""
    r_min = 0.6 * (covalent_radii[atomic_numbers[el1]] + covalent_radii[atomic_numbers[el2]])
    return np.linspace(r_min, r_max, n)


def _refined_min(f, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Minimum ``(x_min, f_min)`` of ``f`` (sampled as ``y`` on the grid ``x``): bounded
    1-D minimisation of ``f`` itself between the neighbours of the lowest sample (to
    1e-4 Å). Without a bound minimum inside the grid (lowest sample at an end of the
    grid, or no sample below zero: an unbound curve) ``x_min`` is NaN and ``f_min`` the
    lowest sample."""
    from scipy.optimize import minimize_scalar

    i = int(np.argmin(y))
    if not (0 < i < len(x) - 1 and y[i] < 0.0):
        return float("nan"), float(y[i])
    res = minimize_scalar(f, bounds=(x[i - 1], x[i + 1]), method="bounded", options={"xatol": 1e-4})
    if res.success and res.fun <= y[i]:
        return float(res.x), float(res.fun)
    return float(x[i]), float(y[i])


def dimer_curve(el1: str, el2: str, calc: Calculator, r: np.ndarray | None = None) -> dict:
    """Binding energy of a dimer vs separation.

    Returns
    -------
    dict
        ``r_A``, ``energy_eV`` (lists), ``r_min_A`` and ``e_min_eV`` (minimum, refined
        by a 1-D minimisation to 1e-4 Å; ``r_min_A`` is NaN for a curve without a bound
        minimum inside the grid, e.g. an unbound dimer).
    """
    r = default_distances(el1, el2) if r is None else np.asarray(r, float)
    e0 = _isolated([el1, el2], calc)

    def f(x):
        return _energy([el1, el2], [[0, 0, 0], [x, 0, 0]], calc) - e0

    e = np.array([f(x) for x in r])
    r_min, e_min = _refined_min(f, r, e)
    return {"r_A": r.tolist(), "energy_eV": e.tolist(), "r_min_A": r_min, "e_min_eV": e_min}


def trimer_curves(
    els: tuple[str, str, str],
    calc: Calculator,
    r: np.ndarray | None = None,
    r0: float | None = None,
    angles_deg: np.ndarray | None = None,
) -> dict:
    """Trimer energies: equilateral triangle vs side, and angle scan at fixed arms.

    In the angle scan atom ``els[0]`` is the vertex, ``els[1]`` and ``els[2]`` sit
    at distance ``r0`` (default: the equilateral minimum) at angle theta.

    Returns
    -------
    dict
        ``equilateral``: ``r_A``, ``energy_eV``, ``r_min_A``, ``e_min_eV``;
        ``angle``: ``theta_deg``, ``energy_eV``, ``r0_A``.
    """
    a, b, c = els
    r = default_distances(a, b) if r is None else np.asarray(r, float)
    e0 = _isolated(els, calc)
    h = np.sqrt(3.0) / 2.0

    def f(x):
        return _energy(els, [[0, 0, 0], [x, 0, 0], [x / 2, h * x, 0]], calc) - e0

    eq = np.array([f(x) for x in r])
    r_eq, e_eq = _refined_min(f, r, eq)
    if r0 is None:  # no bound equilateral minimum: the lowest sampled side
        r0 = r_eq if np.isfinite(r_eq) else float(r[np.argmin(eq)])
    th = np.linspace(40.0, 180.0, 29) if angles_deg is None else np.asarray(angles_deg, float)
    rad = np.radians(th)
    ang = np.array(
        [
            _energy(els, [[0, 0, 0], [r0, 0, 0], [r0 * np.cos(t), r0 * np.sin(t), 0]], calc) - e0
            for t in rad
        ]
    )
    return {
        "equilateral": {
            "r_A": r.tolist(),
            "energy_eV": eq.tolist(),
            "r_min_A": r_eq,
            "e_min_eV": e_eq,
        },
        "angle": {"theta_deg": th.tolist(), "energy_eV": ang.tolist(), "r0_A": float(r0)},
    }


def fewbody_curves(
    elements: list[str],
    calc: Calculator,
    n_points: int = 40,
    r_max: float = 6.0,
    trimer_r0: dict[str, float] | None = None,
    n_angles: int = 29,
) -> dict:
    """Dimer curves for every element pair and trimer curves for every triple.

    Parameters
    ----------
    n_angles
        Points of the trimer angle scan (40 to 180 degrees).
    trimer_r0
        Optional arm length (Å) of the angle scan per triple key (e.g. ``"Cu-Cu-Cu"``);
        pass the reference's values so model and reference share one geometry.

    Returns
    -------
    dict
        ``{"dimers": {"A-B": dimer_curve}, "trimers": {"A-B-C": trimer_curves}}``.
    """
    out: dict = {"dimers": {}, "trimers": {}}
    for a, b in combinations_with_replacement(sorted(elements), 2):
        out["dimers"][f"{a}-{b}"] = dimer_curve(
            a, b, calc, default_distances(a, b, n_points, r_max)
        )
    for trip in combinations_with_replacement(sorted(elements), 3):
        key = "-".join(trip)
        r0 = (trimer_r0 or {}).get(key)
        out["trimers"][key] = trimer_curves(
            trip,
            calc,
            default_distances(trip[0], trip[1], n_points, r_max),
            r0=r0,
            angles_deg=np.linspace(40.0, 180.0, n_angles),
        )
    return out


def _ylim(curves):
    lo = min(min(c) for c in curves)
    depth = max(abs(lo), 0.5)
    return lo - 0.15 * depth, depth


def plot_fewbody(curves_by_model: dict[str, dict], path: str) -> str:
    """Overlay the few-body curves of several models (e.g. body orders) on one figure.

    Parameters
    ----------
    curves_by_model
        ``{label: fewbody_curves(...)}``; all must cover the same element pairs.
    path
        PNG file to write.

    Returns
    -------
    str
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(curves_by_model.values()))
    panels = [("dimers", k, None) for k in first["dimers"]]
    panels += [("trimers", k, "equilateral") for k in first["trimers"]]
    panels += [("trimers", k, "angle") for k in first["trimers"]]
    ncol = min(3, len(panels))
    nrow = int(np.ceil(len(panels) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.3 * nrow), squeeze=False)
    for ax, (kind, key, sub) in zip(axes.flat, panels, strict=False):
        ys = []
        for label, curves in curves_by_model.items():
            c = curves[kind][key] if sub is None else curves[kind][key][sub]
            x = c["theta_deg"] if sub == "angle" else c["r_A"]
            ax.plot(x, c["energy_eV"], label=label)
            ys.append(c["energy_eV"])
        lo, depth = _ylim(ys)
        if sub != "angle":
            ax.set_ylim(lo, depth)
        ax.axhline(0.0, color="grey", lw=0.5)
        ax.set_xlabel("angle (deg)" if sub == "angle" else "r (Å)")
        ax.set_ylabel("E - E(atoms) (eV)")
        ax.set_title(f"{'dimer' if sub is None else 'trimer ' + sub} {key}")
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return str(path)
