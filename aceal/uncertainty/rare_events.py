"""Rare-event indicators for MD: site hops, coordination changes, bond events and jumps.

Liu, He and Mo (2023) showed that machine-learned potentials hide their largest errors
on atoms in the middle of a migration (vacancy or interstitial hops). To label those
configurations we must first notice them; :class:`RareEventMonitor` does that while any
ASE dynamics runs::

    monitor = RareEventMonitor(atoms)            # first frame = reference sites
    dyn.attach(monitor, interval=10)
    dyn.run(1000)
    monitor.flagged_atoms(since_step=500)        # atoms involved in events

Indicators (all distances in Å):

* ``"hop"``: the minimum-image displacement of an atom from its reference site exceeds
  ``hop_fraction`` (default 0.35) times the nearest-neighbour distance ``d_nn``. Emitted
  once when the atom crosses the threshold; re-armed when it comes back below half the
  threshold, or by :meth:`RareEventMonitor.reset_sites` after the hop is accepted.
* ``"coordination"``: the number of bonded neighbours of an atom changed since the
  previous observation. ``value`` is the new coordination minus the reference one.
* ``"bond_break"`` / ``"bond_form"``: a pair left / entered the bonded set. Bonds use a
  hysteresis: a pair becomes bonded below ``cutoff - hysteresis`` and stops being bonded
  above ``cutoff + hysteresis``, so thermal rattling across the cutoff does not flicker.
  The coordination number counts these hysteretic bonds (with ``coordination_cutoff``).
* Persistence (``persistence = k``, default 1): a hop, a coordination change or a bond
  change is an event only once it has held for ``k`` consecutive observations (the atom
  left its site and stayed; the new coordination or bond survived ``k`` samples). A change
  that reverts sooner (a hot atom rattling across a cutoff) is discarded and counted in
  :attr:`RareEventMonitor.discarded` (per kind). The event's ``step`` is the step at which
  it was confirmed.
* ``"jump:<name>"``: a per-atom (or per-structure) signal changed between two consecutive
  observations by more than its threshold. Signals are callables ``f(atoms) -> array``
  given in ``signal_fns`` or keys of ``atoms.calc.results`` (``"energies"``, ``"gamma"``,
  ``"forces_std"``...). Arrays of shape ``(n_atoms, 3)`` are reduced to their row norm.
  Results are read, never computed: a missing key is skipped for that observation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.geometry import find_mic
from ase.neighborlist import neighbor_list as _ase_neighbor_list

from aceal.errors import AcealInputError

try:  # matscipy's C neighbour list is ~10x faster than ASE's numpy one; same interface
    from matscipy.neighbours import neighbour_list as _fast_neighbor_list
except ImportError:  # pragma: no cover - optional dependency
    _fast_neighbor_list = None

__all__ = [
    "RareEvent",
    "RareEventMonitor",
    "estimate_nn_distance",
    "estimate_shell_cutoff",
]

SignalFn = Callable[[Atoms], "np.ndarray | float"]


def neighbor_list(quantities: str, atoms: Atoms, cutoff: float) -> tuple[np.ndarray, ...]:
    """``ase.neighborlist.neighbor_list``, through matscipy when it is installed."""
    if _fast_neighbor_list is not None and (atoms.cell.rank == 3 or not atoms.pbc.any()):
        return _fast_neighbor_list(quantities, atoms, float(cutoff))
    return _ase_neighbor_list(quantities, atoms, float(cutoff))


@dataclass(frozen=True)
class RareEvent:
    """One rare-event indication.

    Attributes
    ----------
    step : int
        MD step at which the event was observed.
    kind : str
        ``"hop"``, ``"coordination"``, ``"bond_break"``, ``"bond_form"`` or ``"jump:<name>"``.
    atoms : tuple of int
        Atom indices involved (empty for a per-structure signal jump).
    value : float
        Hop: displacement from the site (Å). Coordination: new minus reference coordination.
        Bond events: the pair distance (Å). Jump: the largest absolute change (signal units).
    """

    step: int
    kind: str
    atoms: tuple[int, ...]
    value: float


def _pairs_min_distance(atoms: Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Unique pairs ``i < j`` within ``cutoff`` (Å) and their shortest image distance.

    Returns
    -------
    keys : ndarray of int64
        Pair keys ``i * n_atoms + j``, sorted.
    dist : ndarray of float
        Shortest distance (Å) over periodic images for each key.
    """
    n = len(atoms)
    i, j, d = neighbor_list("ijd", atoms, cutoff)
    keep = i < j
    keys = i[keep].astype(np.int64) * n + j[keep]
    d = d[keep]
    if keys.size == 0:
        return keys, d
    uniq, inverse = np.unique(keys, return_inverse=True)
    dmin = np.full(uniq.size, np.inf)
    np.minimum.at(dmin, inverse, d)
    return uniq, dmin


