"""Calibration of aceal's uncertainty signals on the Zuo et al. Si data (one JSON line).

Fit on the Si ``Elastic`` + ``Vacancy`` training configurations only (committee of 8 drawn
from the Bayesian posterior; active set from the training atoms), then on every test
configuration compare the signals with the actual force error:

* ``forces_std``: per-configuration mean of the committee force spread (eV/Å),
* ``max_gamma``: per-configuration maximum extrapolation grade,
* actual error: per-configuration force MAE against DFT (eV/Å).

Reported: Spearman rank correlations overall and per config_type, and the mean rank of
AIMD configurations vs Elastic ones (AIMD should rank above: it is further from the
training data). Targets (issue): rank correlation >= 0.5 overall, AIMD above Elastic.

Usage: ``python benchmarks/bench_uncertainty.py [--data DIR]`` (default:
``../shared/data/mlearn`` next to the repository).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.io import read, write
from scipy.stats import rankdata, spearmanr

from aceal import ACECalculator
from aceal.fit.config import load_config
from aceal.fit.fitter import run_fit
from aceal.grade import ExtrapolationGrader

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "mlearn"))
    parser.add_argument("--committee", type=int, default=8)
    args = parser.parse_args()
    data = Path(args.data)
    if not (data / "Si-training.xyz").is_file():
        print(json.dumps({"skipped": f"no Zuo data at {data}"}))
        return 0
    t0 = time.perf_counter()
    train = [a for a in read(data / "Si-training.xyz", ":")
             if a.info.get("config_type") in ("Elastic", "Vacancy")]
    test = read(data / "Si-test.xyz", ":")
    cfg = load_config(REPO / "configs" / "fit-zuo.yaml")
    cfg.fit.committee.size = args.committee
    cfg.output.plot = False
    with tempfile.TemporaryDirectory() as tmp:
        train_path = Path(tmp) / "train.xyz"
        write(train_path, train, format="extxyz")
        result = run_fit(cfg, train=[str(train_path)], out=Path(tmp) / "model.yaml")
    model = result.model
    t_fit = time.perf_counter() - t0
    grader = ExtrapolationGrader.from_training(model.basis, train)
    calc = ACECalculator(model, active_set=grader)

    rows = []
    for atoms in test:
        ref = atoms.get_forces().copy()
        a = atoms.copy()
        a.calc = calc
        forces = a.get_forces()
        gamma = calc.get_property("gamma", a)
        rows.append({
            "config_type": atoms.info.get("config_type", "unknown"),
            "error": float(np.abs(forces - ref).mean()),
            "forces_std": float(np.mean(calc.results["forces_std"])),
            "max_gamma": float(np.max(gamma)),
        })
    err = np.array([r["error"] for r in rows])
    types = np.array([r["config_type"] for r in rows])
    out: dict = {"benchmark": "uncertainty_calibration", "train": "Si Elastic+Vacancy",
                 "n_train": len(train), "n_test": len(test), "basis_size": len(model.basis),
                 "committee": args.committee, "fit_s": round(t_fit, 1)}
    for signal in ("forces_std", "max_gamma"):
        s = np.array([r[signal] for r in rows])
        out[f"spearman_{signal}"] = float(spearmanr(s, err).statistic)
        per_type = {}
        for ct in sorted(set(types)):
            m = types == ct
            per_type[ct] = (float(spearmanr(s[m], err[m]).statistic) if m.sum() > 2 else None)
        out[f"spearman_{signal}_by_type"] = per_type
        ranks = rankdata(s)
        if {"AIMD-NVT", "Elastic"} <= set(types):
            out[f"mean_rank_{signal}"] = {"AIMD-NVT": float(ranks[types == "AIMD-NVT"].mean()),
                                          "Elastic": float(ranks[types == "Elastic"].mean())}
    out["force_mae_by_type"] = {ct: float(err[types == ct].mean()) for ct in sorted(set(types))}
    out["target_met"] = bool(out["spearman_forces_std"] >= 0.5 and
                             out["mean_rank_forces_std"]["AIMD-NVT"]
                             > out["mean_rank_forces_std"]["Elastic"])
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
