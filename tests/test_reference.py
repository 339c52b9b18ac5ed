"""Tests for aceal.reference.make_calculator (reference-calculator factory)."""

from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones

from aceal.errors import AcealInputError
from aceal.reference import describe_spec, make_calculator, normalise_spec

DATA = Path(__file__).parent / "data"
CU = DATA / "Cu_mishin1.eam.alloy"
W = DATA / "W_zhou.eam.alloy"


def _efs(calc, atoms):
    a = atoms.copy()
    a.calc = calc
    return a.get_potential_energy(), a.get_forces(), a.get_stress()


def test_short_names_and_dicts():
    assert isinstance(make_calculator("EMT"), EMT)
    assert isinstance(make_calculator("emt"), EMT)
    lj = make_calculator({"name": "LJ", "sigma": 2.3, "epsilon": 0.4, "rc": 6.0})
    assert isinstance(lj, LennardJones)
    assert lj.parameters.sigma == 2.3
    calc = make_calculator({"class": "ase.calculators.emt.EMT", "kwargs": {}})
    assert isinstance(calc, EMT)
    assert isinstance(make_calculator('{"name": "EMT"}'), EMT)
    assert make_calculator("EMT") is not make_calculator("EMT")


@pytest.mark.parametrize("backend", ["ase", "matscipy", "auto"])
def test_eam_backends_agree_and_relative_paths(backend):
    atoms = bulk("Cu", "fcc", 3.6, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=1)
    ref = _efs(make_calculator({"name": "EAM", "potential": str(CU), "backend": "ase"}), atoms)
    calc = make_calculator({"name": "EAM", "potential": CU.name, "backend": backend}, base_dir=DATA)
    e, f, s = _efs(calc, atoms)
    assert e == pytest.approx(ref[0], abs=1e-8)
    np.testing.assert_allclose(f, ref[1], atol=1e-8)
    np.testing.assert_allclose(s, ref[2], atol=1e-9)


def test_eam_string_form_and_wrong_z_in_file():
    # the Zhou W file writes Z = 1; the matscipy backend must still map atoms by symbol
    atoms = bulk("W", "bcc", 3.16, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=2)
    fast = _efs(make_calculator(f"EAM:{W}"), atoms)
    slow = _efs(make_calculator({"name": "EAM", "potential": str(W), "backend": "ase"}), atoms)
    assert fast[0] == pytest.approx(slow[0], abs=1e-8)
    np.testing.assert_allclose(fast[1], slow[1], atol=1e-8)


def test_matscipy_manybody():
    si = bulk("Si", "diamond", 5.431, cubic=True)
    for spec in (
        "SW",
        "Tersoff",
        "KumagaiSi",
        {"name": "SW", "parameters": "Holland_Marder_PRL_80_746_Si"},
    ):
        e, f, _ = _efs(make_calculator(spec), si)
        assert -5.0 < e / len(si) < -4.0  # cohesive energies of Si potentials ~ -4.3..-4.6 eV
        assert np.abs(f).max() < 1e-8
    # Stillinger-Weber published cohesive energy: 2.1683 eV x 2 = 4.3366 eV/atom at a = 5.431 Å
    e, _, _ = _efs(make_calculator("SW"), si)
    assert e / len(si) == pytest.approx(-4.3366, abs=2e-3)


@pytest.mark.parametrize(
    "spec, match",
    [
        ("FOO", "FOO"),
        ({"name": "EAM"}, "potential"),
        ({"name": "EAM", "potential": str(CU), "pot": 1}, "pot: unknown key"),
        ({"name": "EMT", "sigma": 1.0}, "sigma: unknown key"),
        ({"name": "LJ", "sigmas": 1.0}, "sigmas: unknown key"),
        ({"name": "SW", "parameters": "nope"}, "nope"),
        ("EAM:missing.eam.alloy", "missing.eam.alloy"),
        ("EMT:x", "EMT"),
        ({"class": "ase.calculators.nope.Calc"}, "ase.calculators.nope"),
        ({"class": "ase.calculators.emt.EMT", "kw": {}}, "kw: unknown key"),
        ({"foo": 1}, "name"),
        ("{bad json", "JSON"),
    ],
)
def test_bad_specs_raise_input_error(spec, match):
    with pytest.raises(AcealInputError, match=match):
        make_calculator(spec)


def test_missing_optional_package_names_pip(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith(("gpaw", "tblite")):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(AcealInputError, match="pip install gpaw"):
        make_calculator({"name": "GPAW", "mode": "pw"})
    with pytest.raises(AcealInputError, match="pip install tblite"):
        make_calculator({"name": "tblite", "method": "GFN1-xTB"})


def test_normalise_and_describe():
    assert normalise_spec("EAM:x.eam.alloy") == {"name": "EAM", "potential": "x.eam.alloy"}
    assert normalise_spec("tblite:GFN2-xTB") == {"name": "tblite", "method": "GFN2-xTB"}
    assert describe_spec(f"EAM:{CU}") == "EAM(Cu_mishin1.eam.alloy)"
    assert describe_spec("emt") == "EMT"
