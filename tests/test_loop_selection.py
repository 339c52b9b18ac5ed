"""Information-gain batch selection (``selection.method: information``)."""

from __future__ import annotations

import numpy as np
import pytest

from aceal.errors import AcealInputError
from aceal.uncertainty.selection import greedy_information_gain, select_batch


def _gain(x, sigma):
    return 0.5 * np.linalg.slogdet(np.eye(len(x)) + x @ sigma @ x.T)[1]


def test_gain_matches_log_det_and_conditions_on_picks():
    rng = np.random.default_rng(0)
    m = 7
    lf = rng.normal(size=(m, m)) * 0.3
    sigma = lf @ lf.T
    rows = [rng.normal(size=(3, m)) for _ in range(5)]
    idx, gains = greedy_information_gain(rows, 3, lf)
    first = int(np.argmax([_gain(x, sigma) for x in rows]))
    assert idx[0] == first and gains[0] == pytest.approx(_gain(rows[first], sigma))
    # the second pick is judged under the posterior conditioned on the first pick's rows
    x0 = rows[idx[0]]
    s1 = sigma - sigma @ x0.T @ np.linalg.solve(np.eye(3) + x0 @ sigma @ x0.T, x0 @ sigma)
    second = max((i for i in range(5) if i != idx[0]), key=lambda i: _gain(rows[i], s1))
    assert idx[1] == second and gains[1] == pytest.approx(_gain(rows[second], s1))
    assert gains[0] >= gains[1] >= gains[2] > 0


def test_lazy_greedy_equals_plain_greedy():
    # plain greedy with an explicit covariance: every candidate re-scored after each pick
    rng = np.random.default_rng(7)
    m = 9
    lf = rng.normal(size=(m, m)) * 0.4
    rows = [rng.normal(size=(int(rng.integers(1, 4)), m)) for _ in range(12)]
    sigma, expect = lf @ lf.T, []
    for _ in range(6):
        best = max((i for i in range(12) if i not in expect),
                   key=lambda i: _gain(rows[i], sigma))
        expect.append(best)
        x = rows[best]
        sigma = sigma - sigma @ x.T @ np.linalg.solve(np.eye(len(x)) + x @ sigma @ x.T,
                                                      x @ sigma)
    idx, gains = greedy_information_gain(rows, 6, lf)
    assert idx == expect
    assert np.all(np.diff(gains) <= 1e-12)


def test_duplicate_is_not_picked_twice():
    # two copies of the most informative candidate: after the first is labelled the copy
    # is worth less than a different, individually weaker candidate
    m = 4
    lf = np.eye(m)
    a = np.array([[3.0, 0, 0, 0]])
    b = np.array([[0, 1.5, 0, 0]])
    idx, _ = greedy_information_gain([a, a.copy(), b], 2, lf)
    assert idx[0] in (0, 1) and idx[1] == 2


def test_known_directions_are_not_informative():
    # the posterior already pins down feature 0: a candidate far out along it (which a
    # descriptor-space criterion would pick first) carries little information
    lf = np.diag([1e-3, 1.0, 1.0])
    far_known = np.array([[100.0, 0.0, 0.0]])
    near_unknown = np.array([[0.0, 1.0, 0.0]])
    idx, gains = greedy_information_gain([far_known, near_unknown], 1, lf)
    assert idx == [1]
    fps = select_batch([far_known, near_unknown], 1, "fps", standardize=False,
                       training=np.zeros((1, 3)))
    assert fps.indices == [0]


def test_select_batch_information_with_priority_and_errors():
    rng = np.random.default_rng(1)
    rows = [rng.normal(size=(2, 5)) for _ in range(6)]
    desc = [rng.normal(size=(4, 5)) for _ in range(6)]
    sel = select_batch(desc, 3, "information", rows=rows, factor=np.eye(5), priority=[4])
    assert sel.indices[0] == 4 and len(set(sel.indices)) == 3
    assert all(r.startswith("information") for r in sel.reasons[1:])
    # the priority pick conditions the posterior: same as excluding it in the greedy call
    idx, _ = greedy_information_gain(rows, 2, np.eye(5), exclude=[4])
    assert sel.indices[1:] == idx
    with pytest.raises(AcealInputError, match="design rows"):
        select_batch(desc, 2, "information")


