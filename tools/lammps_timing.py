"""Time LAMMPS ``pair_style pace`` (C++ PACE) on the structures of benchmarks/bench_calculator.py.

Needs LAMMPS with ML-PACE (``tools/build_lammps_pace.sh``; found through
``aceal.formats.lammps.import_lammps``). The build is serial without OpenMP, so this is one
core.

What is timed: a short NVE run (``fix nve``, 1 fs, velocities 0 at the start on a rattled
crystal, so atoms barely move) of ``steps`` steps, with LAMMPS' neighbour list (skin
``skin`` Å, default 0.3 like bench_calculator's ``ACECalculator(skin=0.3)``; rebuilt when
needed), i.e. what a production MD step costs: energy + forces + integration + neighbour
work. (``pair_style pace`` loops over the whole neighbour list, so a larger skin costs
time: LAMMPS' default for metal units is 2 Å.) The first (warm-up) run sets
everything up; the timed runs use ``run N pre no post no``. Result in µs per atom per step.

From benchmarks/bench_calculator.py::

    sys.path.insert(0, str(REPO / "tools"))
    from lammps_timing import lammps_us_per_atom_step, lammps_available
    if lammps_available():
        us = lammps_us_per_atom_step(DATA / "cu_small.yace", atoms, style="recursive")

Command line: ``python tools/lammps_timing.py [--models a,b] [--steps N] [--repeat R]``
prints one JSON line (same models as bench_calculator, both styles).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
MODELS = ["cu_small", "cu_n300", "cu_template", "Cu-PBE-core-rep"]

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def lammps_available() -> bool:
    """True if a LAMMPS with ML-PACE can be imported."""
    from aceal.formats.lammps import import_lammps

    return import_lammps() is not None


def bench_system():
    """bench_calculator's system: fcc Cu 8x8x8 cubic (2048 atoms), a = 3.615 Å, rattled 0.05 Å."""
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.615, cubic=True).repeat((8, 8, 8))
    rng = np.random.default_rng(0)
    atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
    return atoms


class LammpsStepTimer:
    """One LAMMPS ``pair_style pace`` NVE instance on ``atoms``, timed a few steps at a time.

    Parameters
    ----------
    model
        A ``.yace`` file.
    atoms
        Structure.
    style
        ``"recursive"`` (LAMMPS' default) or ``"product"``.
    elements
        LAMMPS type → element (default: the elements of ``atoms``, sorted).
    skin
        Neighbour skin (Å).
    warmup
        Steps of the untimed first run, which sets everything up.
    """

    def __init__(self, model, atoms, style: str = "recursive", elements=None,
                 skin: float = 0.3, warmup: int = 5) -> None:  # fmt: skip
        from aceal.formats.lammps import LammpsPace, pair_commands

        elements = sorted(set(atoms.get_chemical_symbols())) if elements is None else elements
        runner = LammpsPace(pair_commands(Path(model), list(elements), style="pace",
                                          options=style), list(elements), skin=skin)  # fmt: skip
        self.natoms = len(atoms)
        self.lmp, _ = runner._setup(atoms)
        self.lmp.commands_list(["thermo 1000000", "timestep 0.001", "fix aceal_nve all nve",
                                "run 0"])  # fmt: skip
        self.energy = float(self.lmp.get_thermo("pe"))  # eV, at the start
        self.lmp.command(f"run {int(warmup)}")

    def time(self, steps: int) -> tuple[float, float]:
        """(wall, process CPU) seconds per step of a ``run steps pre no post no``."""
        t0, c0 = time.perf_counter(), time.process_time()
        self.lmp.command(f"run {int(steps)} pre no post no")
        return (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps

    def close(self) -> None:
        self.lmp.close()


def lammps_pace_timing(
    model: str | Path,
    atoms=None,
    style: str = "recursive",
    steps: int = 20,
    repeat: int = 3,
    warmup: int = 5,
    elements=None,
    skin: float = 0.3,
) -> dict:
    """µs/atom/step of LAMMPS ``pair_style pace <style>`` MD on ``atoms`` (one core).

    Parameters
    ----------
    model
        A ``.yace`` file.
    atoms
        Structure (default :func:`bench_system`).
    style
        ``"recursive"`` (LAMMPS' default) or ``"product"``.
    steps, repeat, warmup
        Steps per timed run, number of timed runs, steps of the untimed first run.
    elements
        LAMMPS type → element (default: the elements of ``atoms``, sorted).
    skin
        Neighbour skin (Å).

    Returns
    -------
    dict
        ``wall_median`` and ``cpu_best`` (µs per atom per step), ``energy`` (eV, at the
        start, as a check), ``natoms``, ``steps``, ``repeat``.
    """
    atoms = bench_system() if atoms is None else atoms
    timer = LammpsStepTimer(model, atoms, style, elements, skin, warmup)
    try:
        walls, cpus = zip(*(timer.time(steps) for _ in range(int(repeat))), strict=True)
    finally:
        timer.close()
    scale = 1e6 / len(atoms)
    return {
        "wall_median": round(float(np.median(walls)) * scale, 2),
        "cpu_best": round(float(min(cpus)) * scale, 2),
        "energy": timer.energy,
        "natoms": len(atoms),
        "steps": int(steps),
        "repeat": int(repeat),
        "skin": float(skin),
    }


def lammps_us_per_atom_step(model, atoms=None, style: str = "recursive", **kw) -> float:
    """Median wall µs/atom/step of :func:`lammps_pace_timing`."""
    return lammps_pace_timing(model, atoms, style=style, **kw)["wall_median"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skin", type=float, default=0.3, help="neighbour skin, Å")
    args = ap.parse_args()
    if not lammps_available():
        print(json.dumps({"error": "no LAMMPS with ML-PACE (run tools/build_lammps_pace.sh)"}))
        sys.exit(1)
    atoms = bench_system()
    out = {
        "system": "fcc Cu 8x8x8 cubic, 2048 atoms, a=3.615, rattled 0.05",
        "unit": "us/atom/step, LAMMPS pair_style pace, NVE MD, serial (1 core)",
        "skin": args.skin,
        "models": {},
    }
    for m in [x for x in args.models.split(",") if x]:
        row = {}
        for style in ("recursive", "product"):
            r = lammps_pace_timing(DATA / f"{m}.yace", atoms, style=style, steps=args.steps,
                                   repeat=args.repeat, skin=args.skin)  # fmt: skip
            row[style] = {k: r[k] for k in ("wall_median", "cpu_best")}
            row["energy"] = r["energy"]
        out["models"][m] = row
    print(json.dumps(out))


if __name__ == "__main__":
    main()
