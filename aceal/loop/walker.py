"""MD walkers on the current model: sampling, uncertainty signals, rare events, safety.

A walker runs one *segment* of Langevin MD (NVT, or NPT with ASE's Langevin-BAOAB
barostat) with the current ACE model.  Every ``sample_interval`` steps it computes

* ``force_std``: the committee force deviation of every atom,
  ``sqrt(sum_a var_k F_ia^(k))`` (eV/Å; DP-GEN's "max force deviation" is its maximum),
* ``energy_std``: the committee standard deviation of the energy per atom (eV/atom),
* ``gamma``: the extrapolation grade of every atom (dimensionless, pacemaker's D-optimality
  grade, from :mod:`aceal.active_set` on the per-atom basis values),
* rare events (:class:`aceal.uncertainty.RareEventMonitor`: hops, coordination changes),

and classifies the frame with :func:`aceal.uncertainty.threshold_select` against the
``[collect, stop]`` thresholds.  Collected frames and frames with rare events become
candidates.  Safety: a frame with a signal at or above its ``stop`` value, non-finite
positions/forces, atoms closer than ``min_distance`` (Å) or an exception in the model ends
the segment; the last sane frames become candidates and the walker restarts from its last
good frame with fresh Maxwell-Boltzmann velocities.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms, units
from ase.parallel import DummyMPI

from aceal.loop.config import MDSettings, UncertaintySettings
from aceal.loop.structures import min_distance

__all__ = ["WalkerState", "Candidate", "SegmentResult", "ModelBundle", "run_segment",
           "new_walker", "signal_thresholds", "mean_model", "FrameSignals", "signal_values"]


@dataclass
class ModelBundle:
    """What a walker needs from the current model (sent from rank 0 to the walkers).

    Attributes
    ----------
    version
        Model version (= campaign iteration that fitted it).
    coefficients
        ``(M,)`` mean coefficients.
    committee
        ``(K, M)`` committee coefficient vectors (posterior samples).
    e0
        Reference energy per element, eV.
    repulsion
        Core repulsion parameters or ``None``.
    inverses
        ``{Z: ActiveSetInverse}`` of the active set (for gamma).
    """

    version: int
    coefficients: np.ndarray
    committee: np.ndarray
    e0: dict[str, float]
    repulsion: dict | None
    inverses: dict


@dataclass
class WalkerState:
    """A walker between segments (picklable; saved in the campaign state).

    ``atoms`` carries momenta; ``good`` is the last frame that passed every check;
    ``sites`` (Å, ``(N, 3)``) are the reference sites of the hop detector: the initial
    structure's positions, then the mean sampled positions of the last segment (thermal
    noise averages out, and an atom that hopped gets its new site).
    """

    walker_id: int
    atoms: Atoms
    good: Atoms
    md_time: float = 0.0     # fs simulated so far
    restarts: int = 0
    structure: int = 0       # index of the initial structure it started from
    sites: np.ndarray | None = None


@dataclass
class Candidate:
    """A frame proposed for labelling.

    Attributes
    ----------
    atoms
        The structure (no calculator).
    reason
        ``"uncertainty"``, ``"rare_event"`` or ``"blowup"``.
    signals
        ``force_std_max`` (eV/Å), ``energy_std`` (eV/atom), ``gamma_max``, NaN if unused.
    descriptors
        ``(n_atoms, M)`` per-atom basis values (for the diverse batch selection).
    detail
        Free text (the threshold verdict, the events, the blow-up cause).
    rows
        Design rows of the frame (:func:`aceal.descriptors.design_rows`) when the walker
        was asked to keep them (``selection.method: information``), else ``None``.
    relaxed
        A relaxed end state of a protocol (its energy makes a formation energy).
    """

    atoms: Atoms
    reason: str
    signals: dict[str, float]
    descriptors: np.ndarray
    walker: int
    step: int
    md_time: float
    detail: str = ""
    rows: object = None
    relaxed: bool = False


@dataclass
class SegmentResult:
    """Candidates, the uncertainty trace and the walker's new state."""

    state: WalkerState
    candidates: list[Candidate] = field(default_factory=list)
    trace: list[tuple[float, float, float, float]] = field(default_factory=list)
    blowup: str | None = None
    steps: int = 0
    events: int = 0
    discarded: int = 0  # raw rare-event signals (of the watched kinds) that did not persist
    #: ``(before, after)`` frames of the first hop of the segment (the NEB protocol's ends)
    hops: list[tuple[Atoms, Atoms]] = field(default_factory=list)


