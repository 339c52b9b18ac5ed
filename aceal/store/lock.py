"""Single-writer lock: a file holding the writer's pid and host name.

The lock file is created with ``O_CREAT | O_EXCL`` (atomic on local file systems),
then filled with a JSON record.  A lock whose process is gone (same host, pid not
alive, or alive but started at a different time, i.e. a recycled pid) is stale and
is taken over; a lock from another host is never taken over automatically.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from pathlib import Path

from aceal.store.errors import StoreLockedError

#: a lock file that is still empty after this many seconds belongs to a writer that
#: died between creating and filling it
EMPTY_LOCK_GRACE_S = 10.0


def _start_time(pid: int) -> str | None:
    """Start time of a process in clock ticks since boot (Linux), else ``None``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].startswith("Z")


def process_alive(pid: int, start_time: str | None = None) -> bool:
    """Whether process ``pid`` on this host is alive (and is the same process).

    Parameters
    ----------
    pid : int
        Process id.
    start_time : str, optional
        Start time recorded when the lock was taken; a live process with a different
        start time is a recycled pid, i.e. the original writer is gone.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if _is_zombie(pid):
        return False
    if start_time is not None:
        now = _start_time(pid)
        if now is not None and now != start_time:
            return False
    return True


def _read_record(path: Path) -> dict | None:
    """The lock record, ``{}`` if the file is empty/unreadable, ``None`` if absent."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        record = json.loads(text)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _create_exclusive(path: Path, record: dict) -> bool:
    """Create ``path`` holding ``record``; ``False`` if it already exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, json.dumps(record).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


class WriterLock:
    """Exclusive writer lock on a store directory.

    Parameters
    ----------
    path : Path
        Lock file path.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.hostname = socket.gethostname()
        self.token = uuid.uuid4().hex
        self.held = False

    def _record(self) -> dict:
        return {
            "pid": os.getpid(),
            "hostname": self.hostname,
            "start_time": _start_time(os.getpid()),
            "created": time.time(),
            "token": self.token,
        }

    def _is_stale(self, record: dict) -> bool:
        if not record:  # empty: writer died between create and write, or is writing now
            try:
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return True
            return age > EMPTY_LOCK_GRACE_S
        if record.get("hostname") != self.hostname:
            return False
        try:
            pid = int(record.get("pid", -1))
        except (TypeError, ValueError):
            return True
        return not process_alive(pid, record.get("start_time"))

    def _describe(self, record: dict) -> str:
        if not record:
            return f"{self.path} is being created by another process"
        where = record.get("hostname", "?")
        pid = record.get("pid", "?")
        mine = " (this process)" if pid == os.getpid() and where == self.hostname else ""
        text = f"store is locked by writer pid {pid}{mine} on host {where} ({self.path})"
        if where != self.hostname:
            text += "; if that process is gone, delete the lock file"
        return text

    def acquire(self) -> None:
        """Take the lock, taking over a stale one.

        Raises
        ------
        StoreLockedError
            A live writer holds the lock (the message names its pid and host).
        """
        for _ in range(5):
            if _create_exclusive(self.path, self._record()):
                self.held = True
                return
            record = _read_record(self.path)
            if record is None:
                continue  # released meanwhile: retry
            if not self._is_stale(record):
                raise StoreLockedError(self._describe(record))
            self._take_over(record)
        raise StoreLockedError(f"could not acquire {self.path}: contention with other writers")

    def _take_over(self, stale: dict) -> None:
        """Remove a stale lock, guarded so two contenders cannot both remove it."""
        guard = WriterLock(self.path.with_name(self.path.name + ".takeover"))
        try:
            guard.acquire()
        except StoreLockedError:
            return  # someone else is taking over; the caller retries
        try:
            if _read_record(self.path) == stale:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
        finally:
            guard.release()

    def release(self) -> None:
        """Remove the lock file if it is still ours."""
        if not self.held:
            return
        self.held = False
        record = _read_record(self.path)
        if record and record.get("token") == self.token:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
