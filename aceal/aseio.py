"""ASE file I/O that is always local to the calling process.

ASE makes its file I/O collective as soon as it sees an MPI world of more than one
process (``ase.io.read`` broadcasts what rank 0 read, ``paropen`` writes on rank 0 only,
optimizer and MD loggers write on rank 0 only, Langevin broadcasts its random numbers).
aceal's ranks never do ASE I/O together: rank 0 reads and writes campaign files alone
while the other ranks wait in :func:`aceal.loop.coordinator.serve`, and each worker
labels and runs MD on its own.  A collective read on one rank waits forever for ranks
that never join it.

So every ASE read or write in aceal goes through this module, and
:func:`make_ase_rank_local` (called by :func:`aceal.loop.coordinator.get_comm` whenever
it hands out an MPI communicator) points ASE's ``world`` at a single-process stand-in,
so that ASE code aceal does not control (optimizers, NEB, MD, loggers, calculators that
use ``paropen``) is rank-local as well.  aceal's own MPI traffic uses mpi4py directly.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from ase import Atoms

__all__ = ["make_ase_rank_local", "read", "write"]


def make_ase_rank_local() -> None:
    """Make every later ASE collective in this process a no-op (idempotent).

    ``ase.parallel.world`` is one shared object that picks its communicator on first
    use; here it is given ASE's own ``DummyMPI`` (rank 0 of 1), whatever it had picked.
    """
    import ase.parallel

    world = ase.parallel.world
    if isinstance(world, ase.parallel.MPI):
        world.comm = ase.parallel.DummyMPI()
    else:  # an ASE whose ``world`` is a plain communicator object
        ase.parallel.world = ase.parallel.DummyMPI()


def read(path: str | os.PathLike, index: Any = ":", format: str | None = None,
         **kwargs: Any) -> list[Atoms]:
    """All frames ``index`` of ``path`` as a list, read by this process alone."""
    import ase.io

    images = ase.io.read(path, index=index, format=format, parallel=False, **kwargs)
    return images if isinstance(images, list) else [images]


def write(path: str | os.PathLike, images: Atoms | Iterable[Atoms], format: str | None = None,
          **kwargs: Any) -> None:
    """Write ``images`` to ``path`` from this process alone."""
    import ase.io

    ase.io.write(path, images, format=format, parallel=False, **kwargs)
