"""``aceal eval MODEL DATA``: errors of a model on labelled data (MAE/RMSE per config_type)."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="MAE/RMSE of a model on labelled data, per config_type and overall",
        description="Energy errors are per atom (eV/atom), forces per Cartesian component "
                    "(eV/Å), stress per Voigt component (eV/Å³, where the data has stress).")
    p.add_argument("model", help="ACE model file (YAML)")
    p.add_argument("data", nargs="+", help="labelled configurations (extended XYZ or store)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--energy-key", default="energy", help="energy key (default: energy)")
    p.add_argument("--forces-key", default="forces", help="forces key (default: forces)")
    p.add_argument("--stress-key", default="stress", help="stress key (default: stress)")
    p.add_argument("--config-type-key", default="config_type",
                   help="group key in atoms.info (default: config_type)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aceal.fit.data import Keys
    from aceal.fit.fitter import load_dataset
    from aceal.fit.metrics import error_metrics, format_metrics, predict
    from aceal.fit.report import to_jsonable

    if not Path(args.model).exists():
        raise FileNotFoundError(2, "No such file or directory", args.model)
    from aceal.model import ACEModel

    model = ACEModel.load(args.model)
    keys = Keys(energy=args.energy_key, forces=args.forces_key, stress=args.stress_key,
                config_type=args.config_type_key)
    data = load_dataset(args.data, keys)
    missing = sorted(set(data.elements) - set(model.basis.elements))
    if missing:
        from aceal.errors import AcealInputError

        raise AcealInputError(f"{', '.join(args.data)}: elements {', '.join(missing)} are not "
                              f"in the model ({', '.join(model.basis.elements)})")
    metrics = error_metrics(data.labels, predict(model, data.structures), data.natoms)
    if args.json:
        print(json.dumps(to_jsonable(metrics)))
    else:
        print(format_metrics(metrics, title=f"{args.model} on {', '.join(args.data)}"))
    return 0
