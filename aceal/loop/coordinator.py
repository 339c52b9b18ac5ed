"""The parallel engine: rank 0 coordinates, the other ranks run walkers and label.

With mpi4py and several processes (``mpiexec -n N aceal-loop cfg.yaml``) rank 0 runs the
campaign logic (store, fits, selection) and sends commands to the other ranks, which sit
in :func:`serve`:

* ``walk``: the model bundle (coefficients, committee, active set) is broadcast, each
  worker rank runs its share of the walkers (rank 0 too when it is the only process) and
  the segment results are gathered on rank 0;
* ``label``: the structures to label are spread over *all* ranks (rank 0 included), each
  labels its share through its own :class:`~aceal.loop.oracle.Oracle`, results gathered;
* ``stop``: workers return.

Without mpi4py, or with a single process, the same calls run serially in-process.
mpi4py is optional: it is imported only when present.  numba threads are set to
``cores // ranks`` on every rank (``threads_per_rank`` overrides).
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aceal.aseio import make_ase_rank_local

__all__ = ["Comm", "get_comm", "Engine", "serve", "WorkerContext", "set_threads",
           "RankTimeout", "Deadlines"]


class Comm:
    """Minimal communicator: mpi4py's COMM_WORLD, or a serial stand-in.

    Collectives are point-to-point messages received after polling ``iprobe`` with a
    short sleep, so a rank that waits (rank 0 during MD, the workers while rank 0
    fits) yields its core instead of busy-polling as MPI libraries do in blocking calls
    (with ``cores // ranks`` numba threads per rank, a spinning rank would steal a core).
    """

    _TAG_BCAST = 11
    _TAG_GATHER = 12

    def __init__(self, mpi_comm=None) -> None:
        self._c = mpi_comm
        self.rank = 0 if mpi_comm is None else mpi_comm.Get_rank()
        self.size = 1 if mpi_comm is None else mpi_comm.Get_size()

    def _wait(self, source: int, tag: int, timeout: float | None, phase: str) -> None:
        delay = 1e-4
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._c.iprobe(source=source, tag=tag):
            if deadline is not None and time.monotonic() > deadline:
                raise RankTimeout(self.rank, source, phase, timeout)
            time.sleep(delay)
            delay = min(2 * delay, 0.01)

    def bcast(self, obj: Any, root: int = 0, timeout: float | None = None,
              phase: str = "") -> Any:
        """``obj`` of ``root`` on every rank; the others wait at most ``timeout`` s."""
        if self._c is None:
            return obj
        if self.rank == root:
            for r in range(self.size):
                if r != root:
                    self._c.send(obj, dest=r, tag=self._TAG_BCAST)
            return obj
        self._wait(root, self._TAG_BCAST, timeout, phase)
        return self._c.recv(source=root, tag=self._TAG_BCAST)

    def gather(self, obj: Any, root: int = 0, timeout: float | None = None,
               phase: str = "") -> list | None:
        """Every rank's ``obj`` on ``root``, which waits at most ``timeout`` s per rank."""
        if self._c is None:
            return [obj]
        if self.rank != root:
            self._c.send(obj, dest=root, tag=self._TAG_GATHER)
            return None
        out = [None] * self.size
        out[root] = obj
        for r in range(self.size):
            if r != root:
                self._wait(r, self._TAG_GATHER, timeout, phase)
                out[r] = self._c.recv(source=r, tag=self._TAG_GATHER)
        return out

    def exit_all(self, code: int) -> None:
        """End this process at once with ``code``; under MPI the launcher then ends the
        other ranks (used when a rank no longer answers, so no collective may be called)."""
        if self._c is not None and self.size > 1:
            import sys

            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)


class RankTimeout(RuntimeError):
    """A rank waited longer than its deadline for another rank."""

    def __init__(self, rank: int, peer: int, phase: str, seconds: float) -> None:
        self.rank, self.peer, self.phase, self.seconds = rank, peer, phase, seconds
        super().__init__(
            f"rank {rank} got no answer from rank {peer} within {seconds:.0f} s "
            f"during {phase or 'the campaign'} (parallel.timeout); the campaign stopped, "
            "run the same command again to resume")


def get_comm() -> Comm:
    """COMM_WORLD if mpi4py is importable and there are several processes, else serial."""
    if os.environ.get("ACEAL_NO_MPI"):
        return Comm()
    try:
        from mpi4py import MPI
    except ImportError:
        return Comm()
    world = MPI.COMM_WORLD
    if world.Get_size() == 1:
        return Comm()
    make_ase_rank_local()
    return Comm(world)


