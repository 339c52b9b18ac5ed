"""Kill-and-resume under ``mpiexec -n 2``: every resumed campaign ends exactly where an
uninterrupted run with the same seed ends (same store, same final model).

Each campaign is killed in turn at the named crash points of :mod:`aceal.loop.faults`
(SIGKILL of rank 0, after which ``mpiexec`` ends rank 1), and the same command is run
again each time, as a user would.  The runs are serial when mpiexec is absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from aceal import aseio
from aceal.loop.faults import CRASH_ENV
from aceal.loop.state import load_state
from aceal.store import open_store, write_xyz
from tests.loop_helpers import ROOT, tiny_config, write_config

MPIEXEC = Path(sys.executable).parent / "mpiexec"

pytestmark = [pytest.mark.mpi, pytest.mark.slow]


def _launcher() -> list[str]:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("needs mpi4py")
    exe = str(MPIEXEC) if MPIEXEC.is_file() else shutil.which("mpiexec")
    if exe is None:
        pytest.skip("needs mpiexec")
    return [exe, "-n", "2"]


def _run(cfg_path: Path, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop(CRASH_ENV, None)
    if crash_at:
        env[CRASH_ENV] = crash_at
    cmd = [*_launcher(), sys.executable, "-m", "aceal.loop.cli", str(cfg_path), "-q"]
    return subprocess.run(cmd, cwd=cfg_path.parent, env=env, capture_output=True, text=True,
                          timeout=300)


def _outcome(out: Path) -> dict:
    """What a finished campaign produced: store rows, failures, models, final state."""
    with open_store(out / "train.zarr") as store:
        images = store[:]
        rows = [(a.numbers.tobytes(), a.positions.tobytes(), a.cell.array.tobytes(),
                 a.get_potential_energy(), a.get_forces().tobytes(),
                 a.info["source"], int(store.column("iteration")[k]))
                for k, a in enumerate(images)]
        failures = [(f.iteration, f.atoms.positions.tobytes()) for f in store.failures()]
        models = [(m.iteration, m.metrics["validation"]) for m in store.models()]
    state = load_state(out)
    return {"rows": rows, "failures": failures, "models": models, "state": state,
            "model": (out / "model.yaml").read_text()}


def _chain(tmp_path: Path, cfg: dict, crash_points: list[str]) -> None:
    """An uninterrupted run, then one killed at each point in turn and resumed."""
    ref_dir, crash_dir = tmp_path / "uninterrupted", tmp_path / "killed"
    for d in (ref_dir, crash_dir):
        d.mkdir()
        write_config(d / "c.yaml", {**cfg, "output": {**cfg["output"], "directory": "out"}})
    r = _run(ref_dir / "c.yaml")
    assert r.returncode == 0, r.stderr[-3000:]
    expected = _outcome(ref_dir / "out")
    phases = []
    for point in crash_points:
        r = _run(crash_dir / "c.yaml", crash_at=point)
        assert r.returncode not in (0, 2, 3), f"{point}: not reached ({r.returncode})"
        assert "Traceback" not in r.stderr, r.stderr[-3000:]
        state = load_state(crash_dir / "out") or {}
        phases.append((point, state.get("iteration"), state.get("phase")))
    r = _run(crash_dir / "c.yaml")
    assert r.returncode == 0, r.stderr[-3000:]
    got = _outcome(crash_dir / "out")
    assert len(got["rows"]) == len(expected["rows"]), phases
    assert got["rows"] == expected["rows"], "the store differs from the uninterrupted run's"
    assert got["failures"] == expected["failures"]
    assert got["models"] == expected["models"]   # validation errors of every model, exact
    assert got["model"] == expected["model"]     # the final model file, byte for byte
    for key in ("iteration", "reference_calls", "failures", "history", "stop_reason"):
        assert got["state"][key] == expected["state"][key], key


def test_resume_after_kills_with_generated_validation_set(tmp_path):
    # kills during the seed labelling, the validation-set reference MD, the first fit,
    # MD, labelling, right after a store commit, after a model was saved
    cfg = tiny_config(Path("out"), stopping={"max_iterations": 3})
    _chain(tmp_path, cfg, ["labelled-0", "validation-frame-1", "fit-0", "md-1",
                           "labelled-1", "committed-1", "saved-1", "md-2", "committed-2",
                           "fit-3"])


def _labelled(atoms):
    a = atoms.copy()
    a.calc = EMT()
    res = {"energy": a.get_potential_energy(), "forces": a.get_forces(),
           "stress": a.get_stress()}
    a.calc = SinglePointCalculator(a, **res)
    return a


def test_resume_after_kills_with_files(tmp_path):
    # structures from a file (builder: file), initial data and validation set from xyz
    rng = np.random.default_rng(5)
    base = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    aseio.write(tmp_path / "cell.xyz", base)
    frames = []
    for _ in range(4):
        a = base.copy()
        a.rattle(0.08, seed=int(rng.integers(1 << 30)))
        frames.append(_labelled(a))
    write_xyz(tmp_path / "initial.xyz", frames[:2])
    write_xyz(tmp_path / "validation.xyz", frames[2:])
    cfg = tiny_config(Path("out"), stopping={"max_iterations": 2})
    cfg["structures"] = [{"builder": "file", "file": str(tmp_path / "cell.xyz")},
                         {"builder": "file", "file": str(tmp_path / "cell.xyz"),
                          "vacancies": 1}]
    cfg["initial_data"] = {"xyz": [str(tmp_path / "initial.xyz")], "seeds_per_structure": 1}
    cfg["validation"] = {"file": str(tmp_path / "validation.xyz")}
    _chain(tmp_path, cfg, ["labelled-0", "committed-0", "md-1", "committed-1", "fit-2"])


@pytest.mark.parametrize("hung, phase", [
    (1, "rank 0 got no answer from rank 1 within 4 s during labelling of iteration 0"),
    (0, "rank 1 got no answer from rank 0 within 3 s during the wait for rank 0's next "
        "command"),
])
def test_a_rank_that_never_answers_stops_the_campaign_with_status_3(tmp_path, hung, phase):
    cfg = tiny_config(Path("out"), stopping={"max_iterations": 1},
                      reference={"calculator": {"class": "tests.loop_helpers.HangsOnRankEMT",
                                                "kwargs": {"rank": hung}},
                                 "timeout": 1, "retries": 0},
                      parallel={"timeout": 2, "worker_timeout": 3})
    path = write_config(tmp_path / "c.yaml", cfg)
    r = _run(path)
    assert r.returncode == 3, r.stderr[-3000:]
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines == [f"aceal-loop: error: {phase} (parallel.timeout); the campaign "
                     "stopped, run the same command again to resume"], r.stderr
    # the reference mended, the same command resumes and finishes
    # (and the resumed run's MD gets the generous default timeouts back)
    cfg["reference"] = {"calculator": "EMT", "timeout": 20}
    del cfg["parallel"]
    write_config(path, cfg)
    r = _run(path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert load_state(tmp_path / "out")["phase"] == "finished"
