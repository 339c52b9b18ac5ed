"""Label-free structure generator that drives a pool toward unexplored descriptor space.

Following the entropy-maximisation idea of Montes de Oca Zapiain et al. (2022), new
structures are proposed by cheap perturbations of the current pool and kept only if they
raise the entropy of the pool's per-atom descriptor distribution. No energies or forces
are computed: the output is a list of unlabelled structures for a reference calculator.

Moves (``rng`` is a :class:`numpy.random.Generator`, so a seed makes a run reproducible):

* ``"rattle"``: Gaussian displacement of every atom, standard deviation
  ``rattle_amplitude`` (Å).
* ``"strain"``: random symmetric strain with components of standard deviation
  ``strain_amplitude`` (dimensionless), atoms scaled with the cell (periodic cells only).
* ``"vacancy"``: remove one random atom.
* ``"interstitial"``: insert a copy of a random atom at the largest hole found among 256
  random trial points, pushed toward the hole's centre (periodic cells only).
* ``"displace"``: move one random atom by 0.3 to 0.6 ``d_nn`` in a random direction
  (the start of a hop).

Proposals with two atoms closer than ``min_distance`` (default 0.6 ``d_nn`` of the seeds;
an unrelaxed octahedral interstitial in fcc sits at 0.71 ``d_nn``)
are discarded: such structures are unphysical and waste reference calculations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.geometry import find_mic

from aceal.errors import AcealInputError
from aceal.uncertainty.entropy import DescriptorTransform, descriptor_entropy, select_max_entropy
from aceal.uncertainty.rare_events import estimate_nn_distance, neighbor_list

__all__ = ["MOVES", "GeneratorResult", "generate_structures", "propose_move"]

MOVES: tuple[str, ...] = ("rattle", "strain", "vacancy", "interstitial", "displace")

DescriptorFn = Callable[[Atoms], np.ndarray]


def _min_distance(atoms: Atoms, limit: float) -> float:
    """Shortest interatomic distance (Å) if below ``limit``, else ``inf``."""
    if len(atoms) < 2 and not atoms.pbc.any():
        return np.inf
    d = neighbor_list("d", atoms, limit)
    return float(d.min()) if d.size else np.inf


def _centre_of_hole(atoms: Atoms, point: np.ndarray, nn_distance: float) -> np.ndarray:
    """Move ``point`` (Å) toward the centre of its hole (maximise its distance to atoms)."""

    def clearance(p: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        vectors, lengths = find_mic(p - atoms.positions, atoms.cell, atoms.pbc)
        return float(lengths.min()), vectors, lengths

    point = point.copy()
    best, vectors, lengths = clearance(point)
    step = 0.1 * nn_distance
    for _ in range(60):
        near = lengths < best + 0.3 * nn_distance
        push = (vectors[near] / lengths[near, None] ** 3).sum(axis=0)
        norm = np.linalg.norm(push)
        if norm < 1e-12 or step < 1e-3 * nn_distance:
            break
        trial = point + step * push / norm
        value, trial_vectors, trial_lengths = clearance(trial)
        if value > best:
            point, best, vectors, lengths = trial, value, trial_vectors, trial_lengths
        else:
            step *= 0.5
    return point


def propose_move(
    atoms: Atoms,
    move: str,
    rng: np.random.Generator,
    *,
    nn_distance: float,
    rattle_amplitude: float = 0.1,
    strain_amplitude: float = 0.03,
) -> Atoms | None:
    """Apply one perturbation to a copy of ``atoms``.

    Parameters
    ----------
    atoms : ase.Atoms
        Parent structure (not modified).
    move : str
        One of :data:`MOVES`.
    rng : numpy.random.Generator
        Source of randomness.
    nn_distance : float
        Nearest-neighbour distance (Å) used by ``"displace"``.
    rattle_amplitude : float
        Standard deviation (Å) of ``"rattle"`` displacements.
    strain_amplitude : float
        Standard deviation of ``"strain"`` components.

    Returns
    -------
    ase.Atoms or None
        The new structure without a calculator, or None if the move does not apply
        (e.g. a vacancy in a one-atom cell, or a strain of a non-periodic structure).
    """
    new = atoms.copy()
    new.calc = None
    periodic = bool(new.pbc.all()) and new.cell.rank == 3
    if move == "rattle":
        new.positions += rng.normal(0.0, rattle_amplitude, size=new.positions.shape)
    elif move == "strain":
        if not periodic:
            return None
        e = rng.normal(0.0, strain_amplitude, size=(3, 3))
        e = 0.5 * (e + e.T)
        new.set_cell(new.cell.array @ (np.eye(3) + e), scale_atoms=True)
    elif move == "vacancy":
        if len(new) < 2:
            return None
        del new[int(rng.integers(len(new)))]
    elif move == "interstitial":
        if not periodic:
            return None
        trial = rng.random((256, 3)) @ new.cell.array
        probe = Atoms(
            numbers=np.concatenate([new.numbers, np.zeros(256, dtype=int)]),
            positions=np.vstack([new.positions, trial]),
            cell=new.cell,
            pbc=True,
        )
        i, j, d = neighbor_list("ijd", probe, 2.0 * nn_distance)
        hole = np.full(256, 2.0 * nn_distance)
        mask = (i >= len(new)) & (j < len(new))
        np.minimum.at(hole, i[mask] - len(new), d[mask])
        site = _centre_of_hole(new, trial[int(np.argmax(hole))], nn_distance)
        donor = int(rng.integers(len(new)))
        new += Atoms(numbers=[new.numbers[donor]], positions=[site])
    elif move == "displace":
        k = int(rng.integers(len(new)))
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        new.positions[k] += direction * nn_distance * rng.uniform(0.3, 0.6)
    else:
        raise AcealInputError(f"unknown move {move!r}; use one of {', '.join(MOVES)}")
    return new


@dataclass
class GeneratorResult:
    """Output of :func:`generate_structures`.

    Attributes
    ----------
    structures : list of ase.Atoms
        New unlabelled structures in the order accepted. ``info`` holds
        ``generator_move``, ``generator_round``, ``generator_parent`` (index into
        ``seeds + structures``) and ``entropy_gain`` (nats, within its round).
    initial_entropy, final_entropy : float
        Entropy (nats) of the seeds' and of the final pool's per-atom descriptors, both
        with one transform fitted on the final pool.
    n_proposed, n_discarded : int
        Proposals made, and those discarded (move not applicable or atoms too close).
    """

    structures: list[Atoms]
    initial_entropy: float
    final_entropy: float
    n_proposed: int
    n_discarded: int


def generate_structures(
    seeds: Sequence[Atoms],
    descriptor_fn: DescriptorFn,
    *,
    n_rounds: int = 3,
    proposals_per_round: int = 16,
    keep_per_round: int = 4,
    moves: Sequence[str] = MOVES,
    seed: int | np.random.Generator | None = 0,
    rattle_amplitude: float = 0.1,
    strain_amplitude: float = 0.03,
    min_distance: float | None = None,
    min_gain: float = 0.0,
    n_neighbors: int = 1,
) -> GeneratorResult:
    """Grow a pool of structures that spreads the per-atom descriptor distribution.

    Each round proposes ``proposals_per_round`` perturbations of random pool members
    (seeds and structures accepted so far), computes their descriptors, and greedily keeps
    up to ``keep_per_round`` of them whose entropy gain (nats) exceeds ``min_gain``.

    Parameters
    ----------
    seeds : sequence of ase.Atoms
        Starting structures (not modified, not returned).
    descriptor_fn : callable
        ``descriptor_fn(atoms) -> (n_atoms, n_features)`` per-atom descriptors.
    n_rounds, proposals_per_round, keep_per_round : int
        Size of the search.
    moves : sequence of str
        Moves to draw from (uniformly), a subset of :data:`MOVES`.
    seed : int or numpy.random.Generator, optional
        Seed for reproducibility.
    rattle_amplitude : float
        Rattle standard deviation (Å).
    strain_amplitude : float
        Strain standard deviation (dimensionless).
    min_distance : float, optional
        Discard proposals with two atoms closer than this (Å); default 0.6 ``d_nn``.
    min_gain : float
        Minimum entropy gain (nats) to accept a proposal.
    n_neighbors : int
        Neighbour order of the entropy estimator.

    Returns
    -------
    GeneratorResult
    """
    if not seeds:
        raise AcealInputError("generate_structures needs at least one seed structure")
    unknown = set(moves) - set(MOVES)
    if unknown or not moves:
        raise AcealInputError(f"unknown moves {sorted(unknown)}; use a subset of {MOVES}")
    rng = np.random.default_rng(seed)
    nn_distance = float(np.median([estimate_nn_distance(s) for s in seeds]))
    min_distance = 0.6 * nn_distance if min_distance is None else float(min_distance)
    pool: list[Atoms] = [s.copy() for s in seeds]
    pool_desc: list[np.ndarray] = [np.asarray(descriptor_fn(s), dtype=float) for s in pool]
    accepted: list[Atoms] = []
    n_proposed = n_discarded = 0
    for round_ in range(n_rounds):
        proposals: list[Atoms] = []
        parents: list[int] = []
        moves_used: list[str] = []
        for _ in range(proposals_per_round):
            parent = int(rng.integers(len(pool)))
            move = str(moves[int(rng.integers(len(moves)))])
            n_proposed += 1
            new = propose_move(
                pool[parent],
                move,
                rng,
                nn_distance=nn_distance,
                rattle_amplitude=rattle_amplitude,
                strain_amplitude=strain_amplitude,
            )
            if new is None or _min_distance(new, min_distance) < min_distance:
                n_discarded += 1
                continue
            proposals.append(new)
            parents.append(parent)
            moves_used.append(move)
        if not proposals:
            continue
        descs = [np.asarray(descriptor_fn(p), dtype=float) for p in proposals]
        result = select_max_entropy(
            np.vstack(pool_desc),
            descs,
            keep_per_round,
            n_neighbors=n_neighbors,
            min_gain=min_gain,
        )
        for idx, gain in zip(result.indices, result.gains, strict=True):
            s = proposals[idx]
            s.info.update(
                generator_move=moves_used[idx],
                generator_round=round_,
                generator_parent=parents[idx],
                entropy_gain=float(gain),
            )
            pool.append(s)
            pool_desc.append(descs[idx])
            accepted.append(s)
    everything = np.vstack(pool_desc)
    transform = DescriptorTransform.fit(everything)
    seeds_desc = np.vstack(pool_desc[: len(seeds)])
    initial = (
        descriptor_entropy(seeds_desc, transform, n_neighbors)
        if len(seeds_desc) > n_neighbors
        else -np.inf
    )
    final = descriptor_entropy(everything, transform, n_neighbors)
    return GeneratorResult(accepted, float(initial), float(final), n_proposed, n_discarded)
