"""Run under ``mpiexec -n 2`` by tests/test_aseio.py: rank 0 does ASE file I/O alone
(aceal's readers and ASE's own, with a file large enough that a collective broadcast
cannot complete eagerly) while rank 1 waits for it in a deadline-bounded receive."""

import sys
from pathlib import Path

import ase.io
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md.langevin import Langevin
from ase.optimize import BFGS
from ase.parallel import paropen

from aceal.fit.fitter import load_dataset
from aceal.loop.coordinator import get_comm
from aceal.store import read_configurations, write_xyz

comm = get_comm()
path = Path(sys.argv[1])
if comm.rank == 0:
    frames = [bulk("Cu", cubic=True).repeat(3)] * 300
    for a in frames[:1]:
        a.calc = EMT()
        a.get_potential_energy()
    write_xyz(path / "big.xyz", frames)
    n = len(read_configurations(path / "big.xyz"))
    n += len(load_dataset([path / "big.xyz"]).structures)
    n += len(ase.io.read(path / "big.xyz", ":"))        # ASE's default, parallel=True
    ase.io.write(path / "copy.xyz", frames)
    with paropen(path / "log.txt", "w") as f:
        f.write("x" * 100000)
    a = bulk("Cu", cubic=True)
    a.calc = EMT()
    Langevin(a, 1.0, temperature_K=300, friction=0.01, logfile=str(path / "md.log")).run(2)
    BFGS(a, logfile=str(path / "opt.log")).run(steps=2)
    print("rank 0 done", n, flush=True)
    comm.bcast("done")
else:
    print("rank 1 got", comm.bcast(None, timeout=60, phase="test"), flush=True)
