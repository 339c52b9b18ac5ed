"""Training-cell-size study: screw-dislocation core error vs bulk training-cell size.

Ortner, Patel and Wang (2023) argue that a machine-learned potential trained on small
periodic bulk cells makes an error in a dislocation simulation that is controlled by
the size of the training cells, by the observations fitted (energies, forces, virials)
and by how well the fit converged. This script measures that for linear ACE models of W
with the Zhou EAM (``tests/data/W_zhou.eam.alloy``) as the reference ("truth"):

1. for each training-cell size ``n`` (``n x n x n`` conventional bcc cells, ``2 n^3``
   atoms) draw a training set of randomly strained + rattled cells and thermal
   (Langevin MD) snapshots, labelled by the EAM (energy, forces, stress); every size
   gets the same budget of labelled *atoms* (so the same number of force rows; the
   number of configurations, hence of energies and virials, falls as ``1 / n^3``);
2. assemble the normal equations once and solve them twice (Bayesian evidence
   maximisation, smoothness prior): energies + forces (virial weight 0) and
   energies + forces + virials;
3. for every model relax a 1/2<111> screw dislocation in a small cylinder
   (:func:`aceal.validate.dislocation.screw_dislocation`, the model's own lattice
   constant and elastic constants for the elastic far field, as a user of the model
   would) and compare with the reference: the error of the dislocation energy per
   unit length in the cylinder, and the largest differential-displacement difference
   of the column pairs within 2 a0 of the core (:func:`dd_difference`);
4. write all numbers to ``OUT/cell_size_study.json`` and one figure,
   ``OUT/cell_size_study.png`` (core errors vs training-cell size, both observation
   sets; mean over data seeds with the individual seeds as points).

Usage::

    python examples/cell_size_study.py                  # full study (~9 min, 2 busy cores)
    python examples/cell_size_study.py --quick          # < 1 min: sizes 1, 2; one seed
    python examples/cell_size_study.py --out DIR --sizes 1 2 3 --seeds 0 1

Units: Å, eV, GPa; energies per unit dislocation length in eV/Å (reported in meV/Å).
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator

from aceal.calculator import ACECalculator
from aceal.fit import NormalEquations, Weights, error_metrics, get_labels, predict
from aceal.fit.config import PriorSettings, SolverSettings
from aceal.fit.fitter import Dataset, assemble_data, build_basis, solve
from aceal.fit.normal_equations import Block
from aceal.jsonable import to_jsonable
from aceal.model import ACEModel
from aceal.reference import make_calculator

REPO = Path(__file__).resolve().parent.parent
EAM_FILE = REPO / "tests" / "data" / "W_zhou.eam.alloy"
ELEMENT = "W"
#: the two observation sets compared: name -> observation kinds used in the solve
OBSERVATION_SETS: dict[str, tuple[str, ...]] = {
    "E+F": ("energy", "forces"),
    "E+F+V": ("energy", "forces", "virial"),
}


@dataclass
class StudySettings:
    """Everything that defines a run of the study (all written to the JSON).

    Attributes
    ----------
    sizes : list of int
        Training cells are ``n x n x n`` conventional bcc cells (``2 n^3`` atoms).
    atoms_per_size : int
        Labelled atoms per training set; ``ceil(atoms_per_size / (2 n^3))`` cells.
    md_fraction : float
        Fraction of the cells that are thermal MD snapshots (the rest: strained + rattled).
    max_strain : float
        Random symmetric strain components are uniform in ``[-max_strain, max_strain]``.
    rattle_A : tuple of float
        Gaussian rattle amplitude (Å) of each strained cell, uniform in this range.
    md_temperatures_K : tuple of float
        Langevin temperature (K) of each MD snapshot, uniform in this range.
    md_steps_between : int
        MD steps (2 fs) before the first snapshot and between snapshots of a trajectory.
    md_snapshots_per_run : int
        Snapshots taken from one trajectory (each trajectory in a new strained cell).
    order, max_degree, r_cut_A : int, int, float
        ACE basis: body order (correlation order), total degree, cutoff (Å).
    weights : dict
        Fit weights (inverse variances): energy and virial per (eV/atom)^2, forces per
        (eV/Å)^2; the E+F set uses the same weights with the virial weight set to 0.
    radius_a0, fix_width_a0 : float
        Dislocation cylinder radius and fixed outer shell, in units of a0.
    dd_core_radius_a0 : float
        Column pairs within this distance of the core enter the DD difference.
    core_radius_a0 : float
        Atoms within this distance of the core enter the core energy.
    relax_fmax : float
        Force tolerance of the dislocation relaxation (eV/Å).
    relax_steps : int
        Maximum LBFGS steps of the dislocation relaxation.
    n_test : int
        Test cells (5x5x5, 250 atoms, same generator) for force/energy/virial errors.
    seeds : list of int
        Data seeds; each seed draws new training sets for every size.
    """

    sizes: list[int] = field(default_factory=lambda: [1, 2, 3, 4])
    atoms_per_size: int = 1024
    md_fraction: float = 0.25
    max_strain: float = 0.02
    rattle_A: tuple[float, float] = (0.02, 0.12)
    md_temperatures_K: tuple[float, float] = (500.0, 2500.0)
    md_steps_between: int = 30
    md_snapshots_per_run: int = 4
    order: int = 3
    max_degree: int = 12
    r_cut_A: float = 5.0
    weights: dict[str, float] = field(
        default_factory=lambda: {"energy": 1.0e5, "forces": 100.0, "virial": 1.0e4}
    )
    radius_a0: float = 6.0
    fix_width_a0: float = 2.5
    dd_core_radius_a0: float = 2.0
    core_radius_a0: float = 2.5
    relax_fmax: float = 0.001
    relax_steps: int = 2000
    n_test: int = 6
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])

    @classmethod
    def quick(cls) -> StudySettings:
        """Smoke-test settings: two sizes, small budget, one seed, small cylinder."""
        return cls(
            sizes=[1, 2],
            atoms_per_size=256,
            max_degree=10,
            radius_a0=5.0,
            fix_width_a0=2.0,
            core_radius_a0=2.0,
            relax_fmax=0.01,
            relax_steps=400,
            n_test=2,
            seeds=[0],
        )


# ------------------------------------------------------------------ training data
def bcc_cell(n: int, a0: float) -> Atoms:
    """``n x n x n`` conventional bcc W cell (``2 n^3`` atoms) at lattice constant a0 (Å)."""
    return bulk(ELEMENT, "bcc", a=a0, cubic=True).repeat((n, n, n))


def random_strain(rng: np.random.Generator, max_strain: float) -> np.ndarray:
    """Deformation gradient ``1 + eps`` with symmetric eps, components uniform in ±max_strain."""
    e = rng.uniform(-max_strain, max_strain, size=(3, 3))
    return np.eye(3) + 0.5 * (e + e.T)


def strained(atoms: Atoms, deformation: np.ndarray) -> Atoms:
    """Copy of ``atoms`` with cell and positions deformed homogeneously."""
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ deformation.T, scale_atoms=True)
    return out


def stratified(rng: np.random.Generator, lo: float, hi: float, k: int) -> np.ndarray:
    """``k`` values in ``[lo, hi]``, one uniform draw in each of ``k`` equal strata, shuffled.

    Every training set then spans the whole range (e.g. of rattle amplitudes) even when it
    has few configurations, so sets of different cell sizes differ in cell size, not in
    how hard their configurations happen to be.
    """
    return lo + (hi - lo) * (rng.permutation(k) + rng.uniform(size=k)) / k


def label(atoms: Atoms, calc: Calculator, config_type: str) -> Atoms:
    """Copy carrying ``calc``'s energy (eV), forces (eV/Å) and stress (eV/Å³)."""
    a = atoms.copy()
    a.calc = calc
    e, f, s = a.get_potential_energy(), a.get_forces(), a.get_stress(voigt=True)
    a.calc = SinglePointCalculator(a, energy=e, forces=f, stress=s)
    a.info["config_type"] = config_type
    return a