_NAN = float("nan")


def maxwell_boltzmann(atoms: Atoms, temperature: float, rng: np.random.Generator) -> None:
    """Maxwell-Boltzmann momenta at ``temperature`` (K), never communicating over MPI."""
    try:
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # ASE < 3.29
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
    thermalize_momenta(atoms, temperature_K=temperature, rng=rng, comm=DummyMPI())


def new_walker(walker_id: int, atoms: Atoms, temperature: float, rng: np.random.Generator,
               structure: int = 0) -> WalkerState:
    """A walker at ``atoms`` with Maxwell-Boltzmann velocities at ``temperature`` (K)."""
    a = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    maxwell_boltzmann(a, temperature, rng)
    return WalkerState(walker_id, a, a.copy(), structure=structure,
                       sites=atoms.positions.copy())


def mean_model(model):
    """``model`` without its committee (what drives the MD: one coefficient vector)."""
    from aceal.model import ACEModel

    if model.committee is None:
        return model
    return ACEModel(model.basis, model.coefficients, e0=model.e0, repulsion=model.repulsion)


def signal_thresholds(unc: UncertaintySettings) -> dict[str, tuple[float, float]]:
    """``{signal: (collect, stop)}`` of the configured signals."""
    pairs = {"force_std": unc.force_std, "energy_std": unc.energy_std, "gamma": unc.gamma}
    return {k: (float(v[0]), float(v[1])) for k, v in pairs.items() if v is not None}


class FrameSignals:
    """Per-frame uncertainty signals of a sampled frame.

    The committee spreads come from one committee evaluation of the frame
    (:class:`aceal.ACECalculator` computes the ``K`` members in the same kernel pass as
    the mean), the extrapolation grade from the per-atom basis values.  The MD itself runs
    on the mean model only, so the committee is paid for once per sample, not per step.
    """

    def __init__(self, tables, bundle: ModelBundle, model, elements: list[str],
                 num_threads: int | None) -> None:
        from ase.data import atomic_numbers

        from aceal.calculator import ACECalculator

        self.tables = tables
        self.bundle = bundle
        self.threads = num_threads
        basis = tables.basis
        self.columns = {atomic_numbers[el]: np.flatnonzero(basis.species == mu)
                        for mu, el in enumerate(elements)}
        self.calc = ACECalculator(model, num_threads=num_threads)

    def __call__(self, atoms: Atoms) -> tuple[dict[str, np.ndarray | float], np.ndarray]:
        from aceal.active_set import extrapolation_grade
        from aceal.descriptors import per_atom_basis

        n = len(atoms)
        out: dict[str, np.ndarray | float] = {}
        if self.bundle.committee is not None and len(self.bundle.committee) > 1:
            self.calc.calculate(atoms, ["energy", "forces"])
            out["energy_std"] = float(self.calc.results["energy_std"]) / n
            out["force_std"] = np.asarray(self.calc.results["forces_std"], dtype=float)
        else:
            out["energy_std"] = 0.0
            out["force_std"] = np.zeros(n)
        b = per_atom_basis(self.tables, atoms, num_threads=self.threads)
        gamma = np.full(n, np.inf)
        for z, inv in self.bundle.inverses.items():
            mask = atoms.numbers == z
            if mask.any():
                gamma[mask] = extrapolation_grade(b[np.ix_(mask, self.columns[z])], inv)
        out["gamma"] = gamma
        return out, b

    def rows(self, atoms: Atoms):
        """Design rows of a frame (energy, forces, stress): only for candidates."""
        from aceal.descriptors import design_rows

        return design_rows(self.tables, [atoms], num_threads=self.threads)[0]


