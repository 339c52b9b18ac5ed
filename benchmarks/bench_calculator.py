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
reference times (1 thread) and our ratio to them (median, skin, 1 thread). Also the cold
compile time (fresh NUMBA_CACHE_DIR in a subprocess: import + first call) and the cached
start-up time (a second subprocess on the same cache).

``committee``: overhead of a committee (``forces_std`` in the same kernel pass) for linear
models ``ACEBasis(["Cu"], order=3 or 4, max_degree=14, r_cut=5.0)`` with random smooth
coefficients: best-of process CPU µs/atom on 1 thread (skin) of the plain model (K = 0)
and of the same model with K = 8 committee members, calls interleaved; ``ratio`` = K8/K0
(issue target <= 1.3); ``ratio_energy_only``: the same committee with
``committee_forces=False`` (energy spreads every call, member forces only on request).

Usage: python benchmarks/bench_calculator.py [--repeat N] [--models a,b] [--no-committee]
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

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--no-committee", action="store_true", help="skip the committee overhead")
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
    for threads in (1, 2):
        if threads > numba.config.NUMBA_NUM_THREADS:
            continue
        for mode, skin in (("skin", 0.3), ("rebuild", 0.0)):
            calcs = {m: ACECalculator(DATA / f"{m}.yace", skin=skin, num_threads=threads)
                     for m in models}  # fmt: skip
            walls = {m: [] for m in models}
            cpus = {m: np.inf for m in models}
            for _ in range(args.repeat):
                for m, calc in calcs.items():
                    wall, cpu = _time_calls(atoms, calc, 1)
                    walls[m].append(wall)
                    cpus[m] = min(cpus[m], cpu)
            for m in models:
                rows[m][f"{mode}_{threads}t"] = round(float(np.median(walls[m])) * us, 1)
                if threads == 1:
                    rows[m][f"{mode}_1t_cpu_best"] = round(cpus[m] * us, 1)
    for m, row in rows.items():
        cpp = row["cpp_1thread"]
        if cpp:
            row["ratio_to_cpp_1t"] = round(row["skin_1t"] / cpp, 2)
            row["ratio_to_cpp_1t_cpu_best"] = round(row["skin_1t_cpu_best"] / cpp, 2)
            row["meets_1.5x"] = bool(row["skin_1t"] <= TARGET_RATIO * cpp)
        res["models"][m] = row
    print(json.dumps(res))


if __name__ == "__main__":
    main()