def md_snapshots(
    n: int,
    a0: float,
    count: int,
    settings: StudySettings,
    rng: np.random.Generator,
    calc: Calculator,
) -> list[Atoms]:
    """``count`` Langevin snapshots of ``n^3``-cell W, trajectories in random strained cells.

    Each trajectory starts from the perfect lattice in a new random cell at a
    temperature drawn (stratified, :func:`stratified`) from
    ``settings.md_temperatures_K``, runs
    ``md_steps_between`` steps of 2 fs, then gives one snapshot every
    ``md_steps_between`` steps (``md_snapshots_per_run`` per trajectory).
    """
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import thermalize_momenta

    out: list[Atoms] = []
    n_runs = math.ceil(count / settings.md_snapshots_per_run) if count > 0 else 0
    temps = stratified(rng, *settings.md_temperatures_K, n_runs)
    for temp in map(float, temps):
        at = strained(bcc_cell(n, a0), random_strain(rng, settings.max_strain))
        at.calc = calc
        thermalize_momenta(at, temperature_K=temp, rng=rng)
        dyn = Langevin(
            at, 2.0 * units.fs, temperature_K=temp, friction=0.02, fixcm=False, rng=rng,
            logfile=None,
        )
        dyn.run(settings.md_steps_between)
        for _ in range(min(settings.md_snapshots_per_run, count - len(out))):
            dyn.run(settings.md_steps_between)
            snap = at.copy()
            snap.info["temperature_K"] = temp
            out.append(label(snap, calc, "md"))
    return out


