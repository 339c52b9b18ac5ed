"""Agreement with pyace (= LAMMPS pair_style pace) on PACE .yace potentials.

``reference_pyace.xyz`` (copied from ../shared/data/pace) was computed by pyace and agrees
with LAMMPS to 1e-11 eV/Å; it stores positions and results with 8 decimals, so any
re-evaluation (pyace's own included) differs from it by up to ~1e-7 eV/Å in forces and
~1.6e-8 eV in per-atom energies. ``reference_pyace_fullprec.json`` holds pyace's results on
exactly the stored positions at full precision (see make_pyace_reference.py), which
allows a much tighter check.
"""

import json

import numpy as np
import pytest
from ase.io import read

from aceal import ACECalculator, ACEModel
from tests.conftest import DATA

FRAMES = read(DATA / "reference_pyace.xyz", ":")
FULLPREC = {(e["model"], e["structure"]): e for e in json.loads(
    (DATA / "reference_pyace_fullprec.json").read_text())}
MODELS = sorted({a.info["model"] for a in FRAMES})


@pytest.fixture(scope="module")
def calculators():
    return {name: ACECalculator(DATA / name) for name in MODELS}


@pytest.mark.parametrize("index", range(len(FRAMES)),
                         ids=[f"{a.info['model']}-{a.info['structure']}" for a in FRAMES])
def test_matches_pyace(index, calculators):
    ref = FRAMES[index]
    atoms = ref.copy()
    atoms.calc = calculators[ref.info["model"]]
    n = len(atoms)
    e, f, ei = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_potential_energies()
    # the 8-decimal file, at the tolerances (limited by the file's rounding)
    assert abs(e - ref.get_potential_energy()) / n < 1e-8
    assert np.abs(f - ref.get_forces()).max() < 1e-7
    assert np.abs(ei - ref.calc.results["energies"]).max() < 2e-8
    # pyace at full precision on the same positions
    full = FULLPREC[(ref.info["model"], ref.info["structure"])]
    assert abs(e - full["energy"]) / n < 1e-10
    assert np.abs(f - np.array(full["forces"])).max() < 1e-9
    assert np.abs(ei - np.array(full["energies"])).max() < 1e-10
    if ref.pbc.all():
        s = atoms.get_stress()
        assert np.abs(s - ref.get_stress()).max() < 1e-8
        assert np.abs(s - np.array(full["stress"])).max() < 1e-10


def test_yace_roundtrip_through_writer(tmp_path):
    """Writing a loaded .yace back out and reading it again changes nothing."""
    model = ACEModel.load(DATA / "cuni_small.yace")
    model.save(tmp_path / "copy.yace")
    again = ACEModel.load(tmp_path / "copy.yace")
    atoms = [a for a in FRAMES if a.info["model"] == "cuni_small.yace"][0].copy()
    atoms.calc = ACECalculator(model)
    e1, f1 = atoms.get_potential_energy(), atoms.get_forces()
    atoms.calc = ACECalculator(again)
    assert atoms.get_potential_energy() == pytest.approx(e1, abs=1e-12)
    assert np.abs(atoms.get_forces() - f1).max() < 1e-12
