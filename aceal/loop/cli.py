"""``aceal-loop``: run (or resume) an MPI-parallel active-learning campaign.

    aceal-loop                      # the embedded quickstart, into ./aceal-quickstart/
    aceal-loop configs/w-eam.yaml   # any campaign config (docs/campaign.md)
    mpiexec -n 4 aceal-loop cfg.yaml
    aceal-loop cfg.yaml --output run2 --check

Running the same command again after a crash resumes the campaign from its last commit.
Bad input exits with status 2 and one line naming the key path; a rank that waits past
its deadline for another (``parallel.timeout``) stops the campaign with status 3 and one
line naming the ranks and the phase.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from aceal.errors import AcealInputError

if TYPE_CHECKING:
    from aceal.loop.config import CampaignConfig

__all__ = ["main", "run_campaign"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aceal-loop", description=__doc__.splitlines()[0])
    p.add_argument("config", nargs="?", default=None,
                   help="campaign YAML (default: the embedded quickstart)")
    p.add_argument("--output", "-o", default=None,
                   help="output directory (default: output.directory of the config, "
                        "relative to the current directory)")
    p.add_argument("--check", action="store_true",
                   help="only validate the config and exit")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    return p


def run_campaign(cfg: CampaignConfig, output: str | Path | None = None,
                 quiet: bool = False) -> dict | None:
    """Run a validated campaign on every rank; returns the summary on rank 0.

    Parameters
    ----------
    cfg
        From :func:`aceal.loop.config.load_campaign_config`.
    output
        Output directory (default ``cfg.output.directory``).
    quiet
        Suppress terminal progress.
    """
    import numpy as np

    from aceal.descriptors import DesignTables
    from aceal.fit.fitter import build_basis
    from aceal.loop.campaign import Campaign
    from aceal.loop.coordinator import (
        Deadlines,
        Engine,
        WorkerContext,
        get_comm,
        serve,
        set_threads,
    )
    from aceal.loop.log import Progress
    from aceal.loop.oracle import Oracle
    from aceal.loop.structures import build_structures

    comm = get_comm()
    threads = set_threads(comm, cfg.threads_per_rank)
    structures = build_structures(cfg.structures, np.random.default_rng([cfg.seed, 1]))
    basis, _ = build_basis(cfg.basis, cfg.elements, structures)
    ref = cfg.reference
    oracle = Oracle(ref.calculator, cfg.base_dir, timeout=ref.timeout,
                    retries=ref.retries, max_force=ref.max_force, stress=ref.stress,
                    isolation=ref.isolation)
    ctx = WorkerContext(basis, DesignTables(basis), oracle, cfg.md, cfg.uncertainty,
                        threads, keep_rows=cfg.selection.method == "information",
                        exploration=cfg.exploration)
    deadlines = Deadlines(**cfg.parallel.model_dump())
    if comm.rank != 0:
        serve(comm, ctx, deadlines)
        return None
    engine = Engine(comm, ctx, deadlines)
    out = Path(output if output is not None else cfg.output.directory)
    progress = Progress(cfg.output.progress and not quiet)
    try:
        return Campaign(cfg, out, engine, basis, ctx.tables, progress).run()
    finally:
        engine.stop()


def main(argv: list[str] | None = None) -> int:
    from aceal.loop.config import load_campaign_config
    from aceal.loop.coordinator import RankTimeout, get_comm

    args = build_parser().parse_args(argv)
    comm = get_comm()
    rank = comm.rank
    try:
        cfg = load_campaign_config(args.config)
        if args.config is None and args.output is None:
            args.output = "aceal-quickstart"
        if args.check:
            if rank == 0:
                print(f"{cfg.config_path}: ok")
            return 0
        run_campaign(cfg, args.output, args.quiet)
    except AcealInputError as err:
        if rank == 0:
            print(f"aceal-loop: error: {err}", file=sys.stderr)
        return 2
    except RankTimeout as err:
        print(f"aceal-loop: error: {err}", file=sys.stderr)
        comm.exit_all(3)   # a rank that does not answer: no MPI shutdown, no collective
        return 3
    except KeyboardInterrupt:
        print("aceal-loop: interrupted; run the same command again to resume",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
