"""Benchmark energy + forces through ACECalculator; prints ONE JSON line.

System: fcc Cu, 8x8x8 cubic cells (2048 atoms), a = 3.615 Å, rattled by 0.05 Å.
Per model (the four Cu ``.yace`` files in tests/data): µs/atom of one energy+forces call
(median of ``--repeat`` calls after one warm-up, positions nudged before every call so
everything is recomputed; the models are measured in interleaved rounds so that a slow
moment of a shared machine does not hit one model only), on 1 thread and then on 2
threads (``ACECalculator(num_threads=...)``), both

* ``skin``: reusing the Verlet neighbour list (skin 0.3 Å; only displacements updated), and
* ``rebuild``: skin 0, so the neighbour list is rebuilt on every call;

with the best-of process CPU time on 1 thread (robust on a loaded machine), the C++ PACE
reference times quoted by the issue (1 thread, another machine) and our ratio to them
(median, skin, 1 thread). Also the cold compile time (fresh NUMBA_CACHE_DIR in a
subprocess: import + first call) and the cached start-up time (a second subprocess on the
same cache).

``cpp_here``: the same C++ PACE evaluator timed on this machine, in the same rounds as our
1-thread skin calls (one of ours, then one of theirs, per model and round), so that both
see the same machine speed (a shared or virtual machine can drift by tens of percent within
minutes). It runs ``pyace``'s recursive evaluator (the algorithm of LAMMPS ``pair_style
pace``; ``python-ace`` is not an aceal dependency) in a subprocess of ``--pace-python``
(default: ``$ACEAL_PACE_PYTHON``, else this Python if it can import pyace), timing
``compute`` alone on a neighbour environment built once, i.e. without neighbour-list work,
which our timings include. ``energy_diff_per_atom`` checks that both evaluated the same
model on the same structure. ``ratio_to_cpp_here`` (median wall, skin, 1 thread) decides
``meets_1.5x``; without pyace it falls back to the quoted times.

``lammps``: LAMMPS ``pair_style pace`` (``recursive``, LAMMPS' default, and ``product``), if
a LAMMPS with ML-PACE is importable (``tools/build_lammps_pace.sh``), timed in the same
rounds as our 1-thread skin calls (ours, pyace's, then one short NVE run per style, per
model and round): µs/atom per MD step (``run 2``, skin 0.3 Å, serial build, so one core),
i.e. energy + forces + integration + LAMMPS' neighbour list; ``ratio_to_lammps_recursive``
is our median over theirs, and ``lammps_energy_diff_per_atom`` checks the same model.

``committee``: overhead of a committee (``forces_std`` in the same kernel pass) for linear
models ``ACEBasis(["Cu"], order=3 or 4, max_degree=14, r_cut=5.0)`` with random smooth
coefficients: best-of process CPU µs/atom on 1 thread (skin) of the plain model (K = 0)
and of the same model with K = 8 committee members, calls interleaved; ``ratio`` = K8/K0
(issue target <= 1.3); ``ratio_energy_only``: the same committee with
``committee_forces=False`` (energy spreads every call, member forces only on request).

Usage: python benchmarks/bench_calculator.py [--repeat N] [--models a,b] [--no-committee]
       [--pace-python /path/to/venv-with-python-ace/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
LAMMPS_STYLES = ("recursive", "product")
LAMMPS_STEPS = 2  # MD steps per timed LAMMPS call
MODELS = ["cu_small", "cu_n300", "cu_template", "Cu-PBE-core-rep"]
# C++ PACE (pyace/LAMMPS evaluator), 1 thread, same system, µs/atom
CPP_US_PER_ATOM = {"cu_small": 27.0, "cu_n300": 49.0, "cu_template": 90.0, "Cu-PBE-core-rep": 299.0}
TARGET_RATIO = 1.5

_CHILD = r"""
import sys, time
t0 = time.perf_counter()
from ase.build import bulk
from aceal.calculator import ACECalculator
t1 = time.perf_counter()
atoms = bulk("Cu", "fcc", a=3.615, cubic=True).repeat((2, 2, 2))
atoms.rattle(0.02, seed=0)
atoms.calc = ACECalculator(sys.argv[1], num_threads=1)
atoms.get_potential_energy(), atoms.get_forces()
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def _child(cache_dir: str, model: Path) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(model)],
        env=env, check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    return {
        "wall_s": round(time.perf_counter() - t0, 2),
        "import_s": round(float(out[0]), 2),
        "first_call_s": round(float(out[1]), 2),
    }


