"""Single-writer lock on a store directory, held with ``filelock`` (``flock`` on Unix).

The operating system releases the lock when its process ends, however it ends (a
SIGKILL, a crashed node on a shared file system), so there is no stale lock to detect
or take over. Who holds it is recorded beside the lock file (``<lock>.json``: pid, host,
start time) only to name the holder in the error a second writer gets.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path

from filelock import FileLock, Timeout

from aceal.store.errors import StoreLockedError


def holder_path(lock_path: Path) -> Path:
    """The JSON file naming the writer that holds ``lock_path``."""
    return lock_path.with_name(lock_path.name + ".json")


class WriterLock:
    """Exclusive writer lock on a store directory.

    Parameters
    ----------
    path : Path
        Lock file path (kept on release so that waiters share one inode).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = FileLock(str(self.path), thread_local=False)
        self.held = False

    def acquire(self) -> None:
        """Take the lock without waiting.

        Raises
        ------
        StoreLockedError
            Another writer (another process, or another store object of this one) holds
            it; the message names its pid and host.
        """
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise StoreLockedError(self._describe_holder()) from None
        self.held = True
        record = {"pid": os.getpid(), "hostname": socket.gethostname(), "since": time.time()}
        tmp = holder_path(self.path).with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, holder_path(self.path))

    def _describe_holder(self) -> str:
        try:
            record = json.loads(holder_path(self.path).read_text())
        except (OSError, ValueError):
            return f"store is locked by another writer ({self.path})"
        pid, host = record.get("pid", "?"), record.get("hostname", "?")
        mine = " (this process)" if pid == os.getpid() and host == socket.gethostname() else ""
        return f"store is locked by writer pid {pid}{mine} on host {host} ({self.path})"

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if not self.held:
            return
        self.held = False
        with contextlib.suppress(FileNotFoundError):
            holder_path(self.path).unlink()
        self._lock.release()
