"""The oracle: isolated reference calls that never take the campaign down.

Every call runs the reference calculator on a copy of the structure, under a wall-clock
timeout, and checks the result: an exception, a timeout, a crash, a non-finite energy,
force or stress, or a force component larger than ``max_force`` (eV/Å) is a failure.  A
failed call is retried ``retries`` times with a fresh calculator; the final failure is
returned with its reason so the coordinator can record it (``store.add_failure``) and go on.

Two isolation levels:

* ``"none"`` (default): the calculator runs in this process; the timeout is a
  ``SIGALRM`` (main thread only), which Python handles only when control returns to the
  interpreter, so a code stuck inside compiled code is not interrupted, and a crash of
  the reference code (a segfault) takes the process with it.
* ``"process"``: the calculator lives in a worker process
  (:mod:`aceal.loop.reference_worker`) that is killed on a timeout or a crash and
  replaced by a fresh one; this interrupts anything and survives
  anything, at the cost of one interpreter start per worker (and per failure) and of
  pickling the structure and results per call.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

__all__ = ["Oracle", "OracleResult", "ReferenceTimeout"]


class ReferenceTimeout(Exception):
    """The reference call exceeded its wall-clock limit."""


@dataclass
class OracleResult:
    """Outcome of one labelling request.

    Attributes
    ----------
    atoms
        The labelled structure (``SinglePointCalculator`` with energy eV, forces eV/Å and,
        for periodic cells, stress eV/Å³), or ``None`` on failure.
    reason
        Why the call failed (``None`` on success); the last attempt's reason.
    wall_time
        Seconds spent in reference calls, all attempts.
    attempts
        Number of attempts made.
    errors
        Reason of every failed attempt.
    """

    atoms: Atoms | None
    reason: str | None
    wall_time: float
    attempts: int
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.atoms is not None


class _Alarm:
    """Context manager raising :class:`ReferenceTimeout` after ``seconds`` (main thread)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.active = (threading.current_thread() is threading.main_thread()
                       and hasattr(signal, "setitimer"))

    def _raise(self, signum, frame):  # noqa: ARG002
        raise ReferenceTimeout(f"timeout after {self.seconds:g} s")

    def __enter__(self):
        if self.active:
            self._old = signal.signal(signal.SIGALRM, self._raise)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old)
        return False


