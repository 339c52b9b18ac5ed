"""Campaign state on disk, without pickle (unpickling runs code and breaks on class renames).

Format, in the campaign's output directory:

* ``state.json``: ``{"format": "aceal-campaign-state", "format_version": 1,
  "arrays": "state-<generation>.npz", "arrays_sha256": ..., "state": <tree>}``;
* ``state-<generation>.npz``: every ndarray of the tree (``np.savez``, read with
  ``allow_pickle=False``).

The tree is plain JSON (floats written by ``repr``, so bit exact; NaN/inf allowed) with
tagged nodes: ``{"__array__": key}`` (an array in the npz); ``{"__atoms__": {...}}`` (all
per-atom arrays, cell, pbc, info, constraints as ``todict()``; no calculator allowed);
``{"__dict__": [[k, v], ...]}`` (a dict with non-string or reserved keys, so int keys
survive); ``{"__type__": name, "fields": {...}}`` (a dataclass of :data:`TYPES`, whose
stable names are independent of the Python class names; nothing else is ever built).
Tuples come back as lists, numpy scalars as Python numbers.

Crash safety (a SIGKILL at any instant leaves the old or the new complete state): save
writes the npz under a new generation number atomically, then ``state.json`` atomically
naming it and its sha256, then deletes the other generations and temporaries of killed
writers.  Load verifies the hash and changes nothing on disk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.constraints import dict2constraint

from aceal.active_set import ActiveSetInverse
from aceal.errors import AcealInputError
from aceal.loop.walker import ModelBundle, WalkerState
from aceal.store.atomic import TMP_SUFFIX, fsync_dir, write_atomic

__all__ = ["STATE_FILE", "FORMAT_VERSION", "save_state", "load_state", "has_state"]

STATE_FILE = "state.json"
LEGACY_FILE = "state.pkl"
FORMAT = "aceal-campaign-state"
FORMAT_VERSION = 1
#: stable on-disk names of the dataclasses the state may hold (never rename these strings)
TYPES: dict[str, type] = {"WalkerState": WalkerState, "ModelBundle": ModelBundle,
                          "ActiveSetInverse": ActiveSetInverse}
_NAMES = {cls: name for name, cls in TYPES.items()}
_TAGS = ("__array__", "__atoms__", "__dict__", "__type__")
_NPZ = re.compile(r"state-(\d+)\.npz")


def _encode(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    """JSON tree of ``obj``; its arrays are added to ``arrays``."""
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj)
    if isinstance(obj, list | tuple):
        return [_encode(v, arrays) for v in obj]
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise ValueError("campaign state: object arrays cannot be stored")
        key = f"a{len(arrays)}"
        arrays[key] = obj
        return {"__array__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and k not in _TAGS for k in obj):
            return {k: _encode(v, arrays) for k, v in obj.items()}
        for k in obj:
            if not isinstance(k, str | int | float | np.integer | np.floating | None):
                raise ValueError(f"campaign state: dict key {k!r} cannot be stored")
        return {"__dict__": [[_encode(k, arrays), _encode(v, arrays)] for k, v in obj.items()]}
    if isinstance(obj, Atoms):
        if obj.calc is not None:
            raise ValueError("campaign state: Atoms with a calculator cannot be stored")
        return {"__atoms__": {
            "arrays": {k: _encode(v, arrays) for k, v in obj.arrays.items()},
            "cell": obj.cell.array.tolist(), "pbc": [bool(p) for p in obj.pbc],
            "celldisp": np.asarray(obj.get_celldisp(), float).ravel().tolist(),
            "info": _encode(obj.info, arrays),
            "constraints": [_encode(c.todict(), arrays) for c in obj.constraints]}}
    if type(obj) in _NAMES:
        fields = {f.name: _encode(getattr(obj, f.name), arrays) for f in dataclasses.fields(obj)}
        return {"__type__": _NAMES[type(obj)], "fields": fields}
    raise ValueError(f"campaign state: cannot store a {type(obj).__name__}")


def _decode(node: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Inverse of :func:`_encode`."""
    if isinstance(node, list):
        return [_decode(v, arrays) for v in node]
    if not isinstance(node, dict):
        return node
    tags = [t for t in _TAGS if t in node]
    if not tags:
        return {k: _decode(v, arrays) for k, v in node.items()}
    tag = tags[0]
    if set(node) != ({"__type__", "fields"} if tag == "__type__" else {tag}):
        raise ValueError(f"malformed {tag} node")
    if tag == "__array__":
        return arrays[node[tag]]
    if tag == "__dict__":
        return {_decode(k, arrays): _decode(v, arrays) for k, v in node[tag]}
    if tag == "__type__":
        if node[tag] not in TYPES:
            raise ValueError(f"unknown type {node[tag]!r}")
        return TYPES[node[tag]](**_decode(node["fields"], arrays))
    spec = node[tag]
    atoms = Atoms(cell=spec["cell"], pbc=spec["pbc"], celldisp=spec["celldisp"])
    atoms.arrays.clear()
    atoms.arrays.update({k: _decode(v, arrays) for k, v in spec["arrays"].items()})
    if "numbers" not in atoms.arrays or "positions" not in atoms.arrays:
        raise ValueError("Atoms without numbers or positions")
    atoms.info = _decode(spec["info"], arrays)
    atoms.set_constraint([dict2constraint(_decode(c, arrays)) for c in spec["constraints"]])
    return atoms


