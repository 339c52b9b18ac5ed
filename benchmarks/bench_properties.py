"""Property accuracy of an aceal-loop campaign, per iteration, against its own reference.

Runs the campaign of ``--config`` (default ``configs/cu-vacancy-eam.yaml``; its reference
calculator is the truth), then ``aceal validate``'s ``bulk``, ``defects`` and ``fewbody``
suites on the model of every ``--every``-th iteration and the last one, with the model's
committee (every bulk/defect property also computed by each member), against the
reference.  Prints one JSON line:

* ``iterations``: per validated model, ``reference_calls`` and per property
  ``[model, reference, rel_error, committee_std, within_2sigma]`` (energies in eV, elastic
  constants in GPa, lengths in Å, surface energies in J/m²);
* ``final``: the last model's worst relative error over the bulk and defect properties,
  the largest formation/migration energy error (eV), the fraction within 2σ
  (``calibration``), the dimer minimum's relative error, and the issue-15 targets
  (``targets``: each True/False);
* ``wall_s``: campaign and validation times.

Usage: ``python benchmarks/bench_properties.py [--config CFG] [--every K] [--quick]``
(``--quick``: the validate suites' quick cells, for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: defect energies (names starting so), judged by their absolute error (eV); the rest by
#: the relative error
ENERGY_PROPERTIES = ("E_vac formation", "E_vac migration (NEB)", "E_int formation")


def _is_energy(key: str) -> bool:
    return key.split(":")[1].startswith(ENERGY_PROPERTIES)


def _validate(model_path: Path, reference, elements, quick: bool) -> dict:
    from aceal.calculator import ACECalculator
    from aceal.model import ACEModel
    from aceal.validate import run_validation
    from aceal.validate.suite import DEFAULT_SETTINGS, QUICK_SETTINGS

    model = ACEModel.load(model_path)
    members = [ACECalculator(m) for m in model.committee_models()]
    mean = ACEModel(model.basis, model.coefficients, e0=model.e0, repulsion=model.repulsion)
    return run_validation(ACECalculator(mean), reference, elements,
                          suites=("bulk", "defects", "fewbody"),
                          settings=QUICK_SETTINGS if quick else DEFAULT_SETTINGS,
                          committee=members)


def _summary(report: dict) -> dict:
    props, dimer = {}, None
    for r in report["rows"]:
        key = f"{r['element']}:{r['property']}"
        if r["suite"] in ("bulk", "defects"):
            props[key] = [r["model"], r["reference"], r["rel_error"], r.get("committee_std"),
                          r.get("within_2sigma")]
        elif r["suite"] == "fewbody" and r["property"] == "dimer r_min" and dimer is None:
            dimer = [r["model"], r["reference"], r["rel_error"]]
    return {"properties": props, "dimer_r_min": dimer}


def _final(summary: dict) -> dict:
    props = summary["properties"]
    energy = {k: abs(v[0] - v[1]) for k, v in props.items() if _is_energy(k)}
    relative = {k: v[2] for k, v in props.items() if not _is_energy(k)
                and v[2] is not None and np.isfinite(v[2])}
    within = [bool(v[4]) for v in props.values() if v[4] is not None]
    worst_rel = max(relative.items(), key=lambda kv: kv[1]) if relative else (None, None)
    worst_e = max(energy.items(), key=lambda kv: kv[1]) if energy else (None, None)
    calib = float(np.mean(within)) if within else float("nan")
    dimer = summary["dimer_r_min"]
    return {"worst_relative": worst_rel, "worst_energy_eV": worst_e, "calibration": calib,
            "dimer_r_min": dimer,
            "targets": {"relative_within_3pct": bool(worst_rel[1] is not None
                                                      and worst_rel[1] <= 0.03),
                        "energies_within_0.03eV": bool(worst_e[1] is not None
                                                        and worst_e[1] <= 0.03),
                        "calibration_80pct": bool(calib >= 0.8),
                        "dimer_within_10pct": bool(dimer is not None and dimer[0] is not None
                                                   and np.isfinite(dimer[2])
                                                   and dimer[2] <= 0.10)}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "cu-vacancy-eam.yaml"))
    p.add_argument("--every", type=int, default=2, help="validate every K-th iteration")
    p.add_argument("--quick", action="store_true", help="quick validation cells")
    p.add_argument("--out", default=None, help="campaign directory (default: a temporary)")
    args = p.parse_args()

    from aceal.loop.cli import run_campaign
    from aceal.loop.config import load_campaign_config
    from aceal.reference import make_calculator

    cfg = load_campaign_config(args.config)
    tmp = tempfile.TemporaryDirectory()
    out = Path(args.out or tmp.name) / "campaign"
    cfg.output.directory = str(out)
    cfg.output.progress = False
    cfg.output.plots = False
    t0 = time.perf_counter()
    run_campaign(cfg, out, quiet=True)
    t_campaign = time.perf_counter() - t0
    calls = {}
    for line in (out / cfg.output.log).read_text().splitlines():
        rec = json.loads(line)
        if rec.get("event") == "iteration":
            calls[rec["iteration"]] = rec["reference_calls_total"]
    last = max(calls)
    chosen = sorted({i for i in calls if i % args.every == 0} | {last})
    reference = make_calculator(cfg.reference.calculator, cfg.base_dir)
    t0 = time.perf_counter()
    per_iteration = {}
    for it in chosen:
        summary = _summary(_validate(out / "models" / f"model-{it:04d}.yaml", reference,
                                     cfg.elements, args.quick))
        per_iteration[it] = {"reference_calls": calls[it], **summary}
    t_validate = time.perf_counter() - t0
    print(json.dumps({"config": str(Path(args.config).resolve().relative_to(ROOT))
                      if Path(args.config).resolve().is_relative_to(ROOT) else args.config,
                      "quick": args.quick, "iterations": per_iteration,
                      "final": _final(per_iteration[last]),
                      "wall_s": {"campaign": t_campaign, "validation": t_validate}},
                     default=lambda o: o.item() if hasattr(o, "item") else str(o)))


if __name__ == "__main__":
    main()
