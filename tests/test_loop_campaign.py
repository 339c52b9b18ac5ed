"""aceal-loop end to end: serial, under mpiexec -n 2, and kill -9 + restart."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from aceal.errors import AcealInputError
from aceal.loop.campaign import config_hash
from aceal.loop.cli import run_campaign
from aceal.loop.config import validate_campaign_config
from aceal.loop.log import read_log
from aceal.loop.state import load_state
from aceal.store import open_store
from tests.loop_helpers import ROOT, positions_hash, tiny_config, write_config

MPIEXEC = Path(sys.executable).parent / "mpiexec"


def _has_mpi() -> bool:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return MPIEXEC.is_file() or shutil.which("mpiexec") is not None


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _check_campaign(out: Path, max_iterations: int) -> dict:
    """Store, models, log and state of a finished campaign are complete and consistent."""
    with open_store(out / "train.zarr") as store:
        n = len(store)
        images = store[:]
        hashes = [config_hash(a) for a in images]
        assert len(set(hashes)) == n, "a configuration was stored twice"
        iters = store.column("iteration")
        assert set(iters.tolist()) <= set(range(max_iterations + 1))
        assert (np.diff(iters) >= 0).all()
        models = store.models()
        assert [m.iteration for m in models] == sorted({m.iteration for m in models})
        assert 0 in [m.iteration for m in models]
        assert all(np.isfinite(a.get_forces()).all() for a in images)
    state = load_state(out)
    assert state["phase"] == "finished" and state["iteration"] == max_iterations
    recs = read_log(out / "log.jsonl")
    its = [r for r in recs if r["event"] == "iteration"]
    assert [r["iteration"] for r in its] == list(range(max_iterations + 1))
    assert recs[-1]["event"] == "finish"
    assert its[-1]["n_train"] == n
    assert state["reference_calls"] >= n
    for r in its:
        assert set(r["timings"]) >= {"labelling", "total"}
    assert (out / "models" / "model-0000.yaml").is_file()
    assert (out / "model.yaml").is_file()
    return {"n": n, "hashes": hashes, "log": its, "state": state}


def test_serial_campaign_end_to_end(tmp_path):
    out = tmp_path / "run"
    cfg = validate_campaign_config(tiny_config(out, output={"directory": str(out),
                                                            "plots": True}), ROOT)
    summary = run_campaign(cfg, quiet=True)
    res = _check_campaign(out, 3)
    assert summary["n_train"] == res["n"]
    its = res["log"]
    assert its[0]["labelled"] == 4                  # 2 seeds x 2 structures
    assert sum(r.get("candidates", 0) for r in its[1:]) > 0
    # auto exploration: strains of the perfect cell, relaxation and NEB of the vacancy
    assert {"strain", "relax", "neb"} <= set(its[1]["candidates_by_reason"])
    assert its[1]["protocol_frames"] == sum(its[1]["candidates_by_reason"].get(k, 0)
                                            for k in ("strain", "relax", "neb"))
    assert all(r["validation"]["forces_mae"] > 0 for r in its if r["validation"])
    assert (out / "summary.png").stat().st_size > 10_000
    s = json.loads((out / "summary.json").read_text())
    assert len(s["iterations"]) == 4
    with open_store(out / "train.zarr") as store:
        walker = store.indices(source="walker")
        explored = store.indices(source="explore")   # relax/strain/neb frames
        assert len(walker) + len(explored) == res["n"] - 4
        assert {store[int(i)].info["reason"] for i in explored} <= {"relax", "strain", "neb"}
        sel = store[walker[0]].info["selection"]
        assert {"walker", "md_time_fs", "picked"} <= set(sel)
        assert np.isfinite(store.column("selection")[walker][:, 3]).all()   # gamma_max
    # the latest active set also in pacemaker's .asi format (LAMMPS pace/extrapolation),
    # the same gamma as aceal's own file; or, if rank deficient, a note saying why not
    from aceal.grade import ExtrapolationGrader
    from aceal.model import ACEModel

    notes = [r for r in read_log(out / cfg.output.log) if r["event"] == "note"]
    if (out / "model.asi").exists():
        model = ACEModel.load(out / "model.yaml")
        mine = ExtrapolationGrader.load(model.basis, out / "model.asi.npz")
        pace = ExtrapolationGrader.load(model.basis, out / "model.asi")
        with open_store(out / "train.zarr") as store:
            atoms = store[len(store) - 1]
        np.testing.assert_allclose(pace(atoms), mine(atoms), rtol=1e-8)
    # every model version has its .asi, or the log says why one has not
    n_asi = len(list((out / "models").glob("model-*.asi")))
    assert n_asi == 4 or any("pacemaker .asi not written" in r["message"] for r in notes)
    assert (out / "model.asi").exists() == (out / "models" / "model-0003.asi").exists()
    # running the finished campaign again does nothing new
    again = run_campaign(cfg, quiet=True)
    assert again["n_train"] == res["n"]


@pytest.mark.mpi
@pytest.mark.skipif(not _has_mpi(), reason="needs mpi4py and mpiexec")
def test_mpi_campaign_matches_serial_contract(tmp_path):
    out = tmp_path / "mpi"
    path = write_config(tmp_path / "c.yaml", tiny_config(out))
    mpiexec = str(MPIEXEC) if MPIEXEC.is_file() else shutil.which("mpiexec")
    r = subprocess.run([mpiexec, "-n", "2", sys.executable, "-m", "aceal.loop.cli",
                        str(path)], cwd=tmp_path, env=_env(), capture_output=True,
                       text=True, timeout=200)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "2 rank(s)" in r.stdout
    res = _check_campaign(out, 3)
    start = [x for x in read_log(out / "log.jsonl") if x["event"] == "start"][0]
    assert start["ranks"] == 2
    with open_store(out / "train.zarr") as store:
        ranks = set(store.column("rank")[store.indices(source="walker")].tolist())
    assert ranks <= {1}                                  # walkers ran on rank 1
    assert res["n"] > 4


def _wait(pred, timeout: float, proc) -> None:
    t0 = time.time()
    while not pred():
        if proc.poll() is not None:
            raise AssertionError(f"campaign ended early: {proc.stderr.read()[-2000:]}")
        if time.time() - t0 > timeout:
            raise AssertionError("timed out waiting for the campaign")
        time.sleep(0.05)


def _state(out: Path) -> dict:
    try:
        return load_state(out) or {}
    except AcealInputError:  # caught between two writes of a save
        return {}


@pytest.mark.parametrize("ranks", [
    1, pytest.param(2, marks=[pytest.mark.mpi, pytest.mark.skipif(
        not _has_mpi(), reason="needs mpi4py and mpiexec")])])
def test_kill_9_and_restart_loses_and_duplicates_nothing(tmp_path, ranks):
    out = tmp_path / "crash"
    labels = tmp_path / "labelled.txt"
    cfg = tiny_config(out, reference={"calculator": {
        "class": "tests.loop_helpers.SlowEMT",
        "kwargs": {"delay": 0.15, "log": str(labels)}}, "timeout": 20},
        stopping={"max_iterations": 4})
    path = write_config(tmp_path / "c.yaml", cfg)
    cmd = [sys.executable, "-m", "aceal.loop.cli", str(path), "-q"]
    if ranks > 1:
        mpiexec = str(MPIEXEC) if MPIEXEC.is_file() else shutil.which("mpiexec")
        cmd = [mpiexec, "-n", str(ranks), *cmd]

    def start():
        return subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)

    def kill(p):  # SIGKILL the whole process group (mpiexec and every rank)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        time.sleep(0.2)

    # kill 1: mid-way through labelling, after >= 1 committed iteration
    p = start()
    _wait(lambda: _state(out).get("phase") == "labelling"
          and _state(out).get("iteration", 0) >= 1, 120, p)
    time.sleep(0.2)
    kill(p)
    with open_store(out / "train.zarr") as store:
        committed_before = {config_hash(a) for a in store[:]}
    assert committed_before
    n_lines_1 = len(labels.read_text().split())
    # kill 2: just after the next store commit (before the state file catches up, if lucky)
    p = start()

    def grew():
        try:
            with open_store(out / "train.zarr") as s:
                return len(s) > len(committed_before)
        except Exception:
            return False

    _wait(grew, 120, p)
    kill(p)
    with open_store(out / "train.zarr") as store:
        committed_mid = {config_hash(a) for a in store[:]}
    n_lines_2 = len(labels.read_text().split())
    # resume to the end
    r = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True,
                       timeout=200)
    assert r.returncode == 0, r.stderr[-3000:]
    res = _check_campaign(out, 4)
    stored = set(res["hashes"])
    assert committed_before <= stored                       # nothing committed was lost
    labelled = labels.read_text().split()
    assert stored <= set(labelled)                          # all came from the reference
    # nothing committed before a kill was sent to the reference again after the restart
    assert not set(labelled[n_lines_1:]) & committed_before
    assert not set(labelled[n_lines_2:]) & committed_mid
    assert committed_mid <= stored
    starts = [x for x in read_log(out / "log.jsonl") if x["event"] == "start"]
    assert sum(s["resumed"] for s in starts) == 2
    # positions_hash (test side) and config_hash (campaign side) agree
    with open_store(out / "train.zarr") as store:
        assert positions_hash(store[0]) == res["hashes"][0]


class _Crash(Exception):
    pass


def test_crash_between_store_commit_and_state_is_not_relabelled(tmp_path, monkeypatch):
    """Deterministic version of the worst moment: the batch is committed, the state file
    still says 'labelling'.  The restart must label nothing again."""
    from aceal.loop.campaign import Campaign

    out = tmp_path / "c"
    cfg = validate_campaign_config(tiny_config(out, stopping={"max_iterations": 2}), ROOT)
    orig = Campaign._label_pending

    def crash_after_commit(self, it, timings):
        res = orig(self, it, timings)
        if it == 1:
            raise _Crash
        return res

    monkeypatch.setattr(Campaign, "_label_pending", crash_after_commit)
    with pytest.raises(_Crash):
        run_campaign(cfg, quiet=True)
    state = load_state(out)
    assert state["phase"] == "labelling" and state["iteration"] == 1
    pending = len(state["pending"])
    assert pending > 0
    with open_store(out / "train.zarr") as store:
        n1 = len(store.indices(iteration=1))
    assert n1 == pending
    monkeypatch.setattr(Campaign, "_label_pending", orig)
    run_campaign(cfg, quiet=True)
    res = _check_campaign(out, 2)
    it1 = [r for r in res["log"] if r["iteration"] == 1][0]
    assert it1["skipped_already_labelled"] == pending and it1["labelled"] == 0
    assert it1["reference_calls"] == 0
    with open_store(out / "train.zarr") as store:
        assert len(store.indices(iteration=1)) == n1


@pytest.mark.parametrize("ranks", [1, pytest.param(2, marks=[pytest.mark.mpi, pytest.mark.skipif(
    not _has_mpi(), reason="needs mpi4py and mpiexec")])])
def test_information_selection_campaign(tmp_path, ranks):
    # every sampled frame is a candidate; the batch is chosen by information gain under the
    # posterior on rank 0 from design rows computed by the walker ranks
    out = tmp_path / "info"
    cfg = tiny_config(out, selection={"method": "information", "batch_size": 3},
                      uncertainty={"force_std": [0.0, 2.0], "gamma": None},
                      stopping={"max_iterations": 2})
    path = write_config(tmp_path / "c.yaml", cfg)
    cmd = [sys.executable, "-m", "aceal.loop.cli", str(path)]
    if ranks > 1:
        mpiexec = str(MPIEXEC) if MPIEXEC.is_file() else shutil.which("mpiexec")
        cmd = [mpiexec, "-n", str(ranks), *cmd]
    r = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    res = _check_campaign(out, 2)
    for rec in res["log"][1:]:
        assert rec["candidates"] > rec["selected"] == 3
    with open_store(out / "train.zarr") as store:
        walker = [a.info["selection"]["picked"] for a in store[store.indices(source="walker")]]
        explore = [a.info["selection"]["picked"]
                   for a in store[store.indices(source="explore")]]
    # exploration.share 0.5 reserves ceil(1.5) = 2 of the 3 slots for protocol frames
    assert len(walker) + len(explore) == 6 and len(explore) >= 4
    assert all(p.startswith("information: gain") for p in walker)
    assert all(p.startswith(("priority (", "information: gain")) for p in explore)


def test_legacy_pickled_state_is_refused_with_one_line(tmp_path, capsys):
    from aceal.loop.cli import main

    out = tmp_path / "old"
    out.mkdir()
    (out / "state.pkl").write_bytes(b"\x80\x04K\x01.")       # a pickle: never loaded
    path = write_config(tmp_path / "c.yaml", tiny_config(out))
    assert main([str(path), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "state.pkl" in err[0] and "pickle" in err[0]
    assert (out / "state.pkl").read_bytes() == b"\x80\x04K\x01."   # left as it was


def test_property_driven_stopping(tmp_path):
    """stopping.properties: each iteration logs the committee spread of the properties;
    the campaign stops once every spread is within its tolerance, and not before."""
    loose = tmp_path / "loose"
    cfg = validate_campaign_config(tiny_config(loose, stopping={
        "max_iterations": 3, "properties": {"a0": 0.5, "vacancy_formation": 5.0}}), ROOT)
    summary = run_campaign(cfg, quiet=True)
    log = read_log(loose / cfg.output.log)
    its = [r for r in log if r["event"] == "iteration"]
    assert len(its) == 1  # iteration 0's spreads already meet the loose tolerances
    props = its[0]["properties"]["Cu"]
    assert set(props) == {"a0", "vacancy_formation"}
    assert 0 < props["a0"]["sigma"] <= 0.5 and props["a0"]["unit"] == "relative"
    assert props["vacancy_formation"]["unit"] == "eV"
    assert props["vacancy_formation"]["std"][0] > 0
    assert "committee spread within tolerance" in summary["stop_reason"]

    tight = tmp_path / "tight"
    cfg = validate_campaign_config(tiny_config(tight, stopping={
        "max_iterations": 2, "properties": {"a0": 1e-12}},
        output={"directory": str(tight), "plots": True}), ROOT)
    summary = run_campaign(cfg, quiet=True)
    its = [r for r in read_log(tight / cfg.output.log) if r["event"] == "iteration"]
    assert len(its) == 3 and all(r["properties"]["Cu"]["a0"]["sigma"] > 1e-12 for r in its)
    assert summary["stop_reason"].startswith("max_iterations")
    curve = json.loads((tight / "summary.json").read_text())["iterations"]
    assert [c["property_sigma"]["Cu a0 (relative)"] for c in curve] == [
        r["properties"]["Cu"]["a0"]["sigma"] for r in its]
    assert (tight / "summary.png").stat().st_size > 10_000


def test_calibrated_committee_matches_the_validation_force_errors(tmp_path):
    from aceal import aseio
    from aceal.model import ACEModel
    from aceal.uncertainty.calibration import committee_scale

    out = tmp_path / "cal"
    cfg = validate_campaign_config(tiny_config(out, fit={"calibrate_committee": True},
                                               stopping={"max_iterations": 1}), ROOT)
    run_campaign(cfg, quiet=True)
    its = [r for r in read_log(out / cfg.output.log) if r["event"] == "iteration"]
    scales = [r["validation"]["committee_scale"] for r in its]
    assert all(np.isfinite(s) and s > 0 for s in scales)
    model = ACEModel.load(out / "model.yaml")
    frames = aseio.read(out / "validation.xyz", index=":")
    assert abs(committee_scale(model, frames) - 1.0) < 1e-6  # saved members are calibrated


def test_latest_copy_of_a_missing_output_is_removed_not_left_stale(tmp_path):
    from aceal.loop.campaign import publish_latest

    old = tmp_path / "model-0001.asi"
    old.write_text("old active set")
    assert publish_latest(tmp_path, {"model.asi": old}) == []
    assert (tmp_path / "model.asi").read_text() == "old active set"
    new = tmp_path / "model-0002.yaml"
    new.write_text("newer model")
    # the newer model has no .asi (rank-deficient active set): the old copy must go
    removed = publish_latest(tmp_path, {"model.yaml": new, "model.asi": None})
    assert removed == ["model.asi"]
    assert not (tmp_path / "model.asi").exists()
    assert (tmp_path / "model.yaml").read_text() == "newer model"
    assert old.exists()  # the per-version file stays
