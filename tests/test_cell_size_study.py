"""Smoke test of examples/cell_size_study.py: the quick path on the smallest setting."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("matscipy")

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "cell_size_study.py"


def _load_study():
    spec = importlib.util.spec_from_file_location("cell_size_study", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_training_set_budget_and_labels():
    import numpy as np

    from aceal.reference import make_calculator

    study = _load_study()
    settings = study.StudySettings(atoms_per_size=40, md_steps_between=2)
    eam = make_calculator({"name": "EAM", "potential": str(study.EAM_FILE)})
    train = study.training_set(2, 3.165, settings, np.random.default_rng(0), eam)
    assert len(train) == math.ceil(40 / 16)  # same atom budget, 16-atom cells
    assert sum(len(a) for a in train) >= 40
    for at in train:
        assert len(at) == 16
        res = at.calc.results
        assert {"energy", "forces", "stress"} <= set(res)
        assert at.info["config_type"] in ("rattled", "md")


@pytest.mark.slow
def test_quick_study_writes_both_curves(tmp_path):
    study = _load_study()
    study.main(["--quick", "--sizes", "1", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "cell_size_study.json").read_text())
    assert (tmp_path / "cell_size_study.png").stat().st_size > 0
    assert set(data["curves"]) == {"E+F", "E+F+V"}
    for curve in data["curves"].values():
        assert curve["size"] == [1]
        assert curve["cell_atoms"] == [2]
        for key in ("dE_core_meV_per_A_mean", "dd_max_diff_b_mean"):
            assert len(curve[key]) == 1
            assert curve[key][0] is not None and curve[key][0] >= 0.0
    assert len(data["runs"]) == 2
    # both models were fitted to the same data; only E+F+V has virial rows
    rows = {r["observations"]: r["fit"]["rows"] for r in data["runs"]}
    assert rows["E+F"]["virial"] == 0 < rows["E+F+V"]["virial"]
    assert rows["E+F"]["forces"] == rows["E+F+V"]["forces"] > 0
    ref = data["reference"]["dislocation"]
    assert ref["E_per_length_eV_per_A"] > 0 and ref["converged"]
