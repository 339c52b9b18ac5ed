"""Rare-event indicators during dynamics, and the Liu-He-Mo force metrics."""

import time

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md.verlet import VelocityVerlet

from aceal.errors import AcealInputError
from aceal.uncertainty.force_metrics import (
    force_direction_angle,
    force_magnitude_error,
    rare_event_force_metrics,
    summarize_errors,
)
from aceal.uncertainty.rare_events import (
    RareEventMonitor,
    estimate_nn_distance,
    estimate_shell_cutoff,
)

A_CU = 3.61  # Å
D_NN = A_CU / np.sqrt(2.0)


def vacancy_hop_setup():
    """fcc Cu 3x3x3 with a vacancy at the old site of atom 0; k is its nearest neighbour."""
    atoms = bulk("Cu", "fcc", a=A_CU, cubic=True).repeat(3)
    vacancy = atoms.positions[0].copy()
    del atoms[0]
    k = int(np.argmin(np.linalg.norm(atoms.positions - vacancy, axis=1)))
    return atoms, k, atoms.positions[k].copy(), vacancy


def test_nn_distance_and_shell_cutoff_from_rdf():
    fcc = bulk("Cu", "fcc", a=A_CU, cubic=True).repeat(2)
    assert estimate_nn_distance(fcc) == pytest.approx(D_NN)
    rc = estimate_shell_cutoff(fcc)
    assert D_NN * 1.1 < rc < D_NN * np.sqrt(2.0) * 0.95
    bcc = bulk("W", "bcc", a=3.165, cubic=True).repeat(3)
    d1 = 3.165 * np.sqrt(3.0) / 2.0
    assert d1 < estimate_shell_cutoff(bcc) < 3.165  # between 1st and 2nd shells


def test_vacancy_hop_flagged_at_the_hop_step_and_not_before():
    atoms, k, start, vacancy = vacancy_hop_setup()
    monitor = RareEventMonitor(atoms)
    assert monitor.hop_threshold == pytest.approx(0.35 * D_NN)
    n_steps = 10
    hop_steps = {}
    for step in range(n_steps + 1):
        atoms.positions[k] = start + (vacancy - start) * step / n_steps
        for event in monitor(step=step):
            if event.kind == "hop":
                hop_steps.setdefault(event.atoms[0], []).append(step)
    # displacement step/10 * d_nn first exceeds 0.35 d_nn at step 4; only atom k hops, once
    assert hop_steps == {k: [4]}
    assert monitor.flagged_atoms(since_step=0, kinds=["hop"]).tolist() == [k]
    assert monitor.flagged_atoms(since_step=5, kinds=["hop"]).size == 0
    assert all(e.step >= 3 for e in monitor.events)  # nothing while k sits near its site


def test_vacancy_hop_changes_coordination_and_bonds():
    atoms, k, start, vacancy = vacancy_hop_setup()
    monitor = RareEventMonitor(atoms)
    reference_cn = monitor.coordination_numbers()[k]
    assert reference_cn == 11  # a neighbour of the vacancy
    for step in range(11):
        atoms.positions[k] = start + (vacancy - start) * step / 10
        monitor(step=step)
    coord = [e for e in monitor.events if e.kind == "coordination" and e.atoms == (k,)]
    assert coord, "the hopping atom must change coordination"
    assert min(e.value for e in coord) < 0  # under-coordinated at the saddle
    assert coord[-1].value == 0  # back to 11 neighbours in the vacancy site
    broken = {e.atoms for e in monitor.events if e.kind == "bond_break"}
    formed = {e.atoms for e in monitor.events if e.kind == "bond_form"}
    assert broken and formed
    assert all(k in pair for pair in broken | formed)
    # after accepting the hop, the new site is the reference: no further events
    monitor.reset_sites([k])
    n_events = len(monitor.events)
    monitor(step=11)
    assert len(monitor.events) == n_events


def test_bond_hysteresis_suppresses_flicker():
    dimer = Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]], cell=[20, 20, 20], pbc=False)
    monitor = RareEventMonitor(dimer, nn_distance=2.5, coordination_cutoff=3.0, bond_hysteresis=0.1)
    for step, x in enumerate([2.95, 3.05, 2.96, 3.08, 2.97], start=1):  # within 3.0 +- 0.1
        dimer.positions[1, 0] = x
        monitor(step=step)
    assert not [e for e in monitor.events if e.kind.startswith("bond")]
    dimer.positions[1, 0] = 3.2
    monitor(step=10)
    assert [(e.kind, e.atoms) for e in monitor.events if e.kind.startswith("bond")] == [
        ("bond_break", (0, 1))
    ]
    dimer.positions[1, 0] = 2.95  # inside the band: stays broken
    monitor(step=11)
    dimer.positions[1, 0] = 2.85
    monitor(step=12)
    kinds = [e.kind for e in monitor.events if e.kind.startswith("bond")]
    assert kinds == ["bond_break", "bond_form"]


