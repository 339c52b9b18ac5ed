"""Design-matrix rows and per-atom basis values against the evaluator."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from aceal import ACECalculator, ACEModel
from aceal.descriptors import DesignTables, design_rows, per_atom_basis
from tests.conftest import random_linear_model


def structures():
    a = bulk("Cu", "fcc", a=3.6).repeat((2, 2, 2))
    a.symbols[::3] = "Ni"
    a.rattle(0.1, seed=1)
    b = bulk("Ni", "fcc", a=3.5, cubic=True)
    b.rattle(0.05, seed=2)
    cluster = Atoms("CuNiCu", positions=[[0, 0, 0], [2.3, 0.2, 0], [0.4, 2.2, 0.5]])
    slab = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    slab.pbc = (True, True, False)
    slab.rattle(0.05, seed=3)
    return [a, b, cluster, slab]


@pytest.mark.parametrize("order", [1, 2, 4])
def test_rows_reproduce_model(order):
    model = random_linear_model(("Cu", "Ni"), order=order, max_degree=8, seed=order)
    c = model.coefficients
    tables = DesignTables(model.basis)
    rows = design_rows(tables, structures())
    calc = ACECalculator(model)
    for atoms, r in zip(structures(), rows, strict=True):
        atoms.calc = calc
        e0 = model.e0[[model.elements.index(s) for s in atoms.get_chemical_symbols()]].sum()
        assert r.energy @ c + e0 == pytest.approx(atoms.get_potential_energy(), abs=1e-10)
        np.testing.assert_allclose((r.forces @ c).reshape(-1, 3), atoms.get_forces(), atol=1e-10)
        if atoms.pbc.all():
            np.testing.assert_allclose(r.stress @ c, atoms.get_stress(), atol=1e-11)
        else:
            assert r.stress is None


def test_per_atom_basis_sums_to_site_energies():
    model = random_linear_model(("Cu", "Ni"), order=3, max_degree=8, seed=9)
    atoms = structures()[0]
    b = per_atom_basis(model.basis, atoms)
    atoms.calc = ACECalculator(model)
    e0 = model.e0[[model.elements.index(s) for s in atoms.get_chemical_symbols()]]
    np.testing.assert_allclose(b @ model.coefficients + e0, atoms.get_potential_energies(),
                               atol=1e-11)
    # functions of the other species are zero
    species = np.array([model.elements.index(s) for s in atoms.get_chemical_symbols()])
    assert np.all(b[species[:, None] != model.basis.species[None, :]] == 0.0)


def test_single_function_columns_are_basis_functions():
    """Column k is exactly B_k: a model with the unit vector e_k reproduces it."""
    model = random_linear_model(("Cu",), order=3, max_degree=7, seed=2)
    atoms = bulk("Cu", "fcc", a=3.6).repeat((2, 2, 1))
    atoms.rattle(0.1, seed=4)
    rows = design_rows(model.basis, [atoms])[0]
    for k in [0, len(model.basis) // 2, len(model.basis) - 1]:
        unit = np.zeros(len(model.basis))
        unit[k] = 1.0
        a = atoms.copy()
        a.calc = ACECalculator(ACEModel(model.basis, unit))
        assert rows.energy[k] == pytest.approx(a.get_potential_energy(), abs=1e-12)
        np.testing.assert_allclose(rows.forces[:, k], a.get_forces().ravel(), atol=1e-12)
