"""Full validation report: a model vs the Mishin Cu EAM, and a W screw dislocation core.

Usage::

    python examples/validate_report.py                    # EMT plays the model
    python examples/validate_report.py --model cu.json    # an aceal model file
    python examples/validate_report.py --quick --out /tmp/report

Cu: lattice constant, E-V, elastic constants, vacancy formation and migration (CI-NEB),
surface energies, self-interstitial, dimer/trimer curves, Langevin MD (RDF, diffusion),
NVE drift and rare-event force errors along the vacancy hop, each with the model and
the reference side by side (``OUT/cu/report.md``).

W: 1/2<111> screw dislocation core with the Zhou EAM as the reference
(``OUT/w/report.md``); the model is ``--w-model`` (an aceal W model) if given, else
the reference itself (a self-check: all errors must be zero).

Needs only the repository (potentials from ``tests/data``) and matscipy.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from aceal.reference import describe_spec, make_calculator
from aceal.validate.suite import ALL_SUITES, DEFAULT_SETTINGS, QUICK_SETTINGS, run_validation

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="aceal Cu model file (default: EMT as the model)")
    ap.add_argument("--w-model", help="aceal W model file for the dislocation check")
    ap.add_argument("--out", default="validation_report", help="output directory")
    ap.add_argument("--quick", action="store_true", help="small cells, short MD")
    args = ap.parse_args(argv)
    settings = QUICK_SETTINGS if args.quick else DEFAULT_SETTINGS
    out = Path(args.out)

    cu_ref_spec = {"name": "EAM", "potential": str(DATA / "Cu_mishin1.eam.alloy")}
    cu_model_spec = {"name": "ACE", "model": args.model} if args.model else "EMT"
    t0 = time.perf_counter()
    res = run_validation(
        make_calculator(cu_model_spec),
        make_calculator(cu_ref_spec),
        ["Cu"],
        suites=[s for s in ALL_SUITES if s != "dislocation"],
        out_dir=out / "cu",
        settings=settings,
        model_label=describe_spec(cu_model_spec),
        reference_label="EAM Mishin Cu (PRB 63, 224106)",
    )
    print(f"Cu report: {out / 'cu' / 'report.md'} ({time.perf_counter() - t0:.0f} s)")
    for r in res["rows"]:
        print(
            f"  {r['suite']:11s} {r['element']:9s} {r['property']:34s} "
            f"ref {r['reference']:10.4g}  model {r['model']:10.4g}  [{r['unit']}]"
        )

    w_ref_spec = {"name": "EAM", "potential": str(DATA / "W_zhou.eam.alloy")}
    w_model_spec = {"name": "ACE", "model": args.w_model} if args.w_model else w_ref_spec
    t0 = time.perf_counter()
    res = run_validation(
        make_calculator(w_model_spec),
        make_calculator(w_ref_spec),
        ["W"],
        suites=("bulk", "dislocation"),
        out_dir=out / "w",
        settings=settings,
        model_label=describe_spec(w_model_spec) + ("" if args.w_model else " (self-check)"),
        reference_label="EAM Zhou W (Acta Mater. 49, 4005)",
    )
    print(f"W report: {out / 'w' / 'report.md'} ({time.perf_counter() - t0:.0f} s)")
    for r in res["rows"]:
        print(
            f"  {r['suite']:11s} {r['element']:9s} {r['property']:34s} "
            f"ref {r['reference']:10.4g}  model {r['model']:10.4g}  [{r['unit']}]"
        )


if __name__ == "__main__":
    main()