def estimate_nn_distance(atoms: Atoms) -> float:
    """Median over atoms of the nearest-neighbour distance (Å).

    Raises
    ------
    AcealInputError
        If the structure has fewer than two atoms or no atom has a neighbour within 20 Å.
    """
    n = len(atoms)
    if n < 2 and not any(atoms.pbc):
        raise AcealInputError("a nearest-neighbour distance needs at least two atoms")
    volume = abs(atoms.cell.volume) if all(atoms.pbc) else 0.0
    cutoff = 1.5 * (volume / n) ** (1.0 / 3.0) if volume > 0 else 3.0
    while cutoff <= 20.0:
        i, d = neighbor_list("id", atoms, cutoff)
        if i.size:
            nearest = np.full(n, np.inf)
            np.minimum.at(nearest, i, d)
            if np.isfinite(nearest).all() or cutoff * 2 > 20.0:
                return float(np.median(nearest[np.isfinite(nearest)]))
        cutoff *= 2.0
    raise AcealInputError("no atom has a neighbour within 20 Å: cannot find d_nn")


def estimate_shell_cutoff(atoms: Atoms, nn_distance: float | None = None) -> float:
    """Cutoff (Å) between the first and second neighbour shells, from the RDF.

    The pair distances up to ``2 d_nn`` are broadened with Gaussians of width
    ``0.04 d_nn`` and divided by ``r^2``; the cutoff is the middle of the lowest region of
    that curve between its first peak and the next maximum. Perfect fcc gives about
    ``1.2 d_nn``; bcc separates its first (8) and second (6) shells, about ``1.08 d_nn``.
    If no minimum exists (a featureless curve), ``1.25 d_nn`` is returned.
    """
    d1 = estimate_nn_distance(atoms) if nn_distance is None else float(nn_distance)
    rmax = 2.0 * d1
    _, dist = _pairs_min_distance(atoms, rmax)
    if dist.size == 0:
        return 1.25 * d1
    grid = np.linspace(0.7 * d1, rmax, 261)
    step = grid[1] - grid[0]
    counts, _ = np.histogram(dist, bins=grid.size, range=(grid[0] - step / 2, grid[-1] + step / 2))
    width = 0.04 * d1 / step
    kernel_x = np.arange(-int(5 * width) - 1, int(5 * width) + 2)
    kernel = np.exp(-0.5 * (kernel_x / width) ** 2)
    density = np.convolve(counts.astype(float), kernel, mode="same")
    density /= grid**2
    first = int(np.argmax(np.where(grid < 1.2 * d1, density, -np.inf)))
    rising = np.flatnonzero(
        (density[first + 1 : -1] > density[first:-2])
        & (density[first + 1 : -1] >= density[first + 2 :])
    )
    second = first + 1 + int(rising[0]) if rising.size else grid.size - 1
    if second - first < 2:
        return 1.25 * d1
    window = density[first : second + 1]
    low = np.flatnonzero(window <= window.min() + 1e-3 * density[first])
    if low.size == 0 or low[0] == 0 or first + low[-1] >= grid.size - 1:
        return 1.25 * d1
    return float(0.5 * (grid[first + low[0]] + grid[first + low[-1]]))


def _key_distances(atoms: Atoms, keys: np.ndarray) -> np.ndarray:
    """Minimum-image distances (Å) of the pairs encoded as ``i * n_atoms + j``."""
    i, j = np.divmod(keys, len(atoms))
    vectors = atoms.positions[j] - atoms.positions[i]
    if keys.size and atoms.pbc.any():
        _, lengths = find_mic(vectors, atoms.cell, atoms.pbc)
        return np.asarray(lengths, dtype=float)
    return np.linalg.norm(vectors, axis=1)


