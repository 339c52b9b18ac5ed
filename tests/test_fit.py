"""End-to-end fits with the real basis, design rows, model and calculator."""

import json

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator

from aceal.basis import ACEBasis
from aceal.calculator import ACECalculator
from aceal.cli import main
from aceal.fit.config import validate_config
from aceal.fit.fitter import run_fit
from aceal.model import ACEModel


def _label(structures, calc, config_type="bulk"):
    out = []
    for a in structures:
        a = a.copy()
        a.calc = calc
        res = {"energy": a.get_potential_energy(), "forces": a.get_forces()}
        if all(a.pbc):
            res["stress"] = a.get_stress()
        b = a.copy()
        b.calc = SinglePointCalculator(b, **res)
        b.info["config_type"] = config_type
        out.append(b)
    return out


def _structures(symbol, crystal, a0, n, seed, rattle=0.08, repeat=(1, 1, 1), strain=0.03):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        at = bulk(symbol, crystal, a=a0, cubic=True).repeat(repeat)
        eps = strain * rng.uniform(-1, 1, (3, 3))
        at.set_cell(at.cell.array @ (np.eye(3) + 0.5 * (eps + eps.T)), scale_atoms=True)
        at.rattle(rattle, seed=seed * 1000 + k)
        out.append(at)
    return out


def _write(path, frames):
    ase.io.write(path, frames, format="extxyz")
    return str(path)


def _cfg(tmp_path, **sections):
    doc = {"output": {"model": str(tmp_path / "model.yaml")}}
    for key, val in sections.items():
        doc[key] = val
    return validate_config(doc)


# ---------------------------------------------------------------------- known linear model
@pytest.fixture(scope="module")
def si_model_data(tmp_path_factory):
    """Labels from a random linear ACE model (order 2) for Si with E0 = -0.5 eV."""
    tmp = tmp_path_factory.mktemp("si")
    basis_kw = {"order": 2, "max_degree": 7, "r_cut": 5.0}
    basis = ACEBasis(["Si"], **basis_kw)
    rng = np.random.default_rng(0)
    c_true = rng.standard_normal(len(basis)) * 0.05 / (1 + basis.degrees)
    model = ACEModel(basis, c_true, e0={"Si": -0.5})
    frames = _label(_structures("Si", "diamond", 5.43, 16, seed=1, rattle=0.25, strain=0.06),
                    ACECalculator(model))
    frames[3].info["config_type"] = "other"
    return {"tmp": tmp, "basis_kw": basis_kw, "c": c_true, "e0": -0.5, "model": model,
            "train": _write(tmp / "train.xyz", frames[:13]),
            "test": _write(tmp / "test.xyz", frames[13:]), "frames": frames}


def test_fit_recovers_known_linear_model(si_model_data, tmp_path):
    d = si_model_data
    cfg = _cfg(tmp_path, basis=d["basis_kw"], e0={"method": "given", "values": {"Si": d["e0"]}},
               fit={"solver": {"method": "ridge", "lambda": 1e-12}, "prior": {"power": 0}})
    res = run_fit(cfg, train=[d["train"]], test=[d["test"]], progress=False)
    np.testing.assert_allclose(res.model.coefficients, d["c"], rtol=1e-5, atol=1e-7)
    test = res.report["errors"]["test"]
    assert test["energy_mae"] < 1e-7 and test["forces_mae"] < 1e-6 and test["stress_mae"] < 1e-8
    assert res.report["e0"] == {"Si": d["e0"]}
    assert res.report_path.exists() and res.plot_path.exists()
    # the saved model reproduces the reference
    loaded = ACEModel.load(res.model_path)
    np.testing.assert_allclose(loaded.coefficients, res.model.coefficients)


