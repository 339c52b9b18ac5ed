"""The training store: an appendable, crash-safe zarr store of labelled configurations.

Crash safety rests on three rules:

1. every file write is atomic (:mod:`aceal.store.atomic`), so committed rows that share
   a chunk with new rows are never exposed to a half-written file;
2. an append writes only beyond the committed lengths, and then replaces the commit
   marker (one root ``zarr.json`` write) *last*;
3. readers use only what the marker says; a writer opening the store trims anything
   past the marker (left by an interrupted append) before it appends.

One writer at a time is enforced with :class:`aceal.store.lock.WriterLock`.
"""

from __future__ import annotations

import os
import shutil
import time
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr
from ase import Atoms
from ase.data import chemical_symbols

import aceal
from aceal.errors import AcealInputError
from aceal.store.atomic import AtomicLocalStore, fsync_tree, remove_temporaries
from aceal.store.campaign import FailureRecord, ModelRecord, read_failures, read_models
from aceal.store.errors import StoreError
from aceal.store.lock import WriterLock
from aceal.store.probe import disk_usage, open_group, probe
from aceal.store.records import (
    Categories,
    decode_configs,
    decode_text,
    encode_configs,
    encode_failure,
    encode_model,
)
from aceal.store.schema import (
    ATOMS,
    COMMIT_ATTR,
    CONFIGS,
    CREATING_ATTR,
    FAILURES,
    FORMAT_NAME,
    FORMAT_VERSION,
    HEADER_ATTR,
    LOCK_NAME,
    MODELS,
    ROWS,
    TABLES,
    empty_commit,
)
from aceal.store.table import Table
from aceal.store.view import DEFAULT_CHUNK, StoreView

Mode = Literal["r", "a", "w"]
Index = int | slice | Sequence[int] | np.ndarray


# --------------------------------------------------------------------------------------
# the store
# --------------------------------------------------------------------------------------


