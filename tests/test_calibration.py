"""Committee calibration: the pooled maximum-likelihood scale of the force spread."""

import numpy as np
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from aceal import ACEBasis, ACEModel
from aceal.calculator import ACECalculator
from aceal.uncertainty.calibration import committee_scale, rescale_committee


def _model_and_frames():
    basis = ACEBasis(["Cu"], order=2, max_degree=6, r_cut=4.5)
    rng = np.random.default_rng(0)
    coef = rng.normal(size=len(basis)) * 0.05
    committee = coef + 0.01 * rng.normal(size=(4, len(basis)))
    model = ACEModel(basis, coef, e0={"Cu": -1.0}, committee=committee)
    truth = ACEModel(basis, coef + 0.03 * rng.normal(size=len(basis)), e0={"Cu": -1.0})
    frames = []
    for k in range(3):
        a = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
        a.rattle(0.1, seed=k)
        a.calc = ACECalculator(truth)
        f = a.get_forces()
        a.calc = SinglePointCalculator(a, forces=f)
        frames.append(a)
    return model, frames


def test_scale_is_the_pooled_error_to_spread_ratio_and_rescaling_calibrates():
    model, frames = _model_and_frames()
    s = committee_scale(model, frames)
    err2 = var = 0.0
    calc = ACECalculator(model)
    for f in frames:
        a = f.copy()
        a.calc = calc
        err2 += np.sum((a.get_forces() - f.get_forces()) ** 2)
        var += np.sum(np.var(calc.results["forces_committee"], axis=0, ddof=1))
    assert s == np.sqrt(err2 / var) and s > 1  # the truth is farther than the spread
    calibrated = ACEModel(model.basis, model.coefficients, e0=model.e0,
                          committee=rescale_committee(model.coefficients, model.committee, s))
    assert abs(committee_scale(calibrated, frames) - 1.0) < 1e-10  # forces are linear in c


def test_scale_is_zero_when_the_model_is_exact():
    model, frames = _model_and_frames()
    exact = []
    for f in frames:
        a = f.copy()
        a.calc = ACECalculator(model)
        forces = a.get_forces()
        a.calc = SinglePointCalculator(a, forces=forces)
        exact.append(a)
    assert committee_scale(model, exact) < 1e-12
