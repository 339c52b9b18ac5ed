"""Benchmark ``aceal fit`` on the Zuo et al. Si training set; prints ONE JSON line.

Runs the whole fit of ``configs/fit-zuo.yaml`` (basis, E0, assembly of the normal
equations, Bayesian solve, model writing, evaluation) on the Si training set and reports:
assembly time per 1000 atomic environments (s), solve time (s), total fit time (s),
basis size, number of fitted rows and the numba thread count.

Usage: python benchmarks/bench_fit.py [--train Si-training.xyz] [--config configs/fit-zuo.yaml]
(set NUMBA_NUM_THREADS=2 to reproduce the 2-core numbers)
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
    ap.add_argument("--config", default=str(ROOT / "configs" / "fit-zuo.yaml"))
    args = ap.parse_args()

    from aceal.fit.config import load_config
    from aceal.fit.fitter import run_fit

    cfg = load_config(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = run_fit(cfg, train=[args.train], out=Path(tmp) / "model.yaml", progress=False)
        wall = time.perf_counter() - t0
    rep = res.report
    t = rep["timings"]
    n_atoms = rep["data"]["train"]["n_atoms"]
    print(
        json.dumps(
            {
                "benchmark": "fit",
                "train": Path(args.train).name,
                "n_configs": rep["data"]["train"]["n_configs"],
                "n_atoms": n_atoms,
                "basis_size": rep["basis"]["size"],
                "rows": rep["hyperparameters"]["rows"],
                "assembly_s_per_1000_envs": round(t["assembly"] / n_atoms * 1000, 4),
                "assembly_s": round(t["assembly"], 3),
                "solve_s": round(t["solve"], 3),
                "evaluate_s": round(t["evaluate"], 3),
                "fit_total_s": round(t["total"], 3),
                "wall_s": round(wall, 3),
                "numba_threads": rep["threads"]["numba"],
                "train_energy_mae_mev": round(rep["errors"]["train"]["energy_mae"] * 1e3, 3),
                "train_forces_mae": round(rep["errors"]["train"]["forces_mae"], 4),
            }
        )
    )


if __name__ == "__main__":
    main()