def signal_values(sig: dict) -> dict[str, float]:
    """The per-frame summary of :class:`FrameSignals`: ``force_std_max`` (eV/Å),
    ``energy_std`` (eV/atom), ``gamma_max``."""
    return {"force_std_max": float(np.max(sig["force_std"])) if "force_std" in sig else _NAN,
            "energy_std": float(sig["energy_std"]),
            "gamma_max": float(np.max(sig["gamma"]))}


def _dynamics(atoms: Atoms, md: MDSettings, temperature: float, rng: np.random.Generator):
    dt = md.timestep * units.fs
    if md.ensemble == "npt":
        from ase.md.langevinbaoab import LangevinBAOAB

        return LangevinBAOAB(atoms, dt, temperature_K=temperature,
                             externalstress=-md.pressure * units.GPa, hydrostatic=True,
                             T_tau=1.0 / md.friction * units.fs,
                             P_tau=md.taup * units.fs, rng=rng, comm=DummyMPI())
    return _langevin(atoms, dt, temperature, md.friction / units.fs, rng)


def _langevin(atoms, dt, temperature, friction, rng):
    from ase.md.langevin import Langevin

    return Langevin(atoms, dt, temperature_K=temperature, friction=friction, fixcm=False,
                    rng=rng, comm=DummyMPI())


def _mic(vectors: np.ndarray, atoms: Atoms) -> np.ndarray:
    """Minimum-image form of displacement vectors (Å) in the cell of ``atoms``."""
    if not atoms.pbc.any():
        return vectors
    from ase.geometry import find_mic

    return find_mic(vectors, atoms.cell, atoms.pbc)[0]


def _sane(atoms: Atoms, min_dist: float) -> str | None:
    if not np.all(np.isfinite(atoms.positions)):
        return "nan_positions"
    if min_distance(atoms) < min_dist:
        return "too_close"
    return None


