"""``aceal data``: inspect, import into and export from a training store."""

from __future__ import annotations

import argparse
import json

from aceal.store import export_xyz, open_store
from aceal.store.xyz import load_for_import


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``aceal data {info,import,export}``."""
    parser = subparsers.add_parser(
        "data", help="training-data store: info, import, export", description=__doc__
    )
    sub = parser.add_subparsers(dest="data_command", required=True)

    info = sub.add_parser("info", help="counts, elements, sizes and provenance of a store")
    info.add_argument("store", help="store directory")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=run_info)

    imp = sub.add_parser("import", help="append extended-XYZ files to a store (one commit)")
    imp.add_argument("store", help="store directory (created if missing)")
    imp.add_argument("files", nargs="+", help="extended-XYZ files")
    imp.add_argument("--config-type", help="set config_type of every imported frame")
    imp.add_argument("--energy-key", help="info key holding the energy (eV)")
    imp.add_argument("--forces-key", help="arrays key holding the forces (eV/Å)")
    imp.add_argument("--stress-key", help="info key holding the stress (eV/Å³)")
    imp.add_argument(
        "--allow-unlabelled",
        action="store_true",
        help="store frames without energy (by default every frame needs one)",
    )
    imp.set_defaults(func=run_import)

    exp = sub.add_parser("export", help="write (a subset of) a store as extended XYZ")
    exp.add_argument("store", help="store directory")
    exp.add_argument("out", help="output .xyz file")
    exp.add_argument("--config-type", action="append", help="keep this config_type (repeatable)")
    exp.add_argument("--iteration", type=int, action="append", help="keep this iteration")
    exp.add_argument("--source", action="append", help="keep this source (repeatable)")
    exp.add_argument("--force", action="store_true", help="overwrite an existing output file")
    exp.set_defaults(func=run_export)


def _counts(mapping: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in mapping.items()) or "-"


def run_info(args: argparse.Namespace) -> int:
    """Print the store summary."""
    with open_store(args.store, "r") as store:
        summary = store.summary()
    if args.json:
        print(json.dumps(summary))
        return 0
    natoms = summary["natoms"]
    print(
        f"store: {summary['path']} (format {summary['format_version']}, "
        f"{summary['size_bytes'] / 1e6:.2f} MB on disk)"
    )
    print(
        f"configurations: {summary['configs']} ({summary['atoms']} atoms, "
        f"{natoms['min']}-{natoms['max']} per configuration, mean {natoms['mean']:.1f})"
    )
    print(f"elements: {_counts(summary['elements'])}")
    print(f"config types: {_counts(summary['config_types'])}")
    print(f"labels: {_counts(summary['labels'])}")
    print(f"sources: {_counts(summary['sources'])}")
    print(f"reasons: {_counts(summary['reasons'])}")
    print(f"calculators: {_counts(summary['calculators'])}")
    print(f"iterations: {_counts(summary['iterations'])}")
    print(f"failures: {summary['failures']}, models: {summary['models']}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Import extended-XYZ files (validated before the store is opened or created)."""
    options = {
        "config_type": args.config_type,
        "energy_key": args.energy_key,
        "forces_key": args.forces_key,
        "stress_key": args.stress_key,
        "require": () if args.allow_unlabelled else ("energy",),
    }
    images = load_for_import(args.files, **options)
    with open_store(args.store, "a") as store:
        store.append(images, **options)
        total = len(store)
    print(
        f"imported {len(images)} configurations from {len(args.files)} file(s) into "
        f"{args.store} (now {total})"
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Export to extended XYZ."""
    with open_store(args.store, "r") as store:
        n = export_xyz(
            store,
            args.out,
            config_type=args.config_type,
            iteration=args.iteration,
            source=args.source,
            overwrite=args.force,
        )
    print(f"wrote {n} configurations to {args.out}")
    return 0
