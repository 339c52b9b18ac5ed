"""On-disk layout of an aceal training store (format version 1).

A store is a zarr (format 3) group on the local file system::

    STORE/
      zarr.json            root group; attributes hold the format header and the
                           commit marker (see below)
      configs/             labelled configurations (training data)
      failures/            failed reference calculations (never training data)
      models/              model files fitted during a campaign
      .aceal-writer.lock   present while a writer has the store open

Every table is a set of 1-D or N-D arrays that share a leading axis.  Three kinds of
axis exist:

``rows``
    one entry per record (configuration, failure, model);
``atoms``
    per-atom arrays of all records concatenated; record ``i`` owns
    ``[atom_start[i], atom_start[i] + natoms[i])``;
a text axis
    UTF-8 bytes of one variable-length text column, concatenated; record ``i`` owns
    ``[<col>_start[i], <col>_start[i] + <col>_nbytes[i])``.

Arrays may be longer than the committed lengths (an append in progress, or one that
was interrupted); everything past the commit marker is ignored by readers and
trimmed by the next writer.  Units: Å, eV, eV/Å, eV/Å³ (stress, ASE Voigt order
xx yy zz yz xz xy, ASE sign convention), seconds (wall time), seconds since the Unix
epoch (timestamps).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: written into every store; stores with a larger number are refused
FORMAT_VERSION = 1
#: value of the ``format`` field of the header attribute
FORMAT_NAME = "aceal-training-store"
#: root attribute holding ``{"format", "format_version", "created", "aceal_version"}``
HEADER_ATTR = "aceal_store"
#: root attribute holding the commit marker (committed lengths and category tables)
COMMIT_ATTR = "aceal_commit"
#: root attribute present only while a store is being created
CREATING_ATTR = "aceal_store_creating"
#: name of the writer lock file inside the store directory
LOCK_NAME = ".aceal-writer.lock"

#: fixed float fields recorded at selection time (NaN when absent)
#: ``uncertainty``: the scalar the selector thresholded (its own units);
#: ``energy_std``: committee/ensemble energy spread (eV/atom);
#: ``force_std_max``: largest per-atom force spread (eV/Å);
#: ``gamma_max``: largest extrapolation grade (dimensionless);
#: ``indicator``: rare-event indicator value (its own units).
SELECTION_FIELDS: tuple[str, ...] = (
    "uncertainty",
    "energy_std",
    "force_std_max",
    "gamma_max",
    "indicator",
)

#: string columns stored as integer codes into a category list kept in the commit
#: marker (code -1 means missing)
CATEGORY_COLUMNS: tuple[str, ...] = ("config_type", "source", "reason", "calculator")

#: properties a configuration may carry, each with a ``has_<name>`` mask
LABELS: tuple[str, ...] = ("energy", "forces", "stress")

ROWS = "rows"
ATOMS = "atoms"

ROW_CHUNK = 4096
ATOM_CHUNK = 16384
TEXT_CHUNK = 1 << 20


@dataclass(frozen=True)
class Column:
    """One zarr array of a table.

    Parameters
    ----------
    name : str
        Array name inside the table group.
    dtype : str
        NumPy dtype string.
    tail : tuple of int
        Shape after the leading axis.
    axis : str
        ``"rows"``, ``"atoms"`` or the name of a text column (its byte axis).
    fill : float, int or bool
        Fill value; floats use NaN so that "missing" is never confused with zero.
    """

    name: str
    dtype: str
    tail: tuple[int, ...] = ()
    axis: str = ROWS
    fill: float | int | bool = np.nan

    @property
    def chunk(self) -> int:
        """Chunk length along the leading axis."""
        if self.axis == ROWS:
            return ROW_CHUNK
        if self.axis == ATOMS:
            return ATOM_CHUNK
        return TEXT_CHUNK


def _f8(name: str, tail: tuple[int, ...] = (), axis: str = ROWS) -> Column:
    return Column(name, "float64", tail, axis, np.nan)


def _i4(name: str) -> Column:
    return Column(name, "int32", (), ROWS, -1)


def _i8(name: str) -> Column:
    return Column(name, "int64", (), ROWS, -1)


def _b1(name: str, tail: tuple[int, ...] = ()) -> Column:
    return Column(name, "bool", tail, ROWS, False)


def _text(name: str) -> list[Column]:
    """A variable-length UTF-8 text column: its bytes plus per-row start/length."""
    return [
        Column(name, "uint8", (), name, 0),
        _i8(f"{name}_start"),
        _i8(f"{name}_nbytes"),
    ]


def _structure() -> list[Column]:
    return [
        _i8("atom_start"),
        _i8("natoms"),
        _f8("cell", (3, 3)),
        _b1("pbc", (3,)),
        Column("numbers", "int16", (), ATOMS, 0),
        _f8("positions", (3,), ATOMS),
    ]


@dataclass(frozen=True)
class TableSpec:
    """Columns of one table and the axes they live on."""

    name: str
    columns: tuple[Column, ...]

    @property
    def axes(self) -> tuple[str, ...]:
        """Axis names in a fixed order (``rows`` first)."""
        seen: list[str] = []
        for col in self.columns:
            if col.axis not in seen:
                seen.append(col.axis)
        return tuple(seen)

    @property
    def text_columns(self) -> tuple[str, ...]:
        """Names of the variable-length text columns."""
        return tuple(ax for ax in self.axes if ax not in (ROWS, ATOMS))

    def column(self, name: str) -> Column:
        """Look a column up by name."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


CONFIGS = TableSpec(
    "configs",
    tuple(
        _structure()
        + [
            _f8("energy"),
            _f8("forces", (3,), ATOMS),
            _f8("stress", (6,)),
            _b1("has_energy"),
            _b1("has_forces"),
            _b1("has_stress"),
            _f8("weight"),
            *(_i4(name) for name in CATEGORY_COLUMNS),
            _i4("rank"),
            _i4("iteration"),
            _f8("wall_time"),
            _f8("timestamp"),
            _f8("selection", (len(SELECTION_FIELDS),)),
            *_text("selection_extra"),
            *_text("info_extra"),
        ]
    ),
)

FAILURES = TableSpec(
    "failures",
    tuple(
        _structure()
        + [
            _i4("iteration"),
            _i4("source"),
            _i4("rank"),
            _i4("calculator"),
            _f8("timestamp"),
            *_text("reason"),
        ]
    ),
)

MODELS = TableSpec(
    "models",
    tuple(
        [
            _i4("iteration"),
            _f8("timestamp"),
            *_text("text"),
            *_text("metrics"),
        ]
    ),
)

TABLES: tuple[TableSpec, ...] = (CONFIGS, FAILURES, MODELS)


def empty_commit() -> dict:
    """Commit marker of a freshly created store (nothing committed)."""
    return {
        "serial": 0,
        "lengths": {spec.name: dict.fromkeys(spec.axes, 0) for spec in TABLES},
        "categories": {name: [] for name in CATEGORY_COLUMNS},
    }
