"""A zarr local-file store whose every write is atomic (and optionally durable).

zarr writes a chunk or metadata document with one ``set`` call.  Here each ``set``
writes a hidden temporary file in the destination directory, optionally ``fsync`` s
it, and renames it over the destination, so a process killed at any instant leaves
either the old or the new file, never a truncated one.  That is what lets an append
rewrite the partially filled tail chunk of an array without putting the committed
rows in that chunk at risk.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Self

from zarr.storage import LocalStore

#: suffix of temporary files; leftovers from a killed writer are removed on open
TMP_SUFFIX = ".aceal-tmp"


def fsync_dir(path: Path) -> None:
    """Flush a directory entry table to disk (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(root: Path, threads: int = 16) -> None:
    """``fsync`` every file and directory under ``root`` (concurrently)."""
    from concurrent.futures import ThreadPoolExecutor

    def sync_file(path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    files = [p for p in root.rglob("*") if p.is_file()]
    dirs = [p for p in root.rglob("*") if p.is_dir()] + [root]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(sync_file, files))
        list(pool.map(fsync_dir, dirs))


def write_atomic(path: Path, data: bytes | memoryview, durable: bool) -> None:
    """Replace ``path`` by ``data`` atomically.

    Parameters
    ----------
    path : Path
        Destination file; parent directories are created.
    data : bytes-like
        New content.
    durable : bool
        ``fsync`` the temporary file before the rename (survives power loss, not
        only process death).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}{TMP_SUFFIX}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_temporaries(root: Path) -> int:
    """Delete temporary files left by a killed writer; returns how many."""
    count = 0
    for tmp in root.rglob(f"*{TMP_SUFFIX}"):
        tmp.unlink(missing_ok=True)
        count += 1
    return count


class AtomicLocalStore(LocalStore):
    """:class:`zarr.storage.LocalStore` with atomic, optionally fsync'ed writes.

    Parameters
    ----------
    root : str or Path
        Store directory.
    read_only : bool
        Refuse all writes.
    durable : bool
        ``fsync`` every written file before renaming it into place, and let
        :meth:`sync_dirs` flush the directories that received new names.
    """

    def __init__(self, root: Path | str, *, read_only: bool = False, durable: bool = True) -> None:
        super().__init__(root, read_only=read_only)
        self.durable = durable
        self._touched: set[Path] = set()

    def with_read_only(self, read_only: bool = False) -> Self:
        return type(self)(self.root, read_only=read_only, durable=self.durable)

    def _write(self, key: str, value) -> None:
        if self.read_only:
            raise ValueError(f"store {self.root} is read-only")
        path = self.root / key
        write_atomic(path, value.to_bytes(), self.durable)
        self._touched.add(path.parent)

    def set_sync(self, key: str, value) -> None:
        self._write(key, value)

    async def set(self, key: str, value) -> None:
        await asyncio.to_thread(self._write, key, value)

    async def set_if_not_exists(self, key: str, value) -> None:
        if not (self.root / key).is_file():
            await self.set(key, value)

    def sync_dirs(self) -> None:
        """``fsync`` every directory that received a file since the last call."""
        if self.durable:
            for directory in sorted(self._touched):
                fsync_dir(directory)
        self._touched.clear()