def test_bayesian_fit_of_noisy_labels_recovers_noise_level(si_model_data, tmp_path):
    d = si_model_data
    rng = np.random.default_rng(5)
    noisy = []
    sigma_f = 0.01
    for a in d["frames"]:
        b = a.copy()
        res = dict(a.calc.results)
        res["forces"] = res["forces"] + sigma_f * rng.standard_normal(res["forces"].shape)
        b.calc = SinglePointCalculator(b, **res)
        noisy.append(b)
    train = _write(tmp_path / "noisy.xyz", noisy)
    cfg = _cfg(tmp_path, basis=d["basis_kw"], e0={"method": "given", "values": {"Si": d["e0"]}},
               fit={"weights": {"forces": 1.0, "energy": 0.0, "virial": 0.0}})
    res = run_fit(cfg, train=[train], progress=False)
    # weights 1 per (eV/Å)^2: 1/sqrt(beta) is the force noise in eV/Å
    assert res.report["hyperparameters"]["noise_scale"] == pytest.approx(sigma_f, rel=0.1)


def test_e0_given_fitted_isolated(si_model_data, tmp_path):
    d = si_model_data
    frames = list(ase.io.read(d["train"], ":"))
    exact = {"solver": {"method": "ridge", "lambda": 1e-12}, "prior": {"power": 0}}
    # fit (default): E0 fitted jointly with the coefficients recovers the true one
    cfg = _cfg(tmp_path, basis=d["basis_kw"], fit=exact)
    res = run_fit(cfg, train=[d["train"]], progress=False)
    assert res.report["e0"]["Si"] == pytest.approx(d["e0"], abs=1e-6)
    np.testing.assert_allclose(res.model.e0, [d["e0"]], atol=1e-6)
    np.testing.assert_allclose(res.model.coefficients, d["c"], rtol=1e-4, atol=1e-6)
    # composition: least squares of energy per atom vs composition = the mean (one element)
    cfg = _cfg(tmp_path, basis=d["basis_kw"], e0={"method": "composition"}, fit=exact)
    res = run_fit(cfg, train=[d["train"]], progress=False)
    mean = np.mean([a.get_potential_energy() / len(a) for a in frames])
    assert res.report["e0"]["Si"] == pytest.approx(mean)
    np.testing.assert_allclose(res.model.e0, [mean])
    # isolated: an isolated atom in the data fixes E0 exactly (no neighbours, B = 0)
    atom = ase.Atoms("Si", cell=[20, 20, 20], pbc=False)
    atom.calc = SinglePointCalculator(atom, energy=d["e0"], forces=np.zeros((1, 3)))
    path = _write(tmp_path / "with_atom.xyz", frames + [atom])
    cfg = _cfg(tmp_path, basis=d["basis_kw"], e0={"method": "isolated"}, fit=exact)
    res = run_fit(cfg, train=[path], progress=False)
    assert res.report["e0"]["Si"] == pytest.approx(d["e0"])
    np.testing.assert_allclose(res.model.coefficients, d["c"], rtol=1e-5, atol=1e-7)
    # given but incomplete
    cfg = _cfg(tmp_path, basis=d["basis_kw"], e0={"method": "given", "values": {"C": 1.0}})
    with pytest.raises(Exception, match="Si"):
        run_fit(cfg, train=[d["train"]], progress=False)


def test_virial_rows_match_model_stress(si_model_data, tmp_path):
    from ase.calculators.fd import calculate_numerical_stress

    from aceal.descriptors import design_rows

    d = si_model_data
    cfg = _cfg(tmp_path, basis={**d["basis_kw"]}, fit={"prior": {"power": 2}})
    res = run_fit(cfg, train=[d["train"]], progress=False)
    atoms = d["frames"][10].copy()
    rows = design_rows(res.model.basis, [atoms])[0]
    atoms.calc = ACECalculator(res.model)
    stress = atoms.get_stress()
    np.testing.assert_allclose(rows.stress @ res.model.coefficients, stress, atol=1e-10)
    numerical = calculate_numerical_stress(atoms, eps=1e-6)
    np.testing.assert_allclose(stress, numerical, atol=1e-7)
    np.testing.assert_allclose(rows.forces @ res.model.coefficients, atoms.get_forces().ravel(),
                               atol=1e-10)


