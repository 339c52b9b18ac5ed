"""``hyperparameters: auto``: cross-validation on normal equations, and an end-to-end
search that must agree with a plain fit of what it chose and must never see the test data."""

import numpy as np
import pytest
from ase.calculators.emt import EMT

from aceal.fit import fitter, search
from aceal.fit.fitter import run_fit
from aceal.fit.normal_equations import NormalEquations
from aceal.fit.search import Candidate, FoldEquations, _evaluate, fold_indices
from aceal.fit.solvers import smoothness_prior
from tests.test_fit import _cfg, _label, _structures, _write


def test_folds_are_seeded_and_stratified_by_config_type():
    types = ["a"] * 10 + ["b"] * 5 + [None] * 3
    f = fold_indices(types, 5, seed=1)
    assert np.array_equal(f, fold_indices(types, 5, seed=1))
    assert not np.array_equal(f, fold_indices(types, 5, seed=2))
    for t in ("a", "b"):
        counts = np.bincount(f[np.array(types) == t], minlength=5)
        assert counts.max() - counts.min() <= 1
    assert np.bincount(f, minlength=5).min() >= 3


def test_cv_error_from_normal_equations_equals_explicit_refits():
    """A fold's held-out RMSE from sub-matrices = refit on the other folds' rows, predict."""
    rng = np.random.default_rng(0)
    m, n_e0, folds = 12, 1, 3
    degrees = np.repeat(np.arange(6.0), 2)
    orders = np.tile([1.0, 2.0], 6)
    data = []  # (fold, kind, rows incl. E0 column, targets)
    neqs = [NormalEquations(m + n_e0) for _ in range(folds)]
    c_true = rng.normal(size=m + n_e0)
    for j in range(folds):
        for kind, nrow in (("energy", 7), ("forces", 40)):
            rows = rng.normal(size=(nrow, m + n_e0))
            if kind == "forces":
                rows[:, m:] = 0.0
            y = rows @ c_true + 0.1 * rng.normal(size=nrow)
            neqs[j].add(kind, rows, y)
            data.append((j, kind, rows, y))
    asm = FoldEquations(2.0, neqs, degrees, orders, n_e0)
    cand = Candidate(2.0, (4.0, 3.0), (("energy", 30.0), ("forces", 1.0), ("virial", 1.0)), 2.0)
    trial = _evaluate(asm, cand, {"energy": 1.0, "forces": 1.0}, 1000, 2.0, 1.0)

    cols = asm.columns(cand.max_degree)
    basis_cols = cols[:-n_e0]
    prior = smoothness_prior(degrees[basis_cols], 2.0, 1.0, orders[basis_cols], 2.0)
    w = cand.weight_map
    sq = {"energy": 0.0, "forces": 0.0}
    cnt = {"energy": 0, "forces": 0}
    for j in range(folds):
        a = np.concatenate([np.sqrt(w[k]) * r[:, cols] for f, k, r, _ in data if f != j])
        y = np.concatenate([np.sqrt(w[k]) * t for f, k, _, t in data if f != j])
        reg = np.concatenate([np.sqrt(trial.lam * prior), np.zeros(n_e0)])
        c = np.linalg.lstsq(np.vstack([a, np.diag(reg)]),
                            np.concatenate([y, np.zeros(cols.size)]), rcond=None)[0]
        for f, k, r, t in data:
            if f == j:
                sq[k] += float(np.sum((r[:, cols] @ c - t) ** 2))
                cnt[k] += len(t)
    for k in sq:
        assert trial.cv_rmse[k] == pytest.approx(np.sqrt(sq[k] / cnt[k]), rel=1e-8)
    assert trial.n_functions == basis_cols.size < m


@pytest.fixture(scope="module")
def cu_data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cu_auto")
    frames = _label(_structures("Cu", "fcc", 3.61, 14, seed=3, rattle=0.12), EMT())
    for k, a in enumerate(frames):
        a.info["config_type"] = "bulk" if k % 3 else "strained"
    test = _label(_structures("Cu", "fcc", 3.61, 4, seed=9, rattle=0.2), EMT())
    other = _label(_structures("Cu", "fcc", 3.3, 4, seed=10, rattle=0.3), EMT())
    return {"tmp": tmp, "train": _write(tmp / "train.xyz", frames),
            "test": _write(tmp / "test.xyz", test), "other": _write(tmp / "other.xyz", other)}


AUTO = {"hyperparameters": "auto",
        "basis": {"order": 3, "max_degree": [8, 8, 6], "radial_basis": "SBessel"},
        "search": {"folds": 3, "cutoffs": [1.8, 2.1]}}


