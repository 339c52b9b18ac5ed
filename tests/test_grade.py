"""Extrapolation grade γ from the model's basis: ≤ 1 on training, > 1 on new structures."""

import numpy as np
import pytest
from ase.build import bulk, fcc111

from aceal import ACECalculator
from aceal.grade import ExtrapolationGrader
from tests.conftest import random_linear_model


@pytest.fixture(scope="module")
def model_and_grader():
    model = random_linear_model(("Cu",), order=2, max_degree=8, seed=0)
    rng = np.random.default_rng(1)
    training = []
    for k in range(6):
        a = bulk("Cu", "fcc", a=3.6 + 0.02 * (k - 3), cubic=True).repeat((2, 2, 2))
        a.rattle(0.08, seed=int(rng.integers(1000)))
        training.append(a)
    return model, training, ExtrapolationGrader.from_training(model.basis, training)


def test_gamma_interpolation_on_training(model_and_grader):
    _, training, grader = model_and_grader
    for atoms in training:
        assert grader(atoms).max() <= 1.01 + 1e-9  # MaxVol tolerance


def test_gamma_flags_surface_and_liquid(model_and_grader):
    _, _, grader = model_and_grader
    slab = fcc111("Cu", size=(3, 3, 4), a=3.6, vacuum=6.0)
    g = grader(slab)
    top = slab.positions[:, 2] > slab.positions[:, 2].max() - 0.1
    assert g[top].min() > 1.5
    rng = np.random.default_rng(5)
    liquid = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    liquid.positions += rng.normal(scale=0.45, size=liquid.positions.shape)
    assert np.median(grader(liquid)) > 1.0


def test_gamma_through_calculator_and_sidecar(model_and_grader, tmp_path):
    model, training, grader = model_and_grader
    model.save(tmp_path / "m.yaml")
    grader.save(tmp_path / "m.asi.npz")
    calc = ACECalculator(tmp_path / "m.yaml")  # picks up the sidecar
    atoms = training[0].copy()
    atoms.calc = calc
    gamma = calc.get_property("gamma", atoms)
    np.testing.assert_allclose(gamma, grader(atoms), rtol=1e-12)
    atoms.get_forces()  # ordinary calls do not compute gamma


def test_active_set_of_ill_conditioned_training_set_is_usable():
    """Rattled crystals span a poorly conditioned row space; the chosen rows must still
    give a usable inverse (regression: 'active set is singular (185 rows, rank 181)')."""
    from aceal import ACEBasis

    basis = ACEBasis(["Cu"], order=3, max_degree=12, r_cut=5.0)
    training = []
    for k in range(10):
        a = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
        a.rattle(0.05 * (1 + k % 3), seed=k)
        training.append(a)
    grader = ExtrapolationGrader.from_training(basis, training)
    assert max(grader(a).max() for a in training) <= 1.01 + 1e-6