def training_set(
    n: int, a0: float, settings: StudySettings, rng: np.random.Generator, calc: Calculator
) -> list[Atoms]:
    """EAM-labelled training cells of size ``n`` with ``>= settings.atoms_per_size`` atoms.

    ``round(md_fraction * n_cells)`` are MD snapshots (:func:`md_snapshots`), the rest
    are randomly strained cells with a Gaussian rattle (amplitudes drawn stratified from
    ``settings.rattle_A``, Å).
    """
    natoms = 2 * n**3
    n_cells = math.ceil(settings.atoms_per_size / natoms)
    n_md = int(round(settings.md_fraction * n_cells))
    out = []
    for amp in stratified(rng, *settings.rattle_A, n_cells - n_md):
        at = strained(bcc_cell(n, a0), random_strain(rng, settings.max_strain))
        at.positions += rng.normal(scale=amp, size=at.positions.shape)
        out.append(label(at, calc, "rattled"))
    out.extend(md_snapshots(n, a0, n_md, settings, rng, calc))
    return out


# ------------------------------------------------------------------ fitting
def fit_models(
    structures: Sequence[Atoms], settings: StudySettings
) -> tuple[dict[str, ACEModel], dict[str, dict[str, Any]]]:
    """Fit one linear ACE model per observation set to the same labelled structures.

    The normal equations are assembled once (all three kinds); the E+F model is solved
    with the virial block removed, so both models see exactly the same data, basis,
    prior and energy/force weights.

    Returns
    -------
    (models, info)
        ``{obs_set: ACEModel}`` and ``{obs_set: {"alpha", "beta", "lambda",
        "effective_parameters", "rows", "e0_eV", "basis_size"}}``.
    """
    labels = [get_labels(a) for a in structures]
    data = Dataset(list(structures), labels)
    basis_cfg = {"order": settings.order, "max_degree": settings.max_degree,
                 "r_cut": settings.r_cut_A}
    basis, _ = build_basis(basis_cfg, [ELEMENT], data.structures)
    w = settings.weights
    neq = assemble_data(data, basis, Weights(w["energy"], w["forces"], w["virial"]),
                        {ELEMENT: 0.0}, progress=False, e0_columns=[ELEMENT])
    models, info = {}, {}
    for name, kinds in OBSERVATION_SETS.items():
        sub = NormalEquations(neq.n_basis, {k: (neq.blocks[k].copy() if k in kinds
                                                else Block.zeros(neq.n_basis))
                                            for k in neq.blocks})
        post, e0_of = solve(sub, basis.degrees, SolverSettings(method="bayesian"),
                            PriorSettings(power=2.0, offset=1.0), n_e0=1)
        e0 = {ELEMENT: float(e0_of(post.mean)[0])}
        models[name] = ACEModel(basis, post.mean, e0=e0)
        info[name] = {"alpha": float(post.alpha), "beta": float(post.beta),
                      "lambda": float(post.lam), "effective_parameters": float(post.gamma),
                      "rows": sub.n_rows, "e0_eV": e0[ELEMENT], "basis_size": len(basis)}
    return models, info