def set_threads(comm: Comm, threads_per_rank: int | None = None) -> int:
    """Set numba's thread count to ``cores // ranks`` (at least 1); returns it."""
    import numba

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    n = threads_per_rank or max(1, cores // comm.size)
    n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    return n


@dataclass
class WorkerContext:
    """What every rank builds from the config: basis tables, oracle, MD settings."""

    basis: Any
    tables: Any
    oracle: Any
    md: dict
    uncertainty: dict
    threads: int
    keep_rows: bool = False
    exploration: Any = None
    _model: Any = None
    _md_model: Any = None
    _version: int | None = None

    def model(self, bundle) -> Any:
        """The ACE model of a bundle, with its committee (cached per version)."""
        if self._version != bundle.version or self._model is None:
            from aceal.loop.walker import mean_model
            from aceal.model import ACEModel

            self._model = ACEModel(self.basis, bundle.coefficients, e0=bundle.e0,
                                   repulsion=bundle.repulsion, committee=bundle.committee)
            self._md_model = mean_model(self._model)
            self._version = bundle.version
        return self._model

    def md_model(self, bundle) -> Any:
        """The mean model of a bundle (drives the MD; cached per version)."""
        self.model(bundle)
        return self._md_model


def _walk(ctx: WorkerContext, bundle, jobs: Sequence[tuple]) -> list:
    """MD segments ``(WalkerState, T, seed)`` and protocol runs ``(ExploreJob, T, seed)``."""
    from aceal.loop.explore import ExploreJob, run_protocol
    from aceal.loop.walker import run_segment

    model = ctx.model(bundle)
    md_model = ctx.md_model(bundle)
    out = []
    for task, temperature, seed in jobs:
        rng = np.random.default_rng(seed)
        kw = {"num_threads": ctx.threads, "keep_rows": ctx.keep_rows, "md_model": md_model}
        if isinstance(task, ExploreJob):
            out.append(run_protocol(task, model, ctx.tables, bundle, ctx.exploration,
                                    ctx.md.min_distance, rng, **kw))
        else:
            out.append(run_segment(task, model, ctx.tables, bundle, ctx.md, ctx.uncertainty,
                                   temperature, rng, **kw))
    return out


def _label(ctx: WorkerContext, jobs: Sequence[tuple[int, Any]]) -> list:
    return [(i, ctx.oracle.label(atoms)) for i, atoms in jobs]


def _safe(fn: Callable, *args) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except Exception:  # reported to rank 0, which stops the campaign
        return "error", traceback.format_exc()


class WorkerError(RuntimeError):
    """A worker rank failed unexpectedly (its traceback is the message)."""


@dataclass(frozen=True)
class Deadlines:
    """How long one rank waits for another before the campaign stops (the ``parallel``
    section of the campaign config), in seconds.

    Attributes
    ----------
    timeout
        Rank 0 waiting for a worker's MD segments, or for its labels beyond the time
        the reference may take for them (jobs x attempts x ``reference.timeout``).
    worker_timeout
        A worker waiting for rank 0's next command (rank 0 fits, selects and, once,
        runs the validation-set reference MD in between).
    """

    timeout: float = 3600.0
    worker_timeout: float = 86400.0


class Engine:
    """Rank 0's handle on the workers (or on itself when serial)."""

    def __init__(self, comm: Comm, ctx: WorkerContext,
                 deadlines: Deadlines | None = None) -> None:
        self.comm = comm
        self.ctx = ctx
        self.deadlines = deadlines or Deadlines()

    @property
    def walker_ranks(self) -> list[int]:
        return [0] if self.comm.size == 1 else list(range(1, self.comm.size))

    def _collect(self, mine, timeout: float, phase: str) -> list:
        parts = self.comm.gather(mine, timeout=timeout, phase=phase)
        out = []
        for rank, (status, value) in enumerate(parts):
            if status != "ok":
                raise WorkerError(f"rank {rank} failed:\n{value}")
            out.extend(value)
        return out

    def walk(self, bundle, jobs: Sequence[tuple], phase: str = "MD") -> list:
        """Run ``jobs`` = [(WalkerState or ExploreJob, temperature K, seed)] on the walker
        ranks.

        Returns the :class:`~aceal.loop.walker.SegmentResult` of every job, in order.
        """
        ranks = self.walker_ranks
        share = {r: [] for r in range(self.comm.size)}
        for k, job in enumerate(jobs):
            share[ranks[k % len(ranks)]].append((k, job))
        self.comm.bcast(("walk", bundle, share))
        mine = _safe(lambda: [(k, r) for (k, _), r in
                              zip(share[0], _walk(self.ctx, bundle, [j for _, j in share[0]]),
                                  strict=True)])
        results = dict(self._collect(mine, self.deadlines.timeout, phase))
        return [results[k] for k in range(len(jobs))]

    def label(self, structures: Sequence[Any], phase: str = "labelling") -> list:
        """Label structures on all ranks; returns their :class:`OracleResult` in order."""
        share = {r: [(i, a) for i, a in enumerate(structures) if i % self.comm.size == r]
                 for r in range(self.comm.size)}
        self.comm.bcast(("label", share))
        oracle = self.ctx.oracle
        per_call = oracle.timeout or self.deadlines.timeout
        most = max(len(v) for v in share.values())
        timeout = self.deadlines.timeout + most * (oracle.retries + 1) * per_call
        results = dict(self._collect(_safe(_label, self.ctx, share[0]), timeout, phase))
        return [results[i] for i in range(len(structures))]

    def stop(self) -> None:
        if self.comm.size > 1:
            self.comm.bcast(("stop",))


def serve(comm: Comm, ctx: WorkerContext, deadlines: Deadlines | None = None) -> None:
    """Worker loop of ranks > 0: execute rank 0's commands until ``stop``.

    Raises :class:`RankTimeout` when rank 0 sends nothing for ``deadlines.worker_timeout``.
    """
    deadlines = deadlines or Deadlines()
    while True:
        cmd = comm.bcast(None, timeout=deadlines.worker_timeout,
                         phase="the wait for rank 0's next command")
        if cmd[0] == "stop":
            return
        if cmd[0] == "walk":
            _, bundle, share = cmd
            mine = share.get(comm.rank, [])

            def run(bundle=bundle, mine=mine):
                res = _walk(ctx, bundle, [j for _, j in mine])
                return [(k, r) for (k, _), r in zip(mine, res, strict=True)]

            comm.gather(_safe(run))
        elif cmd[0] == "label":
            comm.gather(_safe(_label, ctx, cmd[1].get(comm.rank, [])))