class _Design:
    def __init__(self, energy, forces, stress):
        self.energy, self.forces, self.stress = energy, forces, stress
        self.natoms = len(forces) // 3


def _candidate(rows_forces, reason="uncertainty", m=5):
    from ase import Atoms

    from aceal.loop.walker import Candidate

    n = len(rows_forces) // 3
    atoms = Atoms("Cu" * n, positions=np.arange(3 * n, dtype=float).reshape(n, 3) * 2.5,
                  cell=[20.0] * 3, pbc=True)
    design = _Design(np.zeros(m), np.asarray(rows_forces, dtype=float), np.zeros((6, m)))
    signals = {"force_std_max": 0.1, "energy_std": 0.0, "gamma_max": 1.0}
    return Candidate(atoms, reason, signals, np.ones((n, m)), 0, 10, 20.0, rows=design)


def test_select_candidates_information_prefers_what_the_posterior_does_not_know():
    from aceal.fit import Weights, fit_ridge
    from aceal.loop.selection import select_candidates, unit_noise_rows

    m = 5
    rng = np.random.default_rng(3)
    a = np.zeros((60, m))
    a[:, :3] = rng.normal(size=(60, 3))          # training constrains features 0-2 only
    y = a @ np.array([1.0, -1.0, 0.5, 0.0, 0.0]) + 0.01 * rng.normal(size=60)
    post = fit_ridge(a.T @ a, a.T @ y, float(y @ y), 60, np.ones(m), 1e-3)
    w = Weights(energy=1.0, forces=100.0, virial=1.0)
    known = np.zeros((3, m))
    known[:, :3] = 2.0 * rng.normal(size=(3, 3))    # larger, but along known directions
    new = np.zeros((3, m))
    new[0, 3] = 0.5                               # small, along an unknown direction
    cands = [_candidate(known), _candidate(known * 1.1), _candidate(new)]
    rows = unit_noise_rows(cands[2].atoms, cands[2].rows, w, post.beta)
    assert rows.shape == (1 + 3 + 6, m)           # energy, forces, virial rows
    assert rows[1, 3] == pytest.approx(0.5 * np.sqrt(post.beta * 100.0))
    idx, why = select_candidates(cands, 1, "information", None, posterior=post, weights=w)
    assert idx == [2] and why[0].startswith("information")
    # fps on descriptors cannot tell them apart; without the posterior it is an error
    with pytest.raises(ValueError, match="posterior"):
        select_candidates(cands, 1, "information", None)
    # a rare event takes its priority share first, the rest by information
    cands.append(_candidate(known * 0.9, reason="rare_event"))
    idx, why = select_candidates(cands, 2, "information", None, posterior=post, weights=w,
                                 priority_share=0.5)
    assert idx == [3, 2] and why[0] == "priority (rare_event)"


def test_protocol_share_reserves_slots_for_the_best_protocol_frames():
    from aceal.fit import Weights, fit_ridge
    from aceal.loop.selection import select_candidates

    m = 5
    rng = np.random.default_rng(4)
    a = np.zeros((60, m))
    a[:, :3] = rng.normal(size=(60, 3))
    y = a @ np.array([1.0, -1.0, 0.5, 0.0, 0.0])
    post = fit_ridge(a.T @ a, a.T @ y, float(y @ y), 60, np.ones(m), 1e-3)
    w = Weights(energy=1.0, forces=100.0, virial=1.0)
    thermal = []
    for k in range(4):                     # thermal frames along unknown directions
        f = np.zeros((3, m))
        f[:, 3 + k % 2] = 1.0 + k
        thermal.append(_candidate(f))
    protocol = []
    for scale in (0.01, 0.2):              # protocol frames: one informative, one not
        f = np.zeros((3, m))
        f[0, 3] = scale
        c = _candidate(f, reason="relax")
        c.walker = -1
        protocol.append(c)
    cands = thermal + protocol
    idx, _ = select_candidates(cands, 2, "information", None, posterior=post, weights=w)
    assert not {4, 5} & set(idx)           # without a share the thermal frames win
    idx, why = select_candidates(cands, 2, "information", None, posterior=post, weights=w,
                                 protocol_share=0.5)
    assert idx[0] == 5 and why[0] == "priority (relax)"   # the informative protocol frame
    assert idx[1] in range(4)


