"""Exploration protocols beside thermal MD: relaxations, strains, vacancy-hop NEB, few-body.

Each protocol runs with the current (mean) model and proposes the frames it visits as
candidates, with the same uncertainty signals as the walkers' frames
(:class:`aceal.loop.walker.FrameSignals`), so one selection chooses among all of them:

* ``relax``: positions (and, for periodic bulk cells, the cell with
  :class:`ase.filters.FrechetCellFilter`) relaxed by FIRE from the structure with a small
  random displacement; every ``sample_every`` steps and the last frame are candidates (the
  relaxed defect is what formation energies are made of).  A structure with an
  interstitial is also relaxed from a split dumbbell along each of the first
  ``relax.dumbbells`` neighbour-shell directions (:func:`aceal.loop.structures.
  dumbbell_starts`): the stable orientation differs between elements and potentials;
* ``strain``: the cell relaxed, then homogeneous strains of each amplitude, both signs:
  hydrostatic and each of the six Voigt components (E–V curve, elastic constants);
* ``neb``: a vacancy of the structure (its built site), the nearest atom hops into it; both
  end states relaxed at fixed cell, a climbing-image NEB (``ase.mep.NEB``) with the model;
  the images and the midpoints between neighbouring images are candidates (saddles carry
  the rare-event atoms of Liu, He and Mo);
* ``fewbody``: dimers of every element pair from ``r_min`` times the sum of covalent radii
  to the cutoff, and trimers at the given apex angles, isolated in vacuum.

A protocol stops early (keeping what it visited) if the model breaks: non-finite forces,
atoms closer than ``md.min_distance`` or an exception in the model.  Units: Å, eV, eV/Å.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from aceal.loop.config import FEWBODY_TYPE, ExplorationSettings
from aceal.loop.structures import dumbbell_starts
from aceal.loop.walker import Candidate, FrameSignals, SegmentResult, mean_model, signal_values

__all__ = ["ExploreJob", "exploration_jobs", "run_protocol"]


@dataclass
class ExploreJob:
    """One protocol run: ``protocol`` on ``atoms`` (campaign structure ``structure``; -1
    and no atoms for the few-body clusters of the basis elements).  A ``neb`` job with a
    ``final`` frame runs between ``atoms`` and ``final`` (a hop a walker saw), else it
    makes a hop into a built vacancy of ``atoms``."""

    protocol: str
    structure: int
    atoms: Atoms | None = None
    final: Atoms | None = None
    variant: str = ""


def exploration_jobs(structures, protocols: list[list[str]], settings: ExplorationSettings,
                     iteration: int, hops=()) -> list[ExploreJob]:
    """The protocol runs of ``iteration`` (every ``settings.every`` iterations, from 1).

    ``hops``: ``(structure, before, after)`` of hops the walkers saw in the previous
    iteration; each gets a NEB if ``exploration.neb.on_hops``.
    """
    jobs = [ExploreJob("neb", int(k), before, after) for k, before, after in hops
            if settings.neb.on_hops]
    if (iteration - 1) % settings.every:
        return jobs
    for k, (atoms, names) in enumerate(zip(structures, protocols, strict=True)):
        jobs += [ExploreJob(p, k, atoms.copy()) for p in names if p != "md"]
        if "relax" in names:
            jobs += [ExploreJob("relax", k, start, variant=label)
                     for label, start in dumbbell_starts(atoms, settings.relax.dumbbells)]
    if settings.fewbody.enabled:
        jobs.append(ExploreJob("fewbody", -1))
    return jobs


class _Broken(Exception):
    """The model gave a non-finite or too-close frame."""


def _plain(atoms: Atoms) -> Atoms:
    return Atoms(atoms.numbers, positions=atoms.get_positions(), cell=atoms.cell,
                 pbc=atoms.pbc)


class _Frames:
    """Collects the frames a protocol visits and checks them for sanity."""

    def __init__(self, min_distance: float) -> None:
        self.frames: list[tuple[Atoms, str]] = []
        self.relaxed: set[int] = set()   # indices of relaxed end states
        self.min_distance = min_distance

    def add(self, atoms: Atoms, detail: str, relaxed: bool = False) -> None:
        from aceal.loop.structures import min_distance

        snap = _plain(atoms)
        if not np.all(np.isfinite(snap.positions)) or min_distance(snap) < self.min_distance:
            raise _Broken("too_close or non-finite positions")
        if relaxed:
            self.relaxed.add(len(self.frames))
        self.frames.append((snap, detail))


def _checked_forces(atoms: Atoms) -> None:
    if not np.all(np.isfinite(atoms.get_forces())):
        raise _Broken("nan_forces")


def _relax(atoms: Atoms, calc, steps: int, fmax: float, cell: bool, frames: _Frames | None,
           sample_every: int, label: str) -> Atoms:
    """FIRE relaxation in place (positions, and the cell if ``cell``); returns ``atoms``."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    atoms.calc = calc
    target = FrechetCellFilter(atoms) if cell and atoms.pbc.all() else atoms
    opt = FIRE(target, logfile=None)
    if frames is not None:
        def sample():
            _checked_forces(atoms)
            if opt.nsteps and opt.nsteps % sample_every == 0:
                frames.add(atoms, f"{label} step {opt.nsteps}")

        opt.attach(sample, interval=1)
    opt.run(fmax=fmax, steps=steps)
    _checked_forces(atoms)
    return atoms


