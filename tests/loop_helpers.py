"""Reference calculators and configs for the aceal-loop tests (importable by subprocesses)."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

ROOT = Path(__file__).resolve().parents[1]


def positions_hash(atoms) -> str:
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(atoms.numbers, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(atoms.positions, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(atoms.cell.array, dtype=np.float64).tobytes())
    return h.hexdigest()


class SlowEMT(EMT):
    """EMT that sleeps ``delay`` s per call and appends the hash of every labelled
    structure to ``log`` (one line each, written before returning)."""

    def __init__(self, delay: float = 0.0, log: str | None = None, **kw) -> None:
        super().__init__(**kw)
        self.delay = float(delay)
        self.logfile = log

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if self.delay:
            time.sleep(self.delay)
        if self.logfile:
            with open(self.logfile, "a") as f:
                f.write(positions_hash(self.atoms) + "\n")
                f.flush()
                os.fsync(f.fileno())


class StuckEMT(EMT):
    """EMT that, on structures with more than ``stuck_above`` atoms, blocks SIGALRM and
    sleeps (like compiled code that never returns to the interpreter), or with
    ``crash=True`` kills its own process with SIGSEGV (like a crashing Fortran code)."""

    def __init__(self, stuck_above: int = 0, crash: bool = False, **kw) -> None:
        super().__init__(**kw)
        self.stuck_above = int(stuck_above)
        self.crash = bool(crash)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        if len(atoms) > self.stuck_above:
            if self.crash:
                os.kill(os.getpid(), signal.SIGSEGV)
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            time.sleep(60)
        super().calculate(atoms, properties, system_changes)


class FlakyEMT(Calculator):
    """EMT whose calls fail in turn: 1 raises, 2 NaN forces, 3 hangs, 4 absurd forces,
    0 (mod 5) succeeds -- counted per process."""

    implemented_properties = ["energy", "forces", "stress"]
    count = 0

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.emt = EMT()

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        FlakyEMT.count += 1
        mode = FlakyEMT.count % 5
        a = self.atoms.copy()
        a.calc = self.emt
        self.results = {"energy": a.get_potential_energy(), "forces": a.get_forces(),
                        "stress": a.get_stress()}
        if mode == 1:
            raise RuntimeError("SCF did not converge (simulated)")
        if mode == 2:
            self.results["forces"] = self.results["forces"] * np.nan
        if mode == 3:
            time.sleep(30)
        if mode == 4:
            self.results["forces"] = self.results["forces"] + 1e4


def tiny_config(outdir: Path, **over) -> dict:
    """A campaign that runs in seconds: 32-atom Cu, small basis, short segments."""
    cfg = {
        "elements": ["Cu"],
        "structures": [{"builder": "bulk", "element": "Cu", "crystal": "fcc", "a": 3.61,
                        "repeat": [2, 2, 2]},
                       {"builder": "bulk", "element": "Cu", "crystal": "fcc", "a": 3.61,
                        "repeat": [2, 2, 2], "vacancies": 1}],
        "initial_data": {"seeds_per_structure": 2},
        "basis": {"order": 2, "max_degree": [8, 6], "r_cut": 4.8},
        "fit": {"committee": 4},
        "reference": {"calculator": "EMT", "timeout": 20},
        "md": {"walkers": 2, "temperature": [800, 1200], "steps_per_segment": 40,
               "sample_interval": 10},
        "uncertainty": {"force_std": [0.01, 2.0], "gamma": [1.5, 50.0],
                        "rare_events": {"kinds": ["hop"]}},
        "selection": {"batch_size": 3},
        "validation": {"frames": 2, "steps_between": 10, "temperature": 1000},
        "stopping": {"max_iterations": 3},
        "output": {"directory": str(outdir), "plots": False},
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = {**cfg[k], **v}
        else:
            cfg[k] = v
    return cfg


def write_config(path: Path, cfg: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


class SometimesFailingEMT(EMT):
    """EMT whose every 13th call raises and every 29th returns NaN forces (counted per
    process); never hangs, so it can drive reference MD."""

    count = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        SometimesFailingEMT.count += 1
        if SometimesFailingEMT.count % 13 == 3:
            raise RuntimeError("SCF did not converge (simulated)")
        if SometimesFailingEMT.count % 29 == 5:
            self.results["forces"] = self.results["forces"] * np.nan


class HangsOnRankEMT(EMT):
    """EMT that never returns on MPI rank ``rank`` (SIGALRM blocked, as in compiled
    code), so only a deadline on the waiting rank can end the campaign."""

    def __init__(self, rank: int = 1, **kw) -> None:
        super().__init__(**kw)
        self.rank = int(rank)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        if os.environ.get("PMI_RANK") == str(self.rank):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            time.sleep(3600)
        super().calculate(atoms, properties, system_changes)