class _HystereticBonds:
    """Bonded pairs with hysteresis: form below ``cutoff - delta``, break above ``+ delta``."""

    def __init__(self, atoms: Atoms, cutoff: float, delta: float) -> None:
        self.cutoff = float(cutoff)
        self.delta = float(delta)
        keys, dist = _pairs_min_distance(atoms, self.cutoff)
        self.keys = keys[dist < self.cutoff]
        self.n = len(atoms)

    def update(self, atoms: Atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Advance to ``atoms``; return (formed keys, their distances, broken keys, distances)."""
        keys, dist = _pairs_min_distance(atoms, self.cutoff + self.delta)
        was = np.isin(keys, self.keys, assume_unique=True)
        bonded = (dist < self.cutoff - self.delta) | (was & (dist <= self.cutoff + self.delta))
        new_keys = keys[bonded]
        formed = bonded & ~was
        broken_keys = np.setdiff1d(self.keys, new_keys, assume_unique=True)
        self.keys = new_keys
        return keys[formed], dist[formed], broken_keys, _key_distances(atoms, broken_keys)

    def coordination(self) -> np.ndarray:
        """Number of bonded neighbours per atom."""
        i, j = np.divmod(self.keys, self.n)
        return np.bincount(i, minlength=self.n) + np.bincount(j, minlength=self.n)


class RareEventMonitor:
    """Observer for ASE dynamics that records rare events (hops, coordination, bonds, jumps).

    Parameters
    ----------
    atoms : ase.Atoms
        The atoms being simulated; the monitor keeps a reference and reads them at each call.
    hop_fraction : float
        A hop is a displacement from the reference site larger than
        ``hop_fraction * nn_distance``. Default 0.35.
    reference_positions : ndarray, shape (n_atoms, 3), optional
        Reference sites (Å). Default: the positions at construction.
    nn_distance : float, optional
        Nearest-neighbour distance (Å). Default: estimated from the reference frame.
    coordination_cutoff : float, optional
        Cutoff (Å) for coordination numbers, between the first and second shells.
        Default: :func:`estimate_shell_cutoff` of the reference frame.
    bond_cutoff : float, optional
        Cutoff (Å) for bond-breaking/forming events. Default: ``coordination_cutoff``.
    bond_hysteresis : float, optional
        Half-width (Å) of the hysteresis band around both cutoffs. Default ``0.05 d_nn``.
    jump_thresholds : mapping of str to float, optional
        Signals to watch for sudden jumps and the absolute change (signal units, e.g. eV
        for ``"energies"``) between two observations that counts as a jump.
    signal_fns : mapping of str to callable, optional
        ``name -> f(atoms)`` returning a per-atom array or a scalar. Names not found here
        are read from ``atoms.calc.results``.
    dynamics : ase.md.md.MolecularDynamics or ase.optimize.Optimizer, optional
        If given, event steps are ``dynamics.nsteps``; otherwise ``calls * interval``
        (the first call, made by ASE before the first step, is step 0).
    interval : int
        Steps between two calls, used only without ``dynamics``.
    persistence : int
        Observations a hop, coordination or bond change must hold before it is an event
        (1: at once). Reverted changes are counted in :attr:`discarded`.

    Notes
    -----
    Cost per call: one neighbour list at the bond cutoff plus a minimum-image displacement,
    a few milliseconds for 1000 atoms. Pairs are identified by atom indices only (the
    shortest periodic image), so a cell so small that an atom bonds to two images of the
    same neighbour counts that neighbour once.
    """

    def __init__(
        self,
        atoms: Atoms,
        *,
        hop_fraction: float = 0.35,
        reference_positions: np.ndarray | None = None,
        nn_distance: float | None = None,
        coordination_cutoff: float | None = None,
        bond_cutoff: float | None = None,
        bond_hysteresis: float | None = None,
        jump_thresholds: Mapping[str, float] | None = None,
        signal_fns: Mapping[str, SignalFn] | None = None,
        dynamics: object | None = None,
        interval: int = 1,
        persistence: int = 1,
    ) -> None:
        if hop_fraction <= 0:
            raise AcealInputError(f"hop_fraction must be positive, got {hop_fraction}")
        if int(persistence) < 1:
            raise AcealInputError(f"persistence must be >= 1 observation, got {persistence}")
        self.persistence = int(persistence)
        #: raw signals that reverted before they had persisted, per kind
        self.discarded: dict[str, int] = {"hop": 0, "coordination": 0, "bond_break": 0,
                                          "bond_form": 0}
        self.atoms = atoms
        self.n_atoms = len(atoms)
        self.hop_fraction = float(hop_fraction)
        ref = atoms.get_positions() if reference_positions is None else reference_positions
        ref = np.array(ref, dtype=float)
        if ref.shape != (self.n_atoms, 3):
            raise AcealInputError(
                f"reference_positions has shape {ref.shape}, expected ({self.n_atoms}, 3)"
            )
        frame = atoms.copy()
        frame.positions = ref
        self.nn_distance = (
            estimate_nn_distance(frame) if nn_distance is None else float(nn_distance)
        )
        self.coordination_cutoff = (
            estimate_shell_cutoff(frame, self.nn_distance)
            if coordination_cutoff is None
            else float(coordination_cutoff)
        )
        self.bond_cutoff = self.coordination_cutoff if bond_cutoff is None else float(bond_cutoff)
        self.bond_hysteresis = (
            0.05 * self.nn_distance if bond_hysteresis is None else float(bond_hysteresis)
        )
        self.jump_thresholds = dict(jump_thresholds or {})
        self.signal_fns = dict(signal_fns or {})
        self.dynamics = dynamics
        self.interval = int(interval)
        self.events: list[RareEvent] = []
        self._calls = 0
        self._reference = ref
        self._hopped = np.zeros(self.n_atoms, dtype=bool)
        self._away = np.zeros(self.n_atoms, dtype=np.int64)  # observations beyond the hop
        self._bond_count: dict[int, int] = {}  # pair key -> observations it has differed
        self._coord_bonds = _HystereticBonds(frame, self.coordination_cutoff, self.bond_hysteresis)
        self._bonds = (
            self._coord_bonds
            if self.bond_cutoff == self.coordination_cutoff
            else _HystereticBonds(frame, self.bond_cutoff, self.bond_hysteresis)
        )
        self._confirmed_bonds = self._bonds.keys.copy()
        self._reference_cn = self._coord_bonds.coordination()
        self._previous_cn = self._reference_cn.copy()  # the last confirmed coordination
        self._pending_cn = self._reference_cn.copy()
        self._pending_count = np.zeros(self.n_atoms, dtype=np.int64)
        self._previous_signals: dict[str, np.ndarray] = {}

    @property
    def hop_threshold(self) -> float:
        """Displacement (Å) from the reference site above which an atom has hopped."""
        return self.hop_fraction * self.nn_distance

    @property
    def reference_positions(self) -> np.ndarray:
        """Copy of the reference sites (Å), shape (n_atoms, 3)."""
        return self._reference.copy()

    def coordination_numbers(self) -> np.ndarray:
        """Hysteretic coordination number of every atom at the last observation."""
        return self._coord_bonds.coordination()

    def __call__(self, step: int | None = None) -> list[RareEvent]:
        """Observe the current state of ``atoms``; return (and record) the new events."""
        if step is None:
            nsteps = getattr(self.dynamics, "nsteps", None)
            step = int(nsteps) if nsteps is not None else self._calls * self.interval
        self._calls += 1
        if len(self.atoms) != self.n_atoms:
            raise AcealInputError(
                f"RareEventMonitor was built for {self.n_atoms} atoms, got {len(self.atoms)}"
            )
        new: list[RareEvent] = []
        new += self._check_hops(step)
        new += self._check_bonds(step)
        new += self._check_jumps(step)
        self.events += new
        return new

    observe = __call__

    def displacements(self) -> np.ndarray:
        """Minimum-image displacement (Å) of every atom from its reference site."""
        vectors = self.atoms.get_positions() - self._reference
        if self.atoms.pbc.any():
            vectors, lengths = find_mic(vectors, self.atoms.cell, self.atoms.pbc)
            return lengths
        return np.linalg.norm(vectors, axis=1)

    def _check_hops(self, step: int) -> list[RareEvent]:
        disp = self.displacements()
        threshold = self.hop_threshold
        beyond = disp > threshold
        armed = ~self._hopped
        self.discarded["hop"] += int(np.count_nonzero(armed & ~beyond & (self._away > 0)))
        self._away = np.where(armed & beyond, self._away + 1, 0)
        crossed = armed & (self._away >= self.persistence)
        self._hopped[disp < 0.5 * threshold] = False
        self._hopped |= crossed
        self._away[crossed] = 0
        return [RareEvent(step, "hop", (int(a),), float(disp[a])) for a in np.flatnonzero(crossed)]

    def _bond_events(self, step: int) -> list[RareEvent]:
        """Bonds broken / formed against the confirmed set, once held ``persistence`` times."""
        raw, confirmed = self._bonds.keys, self._confirmed_bonds
        gone = np.setdiff1d(confirmed, raw, assume_unique=True)
        new = raw[~np.isin(raw, confirmed, assume_unique=True)]
        differing = {int(k) for k in gone} | {int(k) for k in new}
        for key in [k for k in self._bond_count if k not in differing]:  # reverted
            kind = "bond_break" if np.isin(key, confirmed) else "bond_form"
            self.discarded[kind] += 1
            del self._bond_count[key]
        events, done_gone, done_new = [], [], []
        for kind, keys, done in (("bond_break", gone, done_gone), ("bond_form", new, done_new)):
            for key in keys.tolist():
                count = self._bond_count.get(key, 0) + 1
                if count < self.persistence:
                    self._bond_count[key] = count
                    continue
                self._bond_count.pop(key, None)
                done.append(key)
                d = float(_key_distances(self.atoms, np.array([key]))[0])
                pair = tuple(int(x) for x in divmod(key, self.n_atoms))
                events.append(RareEvent(step, kind, pair, d))
        if done_gone or done_new:
            kept = np.setdiff1d(confirmed, np.array(done_gone, dtype=confirmed.dtype))
            self._confirmed_bonds = np.union1d(kept, np.array(done_new, dtype=confirmed.dtype))
        return events

    def _check_bonds(self, step: int) -> list[RareEvent]:
        updates = [self._coord_bonds] if self._bonds is self._coord_bonds else [
            self._coord_bonds, self._bonds]
        for b in updates:
            b.update(self.atoms)
        events = self._bond_events(step)
        cn = self._coord_bonds.coordination()
        changed = cn != self._previous_cn
        same_pending = changed & (cn == self._pending_cn)
        reverted = ~changed & (self._pending_count > 0)
        self.discarded["coordination"] += int(np.count_nonzero(reverted))
        self._pending_count = np.where(same_pending, self._pending_count + 1,
                                       np.where(changed, 1, 0))
        self._pending_cn = np.where(changed, cn, self._previous_cn)
        confirmed = changed & (self._pending_count >= self.persistence)
        for a in np.flatnonzero(confirmed):
            events.append(
                RareEvent(step, "coordination", (int(a),), float(cn[a] - self._reference_cn[a]))
            )
        self._previous_cn = np.where(confirmed, cn, self._previous_cn)
        self._pending_count[confirmed] = 0
        return events

    def _signal(self, name: str) -> np.ndarray | None:
        if name in self.signal_fns:
            value = self.signal_fns[name](self.atoms)
        else:
            calc = self.atoms.calc
            results = getattr(calc, "results", None) or {}
            if name not in results:
                return None
            value = results[name]
        arr = np.asarray(value, dtype=float)
        if arr.ndim == 2 and arr.shape[1] == 3 and arr.shape[0] == self.n_atoms:
            arr = np.linalg.norm(arr, axis=1)
        return arr

    def _check_jumps(self, step: int) -> list[RareEvent]:
        events: list[RareEvent] = []
        for name, threshold in self.jump_thresholds.items():
            current = self._signal(name)
            if current is None:
                continue
            previous = self._previous_signals.get(name)
            self._previous_signals[name] = current.copy()
            if previous is None or previous.shape != current.shape:
                continue
            change = np.abs(current - previous)
            if current.ndim == 0:
                if change > threshold:
                    events.append(RareEvent(step, f"jump:{name}", (), float(change)))
                continue
            jumped = np.flatnonzero(change.reshape(change.shape[0], -1).max(axis=1) > threshold)
            if jumped.size:
                events.append(
                    RareEvent(
                        step, f"jump:{name}", tuple(int(a) for a in jumped), float(change.max())
                    )
                )
        return events

    def events_since(
        self, since_step: int = 0, kinds: Iterable[str] | None = None
    ) -> list[RareEvent]:
        """Events with ``step >= since_step``, optionally only of the given kinds.

        A kind ``"jump"`` matches every ``"jump:<name>"``.
        """
        wanted = None if kinds is None else set(kinds)

        def keep(e: RareEvent) -> bool:
            if e.step < since_step:
                return False
            return wanted is None or e.kind in wanted or e.kind.split(":")[0] in wanted

        return [e for e in self.events if keep(e)]

    def flagged_atoms(self, since_step: int = 0, kinds: Iterable[str] | None = None) -> np.ndarray:
        """Sorted unique indices of atoms involved in events with ``step >= since_step``."""
        idx = [a for e in self.events_since(since_step, kinds) for a in e.atoms]
        return np.unique(np.asarray(idx, dtype=int))

    def reset_sites(self, indices: Iterable[int] | None = None) -> None:
        """Take the current positions as reference sites (all atoms, or ``indices``).

        Call this after a hop has been accepted (labelled, or judged physical) so the atom
        is watched from its new site; its reference coordination is reset too.
        """
        sel = np.arange(self.n_atoms) if indices is None else np.asarray(list(indices), dtype=int)
        self._reference[sel] = self.atoms.get_positions()[sel]
        self._hopped[sel] = False
        self._away[sel] = 0
        self._reference_cn[sel] = self._coord_bonds.coordination()[sel]
