"""Extended-XYZ import/export for the training store, and :func:`read_configurations`.

Export writes every float with ``repr`` (shortest exact representation), so reading
the file back with :func:`ase.io.read` reproduces energies, forces, stresses,
positions and cells bit for bit.  (ASE's own writer rounds per-atom columns to
8 decimals.)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.stress import voigt_6_to_full_3x3_stress

from aceal.errors import AcealInputError
from aceal.store.atomic import write_atomic
from aceal.store.probe import is_store
from aceal.store.records import Categories, encode_configs, extract_labels
from aceal.store.store import TrainingStore, open_store


def read_xyz(path: str | os.PathLike) -> list[Atoms]:
    """All frames of an extended-XYZ file.

    Raises
    ------
    AcealInputError
        The file is missing or cannot be parsed (message names the file).
    """
    from aceal import aseio

    path = Path(path)
    if not path.is_file():
        raise AcealInputError(f"{path}: file not found")
    try:
        images = aseio.read(path, format="extxyz")
    except Exception as err:  # ase raises many kinds for malformed input
        raise AcealInputError(f"{path}: cannot read as extended XYZ ({err})") from None
    return list(images)


def _read_file(path: Path, index: Any) -> list[Atoms]:
    if path.suffix in (".xyz", ".extxyz") and index == ":":
        return read_xyz(path)
    from aceal import aseio

    if not path.is_file():
        raise AcealInputError(f"{path}: file not found")
    try:
        return aseio.read(path, index=index)
    except Exception as err:  # ase raises many kinds for malformed input
        raise AcealInputError(f"{path}: cannot read configurations ({err})") from None


def load_for_import(
    paths: Sequence[str | os.PathLike],
    *,
    config_type: str | None = None,
    energy_key: str | None = None,
    forces_key: str | None = None,
    stress_key: str | None = None,
    require: Sequence[str] = ("energy",),
) -> list[Atoms]:
    """Read extended-XYZ files and validate every frame as :meth:`append` would.

    ``source`` and ``reason`` default to ``"import"`` where a frame has none.  Call
    this before opening (and so perhaps creating) a store, so that bad input leaves
    no trace.  Parameters are those of :func:`import_xyz`.

    Raises
    ------
    AcealInputError
        A file cannot be read or a frame is invalid (message names the files).
    """
    images = []
    for path in paths:
        for atoms in read_xyz(path):
            atoms.info.setdefault("source", "import")
            atoms.info.setdefault("reason", "import")
            images.append(atoms)
    try:
        encode_configs(
            images,
            Categories({}),
            require=require,
            keys={"energy": energy_key, "forces": forces_key, "stress": stress_key},
            overrides={"config_type": config_type},
        )
    except AcealInputError as err:
        names = ", ".join(str(p) for p in paths)
        raise AcealInputError(f"{names}: {err}") from None
    return images


def import_xyz(
    store: TrainingStore,
    paths: Sequence[str | os.PathLike],
    *,
    config_type: str | None = None,
    energy_key: str | None = None,
    forces_key: str | None = None,
    stress_key: str | None = None,
    require: Sequence[str] = ("energy",),
) -> int:
    """Append all frames of the given files to ``store`` in one commit.

    Frames keep the ``info`` keys the store knows (config_type, weight, provenance)
    and any other JSON-serialisable ones; ``source`` and ``reason`` default to
    ``"import"``.  Everything is read and validated before anything is written.

    Parameters
    ----------
    store : TrainingStore
        Open for writing.
    paths : sequence of path
        Extended-XYZ files.
    config_type : str, optional
        Overrides the frames' ``config_type``.
    energy_key, forces_key, stress_key : str, optional
        ``info``/``arrays`` keys holding the labels (default: the calculator results
        ASE attaches for ``energy``, ``forces`` and ``stress``).
    require : sequence of str
        Labels every frame must have.

    Returns
    -------
    int
        Number of configurations appended.
    """
    options = {
        "config_type": config_type,
        "energy_key": energy_key,
        "forces_key": forces_key,
        "stress_key": stress_key,
        "require": require,
    }
    images = load_for_import(paths, **options)
    store.append(images, **options)
    return len(images)


def _fmt(values: Iterable[float]) -> str:
    return " ".join(repr(float(v)) for v in values)


def frame_text(atoms: Atoms) -> str:
    """One extended-XYZ frame with exact (``repr``) floats.

    Labels are taken from the calculator results (never computed); ``info`` entries
    are written as ASE does (nested values as ``_JSON``).
    """
    from ase.io.extxyz import key_val_dict_to_str

    energy, forces, stress = extract_labels(atoms)
    props = "species:S:1:pos:R:3" + (":forces:R:3" if forces is not None else "")
    head = []
    if atoms.cell.any():
        head.append(f'Lattice="{_fmt(atoms.cell.array.reshape(9))}"')
    head.append(f"Properties={props}")
    info: dict[str, Any] = {}
    if energy is not None:
        info["energy"] = float(energy)
    if stress is not None:
        info["stress"] = voigt_6_to_full_3x3_stress(stress)
    info.update(
        {k: v for k, v in atoms.info.items() if k not in ("energy", "stress", "forces", "pbc")}
    )
    info["pbc"] = atoms.pbc
    head.append(key_val_dict_to_str(info))
    lines = [str(len(atoms)), " ".join(head)]
    columns = [atoms.positions] + ([forces] if forces is not None else [])
    table = np.hstack(columns).tolist()
    for symbol, row in zip(atoms.get_chemical_symbols(), table, strict=True):
        lines.append(f"{symbol} {_fmt(row)}")
    return "\n".join(lines) + "\n"


def write_xyz(path: str | os.PathLike, images: Iterable[Atoms], *, overwrite: bool = False) -> int:
    """Write frames to ``path`` atomically (the file appears complete or not at all).

    Parameters
    ----------
    path : path
        Output file.
    images : iterable of Atoms
        Frames.
    overwrite : bool
        Replace an existing file (refused by default).

    Returns
    -------
    int
        Number of frames written.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise AcealInputError(f"{path} exists; refusing to overwrite (use --force)")
    count = 0
    parts = []
    for atoms in images:
        parts.append(frame_text(atoms))
        count += 1
    write_atomic(path, "".join(parts).encode("utf-8"), durable=True)
    return count


