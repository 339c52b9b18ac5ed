"""Worker process of the oracle's ``isolation="process"`` (:mod:`aceal.loop.oracle`).

Started as ``python -m aceal.loop.reference_worker IN OUT`` with two inherited pipe file
descriptors (not stdin/stdout, which the reference code may print to). The first message
is ``(spec, base_dir, stress)``; then each message ``(numbers, positions, cell, pbc)`` is
answered with ``("ok", (energy, forces, stress or None))`` or ``("error", reason)``, until
``None`` or the end of the pipe. The oracle replaces the whole worker after any failure,
so a worker never needs a fresh calculator.
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection

import numpy as np


def serve(inbox: Connection, outbox: Connection) -> None:
    from ase import Atoms

    from aceal.reference import make_calculator

    spec, base_dir, stress = inbox.recv()
    calc = None
    while True:
        try:
            msg = inbox.recv()
        except EOFError:  # the campaign process is gone
            return
        if msg is None:
            return
        try:
            calc = make_calculator(spec, base_dir) if calc is None else calc
            numbers, positions, cell, pbc = msg
            a = Atoms(numbers, positions=positions, cell=cell, pbc=pbc, calculator=calc)
            energy = float(a.get_potential_energy())
            forces = np.array(a.get_forces(), dtype=float)
            st = (np.array(a.get_stress(voigt=True), dtype=float)
                  if stress and bool(np.all(pbc)) else None)  # fmt: skip
            outbox.send(("ok", (energy, forces, st)))
        except Exception as err:  # the reference code may raise anything
            text = " ".join(str(err).split()) or type(err).__name__
            outbox.send(("error", f"{type(err).__name__}: {text}"[:300]))


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1]), writable=False),
          Connection(int(sys.argv[2]), readable=False))