def test_jump_of_per_atom_signal_and_calc_results():
    atoms = bulk("Cu", "fcc", a=A_CU, cubic=True).repeat(2)
    signal = np.zeros(len(atoms))
    monitor = RareEventMonitor(
        atoms,
        jump_thresholds={"uncertainty": 0.5, "energies": 0.2},
        signal_fns={"uncertainty": lambda _: signal.copy()},
    )
    monitor(step=0)
    signal[3] = 0.4  # below threshold
    monitor(step=10)
    signal[3] = 1.5  # change 1.1 > 0.5
    signal[5] = 0.3
    monitor(step=20)
    jumps = [e for e in monitor.events if e.kind == "jump:uncertainty"]
    assert [(e.step, e.atoms) for e in jumps] == [(20, (3,))]
    assert jumps[0].value == pytest.approx(1.1)
    # per-atom energies read from atoms.calc.results (never computed by the monitor)
    atoms.calc = EMT()
    atoms.get_potential_energy()
    monitor(step=30)
    atoms.positions[7] += [0.6, 0.0, 0.0]
    atoms.get_potential_energy()
    monitor(step=40)
    energy_jumps = [e for e in monitor.events if e.kind == "jump:energies"]
    assert len(energy_jumps) == 1 and 7 in energy_jumps[0].atoms


def test_attached_to_ase_md_counts_steps_and_stays_quiet_without_hops():
    atoms = bulk("Cu", "fcc", a=A_CU, cubic=True).repeat(2)
    atoms.calc = EMT()
    atoms.rattle(0.03, seed=1)  # starts slightly off the lattice: a few K of motion
    dyn = VelocityVerlet(atoms, timestep=2 * units.fs)
    monitor = RareEventMonitor(atoms, dynamics=dyn, jump_thresholds={"energies": 0.5})
    steps = []
    dyn.attach(lambda: steps.append(dyn.nsteps), interval=5)
    dyn.attach(monitor, interval=5)
    dyn.run(20)
    assert steps == [0, 5, 10, 15, 20]
    assert monitor.events == []  # small vibrations: no hops, no bond changes
    atoms.positions[0] += [0.0, 0.0, 0.45 * D_NN]  # kick: a hop must be seen at the next call
    monitor()
    assert [(e.step, e.kind) for e in monitor.events][:1] == [(20, "hop")]


def test_monitor_is_fast_for_1000_atoms():
    atoms = bulk("Cu", "fcc", a=A_CU, cubic=True).repeat((7, 7, 5))  # 980 atoms
    atoms.rattle(0.05, seed=3)
    monitor = RareEventMonitor(atoms)
    t0 = time.perf_counter()
    for step in range(5):
        atoms.rattle(0.01, seed=10 + step)
        monitor(step=10 * step)
    assert (time.perf_counter() - t0) / 5 < 0.5  # seconds per call (typically ~0.01)


def test_monitor_rejects_bad_input():
    atoms = bulk("Cu", "fcc", a=A_CU, cubic=True)
    with pytest.raises(AcealInputError):
        RareEventMonitor(atoms, reference_positions=np.zeros((2, 3)))
    monitor = RareEventMonitor(atoms)
    del atoms[0]
    with pytest.raises(AcealInputError):
        monitor()


# --- force metrics -------------------------------------------------------------------

PRED = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0], [3.0, 4.0, 0.0]])
REF = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [4.0, 3.0, 0.0]])