def test_auto_search_matches_a_plain_fit_of_its_choice_and_never_reads_the_test_data(
        cu_data, tmp_path, monkeypatch):
    reads = []
    done = {"search": False}
    real_load, real_search = fitter.load_dataset, search.search_hyperparameters

    def load(paths, keys=None):
        reads.append((list(map(str, paths)), done["search"]))
        return real_load(paths, keys)

    def wrapped_search(*args, **kwargs):
        out = real_search(*args, **kwargs)
        done["search"] = True
        return out

    monkeypatch.setattr(fitter, "load_dataset", load)
    monkeypatch.setattr(search, "search_hyperparameters", wrapped_search)
    res = run_fit(_cfg(tmp_path, **AUTO), train=[cu_data["train"]], test=[cu_data["test"]],
                  progress=False)
    assert ([cu_data["test"]], True) in reads  # evaluated, but only after the search
    assert all(done_then for paths, done_then in reads if cu_data["test"] in paths)
    rep = res.report["hyperparameter_search"]
    assert rep["n_trials"] == len(rep["trials"]) > 10
    cutoffs = {t["cutoff_nn_multiple"] for t in rep["trials"]}
    assert {1.8, 2.1} <= cutoffs <= {1.543, 1.8, 2.1, 2.45}  # the grid, or one step past it
    best = min(rep["trials"], key=lambda t: t["score"])
    assert rep["chosen"] == best and len(res.model.basis) == best["n_functions"]

    # a plain fit with the chosen settings: the same model (the search's sub-matrices are
    # exactly the assembly of the smaller basis at the chosen weights)
    chosen = res.report["config"]
    assert chosen["hyperparameters"] == "auto"
    plain = dict(chosen, hyperparameters="fixed", output={"model": str(tmp_path / "p.yaml")})
    plain["data"] = {}
    ref = run_fit(_cfg(tmp_path, **{k: v for k, v in plain.items() if k != "output"}),
                  train=[cu_data["train"]], out=tmp_path / "p.yaml", progress=False)
    assert ref.model.basis.labels() == res.model.basis.labels()
    for kind, b in ref.normal_equations.blocks.items():
        a = res.normal_equations.blocks[kind]
        assert a.n_rows == b.n_rows
        np.testing.assert_allclose(a.ata, b.ata, rtol=0, atol=1e-12 * np.abs(b.ata).max())
        np.testing.assert_allclose(a.aty, b.aty, rtol=0, atol=1e-12 * np.abs(b.aty).max())
        assert a.yty == pytest.approx(b.yty, rel=1e-12)
    # (the evidence optimum is flat: alpha agrees to ~1e-4, so the coefficients to ~1e-3)
    np.testing.assert_allclose(ref.model.coefficients, res.model.coefficients, rtol=1e-2,
                               atol=1e-3 * np.abs(ref.model.coefficients).max())

    # the choice does not depend on the test data: none, or a very different set
    for test in ([], [cu_data["other"]]):
        again = run_fit(_cfg(tmp_path, **AUTO), train=[cu_data["train"]], test=test,
                        out=tmp_path / "again.yaml", progress=False)
        assert again.report["hyperparameter_search"]["chosen"]["cv_rmse"] == best["cv_rmse"]
        assert again.report["config"] == chosen


def _noisy_fold_equations(cutoff: float, best_cutoff: float) -> FoldEquations:
    """Fold equations whose label noise grows with the distance to ``best_cutoff`` (the
    same draws at every cutoff, so the CV error is monotonic in that distance)."""
    rng = np.random.default_rng(0)
    m, n_e0 = 8, 1
    c_true = rng.normal(size=m + n_e0)
    noise = 0.01 + abs(cutoff - best_cutoff)
    neqs = []
    for _ in range(3):
        neq = NormalEquations(m + n_e0)
        for kind, nrow in (("energy", 10), ("forces", 30)):
            rows = rng.normal(size=(nrow, m + n_e0))
            if kind == "forces":
                rows[:, m:] = 0.0
            neq.add(kind, rows, rows @ c_true + noise * rng.normal(size=nrow))
        neqs.append(neq)
    return FoldEquations(cutoff, neqs, np.repeat(np.arange(4.0), 2), np.tile([1.0, 2.0], 4),
                         n_e0)


@pytest.mark.parametrize(("best_cutoff", "expected"), [
    (3.0, 2.939),   # past the top edge: 2.6 * 2.6/2.3, and 3.324 is worse
    (2.3, 2.3),     # inside the grid: no extension
    (1.0, 1.512),   # past the bottom edge by 2.0/2.3 twice; 1.315 is below the floor
])
def test_the_cutoff_search_extends_past_a_winning_edge(best_cutoff, expected):
    assembled = []

    def assemble(c: float) -> FoldEquations:
        assembled.append(c)
        return _noisy_fold_equations(c, best_cutoff)

    start = Candidate(2.3, (3.0, 3.0), (("energy", 1.0), ("forces", 1.0)), 1.0)
    res = search.search_hyperparameters(assemble, start, [2.0, 2.3, 2.6],
                                        {"energy": 1.0, "forces": 1.0}, ["energy", "forces"])
    assert res.best.candidate.cutoff == pytest.approx(expected)
    assert min(assembled) >= search.MIN_CUTOFF_MULTIPLE
    assert len(assembled) == len(set(assembled))
