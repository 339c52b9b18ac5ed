"""Physics of the evaluator through the ASE calculator: symmetries, derivatives, extensivity,
energy conservation, bad input."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.md.velocitydistribution import thermalize_momenta
from ase.md.verlet import VelocityVerlet
from ase.units import fs
from scipy.spatial.transform import Rotation

from aceal import ACECalculator, ACEModel
from aceal.errors import AcealInputError
from tests.conftest import DATA, random_linear_model


@pytest.fixture(scope="module")
def cuni_calc():
    return ACECalculator(DATA / "cuni_small.yace")


@pytest.fixture(scope="module")
def linear_calc():
    """Our own basis up to correlation order 4 (body order 5), two elements."""
    return ACECalculator(random_linear_model(("Cu", "Ni"), order=4, max_degree=9, seed=3))


def random_cluster(n=13, seed=0, symbols=("Cu", "Ni")):
    rng = np.random.default_rng(seed)
    pos = []
    while len(pos) < n:
        p = rng.uniform(-3.5, 3.5, 3)
        if all(np.linalg.norm(p - q) > 2.0 for q in pos):
            pos.append(p)
    return Atoms([symbols[i % len(symbols)] for i in range(n)], positions=pos)


def random_cell(seed=0):
    atoms = bulk("Cu", "fcc", a=3.6).repeat((2, 2, 2))
    atoms.symbols[::3] = "Ni"
    atoms.rattle(0.1, seed=seed)
    cell = atoms.cell.array.copy()
    cell[2] += [0.4, -0.3, 0.1]  # triclinic
    atoms.set_cell(cell, scale_atoms=True)
    return atoms


def energy_forces(atoms, calc):
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy(), atoms.get_forces()


@pytest.mark.parametrize("calc_name", ["cuni_calc", "linear_calc"])
@pytest.mark.parametrize("make", [random_cluster, random_cell])
def test_rotation_translation_permutation_invariance(calc_name, make, request):
    calc = request.getfixturevalue(calc_name)
    atoms = make(seed=1)
    e0, f0 = energy_forces(atoms, calc)
    assert abs(e0) > 1e-6
    rot = Rotation.random(random_state=7).as_matrix()
    moved = atoms.copy()
    moved.positions = atoms.positions @ rot.T + [1.3, -2.1, 0.7]
    moved.set_cell(atoms.cell.array @ rot.T, scale_atoms=False)
    e1, f1 = energy_forces(moved, calc)
    assert e1 == pytest.approx(e0, rel=1e-10)
    np.testing.assert_allclose(f1, f0 @ rot.T, atol=1e-9)
    # reflection (inversion-invariant basis)
    mirrored = atoms.copy()
    mirrored.positions = -atoms.positions
    mirrored.set_cell(-atoms.cell.array, scale_atoms=False)
    assert energy_forces(mirrored, calc)[0] == pytest.approx(e0, rel=1e-10)
    perm = np.random.default_rng(3).permutation(len(atoms))
    e2, f2 = energy_forces(atoms[perm], calc)
    assert e2 == pytest.approx(e0, rel=1e-10)
    np.testing.assert_allclose(f2, f0[perm], atol=1e-10)


@pytest.mark.parametrize("calc_name", ["cuni_calc", "linear_calc"])
def test_forces_and_stress_match_finite_differences(calc_name, request):
    calc = request.getfixturevalue(calc_name)
    atoms = random_cell(seed=4)
    atoms.calc = calc
    forces = atoms.get_forces()
    h = 1e-5
    fd = np.zeros_like(forces)
    for i in range(len(atoms)):
        for a in range(3):
            e = []
            for sign in (1, -1):
                atoms.positions[i, a] += sign * h
                e.append(atoms.get_potential_energy())
                atoms.positions[i, a] -= sign * h
            fd[i, a] = -(e[0] - e[1]) / (2 * h)
    scale = np.abs(forces).max()
    assert np.abs(fd - forces).max() / scale < 1e-6
    stress = atoms.get_stress(voigt=False)
    fd_stress = np.zeros((3, 3))
    cell0 = atoms.cell.array.copy()
    vol = atoms.get_volume()
    for a in range(3):
        for b in range(3):
            e = []
            for sign in (1, -1):
                eps = np.eye(3)
                eps[a, b] += sign * h
                atoms.set_cell(cell0 @ eps, scale_atoms=True)
                e.append(atoms.get_potential_energy())
            atoms.set_cell(cell0, scale_atoms=True)
            fd_stress[a, b] = (e[0] - e[1]) / (2 * h) / vol
    assert np.abs(fd_stress - stress).max() / np.abs(stress).max() < 1e-6


def test_extensivity_primitive_vs_supercell():
    """A 1-atom fcc cell with a 7 Å cutoff (hundreds of periodic images) is exactly 1/n of
    its supercells."""
    calc = ACECalculator(random_linear_model(("Cu",), order=3, max_degree=10, r_cut=7.0, seed=5))
    prim = bulk("Cu", "fcc", a=3.6)
    prim.calc = calc
    e1 = prim.get_potential_energy()
    for reps in [(2, 2, 2), (3, 1, 2)]:
        sup = prim.repeat(reps)
        sup.calc = calc
        n = len(sup)
        assert sup.get_potential_energy() / n == pytest.approx(e1, rel=1e-12, abs=1e-13)
        np.testing.assert_allclose(sup.get_stress(), prim.get_stress(), atol=1e-12)
    cubic = bulk("Cu", "fcc", a=3.6, cubic=True)
    cubic.calc = calc
    assert cubic.get_potential_energy() / 4 == pytest.approx(e1, rel=1e-12)


def test_nve_energy_conservation():
    """Velocity Verlet, 108 atoms, 1000 steps with the DFT-quality PACE Cu potential."""
    atoms = bulk("Cu", "fcc", a=3.62, cubic=True).repeat((3, 3, 3))
    assert len(atoms) == 108
    atoms.calc = ACECalculator(DATA / "Cu-PBE-core-rep.yace")
    thermalize_momenta(atoms, temperature_K=600, rng=np.random.default_rng(0))
    dyn = VelocityVerlet(atoms, timestep=1.0 * fs)
    energies = []
    dyn.attach(lambda: energies.append(atoms.get_total_energy()), interval=10)
    dyn.run(1000)
    energies = np.array(energies)
    drift = np.abs(energies - energies[0]).max() / abs(energies[0])
    assert drift < 1e-4
    assert atoms.get_kinetic_energy() > 0.5 * 108 * 1.5 * 8.617e-5 * 200  # really moved


def test_unknown_element_is_named(cuni_calc):
    atoms = Atoms("CuFe", positions=[[0, 0, 0], [2.5, 0, 0]])
    atoms.calc = cuni_calc
    with pytest.raises(AcealInputError, match="Fe"):
        atoms.get_potential_energy()


def test_nan_position_raises(cuni_calc):
    atoms = Atoms("CuNi", positions=[[0, 0, 0], [np.nan, 0, 0]])
    atoms.calc = cuni_calc
    with pytest.raises(AcealInputError, match="non-finite"):
        atoms.get_potential_energy()


def test_overlapping_atoms_clear_error_or_finite(cuni_calc):
    atoms = Atoms("CuNi", positions=[[0, 0, 0], [0, 0, 1e-5]])
    atoms.calc = cuni_calc
    with pytest.raises(AcealInputError, match="apart"):
        atoms.get_potential_energy()
    # a model with core repulsion gives a finite, strongly repulsive answer at short range
    atoms = Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 0.5]])
    atoms.calc = ACECalculator(DATA / "Cu-PBE-core-rep.yace")
    e_short = atoms.get_potential_energy()
    f = atoms.get_forces()
    assert np.isfinite(e_short) and np.all(np.isfinite(f))
    assert f[1, 2] > 1.0  # pushed apart


def test_stress_requires_periodic_cell(cuni_calc):
    from ase.calculators.calculator import PropertyNotImplementedError

    atoms = random_cluster(5)
    atoms.calc = cuni_calc
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stress()


def test_model_yaml_and_yace_roundtrip(tmp_path):
    model = random_linear_model(("Cu", "Ni"), order=3, max_degree=8, seed=11)
    atoms = random_cell(2)
    e_ref, f_ref = energy_forces(atoms, ACECalculator(model))
    model.save(tmp_path / "m.yaml")
    again = ACEModel.load(tmp_path / "m.yaml")
    np.testing.assert_array_equal(again.coefficients, model.coefficients)
    e1, f1 = energy_forces(atoms, ACECalculator(again))
    assert e1 == e_ref
    model.save(tmp_path / "m.yace")  # for LAMMPS pair_style pace
    e2, f2 = energy_forces(atoms, ACECalculator(tmp_path / "m.yace"))
    assert e2 == pytest.approx(e_ref, abs=1e-10)
    assert np.abs(f2 - f_ref).max() < 1e-10


def test_newer_model_format_is_refused(tmp_path):
    path = tmp_path / "future.yaml"
    path.write_text("format: aceal-model\nversion: 99\n")
    with pytest.raises(AcealInputError, match="newer"):
        ACEModel.load(path)


def test_committee_energy_std():
    base = random_linear_model(("Cu",), order=2, max_degree=6, seed=1)
    rng = np.random.default_rng(0)
    committee = base.coefficients + 0.01 * rng.normal(size=(5, len(base.coefficients)))
    model = ACEModel(base.basis, base.coefficients, e0=base.e0, committee=committee)
    atoms = bulk("Cu", "fcc", a=3.6).repeat((2, 2, 2))
    atoms.rattle(0.05, seed=1)
    atoms.calc = ACECalculator(model)
    atoms.get_potential_energy()
    members = []
    for c in committee:
        a = atoms.copy()
        a.calc = ACECalculator(ACEModel(base.basis, c, e0=base.e0))
        members.append(a.get_potential_energy())
    np.testing.assert_allclose(atoms.calc.results["energy_committee"], members, rtol=1e-12)
    assert atoms.calc.results["energy_std"] == pytest.approx(np.std(members, ddof=1), rel=1e-10)


def test_works_with_optimizer_and_neb():
    from ase.mep import NEB
    from ase.optimize import BFGS

    model = ACEModel.load(DATA / "Cu-PBE-core-rep.yace")
    initial = bulk("Cu", "fcc", a=3.62, cubic=True).repeat((2, 2, 2))
    del initial[0]
    final = initial.copy()
    # move the nearest neighbour of the vacancy (site 0 of the perfect cell) into it
    nb = int(np.argmin(np.linalg.norm(initial.positions - [0, 0, 0], axis=1)))
    final.positions[nb] = [0.0, 0.0, 0.0]
    for a in (initial, final):
        a.calc = ACECalculator(model)
        BFGS(a, logfile=None).run(fmax=0.05, steps=100)
        assert np.abs(a.get_forces()).max() < 0.05
    images = [initial] + [initial.copy() for _ in range(3)] + [final]
    for im in images[1:-1]:
        im.calc = ACECalculator(model)
    neb = NEB(images, method="improvedtangent")
    neb.interpolate()
    BFGS(neb, logfile=None).run(fmax=0.1, steps=60)
    barrier = max(im.get_potential_energy() for im in images) - initial.get_potential_energy()
    assert 0.3 < barrier < 1.5  # DFT vacancy migration in Cu is ~0.7 eV