_PACE_SERVER = r"""
import sys, time
import numpy as np
from ase import Atoms
from pyace import PyACECalculator
data = np.load(sys.argv[1])
atoms = Atoms(numbers=data["numbers"], positions=data["positions"], cell=data["cell"], pbc=True)
calcs = {}
for line in sys.stdin:
    model = line.strip()
    if model not in calcs:  # recursive evaluator = LAMMPS pair_style pace's default
        calcs[model] = PyACECalculator(model, recursive_evaluator=True, recursive=True)
        atoms.calc = calcs[model]
        atoms.get_potential_energy()  # builds calc.ae (the neighbour environment), warms up
    calc = calcs[model]
    t0, c0 = time.perf_counter(), time.process_time()
    calc.ace.compute(calc.ae)
    print(time.perf_counter() - t0, time.process_time() - c0, calc.ace.energy, flush=True)
"""


class PaceServer:
    """pyace's C++ evaluator in a subprocess: one timed energy+forces call per request."""

    def __init__(self, python: str, atoms, workdir: str):
        path = Path(workdir) / "pace_system.npz"
        np.savez(path, numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell[:])
        env = dict(os.environ, OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen([python, "-c", _PACE_SERVER, str(path)], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def call(self, model: Path) -> tuple[float, float, float]:
        """(wall s, process CPU s, energy eV) of one C++ energy+forces evaluation."""
        self.proc.stdin.write(f"{model}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the pyace subprocess exited (see its traceback above)")
        wall, cpu, energy = (float(x) for x in line.split())
        return wall, cpu, energy

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def _pace_python(arg: str | None) -> str | None:
    """A Python that can import pyace: ``arg``, ``$ACEAL_PACE_PYTHON`` or this one."""
    for cand in (arg, os.environ.get("ACEAL_PACE_PYTHON"), sys.executable):
        probe = [cand, "-c", "import pyace"] if cand else None
        if probe and subprocess.run(probe, capture_output=True).returncode == 0:
            return cand
    return None


def _system():
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.615, cubic=True).repeat((8, 8, 8))
    rng = np.random.default_rng(0)
    atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
    return atoms


def _time_calls(atoms, calc, repeat: int) -> tuple[float, float]:
    """(median wall, best process CPU) seconds of energy+forces calls after a warm-up."""
    atoms.calc = calc
    atoms.get_potential_energy()
    atoms.get_forces()
    walls, cpus = [], []
    for k in range(repeat):
        atoms.positions[k % len(atoms), k % 3] += 1e-4 * (-1) ** k  # force a recompute
        t0, c0 = time.perf_counter(), time.process_time()
        atoms.get_potential_energy()
        atoms.get_forces()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return float(np.median(walls)), float(min(cpus))


COMMITTEE_TARGET_RATIO = 1.3


def _committee_models(order: int, k: int):
    from aceal import ACEBasis, ACEModel

    basis = ACEBasis(["Cu"], order=order, max_degree=14, r_cut=5.0)
    rng = np.random.default_rng(order)
    coef = rng.normal(size=len(basis)) * 0.05 / (1.0 + basis.degrees) ** 2
    committee = coef + 0.1 * np.abs(coef) * rng.normal(size=(k, len(basis)))
    plain = ACEModel(basis, coef, e0={"Cu": -3.0})
    return plain, ACEModel(basis, coef, e0={"Cu": -3.0}, committee=committee), len(basis)


def _committee_overhead(atoms, repeat: int, k: int = 8) -> dict:
    """Best CPU µs/atom (1 thread) of plain vs committee calls, interleaved."""
    from aceal.calculator import ACECalculator

    out = {}
    for order in (3, 4):
        plain, com, nfunc = _committee_models(order, k)
        calcs = {
            0: ACECalculator(plain, num_threads=1),
            k: ACECalculator(com, num_threads=1),
            "energy_only": ACECalculator(com, num_threads=1, committee_forces=False),
        }
        best = dict.fromkeys(calcs, np.inf)
        for _ in range(max(repeat, 3)):
            for kk, calc in calcs.items():
                _, cpu = _time_calls(atoms, calc, 1)
                best[kk] = min(best[kk], cpu)
        us = 1e6 / len(atoms)
        out[f"order{order}_deg14"] = {
            "n_functions": nfunc,
            "K0_1t_cpu_best": round(best[0] * us, 1),
            f"K{k}_1t_cpu_best": round(best[k] * us, 1),
            "ratio": round(best[k] / best[0], 3),
            f"meets_{COMMITTEE_TARGET_RATIO}x": bool(best[k] <= COMMITTEE_TARGET_RATIO * best[0]),
            f"K{k}_energy_only_1t_cpu_best": round(best["energy_only"] * us, 1),
            "ratio_energy_only": round(best["energy_only"] / best[0], 3),
        }
    return out


def _lammps_timers(models: list[str], atoms) -> dict:
    """{model: {style: LammpsStepTimer}} if a LAMMPS with ML-PACE is importable, else {}."""
    sys.path.insert(0, str(ROOT / "tools"))
    from lammps_timing import LammpsStepTimer, lammps_available

    if not lammps_available():
        return {}
    return {m: {st: LammpsStepTimer(DATA / f"{m}.yace", atoms, st) for st in LAMMPS_STYLES}
            for m in models}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--no-committee", action="store_true", help="skip the committee overhead")
    ap.add_argument("--pace-python", default=None,
                    help="a Python with python-ace installed, for the same-machine C++ times")
    args = ap.parse_args()
    models = [m for m in args.models.split(",") if m]

    with tempfile.TemporaryDirectory() as tmp:
        cold = _child(tmp, DATA / f"{models[0]}.yace")  # compiles and writes the cache
        warm = _child(tmp, DATA / f"{models[0]}.yace")  # loads from the cache

    import numba

    from aceal.calculator import ACECalculator

    atoms = _system()
    n = len(atoms)
    us = 1e6 / n
    res: dict = {
        "system": "fcc Cu 8x8x8 cubic, 2048 atoms, a=3.615, rattled 0.05",
        "n_atoms": n,
        "unit": "us/atom, energy+forces via ACECalculator incl. neighbour list",
        "numba_threads_available": numba.config.NUMBA_NUM_THREADS,
        "repeat": args.repeat,
        "models": {},
        "compile_cold": cold,
        "startup_cached": warm,
    }
    if not args.no_committee:  # 1 thread, before any 2-thread run (see below)
        res["committee"] = _committee_overhead(atoms, args.repeat)
    # All 1-thread runs first, in rounds over the models: after a 2-thread run the
    # OpenMP pool's idle worker keeps spinning and slows later 1-thread runs.
    rows = {m: {"cpp_1thread": CPP_US_PER_ATOM.get(m)} for m in models}
    python = _pace_python(args.pace_python)
    res["cpp_here"] = ({"python": python, "evaluator": "pyace ACERecursiveEvaluator"}
                       if python else "python-ace not found (--pace-python)")  # fmt: skip
    lammps = _lammps_timers(models, atoms)
    res["lammps"] = (
        {"styles": list(LAMMPS_STYLES), "steps_per_call": LAMMPS_STEPS}
        if lammps
        else "no LAMMPS with ML-PACE (tools/build_lammps_pace.sh)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        pace = PaceServer(python, atoms, tmp) if python else None
        for m, timers in lammps.items():
            ours = atoms.copy()
            ours.calc = ACECalculator(DATA / f"{m}.yace")
            e_lmp = timers[LAMMPS_STYLES[0]].energy
            rows[m]["lammps_energy_diff_per_atom"] = float(
                f"{abs(e_lmp - ours.get_potential_energy()) / n:.2e}")
        if pace:
            for m in models:
                e_cpp = pace.call(DATA / f"{m}.yace")[2]
                ours = atoms.copy()
                ours.calc = ACECalculator(DATA / f"{m}.yace")
                e_ours = ours.get_potential_energy()
                rows[m]["energy_diff_per_atom"] = float(f"{abs(e_cpp - e_ours) / n:.2e}")
        for threads in (1, 2):
            if threads > numba.config.NUMBA_NUM_THREADS:
                continue
            for mode, skin in (("skin", 0.3), ("rebuild", 0.0)):
                calcs = {m: ACECalculator(DATA / f"{m}.yace", skin=skin, num_threads=threads)
                         for m in models}  # fmt: skip
                walls = {m: [] for m in models}
                cpus = {m: np.inf for m in models}
                cpp = {m: [] for m in models}
                lmp = {(m, st): [] for m in lammps for st in LAMMPS_STYLES}
                for _ in range(args.repeat):
                    for m, calc in calcs.items():
                        wall, cpu = _time_calls(atoms, calc, 1)
                        walls[m].append(wall)
                        cpus[m] = min(cpus[m], cpu)
                        if pace and threads == 1 and mode == "skin":
                            cpp[m].append(pace.call(DATA / f"{m}.yace")[:2])
                        if threads == 1 and mode == "skin":
                            for st, timer in lammps.get(m, {}).items():
                                lmp[m, st].append(timer.time(LAMMPS_STEPS))
                for m in models:
                    rows[m][f"{mode}_{threads}t"] = round(float(np.median(walls[m])) * us, 1)
                    if threads == 1:
                        rows[m][f"{mode}_1t_cpu_best"] = round(cpus[m] * us, 1)
                    if cpp[m]:
                        t = np.array(cpp[m]) * us
                        rows[m]["cpp_here_1t"] = round(float(np.median(t[:, 0])), 1)
                        rows[m]["cpp_here_1t_cpu_best"] = round(float(t[:, 1].min()), 1)
                for (m, st), times in lmp.items():
                    if not times:
                        continue
                    t = np.array(times) * us
                    rows[m][f"lammps_{st}_1t"] = round(float(np.median(t[:, 0])), 1)
                    rows[m][f"lammps_{st}_1t_cpu_best"] = round(float(t[:, 1].min()), 1)
        if pace:
            pace.close()
    for timers in lammps.values():
        for timer in timers.values():
            timer.close()
    for m, row in rows.items():
        if row["cpp_1thread"]:
            row["ratio_to_cpp_1t"] = round(row["skin_1t"] / row["cpp_1thread"], 2)
            row["ratio_to_cpp_1t_cpu_best"] = round(row["skin_1t_cpu_best"] / row["cpp_1thread"], 2)
        if "cpp_here_1t" in row:
            row["ratio_to_cpp_here"] = round(row["skin_1t"] / row["cpp_here_1t"], 2)
            row["ratio_to_cpp_here_cpu_best"] = round(
                row["skin_1t_cpu_best"] / row["cpp_here_1t_cpu_best"], 2)
        if "lammps_recursive_1t" in row:
            row["ratio_to_lammps_recursive"] = round(row["skin_1t"] / row["lammps_recursive_1t"], 2)
        ratio = row.get("ratio_to_cpp_here", row.get("ratio_to_cpp_1t"))
        if ratio is not None:
            row["meets_1.5x"] = bool(ratio <= TARGET_RATIO)
        res["models"][m] = row
    print(json.dumps(res))


if __name__ == "__main__":
    main()
