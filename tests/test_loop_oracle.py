"""Oracle isolation: exceptions, NaN, hangs and absurd forces are failures, not crashes."""

from __future__ import annotations

import time

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from aceal.loop.cli import run_campaign
from aceal.loop.config import validate_campaign_config
from aceal.loop.oracle import Oracle
from aceal.store import open_store
from tests.loop_helpers import ROOT, FlakyEMT, tiny_config


@pytest.fixture
def cu():
    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    a.rattle(0.05, seed=1)
    return a


def test_success_labels_energy_forces_stress(cu):
    res = Oracle("EMT").label(cu)
    assert res.ok and res.attempts == 1 and res.reason is None
    ref = cu.copy()
    ref.calc = EMT()
    assert res.atoms.get_potential_energy() == pytest.approx(ref.get_potential_energy())
    np.testing.assert_allclose(res.atoms.get_forces(), ref.get_forces())
    assert res.atoms.get_stress().shape == (6,)
    assert cu.calc is None   # the input is not modified


def test_each_failure_mode_and_retries(cu):
    FlakyEMT.count = 0
    oracle = Oracle(factory=FlakyEMT, timeout=1.0, retries=0, max_force=50.0)
    reasons = []
    for _ in range(4):
        t0 = time.perf_counter()
        r = oracle.label(cu)
        assert not r.ok and r.atoms is None
        assert time.perf_counter() - t0 < 5.0   # the hang was cut by the timeout
        reasons.append(r.reason)
    assert "SCF did not converge" in reasons[0]
    assert "non-finite forces" in reasons[1]
    assert "timeout after 1 s" in reasons[2]
    assert "absurd force" in reasons[3]
    assert oracle.label(cu).ok                       # call 5 succeeds
    FlakyEMT.count = 0
    r = Oracle(factory=FlakyEMT, timeout=1.0, retries=4).label(cu)
    assert r.ok and r.attempts == 5 and len(r.errors) == 4


def test_process_isolation_survives_stuck_and_crashing_codes(cu):
    """isolation='process': the same labels as in-process; a code that blocks SIGALRM
    and hangs is killed at the timeout, a segfault is a recorded failure, and the next
    call gets a fresh worker."""
    small = bulk("Cu", "fcc", a=3.61)  # 1 atom: StuckEMT behaves as EMT
    spec = {"class": "tests.loop_helpers.StuckEMT", "kwargs": {"stuck_above": 1}}
    oracle = Oracle(spec, timeout=3.0, retries=0, isolation="process")
    try:
        ok = oracle.label(small)
        ref = small.copy()
        ref.calc = EMT()
        assert ok.ok and ok.atoms.get_potential_energy() == ref.get_potential_energy()
        np.testing.assert_array_equal(ok.atoms.get_stress(), ref.get_stress())
        t0 = time.perf_counter()
        stuck = oracle.label(cu)
        assert time.perf_counter() - t0 < 10.0
        assert not stuck.ok and "timeout after 3 s" in stuck.reason
        assert oracle.label(small).ok  # a fresh worker
    finally:
        oracle.close()
    crash = Oracle({**spec, "kwargs": {"stuck_above": 1, "crash": True}}, retries=1,
                   isolation="process")
    try:
        r = crash.label(cu)
        assert not r.ok and r.attempts == 2
        assert all("died (signal 11)" in e for e in r.errors)
        assert crash.label(small).ok
    finally:
        crash.close()
    with pytest.raises(ValueError, match="isolation"):
        Oracle("EMT", isolation="fork")


def test_campaign_survives_flaky_reference(tmp_path):
    FlakyEMT.count = 0
    cfg = tiny_config(tmp_path / "out",
                      reference={"calculator": {"class": "tests.loop_helpers.FlakyEMT"},
                                 "timeout": 1.0, "retries": 0},
                      initial_data={"seeds_per_structure": 5},
                      validation={"frames": 0},
                      stopping={"max_iterations": 2})
    cfg = validate_campaign_config(cfg, ROOT)
    summary = run_campaign(cfg, quiet=True)
    assert summary["iterations"] == 2
    with open_store(tmp_path / "out" / "train.zarr") as store:
        fails = store.failures()
        assert len(fails) >= 4
        kinds = {f.reason.split(":")[0] for f in fails}
        assert any("RuntimeError" in k for k in kinds)
        assert any("timeout" in f.reason for f in fails)
        assert any("non-finite" in f.reason for f in fails)
        assert any("absurd force" in f.reason for f in fails)
        assert len(store) >= 2                       # the successes were kept
        assert summary["failures"] == len(fails)
        assert all(np.isfinite(a.get_forces()).all() for a in store[:])


def test_validation_md_survives_reference_failures(tmp_path):
    """Reference failures during the validation-set MD restart the MD from the last good
    frame instead of aborting the campaign; every frame keeps a correct label."""
    from ase.calculators.emt import EMT

    from aceal.loop.log import read_log
    from aceal.store import read_configurations
    from tests.loop_helpers import SometimesFailingEMT

    SometimesFailingEMT.count = 0
    cfg = tiny_config(tmp_path / "out",
                      reference={"calculator": {"class": "tests.loop_helpers.SometimesFailingEMT"},
                                 "retries": 2},
                      validation={"frames": 3, "steps_between": 6},
                      stopping={"max_iterations": 1})
    cfg = validate_campaign_config(cfg, ROOT)
    run_campaign(cfg, quiet=True)
    frames = read_configurations(tmp_path / "out" / "validation.xyz")
    assert len(frames) == 3
    for f in frames:
        a = f.copy()
        a.calc = EMT()
        np.testing.assert_allclose(f.get_forces(), a.get_forces(), atol=1e-10)
    it0 = [r for r in read_log(tmp_path / "out" / "log.jsonl")
           if r["event"] == "iteration" and r["iteration"] == 0]
    assert it0[0]["validation_failures"] >= 1
