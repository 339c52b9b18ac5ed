"""Reading labelled configurations: extended XYZ (via ASE) or an aceal zarr store.

Labels are looked up by configurable keys.  For each of energy, forces and stress the
key is searched in ``atoms.info`` / ``atoms.arrays`` first and then in the results of the
attached calculator (where ASE puts ``energy``, ``forces`` and ``stress`` of an extended
XYZ file).  A configuration missing a label is fitted on the labels it has.

Units: energy eV, forces eV/Å, stress eV/Å³ in ASE's sign convention and Voigt order
(xx, yy, zz, yz, xz, xy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from aceal.errors import AcealInputError

__all__ = ["Keys", "Labels", "read_configurations", "get_labels", "nearest_neighbour_distance"]


@dataclass(frozen=True)
class Keys:
    """Where the labels of a configuration live (info/arrays key or calculator result)."""

    energy: str = "energy"
    forces: str = "forces"
    stress: str = "stress"
    config_type: str = "config_type"
    weight: str = "weight"


@dataclass
class Labels:
    """Reference labels of one configuration (``None`` where absent).

    Attributes
    ----------
    energy
        Total energy, eV.
    forces
        ``(N, 3)`` forces, eV/Å.
    stress
        ``(6,)`` stress, eV/Å³ (Voigt, ASE sign); only for fully periodic cells.
    config_type
        Group name (``"default"`` if absent).
    weight
        Per-configuration weight factor (1 if absent).
    """

    energy: float | None
    forces: np.ndarray | None
    stress: np.ndarray | None
    config_type: str
    weight: float


def _is_store(path: Path) -> bool:
    if not path.is_dir():
        return False
    try:
        from aceal.store import is_store
    except ImportError:
        return path.suffix == ".zarr"
    return bool(is_store(path)) or path.suffix == ".zarr"


def read_configurations(path: str | Path, index: str | int | slice = ":") -> list[Atoms]:
    """Read configurations from an extended XYZ (or any ASE-readable) file or a zarr store.

    Parameters
    ----------
    path
        File, or directory of an aceal training store (:mod:`aceal.store`).
    index
        ASE index (default ``":"``: all frames); ignored for stores.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(2, "No such file or directory", str(p))
    if _is_store(p):
        try:
            from aceal.store import StoreError, open_store
        except ImportError as err:
            raise AcealInputError(f"{p}: reading a zarr store needs aceal.store ({err})") from err
        try:
            with open_store(p, "r") as store:
                frames = list(store)
        except StoreError as err:
            raise AcealInputError(f"{p}: {err}") from err
        if not frames:
            raise AcealInputError(f"{p}: no configurations")
        return frames
    from aceal import aseio

    try:
        frames = aseio.read(p, index=index)
    except Exception as err:  # ASE raises a zoo of exceptions on bad files
        raise AcealInputError(f"{p}: cannot read configurations ({err})") from err
    if not frames:
        raise AcealInputError(f"{p}: no configurations")
    return list(frames)


def _calc_result(atoms: Atoms, key: str):
    calc = atoms.calc
    results = getattr(calc, "results", None) if calc is not None else None
    if results and key in results:
        return results[key]
    return None


def _to_voigt(stress, where: str) -> np.ndarray:
    s = np.asarray(stress, dtype=float)
    if s.shape == (6,):
        return s
    if s.size == 9:
        s = s.reshape(3, 3)
        return np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
    raise AcealInputError(f"{where}: stress must have 6 or 9 components, got shape {s.shape}")


def get_labels(atoms: Atoms, keys: Keys = Keys(), where: str = "configuration") -> Labels:
    """Extract the labels of one configuration.

    Parameters
    ----------
    atoms
        The configuration.
    keys
        Label keys.
    where
        Prefix for error messages (e.g. ``"train.xyz: frame 3"``).
    """
    energy = atoms.info.get(keys.energy)
    if energy is None:
        energy = _calc_result(atoms, keys.energy)
    forces = atoms.arrays.get(keys.forces)
    if forces is None:
        forces = _calc_result(atoms, keys.forces)
    stress = atoms.info.get(keys.stress)
    if stress is None:
        stress = _calc_result(atoms, keys.stress)
    if energy is not None:
        try:
            energy = float(energy)
        except (TypeError, ValueError) as err:
            raise AcealInputError(f"{where}: energy {keys.energy!r} is not a number") from err
    if forces is not None:
        forces = np.asarray(forces, dtype=float)
        if forces.shape != (len(atoms), 3):
            raise AcealInputError(f"{where}: forces {keys.forces!r} have shape "
                                  f"{forces.shape}, expected ({len(atoms)}, 3)")
    if stress is not None:
        stress = _to_voigt(stress, where) if bool(np.all(atoms.pbc)) else None
    weight = atoms.info.get(keys.weight, 1.0)
    try:
        weight = float(weight)
    except (TypeError, ValueError) as err:
        raise AcealInputError(f"{where}: weight {keys.weight!r} is not a number") from err
    config_type = str(atoms.info.get(keys.config_type, "default"))
    return Labels(energy, forces, stress, config_type, weight)


def nearest_neighbour_distance(structures: Sequence[Atoms], quantile: float = 0.5) -> float:
    """A typical nearest-neighbour distance (Å) of a set of structures.

    The shortest interatomic distance of every atom (minimum image, periodic cells) is
    collected over all structures and the ``quantile`` of that distribution returned
    (median by default: robust to a few compressed or dissociated configurations).
    """
    from ase.neighborlist import neighbor_list

    d_min: list[np.ndarray] = []
    for atoms in structures:
        if len(atoms) < 2 and not np.any(atoms.pbc):
            continue
        for rc in (4.0, 8.0):
            i, d = neighbor_list("id", atoms, rc)
            if i.size:
                m = np.full(len(atoms), np.inf)
                np.minimum.at(m, i, d)
                d_min.append(m[np.isfinite(m)])
                break
    if not d_min:
        raise AcealInputError("cannot find a nearest-neighbour distance: no atom has a "
                              "neighbour within 8 Å")
    return float(np.quantile(np.concatenate(d_min), quantile))
