"""aceal-written potentials in a real LAMMPS (ML-PACE): same energies, forces, stress and γ.

Skipped unless a LAMMPS with ML-PACE is found (``tools/build_lammps_pace.sh`` builds one
into ``~/.cache/aceal/lammps-pace`` or ``$ACEAL_LAMMPS_PREFIX``; see docs/lammps.md).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from aceal import ACECalculator, ACEModel
from aceal.evaluation import species_indices
from aceal.formats.lammps import LammpsPace, export_lammps, import_lammps, pair_commands
from aceal.grade import ExtrapolationGrader
from tests.conftest import random_linear_model

pytestmark = pytest.mark.skipif(
    import_lammps() is None,
    reason="LAMMPS with ML-PACE not found (run tools/build_lammps_pace.sh)",
)

REPO = Path(__file__).resolve().parents[1]
REPULSION = {"prehc": 400.0, "lambdahc": 7.0}
E_TOL, F_TOL, S_TOL = 1e-8, 1e-7, 1e-8  # eV/atom, eV/Å, eV/Å³


def _model(elements, order=3, max_degree=8):
    m = random_linear_model(elements=elements, order=order, max_degree=max_degree,
                            r_in=1.2, delta_in=0.3)  # fmt: skip
    e0 = {el: -1.0 - 0.1 * k for k, el in enumerate(elements)}
    return ACEModel(m.basis, m.coefficients, e0=e0, repulsion=REPULSION)


def _structure(elements, kind, seed=1, rattle=0.15):
    rng = np.random.default_rng(seed)
    if kind == "cubic":
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    else:  # primitive fcc cell: not LAMMPS' lower-triangular form, exercises the rotation
        atoms = bulk("Cu", "fcc", a=3.6).repeat((3, 3, 3))
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.03 * rng.normal(size=(3, 3))),
                       scale_atoms=True)  # fmt: skip
    atoms.positions += rng.normal(scale=rattle, size=atoms.positions.shape)
    atoms.symbols = rng.choice(list(elements), size=len(atoms))
    # one close pair inside r_in, where the core repulsion acts
    atoms.positions[1] = atoms.positions[0] + [1.0, 0.2, 0.1]
    return atoms


def _aceal(model, atoms, active_set=None):
    atoms = atoms.copy()
    atoms.calc = ACECalculator(model, active_set=active_set)
    out = {
        "energy": atoms.get_potential_energy(),
        "energies": atoms.get_potential_energies(),
        "forces": atoms.get_forces(),
        "stress": atoms.get_stress(),
    }
    if active_set is not None:
        out["gamma"] = atoms.calc.get_property("gamma", atoms)
    return out


def _compare(ref, got, n, e_shift=0.0, e_shift_atoms=0.0):
    assert abs(got["energy"] + e_shift - ref["energy"]) / n < E_TOL
    assert np.abs(got["energies"] + e_shift_atoms - ref["energies"]).max() < E_TOL
    assert np.abs(got["forces"] - ref["forces"]).max() < F_TOL
    assert np.abs(got["stress"] - ref["stress"]).max() < S_TOL


@pytest.mark.parametrize("style", ["recursive", "product"])
@pytest.mark.parametrize("kind", ["cubic", "triclinic"])
@pytest.mark.parametrize("elements", [("Cu",), ("Cu", "Ni"), ("Ni", "Cu")],
                         ids=["Cu", "CuNi", "NiCu"])  # fmt: skip
def test_yace_in_lammps_matches_aceal(tmp_path, elements, kind, style):
    model = _model(elements)
    model.save(tmp_path / "m.yace")
    atoms = _structure(elements, kind)
    ref = _aceal(model, atoms)
    assert np.abs(ref["forces"]).max() > 1.0  # the repulsion is really felt
    got = LammpsPace(pair_commands(tmp_path / "m.yace", elements, options=style),
                     elements).calculate(atoms)  # fmt: skip
    _compare(ref, got, len(atoms))


def _training(elements, n=30, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = bulk("Cu", "fcc", a=3.6 * (1 + 0.03 * rng.normal()), cubic=True).repeat((2, 2, 2))
        a.set_cell(a.cell.array @ (np.eye(3) + 0.02 * rng.normal(size=(3, 3))), scale_atoms=True)
        a.positions += rng.normal(scale=0.2, size=a.positions.shape)
        a.symbols = rng.choice(list(elements), size=len(a))
        out.append(a)
    return out


@pytest.mark.parametrize(
    "elements,order,max_degree",
    [(("Cu",), 3, 8), (("Cu", "Ni"), 3, 6), (("Cu",), 4, 9), (("Ni", "Cu"), 4, 6)],
    ids=["Cu-order3", "CuNi-order3", "Cu-order4", "NiCu-order4"],  # pacemaker sorts Ni, Cu
)
def test_pace_extrapolation_gamma_matches_aceal(tmp_path, elements, order, max_degree):
    model = _model(elements, order, max_degree)
    grader = ExtrapolationGrader.from_training(model.basis, _training(elements))
    files = export_lammps(model, tmp_path / "m", grader)
    assert files["pace_extrapolation"] == [
        "pair_style pace/extrapolation",
        f"pair_coeff * * m.yaml m.asi {' '.join(elements)}",
    ]
    pair = pair_commands(files["yaml"], elements, style="pace/extrapolation", asi=files["asi"])
    lmp = LammpsPace(pair, elements, extrapolation=True)
    for rattle in (0.05, 0.25, 0.45):  # interpolation ... strong extrapolation
        atoms = _structure(elements, "cubic", seed=5, rattle=rattle)
        ref = _aceal(model, atoms, active_set=grader)
        got = lmp.calculate(atoms)
        np.testing.assert_allclose(got["gamma"], ref["gamma"], rtol=1e-8, atol=1e-10)
        # the B-basis file has no E0: LAMMPS' energies are ours minus E0
        e0 = model.e0[species_indices(atoms.numbers, model.elements)]
        _compare(ref, got, len(atoms), e_shift=e0.sum(), e_shift_atoms=e0)
    assert ref["gamma"].max() > 5  # the last structure is well outside the training set


def test_example_md_input(tmp_path):
    """examples/lammps: the model script and the γ-monitored MD input run, and the dump of
    extrapolative configurations reads back with ASE."""
    from ase.io import read

    ex = REPO / "examples" / "lammps"
    subprocess.run([sys.executable, str(ex / "make_model.py"), "--out", str(tmp_path),
                    "--structures", "40"], check=True, capture_output=True)  # fmt: skip
    lammps = import_lammps()
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite",
                                 "-var", "nsteps", "300", "-var", "gamma_dump", "1.2"])  # fmt: skip
    cwd = Path.cwd()
    try:
        os.chdir(tmp_path)
        lmp.file(str(ex / "in.gamma_md"))
    finally:
        os.chdir(cwd)
        lmp.close()
    frames = read(tmp_path / "extrapolative_structures.dump", ":", format="lammps-dump-text")
    assert frames and all(set(a.get_chemical_symbols()) == {"Cu"} for a in frames)
    assert len(frames[0]) == 256
