"""bcc 1/2<111> screw dislocation: core energy and core structure (matscipy builders).

A cylinder of radius ``radius_a0 * a0`` around a straight screw dislocation (line along
z, one Burgers vector long and periodic along it) is built from the anisotropic
elastic solution with the calculator's own a0 and C11, C12, C44
(:class:`matscipy.dislocation.BCCScrew111Dislocation`), the outer shell is held fixed
and the inside relaxed. Reported: the energy per unit length relative to the perfect
cylinder (eV/Å) and the differential displacements (DD) of the atomic columns, the
usual picture of the core (easy core: |DD| ~ b/3 on the three central pairs).
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator

from aceal.errors import AcealInputError
from aceal.validate.bulk import elastic_constants, equation_of_state
from aceal.validate.crystal import element_structure, relax_positions

__all__ = ["screw_dislocation", "dd_difference", "plot_core"]


def _wrap(x, b):
    return x - b * np.round(x / b)


def screw_dislocation(
    element: str,
    calc: Calculator,
    a0: float | None = None,
    cij_GPa: tuple[float, float, float] | None = None,
    radius_a0: float = 5.0,
    fix_width_a0: float = 2.0,
    fmax: float = 0.01,
    steps: int = 2000,
    return_atoms: bool = False,
) -> dict:
    """Relax a 1/2<111> screw dislocation in a bcc cylinder and characterise its core.

    Parameters
    ----------
    a0
        Lattice constant (Å); default the calculator's own.
    cij_GPa
        (C11, C12, C44) in GPa for the elastic solution; default the calculator's own.
    radius_a0, fix_width_a0
        Cylinder radius and fixed outer-shell width, in units of a0.
    fmax
        Force convergence (eV/Å).
    return_atoms
        Also return the perfect and the relaxed dislocated cylinders (same atom order)
        under ``"atoms"`` (not JSON-serialisable; off by default).

    Returns
    -------
    dict
        ``E_per_length_eV_per_A`` (E_dislocation - E_perfect cylinder, per Å of line),
        ``core_dd_over_b`` (mean |DD|/b on the three column pairs around the core),
        ``pairs`` (column index pairs), ``dd_over_b`` (their DD / b after relaxation),
        ``xy_A`` (column positions), ``core_xy_A``, ``burgers_A``, ``n_atoms``,
        ``a0_A``, ``C_GPa``, ``converged``; with ``return_atoms``, ``atoms``:
        ``{"perfect": Atoms, "dislocation": Atoms}``.
    """
    try:
        from matscipy.dislocation import BCCScrew111Dislocation
    except ImportError:
        raise AcealInputError(
            "dislocation validation needs matscipy: pip install matscipy"
        ) from None
    structure, _ = element_structure(element)
    if structure != "bcc":
        raise AcealInputError(
            f"screw dislocation check is for bcc elements; {element} is {structure}"
        )
    if a0 is None:
        a0 = equation_of_state(element, calc)["a0_A"]
    if cij_GPa is None:
        c = elastic_constants(element, calc, a0=a0)
        cij_GPa = (c["C11_GPa"], c["C12_GPa"], c["C44_GPa"])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        builder = BCCScrew111Dislocation(a0, *cij_GPa, symbol=element)
        perfect, disloc = builder.build_cylinder(
            radius_a0 * a0, fix_width=fix_width_a0 * a0, method="adsl", verbose=False
        )
    for at in (perfect, disloc):
        at.pbc = (False, False, True)
    b = float(np.linalg.norm(builder.burgers))
    perfect.calc = calc
    e_perfect = float(perfect.get_potential_energy())
    converged = relax_positions(disloc, calc, fmax=fmax, steps=steps)
    e_disloc = float(disloc.get_potential_energy())
    length = float(disloc.cell[2, 2])

    xy = perfect.positions[:, :2]
    core = np.asarray(disloc.info["core_positions"][0][:2], float)
    uz = disloc.positions[:, 2] - perfect.positions[:, 2]
    dxy = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=2)
    nn = a0 * np.sqrt(2.0 / 3.0)  # nearest column distance in the <111> projection
    i, j = np.nonzero(np.triu((dxy > 0.1) & (dxy < 1.1 * nn)))
    dd = _wrap(uz[j] - uz[i], b) / b
    mid = 0.5 * (xy[i] + xy[j])
    closest = np.argsort(np.linalg.norm(mid - core, axis=1))[:3]
    out = {
        "E_per_length_eV_per_A": (e_disloc - e_perfect) / length,
        "core_dd_over_b": float(np.abs(dd[closest]).mean()),
        "pairs": np.stack([i, j], axis=1).tolist(),
        "dd_over_b": dd.tolist(),
        "xy_A": xy.tolist(),
        "core_xy_A": core.tolist(),
        "burgers_A": b,
        "n_atoms": len(disloc),
        "a0_A": float(a0),
        "C_GPa": list(map(float, cij_GPa)),
        "converged": converged,
    }
    if return_atoms:
        out["atoms"] = {"perfect": perfect, "dislocation": disloc}
    return out


def dd_difference(reference: dict, model: dict, core_radius_a0: float = 2.0) -> float:
    """Largest |DD_model - DD_ref| / b over column pairs within ``core_radius_a0`` of the core.

    Both results must come from cylinders of the same size in units of a0 (same atoms
    in the same order); NaN otherwise.
    """
    if reference["pairs"] != model["pairs"]:
        return float("nan")
    xy = np.asarray(reference["xy_A"]) / reference["a0_A"]
    core = np.asarray(reference["core_xy_A"]) / reference["a0_A"]
    p = np.asarray(reference["pairs"])
    mid = 0.5 * (xy[p[:, 0]] + xy[p[:, 1]])
    near = np.linalg.norm(mid - core, axis=1) < core_radius_a0
    diff = np.abs(np.asarray(model["dd_over_b"]) - np.asarray(reference["dd_over_b"]))[near]
    return float(diff.max()) if diff.size else float("nan")


def plot_core(
    results: dict[str, dict],
    path: str,
    labels: dict[str, str] | None = None,
    window_a0: float = 2.5,
) -> str:
    """Differential-displacement maps, one panel per calculator (arrow length ∝ |DD|)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 4.2), squeeze=False)
    for ax, (role, r) in zip(axes[0], results.items(), strict=False):
        xy, core, a0 = np.asarray(r["xy_A"]), np.asarray(r["core_xy_A"]), r["a0_A"]
        p, dd = np.asarray(r["pairs"]), np.asarray(r["dd_over_b"])
        win = window_a0 * a0
        show = np.all(np.abs(xy - core) < win, axis=1)
        ax.scatter(*(xy[show] - core).T, s=60, c="lightgrey", edgecolors="k")
        for (i, j), d in zip(p, dd, strict=False):
            if not (show[i] and show[j]) or abs(d) < 0.02:
                continue
            v = xy[j] - xy[i]
            mid = 0.5 * (xy[i] + xy[j]) - core
            vec = v * (d / (1.0 / 3.0)) * 0.5  # |DD| = b/3 spans the pair's half-length
            ax.arrow(
                *(mid - vec / 2),
                *vec,
                width=0.02,
                head_width=0.15,
                length_includes_head=True,
                color="k",
            )
        ax.plot(0, 0, "r+", ms=10)
        ax.set_aspect("equal")
        ax.set_title(
            f"{(labels or {}).get(role, role)}\n|DD|/b core = {r['core_dd_over_b']:.3f}", fontsize=8
        )
        ax.set_xlabel("x (Å)")
        ax.set_ylabel("y (Å)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return str(path)