def _generations(directory: Path) -> dict[int, Path]:
    """``{generation: path}`` of the npz files in ``directory``."""
    found = {}
    for path in directory.glob("state-*.npz"):
        match = _NPZ.fullmatch(path.name)
        if match:
            found[int(match.group(1))] = path
    return found


def _clean(directory: Path, keep: str) -> None:
    """Delete npz generations other than ``keep`` and temporaries of killed writers.

    Only the writer calls this (after its own save): a reader never deletes anything,
    so a look at the state while the campaign runs cannot remove a file being written.
    """
    for path in _generations(directory).values():
        if path.name != keep:
            path.unlink(missing_ok=True)
    for tmp in directory.glob(f".state*{TMP_SUFFIX}"):
        tmp.unlink(missing_ok=True)


def has_state(directory: str | Path) -> bool:
    """Whether ``directory`` holds a campaign state (``state.json`` or a legacy pickle)."""
    directory = Path(directory)
    return (directory / STATE_FILE).is_file() or (directory / LEGACY_FILE).is_file()


def save_state(directory: str | Path, state: dict) -> None:
    """Write ``state`` crash-safely; ValueError if it holds something not storable."""
    directory = Path(directory)
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(state, arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    directory.mkdir(parents=True, exist_ok=True)
    name = f"state-{max(_generations(directory), default=0) + 1}.npz"
    write_atomic(directory / name, data, durable=True)
    fsync_dir(directory)
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "arrays": name,
           "arrays_sha256": hashlib.sha256(data).hexdigest(), "state": tree}
    write_atomic(directory / STATE_FILE, json.dumps(doc, allow_nan=True).encode(), durable=True)
    fsync_dir(directory)
    _clean(directory, name)


def load_state(directory: str | Path) -> dict | None:
    """The saved state, or None if there is none; AcealInputError if it cannot be read."""
    directory = Path(directory)
    path = directory / STATE_FILE
    fresh = "move the directory away or use another output directory to start a new campaign"
    if not path.is_file():
        if (directory / LEGACY_FILE).is_file():
            raise AcealInputError(
                f"{directory / LEGACY_FILE}: campaign state written by an older aceal as a "
                "pickle; it is not loaded because unpickling runs code; resume it with the "
                f"aceal version that wrote it, or {fresh}")
        return None

    def bad(what: str) -> AcealInputError:
        return AcealInputError(f"{path}: {what}; {fresh}".replace("\n", " "))

    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise bad(f"unreadable campaign state ({err})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise bad("not an aceal campaign state")
    if doc.get("format_version") != FORMAT_VERSION:
        raise AcealInputError(
            f"{path}: campaign state format version {doc.get('format_version')!r} (written by "
            f"another aceal version); this aceal reads version {FORMAT_VERSION}; resume it with "
            f"the aceal version that wrote it, or {fresh}")
    name = doc.get("arrays")
    if not isinstance(name, str) or not _NPZ.fullmatch(name):
        raise bad(f"invalid arrays file name {name!r}")
    try:
        data = (directory / name).read_bytes()
    except OSError:
        raise bad(f"its arrays file {name} is missing") from None
    if hashlib.sha256(data).hexdigest() != doc.get("arrays_sha256"):
        raise bad(f"its arrays file {name} does not match the recorded sha256")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        state = _decode(doc["state"], arrays)
    except Exception as err:
        raise bad(f"corrupt campaign state ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict):
        raise bad("corrupt campaign state (not a mapping)")
    return state
