"""Rank-local ASE I/O: one helper for every read and write, and ASE's collectives off
under MPI (a collective read on one rank waits forever for the ranks that never join)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ase.build import bulk

from aceal import aseio
from tests.loop_helpers import ROOT

MPIEXEC = Path(sys.executable).parent / "mpiexec"


_IO = {"read", "iread", "write"}


def _ase_io_uses(tree: ast.AST) -> list[int]:
    """Lines that call ASE's readers/writers or paropen/parprint."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("ase.io", "ase.parallel"):
            if {a.name for a in node.names} & (_IO | {"paropen", "parprint"}):
                lines.append(node.lineno)
        elif isinstance(node, ast.Attribute) and node.attr in _IO:
            if ast.unparse(node.value) in ("ase.io", "io"):
                lines.append(node.lineno)
    return lines


def test_every_ase_read_and_write_goes_through_aseio():
    offenders = []
    for path in (ROOT / "aceal").rglob("*.py"):
        if path.name != "aseio.py":
            offenders += [f"{path.relative_to(ROOT)}:{no}"
                          for no in _ase_io_uses(ast.parse(path.read_text()))]
    assert not offenders, "ASE I/O outside aceal.aseio: " + ", ".join(offenders)
    # the scan itself finds what it must
    assert _ase_io_uses(ast.parse("import ase.io\nase.io.read('x')")) == [2]
    assert _ase_io_uses(ast.parse("from ase.io import write")) == [1]


def test_read_returns_a_list_and_write_round_trips(tmp_path):
    a = bulk("Cu", cubic=True)
    aseio.write(tmp_path / "one.xyz", a)
    frames = aseio.read(tmp_path / "one.xyz", index=-1)
    assert isinstance(frames, list) and len(frames) == 1
    assert (frames[0].numbers == a.numbers).all()
    aseio.write(tmp_path / "two.xyz", [a, a])
    assert len(aseio.read(tmp_path / "two.xyz")) == 2


def test_make_ase_rank_local_is_idempotent():
    import ase.parallel

    aseio.make_ase_rank_local()
    aseio.make_ase_rank_local()
    assert ase.parallel.world.size == 1 and ase.parallel.world.rank == 0


@pytest.mark.mpi
def test_rank_zero_alone_does_ase_io_under_mpiexec(tmp_path):
    pytest.importorskip("mpi4py")
    exe = str(MPIEXEC) if MPIEXEC.is_file() else shutil.which("mpiexec")
    if exe is None:
        pytest.skip("needs mpiexec")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([exe, "-n", "2", sys.executable, str(ROOT / "tests" /
                                                             "mpi_rank_local_io.py"),
                        str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "rank 0 done 900" in r.stdout and "rank 1 got done" in r.stdout
    assert (tmp_path / "md.log").read_text() and (tmp_path / "opt.log").read_text()
