"""Held-out saddle frames: reference CI-NEB paths of the hops a set of structures allows.

Given defect structures (e.g. a campaign's starting structures) and the perfect lattice
each was cut from, this module finds the point defects by comparing the atoms with the
lattice sites, builds the end points of one nearest-neighbour hop per defect, relaxes
them and runs a climbing-image NEB with the reference calculator.  The labelled images
(reference energy and forces) and the rare-event atoms of each path (the moving atom and
its neighbours) feed the Liu–He–Mo force metrics of
:func:`aceal.uncertainty.force_metrics.rare_event_force_metrics`.

Hops handled:

* **vacancy**: the atom nearest the empty site moves into it (one hop per vacancy
  structure: with one vacancy in a periodic crystal all nearest-neighbour hops of an
  fcc/bcc lattice are equivalent by symmetry);
* **interstitial** (interstitialcy step): the relaxed interstitial is located as the
  doubly occupied lattice site ``s`` (two atoms ``A``, ``C`` nearest to it, dumbbell
  vector ``u = (A - C) / 2``); the nearest-neighbour site ``s'`` best aligned with ``u``
  is chosen, its atom ``B`` and ``A`` form the same dumbbell around ``s'`` and ``C``
  drops onto ``s``.  For a ``<111>`` dumbbell/crowdion in bcc this is its glide by one
  nearest-neighbour distance.  The hop is kept only if the relaxed final state is a
  symmetry copy of the initial one (energies within ``end_tolerance`` eV) with the
  defect on ``s'``; otherwise it is skipped with the reason recorded.

Surfaces and defect-free cells contribute no hop.  This module does not import
:mod:`aceal.loop`; callers give the perfect lattices.  Units: eV, Å, eV/Å.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator
from ase.geometry import find_mic
from ase.optimize import LBFGS

from aceal.uncertainty.force_metrics import rare_event_force_metrics
from aceal.validate.defects import climbing_image_neb

__all__ = [
    "SaddlePath",
    "assign_sites",
    "find_vacancies",
    "find_interstitial",
    "shell_cutoff",
    "vacancy_hop_endpoints",
    "interstitial_hop_endpoints",
    "hop_paths",
    "add_displaced_frames",
    "saddle_force_metrics",
]


@dataclass
class SaddlePath:
    """One reference minimum-energy path of a hop.

    Attributes
    ----------
    kind
        ``"vacancy"`` or ``"interstitial"``.
    structure
        Index of the source structure in the list given to :func:`hop_paths`.
    images
        All NEB images, end points included, each with a SinglePointCalculator holding
        the reference ``energy`` (eV) and raw (unprojected) ``forces`` (eV/Å).
    moving_atom
        Index of the atom that moves farthest between the end points.
    rare_atoms
        The moving atom and its neighbours (atoms within :func:`shell_cutoff` of it in
        the highest-energy image, the climbing image), sorted.
    barrier_eV
        Highest image energy minus the initial energy (eV).
    converged
        Whether the climbing-image NEB reached ``fmax``.
    reference_calls
        Energy/force calls of the reference spent on relaxations and NEB.
    """

    kind: str
    structure: int
    images: list[Atoms]
    moving_atom: int
    rare_atoms: list[int]
    barrier_eV: float
    converged: bool
    reference_calls: int = 0
    info: dict = field(default_factory=dict)

    #: thermally displaced copies of the intermediate images, reference-labelled
    #: (see :func:`add_displaced_frames`)
    displaced: list[Atoms] = field(default_factory=list)

    @property
    def saddle_frames(self) -> list[Atoms]:
        """The intermediate images (the relaxed end points left out) and their displaced
        copies."""
        return self.images[1:-1] + self.displaced


class _Counting(Calculator):
    """Forwards energy/forces to ``calc`` and counts the calls (``self.calls``)."""

    implemented_properties = ["energy", "forces", "free_energy"]

    def __init__(self, calc: Calculator):
        super().__init__()
        self.inner = calc
        self.calls = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms.copy()
        a.calc = self.inner
        self.calls += 1
        e = float(a.get_potential_energy())
        self.results = {"energy": e, "free_energy": e, "forces": np.array(a.get_forces())}


def _mic(vectors: np.ndarray, atoms: Atoms) -> np.ndarray:
    return find_mic(np.atleast_2d(vectors), atoms.cell, atoms.pbc)[0]


def assign_sites(atoms: Atoms, perfect: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """Nearest lattice site of every atom (minimum image).

    Parameters
    ----------
    atoms
        Structure with point defects, same cell as ``perfect``.
    perfect
        The perfect lattice (one atom per site).

    Returns
    -------
    (site, distance)
        ``site[i]`` is the index in ``perfect`` of atom i's nearest site, ``distance[i]``
        its distance (Å).
    """
    site = np.empty(len(atoms), int)
    dist = np.empty(len(atoms))
    for i, p in enumerate(atoms.positions):
        d = np.linalg.norm(_mic(perfect.positions - p, perfect), axis=1)
        site[i] = int(np.argmin(d))
        dist[i] = float(d[site[i]])
    return site, dist


def shell_cutoff(perfect: Atoms) -> tuple[float, float]:
    """Nearest-neighbour distance and the midpoint between the first two shells (Å)."""
    d = np.linalg.norm(_mic(perfect.positions - perfect.positions[0], perfect), axis=1)
    shells = np.unique(np.round(d[d > 1e-6], 3))
    d1 = float(shells[0])
    d2 = float(shells[1]) if len(shells) > 1 else 1.5 * d1
    return d1, 0.5 * (d1 + d2)


def find_vacancies(atoms: Atoms, perfect: Atoms, tolerance: float = 0.35) -> list[int]:
    """Lattice sites of ``perfect`` with no atom of ``atoms`` within ``tolerance`` x d_NN."""
    d_nn, _ = shell_cutoff(perfect)
    empty = []
    for s, p in enumerate(perfect.positions):
        d = np.linalg.norm(_mic(atoms.positions - p, atoms), axis=1)
        if d.min() > tolerance * d_nn:
            empty.append(s)
    return empty


def find_interstitial(atoms: Atoms, perfect: Atoms) -> tuple[int, int, int] | None:
    """The doubly occupied site of a structure with one more atom than sites.

    Returns
    -------
    (site, a, c) or None
        The site and its two atoms (the one farther from the site first); ``None`` if no
        site holds two atoms.
    """
    site, dist = assign_sites(atoms, perfect)
    counts = np.bincount(site, minlength=len(perfect))
    doubles = np.flatnonzero(counts >= 2)
    if not len(doubles):
        return None
    # the most crowded site: largest summed displacement of its atoms
    best = max(doubles, key=lambda s: dist[site == s].sum())
    who = np.flatnonzero(site == best)
    who = who[np.argsort(-dist[who])][:2]
    return int(best), int(who[0]), int(who[1])


def vacancy_hop_endpoints(atoms: Atoms, perfect: Atoms,
                          vacancy_site: int | None = None) -> tuple[Atoms, Atoms, int]:
    """Unrelaxed end points of a nearest-neighbour vacancy hop.

    The atom nearest the (first) empty site moves onto it.

    Returns
    -------
    (initial, final, hopper)
        Copies of ``atoms`` (no calculator) and the index of the hopping atom.
    """
    if vacancy_site is None:
        empty = find_vacancies(atoms, perfect)
        if not empty:
            raise ValueError("no vacancy found")
        vacancy_site = empty[0]
    p = perfect.positions[vacancy_site]
    d = _mic(atoms.positions - p, atoms)
    hopper = int(np.argmin(np.linalg.norm(d, axis=1)))
    initial = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    final = initial.copy()
    final.positions[hopper] = initial.positions[hopper] - d[hopper]
    return initial, final, hopper


def interstitial_hop_endpoints(atoms: Atoms, perfect: Atoms) -> tuple[Atoms, Atoms, dict]:
    """Unrelaxed end points of one interstitialcy step of a (relaxed) interstitial.

    See the module docstring.  ``atoms`` should be relaxed, so that the defect is a
    dumbbell on one site.

    Returns
    -------
    (initial, final, info)
        ``info``: ``site``, ``new_site``, ``atoms`` (A, B, C) of the step.
    """
    found = find_interstitial(atoms, perfect)
    if found is None:
        raise ValueError("no doubly occupied site found")
    s, a, c = found
    u = 0.5 * _mic(atoms.positions[a] - atoms.positions[c], atoms)[0]
    ps = perfect.positions[s]
    d = _mic(perfect.positions - ps, perfect)
    r = np.linalg.norm(d, axis=1)
    d_nn = np.min(r[r > 1e-6])
    nn = np.flatnonzero(np.abs(r - d_nn) < 0.05 * d_nn)
    un = u / max(np.linalg.norm(u), 1e-12)
    s2 = int(nn[np.argmax(d[nn] @ un)])  # the neighbour site on A's side
    site, _ = assign_sites(atoms, perfect)
    on_s2 = np.flatnonzero(site == s2)
    if len(on_s2) != 1:
        raise ValueError("the neighbour site is not singly occupied")
    b = int(on_s2[0])
    initial = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    final = initial.copy()
    p2 = ps + d[s2]
    # positions continued from the initial ones (minimum image), so interpolation is short
    final.positions[c] = initial.positions[c] + _mic(ps - initial.positions[c], atoms)[0]
    final.positions[a] = initial.positions[a] + _mic(p2 - u - initial.positions[a], atoms)[0]
    final.positions[b] = initial.positions[b] + _mic(p2 + u - initial.positions[b], atoms)[0]
    return initial, final, {"site": s, "new_site": s2, "atoms": [a, b, c],
                            "dumbbell_direction": un.round(3).tolist()}


def _relax(atoms: Atoms, calc: Calculator, fmax: float, steps: int = 500) -> bool:
    atoms.calc = calc
    return bool(LBFGS(atoms, logfile=None).run(fmax=fmax, steps=steps))


def _labelled(images: Sequence[Atoms]) -> list[Atoms]:
    out = []
    for im in images:
        e, f = float(im.get_potential_energy()), np.array(im.get_forces())
        a = Atoms(im.numbers, positions=im.positions, cell=im.cell, pbc=im.pbc)
        a.calc = SinglePointCalculator(a, energy=e, forces=f)
        out.append(a)
    return out


def _path(kind, k, images, converged, perfect, calls, info) -> SaddlePath:
    first, last = images[0], images[-1]
    disp = np.linalg.norm(_mic(last.positions - first.positions, first), axis=1)
    moving = int(np.argmax(disp))
    _, cut = shell_cutoff(perfect)
    e = np.array([im.get_potential_energy() for im in images])
    top = images[int(np.argmax(e))]
    r = np.linalg.norm(_mic(top.positions - top.positions[moving], top), axis=1)
    rare = {moving} | {int(i) for i in np.flatnonzero(r < cut)}
    info = {**info, "path_energies_eV": (e - e[0]).tolist(),
            "moving_atom_displacement_A": float(disp[moving])}
    return SaddlePath(kind, k, _labelled(images), moving, sorted(rare),
                      float((e - e[0]).max()), converged, calls, info)


def hop_paths(structures: Sequence[Atoms], perfects: Sequence[Atoms | None], calc: Calculator,
              n_images: int = 5, fmax: float = 0.05, relax_fmax: float = 0.01,
              end_tolerance: float = 0.05, interstitials: bool = True,
              ) -> tuple[list[SaddlePath], list[dict]]:
    """Reference CI-NEB paths of one hop per defect structure.

    Parameters
    ----------
    structures
        Candidate structures (fully periodic; others are skipped).
    perfects
        The perfect lattice of each structure (same cell, one atom per site), or
        ``None`` to skip that structure.
    calc
        The reference calculator.
    n_images, fmax
        NEB images and force tolerance (eV/Å).
    relax_fmax
        End-point relaxation tolerance (eV/Å).
    end_tolerance
        Largest energy difference (eV) of the relaxed interstitial end points for the
        step to count as a symmetric hop.
    interstitials
        Also try the interstitialcy step of structures with one atom more than sites.

    Returns
    -------
    (paths, notes)
        The paths and one note per structure saying what was done or why it was skipped.
    """
    paths: list[SaddlePath] = []
    notes: list[dict] = []
    for k, (atoms, perfect) in enumerate(zip(structures, perfects, strict=True)):
        if perfect is None or not atoms.pbc.all():
            notes.append({"structure": k, "hop": None, "why": "not a periodic bulk cell"})
            continue
        counter = _Counting(calc)
        n, n_sites = len(atoms), len(perfect)
        try:
            if n == n_sites - 1:
                initial, final, hopper = vacancy_hop_endpoints(atoms, perfect)
                ok_i = _relax(initial, counter, relax_fmax)
                ok_f = _relax(final, counter, relax_fmax)
                images, conv = climbing_image_neb(initial, final, counter, n_images, fmax)
                p = _path("vacancy", k, images, conv and ok_i and ok_f, perfect, counter.calls,
                          {"hopper": hopper})
                paths.append(p)
                notes.append({"structure": k, "hop": "vacancy", "barrier_eV": p.barrier_eV,
                              "converged": p.converged, "reference_calls": counter.calls})
            elif n == n_sites + 1 and interstitials:
                relaxed = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell,
                                pbc=atoms.pbc)
                _relax(relaxed, counter, relax_fmax)
                initial, final, info = interstitial_hop_endpoints(relaxed, perfect)
                _relax(initial, counter, relax_fmax)
                _relax(final, counter, relax_fmax)
                de = float(final.get_potential_energy() - initial.get_potential_energy())
                moved = find_interstitial(final, perfect)
                if abs(de) > end_tolerance or moved is None or moved[0] != info["new_site"]:
                    notes.append({"structure": k, "hop": None,
                                  "why": "interstitialcy step not a symmetric hop "
                                         f"(dE = {de:.3f} eV, defect site after relaxation "
                                         f"{None if moved is None else moved[0]}, expected "
                                         f"{info['new_site']})",
                                  "reference_calls": counter.calls})
                    continue
                images, conv = climbing_image_neb(initial, final, counter, n_images, fmax)
                p = _path("interstitial", k, images, conv, perfect, counter.calls,
                          {**info, "dE_ends_eV": de})
                paths.append(p)
                notes.append({"structure": k, "hop": "interstitial", "barrier_eV": p.barrier_eV,
                              "converged": p.converged, "reference_calls": counter.calls})
            else:
                notes.append({"structure": k, "hop": None,
                              "why": f"{n} atoms on {n_sites} sites: no single point defect"})
        except ValueError as err:
            notes.append({"structure": k, "hop": None, "why": str(err),
                          "reference_calls": counter.calls})
    return paths, notes


def add_displaced_frames(paths: Sequence[SaddlePath], calc: Calculator, copies: int = 4,
                         sigma: float = 0.05, seed: int = 0) -> int:
    """Add Gaussian-displaced, reference-labelled copies of each path's intermediate images.

    On a converged NEB the forces on and around the moving atom are nearly zero (the
    climbing image) or along the path only, so force directions are undefined or
    trivial.  A hop at temperature T crosses the saddle region with thermal
    displacements of the order of ``sigma`` (about 0.05-0.1 Å for metals at 1000 K);
    these copies are such configurations, each labelled by ``calc`` (the reference).

    Parameters
    ----------
    copies
        Displaced copies per intermediate image.
    sigma
        Standard deviation of the Cartesian displacement of every atom, Å.
    seed
        Seed of the displacements.

    Returns
    -------
    int
        Reference calls made.
    """
    rng = np.random.default_rng(seed)
    calls = 0
    for p in paths:
        p.displaced = []
        for im in p.images[1:-1]:
            for _ in range(copies):
                a = Atoms(im.numbers, positions=im.positions, cell=im.cell, pbc=im.pbc)
                a.positions += rng.normal(0.0, sigma, a.positions.shape)
                a.calc = calc
                a.info["saddle_displacement_A"] = sigma
                p.displaced += _labelled([a])
                calls += 1
        p.reference_calls += len(p.displaced)
    return calls


def saddle_force_metrics(paths: Sequence[SaddlePath], calc: Calculator,
                         min_force: float = 0.05) -> dict:
    """Liu–He–Mo metrics of ``calc`` on the saddle frames of ``paths``.

    The saddle frames (intermediate images and any displaced copies) of all paths are
    pooled; the rare-event atoms of each frame are its path's
    :attr:`SaddlePath.rare_atoms`.

    Parameters
    ----------
    calc
        Model calculator.
    min_force
        Angles are undefined below this force (eV/Å) and left out.

    Returns
    -------
    dict
        ``rare`` and ``all``: ``mag_err_median_eV_per_A`` and ``mag_err_p95_eV_per_A``
        (of ``||F_pred| - |F_ref||``), ``angle_median_deg``, ``angle_p95_deg``,
        ``n_atoms``, ``n_angles``; plus ``forces_mae_eV_per_A`` (component MAE on the
        group) and ``n_frames``.
    """
    pred, ref, mask = [], [], []
    for p in paths:
        for im in p.saddle_frames:
            a = Atoms(im.numbers, positions=im.positions, cell=im.cell, pbc=im.pbc)
            a.calc = calc
            pred.append(np.asarray(a.get_forces(), float))
            ref.append(np.asarray(im.get_forces(), float))
            m = np.zeros(len(im), bool)
            m[p.rare_atoms] = True
            mask.append(m)
    if not pred:
        raise ValueError("no saddle frames")
    pr, rf, mk = np.concatenate(pred), np.concatenate(ref), np.concatenate(mask)
    m = rare_event_force_metrics(pr, rf, mk, min_force=min_force)
    out: dict = {"n_frames": len(pred)}
    for name, group, sel in (("rare", m.rare, mk), ("all", m.all, np.ones_like(mk))):
        out[name] = {
            "mag_err_median_eV_per_A": group.magnitude_stats.p50,
            "mag_err_p95_eV_per_A": group.magnitude_stats.p95,
            "angle_median_deg": group.angle_stats.p50,
            "angle_p95_deg": group.angle_stats.p95,
            "forces_mae_eV_per_A": float(np.mean(np.abs(pr[sel] - rf[sel]))),
            "n_atoms": int(group.magnitude_error.size),
            "n_angles": int(group.angle_stats.n),
        }
    return out
