"""``aceal validate``: properties of a model vs a reference calculator, as a report."""

from __future__ import annotations

import argparse
import json
import sys

from aceal.errors import AcealInputError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "validate",
        help="compare a model with a reference calculator on physical properties",
        description=(
            "Compute lattice constant, elastic constants, defects, surfaces, few-body "
            "curves, MD and rare-event force errors with a model and a reference "
            "calculator; write report.md, report.json and PNG plots."
        ),
    )
    p.add_argument(
        "model", nargs="?", help="aceal model file (loaded with aceal.calculator.ACECalculator)"
    )
    p.add_argument(
        "--model-calc", metavar="SPEC", help="use a calculator spec as the model instead of a file"
    )
    p.add_argument(
        "--reference",
        required=True,
        metavar="SPEC",
        help="reference calculator spec, e.g. EMT, EAM:Cu.eam.alloy, SW, tblite:GFN1-xTB, or JSON",
    )
    p.add_argument(
        "--suite",
        default="bulk,defects,fewbody,dynamics",
        help="comma list of: bulk, defects, fewbody, dynamics, rare_events, dislocation",
    )
    p.add_argument("--elements", required=True, help="comma list of elements, e.g. Cu")
    p.add_argument("--out", default="validation", help="report directory (default: ./validation)")
    p.add_argument(
        "--trajectory", help="labelled trajectory (ASE-readable, with forces) for rare_events"
    )
    p.add_argument(
        "--quick", action="store_true", help="small cells and short MD (seconds, not minutes)"
    )
    p.add_argument("--json", action="store_true", help="print the summary rows as JSON on stdout")
    p.add_argument(
        "--committee", type=int, default=None, metavar="N",
        help="bulk and defect properties also with the model's first N committee members "
             "(default: all of them; 0: none), reported as model ± σ with calibration",
    )
    p.set_defaults(func=run)


def _load_model(args):
    from aceal.reference import describe_spec, make_calculator

    if args.model and args.model_calc:
        raise AcealInputError("give either MODEL or --model-calc, not both")
    if args.model_calc:
        return make_calculator(args.model_calc), describe_spec(args.model_calc)
    if not args.model:
        raise AcealInputError("no model: give a MODEL file or --model-calc SPEC")
    return make_calculator({"name": "ACE", "model": args.model}), args.model


def _committee(args) -> list:
    """Calculators of the model file's committee members (at most ``--committee``)."""
    if not args.model or args.committee == 0:
        return []
    from aceal.calculator import ACECalculator
    from aceal.model import ACEModel

    members = ACEModel.load(args.model).committee_models()
    if args.committee is not None:
        members = members[: args.committee]
    return [ACECalculator(m) for m in members]


def run(args: argparse.Namespace) -> int:
    from aceal.reference import describe_spec, make_calculator
    from aceal.validate.report import to_jsonable
    from aceal.validate.suite import ALL_SUITES, DEFAULT_SETTINGS, QUICK_SETTINGS, run_validation

    suites = [s.strip() for s in args.suite.split(",") if s.strip()]
    for s in suites:
        if s not in ALL_SUITES:
            raise AcealInputError(f"unknown suite {s!r}; known: {', '.join(ALL_SUITES)}")
    elements = [e.strip() for e in args.elements.split(",") if e.strip()]
    reference = make_calculator(args.reference)
    model, model_label = _load_model(args)
    trajectory = None
    if args.trajectory:
        from aceal import aseio

        try:
            trajectory = aseio.read(args.trajectory)
        except FileNotFoundError:
            raise
        except Exception as err:  # noqa: BLE001 - any reader failure is bad input
            raise AcealInputError(f"cannot read trajectory {args.trajectory}: {err}") from None
    results = run_validation(
        model,
        reference,
        elements,
        suites=suites,
        out_dir=args.out,
        settings=QUICK_SETTINGS if args.quick else DEFAULT_SETTINGS,
        model_label=model_label,
        reference_label=describe_spec(args.reference),
        trajectory=trajectory,
        committee=_committee(args),
    )
    if args.json:
        json.dump(to_jsonable(results["rows"]), sys.stdout, indent=1)
        print()
    else:
        print(f"wrote {args.out}/report.md, {args.out}/report.json")
    return 0
