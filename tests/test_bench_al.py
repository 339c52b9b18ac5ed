"""Held-out saddle frames (aceal.validate.saddles) and a smoke test of benchmarks/bench_al.py."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

from aceal.validate import saddles

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_al.py"


def _cu(repeat=2):
    return bulk("Cu", "fcc", a=3.61, cubic=True).repeat(repeat)


def test_find_vacancy_and_interstitial_sites():
    perfect = _cu()
    vac = perfect.copy()
    del vac[5]
    assert saddles.find_vacancies(vac, perfect) == [5]
    assert saddles.find_vacancies(perfect, perfect) == []
    inter = perfect.copy()
    site = inter.positions[3].copy()
    inter.positions[3] = site + [0.7, 0.0, 0.0]
    inter += Atoms("Cu", positions=[site - [0.7, 0.0, 0.0]])
    s, a, c = saddles.find_interstitial(inter, perfect)
    assert s == 3 and {a, c} == {3, len(perfect)}
    assert saddles.find_interstitial(perfect, perfect) is None
    d1, cut = saddles.shell_cutoff(perfect)
    assert d1 == pytest.approx(3.61 / np.sqrt(2), abs=1e-3)
    assert d1 < cut < 3.61


def test_vacancy_hop_path_and_metrics():
    perfect = _cu()
    vac = perfect.copy()
    del vac[0]
    paths, notes = saddles.hop_paths([vac, perfect], [perfect, perfect], EMT(), n_images=3)
    assert len(paths) == 1 and notes[1]["hop"] is None
    p = paths[0]
    assert p.kind == "vacancy" and p.converged
    assert 0.3 < p.barrier_eV < 1.5                     # EMT Cu: ~0.5-0.9 eV
    assert p.moving_atom in p.rare_atoms and 4 <= len(p.rare_atoms) < len(vac)
    # the moving atom travels about one nearest-neighbour distance
    assert p.info["moving_atom_displacement_A"] == pytest.approx(3.61 / np.sqrt(2), rel=0.15)
    calls = saddles.add_displaced_frames(paths, EMT(), copies=2, sigma=0.05, seed=1)
    assert calls == 6 and len(p.saddle_frames) == 9
    exact = saddles.saddle_force_metrics(paths, EMT())
    assert exact["rare"]["mag_err_p95_eV_per_A"] == pytest.approx(0.0, abs=1e-9)
    assert exact["rare"]["angle_median_deg"] == pytest.approx(0.0, abs=1e-6)
    assert exact["rare"]["n_atoms"] == 9 * len(p.rare_atoms)
    # forces 20 % too strong and turned by ~11 deg: both metrics see it
    from ase.calculators.calculator import Calculator

    class Wrong(Calculator):
        implemented_properties = ["energy", "forces"]

        def calculate(self, atoms=None, properties=("energy",), system_changes=None):
            super().calculate(atoms, properties, system_changes)
            a = self.atoms.copy()
            a.calc = EMT()
            f = a.get_forces()
            turned = f + 0.2 * np.cross(f, [0.0, 0.0, 1.0])
            self.results = {"energy": a.get_potential_energy(), "forces": 1.2 * turned}

    wrong = saddles.saddle_force_metrics(paths, Wrong())
    assert wrong["rare"]["mag_err_median_eV_per_A"] > 0.01
    assert 1.0 < wrong["rare"]["angle_p95_deg"] <= 12.0


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_al", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_bench_al_quick(tmp_path, capsys):
    """--quick: one JSON line with every metric of every arm, finite; the plot exists."""
    bench = _load_bench()
    png = tmp_path / "bench.png"
    bench.main(["--config", str(ROOT / "configs" / "cu-vacancy-eam.yaml"), "--quick",
                "--plot", str(png), "--out", str(tmp_path / "runs"),
                "--floor-basis", '{"r_cut": 4.5}'])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 1
    res = json.loads(lines[0])
    assert png.stat().st_size > 0
    assert set(res["curves"]) == {"campaign", "random_selection", "aimd"}
    for arm, curve in res["curves"].items():
        assert list(curve) == ["24"], arm
        row = curve["24"]
        for m in bench.METRICS:
            assert row[m] is not None and math.isfinite(row[m]) and row[m] >= 0, (arm, m)
        # the loop arms' last model within the budget; the AIMD route draws exactly 24
        assert row["labelled_calls"] <= 24 and (arm != "aimd" or row["labelled_calls"] == 24)
    assert res["heldout"]["saddle_paths"][0]["kind"] == "vacancy"
    assert res["aimd"]["total_reference_calls"] > res["curves"]["aimd"]["24"]["labelled_calls"]
    floor = res["aimd"]["full_pool"]   # the basis fitted to every AIMD frame
    assert floor["labelled_calls"] == res["aimd"]["pool_frames"] > 24
    assert 0 < floor["thermal_forces_mae"] < res["curves"]["aimd"]["24"]["thermal_forces_mae"]
    other, = res["aimd"]["full_pool_other_bases"]
    assert other["basis_update"] == {"r_cut": 4.5} and other["basis_functions"] > 0
    assert math.isfinite(other["thermal_forces_mae"]) and other["thermal_forces_mae"] > 0
    for m in (*bench.RARE_METRICS, *bench.PROPERTY_METRICS):
        assert m in res["targets"]["reach"]