def held_out_errors(model: ACEModel, test: Sequence[Atoms]) -> dict[str, float | None]:
    """Energy (eV/atom), force (eV/Å) and stress (GPa) RMSE on the common test set."""
    labels = [get_labels(a) for a in test]
    m = error_metrics(labels, predict(model, test), [len(a) for a in test])
    s = m["stress_rmse"]
    return {"energy_rmse_meV_per_atom": 1e3 * m["energy_rmse"],
            "forces_rmse_eV_per_A": m["forces_rmse"],
            "stress_rmse_GPa": None if s is None else s / units.GPa}


# ------------------------------------------------------------------ dislocation
class EAMSiteEnergies:
    """Per-atom energies ``E_i = F(rho_i) + 1/2 sum_j phi(r_ij)`` (eV) of a one-element EAM.

    Neither ASE's nor matscipy's EAM calculator returns per-atom energies; this evaluates
    the splines of :class:`ase.calculators.eam.EAM` read from the same setfl file.
    Their sum equals the calculator's total energy (checked in :func:`run_study`).
    """

    def __init__(self, potential: str | Path) -> None:
        from ase.calculators.eam import EAM

        self.eam = EAM(potential=str(potential))
        self.cutoff = float(self.eam.cutoff)

    def __call__(self, atoms: Atoms) -> np.ndarray:
        from ase.neighborlist import neighbor_list

        i, d = neighbor_list("id", atoms, self.cutoff)
        n = len(atoms)
        rho = np.bincount(i, weights=self.eam.electron_density[0](d), minlength=n)
        pair = np.bincount(i, weights=self.eam.phi[0, 0](d), minlength=n)
        return self.eam.embedded_energy[0](rho) + 0.5 * pair


def site_energies(
    atoms: Atoms, calc: Calculator, site_fn: Callable[[Atoms], np.ndarray] | None = None
) -> np.ndarray:
    """Per-atom energies (eV): ``site_fn(atoms)`` if given, else the calculator's ``energies``."""
    if site_fn is not None:
        return np.asarray(site_fn(atoms), float)
    a = atoms.copy()
    a.calc = calc
    return np.asarray(a.get_potential_energies(), float)


def core_energy(
    disl: dict[str, Any],
    calc: Calculator,
    core_radius_a0: float,
    site_fn: Callable[[Atoms], np.ndarray] | None = None,
) -> float:
    """Core energy per length (eV/Å): site-energy change of the columns within a radius.

    ``E_core = sum_{i : |xy_i - core| < R_c} (E_i^dislocation - E_i^perfect) / L`` with
    ``R_c = core_radius_a0 * a0`` and ``L`` the periodic length (one Burgers vector).
    Unlike the total energy difference of the cylinders, this sees no free-surface
    atom (for ``R_c + cutoff`` below the cylinder radius), so it measures the core and
    its near field only.
    """
    at = disl["atoms"]
    e_p = site_energies(at["perfect"], calc, site_fn)
    e_d = site_energies(at["dislocation"], calc, site_fn)
    xy = at["perfect"].positions[:, :2]
    near = np.linalg.norm(xy - np.asarray(disl["core_xy_A"]), axis=1) < core_radius_a0 * disl[
        "a0_A"]
    return float((e_d - e_p)[near].sum() / at["dislocation"].cell[2, 2])


def dislocation_properties(
    calc: Calculator,
    settings: StudySettings,
    site_fn: Callable[[Atoms], np.ndarray] | None = None,
) -> dict[str, Any]:
    """Lattice constant, cubic elastic constants and relaxed screw core of ``calc``.

    Parameters
    ----------
    calc
        The model or reference calculator.
    settings
        Cylinder size, relaxation tolerance, core radius.
    site_fn
        Per-atom energies (eV) for calculators without an ``energies`` property.

    Returns
    -------
    dict
        ``a0_A``, ``C11_GPa``, ``C12_GPa``, ``C44_GPa``, ``E_core_eV_per_A``
        (:func:`core_energy`) and ``dislocation`` (the dict of
        :func:`aceal.validate.dislocation.screw_dislocation`, without the atoms), or
        ``error`` (message) if the model could not be evaluated (e.g. no bcc minimum).
    """
    from aceal.validate.bulk import elastic_constants, equation_of_state
    from aceal.validate.dislocation import screw_dislocation

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a0 = equation_of_state(ELEMENT, calc, structure="bcc")["a0_A"]
            c = elastic_constants(ELEMENT, calc, a0=a0, structure="bcc")
            cij = (c["C11_GPa"], c["C12_GPa"], c["C44_GPa"])
            if not (np.all(np.isfinite(cij)) and cij[2] > 0 and cij[0] > cij[1]):
                raise ValueError(f"mechanically unstable bcc: C11, C12, C44 = {cij} GPa")
            disl = screw_dislocation(
                ELEMENT, calc, a0=a0, cij_GPa=cij, radius_a0=settings.radius_a0,
                fix_width_a0=settings.fix_width_a0, fmax=settings.relax_fmax,
                steps=settings.relax_steps, return_atoms=True,
            )
            e_core = core_energy(disl, calc, settings.core_radius_a0, site_fn)
    except Exception as err:  # a badly extrapolating model must not stop the study
        return {"error": f"{type(err).__name__}: {err}"}
    disl.pop("atoms")
    return {"a0_A": float(a0), "C11_GPa": float(cij[0]), "C12_GPa": float(cij[1]),
            "C44_GPa": float(cij[2]), "E_core_eV_per_A": e_core, "dislocation": disl}