def _relax_protocol(job, calc, s: ExplorationSettings, frames, rng) -> None:
    a = job.atoms.copy()
    a.positions += rng.normal(0.0, s.relax.rattle, a.positions.shape)
    label = f"relax {job.variant}".strip()
    _relax(a, calc, s.relax.steps, s.relax.fmax, s.relax.cell, frames,
           s.relax.sample_every, label)
    frames.add(a, f"{label} final", relaxed=True)


def voigt_strains(amplitude: float) -> list[tuple[str, np.ndarray]]:
    """Hydrostatic and the six Voigt strain tensors of ``amplitude``, both signs."""
    out = []
    for sign in (1.0, -1.0):
        d = sign * amplitude
        out.append((f"hydrostatic {d:+g}", d * np.eye(3)))
        for v in range(6):
            eps = np.zeros((3, 3))
            if v < 3:
                eps[v, v] = d
            else:  # engineering shear d
                i, j = {3: (1, 2), 4: (0, 2), 5: (0, 1)}[v]
                eps[i, j] = eps[j, i] = d / 2.0
            out.append((f"voigt{v + 1} {d:+g}", eps))
    return out


def _strain_protocol(job, calc, s: ExplorationSettings, frames, rng) -> None:
    a = job.atoms.copy()
    if s.strain.relax_steps:
        _relax(a, calc, s.strain.relax_steps, s.relax.fmax, True, None, 1, "strain")
    ref = _plain(a)
    for amp in s.strain.amplitudes:
        for name, eps in voigt_strains(amp):
            b = ref.copy()
            b.set_cell(ref.cell.array @ (np.eye(3) + eps), scale_atoms=True)
            frames.add(b, f"strain {name}")


def _hop_end_states(atoms: Atoms, rng) -> tuple[Atoms, Atoms]:
    """Initial state and the state after the atom nearest a vacancy site hopped into it."""
    sites = np.asarray(atoms.info["vacancy_sites"], dtype=float) @ atoms.cell.array
    site = sites[rng.integers(len(sites))]
    from ase.geometry import find_mic

    d, dist = find_mic(atoms.positions - site, atoms.cell, atoms.pbc)
    k = int(np.argmin(dist))
    initial = _plain(atoms)
    final = initial.copy()
    final.positions[k] = initial.positions[k] - d[k]
    return initial, final


