"""``aceal fit CONFIG.yaml``: fit a linear ACE model to energies, forces and virials."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "fit", help="fit an ACE model (weighted linear / Bayesian least squares)",
        description="Fit an ACE model from a YAML config (schema: docs/fitting.md). Writes "
                    "the model, a JSON report (X.fit.json) and a parity plot (X.parity.png) "
                    "next to it.")
    p.add_argument("config", help="fit configuration (YAML)")
    p.add_argument("--train", nargs="+", metavar="FILE",
                   help="training data (extended XYZ or zarr store); overrides data.train")
    p.add_argument("--test", nargs="+", metavar="FILE",
                   help="test data; overrides data.test")
    p.add_argument("--out", metavar="MODEL.yaml", help="model file; overrides output.model")
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from aceal.fit.config import load_config
    from aceal.fit.fitter import run_fit
    from aceal.fit.metrics import format_metrics

    cfg = load_config(args.config)

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    result = run_fit(cfg, train=args.train, test=args.test, out=args.out,
                     progress=None if not args.quiet else False, log=log)
    if not args.quiet:
        for name, m in result.report["errors"].items():
            print(format_metrics(m, title=f"{name} errors"))
    t = result.report["timings"]
    print(f"model {result.model_path} ({len(result.model.basis)} functions) "
          f"report {result.report_path} fit time {t['total']:.1f} s")
    return 0