class TrainingStore:
    """An aceal training store opened for reading or writing.

    Use :func:`open_store` to create instances.  Configurations come back as ASE
    ``Atoms`` with a ``SinglePointCalculator`` holding the labels that were stored
    (energy in eV, forces in eV/Å, stress in eV/Å³ Voigt order) and ``info`` holding
    ``config_type``, ``weight`` and provenance (``source``, ``rank``, ``reason``,
    ``iteration``, ``calculator``, ``wall_time`` [s], ``timestamp`` [s since epoch],
    ``selection`` {field: value}) where recorded, plus any other ``info`` keys that
    were stored.
    """

    def __init__(self, path: Path, mode: Mode, durable: bool) -> None:
        self.path = path
        self.mode = mode
        self.durable = durable
        self._lock: WriterLock | None = None
        self._finalizer: weakref.finalize | None = None
        self._closed = False
        if mode == "r":
            if probe(path) != "store":
                raise StoreError(f"{path} is not an aceal store")
            self._load(read_only=True)
            return
        state = probe(path)  # raises for non-stores before anything is written
        if mode == "w" and state == "store":
            raise StoreError(
                f"{path} already holds a store; open it with mode 'a' to append "
                "(a store is never overwritten)"
            )
        path.mkdir(parents=True, exist_ok=True)
        self._lock = WriterLock(path / LOCK_NAME)
        self._lock.acquire()
        self._finalizer = weakref.finalize(self, self._lock.release)
        try:
            state = probe(path)  # may have changed while we waited for the lock
            if state == "store" and mode == "w":
                raise StoreError(f"{path} already holds a store (created meanwhile)")
            if state != "store":
                self._create(state)
            self._load(read_only=False)
            self._recover()
        except BaseException:
            self.close()
            raise

    # ---- opening ------------------------------------------------------------------

    def _create(self, state: str) -> None:
        """Create an empty store (the caller holds the lock)."""
        if state == "creating":  # an earlier creation was interrupted: start afresh
            for child in self.path.iterdir():
                if child.name.startswith(LOCK_NAME):  # the lock and its holder record
                    continue
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        # the skeleton is written without per-file fsync and flushed in one sweep below
        zstore = AtomicLocalStore(self.path, durable=False)
        header = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "created": time.time(),
            "aceal_version": aceal.__version__,
        }
        root = zarr.create_group(
            store=zstore, zarr_format=3, attributes={CREATING_ATTR: header}, overwrite=False
        )
        for spec in TABLES:
            Table.create(root, spec)
        if self.durable:
            fsync_tree(self.path)
        zstore.durable = self.durable
        root.attrs.put({HEADER_ATTR: header, COMMIT_ATTR: empty_commit()})
        zstore.sync_dirs()

    def _load(self, read_only: bool) -> None:
        group, zstore = open_group(self.path, read_only, self.durable)
        attrs = dict(group.attrs)
        self._root = group
        self._zstore = zstore
        self._header = attrs[HEADER_ATTR]
        self._commit = attrs[COMMIT_ATTR]
        self._categories = Categories(self._commit["categories"])
        self._tables = {spec.name: Table(group[spec.name], spec) for spec in TABLES}

    def _recover(self) -> None:
        """Trim anything past the commit marker and delete temporary files (writers)."""
        remove_temporaries(self.path)
        for name, table in self._tables.items():
            lengths = self._lengths(name)
            try:
                table.check(lengths)
            except ValueError as err:
                raise StoreError(f"{self.path}: damaged store: {err}") from None
            table.trim(lengths)
        self._zstore.sync_dirs()

    def refresh(self) -> bool:
        """Re-read the commit marker (readers: see new commits); ``True`` if it changed."""
        self._check_open()
        if self.mode != "r":
            return False
        serial = self._commit["serial"]
        self._load(read_only=True)
        return self._commit["serial"] != serial

    def close(self) -> None:
        """Trim arrays to the committed lengths and release the writer lock.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.mode != "r" and hasattr(self, "_tables"):
                for name, table in self._tables.items():
                    table.trim(self._lengths(name))
        finally:
            if self._finalizer is not None:
                self._finalizer()

    def __enter__(self) -> TrainingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<TrainingStore {self.path} mode={self.mode!r} configs={len(self)}>"

    # ---- bookkeeping --------------------------------------------------------------

    @property
    def format_version(self) -> int:
        """Format version of the store on disk."""
        return int(self._header["format_version"])

    @property
    def categories(self) -> dict[str, list[str]]:
        """Category names of the string columns (config_type, source, ...)."""
        return self._categories.as_dict()

    def _lengths(self, table: str) -> dict[str, int]:
        return dict(self._commit["lengths"][table])

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"store {self.path} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self.mode == "r":
            raise StoreError(f"store {self.path} is open read-only (use mode 'a')")

    def _write(self, table: str, data: Mapping[str, np.ndarray], categories: Categories) -> int:
        """Write rows of ``table`` after the committed end, then commit; first new row."""
        spec = self._tables[table].spec
        start = self._lengths(table)
        data = dict(data)
        if ATOMS in spec.axes:
            data["atom_start"] = data["atom_start"] + start[ATOMS]
        for text in spec.text_columns:
            data[f"{text}_start"] = data[f"{text}_start"] + start[text]
        new = self._tables[table].write(start, data)
        lengths = {name: self._lengths(name) for name in self._commit["lengths"]}
        lengths[table] = new
        marker = {
            "serial": int(self._commit["serial"]) + 1,
            "updated": time.time(),
            "lengths": lengths,
            "categories": categories.as_dict(),
        }
        self._zstore.sync_dirs()  # data and their directory entries before the marker
        self._root.attrs.put({HEADER_ATTR: self._header, COMMIT_ATTR: marker})
        self._zstore.sync_dirs()
        self._commit = marker
        self._categories = categories
        return start[ROWS]

    # ---- configurations -----------------------------------------------------------

    def __len__(self) -> int:
        return int(self._commit["lengths"][CONFIGS.name][ROWS])

    @property
    def n_atoms(self) -> int:
        """Total number of atoms over all committed configurations."""
        return int(self._commit["lengths"][CONFIGS.name][ATOMS])

    def append(
        self,
        images: Atoms | Iterable[Atoms],
        *,
        require: Sequence[str] = ("energy",),
        energy_key: str | None = None,
        forces_key: str | None = None,
        stress_key: str | None = None,
        config_type: str | None = None,
        weight: float | None = None,
        source: str | None = None,
        reason: str | None = None,
        iteration: int | None = None,
        rank: int | None = None,
        calculator: str | None = None,
        wall_time: float | None = None,
        timestamp: float | None = None,
        selection: Mapping[str, Any] | None = None,
    ) -> np.ndarray:
        """Append configurations as one atomic commit.

        Labels come from each ``Atoms``' calculator results (or ``info``/``arrays``
        keys, see ``*_key``).  Keyword provenance applies to every configuration and
        overrides the same key in ``atoms.info``; keywords left at ``None`` fall back
        to ``atoms.info`` per configuration.  The whole batch is validated before
        anything is written; on error nothing is stored.

        Parameters
        ----------
        images : Atoms or iterable of Atoms
            Configurations to store.
        require : sequence of str, default ("energy",)
            Labels each configuration must have; pass ``()`` to store unlabelled ones.
        energy_key, forces_key, stress_key : str, optional
            ``info`` (energy, stress) or ``arrays`` (forces) key holding the label.
        config_type : str, optional
            Configuration type (e.g. ``"bulk"``).
        weight : float, optional
            Fitting weight (default 1).
        source : str, optional
            Where the configuration came from: ``"import"``, ``"seed"``, ``"walker"``...
        reason : str, optional
            Why it was selected: ``"uncertainty"``, ``"rare_event"``, ``"seed"``...
        iteration : int, optional
            Active-learning iteration (>= 0).
        rank : int, optional
            Walker (MPI) rank that produced it.
        calculator : str, optional
            Name of the reference calculator.
        wall_time : float, optional
            Wall time of the reference calculation (s).
        timestamp : float, optional
            Seconds since the Unix epoch (default: now).
        selection : mapping, optional
            Values at selection time: the fixed fields
            :data:`aceal.store.schema.SELECTION_FIELDS` are stored as floats, any other
            key as JSON.

        Returns
        -------
        numpy.ndarray
            Indices of the appended configurations.

        Raises
        ------
        AcealInputError
            Invalid input (nothing written).
        StoreError
            The store is read-only or closed.
        """
        self._check_writable()
        images = [images] if isinstance(images, Atoms) else list(images)
        first = len(self)
        if not images:
            return np.arange(first, first, dtype=np.int64)
        categories = self._categories.copy()
        data = encode_configs(
            images,
            categories,
            require=require,
            keys={"energy": energy_key, "forces": forces_key, "stress": stress_key},
            overrides={
                "config_type": config_type,
                "weight": weight,
                "source": source,
                "reason": reason,
                "iteration": iteration,
                "rank": rank,
                "calculator": calculator,
                "wall_time": wall_time,
                "timestamp": timestamp,
                "selection": selection,
            },
        )
        self._write(CONFIGS.name, data, categories)
        return np.arange(first, first + len(images), dtype=np.int64)

    def _normalise(self, key: Index) -> tuple[np.ndarray, bool]:
        """Index array for ``key`` and whether ``key`` was a single integer."""
        n = len(self)
        if isinstance(key, (int, np.integer)):
            i = int(key)
            if not -n <= i < n:
                raise IndexError(f"configuration {i} out of range (store holds {n})")
            return np.array([i % n if n else i], dtype=np.int64), True
        if isinstance(key, slice):
            return np.arange(n, dtype=np.int64)[key], False
        idx = np.asarray(key)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise IndexError(f"boolean index must have length {n}")
            return np.flatnonzero(idx).astype(np.int64), False
        if idx.size == 0:
            return np.zeros(0, dtype=np.int64), False
        if idx.dtype.kind not in "iu":
            raise IndexError(f"cannot index a store with {idx.dtype} values")
        idx = idx.astype(np.int64).ravel()
        if (idx < -n).any() or (idx >= n).any():
            raise IndexError(f"index out of range (store holds {n})")
        return idx % max(n, 1), False

    def __getitem__(self, key: Index) -> Atoms | list[Atoms]:
        """One configuration (``int``) or a list of them (slice, int array, bool mask)."""
        self._check_open()
        idx, single = self._normalise(key)
        images = self._read(idx)
        return images[0] if single else images

    def __iter__(self) -> Iterator[Atoms]:
        for chunk in self.iter_chunks():
            yield from chunk

    def iter_chunks(
        self, size: int = DEFAULT_CHUNK, indices: Sequence[int] | np.ndarray | None = None
    ) -> Iterator[list[Atoms]]:
        """Yield configurations ``size`` at a time (only one chunk in memory).

        Parameters
        ----------
        size : int
            Configurations per chunk.
        indices : array of int, optional
            Restrict to these configurations (in the given order); default all.
        """
        self._check_open()
        if size < 1:
            raise AcealInputError(f"chunk size must be >= 1, got {size}")
        idx = np.arange(len(self)) if indices is None else self._normalise(indices)[0]
        for a in range(0, len(idx), size):
            yield self._read(idx[a : a + size])

    def _read(self, idx: np.ndarray) -> list[Atoms]:
        """Decode configurations ``idx`` (any order, duplicates allowed)."""
        if idx.size == 0:
            return []
        uniq, inverse = np.unique(idx, return_inverse=True)
        table = self._tables[CONFIGS.name]
        contiguous = bool(uniq[-1] - uniq[0] + 1 == uniq.size)
        rows_sel: slice | np.ndarray = (
            slice(int(uniq[0]), int(uniq[-1]) + 1) if contiguous else uniq
        )
        rows = table.read_many([c.name for c in table.columns_on(ROWS)], rows_sel)

        def ragged(start: np.ndarray, count: np.ndarray) -> slice | np.ndarray:
            if contiguous:
                return slice(int(start[0]), int(start[-1] + count[-1]))
            return _gather(start, count)

        atom_sel = ragged(rows["atom_start"], rows["natoms"])
        atoms = table.read_many([c.name for c in table.columns_on(ATOMS)], atom_sel)
        texts = {}
        for text in CONFIGS.text_columns:
            nbytes = rows[f"{text}_nbytes"]
            texts[text] = decode_text(
                table.read(text, ragged(rows[f"{text}_start"], nbytes)), nbytes
            )
        if not np.array_equal(idx, uniq):  # reorder / repeat
            natoms = rows["natoms"]
            local = _gather((np.cumsum(natoms) - natoms)[inverse], natoms[inverse])
            rows = {k: v[inverse] for k, v in rows.items()}
            atoms = {k: v[local] for k, v in atoms.items()}
            texts = {k: [v[j] for j in inverse.tolist()] for k, v in texts.items()}
        return decode_configs(rows, atoms, texts, self._categories)

    def column(self, name: str, indices: Index | None = None) -> np.ndarray:
        """Raw per-configuration column (e.g. ``energy``, ``natoms``, ``iteration``).

        Category columns return integer codes (see :attr:`categories`); missing
        floats are NaN, missing integers -1.
        """
        self._check_open()
        table = self._tables[CONFIGS.name]
        if table.spec.column(name).axis != ROWS:
            raise AcealInputError(f"{name} is not a per-configuration column")
        if indices is None:
            return table.read(name, slice(0, len(self)))
        return table.read(name, self._normalise(indices)[0])

    def indices(
        self,
        *,
        config_type: str | Sequence[str] | None = None,
        iteration: int | Sequence[int] | None = None,
        source: str | Sequence[str] | None = None,
        reason: str | Sequence[str] | None = None,
    ) -> np.ndarray:
        """Indices of configurations matching all given filters (each may be a list).

        Parameters
        ----------
        config_type, source, reason : str or sequence of str, optional
            Keep configurations whose value is one of these.
        iteration : int or sequence of int, optional
            Keep configurations from these iterations.
        """
        self._check_open()
        keep = np.ones(len(self), dtype=bool)
        for col, wanted in (("config_type", config_type), ("source", source), ("reason", reason)):
            if wanted is None:
                continue
            codes = [self._categories.lookup(col, str(v)) for v in _as_codes(wanted)]
            codes = [c for c in codes if c is not None]
            keep &= np.isin(self.column(col), codes)
        if iteration is not None:
            keep &= np.isin(self.column("iteration"), [int(i) for i in _as_codes(iteration)])
        return np.flatnonzero(keep).astype(np.int64)

    def filter(self, **criteria: Any) -> StoreView:
        """A :class:`StoreView` of the configurations matching :meth:`indices` filters."""
        return StoreView(self, self.indices(**criteria))

    def view(self, indices: Index) -> StoreView:
        """A :class:`StoreView` of the given configurations."""
        return StoreView(self, self._normalise(indices)[0])

    # ---- failures -----------------------------------------------------------------

    def add_failure(
        self,
        atoms: Atoms,
        reason: str,
        *,
        iteration: int | None = None,
        source: str | None = None,
        rank: int | None = None,
        calculator: str | None = None,
        timestamp: float | None = None,
    ) -> int:
        """Record a failed reference calculation (kept apart from training data).

        Parameters
        ----------
        atoms : Atoms
            The structure the reference calculation failed on.
        reason : str
            Error text (any length).
        iteration, rank : int, optional
            Campaign iteration and walker rank.
        source, calculator : str, optional
            Provenance.
        timestamp : float, optional
            Seconds since the Unix epoch (default: now).

        Returns
        -------
        int
            Index of the new failure record.
        """
        self._check_writable()
        categories = self._categories.copy()
        data = encode_failure(
            atoms,
            categories,
            reason=reason,
            iteration=iteration,
            source=source,
            rank=rank,
            calculator=calculator,
            timestamp=timestamp,
        )
        return self._write(FAILURES.name, data, categories)

    def failures(self) -> list[FailureRecord]:
        """All recorded failures, oldest first."""
        self._check_open()
        return read_failures(
            self._tables[FAILURES.name], self._lengths(FAILURES.name), self._categories
        )

    # ---- models -------------------------------------------------------------------

    def add_model(
        self,
        text: str,
        iteration: int | None = None,
        metrics: Mapping[str, Any] | None = None,
        *,
        timestamp: float | None = None,
    ) -> int:
        """Store a fitted model's file text with its iteration and metrics.

        Parameters
        ----------
        text : str
            Contents of the model file.
        iteration : int, optional
            Campaign iteration it was fitted in.
        metrics : mapping, optional
            JSON-serialisable metrics (e.g. ``{"energy_rmse": 0.002}`` in eV/atom).
        timestamp : float, optional
            Seconds since the Unix epoch (default: now).

        Returns
        -------
        int
            Index of the new model record.
        """
        self._check_writable()
        return self._write(
            MODELS.name, encode_model(text, iteration, metrics, timestamp), self._categories.copy()
        )

    def models(self) -> list[ModelRecord]:
        """All stored models, oldest first."""
        self._check_open()
        return read_models(self._tables[MODELS.name], self._lengths(MODELS.name))

    # ---- summary ------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Counts and sizes for ``aceal data info`` (JSON-serialisable)."""
        self._check_open()
        n = len(self)
        table = self._tables[CONFIGS.name]

        def counts(col: str) -> dict[str, int]:
            codes = Counter(self.column(col).tolist())
            return {
                (self._categories.name(col, c) or "(none)"): k for c, k in sorted(codes.items())
            }

        numbers = np.zeros(119, dtype=np.int64)
        for a in range(0, self.n_atoms, 1 << 22):
            chunk = table.read("numbers", slice(a, min(a + (1 << 22), self.n_atoms)))
            numbers += np.bincount(chunk, minlength=119)[:119]
        natoms = self.column("natoms")
        iterations = Counter(self.column("iteration").tolist())
        return {
            "path": str(self.path),
            "format_version": self.format_version,
            "configs": n,
            "atoms": self.n_atoms,
            "natoms": {
                "min": int(natoms.min()) if n else 0,
                "max": int(natoms.max()) if n else 0,
                "mean": float(natoms.mean()) if n else 0.0,
            },
            "elements": {chemical_symbols[z]: int(numbers[z]) for z in np.flatnonzero(numbers)},
            "config_types": counts("config_type"),
            "labels": {
                label: int(self.column(f"has_{label}").sum())
                for label in ("energy", "forces", "stress")
            },
            "sources": counts("source"),
            "reasons": counts("reason"),
            "calculators": counts("calculator"),
            "iterations": {
                ("(none)" if it < 0 else str(it)): k for it, k in sorted(iterations.items())
            },
            "failures": self._lengths(FAILURES.name)[ROWS],
            "models": self._lengths(MODELS.name)[ROWS],
            "last_commit": self._commit.get("updated"),
            "size_bytes": disk_usage(self.path),
        }


