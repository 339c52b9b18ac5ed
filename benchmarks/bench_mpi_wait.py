"""What a waiting MPI rank costs: blocking receive vs aceal's polled wait; ONE JSON line.

Run under ``mpiexec -n 2 python benchmarks/bench_mpi_wait.py [--repeat N]``.

Rank 0 sleeps ``wait`` seconds (standing in for MD or a fit) and then sends a message
stamped with its send time; rank 1 waits for it in one of three ways:

* ``blocking``: mpi4py's ``comm.recv`` (the MPI library's own wait: MPICH busy-polls);
* ``request``: ``comm.irecv`` then ``req.wait()`` (the same, through a request);
* ``aceal``: :meth:`aceal.loop.coordinator.Comm.bcast`, which polls ``iprobe`` with a
  sleep doubling from 0.1 ms to 10 ms.

Per method and wait length: rank 1's process CPU time as a fraction of the wait
(``cpu_fraction``: 1.0 means one core fully busy doing nothing useful, a core that the
other rank's numba threads could have used) and the latency from send to receipt (ms,
median over ``--repeat``).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from mpi4py import MPI

    from aceal.loop.coordinator import Comm

    world = MPI.COMM_WORLD
    if world.Get_size() != 2:
        raise SystemExit("run with mpiexec -n 2")
    comm = Comm(world)
    rank = world.Get_rank()
    waits = (0.001, 0.05, 1.0)
    methods = ("blocking", "request", "aceal")
    out: dict = {}
    for method in methods:
        for wait in waits:
            cpu, lat = [], []
            for _ in range(args.repeat):
                world.Barrier()
                if rank == 0:
                    time.sleep(wait)
                    msg = time.time()
                    if method == "aceal":
                        comm.bcast(msg)
                    else:
                        world.send(msg, dest=1, tag=7)
                    continue
                c0 = time.process_time()
                if method == "blocking":
                    msg = world.recv(source=0, tag=7)
                elif method == "request":
                    msg = world.irecv(source=0, tag=7).wait()
                else:
                    msg = comm.bcast(None)
                lat.append((time.time() - msg) * 1e3)
                cpu.append((time.process_time() - c0) / wait)
            if rank == 1:
                out.setdefault(method, {})[f"wait_{wait:g}s"] = {
                    "cpu_fraction": round(float(np.median(cpu)), 3),
                    "latency_ms": round(float(np.median(lat)), 3),
                }
    if rank == 1:
        world.send(out, dest=0, tag=8)
    else:
        res = world.recv(source=1, tag=8)
        print(json.dumps({"mpi": MPI.Get_library_version().splitlines()[0],
                          "repeat": args.repeat, "waiting_rank": res}))


if __name__ == "__main__":
    main()
