"""Point defects and surfaces: vacancy formation and migration, interstitials, surfaces.

All energies in eV, lengths in Å, surface energies in J/m² and eV/Å². Supercells
are ``size``^3 repetitions of the conventional cubic cell at the calculator's own
lattice constant, relaxed at constant volume.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import surface
from ase.calculators.calculator import Calculator
from ase.mep import NEB
from ase.optimize import FIRE, LBFGS

from aceal.validate.bulk import equation_of_state
from aceal.validate.crystal import (
    DUMBBELL_HALF_LENGTH,
    cubic_cell,
    direction_name,
    element_structure,
    energy_per_atom,
    neighbour_shells,
    relax_positions,
    split_dumbbell,
    supercell,
)

__all__ = [
    "climbing_image_neb",
    "vacancy_formation",
    "vacancy_migration",
    "interstitial_formation",
    "interstitial_formations",
    "surface_energies",
    "EV_PER_A2_TO_J_PER_M2",
]

#: 1 eV/Å² in J/m²
EV_PER_A2_TO_J_PER_M2 = 16.02176634


def _setup(element, calc, a0, structure):
    structure, _ = element_structure(element, structure)
    if a0 is None:
        a0 = equation_of_state(element, calc, structure)["a0_A"]
    return structure, float(a0), energy_per_atom(element, structure, a0, calc)


def vacancy_formation(
    element: str,
    calc: Calculator,
    a0: float | None = None,
    structure: str | None = None,
    size: int = 3,
    fmax: float = 0.01,
) -> dict:
    """Vacancy formation energy at constant volume.

    ``E_f = E(N-1, relaxed) - (N-1)/N * E(N, perfect)``.

    Parameters
    ----------
    a0
        Lattice constant (Å); default the calculator's own (E-V fit).
    size
        Supercell repetitions of the conventional cell (fcc 3 -> 108 sites).
    fmax
        Force convergence (eV/Å) of the relaxation.

    Returns
    -------
    dict
        ``Evac_eV`` (relaxed), ``Evac_unrelaxed_eV``, ``relaxation_eV``, ``n_sites``,
        ``a0_A``, ``converged``.
    """
    structure, a0, e_bulk = _setup(element, calc, a0, structure)
    atoms = supercell(element, structure, a0, size)
    n = len(atoms)
    del atoms[0]
    atoms.calc = calc
    e_unrel = float(atoms.get_potential_energy())
    converged = relax_positions(atoms, calc, fmax=fmax)
    e_rel = float(atoms.get_potential_energy())
    ref = (n - 1) * e_bulk
    return {
        "Evac_eV": e_rel - ref,
        "Evac_unrelaxed_eV": e_unrel - ref,
        "relaxation_eV": e_rel - e_unrel,
        "n_sites": n,
        "a0_A": a0,
        "converged": converged,
    }


def _hop_endpoints(element, structure, a0, size):
    """Initial and final cells of a nearest-neighbour vacancy hop.

    The vacancy is made at the site nearest the cell centre; its nearest neighbour
    (minimum image) moves into it. Returns (initial, final, index of the hopper).
    """
    perfect = supercell(element, structure, a0, size)
    centre = perfect.cell.sum(axis=0) / 2.0
    v = int(np.argmin(np.linalg.norm(perfect.positions - centre, axis=1)))
    others = [i for i in range(len(perfect)) if i != v]
    d = perfect.get_distances(v, others, mic=True, vector=True)
    k = int(np.argmin(np.linalg.norm(d, axis=1)))
    initial = perfect.copy()
    del initial[v]
    final = initial.copy()
    # hopper moves by -d (the minimum-image vector from the vacancy to it)
    final.positions[k] = initial.positions[k] - d[k]
    return initial, final, k


def climbing_image_neb(initial: Atoms, final: Atoms, calc: Calculator, n_images: int = 3,
                       fmax: float = 0.05, steps: int = 300) -> tuple[list[Atoms], bool]:
    """Climbing-image NEB between two relaxed end points (``ase.mep.NEB``, improved
    tangent).

    ``n_images`` intermediate images are interpolated (minimum image), relaxed as a plain
    NEB to ``max(4 fmax, 0.2)`` eV/Å, then with the climbing image to ``fmax`` eV/Å:
    LBFGS, which needs far fewer force calls than FIRE here, and FIRE if it stalls.

    Returns
    -------
    (images, converged)
        All images, end points included (``initial`` and ``final`` themselves), with
        ``calc`` attached.
    """
    images = [initial] + [initial.copy() for _ in range(n_images)] + [final]
    neb = NEB(images, climb=False, method="improvedtangent", allow_shared_calculator=True)
    neb.interpolate(mic=True)
    for im in images:
        im.calc = calc
    LBFGS(neb, logfile=None).run(fmax=max(4 * fmax, 0.2), steps=steps)
    neb.climb = True
    converged = bool(LBFGS(neb, logfile=None).run(fmax=fmax, steps=steps))
    if not converged:
        converged = bool(FIRE(neb, logfile=None).run(fmax=fmax, steps=steps))
    return images, converged


def vacancy_migration(
    element: str,
    calc: Calculator,
    a0: float | None = None,
    structure: str | None = None,
    size: int = 2,
    n_images: int = 3,
    fmax: float = 0.05,
    steps: int = 300,
    return_images: bool = False,
) -> dict:
    """Nearest-neighbour vacancy hop barrier by climbing-image NEB.

    Endpoints are relaxed at constant volume, ``n_images`` intermediate images are
    linearly interpolated (minimum image) and optimised with LBFGS (FIRE as a fallback),
    first as a plain NEB, then with a climbing image (``ase.mep.NEB``, improved tangent).

    Parameters
    ----------
    size
        Supercell repetitions (fcc 2 -> 31 atoms: small, use 3 for production).
    n_images
        Number of intermediate images.
    fmax
        NEB force convergence (eV/Å).
    return_images
        Also return the relaxed path (list of Atoms) under ``"images"`` and the
        index of the hopping atom under ``"hopping_atom"``.

    Returns
    -------
    dict
        ``Em_eV`` (barrier from the initial state), ``path_energies_eV`` (relative to
        the initial state), ``path_coordinate`` (0..1), ``dE_ends_eV`` (final minus
        initial, ~0 by symmetry), ``n_atoms``, ``converged``.
    """
    structure, a0, _ = _setup(element, calc, a0, structure)
    initial, final, hopper = _hop_endpoints(element, structure, a0, size)
    relax_positions(initial, calc, fmax=fmax / 5)
    relax_positions(final, calc, fmax=fmax / 5)
    images, converged = climbing_image_neb(initial, final, calc, n_images, fmax, steps)
    energies = np.array([float(im.get_potential_energy()) for im in images])
    rel = energies - energies[0]
    out = {
        "Em_eV": float(rel.max()),
        "path_energies_eV": rel.tolist(),
        "path_coordinate": np.linspace(0.0, 1.0, len(images)).tolist(),
        "dE_ends_eV": float(rel[-1]),
        "n_atoms": len(initial),
        "a0_A": a0,
        "converged": converged,
    }
    if return_images:
        for im in images:
            im.calc = None
        out["images"] = images
        out["hopping_atom"] = hopper
    return out


def interstitial_formation(
    element: str,
    calc: Calculator,
    a0: float | None = None,
    structure: str | None = None,
    size: int = 3,
    direction: tuple[int, int, int] | None = None,
    fmax: float = 0.01,
) -> dict:
    """Self-interstitial (split dumbbell) formation energy at constant volume.

    The atom at site 0 is split into two atoms ``DUMBBELL_HALF_LENGTH`` nearest-neighbour
    distances either side of its site along ``direction`` (default <100> for fcc, <111>
    for bcc, the nearest-neighbour direction otherwise) and the positions are relaxed.
    ``E_f = E(N+1, relaxed) - (N+1)/N * E(N, perfect)``.

    Returns
    -------
    dict
        ``Eint_eV``, ``direction``, ``dumbbell_length_A`` (after relaxation),
        ``n_atoms``, ``a0_A``, ``converged``.
    """
    structure, a0, e_bulk = _setup(element, calc, a0, structure)
    perfect = supercell(element, structure, a0, size)
    shells, nearest = neighbour_shells(perfect, 0, shells=1)
    if direction is None:
        direction = {"fcc": (1, 0, 0), "bcc": (1, 1, 1)}.get(structure, shells[0])
    return _dumbbell_formation(perfect, np.asarray(direction, float), nearest, calc, e_bulk,
                               a0, fmax)


def interstitial_formations(
    element: str,
    calc: Calculator,
    a0: float | None = None,
    structure: str | None = None,
    size: int = 3,
    shells: int = 3,
    fmax: float = 0.01,
) -> dict[str, dict]:
    """:func:`interstitial_formation` of the dumbbell along the direction to each of the
    first ``shells`` neighbour shells of a site (bcc <111>, <100>, <110>; fcc <110>,
    <100>, <211>; diamond <111>, <110>, <311>), keyed by direction name (``"<111>"``).
    Which is lowest depends on the element and the potential: a validation that checked
    one orientation would miss a model that gets the stable one wrong."""
    structure, a0, e_bulk = _setup(element, calc, a0, structure)
    perfect = supercell(element, structure, a0, size)
    directions, nearest = neighbour_shells(perfect, 0, shells=shells)
    return {direction_name(u): _dumbbell_formation(perfect, u, nearest, calc, e_bulk, a0, fmax)
            for u in directions}


def _dumbbell_formation(perfect: Atoms, u: np.ndarray, nearest: float, calc: Calculator,
                        e_bulk: float, a0: float, fmax: float) -> dict:
    """Site 0 of ``perfect`` split along ``u`` and relaxed: the dict of
    :func:`interstitial_formation` (``e_bulk`` eV/atom, ``nearest`` Å)."""
    n = len(perfect)
    atoms = split_dumbbell(perfect, 0, u, DUMBBELL_HALF_LENGTH * nearest)
    converged = relax_positions(atoms, calc, fmax=fmax)
    e = float(atoms.get_potential_energy())
    return {
        "Eint_eV": e - (n + 1) * e_bulk,
        "direction": direction_name(u),
        "dumbbell_length_A": float(atoms.get_distance(0, n, mic=True)),
        "n_atoms": n + 1,
        "a0_A": a0,
        "converged": converged,
    }


def _slab(element, structure, a0, miller, min_thickness, vacuum):
    """Slab at least ``min_thickness`` Å thick: ase.build fcc/bcc/diamond builders for the
    low-index facets they support, ``ase.build.surface`` of the cubic cell otherwise."""
    from ase import build

    key = "".join(str(i) for i in miller)
    builder = getattr(build, f"{structure}{key}", None) if len(key) == 3 else None
    for layers in range(2, 200):
        if builder is not None:
            slab = builder(element, size=(1, 1, layers), a=a0, vacuum=vacuum)
            slab.pbc = True
        else:
            slab = surface(
                cubic_cell(element, structure, a0), miller, layers, vacuum=vacuum, periodic=True
            )
        z = slab.positions[:, 2]
        if z.max() - z.min() >= min_thickness:
            return slab
    return slab


def surface_energies(
    element: str,
    calc: Calculator,
    a0: float | None = None,
    structure: str | None = None,
    facets: tuple[tuple[int, int, int], ...] = ((1, 0, 0), (1, 1, 0), (1, 1, 1)),
    min_thickness: float = 12.0,
    vacuum: float = 8.0,
    relax: bool = True,
    fmax: float = 0.01,
) -> dict:
    """Surface energies of low-index facets from symmetric periodic slabs.

    ``gamma = (E_slab - N e_bulk) / (2 A)`` with ``A`` the in-plane cell area; slabs
    (``ase.build.surface`` of the conventional cell) are at least ``min_thickness``
    thick with ``vacuum`` Å on each side, positions relaxed if ``relax``.

    Returns
    -------
    dict
        ``{"100": {"gamma_J_per_m2", "gamma_eV_per_A2", "gamma_unrelaxed_J_per_m2",
        "n_atoms", "area_A2"}, ...}`` plus ``a0_A``.
    """
    structure, a0, e_bulk = _setup(element, calc, a0, structure)
    out: dict = {"a0_A": a0}
    for miller in facets:
        slab = _slab(element, structure, a0, miller, min_thickness, vacuum)
        slab.calc = calc
        area = float(np.linalg.norm(np.cross(slab.cell[0], slab.cell[1])))
        n = len(slab)
        e_unrel = float(slab.get_potential_energy())
        if relax:
            relax_positions(slab, calc, fmax=fmax)
        e = float(slab.get_potential_energy())
        g = (e - n * e_bulk) / (2.0 * area)
        g0 = (e_unrel - n * e_bulk) / (2.0 * area)
        out["".join(str(i) for i in miller)] = {
            "gamma_J_per_m2": g * EV_PER_A2_TO_J_PER_M2,
            "gamma_eV_per_A2": g,
            "gamma_unrelaxed_J_per_m2": g0 * EV_PER_A2_TO_J_PER_M2,
            "n_atoms": n,
            "area_A2": area,
        }
    return out