def _as_codes(values: Any) -> list:
    """A filter value as a list of options."""
    if values is None:
        return []
    if isinstance(values, (str, int, np.integer)):
        return [values]
    return list(values)


def _gather(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(start[i], start[i] + count[i])`` over ``i``."""
    start = np.asarray(start, dtype=np.int64)
    count = np.asarray(count, dtype=np.int64)
    offsets = np.repeat(start - (np.cumsum(count) - count), count)
    return offsets + np.arange(int(count.sum()), dtype=np.int64)


def open_store(path: str | os.PathLike, mode: Mode = "r", *, durable: bool = True) -> TrainingStore:
    """Open (or create) a training store.

    Parameters
    ----------
    path : str or path-like
        Store directory.
    mode : {"r", "a", "w"}
        ``"r"`` read only (no lock, never writes); ``"a"`` read/write, creating the
        store if ``path`` does not exist or is an empty directory; ``"w"`` create a new
        store (refused if one exists: a store is never overwritten).
    durable : bool, default True
        ``fsync`` data before each commit so commits also survive power loss (process
        crashes are survived either way).

    Returns
    -------
    TrainingStore
        Usable as a context manager; writers hold a lock until :meth:`close`.

    Raises
    ------
    StoreError
        ``path`` is not an aceal store (nothing is written), or mode ``"w"`` on an
        existing store.
    StoreVersionError
        The store was written by a newer aceal.
    StoreLockedError
        Another live process has the store open for writing.
    """
    if mode not in ("r", "a", "w"):
        raise AcealInputError(f"mode must be 'r', 'a' or 'w', got {mode!r}")
    return TrainingStore(Path(path), mode, durable)
