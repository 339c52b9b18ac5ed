"""Low-level access to one table of the store: create, grow, write, read, trim.

A :class:`Table` knows nothing about atoms or provenance; it moves NumPy arrays in
and out of the zarr arrays described by a :class:`~aceal.store.schema.TableSpec`.
Committed lengths are owned by the caller (the commit marker); a table only writes
at given offsets and never decides what is committed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import numpy as np
import zarr

from aceal.store.schema import Column, TableSpec

#: threads issuing zarr reads/writes concurrently (each waits mostly on zarr's I/O)
WORKER_THREADS = 8

_pool: tuple[int, ThreadPoolExecutor] | None = None


def _executor() -> ThreadPoolExecutor:
    """A process-wide worker pool (re-created in a forked child)."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="aceal-store"))
    return _pool[1]


def _run_all(func: Callable[[Any], object], items: Iterable[Any]) -> None:
    """Apply ``func`` to every item concurrently.

    Returns only when every call has finished (so nothing is still writing when a
    caller commits or reports an error); re-raises the first error.
    """
    items = list(items)
    if len(items) <= 1:
        for item in items:
            func(item)
        return
    futures = [_executor().submit(func, item) for item in items]
    wait(futures)
    for future in futures:
        future.result()


class Table:
    """Arrays of one table inside an open zarr group.

    Parameters
    ----------
    group : zarr.Group
        The table's group.
    spec : TableSpec
        Its columns.
    """

    def __init__(self, group: zarr.Group, spec: TableSpec) -> None:
        self.group = group
        self.spec = spec
        self._arrays: dict[str, zarr.Array] = {}

    @classmethod
    def create(cls, parent: zarr.Group, spec: TableSpec) -> Table:
        """Create the table group and its empty arrays under ``parent``."""
        group = parent.create_group(spec.name)
        _run_all(
            lambda col: group.create_array(
                name=col.name,
                shape=(0, *col.tail),
                chunks=(col.chunk, *col.tail),
                dtype=col.dtype,
                fill_value=col.fill,
            ),
            spec.columns,
        )
        return cls(group, spec)

    def array(self, name: str) -> zarr.Array:
        """The zarr array of column ``name`` (opened once, then cached)."""
        arr = self._arrays.get(name)
        if arr is None:
            col = self.spec.column(name)
            arr = self.group[name]
            if not isinstance(arr, zarr.Array) or arr.shape[1:] != col.tail:
                raise ValueError(f"{self.spec.name}/{name}: unexpected array layout")
            self._arrays[name] = arr
        return arr

    def columns_on(self, axis: str) -> list[Column]:
        """Columns whose leading axis is ``axis``."""
        return [col for col in self.spec.columns if col.axis == axis]

    def check(self, lengths: Mapping[str, int]) -> None:
        """Raise ``ValueError`` if any array is shorter than its committed length."""
        for col in self.spec.columns:
            have = self.array(col.name).shape[0]
            if have < lengths[col.axis]:
                raise ValueError(
                    f"{self.spec.name}/{col.name} holds {have} entries, "
                    f"commit marker says {lengths[col.axis]}"
                )

    def trim(self, lengths: Mapping[str, int]) -> int:
        """Shrink arrays longer than the committed lengths; returns how many shrank."""
        todo = [c for c in self.spec.columns if self.array(c.name).shape[0] > lengths[c.axis]]
        _run_all(lambda c: self.array(c.name).resize((lengths[c.axis], *c.tail)), todo)
        return len(todo)

    def write(self, start: Mapping[str, int], data: Mapping[str, np.ndarray]) -> dict[str, int]:
        """Write ``data`` at the committed ends and return the new (uncommitted) lengths.

        Arrays that are too short grow to a whole number of chunks, so that appending
        one record at a time rarely rewrites array metadata; :meth:`trim` shrinks them
        back to the committed lengths.

        Parameters
        ----------
        start : mapping
            Committed length of every axis; data are written from there on.
        data : mapping
            One array for every column of the table, leading axis = number of new
            entries on that column's axis (columns on one axis must agree).

        Returns
        -------
        dict
            New length of every axis, to be recorded by the caller's commit.
        """
        added: dict[str, int] = {}
        for col in self.spec.columns:
            n = len(data[col.name])
            if added.setdefault(col.axis, n) != n:
                raise ValueError(f"{self.spec.name}: inconsistent lengths on axis {col.axis}")
        new = {axis: start[axis] + added.get(axis, 0) for axis in self.spec.axes}

        def write_one(col: Column) -> None:
            a, b = start[col.axis], new[col.axis]
            arr = self.array(col.name)
            if arr.shape[0] < b:
                arr.resize((-(-b // col.chunk) * col.chunk, *col.tail))
            arr[a:b] = np.asarray(data[col.name], dtype=col.dtype)

        _run_all(write_one, [c for c in self.spec.columns if new[c.axis] > start[c.axis]])
        return new

    def read_many(self, names: Iterable[str], rows: slice | np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`read` of several columns at the same rows, concurrently."""
        out: dict[str, np.ndarray] = {}

        def one(name: str) -> None:
            out[name] = self.read(name, rows)

        _run_all(one, list(names))
        return out

    def read(self, name: str, rows: slice | np.ndarray) -> np.ndarray:
        """Read column ``name`` at a slice or an integer index array (leading axis)."""
        arr = self.array(name)
        if isinstance(rows, slice):
            if rows.stop is not None and rows.stop <= (rows.start or 0):
                return np.empty((0, *arr.shape[1:]), dtype=arr.dtype)
            return np.asarray(arr[rows])
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.empty((0, *arr.shape[1:]), dtype=arr.dtype)
        return np.asarray(arr.oindex[(rows,) + (slice(None),) * (arr.ndim - 1)])
