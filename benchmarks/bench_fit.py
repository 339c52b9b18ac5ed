"""Benchmark ``aceal fit`` on a Zuo et al. training set; prints ONE JSON line.

Runs the whole fit of ``configs/fit-zuo.yaml`` (``hyperparameters: auto``: the
cross-validated search on the training data, then the solve, model writing and training
errors) and reports the search time, number of candidates, assembly time per cutoff and
per 1000 atomic environments, the chosen settings and basis size, the fit time and the
numba thread count. With ``--test``, the written model is then evaluated on the test file
exactly as ``aceal eval`` does (the fit never sees it): test energy and force MAE.
A config with ``hyperparameters: fixed`` gives the plain assembly + solve timings.

Usage: python benchmarks/bench_fit.py [--train Si-training.xyz] [--test Si-test.xyz]
       [--config configs/fit-zuo.yaml]   (NUMBA_NUM_THREADS=2 for the 2-core numbers)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TRAIN = Path("/work/shared/data/mlearn/Si-training.xyz")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", default=str(DEFAULT_TRAIN))
    ap.add_argument("--test", default=None, help="evaluate the model on it after the fit")
    ap.add_argument("--config", default=str(ROOT / "configs" / "fit-zuo.yaml"))
    args = ap.parse_args()

    from aceal.fit.config import load_config
    from aceal.fit.fitter import load_dataset, run_fit
    from aceal.fit.metrics import error_metrics, predict

    cfg = load_config(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = run_fit(cfg, train=[args.train], out=Path(tmp) / "model.yaml", progress=False)
        wall = time.perf_counter() - t0
    rep = res.report
    t = rep["timings"]
    n_atoms = rep["data"]["train"]["n_atoms"]
    out = {
        "benchmark": "fit",
        "train": Path(args.train).name,
        "n_configs": rep["data"]["train"]["n_configs"],
        "n_atoms": n_atoms,
        "basis_size": rep["basis"]["size"],
        "per_order": rep["basis"]["per_order"],
        "r_cut": rep["basis"]["r_cut"],
        "rows": rep["hyperparameters"]["rows"],
        "solve_s": round(t["solve"], 3),
        "fit_total_s": round(t["total"], 3),
        "wall_s": round(wall, 3),
        "numba_threads": rep["threads"]["numba"],
        "train_energy_mae_mev": round(rep["errors"]["train"]["energy_mae"] * 1e3, 3),
        "train_forces_mae": round(rep["errors"]["train"]["forces_mae"], 4),
    }
    search = rep.get("hyperparameter_search")
    if search:
        n_cut = len({tr["cutoff_nn_multiple"] for tr in search["trials"]})
        out["search"] = {
            "search_s": round(search["timings"]["total"], 1),
            "assembly_s": round(search["timings"]["assembly"], 1),
            "assembly_s_per_1000_envs_per_cutoff": round(
                search["timings"]["assembly"] / n_cut / n_atoms * 1000, 4),
            "n_candidates": search["n_trials"],
            "chosen": {k: search["chosen"][k] for k in (
                "cutoff_nn_multiple", "max_degree", "weights", "order_factor",
                "n_functions", "cv_rmse")},
        }
    else:
        out["assembly_s"] = round(t["assembly"], 3)
        out["assembly_s_per_1000_envs"] = round(t["assembly"] / n_atoms * 1000, 4)
    if args.test:  # as aceal eval does, on data the fit never saw
        data = load_dataset([args.test])
        err = error_metrics(data.labels, predict(res.model, data.structures), data.natoms)
        out["test"] = Path(args.test).name
        out["test_energy_mae_mev"] = round(err["energy_mae"] * 1e3, 3)
        out["test_forces_mae"] = round(err["forces_mae"], 4)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
