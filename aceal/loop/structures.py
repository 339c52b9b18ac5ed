"""Initial structures of a campaign: files or ASE builders with defects.

Each entry of the ``structures`` config section becomes one :class:`ase.Atoms`:
a file (any format ASE reads) or a bulk crystal (``ase.build.bulk``), optionally cut
into a slab (``ase.build.surface``), repeated into a supercell, with vacancies and
interstitials, strained and rattled.  Random choices use the given generator, so a
campaign builds the same structures every time it (re)starts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.build import bulk, surface

from aceal.errors import AcealInputError
from aceal.loop.config import StructureSettings

__all__ = ["build_structure", "build_structures", "seed_configurations", "min_distance"]


def min_distance(atoms: Atoms) -> float:
    """Shortest interatomic distance (Å, minimum image); ``inf`` for a single atom."""
    if len(atoms) < 2:
        return float("inf")
    d = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
    d[np.diag_indices_from(d)] = np.inf
    return float(d.min())


def _add_interstitial(atoms: Atoms, rng: np.random.Generator, trials: int = 256) -> Atoms:
    """Insert one atom (the first atom's element) at the emptiest of random trial points."""
    frac = rng.random((trials, 3))
    pts = frac @ atoms.cell.array
    best, best_d = None, -1.0
    for p in pts:
        probe = atoms + Atoms(atoms[0].symbol, positions=[p])
        d = probe.get_distances(len(probe) - 1, range(len(atoms)), mic=True)
        if d.min() > best_d:
            best, best_d = p, float(d.min())
    return atoms + Atoms(atoms[0].symbol, positions=[best])


def dumbbell_starts(atoms: Atoms, shells: int) -> list[tuple[str, Atoms]]:
    """Split-dumbbell variants of a structure with interstitials (``info["interstitials"]``,
    the last atoms): the last interstitial removed and its nearest lattice atom split
    along the direction to each of its first ``shells`` neighbour shells (bcc: <111>,
    <100>, <110>).  Which orientation is stable depends on the element and the
    potential, so each is relaxed and offered as a candidate.  ``[(label, atoms)]``.
    """
    from aceal.validate.crystal import (
        DUMBBELL_HALF_LENGTH,
        direction_name,
        neighbour_shells,
        split_dumbbell,
    )

    n_extra = int(atoms.info.get("interstitials", 0))
    if not n_extra or shells <= 0:
        return []
    lattice = atoms[: len(atoms) - n_extra]
    host = int(np.argmin(atoms.get_distances(len(atoms) - 1, range(len(lattice)), mic=True)))
    directions, nearest = neighbour_shells(lattice, host, shells=shells)
    out = []
    for u in directions:
        start = split_dumbbell(atoms[:-1], host, u, DUMBBELL_HALF_LENGTH * nearest)
        start.info = dict(atoms.info)
        start.wrap()
        out.append((f"dumbbell {direction_name(u)}", start))
    return out


def build_structure(spec: StructureSettings, rng: np.random.Generator,
                    where: str = "structure") -> Atoms:
    """One initial structure from a validated ``structures[i]`` entry (see docs/campaign.md).

    Parameters
    ----------
    spec
        The config entry (``builder``, ``element``, ``crystal``, ``a`` (Å), ``repeat``,
        ``surface``, ``vacancies``, ``interstitials``, ``strain`` (fraction),
        ``rattle`` (Å), ...).
    rng
        Generator for vacancy/interstitial sites, strains and rattles.
    where
        Prefix of error messages.
    """
    if spec.builder == "file":
        from aceal import aseio

        try:
            atoms = aseio.read(spec.file, index=spec.index)[-1]
        except Exception as err:  # ase raises many kinds
            raise AcealInputError(f"{where}.file: cannot read {spec['file']} ({err})") from None
        atoms = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    else:
        kw = {"crystalstructure": spec.crystal, "cubic": spec.cubic}
        if spec.a is not None:
            kw["a"] = spec.a
        if spec.crystal == "hcp":
            kw.pop("cubic")
            kw["orthorhombic"] = spec.cubic
        try:
            atoms = bulk(spec.element, **kw)
        except Exception as err:
            raise AcealInputError(f"{where}: cannot build {spec['crystal']} "
                                  f"{spec['element']} ({err}); give a lattice constant a") from None
        if spec.surface is not None:
            s = spec.surface
            atoms = surface(atoms, tuple(s.miller), s.layers, vacuum=s.vacuum)
            atoms.pbc = (True, True, False)
    atoms = atoms.repeat(tuple(spec.repeat))
    if spec.vacancies:
        if spec.vacancies >= len(atoms):
            raise AcealInputError(f"{where}.vacancies: {spec['vacancies']} vacancies in a cell "
                                  f"of {len(atoms)} atoms")
        remove = sorted(int(i) for i in rng.choice(len(atoms), size=spec.vacancies,
                                                   replace=False))
        sites = atoms.get_scaled_positions()[remove]
        del atoms[remove]
        atoms.info["vacancy_sites"] = sites.tolist()   # fractional (strain-invariant)
    for _ in range(spec.interstitials):
        if not atoms.pbc.all():
            raise AcealInputError(f"{where}.interstitials: only for periodic bulk cells")
        atoms = _add_interstitial(atoms, rng)
    if spec.interstitials:
        atoms.info["interstitials"] = spec.interstitials  # the last atoms
    if spec.strain:
        eps = rng.uniform(-spec.strain, spec.strain, (3, 3))
        eps = 0.5 * (eps + eps.T)
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
    if spec.rattle:
        atoms.positions += rng.normal(0.0, spec.rattle, atoms.positions.shape)
    if spec.config_type:
        atoms.info["config_type"] = spec.config_type
    else:
        atoms.info["config_type"] = _describe(spec)
    atoms.wrap()
    return atoms


def _describe(spec: StructureSettings) -> str:
    if spec.builder == "file":
        return "file"
    parts = [spec.crystal]
    if spec.surface is not None:
        parts.append("surface" + "".join(str(m) for m in spec.surface.miller))
    if spec.vacancies:
        parts.append("vacancy")
    if spec.interstitials:
        parts.append("interstitial")
    return "_".join(parts)


def build_structures(specs: Sequence[StructureSettings], rng: np.random.Generator) -> list[Atoms]:
    """All initial structures of the ``structures`` section, in order."""
    return [build_structure(s, rng, f"structures[{i}]") for i, s in enumerate(specs)]


def seed_configurations(structures: Sequence[Atoms], n_per_structure: int, rattle: float,
                        strain: float, rng: np.random.Generator) -> list[Atoms]:
    """Rattled and strained copies of each structure, labelled at the start of a campaign.

    Parameters
    ----------
    n_per_structure
        Copies per structure (the first copy of each is only rattled, not strained).
    rattle
        Standard deviation of the Gaussian displacement, Å.
    strain
        Largest absolute component of the random symmetric strain (dimensionless).
    """
    out = []
    for atoms in structures:
        for k in range(n_per_structure):
            a = atoms.copy()
            if strain and k > 0 and a.pbc.all():
                eps = rng.uniform(-strain, strain, (3, 3))
                a.set_cell(a.cell.array @ (np.eye(3) + 0.5 * (eps + eps.T)), scale_atoms=True)
            a.positions += rng.normal(0.0, rattle, a.positions.shape)
            a.info = {"config_type": atoms.info.get("config_type", "seed")}
            out.append(a)
    return out