# ---------------------------------------------------------------------- pair potential
def test_order1_basis_reproduces_pair_potential(tmp_path):
    # Lennard-Jones with a smooth cutoff (ASE: switched off between ro and rc)
    pair = LennardJones(sigma=2.3, epsilon=0.4, rc=4.6, ro=3.8, smooth=True)
    train = _label(_structures("Cu", "fcc", 3.6, 10, seed=2, rattle=0.15, strain=0.06), pair)
    test = _label(_structures("Cu", "fcc", 3.6, 4, seed=3, rattle=0.1, strain=0.06), pair)
    cfg = _cfg(tmp_path, basis={"order": 1, "max_degree": 16, "r_cut": 4.6},
               fit={"weights": {"energy": 1e4, "forces": 1e2, "virial": 1e3}})
    res = run_fit(cfg, train=[_write(tmp_path / "tr.xyz", train)],
                  test=[_write(tmp_path / "te.xyz", test)], progress=False)
    err = res.report["errors"]["test"]
    f_scale = np.sqrt(np.mean(np.concatenate([a.get_forces().ravel() for a in test]) ** 2))
    assert err["forces_rmse"] < 0.01 * f_scale
    assert err["energy_mae"] < 3e-3
    # a dimer curve (never seen in training) follows the pair potential
    calc = ACECalculator(res.model)
    for r in (2.4, 2.8, 3.4, 4.0):
        dimer = ase.Atoms("Cu2", positions=[[0, 0, 0], [0, 0, r]])
        dimer.calc = calc
        ref = dimer.copy()
        ref.calc = pair
        e_fit = dimer.get_potential_energy() - 2 * res.model.e0[0]
        assert e_fit == pytest.approx(ref.get_potential_energy(), abs=0.01)


# ---------------------------------------------------------------------- weights
@pytest.fixture(scope="module")
def emt_data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("emt")
    bulk_frames = _label(_structures("Cu", "fcc", 3.6, 8, seed=4, rattle=0.1, strain=0.05),
                         EMT(), "bulk")
    hot = _label(_structures("Cu", "fcc", 3.7, 8, seed=5, rattle=0.3, strain=0.02), EMT(),
                 "hot")
    return {"train": _write(tmp / "emt.xyz", bulk_frames + hot)}


def _errors(tmp_path, train, weights, name):
    cfg = _cfg(tmp_path, basis={"order": 1, "max_degree": 8, "r_cut": 4.5},
               fit={"weights": weights, "solver": {"method": "ridge", "lambda": 1e-10}},
               output={"model": str(tmp_path / f"{name}.yaml"), "plot": False})
    return run_fit(cfg, train=[train], progress=False).report["errors"]["train"]


def test_weights_change_the_fit_as_they_should(emt_data, tmp_path):
    # a pair model cannot fit EMT exactly: the weights decide the compromise
    e_heavy = _errors(tmp_path, emt_data["train"], {"energy": 1e6, "forces": 1.0}, "e")
    f_heavy = _errors(tmp_path, emt_data["train"], {"energy": 1.0, "forces": 1e4}, "f")
    assert e_heavy["energy_mae"] < 0.5 * f_heavy["energy_mae"]
    assert f_heavy["forces_mae"] < e_heavy["forces_mae"]
    # a config_type override favours that type
    base = {"energy": 1e3, "forces": 10.0, "virial": 0.0}
    plain = _errors(tmp_path, emt_data["train"], base, "p")
    hot_e = _errors(tmp_path, emt_data["train"],
                    {**base, "config_types": {"hot": {"energy": 1e6}}}, "he")
    hot_f = _errors(tmp_path, emt_data["train"],
                    {**base, "config_types": {"hot": {"forces": 1e4}}}, "hf")
    by = {name: e["by_config_type"] for name, e in
          (("plain", plain), ("hot_e", hot_e), ("hot_f", hot_f))}
    # least squares: raising the weight of a subset of rows lowers their squared error
    assert by["hot_e"]["hot"]["energy_rmse"] < 0.5 * by["plain"]["hot"]["energy_rmse"]
    assert by["hot_f"]["hot"]["forces_rmse"] < by["plain"]["hot"]["forces_rmse"]
    assert by["hot_e"]["bulk"]["energy_rmse"] == pytest.approx(
        by["plain"]["bulk"]["energy_rmse"], rel=1e-3) or (
        by["hot_e"]["bulk"]["forces_rmse"] > by["plain"]["bulk"]["forces_rmse"])
    # a per-configuration weight of 0 is the same as leaving the configuration out
    frames = list(ase.io.read(emt_data["train"], ":"))
    for a in frames[8:]:
        a.info["weight"] = 0.0
    zero = _errors(tmp_path, _write(tmp_path / "zero.xyz", frames), base, "z")
    only = _errors(tmp_path, _write(tmp_path / "only.xyz", frames[:8]), base, "o")
    assert zero["by_config_type"]["bulk"]["forces_mae"] == pytest.approx(
        only["forces_mae"], rel=1e-6)


