"""Conversion between ASE ``Atoms`` and the column arrays of the store.

:func:`encode_configs` validates a whole batch before anything is written and turns it
into one array per column; :func:`decode_configs` does the reverse.  Missing labels are
NaN with a ``has_<label>`` flag of ``False`` and come back as absent (never as zeros).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import full_3x3_to_voigt_6_stress

from aceal.errors import AcealInputError
from aceal.store.schema import CATEGORY_COLUMNS, LABELS, SELECTION_FIELDS

#: ``atoms.info`` keys that hold provenance (read on append, written on read)
PROVENANCE_KEYS: tuple[str, ...] = (
    "source",
    "rank",
    "reason",
    "iteration",
    "calculator",
    "wall_time",
    "timestamp",
    "selection",
)
#: ``atoms.info`` keys with a column of their own (everything else JSON-able is kept
#: in the ``info_extra`` text column)
KNOWN_INFO_KEYS: frozenset[str] = frozenset(
    ("config_type", "weight", *PROVENANCE_KEYS, *LABELS, "free_energy")
)


class Categories:
    """String <-> integer code tables for the categorical columns.

    Parameters
    ----------
    tables : mapping
        ``{column: [name, ...]}`` as stored in the commit marker.
    """

    def __init__(self, tables: Mapping[str, Sequence[str]]) -> None:
        self.tables = {col: list(tables.get(col, [])) for col in CATEGORY_COLUMNS}

    def copy(self) -> Categories:
        """An independent copy (appends work on a copy until they commit)."""
        return Categories(self.tables)

    def code(self, column: str, value: str | None) -> int:
        """Code of ``value`` in ``column``, adding it if new; ``None`` -> -1."""
        if value is None:
            return -1
        table = self.tables[column]
        try:
            return table.index(value)
        except ValueError:
            table.append(value)
            return len(table) - 1

    def lookup(self, column: str, value: str) -> int | None:
        """Code of an existing ``value`` (``None`` if never stored)."""
        table = self.tables[column]
        return table.index(value) if value in table else None

    def name(self, column: str, code: int) -> str | None:
        """The string for ``code`` (``None`` for -1)."""
        return None if code < 0 else self.tables[column][int(code)]

    def as_dict(self) -> dict[str, list[str]]:
        """Plain dict for the commit marker."""
        return {col: list(v) for col, v in self.tables.items()}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def to_json(value: Any, what: str) -> str:
    """Serialise ``value`` to JSON text or raise a clear input error."""
    try:
        return json.dumps(value, default=_json_default, allow_nan=True)
    except (TypeError, ValueError) as err:
        raise AcealInputError(f"{what}: cannot store as JSON ({err})") from None


def encode_text(values: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate UTF-8 texts; returns ``(bytes as uint8, nbytes per row)``."""
    blobs = [(v or "").encode("utf-8") for v in values]
    nbytes = np.array([len(b) for b in blobs], dtype=np.int64)
    return np.frombuffer(b"".join(blobs), dtype=np.uint8), nbytes