def test_force_metrics_by_hand():
    np.testing.assert_allclose(force_magnitude_error(PRED, REF), [-1.0, 1.0, 0.0, 0.0])
    angles = force_direction_angle(PRED, REF)
    assert angles[0] == 0.0
    assert angles[1] == pytest.approx(90.0)
    assert np.isnan(angles[2])  # zero forces have no direction
    assert angles[3] == pytest.approx(np.degrees(np.arccos(24.0 / 25.0)))  # 16.26 degrees

    m = rare_event_force_metrics(PRED, REF, rare_atoms=[1, 3])
    np.testing.assert_allclose(m.rare.magnitude_error, [1.0, 0.0])
    assert m.rare.magnitude_stats.mean == pytest.approx(0.5)
    assert m.rare.magnitude_stats.mae == pytest.approx(0.5)
    assert m.rare.magnitude_stats.rmse == pytest.approx(np.sqrt(0.5))
    assert m.rare.magnitude_stats.max == pytest.approx(1.0)
    a3 = np.degrees(np.arccos(0.96))
    assert m.rare.angle_stats.mean == pytest.approx((90.0 + a3) / 2)
    assert m.rare.angle_stats.rmse == pytest.approx(np.sqrt((90.0**2 + a3**2) / 2))
    assert m.rare.angle_stats.p50 == pytest.approx((90.0 + a3) / 2)
    assert m.all.magnitude_stats.mean == pytest.approx(0.0)
    assert m.all.magnitude_stats.mae == pytest.approx(0.5)
    assert m.all.magnitude_stats.p95 == pytest.approx(1.0)
    assert (m.all.angle_stats.n, m.all.angle_stats.n_undefined) == (3, 1)
    np.testing.assert_allclose(m.other.magnitude_error, [-1.0, 0.0])
    assert m.as_dict()["rare"]["angle"]["max"] == pytest.approx(90.0)
    mask = np.array([False, True, False, True])
    m2 = rare_event_force_metrics(PRED, REF, rare_atoms=mask)
    np.testing.assert_allclose(m2.rare.angle, m.rare.angle)


def test_force_angle_is_robust():
    f = np.array([[1.0, 1e-9, 0.0], [1.0, 0.0, 0.0], [1e-12, 0.0, 0.0]])
    g = np.array([[1.0, 0.0, 0.0], [-2.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    angles = force_direction_angle(f * 1e3, g * 1e3)  # parallel rounding must not give NaN
    assert angles[0] == pytest.approx(0.0, abs=1e-5)
    assert angles[1] == pytest.approx(180.0)
    assert np.isnan(force_direction_angle(f, g)[2])
    assert summarize_errors(np.array([np.nan])).n == 0
    with pytest.raises(AcealInputError):
        force_magnitude_error(np.zeros((3, 3)), np.zeros((2, 3)))


def _observe(monitor, atoms, path, atom):
    """Put ``atom`` at each position of ``path`` in turn and observe; all new events."""
    events = []
    for pos in path:
        atoms.positions[atom] = pos
        events += monitor()
    return events


@pytest.mark.parametrize("persistence", [1, 3])
def test_flicker_is_discarded_and_a_held_hop_is_an_event(persistence):
    atoms, k, start, vacancy = vacancy_hop_setup()
    mid = start + 0.6 * (vacancy - start)   # beyond the hop threshold (0.35 d_nn)
    monitor = RareEventMonitor(atoms, persistence=persistence)
    # a hot atom out for two observations, then back: a flicker
    flicker = _observe(monitor, atoms, [mid, mid, start, start], k)
    hops = [e for e in flicker if e.kind == "hop"]
    coord = [e for e in flicker if e.kind == "coordination"]
    if persistence == 1:
        assert [e.atoms for e in hops] == [(k,)] and coord
        assert monitor.discarded == dict.fromkeys(monitor.discarded, 0)
    else:
        assert hops == [] and coord == []
        assert monitor.discarded["hop"] == 1 and monitor.discarded["coordination"] >= 1
    # the atom moves into the vacancy and stays: one hop, reported once it has held
    held = _observe(monitor, atoms, [vacancy] * 5, k)
    hops = [e for e in held if e.kind == "hop"]
    assert [e.atoms for e in hops] == [(k,)]
    first_obs = 4  # observations before the hop started: the flicker
    assert hops[0].step == (first_obs + persistence - 1) * monitor.interval


def test_persistent_bond_events_and_validation():
    atoms = Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]], cell=[20, 20, 20], pbc=True)
    kw = {"nn_distance": 2.5, "coordination_cutoff": 3.0, "bond_hysteresis": 0.05}
    far, near = [3.5, 0, 0], [2.5, 0, 0]
    flick = RareEventMonitor(atoms.copy(), persistence=2, **kw)
    assert _observe(flick, flick.atoms, [far, near, far, near], 1) == []
    assert flick.discarded["bond_break"] == 2
    held = RareEventMonitor(atoms.copy(), persistence=2, **kw)
    ev = _observe(held, held.atoms, [far, far, far, near, near], 1)
    assert [(e.kind, e.step) for e in ev if e.kind.startswith("bond")] == [
        ("bond_break", 1), ("bond_form", 4)]
    with pytest.raises(AcealInputError, match="persistence"):
        RareEventMonitor(atoms, persistence=0)
