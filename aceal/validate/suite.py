"""Model vs reference, side by side: every property with both calculators and the error."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from pydantic import Field

from aceal.errors import AcealInputError
from aceal.settings import Settings, dump, parse
from aceal.validate import bulk, defects, dynamics, fewbody, rare_events
from aceal.validate.crystal import element_structure

__all__ = [
    "run_validation",
    "compare",
    "DEFAULT_SUITES",
    "ALL_SUITES",
    "DEFAULT_SETTINGS",
    "QUICK_SETTINGS",
    "ValidationSettings",
]

DEFAULT_SUITES = ("bulk", "defects", "fewbody", "dynamics")
ALL_SUITES = ("bulk", "defects", "fewbody", "dynamics", "rare_events", "dislocation")

class ValidationSettings(Settings):
    """Knobs of every suite (sizes in conventional cells, times in fs, T in K)."""

    vacancy_size: int = Field(3, gt=0, description="vacancy supercell, cells per side")
    neb_size: int = Field(3, gt=0, description="vacancy-migration NEB supercell")
    neb_images: int = Field(5, gt=0, description="NEB images")
    neb_fmax: float = Field(0.05, gt=0, description="NEB force tolerance, eV/Å")
    interstitial: bool = Field(True, description="also the interstitial")
    surface_min_thickness: float = Field(12.0, gt=0, description="slab thickness, Å")
    md_size: int = Field(3, gt=0, description="MD supercell")
    md_temperatures_K: list[float] = Field([300.0, 1000.0], description="MD temperatures")
    md_steps: int = Field(400, gt=0, description="MD steps per temperature")
    md_timestep_fs: float = Field(2.0, gt=0, description="fs")
    nve_steps: int = Field(200, gt=0, description="NVE steps for the drift")
    fewbody_points: int = Field(40, gt=1, description="points per dimer/trimer curve")
    rare_threshold: float = Field(0.3, gt=0, description="rare-event displacement, Å")
    dislocation_radius_a0: float = Field(5.0, gt=0, description="cluster radius, a0")


DEFAULT_SETTINGS = ValidationSettings()

#: a preset that runs in seconds (smaller cells, shorter MD)
QUICK_SETTINGS = ValidationSettings(
    vacancy_size=2, neb_size=2, neb_images=3, neb_fmax=0.1, interstitial=False,
    surface_min_thickness=10.0, md_size=2, md_steps=100, nve_steps=50, fewbody_points=20,
    dislocation_radius_a0=4.0)


def compare(reference: float, model: float) -> dict:
    """Signed error, absolute error and relative error (|m - r| / |r|; NaN if r == 0)."""
    r, m = float(reference), float(model)
    err = m - r
    rel = abs(err) / abs(r) if r != 0 and math.isfinite(r) else float("nan")
    return {"reference": r, "model": m, "error": err, "abs_error": abs(err), "rel_error": rel}


def committee_spread(reference: float, model: float, members: Sequence[float]) -> dict:
    """Committee spread of one property: ``committee_std`` (sample standard deviation over
    the members' values), ``committee_mean`` and ``within_2sigma`` (|model - reference| <=
    2 std)."""
    vals = np.asarray(members, dtype=float)
    std = float(np.std(vals, ddof=1)) if vals.size > 1 else float("nan")
    return {"committee_mean": float(np.mean(vals)), "committee_std": std,
            "committee_size": int(vals.size),
            "within_2sigma": bool(abs(model - reference) <= 2.0 * std)}


def calibration(rows: Sequence[dict]) -> dict:
    """Fraction of the properties with a committee spread whose error is within 2 sigma."""
    with_std = [r for r in rows if math.isfinite(r.get("committee_std", float("nan")))]
    inside = sum(r["within_2sigma"] for r in with_std)
    return {"n_properties": len(with_std), "within_2sigma": inside,
            "fraction_within_2sigma": inside / len(with_std) if with_std else None}


class _Collector:
    def __init__(self):
        self.rows: list[dict] = []

    def add(self, suite, element, prop, unit, reference, model, members=None):
        row = {"suite": suite, "element": element, "property": prop, "unit": unit,
               **compare(reference, model)}
        if members:
            row.update(committee_spread(row["reference"], row["model"], members))
        self.rows.append(row)

    def roles(self, suite, element, prop, unit, values: dict, *keys):
        """:meth:`pair` of ``values[role][k1][k2]...`` for the reference, the model and
        every committee member (roles ``member<k>``)."""
        dug = {}
        for role, v in values.items():
            for k in keys:
                v = v[k]
            dug[role] = v
        members = [v for r, v in dug.items() if r.startswith("member")]
        self.add(suite, element, prop, unit, dug["reference"], dug["model"], members)

    def pair(self, suite, element, prop, unit, reference: dict, model: dict, *keys):
        """:meth:`add` of the value at ``reference[k1][k2]...`` and the same in ``model``."""
        for k in keys:
            reference, model = reference[k], model[k]
        self.add(suite, element, prop, unit, reference, model)


def run_validation(
    model_calc: Calculator,
    reference_calc: Calculator,
    elements: Sequence[str],
    suites: Sequence[str] = DEFAULT_SUITES,
    out_dir: str | Path | None = None,
    settings: ValidationSettings | dict | None = None,
    model_label: str = "model",
    reference_label: str = "reference",
    trajectory: Sequence[Atoms] | None = None,
    committee: Sequence[Calculator] = (),
) -> dict:
    """Compute each property with the model and the reference and tabulate the errors.

    Parameters
    ----------
    model_calc, reference_calc
        Any ASE calculators.
    elements
        Chemical symbols; bulk/defect/MD suites run per element (cubic ground
        state), few-body curves for every pair and triple.
    suites
        Any of :data:`ALL_SUITES`.
    out_dir
        If given, a report (report.md, report.json, PNGs) is written there.
    settings
        :class:`ValidationSettings` (e.g. :data:`QUICK_SETTINGS`), or a mapping of
        overrides of the defaults.
    trajectory
        Labelled frames (reference forces attached) for the ``rare_events`` suite;
        default: the reference's relaxed vacancy-hop NEB path.
    committee
        Calculators of the model's committee members (e.g.
        :meth:`aceal.model.ACEModel.committee_models`): every property (``bulk``,
        ``defects``, ``dynamics``, ``dislocation``, the dimer and trimer minima of
        ``fewbody``) is also computed with each member by the same protocol, and its row
        gets ``committee_std``, ``committee_mean`` and ``within_2sigma``; ``meta``
        gets the ``calibration`` (fraction of those properties within 2 sigma); the
        E-V and NEB plots draw the members' curves.  Error measures of the model
        against the reference (curve RMSEs, rare-event force errors, the core DD
        difference) have no spread.

    Returns
    -------
    dict
        ``rows`` (one per property: suite, element, property, unit, reference, model,
        error, abs_error, rel_error, and with a committee its spread), ``curves`` (data
        for plots), ``meta``.
    """
    unknown = [s for s in suites if s not in ALL_SUITES]
    if unknown:
        raise AcealInputError(f"unknown suite {unknown[0]!r}; known: {', '.join(ALL_SUITES)}")
    if not elements:
        raise AcealInputError("no elements given")
    s = settings if isinstance(settings, ValidationSettings) else parse(
        ValidationSettings, dict(settings or {}), where="validation settings: ")
    pair_calcs = {"reference": reference_calc, "model": model_calc}
    calcs = {**pair_calcs, **{f"member{k}": c for k, c in enumerate(committee)}}
    col = _Collector()
    curves: dict = {}
    timings: dict = {}
    a0: dict = {r: {} for r in calcs}

    def lattice(role, el):
        if el not in a0[role]:
            a0[role][el] = bulk.equation_of_state(el, calcs[role])
        return a0[role][el]

    paths: dict = {}

    def hop_path(role, el):  # one CI-NEB per calculator and element, shared by suites
        if (role, el) not in paths:
            paths[role, el] = defects.vacancy_migration(
                el,
                calcs[role],
                a0=lattice(role, el)["a0_A"],
                size=s.neb_size,
                n_images=s.neb_images,
                fmax=s.neb_fmax,
                return_images=True,
            )
        return paths[role, el]

    cubic = []
    for el in elements:
        try:
            element_structure(el)
            cubic.append(el)
        except AcealInputError:
            if any(x in suites for x in ("bulk", "defects", "dynamics", "rare_events")):
                raise

    for suite in suites:
        t0 = time.perf_counter()
        if suite == "bulk":
            for el in cubic:
                eos = {r: lattice(r, el) for r in calcs}
                col.roles(suite, el, "a0", "Å", eos, "a0_A")
                col.roles(suite, el, "E0", "eV/atom", eos, "e0_eV_per_atom")
                col.roles(suite, el, "B (E-V fit)", "GPa", eos, "B_GPa")
                cij = {
                    r: bulk.elastic_constants(el, c, a0=eos[r]["a0_A"]) for r, c in calcs.items()
                }
                for k in ("C11", "C12", "C44"):
                    col.roles(suite, el, k, "GPa", cij, f"{k}_GPa")
                curves.setdefault("eos", {})[el] = {
                    **{r: eos[r] for r in pair_calcs},
                    "members": _members(eos, "volumes_A3_per_atom", "energies_eV_per_atom")}
                curves.setdefault("elastic", {})[el] = {r: cij[r] for r in pair_calcs}
        elif suite == "defects":
            for el in cubic:
                res = {}
                for r, c in calcs.items():
                    a = lattice(r, el)["a0_A"]
                    res[r] = {
                        "vacancy": defects.vacancy_formation(el, c, a0=a, size=s.vacancy_size),
                        "migration": hop_path(r, el),
                        "surfaces": defects.surface_energies(
                            el, c, a0=a, min_thickness=s.surface_min_thickness
                        ),
                    }
                    if s.interstitial:
                        res[r]["interstitial"] = defects.interstitial_formations(
                            el, c, a0=a, size=s.vacancy_size
                        )
                col.roles(suite, el, "E_vac formation", "eV", res, "vacancy", "Evac_eV")
                col.roles(suite, el, "E_vac migration (NEB)", "eV", res, "migration", "Em_eV")
                for facet in ("100", "110", "111"):
                    col.roles(suite, el, f"gamma({facet})", "J/m²", res,
                              "surfaces", facet, "gamma_J_per_m2")  # fmt: skip
                if s.interstitial:
                    for name in res["reference"]["interstitial"]:
                        col.roles(suite, el, f"E_int formation {name}", "eV", res,
                                  "interstitial", name, "Eint_eV")  # fmt: skip
                curves.setdefault("defects", {})[el] = {
                    **{r: res[r] for r in pair_calcs},
                    "members": _members({r: v["migration"] for r, v in res.items()},
                                        "path_coordinate", "path_energies_eV")}
        elif suite == "fewbody":
            ref = fewbody.fewbody_curves(
                list(elements), reference_calc, n_points=s.fewbody_points
            )
            r0 = {k: v["angle"]["r0_A"] for k, v in ref["trimers"].items()}
            mod = fewbody.fewbody_curves(
                list(elements), model_calc, n_points=s.fewbody_points, trimer_r0=r0
            )
            for key in ref["dimers"]:
                dr, dm = ref["dimers"][key], mod["dimers"][key]
                grid = np.asarray(dr["r_A"])
                dims = {"reference": dr, "model": dm, **{
                    f"member{k}": fewbody.dimer_curve(*key.split("-"), c, grid)
                    for k, c in enumerate(committee)}}
                col.roles(suite, key, "dimer r_min", "Å", dims, "r_min_A")
                col.roles(suite, key, "dimer E_min", "eV", dims, "e_min_eV")
                col.add(suite, key, "dimer curve RMSE (E_ref<2 eV)", "eV", 0.0, _curve_rmse(dr, dm))
            for key in ref["trimers"]:
                tr, tm = ref["trimers"][key], mod["trimers"][key]
                trims = {"reference": tr, "model": tm, **{
                    f"member{k}": fewbody.trimer_curves(tuple(key.split("-")), c,
                                                        tr["equilateral"]["r_A"],
                                                        r0=r0[key], angles_deg=[180.0])
                    for k, c in enumerate(committee)}}
                col.roles(suite, key, "trimer equilateral E_min", "eV", trims,
                          "equilateral", "e_min_eV")  # fmt: skip
                col.add(
                    suite,
                    key,
                    "trimer angle-scan RMSE",
                    "eV",
                    0.0,
                    _curve_rmse(tr["angle"], tm["angle"]),
                )
            curves["fewbody"] = {"reference": ref, "model": mod}
        elif suite == "dynamics":
            for el in cubic:
                res = {
                    r: dynamics.md_properties(
                        el,
                        c,
                        a0=lattice(r, el)["a0_A"],
                        size=s.md_size,
                        temperatures_K=tuple(s.md_temperatures_K),
                        steps=s.md_steps,
                        timestep_fs=s.md_timestep_fs,
                        nve_steps=s.nve_steps,
                    )
                    for r, c in calcs.items()
                }
                for temp in s.md_temperatures_K:
                    key = f"T{int(round(temp))}"
                    col.roles(suite, el, f"RDF 1st peak {key[1:]} K", "Å", res, key,
                              "first_peak_A")
                    col.roles(suite, el, f"D {key[1:]} K", "Å²/ps", res, key, "D_A2_per_ps")
                col.roles(suite, el, "NVE drift", "eV/atom/ps", res,
                          "nve", "drift_eV_per_atom_per_ps")  # fmt: skip
                curves.setdefault("dynamics", {})[el] = {r: res[r] for r in pair_calcs}
        elif suite == "rare_events":
            curves["rare_events"] = {}
            sets = []
            if trajectory is not None:
                sets.append(("trajectory", list(trajectory), None))
            else:
                for el in cubic:
                    path = hop_path("reference", el)
                    frames = rare_events.label_frames(path["images"], reference_calc)
                    sets.append((el, frames, [path["hopping_atom"]]))
            for name, frames, idx in sets:
                m = rare_events.rare_event_metrics(
                    frames, model_calc, indices=idx, threshold=s.rare_threshold
                )
                for who in ("rare", "all"):
                    st = m[who]
                    col.add(
                        suite,
                        name,
                        f"force angle mean ({who} atoms)",
                        "deg",
                        0.0,
                        st["angle_mean_deg"],
                    )
                    col.add(
                        suite,
                        name,
                        f"|F| error MAE ({who} atoms)",
                        "eV/Å",
                        0.0,
                        st["mag_err_mae_eV_per_A"],
                    )
                curves["rare_events"][name] = m
        elif suite == "dislocation":
            from aceal.validate import dislocation

            for el in cubic:
                if element_structure(el)[0] != "bcc":
                    continue
                res = {
                    r: dislocation.screw_dislocation(
                        el, c, a0=lattice(r, el)["a0_A"], radius_a0=s.dislocation_radius_a0
                    )
                    for r, c in calcs.items()
                }
                ref, mod = res["reference"], res["model"]
                col.roles(suite, el, "screw E per length", "eV/Å", res, "E_per_length_eV_per_A")
                col.roles(suite, el, "core |DD|/b (3 core pairs)", "-", res, "core_dd_over_b")
                col.add(
                    suite,
                    el,
                    "core DD max diff vs reference",
                    "b",
                    0.0,
                    dislocation.dd_difference(ref, mod),
                )
                curves.setdefault("dislocation", {})[el] = {r: res[r] for r in pair_calcs}
        timings[suite] = time.perf_counter() - t0

    results = {
        "meta": {
            "model": model_label,
            "reference": reference_label,
            "elements": list(elements),
            "suites": list(suites),
            "settings": dump(s),
            "timings_s": timings,
            "committee_size": len(committee),
            "calibration": calibration(col.rows),
        },
        "rows": col.rows,
        "curves": curves,
    }
    if out_dir is not None:
        from aceal.validate.report import write_report

        write_report(results, out_dir)
    return results


def _members(by_role: dict, *keys: str) -> list[dict]:
    """The committee members' ``keys`` of their curves (for the plots' spread)."""
    return [{k: v[k] for k in keys} for r, v in by_role.items() if r.startswith("member")]


def _curve_rmse(ref: dict, mod: dict, e_cap: float = 2.0) -> float:
    """RMS difference (eV) of two curves on the same grid where the reference is below e_cap."""
    er, em = np.asarray(ref["energy_eV"]), np.asarray(mod["energy_eV"])
    ok = er < e_cap
    return float(np.sqrt(np.mean((er[ok] - em[ok]) ** 2))) if ok.any() else float("nan")