def export_xyz(
    store: TrainingStore,
    path: str | os.PathLike,
    *,
    config_type: str | Sequence[str] | None = None,
    iteration: int | Sequence[int] | None = None,
    source: str | Sequence[str] | None = None,
    overwrite: bool = False,
) -> int:
    """Write (a filtered subset of) the store's configurations to extended XYZ.

    Returns
    -------
    int
        Number of configurations written.
    """
    view = store.filter(config_type=config_type, iteration=iteration, source=source)

    def frames() -> Iterable[Atoms]:
        for chunk in view.iter_chunks():
            yield from chunk

    return write_xyz(path, frames(), overwrite=overwrite)


def _matches(value: Any, wanted: Any) -> bool:
    if wanted is None:
        return True
    options = [wanted] if isinstance(wanted, (str, int)) else list(wanted)
    return value in options


def read_configurations(
    path_or_store: str | os.PathLike | TrainingStore,
    /,
    index: Any = ":",
    *,
    config_type: str | Sequence[str] | None = None,
    iteration: int | Sequence[int] | None = None,
    source: str | Sequence[str] | None = None,
    require: Sequence[str] = (),
) -> list[Atoms]:
    """Configurations from a training store or a structure file: the one reader of
    labelled data in aceal (``aceal fit``, the campaign, ``aceal data``).

    A store can be given wherever a file is accepted.  Filters apply to ``info`` entries
    of file frames the same way.

    Parameters
    ----------
    path_or_store : path or TrainingStore
        A store directory, an open store, or a file: extended XYZ (``.xyz``, ``.extxyz``,
        read with exact floats) or any other format ASE reads.
    index
        ASE frame index of a file (default all); ignored for stores.
    config_type, source : str or sequence of str, optional
        Keep only these.
    iteration : int or sequence of int, optional
        Keep only these iterations.
    require : sequence of str
        Labels (energy, forces, stress) every returned configuration must have.

    Returns
    -------
    list of Atoms
        With a ``SinglePointCalculator`` holding the labels.
    """
    if isinstance(path_or_store, TrainingStore):
        images = path_or_store.filter(config_type=config_type, iteration=iteration, source=source)[
            :
        ]
    elif is_store(path_or_store):
        with open_store(path_or_store, "r") as store:
            images = store.filter(config_type=config_type, iteration=iteration, source=source)[:]
    else:
        path = Path(path_or_store)
        if path.is_dir():
            open_store(path, "r")  # raises the store's explanation of what is wrong
        images = [
            a
            for a in _read_file(path, index)
            if _matches(a.info.get("config_type"), config_type)
            and _matches(a.info.get("iteration"), iteration)
            and _matches(a.info.get("source"), source)
        ]
    for i, atoms in enumerate(images):
        labels = dict(zip(("energy", "forces", "stress"), extract_labels(atoms), strict=True))
        missing = [name for name in require if labels.get(name) is None]
        if missing:
            raise AcealInputError(
                f"{path_or_store}: configuration {i} has no {' or '.join(missing)}"
            )
    return images
