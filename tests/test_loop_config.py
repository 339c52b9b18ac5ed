"""aceal-loop config validation: every mistake exits with status 2 and one line naming it."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from aceal.errors import AcealInputError
from aceal.loop.cli import main
from aceal.loop.config import load_campaign_config, quickstart_path, validate_campaign_config
from tests.loop_helpers import ROOT, tiny_config, write_config


def _check(tmp_path, capsys, cfg, expected):
    path = write_config(tmp_path / "c.yaml", cfg)
    assert main([str(path), "--check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert expected in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("mutate, expected", [
    (lambda c: c["md"].update(timestpe=1.0), "md.timestpe: unknown key"),
    (lambda c: c.update(colour="red"), "colour: unknown key"),
    (lambda c: c["md"].update(timestep="fast"), "md.timestep: expected a number"),
    (lambda c: c["md"].update(timestep=-1.0), "md.timestep: must be positive"),
    (lambda c: c["stopping"].update(max_iterations=2.5), "stopping.max_iterations: expected an"),
    (lambda c: c["uncertainty"].update(force_std=[0.2, 0.1]), "uncertainty.force_std: expected"),
    (lambda c: c.update(elements=["Cu", "Qq"]), "elements[1]: unknown element 'Qq'"),
    (lambda c: c["structures"][0].update(element="Ag"),
     "structures[0].element: element 'Ag' is not in elements"),
    (lambda c: c["structures"].append({"builder": "file", "file": "nope.xyz"}),
     "structures[2].file: file not found"),
    (lambda c: c["initial_data"].update(xyz=["missing.xyz"]),
     "initial_data.xyz[0]: file not found"),
    (lambda c: c["reference"].update(calculator={"name": "EAM", "potential": "none.eam.alloy"}),
     "reference.calculator:"),
    (lambda c: c["reference"].update(calculator="NoSuchCode"), "reference.calculator: unknown"),
    (lambda c: c["reference"].update(calculator={"name": "LJ", "sigma": -1.0}),
     "reference.calculator: calculator spec for LJ: sigma: must be positive"),
    (lambda c: c["basis"].update(colour=1), "basis.colour: unknown key"),
    (lambda c: c["selection"].update(method="best"), "selection.method: must be one of"),
    (lambda c: c.pop("elements"), "elements: required key missing"),
])
def test_bad_configs_exit_2_with_key_path(tmp_path, capsys, mutate, expected):
    cfg = tiny_config(tmp_path / "out")
    mutate(cfg)
    _check(tmp_path, capsys, cfg, expected)


def test_invalid_yaml_and_missing_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("elements: [Cu\n")
    assert main([str(bad)]) == 2
    assert "invalid YAML" in capsys.readouterr().err
    assert main([str(tmp_path / "absent.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_defaults_and_paths_resolved(tmp_path):
    (tmp_path / "sub").mkdir()
    cfg = tiny_config(tmp_path / "out")
    cfg["reference"]["calculator"] = {"name": "EAM", "potential": "Cu.eam.alloy"}
    (tmp_path / "sub" / "Cu.eam.alloy").write_text(
        (ROOT / "aceal" / "data" / "Cu_mishin1.eam.alloy").read_text())
    out = validate_campaign_config(cfg, tmp_path / "sub")
    assert out.md.timestep == 2.0 and out.md.temperature == [800.0, 1200.0]
    assert out.fit.solver.method == "bayesian"
    with pytest.raises(AcealInputError, match="reference.calculator"):
        validate_campaign_config(cfg, tmp_path)   # potential not next to the config


@pytest.mark.parametrize("name", ["quickstart", "cu-vacancy-eam", "w-eam"])
def test_shipped_configs_validate(name):
    cfg = load_campaign_config(ROOT / "configs" / f"{name}.yaml")
    assert cfg.elements


def test_gpaw_and_tblite_configs_parse():
    for name in ("si-tblite", "si-gpaw"):
        doc = yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())
        cfg = validate_campaign_config(doc, ROOT / "configs", check_calculator=False)
        assert cfg.elements == ["Si"]


def test_embedded_quickstart_matches_repo_copy():
    assert quickstart_path().read_text() == (ROOT / "configs" / "quickstart.yaml").read_text()


def test_cli_subprocess_exit_status(tmp_path):
    cfg = tiny_config(tmp_path / "out")
    cfg["md"]["friction"] = "lots"
    path = write_config(tmp_path / "c.yaml", cfg)
    r = subprocess.run([sys.executable, "-m", "aceal.loop.cli", str(path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "aceal-loop: error: md.friction: expected a number, got 'lots'"]
    assert not (tmp_path / "out").exists()


def test_one_yaml_loader_for_fit_and_campaign(tmp_path):
    # `1e4` is a number for aceal fit and aceal-loop alike (PyYAML alone reads a string)
    cfg = tiny_config(tmp_path / "out")
    path = write_config(tmp_path / "c.yaml", cfg)
    text = path.read_text().replace("fit:\n", "fit:\n  weights: {energy: 1e4, forces: 1.0e2}\n", 1)
    path.write_text(text)
    loaded = load_campaign_config(path)
    assert loaded.fit.weights.energy == 1e4 and loaded.fit.weights.forces == 100.0