def run_segment(state: WalkerState, model, tables, bundle: ModelBundle, md: MDSettings,
                unc: UncertaintySettings, temperature: float, rng: np.random.Generator,
                num_threads: int | None = None, keep_rows: bool = False,
                md_model=None) -> SegmentResult:
    """Run one MD segment of a walker with the current model.

    Parameters
    ----------
    state
        The walker (not modified; the new state is in the result).
    model
        The current :class:`aceal.model.ACEModel` with its committee (the uncertainty of
        sampled frames).
    tables
        :class:`aceal.descriptors.DesignTables` of the campaign basis.
    bundle
        Committee and active set of the current model.
    md, unc
        The validated ``md`` and ``uncertainty`` config sections.
    temperature
        Thermostat temperature, K.
    rng
        Generator for the Langevin noise and new velocities.
    num_threads
        numba threads of this rank.
    keep_rows
        Attach the design rows to every candidate (for ``selection.method:
        information``); computed for candidates only.
    md_model
        The model that drives the MD (the mean, without committee); default: ``model``
        without its committee.
    """
    from aceal.calculator import ACECalculator
    from aceal.uncertainty import RareEventMonitor, threshold_select

    thresholds = signal_thresholds(unc)
    collect_thr = {k: (lo, np.inf) for k, (lo, hi) in thresholds.items()}
    signals_fn = FrameSignals(tables, bundle, model, list(model.elements), num_threads)
    if md_model is None:
        md_model = mean_model(model)
    atoms = state.atoms.copy()
    atoms.calc = ACECalculator(md_model, num_threads=num_threads)
    dyn = _dynamics(atoms, md, temperature, rng)
    rare = unc.rare_events
    monitor = None
    if rare.enabled:
        sites = state.sites if state.sites is not None else state.atoms.positions
        monitor = RareEventMonitor(atoms, hop_fraction=rare.hop_fraction,
                                   reference_positions=sites, persistence=rare.persistence)
    result = SegmentResult(state)
    good = state.good.copy()
    start_pos = state.atoms.positions.copy()
    pos_sum = np.zeros_like(start_pos)
    n_pos = 0
    recent: list[Candidate] = []       # last sane sampled frames (blow-up candidates)
    history = [Atoms(state.atoms.numbers, positions=state.atoms.positions,   # the last
                     cell=state.atoms.cell, pbc=state.atoms.pbc)]      # sampled frames
    n_samples = md.steps_per_segment // md.sample_interval
    t0 = state.md_time
    step = 0
    blowup = None
    for _ in range(n_samples):
        try:
            dyn.run(md.sample_interval)
            step += md.sample_interval
            forces = atoms.get_forces()
            bad = _sane(atoms, md.min_distance)
            if bad is None and not np.all(np.isfinite(forces)):
                bad = "nan_forces"
        except Exception as err:  # model evaluation on a broken frame
            bad = f"model_error: {' '.join(str(err).split())[:120]}"
        if bad is not None:
            blowup = bad
            break
        snap = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        pos_sum += start_pos + _mic(atoms.positions - start_pos, atoms)
        n_pos += 1
        sig, desc = signals_fn(snap)
        values = signal_values(sig)
        t = t0 + step * md.timestep
        result.trace.append((t, values["force_std_max"], values["gamma_max"],
                             values["energy_std"]))
        used = {k: [np.atleast_1d(sig[k])] for k in thresholds}   # one candidate
        stop = threshold_select(used, {k: (hi, np.inf) for k, (lo, hi) in thresholds.items()})
        verdict = threshold_select(used, collect_thr)
        events = []
        if monitor is not None:
            raw = monitor(step)
            events = [e for e in raw if e.kind in rare.kinds]
            result.events += len(events)
            if not result.hops and any(e.kind == "hop" for e in raw):
                result.hops.append((history[0], snap))   # before the change began
        history.append(snap)
        history = history[-(rare.persistence + 1):]
        cand = Candidate(snap, "uncertainty", values, desc, state.walker_id, step, t,
                         verdict.reasons[0])
        if stop.status[0] != "skip":
            cand.reason = "blowup"
            cand.detail = f"stop threshold: {stop.reasons[0]}"
            recent.append(cand)
            blowup = f"uncertainty ({stop.reasons[0]})"
            break
        if events:
            kinds = sorted({e.kind for e in events})
            result.candidates.append(Candidate(snap, "rare_event", values, desc,
                                               state.walker_id, step, t,
                                               f"{len(events)} events: {', '.join(kinds)}"))
        elif verdict.status[0] == "collect":
            result.candidates.append(cand)
        recent.append(cand)
        recent = recent[-max(md.keep_last, 1):]
        good = snap.copy()
        good.set_momenta(atoms.get_momenta())
    result.steps = step
    if monitor is not None:
        result.discarded = sum(monitor.discarded.get(k, 0) for k in rare.kinds)
    new_time = t0 + step * md.timestep
    sites = pos_sum / n_pos if n_pos else state.sites
    if blowup is not None:
        result.blowup = blowup
        keep = recent[-md.keep_last:] if md.keep_last else []
        seen = {id(c.atoms) for c in result.candidates}
        for c in keep:
            if id(c.atoms) not in seen:
                c.reason = "blowup"
                c.detail = c.detail if c.detail.startswith("stop") else f"before {blowup}"
                result.candidates.append(c)
        restart = Atoms(good.numbers, positions=good.positions, cell=good.cell, pbc=good.pbc)
        maxwell_boltzmann(restart, temperature, rng)
        result.state = WalkerState(state.walker_id, restart, restart.copy(), new_time,
                                   state.restarts + 1, state.structure, sites)
    else:
        cur = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc,
                    momenta=atoms.get_momenta())
        result.state = WalkerState(state.walker_id, cur, good, new_time, state.restarts,
                                   state.structure, sites)
    if keep_rows:
        for c in result.candidates:
            c.rows = signals_fn.rows(c.atoms)
    return result
