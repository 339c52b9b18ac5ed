"""The tblite (GFN-xTB) reference through make_calculator and the campaign oracle.

Skipped unless tblite is installed (``pip install tblite``; it is in the ``test`` extra).
An 8-atom Si cell takes ~0.3 s per GFN1-xTB call on one thread; the module ~5 s.
"""

import numpy as np
import pytest
from ase.build import bulk

from aceal.errors import AcealInputError
from aceal.loop.oracle import Oracle
from aceal.reference import describe_spec, make_calculator

pytest.importorskip("tblite")

SPEC = {"name": "tblite", "method": "GFN1-xTB", "accuracy": 0.01, "threads": 1}


def _si8():
    # 5.62 Å: zero pressure of GFN1-xTB for a 64-atom cell (Gamma point only)
    atoms = bulk("Si", "diamond", a=5.62, cubic=True)
    atoms.rattle(0.05, seed=3)
    return atoms


def test_energy_forces_stress_match_finite_differences():
    atoms = _si8()
    atoms.calc = make_calculator(SPEC)
    e0 = atoms.get_potential_energy()
    forces = atoms.get_forces()
    stress = atoms.get_stress()
    assert -50.0 < e0 / len(atoms) < -48.0  # GFN1-xTB Si: ~ -49 eV/atom (8 atoms, Gamma)
    assert forces.shape == (8, 3) and stress.shape == (6,)
    assert 0.1 < np.abs(forces).max() < 5.0
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-6)
    # central differences, h = 1e-3 Å: measured |F - FD| <= 5e-6 eV/Å at accuracy 0.01
    # (2e-5 at tblite's default accuracy 1.0)
    h = 1e-3
    for i, c in ((0, 0), (3, 1), (5, 2)):
        e = []
        for sign in (1, -1):
            b = atoms.copy()
            b.positions[i, c] += sign * h
            b.calc = atoms.calc
            e.append(b.get_potential_energy())
        fd = -(e[0] - e[1]) / (2 * h)
        assert fd == pytest.approx(forces[i, c], abs=5e-5), (i, c)
    # stress_xx = dE/d(eps_xx) / V, central differences in the strain
    eps = 1e-4
    e = []
    for sign in (1, -1):
        b = atoms.copy()
        cell = b.cell.array.copy()
        cell[:, 0] *= 1 + sign * eps
        b.set_cell(cell, scale_atoms=True)
        b.calc = atoms.calc
        e.append(b.get_potential_energy())
    fd_stress = (e[0] - e[1]) / (2 * eps) / atoms.get_volume()
    assert fd_stress == pytest.approx(stress[0], abs=2e-5)


def test_spec_keywords_are_checked():
    calc = make_calculator("tblite:gfn1-xtb")
    assert calc.parameters.method == "GFN1-xTB"
    assert calc.parameters.verbosity == 0  # silent unless asked
    assert describe_spec(SPEC) == "tblite(GFN1-xTB)"
    assert make_calculator({"name": "tblite", "initial_guess": "eeq"}).parameters.guess == "eeq"
    for bad, key in [
        ({"temperature": 1000.0}, "temperature: unknown key"),  # TBLite would silently ignore it
        ({"method": "GFN3-xTB"}, "GFN3-xTB"),
        ({"accuracy": "high"}, "for tblite: accuracy: "),
        ({"accuracy": 0}, "for tblite: accuracy: "),
        ({"electronic_temperature": -1.0}, "for tblite: electronic_temperature: "),
        ({"max_iterations": 2.5}, "for tblite: max_iterations: "),
        ({"threads": 0}, "for tblite: threads: "),
        ({"guess": "huckel"}, "for tblite: guess: "),
        ({"guess": "eeq", "initial_guess": "sad"}, "initial_guess: give guess"),
        ({"accuracy": float("nan")}, "for tblite: accuracy: "),
    ]:
        with pytest.raises(AcealInputError, match=key):
            make_calculator({"name": "tblite", **bad})


def test_thread_count(monkeypatch):
    import numba

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert make_calculator({"name": "tblite"}).threads == numba.get_num_threads()
    assert make_calculator({"name": "tblite", "threads": 1}).threads == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert make_calculator({"name": "tblite"}).threads is None  # the runtime's own setting


def test_threads_are_set_in_the_openmp_runtime_during_the_scf(monkeypatch):
    import tblite.ase
    from threadpoolctl import threadpool_info

    def omp_threads():
        return {i["filepath"]: i["num_threads"] for i in threadpool_info()
                if i["user_api"] == "openmp"}

    before = omp_threads()
    seen = []

    def fake_scf(self, *args, **kwargs):
        seen.append(omp_threads())

    monkeypatch.setattr(tblite.ase.TBLite, "calculate", fake_scf)
    calc = make_calculator({"name": "tblite", "threads": 1})
    calc.calculate(_si8())
    assert before and seen == [dict.fromkeys(before, 1)]
    assert omp_threads() == before  # restored afterwards


def test_oracle_records_scf_failures_and_recovers():
    atoms = _si8()
    # an SCF that cannot converge in 2 cycles: CalculationFailed, retried, then a failure
    oracle = Oracle({**SPEC, "max_iterations": 2}, retries=1)
    res = oracle.label(atoms)
    assert not res.ok and res.atoms is None
    assert res.attempts == 2 and oracle.n_calls == 2
    assert res.reason == "CalculationFailed: SCF not converged in 2 cycles"
    assert res.errors == [res.reason] * 2
    # NaN positions: tblite's eigensolver fails (CalculationFailed), a recorded failure
    oracle = Oracle(SPEC, retries=0)
    bad = atoms.copy()
    bad.positions[1] = np.nan
    res = oracle.label(bad)
    assert not res.ok and res.reason.startswith("CalculationFailed")
    assert res.attempts == 1
    # the oracle goes on with a fresh calculator and labels a sane cell
    res = oracle.label(atoms)
    assert res.ok and res.reason is None and res.attempts == 1
    out = res.atoms
    assert np.isfinite(out.get_potential_energy())
    assert out.get_forces().shape == (8, 3) and out.get_stress().shape == (6,)
    assert oracle.n_calls == 2