def core_errors(ref: dict[str, Any], mod: dict[str, Any], settings: StudySettings) -> dict:
    """Errors of a model's dislocation properties vs the reference's.

    Returns
    -------
    dict
        ``dE_core_meV_per_A`` (core energy within ``core_radius_a0``, signed, model -
        reference), ``rel_dE_core`` (|dE_core| / E_core_ref), ``dE_per_length_meV_per_A``
        (whole-cylinder energy per length, signed), ``rel_dE`` (|dE| / E_ref),
        ``dd_max_diff_b`` (largest |DD_model - DD_ref| / b within
        ``dd_core_radius_a0``), ``dd_rms_diff_b`` (rms of the same pairs), ``da0_A``,
        ``dC11_GPa``, ``dC12_GPa``, ``dC44_GPa``, ``converged``; NaN if the model failed.
    """
    from aceal.validate.dislocation import dd_difference

    keys = ("dE_core_meV_per_A", "rel_dE_core", "dE_per_length_meV_per_A", "rel_dE",
            "dd_max_diff_b", "dd_rms_diff_b", "da0_A", "dC11_GPa", "dC12_GPa", "dC44_GPa")
    if "error" in mod:
        return {**{k: float("nan") for k in keys}, "converged": False, "error": mod["error"]}
    rd, md = ref["dislocation"], mod["dislocation"]
    de = 1e3 * (md["E_per_length_eV_per_A"] - rd["E_per_length_eV_per_A"])
    dc = 1e3 * (mod["E_core_eV_per_A"] - ref["E_core_eV_per_A"])
    return {
        "dE_core_meV_per_A": dc,
        "rel_dE_core": abs(dc) / (1e3 * ref["E_core_eV_per_A"]),
        "dE_per_length_meV_per_A": de,
        "rel_dE": abs(de) / (1e3 * rd["E_per_length_eV_per_A"]),
        "dd_max_diff_b": dd_difference(rd, md, settings.dd_core_radius_a0),
        "dd_rms_diff_b": _dd_rms(rd, md, settings.dd_core_radius_a0),
        "da0_A": mod["a0_A"] - ref["a0_A"],
        "dC11_GPa": mod["C11_GPa"] - ref["C11_GPa"],
        "dC12_GPa": mod["C12_GPa"] - ref["C12_GPa"],
        "dC44_GPa": mod["C44_GPa"] - ref["C44_GPa"],
        "converged": bool(md["converged"]),
    }


def _dd_rms(ref: dict, mod: dict, core_radius_a0: float) -> float:
    """RMS of ``(DD_model - DD_ref) / b`` over column pairs within ``core_radius_a0``."""
    if ref["pairs"] != mod["pairs"]:
        return float("nan")
    xy = np.asarray(ref["xy_A"]) / ref["a0_A"]
    core = np.asarray(ref["core_xy_A"]) / ref["a0_A"]
    p = np.asarray(ref["pairs"])
    near = np.linalg.norm(0.5 * (xy[p[:, 0]] + xy[p[:, 1]]) - core, axis=1) < core_radius_a0
    d = (np.asarray(mod["dd_over_b"]) - np.asarray(ref["dd_over_b"]))[near]
    return float(np.sqrt(np.mean(d**2))) if d.size else float("nan")


