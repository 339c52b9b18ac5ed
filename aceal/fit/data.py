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

import numpy as np
from ase import Atoms

from aceal.errors import AcealInputError

__all__ = ["Keys", "Labels", "get_labels", "nearest_neighbour_distance"]


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
    from aceal.store.records import extract_labels

    try:  # the store's reader: one lookup order (calculator results, then info/arrays)
        energy, forces, stress = extract_labels(atoms, keys.energy, keys.forces, keys.stress)
    except AcealInputError as err:
        raise AcealInputError(f"{where}: {err}") from None
    if stress is not None and not bool(np.all(atoms.pbc)):
        stress = None
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