def _neb_protocol(job, calc, s: ExplorationSettings, frames, rng) -> None:
    from ase.geometry import find_mic
    from ase.mep import NEB
    from ase.optimize import FIRE

    if job.final is not None:
        initial, final = _plain(job.atoms), _plain(job.final)
    else:
        initial, final = _hop_end_states(job.atoms, rng)
    for end in (initial, final):
        end.positions += rng.normal(0.0, s.relax.rattle / 3, end.positions.shape)
        if s.neb.relax_steps:
            _relax(end, calc, s.neb.relax_steps, s.relax.fmax, False, None, 1, "neb")
    moved = find_mic(final.positions - initial.positions, initial.cell, initial.pbc)[1]
    k = int(np.argmax(moved))
    if moved[k] < 0.5:   # a walker's hop that relaxed back: no path to run
        return
    images = [initial] + [initial.copy() for _ in range(s.neb.images)] + [final]
    neb = NEB(images, climb=False, method="improvedtangent", allow_shared_calculator=True)
    neb.interpolate(mic=True)
    for im in images:
        im.calc = calc
    half = max(s.neb.steps // 2, 1)
    try:
        FIRE(neb, logfile=None).run(fmax=max(2 * s.neb.fmax, 0.2), steps=half)
        neb.climb = True
        FIRE(neb, logfile=None).run(fmax=s.neb.fmax, steps=s.neb.steps - half)
    finally:
        for i, im in enumerate(images[1:-1], start=1):
            frames.add(im, f"neb image {i}/{s.neb.images + 1} (atom {k} hops)")
    for im in images[1:-1]:
        _checked_forces(im)
    if s.neb.midpoints:   # where a coarse band cannot see a spurious hump of the model
        for i, (a, b) in enumerate(zip(images[:-1], images[1:], strict=True)):
            mid = _plain(a)
            mid.positions += 0.5 * find_mic(b.positions - a.positions, a.cell, a.pbc)[0]
            frames.add(mid, f"neb midpoint {i + 0.5:g}/{s.neb.images + 1} (atom {k} hops)")


def fewbody_clusters(elements: list[str], s, r_cut: np.ndarray,
                     rng: np.random.Generator) -> list[tuple[Atoms, str]]:
    """Dimers and trimers (Å, in a vacuum box) of every element pair, distances jittered.

    ``r_cut[i, j]`` is the cutoff (Å) of ``elements[i]``, ``elements[j]``; ``s`` the
    ``exploration.fewbody`` settings.
    """
    from ase.data import atomic_numbers, covalent_radii

    r_cut = np.broadcast_to(np.asarray(r_cut, dtype=float), (len(elements),) * 2)
    box = 2.0 * float(r_cut.max()) + 10.0
    out = []
    for i, e1 in enumerate(elements):
        for j, e2 in enumerate(elements[i:], start=i):
            rc = float(r_cut[i, j])
            r0 = s.r_min * (covalent_radii[atomic_numbers[e1]] + covalent_radii[atomic_numbers[e2]])
            grid = np.linspace(r0, rc, s.points)
            step = (rc - r0) / max(s.points - 1, 1)
            for r in grid + rng.uniform(-0.25, 0.25, grid.shape) * step:
                out.append((Atoms([e1, e2], positions=[[0, 0, 0], [r, 0, 0]], cell=[box] * 3,
                                  pbc=False), f"dimer {e1}{e2} r={r:.3f}"))
            for r in grid[: max(s.points // 2, 1)]:
                for ang in s.angles:
                    t = np.radians(ang)
                    pos = [[0, 0, 0], [r, 0, 0], [r * np.cos(t), r * np.sin(t), 0]]
                    out.append((Atoms([e2, e1, e1], positions=pos, cell=[box] * 3, pbc=False),
                                f"trimer {e2}{e1}{e1} r={r:.3f} angle={ang:g}"))
    for a, _ in out:
        a.center()
        a.info["config_type"] = FEWBODY_TYPE
    return out


def isolated_atoms(elements: list[str], r_cut: np.ndarray) -> list[Atoms]:
    """One atom of each element alone in the few-body vacuum box (``config_type: fewbody``),
    whose reference energies are E0 for ``e0.method: isolated``."""
    box = 2.0 * float(np.max(r_cut)) + 10.0
    out = []
    for el in elements:
        a = Atoms([el], positions=[[0.5 * box] * 3], cell=[box] * 3, pbc=False)
        a.info["config_type"] = FEWBODY_TYPE
        out.append(a)
    return out


_PROTOCOLS = {"relax": _relax_protocol, "strain": _strain_protocol, "neb": _neb_protocol}


def run_protocol(job: ExploreJob, model, tables, bundle, settings: ExplorationSettings,
                 min_distance: float, rng: np.random.Generator, num_threads: int | None = None,
                 keep_rows: bool = False, md_model=None) -> SegmentResult:
    """Run one protocol with the current model; its frames become candidates.

    Parameters
    ----------
    job
        What to run (:func:`exploration_jobs`).
    model, tables, bundle, num_threads, keep_rows, md_model
        As for :func:`aceal.loop.walker.run_segment`.
    settings
        The ``exploration`` config section.
    min_distance
        Å: a frame with two atoms closer than this ends the protocol (``md.min_distance``).
    rng
        Random displacements, the vacancy chosen, the few-body jitter.

    Returns
    -------
    SegmentResult
        ``state`` is ``None``; ``candidates`` have ``reason`` = the protocol name and
        ``walker`` = -1; ``blowup`` says why the protocol ended early, if it did.
    """
    from aceal.calculator import ACECalculator

    result = SegmentResult(None)
    frames = _Frames(min_distance)
    if md_model is None:
        md_model = mean_model(model)
    calc = ACECalculator(md_model, num_threads=num_threads)
    try:
        if job.protocol == "fewbody":
            frames.frames = fewbody_clusters(list(tables.basis.elements), settings.fewbody,
                                             tables.basis.r_cut, rng)
        else:
            _PROTOCOLS[job.protocol](job, calc, settings, frames, rng)
    except _Broken as err:
        result.blowup = f"{job.protocol}: {err}"
    except Exception as err:  # the model on a broken frame, an optimizer failure
        result.blowup = f"{job.protocol}: model_error: {' '.join(str(err).split())[:120]}"
    signals_fn = FrameSignals(tables, bundle, model, list(model.elements), num_threads)
    for step, (snap, detail) in enumerate(frames.frames):
        sig, desc = signals_fn(snap)
        cand = Candidate(snap, job.protocol, signal_values(sig), desc, -1, step, 0.0,
                         f"structure {job.structure}: {detail}",
                         relaxed=step in frames.relaxed)
        if keep_rows:
            cand.rows = signals_fn.rows(snap)
        result.candidates.append(cand)
    result.steps = len(frames.frames)
    return result