def _slim(props: dict[str, Any]) -> dict[str, Any]:
    """Dislocation result without the per-column arrays (kept only for the reference)."""
    if "dislocation" not in props:
        return props
    d = {k: v for k, v in props["dislocation"].items()
         if k not in ("pairs", "dd_over_b", "xy_A")}
    return {**props, "dislocation": d}


# ------------------------------------------------------------------ driver
def run_study(
    settings: StudySettings, out_dir: str | Path, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run the whole study; write ``cell_size_study.json`` and ``.png`` to ``out_dir``.

    Returns
    -------
    dict
        The JSON document: ``settings``, ``reference`` (EAM a0, C, dislocation),
        ``runs`` (one entry per seed, size and observation set: training-set summary,
        fit hyperparameters, test errors, model properties, core errors), ``curves``
        (per observation set: sizes, seed-mean and -spread of every core error), ``timings_s``.
    """
    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    eam = make_calculator({"name": "EAM", "potential": str(EAM_FILE)})
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    eam_sites = EAMSiteEnergies(EAM_FILE)
    ref = dislocation_properties(eam, settings, site_fn=eam_sites)
    if "error" in ref:
        raise RuntimeError(f"reference dislocation failed: {ref['error']}")
    check = bcc_cell(2, 3.2)
    check.positions += np.random.default_rng(1).normal(scale=0.1, size=check.positions.shape)
    check.calc = eam
    gap = abs(eam_sites(check).sum() - check.get_potential_energy())
    if gap > 1e-6 * len(check):
        raise RuntimeError(f"EAM site energies do not add up to the total energy ({gap} eV)")
    a0 = ref["a0_A"]
    timings["reference"] = time.perf_counter() - t0
    rd = ref["dislocation"]
    log(f"reference EAM: a0 {a0:.4f} Å, C11/C12/C44 {ref['C11_GPa']:.0f}/{ref['C12_GPa']:.0f}/"
        f"{ref['C44_GPa']:.0f} GPa, E_core {1e3 * ref['E_core_eV_per_A']:.1f} meV/Å, "
        f"E/L {1e3 * rd['E_per_length_eV_per_A']:.1f} meV/Å "
        f"({rd['n_atoms']} atoms, {timings['reference']:.1f} s)")

    test_rng = np.random.default_rng(12345)  # one test set for every model
    test_settings = StudySettings(**{**asdict(settings), "atoms_per_size": 250 * settings.n_test})
    test = training_set(5, a0, test_settings, test_rng, eam) if settings.n_test > 0 else []

    runs: list[dict[str, Any]] = []
    for seed in settings.seeds:
        for n in settings.sizes:
            t0 = time.perf_counter()
            rng = np.random.default_rng([seed, n])
            train = training_set(n, a0, settings, rng, eam)
            t_data = time.perf_counter() - t0
            t0 = time.perf_counter()
            models, info = fit_models(train, settings)
            t_fit = time.perf_counter() - t0
            for name, model in models.items():
                t0 = time.perf_counter()
                props = dislocation_properties(ACECalculator(model), settings)
                err = core_errors(ref, props, settings)
                t_disl = time.perf_counter() - t0
                run = {
                    "seed": seed, "size": n, "cell_atoms": 2 * n**3, "observations": name,
                    "n_configs": len(train), "n_atoms": int(sum(len(a) for a in train)),
                    "n_md": sum(a.info["config_type"] == "md" for a in train),
                    "fit": info[name],
                    "test": held_out_errors(model, test) if test else {},
                    "model": _slim(props),
                    "core_error": err,
                    "timings_s": {"data": t_data, "fit_both": t_fit, "dislocation": t_disl},
                }
                runs.append(run)
                log(f"seed {seed} size {n} ({2 * n**3:3d} atoms/cell, {len(train):3d} cells) "
                    f"{name:6s}: dE_core {err['dE_core_meV_per_A']:+7.2f}, "
                    f"dE/L {err['dE_per_length_meV_per_A']:+8.2f} meV/Å, "
                    f"DD max {err['dd_max_diff_b']:.4f} b, da0 {err['da0_A']:+.4f} Å, "
                    f"F rmse {run['test'].get('forces_rmse_eV_per_A', float('nan')):.3f} "
                    f"eV/Å [{t_data:.0f}+{t_fit:.0f}+{t_disl:.0f} s]")
    timings["total"] = time.perf_counter() - t_start
    result = {
        "description": "screw-dislocation core error of linear ACE W models vs the Zhou EAM, "
                       "as a function of the bulk training-cell size (Ortner, Patel, Wang 2023)",
        "settings": asdict(settings),
        "reference": ref,
        "test_set": {"n_configs": len(test), "cell": "5x5x5 conventional (250 atoms)",
                     "n_md": sum(a.info["config_type"] == "md" for a in test)},
        "runs": runs,
        "curves": curves(runs, settings),
        "timings_s": timings,
    }
    (out / "cell_size_study.json").write_text(json.dumps(to_jsonable(result), indent=1))
    plot_study(result, out / "cell_size_study.png")
    return result


def _max_dc(err: dict[str, Any]) -> float:
    """Largest |dCij| (GPa) of C11, C12, C44; NaN if any is missing."""
    v = [err.get(k) for k in ("dC11_GPa", "dC12_GPa", "dC44_GPa")]
    return float("nan") if any(x is None for x in v) else float(np.max(np.abs(v)))


#: curve key -> how to read it from one run (signed values; curves use |value|)
CURVE_GETTERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "dE_core_meV_per_A": lambda r: r["core_error"]["dE_core_meV_per_A"],
    "dE_per_length_meV_per_A": lambda r: r["core_error"]["dE_per_length_meV_per_A"],
    "dd_max_diff_b": lambda r: r["core_error"]["dd_max_diff_b"],
    "dd_rms_diff_b": lambda r: r["core_error"]["dd_rms_diff_b"],
    "da0_A": lambda r: r["core_error"]["da0_A"],
    "max_dCij_GPa": lambda r: _max_dc(r["core_error"]),
    "test_forces_rmse_eV_per_A": lambda r: r["test"].get("forces_rmse_eV_per_A"),
    "test_stress_rmse_GPa": lambda r: r["test"].get("stress_rmse_GPa"),
}


def curves(runs: Sequence[dict], settings: StudySettings | dict) -> dict[str, dict[str, list]]:
    """Per observation set: sizes and, per key of :data:`CURVE_GETTERS`, the seed mean,
    min and max of |value| (``<key>_mean`` ...) and the signed per-seed ``<key>_values``.

    Failed models (NaN / None) are left out of the statistics and counted in ``n_failed``.
    """
    sizes = settings["sizes"] if isinstance(settings, dict) else settings.sizes
    out: dict[str, dict[str, list]] = {}
    for name in OBSERVATION_SETS:
        c: dict[str, list] = {"size": [], "cell_atoms": [], "n_failed": []}
        for n in sizes:
            sel = [r for r in runs if r["size"] == n and r["observations"] == name]
            c["size"].append(n)
            c["cell_atoms"].append(2 * n**3)
            c["n_failed"].append(sum("error" in r["core_error"] for r in sel))
            for key, get in CURVE_GETTERS.items():
                v = np.array([np.nan if get(r) is None else get(r) for r in sel], float)
                f = np.abs(v[np.isfinite(v)])
                c.setdefault(f"{key}_values", []).append(v.tolist())
                for stat, fn in (("mean", np.mean), ("min", np.min), ("max", np.max)):
                    c.setdefault(f"{key}_{stat}", []).append(float(fn(f)) if f.size
                                                             else float("nan"))
        out[name] = c
    return out


def plot_study(result: dict[str, Any], path: str | Path) -> Path:
    """Core errors vs training-cell size (atoms per cell, log axes), both observation sets.

    Panels: |dE_core| and |dE/L| of the dislocation (meV/Å), max DD difference near the core (b),
    largest elastic-constant error (GPa), force RMSE on the common test set (eV/Å).
    Lines: mean of |error| over data seeds; small markers: the individual seeds.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    panels = (("dE_core_meV_per_A", "|ΔE_core| (meV/Å, r < 2.5 a0)"),
              ("dE_per_length_meV_per_A", "|ΔE/L| whole cylinder (meV/Å)"),
              ("dd_max_diff_b", "max |ΔDD| / b  (pairs < 2 a0 from core)"),
              ("max_dCij_GPa", "max |ΔC11|, |ΔC12|, |ΔC44| (GPa)"),
              ("test_forces_rmse_eV_per_A", "test force RMSE (eV/Å, 250-atom cells)"))
    style = {"E+F": ("tab:blue", "o"), "E+F+V": ("tab:red", "s")}
    fig, grid = plt.subplots(2, 3, figsize=(12.5, 7.4))
    axes = grid.ravel()
    for ax, (key, ylabel) in zip(axes, panels, strict=False):
        for name, c in result["curves"].items():
            color, marker = style.get(name, ("k", "x"))
            x = np.asarray(c["cell_atoms"], float)
            shift = 0.94 if name == "E+F" else 1.06
            ax.plot(x, np.asarray(c[f"{key}_mean"], float), "-", color=color, marker=marker,
                    label=name)
            for xi, vals in zip(x, c[f"{key}_values"], strict=True):
                v = np.abs(np.asarray([np.nan if u is None else u for u in vals], float))
                ax.scatter(np.full(v.size, xi * shift), v, s=12, color=color, alpha=0.45,
                           marker=marker)
        ax.set_xscale("log")
        ax.set_yscale("log")
        c0 = next(iter(result["curves"].values()))
        ax.set_xticks(c0["cell_atoms"])
        ax.set_xticklabels([f"{a}\n({n}³)" for a, n in zip(c0["cell_atoms"], c0["size"],
                                                            strict=True)])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("atoms per training cell (n³ cubic cells)")
        ax.set_ylabel(ylabel, fontsize=9)
        ax.grid(alpha=0.3, which="both")
    handles, names = axes[0].get_legend_handles_labels()
    axes[-1].axis("off")
    axes[-1].legend(handles, names, title="fitted observations", loc="upper left")
    axes[-1].text(0.0, 0.45, "lines: mean of |error| over data seeds\n"
                  "small markers: individual seeds\n"
                  "E_core: site energies within 2.5 a0 of the core\n"
                  "ΔE/L: whole cylinder (incl. the fixed shell\n  and its free surface)\n"
                  "test set: 5x5x5 cells, rattled + MD",
                  transform=axes[-1].transAxes, va="top", fontsize=9)
    s = result["settings"]
    ref = result["reference"]["dislocation"]
    e_core = 1e3 * result["reference"]["E_core_eV_per_A"]
    fig.suptitle(f"W 1/2<111> screw ({ref['n_atoms']}-atom cylinder; reference E_core "
                 f"{e_core:.0f}, E/L {1e3 * ref['E_per_length_eV_per_A']:.0f} meV/Å)\n"
                 f"ACE (order {s['order']}, "
                 f"degree {s['max_degree']}, r_cut {s['r_cut_A']} Å) vs Zhou EAM; "
                 f"{s['atoms_per_size']} labelled atoms per size; {len(s['seeds'])} data "
                 "seed(s)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="sizes 1, 2; small budget, one seed (< 1 min)")
    ap.add_argument("--out", default="docs/cell-size-study", help="output directory")
    ap.add_argument("--sizes", type=int, nargs="+", help="training-cell sizes n (n^3 cells)")
    ap.add_argument("--seeds", type=int, nargs="+", help="data seeds")
    ap.add_argument("--atoms-per-size", type=int, help="labelled atoms per training set")
    ap.add_argument("--replot", metavar="JSON",
                    help="only redraw the figure (and curves) from an existing results JSON")
    args = ap.parse_args(argv)
    if args.replot:
        path = Path(args.replot)
        result = json.loads(path.read_text())
        result["curves"] = to_jsonable(curves(result["runs"], result["settings"]))
        path.write_text(json.dumps(result, indent=1))
        print(f"redrew {plot_study(result, path.with_suffix('.png'))}")
        return result
    settings = StudySettings.quick() if args.quick else StudySettings()
    if args.sizes:
        settings.sizes = list(args.sizes)
    if args.seeds:
        settings.seeds = list(args.seeds)
    if args.atoms_per_size:
        settings.atoms_per_size = args.atoms_per_size
    t0 = time.perf_counter()
    result = run_study(settings, args.out)
    print(f"wrote {Path(args.out) / 'cell_size_study.json'} and .png "
          f"({time.perf_counter() - t0:.0f} s)")
    for name, c in result["curves"].items():
        row = ", ".join(f"{n}: {e:.2f}" for n, e in
                        zip(c["cell_atoms"], c["dE_core_meV_per_A_mean"], strict=True))
        print(f"  {name:6s} mean |dE_core| (meV/Å) by atoms per cell: {row}")
    return result


if __name__ == "__main__":
    main()
