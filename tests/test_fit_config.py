"""Fit configuration: schema, defaults, and CLI errors (exit 2, key path named)."""

import pytest

from aceal.cli import main
from aceal.errors import AcealInputError
from aceal.fit.config import load_config, validate_config


def test_defaults_are_filled():
    cfg = validate_config({"basis": {"order": 2, "r_cut": {"nn_multiple": 2.0}}})
    assert cfg.fit.solver.method == "bayesian"
    assert cfg.fit.weights.forces == 100.0
    assert cfg.basis == {"order": 2, "r_cut": {"nn_multiple": 2.0}}
    assert cfg.e0.method == "fit" and cfg.repulsion is None
    assert validate_config(None).output.model == "model.yaml"
    # integers are accepted for floats, a single path becomes a list
    cfg = validate_config({"fit": {"weights": {"energy": 3}}, "data": {"train": "a.xyz"}})
    assert cfg.fit.weights.energy == 3.0 and cfg.data.train == ["a.xyz"]
    assert isinstance(cfg.fit.weights.energy, float)


@pytest.mark.parametrize("doc, message", [
    ({"fit": {"weights": {"forcess": 1.0}}}, "fit.weights.forcess: unknown key"),
    ({"fitt": {}}, "fitt: unknown key"),
    ({"fit": {"weights": {"forces": "big"}}}, "fit.weights.forces: expected a number"),
    ({"fit": {"weights": {"forces": -1}}}, "fit.weights.forces: must be >= 0"),
    ({"fit": {"weights": {"config_types": {"Surface": {"enrgy": 1}}}}},
     "fit.weights.config_types.Surface.enrgy: unknown key"),
    ({"fit": {"solver": {"method": "magic"}}}, "fit.solver.method: must be one of"),
    ({"fit": {"committee": {"size": 2.5}}}, "fit.committee.size: expected an integer"),
    ({"fit": {"weights": {"energy": True}}}, "fit.weights.energy: expected a number"),
    ({"basis": {"max_degre": 10}}, "basis.max_degre: unknown key"),
    ({"basis": {"elements": ["Si"]}}, "basis.elements: set automatically"),
    ({"basis": {"r_cut": {"nn_multiplier": 2}}}, "basis.r_cut: expected a cutoff"),
    ({"e0": {"method": "given"}}, "e0.values: required"),
    ({"data": {"train": 5}}, "data.train: expected a path"),
    ({"output": {"plot": "yes"}}, "output.plot: expected a boolean"),
    (["a", "list"], "config: expected a mapping"),
])
def test_validation_errors_name_the_key(doc, message):
    with pytest.raises(AcealInputError) as err:
        validate_config(doc)
    assert message in str(err.value)


def test_cli_exits_2_with_one_line(tmp_path, capsys):
    cfg = tmp_path / "fit.yaml"
    cfg.write_text("fit:\n  weights:\n    forcess: 1.0\n")
    assert main(["fit", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "fit.weights.forcess: unknown key" in err

    cfg.write_text("fit: [unclosed\n")
    assert main(["fit", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert "invalid YAML" in err and err.count("\n") == 0

    assert main(["fit", str(tmp_path / "missing.yaml")]) == 2
    assert "file not found" in capsys.readouterr().err

    cfg.write_text("basis: {order: 1}\n")  # valid, but no training data anywhere
    assert main(["fit", str(cfg)]) == 2
    assert "data.train" in capsys.readouterr().err


def test_load_config_reads_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("fit:\n  prior: {power: 3}\n")
    prior = load_config(p).fit.prior
    assert (prior.power, prior.offset, prior.order_factor) == (3.0, 1.0, 1.0)


def test_exponent_floats_without_sign(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("fit:\n  weights: {energy: 1.0e4, forces: 1e2, virial: 2.5E-1}\n")
    w = load_config(p).fit.weights
    assert (w.energy, w.forces, w.virial) == (1e4, 100.0, 0.25)