def decode_text(data: np.ndarray, nbytes: np.ndarray) -> list[str]:
    """Inverse of :func:`encode_text` (``data`` holds exactly these rows' bytes)."""
    raw = np.asarray(data, dtype=np.uint8).tobytes()
    ends = np.cumsum(nbytes)
    starts = ends - nbytes
    return [raw[a:b].decode("utf-8") for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


def starts_from_counts(counts: np.ndarray, base: int) -> np.ndarray:
    """Offsets of consecutive blocks of the given sizes, beginning at ``base``."""
    counts = np.asarray(counts, dtype=np.int64)
    return base + np.cumsum(counts) - counts


# --------------------------------------------------------------------------------------
# scalar checks
# --------------------------------------------------------------------------------------


def _where(index: int, total: int) -> str:
    return f"configuration {index} (of {total} in this batch)"


def _opt_str(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        value = str(value)  # e.g. config_type=1 parsed as a number from extended XYZ
    if not isinstance(value, str) or not value:
        raise AcealInputError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _opt_int(value: Any, what: str) -> int:
    """Non-negative int, or -1 for ``None``."""
    if value is None:
        return -1
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise AcealInputError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


def _opt_float(value: Any, what: str, *, nonnegative: bool = False) -> float:
    """Finite float, or NaN for ``None``."""
    if value is None:
        return math.nan
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise AcealInputError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(out) or (nonnegative and out < 0):
        kind = "a finite non-negative" if nonnegative else "a finite"
        raise AcealInputError(f"{what} must be {kind} number, got {value!r}")
    return out


def _pick(override: Any, info: Mapping[str, Any], key: str) -> Any:
    return override if override is not None else info.get(key)


# --------------------------------------------------------------------------------------
# labels
# --------------------------------------------------------------------------------------


def _results(atoms: Atoms) -> Mapping[str, Any]:
    calc = atoms.calc
    results = getattr(calc, "results", None) if calc is not None else None
    return results if isinstance(results, Mapping) else {}


def extract_labels(
    atoms: Atoms,
    energy_key: str | None = None,
    forces_key: str | None = None,
    stress_key: str | None = None,
) -> tuple[float | None, np.ndarray | None, np.ndarray | None]:
    """Energy (eV), forces (eV/Å, shape (N, 3)) and Voigt stress (eV/Å³) of ``atoms``.

    With a key of ``None`` the calculator results are used, then ``atoms.info`` /
    ``atoms.arrays`` under the standard name; with a key, that ``info``/``arrays``
    entry (or the calculator result of that name).  Absent labels are ``None``; no
    calculation is ever triggered.
    """
    results = _results(atoms)

    def find(name: str, key: str | None, store: Mapping[str, Any]) -> Any:
        key = key or name
        if key in results:
            return results[key]
        return store.get(key)

    energy = find("energy", energy_key, atoms.info)
    forces = find("forces", forces_key, atoms.arrays)
    stress = find("stress", stress_key, atoms.info)
    if energy is not None:
        energy = np.asarray(energy, dtype=np.float64)
        if energy.size != 1:
            raise AcealInputError(f"energy {energy_key or 'energy'!r} must be a scalar, got "
                                  f"shape {energy.shape}")
        energy = float(energy.reshape(()))
    if forces is not None:
        forces = np.asarray(forces, dtype=np.float64)
        if forces.shape != (len(atoms), 3):
            raise AcealInputError(f"forces {forces_key or 'forces'!r} must have shape "
                                  f"({len(atoms)}, 3), got {forces.shape}")
    if stress is not None:
        stress = np.asarray(stress, dtype=np.float64)
        if stress.shape == (9,):
            stress = stress.reshape(3, 3)
        if stress.shape == (3, 3):
            stress = full_3x3_to_voigt_6_stress(stress)
        if stress.shape != (6,):
            raise AcealInputError(f"stress {stress_key or 'stress'!r} must have 6 or 3x3 "
                                  f"components, got {stress.shape}")
    return energy, forces, stress


# --------------------------------------------------------------------------------------
# configurations
# --------------------------------------------------------------------------------------


def encode_configs(
    images: Sequence[Atoms],
    categories: Categories,
    *,
    require: Sequence[str] = ("energy",),
    keys: Mapping[str, str | None] | None = None,
    overrides: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> dict[str, np.ndarray]:
    """Validate a batch and turn it into column arrays of the ``configs`` table.

    Parameters
    ----------
    images : sequence of Atoms
        The configurations.
    categories : Categories
        Updated in place with new category names (pass a copy).
    require : sequence of str
        Labels every configuration must carry (subset of energy, forces, stress).
    keys : mapping, optional
        ``{"energy": key, "forces": key, "stress": key}`` for :func:`extract_labels`.
    overrides : mapping, optional
        Values that replace the per-configuration ``atoms.info`` entries
        (config_type, weight and the provenance keys); ``None`` entries are ignored.
    now : float, optional
        Timestamp (s since the epoch) for configurations that carry none.

    Returns
    -------
    dict
        One array per column; ``atom_start`` and the text ``*_start`` columns are
        relative to the batch (the caller adds the committed offsets).

    Raises
    ------
    AcealInputError
        Anything invalid; the message names the configuration.
    """
    unknown = set(require) - set(LABELS)
    if unknown:
        raise AcealInputError(f"require: unknown label(s) {sorted(unknown)}; know {LABELS}")
    keys = dict(keys or {})
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    now = time.time() if now is None else now
    total = len(images)
    n_atoms = np.array([len(a) if isinstance(a, Atoms) else 0 for a in images], dtype=np.int64)
    n_all = int(n_atoms.sum())

    out: dict[str, Any] = {
        "natoms": n_atoms,
        "numbers": np.empty(n_all, dtype=np.int16),
        "positions": np.empty((n_all, 3)),
        "forces": np.full((n_all, 3), np.nan),
        "cell": np.empty((total, 3, 3)),
        "pbc": np.empty((total, 3), dtype=bool),
        "energy": np.full(total, np.nan),
        "stress": np.full((total, 6), np.nan),
        "has_energy": np.zeros(total, dtype=bool),
        "has_forces": np.zeros(total, dtype=bool),
        "has_stress": np.zeros(total, dtype=bool),
        "weight": np.empty(total),
        "rank": np.empty(total, dtype=np.int32),
        "iteration": np.empty(total, dtype=np.int32),
        "wall_time": np.empty(total),
        "timestamp": np.empty(total),
        "selection": np.full((total, len(SELECTION_FIELDS)), np.nan),
        **{col: np.empty(total, dtype=np.int32) for col in CATEGORY_COLUMNS},
    }
    selection_extra: list[str | None] = []
    info_extra: list[str | None] = []
    used_keys = {k for k in keys.values() if k}

    start = 0
    for i, atoms in enumerate(images):
        where = _where(i, total)
        if not isinstance(atoms, Atoms):
            raise AcealInputError(f"{where}: expected ase.Atoms, got {type(atoms).__name__}")
        n = len(atoms)
        if n == 0:
            raise AcealInputError(f"{where}: has no atoms")
        numbers = atoms.numbers
        if numbers.min() < 1 or numbers.max() > 118:
            raise AcealInputError(f"{where}: atomic numbers must be 1..118")
        positions = np.asarray(atoms.positions, dtype=np.float64)
        cell = np.asarray(atoms.cell.array, dtype=np.float64)
        if not (np.isfinite(positions).all() and np.isfinite(cell).all()):
            raise AcealInputError(f"{where}: positions or cell not finite")
        try:
            energy, forces, stress = extract_labels(
                atoms, keys.get("energy"), keys.get("forces"), keys.get("stress")
            )
        except AcealInputError as err:
            raise AcealInputError(f"{where}: {err}") from None
        labels = {"energy": energy, "forces": forces, "stress": stress}
        for name, value in labels.items():
            if value is not None and not np.isfinite(value).all():
                raise AcealInputError(f"{where}: {name} is not finite")
        missing = [name for name in require if labels[name] is None]
        if missing:
            raise AcealInputError(
                f"{where}: has no {' or '.join(missing)} (pass require=() to store it "
                "unlabelled; nothing was written)"
            )
        sl = slice(start, start + n)
        out["numbers"][sl] = numbers
        out["positions"][sl] = positions
        out["cell"][i] = cell
        out["pbc"][i] = atoms.pbc
        if energy is not None:
            out["energy"][i], out["has_energy"][i] = energy, True
        if forces is not None:
            out["forces"][sl], out["has_forces"][i] = forces, True
        if stress is not None:
            out["stress"][i], out["has_stress"][i] = stress, True
        start += n

        info = atoms.info
        for col in CATEGORY_COLUMNS:
            value = _opt_str(_pick(overrides.get(col), info, col), f"{where}: {col}")
            out[col][i] = categories.code(col, value)
        weight = _pick(overrides.get("weight"), info, "weight")
        out["weight"][i] = (
            1.0 if weight is None else _opt_float(weight, f"{where}: weight", nonnegative=True)
        )
        out["rank"][i] = _opt_int(_pick(overrides.get("rank"), info, "rank"), f"{where}: rank")
        out["iteration"][i] = _opt_int(
            _pick(overrides.get("iteration"), info, "iteration"), f"{where}: iteration"
        )
        out["wall_time"][i] = _opt_float(
            _pick(overrides.get("wall_time"), info, "wall_time"),
            f"{where}: wall_time",
            nonnegative=True,
        )
        stamp = _pick(overrides.get("timestamp"), info, "timestamp")
        out["timestamp"][i] = now if stamp is None else _opt_float(stamp, f"{where}: timestamp")

        selection = _pick(overrides.get("selection"), info, "selection")
        extra_sel = None
        if selection is not None:
            if not isinstance(selection, Mapping):
                raise AcealInputError(f"{where}: selection must be a mapping")
            rest = {}
            for key, value in selection.items():
                if key in SELECTION_FIELDS:
                    if value is not None:
                        out["selection"][i, SELECTION_FIELDS.index(key)] = _opt_float(
                            value, f"{where}: selection[{key!r}]"
                        )
                else:
                    rest[key] = value
            if rest:
                extra_sel = to_json(rest, f"{where}: selection")
        selection_extra.append(extra_sel)

        rest_info = {
            k: v for k, v in info.items() if k not in KNOWN_INFO_KEYS and k not in used_keys
        }
        info_extra.append(to_json(rest_info, f"{where}: info") if rest_info else None)

    out["atom_start"] = starts_from_counts(n_atoms, 0)
    for name, texts in (("selection_extra", selection_extra), ("info_extra", info_extra)):
        data, nbytes = encode_text(texts)
        out[name], out[f"{name}_nbytes"] = data, nbytes
        out[f"{name}_start"] = starts_from_counts(nbytes, 0)
    return out


def decode_configs(
    rows: Mapping[str, np.ndarray],
    atoms: Mapping[str, np.ndarray],
    texts: Mapping[str, list[str]],
    categories: Categories,
) -> list[Atoms]:
    """Build ``Atoms`` from column arrays of consecutive (or gathered) rows.

    Parameters
    ----------
    rows : mapping
        Row columns of the selected configurations.
    atoms : mapping
        ``numbers``, ``positions``, ``forces`` of exactly these configurations,
        concatenated in row order.
    texts : mapping
        Decoded ``selection_extra`` and ``info_extra`` strings per row.
    categories : Categories
        Code tables.
    """
    images = []
    ends = np.cumsum(rows["natoms"])
    starts = ends - rows["natoms"]
    for i in range(len(rows["natoms"])):
        sl = slice(int(starts[i]), int(ends[i]))
        image = Atoms(
            numbers=atoms["numbers"][sl].astype(np.int64),
            positions=atoms["positions"][sl],
            cell=rows["cell"][i],
            pbc=rows["pbc"][i],
        )
        results = {}
        if rows["has_energy"][i]:
            results["energy"] = float(rows["energy"][i])
        if rows["has_forces"][i]:
            results["forces"] = atoms["forces"][sl].copy()
        if rows["has_stress"][i]:
            results["stress"] = rows["stress"][i].copy()
        if results:
            image.calc = SinglePointCalculator(image, **results)

        info: dict[str, Any] = {}
        extra = texts["info_extra"][i]
        if extra:
            info.update(json.loads(extra))
        for col in ("config_type", "source", "reason", "calculator"):
            name = categories.name(col, int(rows[col][i]))
            if name is not None:
                info[col] = name
        info["weight"] = float(rows["weight"][i])
        for col in ("rank", "iteration"):
            if rows[col][i] >= 0:
                info[col] = int(rows[col][i])
        for col in ("wall_time", "timestamp"):
            if np.isfinite(rows[col][i]):
                info[col] = float(rows[col][i])
        selection = {
            key: float(v)
            for key, v in zip(SELECTION_FIELDS, rows["selection"][i], strict=True)
            if np.isfinite(v)
        }
        if texts["selection_extra"][i]:
            selection.update(json.loads(texts["selection_extra"][i]))
        if selection:
            info["selection"] = selection
        image.info = info
        images.append(image)
    return images


# --------------------------------------------------------------------------------------
# failures and models
# --------------------------------------------------------------------------------------


def encode_failure(
    atoms: Atoms,
    categories: Categories,
    *,
    reason: str,
    iteration: int | None,
    source: str | None,
    rank: int | None,
    calculator: str | None,
    timestamp: float | None,
) -> dict[str, np.ndarray]:
    """Columns of one ``failures`` row (relative offsets, see :func:`encode_configs`)."""
    if not isinstance(atoms, Atoms) or len(atoms) == 0:
        raise AcealInputError("failure: expected a non-empty ase.Atoms")
    text, nbytes = encode_text([str(reason)])
    n = len(atoms)
    return {
        "atom_start": np.zeros(1, dtype=np.int64),
        "natoms": np.array([n]),
        "cell": atoms.cell.array[None].astype(np.float64),
        "pbc": atoms.pbc[None].copy(),
        "numbers": atoms.numbers.astype(np.int16),
        "positions": np.asarray(atoms.positions, dtype=np.float64),
        "iteration": np.array([_opt_int(iteration, "failure: iteration")]),
        "source": np.array([categories.code("source", _opt_str(source, "failure: source"))]),
        "rank": np.array([_opt_int(rank, "failure: rank")]),
        "calculator": np.array(
            [categories.code("calculator", _opt_str(calculator, "failure: calculator"))]
        ),
        "timestamp": np.array(
            [time.time() if timestamp is None else _opt_float(timestamp, "failure: timestamp")]
        ),
        "reason": text,
        "reason_nbytes": nbytes,
        "reason_start": np.zeros(1, dtype=np.int64),
    }


def encode_model(
    text: str, iteration: int | None, metrics: Mapping[str, Any] | None, timestamp: float | None
) -> dict[str, np.ndarray]:
    """Columns of one ``models`` row (relative offsets)."""
    if not isinstance(text, str):
        raise AcealInputError(f"model text must be str, got {type(text).__name__}")
    body, body_n = encode_text([text])
    met, met_n = encode_text([to_json(dict(metrics or {}), "model metrics")])
    return {
        "iteration": np.array([_opt_int(iteration, "model iteration")]),
        "timestamp": np.array(
            [time.time() if timestamp is None else _opt_float(timestamp, "model timestamp")]
        ),
        "text": body,
        "text_nbytes": body_n,
        "text_start": np.zeros(1, dtype=np.int64),
        "metrics": met,
        "metrics_nbytes": met_n,
        "metrics_start": np.zeros(1, dtype=np.int64),
    }
