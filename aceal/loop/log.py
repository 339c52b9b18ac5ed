"""Campaign log: one JSON line per event in ``log.jsonl``, readable progress on the terminal.

Each line is a JSON object with at least ``event`` (``"start"``, ``"iteration"``,
``"finish"``) and ``time`` (s since the Unix epoch).  Lines are flushed and fsynced as
written.  After a crash an iteration may be logged twice (logged, then killed before the
state file recorded it); readers keep the last line per iteration
(:func:`read_log`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from aceal.jsonable import to_jsonable

__all__ = ["CampaignLog", "read_log", "Progress"]




class CampaignLog:
    """Appends JSON lines to ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: str, **fields: Any) -> dict:
        rec = {"event": event, "time": time.time(), **fields}
        line = json.dumps(to_jsonable(rec), separators=(",", ":"))
        with open(self.path, "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        return rec


def read_log(path: str | Path) -> list[dict]:
    """All records of a log; ``iteration`` records deduplicated (last one wins), in order."""
    p = Path(path)
    if not p.is_file():
        return []
    recs: list[dict] = []
    for line in p.read_text().splitlines():
        try:
            recs.append(json.loads(line))
        except json.JSONDecodeError:  # a line torn by a crash
            continue
    last: dict[int, int] = {}
    for k, r in enumerate(recs):
        if r.get("event") == "iteration":
            last[r["iteration"]] = k
    return [r for k, r in enumerate(recs)
            if r.get("event") != "iteration" or last[r["iteration"]] == k]


def _fmt(x: float | None, scale: float = 1.0, unit: str = "") -> str:
    return "-" if x is None else f"{x * scale:.3g}{unit}"


class Progress:
    """One readable line per campaign phase on a terminal (or any stream)."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stdout
        self.t0 = time.perf_counter()

    def say(self, msg: str) -> None:
        if self.enabled:
            print(f"[aceal-loop {time.perf_counter() - self.t0:7.1f} s] {msg}",
                  file=self.stream, flush=True)

    def iteration(self, rec: dict, max_iterations: int) -> None:
        val = rec.get("validation") or {}
        c = rec.get("candidates_by_reason") or {}
        self.say(
            f"iteration {rec['iteration']}/{max_iterations}: "
            f"{rec.get('candidates', 0)} candidates "
            f"({', '.join(f'{k} {v}' for k, v in sorted(c.items())) or 'none'}), "
            f"labelled {rec.get('labelled', 0)}, failed {rec.get('failed', 0)}, "
            f"train {rec.get('n_train', 0)} configs, "
            f"validation F-MAE {_fmt(val.get('forces_mae'), 1, ' eV/Å')} "
            f"E-MAE {_fmt(val.get('energy_mae'), 1000, ' meV/atom')}, "
            f"reference calls {rec.get('reference_calls_total', 0)}")
