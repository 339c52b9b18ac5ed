"""Fit a small Cu ACE model for the LAMMPS example and write its LAMMPS files.

Training data: strained and rattled fcc Cu supercells labelled by the EAM potential in
tests/data (a stand-in for DFT). The model is a linear ACE fit (order 3) with PACE core
repulsion; the active set (for γ) is chosen from the same training atoms.

Writes, in the current directory (or --out):
  Cu.yace   pair_style pace                 (production MD)
  Cu.yaml   pair_style pace/extrapolation   (pacemaker B-basis of the same model)
  Cu.asi    active-set inverse for pace/extrapolation
  Cu.model.yaml, Cu.model.asi.npz           the aceal model and its active set

Usage: python examples/lammps/make_model.py [--out DIR] [--structures N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.calculators.eam import EAM

from aceal import ACEBasis, ACECalculator, ACEModel
from aceal.descriptors import design_rows
from aceal.formats.lammps import export_lammps
from aceal.grade import ExtrapolationGrader

EAM_FILE = Path(__file__).resolve().parents[2] / "tests" / "data" / "Cu_mishin1.eam.alloy"
REPULSION = {"prehc": 400.0, "lambdahc": 7.0}


def training_set(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    calc = EAM(potential=str(EAM_FILE))
    out = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.615, cubic=True).repeat((2, 2, 2))
        strain = np.eye(3) + rng.uniform(-0.04, 0.04, size=(3, 3))
        atoms.set_cell(atoms.cell.array @ (0.5 * (strain + strain.T)), scale_atoms=True)
        atoms.positions += rng.normal(scale=0.03 + 0.2 * k / n, size=atoms.positions.shape)
        atoms.calc = calc
        atoms.info["energy"] = atoms.get_potential_energy()
        atoms.arrays["forces"] = atoms.get_forces()
        atoms.info["stress"] = atoms.get_stress()
        atoms.calc = None
        out.append(atoms)
    return out


def fit(
    basis: ACEBasis,
    structures,
    w_energy: float = 100.0,
    w_virial: float = 100.0,
    ridge: float = 1e-8,
) -> ACEModel:
    """Least squares on energies and virials per atom and on forces (E0 fitted), with the
    core repulsion subtracted from the targets (a minimal stand-in for ``aceal fit``)."""
    rep_only = ACECalculator(ACEModel(basis, np.zeros(len(basis)), repulsion=REPULSION))
    rows, rhs = [], []
    for atoms, d in zip(structures, design_rows(basis, structures), strict=True):
        probe = atoms.copy()
        probe.calc = rep_only
        e_rep, f_rep, s_rep = probe.get_potential_energy(), probe.get_forces(), probe.get_stress()
        n, vol = len(atoms), atoms.get_volume()
        sw = np.sqrt(w_energy)
        rows.append(sw * np.r_[d.energy / n, 1.0][None, :])
        rhs.append([sw * (atoms.info["energy"] - e_rep) / n])
        rows.append(np.c_[d.forces, np.zeros(3 * n)])
        rhs.append((atoms.arrays["forces"] - f_rep).ravel())
        sv = np.sqrt(w_virial) * vol / n
        rows.append(sv * np.c_[d.stress, np.zeros(6)])
        rhs.append(sv * (atoms.info["stress"] - s_rep))
    a, b = np.vstack(rows), np.concatenate([np.ravel(r) for r in rhs])
    reg = np.sqrt(ridge) * np.eye(a.shape[1])
    reg[-1, -1] = 0.0  # no prior on E0
    sol = np.linalg.lstsq(np.vstack([a, reg]), np.r_[b, np.zeros(a.shape[1])], rcond=None)[0]
    return ACEModel(basis, sol[:-1], e0={"Cu": float(sol[-1])}, repulsion=REPULSION)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=".")
    ap.add_argument("--structures", type=int, default=60)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    structures = training_set(args.structures)
    basis = ACEBasis(["Cu"], order=3, max_degree=8, r_cut=5.0, r_in=1.6, delta_in=0.4)
    model = fit(basis, structures)
    grader = ExtrapolationGrader.from_training(basis, structures)
    files = export_lammps(model, out / "Cu", grader)
    model.save(out / "Cu.model.yaml")
    grader.save(out / "Cu.model.asi.npz")
    calc = ACECalculator(model)
    ferr, eerr = [], []
    for atoms in structures:
        atoms = atoms.copy()
        atoms.calc = calc
        ferr.append(np.sqrt(np.mean((atoms.get_forces() - atoms.arrays["forces"]) ** 2)))
        eerr.append((atoms.get_potential_energy() - atoms.info["energy"]) / len(atoms))
    e_rmse = 1e3 * np.sqrt(np.mean(np.square(eerr)))
    f_rmse = np.sqrt(np.mean(np.square(ferr)))
    print(
        f"{len(basis)} functions; training RMSE: energy {e_rmse:.1f} meV/atom, "
        f"forces {f_rmse:.3f} eV/Å"
    )
    print("wrote", ", ".join(str(files[k]) for k in ("yace", "yaml", "asi")))


if __name__ == "__main__":
    main()
