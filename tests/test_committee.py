"""Committee force spread (``forces_std``, ``forces_committee``) from the same kernel pass
as the mean model: it must equal K separate single-model calculations."""

import numpy as np
import pytest
from ase.build import bulk

from aceal import ACECalculator, ACEModel
from tests.conftest import random_linear_model


def _atoms(elements=("Cu",)):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    if "Ni" in elements:
        atoms.symbols[::3] = "Ni"
    atoms.rattle(0.08, seed=4)
    return atoms


def _committee_model(elements, k, order=3, max_degree=8, repulsion=None, seed=1):
    base = random_linear_model(elements, order=order, max_degree=max_degree, seed=seed)
    rng = np.random.default_rng(seed + 10)
    committee = base.coefficients + 0.05 * rng.normal(size=(k, len(base.coefficients)))
    model = ACEModel(
        base.basis, base.coefficients, e0=base.e0, committee=committee, repulsion=repulsion
    )
    return base, model


def _separate(atoms, base, coefs, repulsion=None):
    forces, energies = [], []
    for c in coefs:
        a = atoms.copy()
        a.calc = ACECalculator(ACEModel(base.basis, c, e0=base.e0, repulsion=repulsion))
        forces.append(a.get_forces())
        energies.append(a.get_potential_energy())
    return np.array(forces), np.array(energies)


@pytest.mark.parametrize(
    ("elements", "k", "order", "repulsion"),
    [
        (("Cu",), 8, 3, None),
        (("Cu", "Ni"), 3, 4, None),
        (("Cu",), 4, 3, {"prehc": 400.0, "lambdahc": 7.0}),
    ],
)
def test_forces_std_matches_separate_members(elements, k, order, repulsion):
    base, model = _committee_model(elements, k, order=order, repulsion=repulsion)
    atoms = _atoms(elements)
    atoms.calc = ACECalculator(model)
    atoms.get_forces()
    res = atoms.calc.results
    fk, _ = _separate(atoms, base, model.committee, repulsion)
    scale = np.abs(fk).max()
    np.testing.assert_allclose(res["forces_committee"], fk, rtol=0, atol=1e-10 * scale)
    dev = fk - fk.mean(axis=0)
    expected = np.sqrt((dev**2).sum(axis=(0, 2)) / (k - 1))
    assert res["forces_std"].shape == (len(atoms),)
    np.testing.assert_allclose(res["forces_std"], expected, rtol=1e-10, atol=1e-12 * scale)
    assert expected.max() > 1e-3  # the members really differ


def test_committee_leaves_mean_unchanged():
    base, model = _committee_model(("Cu", "Ni"), 5)
    atoms = _atoms(("Cu", "Ni"))
    atoms.calc = ACECalculator(base)
    e, f, s = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    en = atoms.get_potential_energies()
    atoms.calc = ACECalculator(model)
    np.testing.assert_allclose(atoms.get_potential_energy(), e, rtol=1e-12)
    np.testing.assert_allclose(atoms.get_potential_energies(), en, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), f, rtol=0, atol=1e-12 * np.abs(f).max())
    np.testing.assert_allclose(atoms.get_stress(), s, rtol=0, atol=1e-12 * np.abs(s).max())


def test_single_member_has_zero_spread():
    base, model = _committee_model(("Cu",), 1)
    atoms = _atoms()
    atoms.calc = ACECalculator(model)
    atoms.get_forces()
    res = atoms.calc.results
    np.testing.assert_array_equal(res["forces_std"], np.zeros(len(atoms)))
    fk, _ = _separate(atoms, base, model.committee)
    np.testing.assert_allclose(res["forces_committee"], fk, rtol=0, atol=1e-10 * np.abs(fk).max())


def test_two_members():
    base, model = _committee_model(("Cu",), 2)
    atoms = _atoms()
    atoms.calc = ACECalculator(model)
    atoms.get_forces()
    res = atoms.calc.results
    fk, ek = _separate(atoms, base, model.committee)
    # K = 2: |F_1 - F_2| / sqrt(2)
    expected = np.linalg.norm(fk[0] - fk[1], axis=1) / np.sqrt(2.0)
    np.testing.assert_allclose(res["forces_std"], expected, rtol=1e-10, atol=1e-14)
    assert res["energy_std"] == pytest.approx(np.std(ek, ddof=1), rel=1e-9)
    # no committee: no committee results
    atoms.calc = ACECalculator(base)
    atoms.get_forces()
    assert "forces_std" not in atoms.calc.results


def test_member_forces_on_request():
    """committee_forces=False: energy spreads with every call, member forces only when
    asked for (then equal to the default calculator's)."""
    from ase.calculators.calculator import PropertyNotImplementedError

    base, model = _committee_model(("Cu",), 4)
    atoms = _atoms()
    full = ACECalculator(model)
    lazy = ACECalculator(model, committee_forces=False)
    atoms.calc = full
    f_full = atoms.get_forces()
    ref = dict(full.results)
    atoms.calc = lazy
    np.testing.assert_allclose(atoms.get_forces(), f_full, rtol=0, atol=1e-12)
    assert "forces_std" not in lazy.results and "forces_committee" not in lazy.results
    np.testing.assert_allclose(lazy.results["energies_std"], ref["energies_std"], rtol=1e-12)
    assert lazy.results["energy_std"] == pytest.approx(ref["energy_std"], rel=1e-12)
    std = lazy.get_property("forces_std", atoms)
    np.testing.assert_allclose(std, ref["forces_std"], rtol=1e-12, atol=1e-14)
    assert std.max() > 1e-3
    np.testing.assert_allclose(full.get_property("energy_std", atoms), ref["energy_std"])
    atoms.calc = ACECalculator(base)
    with pytest.raises(PropertyNotImplementedError, match="committee"):
        atoms.calc.get_property("forces_std", atoms)
