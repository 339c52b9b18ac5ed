"""One fit core: ``aceal fit`` and a campaign's incremental refit solve the same problem."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from aceal.descriptors import DesignTables
from aceal.fit.config import validate_config
from aceal.fit.fitter import build_basis, run_fit
from aceal.loop.config import validate_campaign_config
from aceal.loop.refit import Refitter
from aceal.store import write_xyz
from tests.loop_helpers import ROOT, tiny_config

BASIS = {"order": 3, "max_degree": [8, 6, 4], "r_cut": 4.8}


@pytest.fixture(scope="module")
def train(tmp_path_factory):
    rng = np.random.default_rng(11)
    frames = []
    for k in range(8):
        a = bulk("Cu", "fcc", a=3.55 + 0.02 * k, cubic=True).repeat((2, 2, 1))
        a.rattle(0.1, seed=int(rng.integers(1 << 30)))
        a.calc = EMT()
        res = {"energy": a.get_potential_energy(), "forces": a.get_forces(),
               "stress": a.get_stress()}
        a.calc = SinglePointCalculator(a, **res)
        frames.append(a)
    path = tmp_path_factory.mktemp("core") / "train.xyz"
    write_xyz(path, frames)
    return path, frames


@pytest.mark.parametrize("solver", ["ridge", "bayesian"])
def test_aceal_fit_and_campaign_refit_agree(train, tmp_path, solver):
    path, frames = train
    fit = {"solver": {"method": solver, "lambda": 1e-6},
           "prior": {"power": 2.0, "offset": 1.0, "order_factor": 3.0},
           "weights": {"energy": 1e3, "forces": 50.0, "virial": 10.0}, "chunk_size": 4}
    e0 = {"method": "given", "values": {"Cu": -0.1}}
    fit_cfg = validate_config({"data": {"train": [str(path)]}, "basis": BASIS, "e0": e0,
                               "fit": fit, "output": {"model": str(tmp_path / "m.yaml"),
                                                      "plot": False}})
    result = run_fit(fit_cfg, progress=False)

    camp = validate_campaign_config(tiny_config(tmp_path, basis=BASIS, e0=e0,
                                                fit={**fit, "committee": 2}), ROOT)
    basis, _ = build_basis(camp.basis, camp.elements, frames)
    refit = Refitter(basis, DesignTables(basis), camp.fit, {"Cu": -0.1}, tmp_path)
    refit.fold(frames)
    post = refit.posterior()
    scale = np.abs(result.posterior.mean).max()
    np.testing.assert_allclose(post.mean, result.posterior.mean, rtol=0, atol=1e-10 * scale)

    # the order factor is honoured, not silently dropped: without it the answer differs
    plain = validate_campaign_config(tiny_config(tmp_path, basis=BASIS, e0=e0, fit={
        **fit, "committee": 2, "prior": {"order_factor": 1.0}}), ROOT)
    other = Refitter(basis, DesignTables(basis), plain.fit, {"Cu": -0.1}, tmp_path / "b")
    other.fold(frames)
    assert np.abs(other.posterior().mean - post.mean).max() > 1e-6 * scale