class _Isolated:
    """A worker process holding the reference calculator (``isolation: process``),
    :mod:`aceal.loop.reference_worker` started with ``python -m`` (no fork, so safe under
    MPI and threads; no re-import of the user's main script, unlike multiprocessing)."""

    def __init__(self, spec, base_dir, stress: bool) -> None:
        to_child, outbox = os.pipe()
        inbox, from_child = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aceal.loop.reference_worker", str(to_child),
             str(from_child)],
            pass_fds=(to_child, from_child), stdin=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(to_child)
        os.close(from_child)
        self.outbox = Connection(outbox, readable=False)
        self.inbox = Connection(inbox, writable=False)
        self.outbox.send((spec, None if base_dir is None else str(base_dir), stress))

    def label(self, atoms: Atoms, timeout: float):
        """``(energy, forces, stress or None)``; raises on timeout, crash or error."""
        try:
            self.outbox.send((atoms.numbers, atoms.positions, atoms.cell[:], atoms.pbc))
        except OSError:  # the worker is gone (BrokenPipeError)
            self.close()
            raise RuntimeError(self._death()) from None
        if not self.inbox.poll(timeout):
            self.close()
            raise ReferenceTimeout(f"timeout after {timeout:g} s (worker process killed)")
        try:
            status, payload = self.inbox.recv()
        except (EOFError, OSError):
            self.close()
            raise RuntimeError(self._death()) from None
        if status != "ok":
            raise RuntimeError(payload)  # the oracle replaces the worker after any failure
        return payload

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _death(self) -> str:
        code = self.proc.returncode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return f"reference worker process died ({how})"

    def close(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait()
        for c in (self.outbox, self.inbox):
            if not c.closed:
                c.close()


class Oracle:
    """Labels structures with a reference calculator, isolating every call.

    Parameters
    ----------
    spec
        Calculator spec for :func:`aceal.reference.make_calculator` (``"EMT"``,
        ``{"name": "EAM", "potential": ...}``, ``{"class": ..., "kwargs": ...}``).
    base_dir
        Directory relative paths in the spec resolve against.
    timeout
        Wall-clock limit per attempt, s.
    retries
        Extra attempts after a failure (each with a fresh calculator).
    max_force
        Largest accepted absolute force component, eV/Å; larger means a broken
        calculation (e.g. an SCF that went astray) and counts as a failure.
    stress
        Also ask for the stress of fully periodic cells.
    factory
        Alternative to ``spec``: a callable returning a fresh calculator.
    isolation
        ``"none"`` (the calculator runs in this process) or ``"process"`` (in a worker
        process, killed on a timeout or crash; needs ``spec``); see the module docstring.
    """

    def __init__(self, spec: Any = None, base_dir: str | Path | None = None, *,
                 timeout: float = 600.0, retries: int = 1, max_force: float = 50.0,
                 stress: bool = True, factory: Callable[[], Any] | None = None,
                 isolation: str = "none") -> None:
        if isolation not in ("none", "process"):
            raise ValueError(f"isolation must be 'none' or 'process', got {isolation!r}")
        if isolation == "process" and factory is not None:
            raise ValueError("isolation='process' needs a calculator spec, not a factory")
        self.isolation = isolation
        self.spec, self.base_dir = spec, base_dir
        self._worker: _Isolated | None = None
        if factory is None:
            from aceal.reference import describe_spec, make_calculator

            def factory():
                return make_calculator(spec, base_dir)

            self.name = describe_spec(spec)
        else:
            self.name = getattr(factory, "__name__", "reference")
        self.factory = factory
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.max_force = float(max_force)
        self.stress = bool(stress)
        self._calc = None
        self.n_calls = 0

    def _compute(self, a: Atoms):
        """``(energy, forces, stress or None)`` of ``a`` (eV, eV/Å, eV/Å³)."""
        if self.isolation == "process":
            if self._worker is None or not self._worker.alive():
                self._worker = _Isolated(self.spec, self.base_dir, self.stress)
            return self._worker.label(a, self.timeout)
        if self._calc is None:
            self._calc = self.factory()
        a.calc = self._calc
        with _Alarm(self.timeout):
            energy = float(a.get_potential_energy())
            forces = np.array(a.get_forces(), dtype=float)
            stress = None
            if self.stress and bool(np.all(a.pbc)):
                stress = np.array(a.get_stress(voigt=True), dtype=float)
        return energy, forces, stress

    def _attempt(self, atoms: Atoms) -> Atoms:
        a = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        energy, forces, stress = self._compute(a)
        self.check(energy, forces, stress, len(a))
        out = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        out.info = dict(atoms.info)
        res = {"energy": energy, "forces": forces}
        if stress is not None:
            res["stress"] = stress
        out.calc = SinglePointCalculator(out, **res)
        return out

    def check(self, energy: float, forces: np.ndarray, stress: np.ndarray | None,
              n_atoms: int) -> None:
        """Raise ``ValueError`` for a broken result: non-finite energy, forces or stress,
        or a force component above ``max_force`` (eV/Å)."""
        if not np.isfinite(energy):
            raise ValueError(f"non-finite energy {energy}")
        if forces.shape != (n_atoms, 3) or not np.all(np.isfinite(forces)):
            raise ValueError("non-finite forces")
        fmax = float(np.abs(forces).max()) if forces.size else 0.0
        if fmax > self.max_force:
            raise ValueError(f"absurd force {fmax:.3g} eV/Å > max_force {self.max_force:g}")
        if stress is not None and not np.all(np.isfinite(stress)):
            raise ValueError("non-finite stress")

    def label(self, atoms: Atoms) -> OracleResult:
        """Label one structure; never raises for a failing reference calculation."""
        errors: list[str] = []
        t0 = time.perf_counter()
        for attempt in range(1, self.retries + 2):
            self.n_calls += 1
            try:
                out = self._attempt(atoms)
                return OracleResult(out, None, time.perf_counter() - t0, attempt, errors)
            except ReferenceTimeout as err:
                errors.append(str(err))
            except KeyboardInterrupt:
                raise
            except Exception as err:  # the reference code may raise anything
                msg = " ".join(str(err).split()) or type(err).__name__
                errors.append(f"{type(err).__name__}: {msg}"[:300])
            self._calc = None  # a fresh calculator for the next attempt
            if self._worker is not None:
                self._worker.close()
                self._worker = None
        return OracleResult(None, errors[-1], time.perf_counter() - t0, self.retries + 1,
                            errors)

    def close(self) -> None:
        """Stop the worker process (``isolation="process"``), if any."""
        if self._worker is not None:
            self._worker.close()
            self._worker = None