def test_protocol_slots_go_round_the_protocols():
    from aceal.loop.selection import protocol_slots

    assert protocol_slots({"fewbody": 20, "neb": 3, "relax": 5, "strain": 9}, 4) == {
        "fewbody": 1, "neb": 1, "relax": 1, "strain": 1}
    # a protocol short of candidates passes its turn; the rest go round again
    assert protocol_slots({"fewbody": 20, "neb": 1}, 5) == {"fewbody": 4, "neb": 1}
    # uneven slots: the rotation decides who gets the extra one, every protocol in turn
    got = [protocol_slots({"a": 9, "b": 9, "c": 9}, 2, rotation=r) for r in range(3)]
    assert got == [{"a": 1, "b": 1}, {"b": 1, "c": 1}, {"c": 1, "a": 1}]
    assert protocol_slots({"a": 2, "b": 0}, 9) == {"a": 2}
    assert protocol_slots({}, 3) == {} and protocol_slots({"a": 3}, 0) == {}


def test_far_out_fewbody_frames_do_not_crowd_out_the_other_protocols():
    from aceal.loop.selection import select_candidates

    m = 20

    def frame(cols, reason, walker):
        c = _candidate(np.zeros((3, m)), reason=reason, m=m)
        c.descriptors = np.zeros((1, m))
        c.descriptors[0, cols] = 1.0
        c.walker = walker
        return c

    # dimers, each new along two directions (farther, standardised, than the others)
    cands = [frame([2 * k, 2 * k + 1], "fewbody", -1) for k in range(5)]
    cands += [frame([10], "neb", -1), frame([11], "strain", -1)]
    cands += [frame([12 + k], "uncertainty", 0) for k in range(4)]   # thermal frames
    idx, why = select_candidates(cands, 4, "fps", np.zeros((1, m)), protocol_share=0.75)
    assert sorted(cands[i].reason for i in idx[:3]) == ["fewbody", "neb", "strain"], why


def test_a_protocol_slot_goes_to_the_relaxed_state_with_the_least_certain_energy():
    from ase import Atoms

    from aceal.loop.selection import least_certain_relaxed, select_candidates

    m = 6

    def frame(col, n_atoms, energy_std, relaxed):
        c = _candidate(np.zeros((3, m)), reason="relax", m=m)
        c.atoms = Atoms("Cu" * n_atoms, positions=np.zeros((n_atoms, 3)))
        c.descriptors = np.zeros((1, m))
        c.descriptors[0, col] = 1.0
        c.walker, c.relaxed = -1, relaxed
        c.signals = {"energy_std": energy_std, "force_std_max": 0.1, "gamma_max": 1.0}
        return c

    # a far-out path frame (fps would take it), two relaxed states: per atom the first
    # is less certain, in total energy (what a formation energy is made of) the second
    cands = [frame(0, 10, 0.01, False), frame(1, 10, 0.002, True), frame(2, 50, 0.001, True)]
    cands[0].descriptors *= 50.0
    assert least_certain_relaxed(cands, [0, 1, 2], 1) == [2]
    idx, why = select_candidates(cands, 2, "fps", np.zeros((1, m)), protocol_share=0.5)
    assert idx[0] == 2 and why[0] == "priority (relax)"
    # two slots: the relaxed states first, then the protocol's best other frame
    idx, _ = select_candidates(cands + [frame(3, 5, 0.0, False)], 3, "fps", np.zeros((1, m)),
                               protocol_share=1.0)
    assert idx[:2] == [2, 1] and idx[2] == 0
    # without a committee (no spread) the relaxed states are not preferred
    for c in cands:
        c.signals["energy_std"] = 0.0
    assert least_certain_relaxed(cands, [0, 1, 2], 1) == []