# ---------------------------------------------------------------------- committee and CLI
def test_committee_in_model(si_model_data, tmp_path):
    d = si_model_data
    cfg = _cfg(tmp_path, basis=d["basis_kw"],
               fit={"committee": {"size": 400, "seed": 3}, "weights": {"energy": 1.0,
                                                                      "forces": 1.0}})
    res = run_fit(cfg, train=[d["train"]], progress=False)
    comm = res.model.committee
    assert comm.shape == (400, len(res.model.basis))
    sd = np.sqrt(np.diag(res.posterior.covariance()))
    assert np.all(np.abs(comm.mean(axis=0) - res.posterior.mean) < 5 * sd / np.sqrt(400))
    atoms = d["frames"][0].copy()
    atoms.calc = ACECalculator(res.model)
    atoms.get_potential_energy()
    assert atoms.calc.results["energy_std"] > 0


def test_cli_fit_and_eval(si_model_data, tmp_path, capsys):
    d = si_model_data
    cfg = tmp_path / "fit.yaml"
    cfg.write_text(
        "basis: {order: 2, max_degree: 8, r_cut: {nn_multiple: 1.8}}\n"
        "fit:\n  weights: {energy: 1.0e4, forces: 100.0}\n  committee: {size: 4}\n")
    out = tmp_path / "out" / "si.yaml"
    assert main(["fit", str(cfg), "--train", d["train"], "--test", d["test"], "--out", str(out),
                 "--quiet"]) == 0
    assert out.exists()
    assert (tmp_path / "out" / "si.fit.json").exists()
    assert (tmp_path / "out" / "si.parity.png").exists()
    report = json.loads((tmp_path / "out" / "si.fit.json").read_text())
    from aceal.fit.data import nearest_neighbour_distance

    d_nn = nearest_neighbour_distance(ase.io.read(d["train"], ":"))
    assert 1.8 < d_nn < 2.4  # rattled diamond Si (2.35 Å unrattled)
    assert report["basis"]["r_cut"] == pytest.approx(1.8 * d_nn, abs=0.006)
    assert set(report["timings"]) >= {"read", "assembly", "solve", "total"}
    capsys.readouterr()
    assert main(["eval", str(out), d["test"], "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    ev = json.loads(lines[0])
    for key in ("n_configs", "energy_mae", "energy_rmse", "forces_mae", "forces_rmse",
                "stress_mae", "stress_rmse", "by_config_type"):
        assert key in ev
    assert ev["n_configs"] == 3  # 16 frames, 13 for training
    assert ev["energy_mae"] == pytest.approx(report["errors"]["test"]["energy_mae"])
    assert main(["eval", str(out), d["test"]]) == 0
    assert "overall" in capsys.readouterr().out
    # an element the model does not know
    cu = _label([bulk("Cu", "fcc", a=3.6)], EMT())
    assert main(["eval", str(out), _write(tmp_path / "cu.xyz", cu)]) == 2
    assert "Cu" in capsys.readouterr().err
