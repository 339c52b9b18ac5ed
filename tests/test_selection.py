"""MaxVol/D-optimal active sets, entropy selection, batch selection and the generator.

All tests use a simple smooth per-atom descriptor defined here (radial Gaussian
histogram plus Legendre angular moments, with a cosine cutoff): the uncertainty code
takes any descriptor, the ACE basis values being the production one.
"""

import itertools

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111
from ase.neighborlist import neighbor_list
from numpy.polynomial import legendre

from aceal.errors import AcealInputError, UnknownElementError
from aceal.uncertainty import (
    PACEMAKER_GAMMA,
    DescriptorTransform,
    active_set_inverse,
    build_active_set,
    entropy_gain,
    extrapolation_grade,
    extrapolation_grade_by_element,
    farthest_point_sampling,
    generate_structures,
    greedy_d_optimal,
    knn_entropy,
    maxvol,
    select_batch,
    select_max_entropy,
    threshold_select,
)

A_CU = 3.61  # Å
CUTOFF = 4.0  # Å
CENTRES = np.linspace(2.0, 4.0, 6)  # Å
WIDTH = 0.3  # Å
LS = (1, 2, 3, 4)


def descriptor(atoms: Atoms) -> np.ndarray:
    """Per-atom features (n_atoms, 10): 6 smooth radial bins and 4 angular moments.

    Radial: ``sum_j exp(-(r_ij - mu_n)^2 / 2 w^2) fc(r_ij)``; angular:
    ``sum_jk fc_j fc_k P_l(cos theta_jik)`` for l = 1..4 (rotation invariant).
    """
    n = len(atoms)
    i, d, vec = neighbor_list("idD", atoms, CUTOFF)
    fc = 0.5 * (np.cos(np.pi * d / CUTOFF) + 1.0)
    radial = np.zeros((n, CENTRES.size))
    np.add.at(radial, i, np.exp(-0.5 * ((d[:, None] - CENTRES) / WIDTH) ** 2) * fc[:, None])
    unit = vec / d[:, None]
    bounds = np.searchsorted(i, np.arange(n + 1))  # neighbor_list sorts by i
    angular = np.zeros((n, len(LS)))
    for a in range(n):
        sel = slice(bounds[a], bounds[a + 1])
        cos = np.clip(unit[sel] @ unit[sel].T, -1.0, 1.0)
        weights = np.outer(fc[sel], fc[sel])
        for col, ell in enumerate(LS):
            angular[a, col] = (weights * legendre.legval(cos, np.eye(ell + 1)[ell])).sum()
    return np.hstack([radial, angular])


def fcc_cu(reps=3) -> Atoms:
    return bulk("Cu", "fcc", a=A_CU, cubic=True).repeat(reps)


def rattled(seed: int, amplitude: float, reps=3) -> Atoms:
    atoms = fcc_cu(reps)
    atoms.rattle(amplitude, seed=seed)
    return atoms


def liquid_like(n=108, seed=0) -> Atoms:
    """Random positions (random sequential addition, no pair closer than 2.1 Å)."""
    rng = np.random.default_rng(seed)
    length = 3 * A_CU * 1.12
    pos = np.empty((0, 3))
    while len(pos) < n:
        p = rng.uniform(0.0, length, 3)
        dd = pos - p
        dd -= length * np.round(dd / length)
        if not len(pos) or np.sqrt((dd**2).sum(axis=1)).min() > 2.1:
            pos = np.vstack([pos, p])
    return Atoms(f"Cu{n}", positions=pos, cell=np.eye(3) * length, pbc=True)


def surface_slab() -> Atoms:
    return fcc111("Cu", (3, 3, 4), a=A_CU, vacuum=8.0)


@pytest.fixture(scope="module")
def training():
    """Per-atom descriptors of 8 rattled fcc Cu cells (0.03 to 0.10 Å), by configuration."""
    return [descriptor(rattled(s, 0.03 + 0.01 * s)) for s in range(8)]


@pytest.fixture(scope="module")
def inverses(training):
    return active_set_inverse(build_active_set({29: np.vstack(training)}))


def test_descriptor_is_rotation_invariant():
    atoms = rattled(1, 0.1)
    turned = atoms.copy()
    turned.rotate(37.0, "x", rotate_cell=True)
    turned.rotate(-21.0, "z", rotate_cell=True)
    np.testing.assert_allclose(descriptor(turned), descriptor(atoms), atol=1e-10)


# --- MaxVol and the extrapolation grade ---------------------------------------------


def test_maxvol_matches_brute_force_on_small_matrices():
    rows_, cols = 9, 3
    n_exact = 0
    for seed in range(20):
        a = np.random.default_rng(seed).normal(size=(rows_, cols))
        tol = 1.0 + 1e-9
        rows, coeff = maxvol(a, tol=tol)
        assert len(set(rows.tolist())) == cols
        np.testing.assert_allclose(coeff, a @ np.linalg.inv(a[rows]), atol=1e-9)
        np.testing.assert_allclose(coeff[rows], np.eye(cols), atol=1e-9)
        assert np.abs(coeff).max() <= tol
        found = abs(np.linalg.det(a[rows]))
        best = max(
            abs(np.linalg.det(a[list(c)])) for c in itertools.combinations(range(rows_), cols)
        )
        assert found >= best / cols ** (cols / 2)  # guaranteed for a dominant submatrix
        n_exact += found >= best * (1 - 1e-9)
    assert n_exact >= 16  # in practice MaxVol almost always finds the maximum


def test_maxvol_tolerance_and_bad_input():
    a = np.random.default_rng(5).normal(size=(200, 12))
    rows, coeff = maxvol(a, tol=1.05)
    assert np.abs(coeff).max() <= 1.05
    with pytest.raises(AcealInputError):
        maxvol(a.T)  # wide
    with pytest.raises(AcealInputError):
        maxvol(np.outer(np.arange(1.0, 11.0), [1.0, 2.0, 3.0]))  # rank 1


def test_gamma_at_most_one_on_training_and_above_one_on_new_structures(training, inverses):
    b_train = np.vstack(training)
    gamma_train = extrapolation_grade(b_train, inverses[29])
    assert gamma_train.max() <= 1.01 + 1e-9
    held_out = extrapolation_grade(descriptor(rattled(100, 0.05)), inverses[29])
    assert held_out.max() < 1.5  # same distribution: (almost) interpolation
    slab = surface_slab()
    gamma_slab = extrapolation_grade(descriptor(slab), inverses[29])
    surface = slab.positions[:, 2] > slab.positions[:, 2].max() - 0.1
    assert gamma_slab[surface].min() > 3.0  # surface atoms: clear extrapolation
    gamma_liquid = extrapolation_grade(descriptor(liquid_like()), inverses[29])
    assert np.median(gamma_liquid) > 2.0
    # per-element dispatch, and unknown elements refused
    numbers = slab.numbers
    np.testing.assert_allclose(
        extrapolation_grade_by_element(numbers, descriptor(slab), inverses), gamma_slab
    )
    with pytest.raises(UnknownElementError):
        extrapolation_grade_by_element(np.full(len(slab), 13), descriptor(slab), inverses)


def test_active_set_with_raw_inverse_matches_pacemaker_formula(training):
    b = np.vstack(training)
    active, indices = build_active_set({29: b}, return_indices=True)
    np.testing.assert_allclose(active[29], b[indices[29]])
    a_inv = np.linalg.inv(active[29])
    probe = descriptor(surface_slab())
    np.testing.assert_allclose(
        extrapolation_grade(probe, a_inv),
        np.abs(probe @ a_inv).max(axis=1),
    )
    inv = active_set_inverse(active)[29]
    assert inv.complement is None
    np.testing.assert_allclose(extrapolation_grade(probe, inv), extrapolation_grade(probe, a_inv))


def test_batched_active_set_equals_dominance_condition(training):
    b = np.vstack(training)
    active = build_active_set({29: b}, batch_size=200)
    gamma = extrapolation_grade(b, active_set_inverse(active)[29])
    assert gamma.max() <= 1.01 + 1e-9


def test_rank_deficient_and_underdetermined_active_sets():
    rng = np.random.default_rng(3)
    b = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 10))  # rank 4 in 10 features
    active = build_active_set({1: b, 2: b[:6]})
    assert active[1].shape == (4, 10)
    assert active[2].shape == (4, 10)
    inv = active_set_inverse(active)
    assert inv[1].complement.shape == (10, 6)
    assert extrapolation_grade(b, inv[1]).max() <= 1.01 + 1e-9
    # a row outside the training span is extrapolation, however small its in-span part
    outside = inv[1].complement[:, 0] * 3 * inv[1].residual_scale
    assert extrapolation_grade(outside, inv[1])[0] == pytest.approx(3.0)
    few = rng.normal(size=(5, 10))  # fewer atoms than features: all rows are kept
    inv_few = active_set_inverse(build_active_set({1: few}))[1]
    assert extrapolation_grade(few, inv_few).max() == pytest.approx(1.0)
    assert extrapolation_grade(rng.normal(size=(3, 10)), inv_few).min() > 1.0


# --- entropy -------------------------------------------------------------------------


def test_knn_entropy_of_gaussian_matches_analytic():
    rng = np.random.default_rng(0)
    sigma = 0.7
    x = rng.normal(0.0, sigma, size=(4000, 2))
    exact = 0.5 * 2 * np.log(2 * np.pi * np.e * sigma**2)
    assert knn_entropy(x, k=1) == pytest.approx(exact, abs=0.08)
    assert knn_entropy(x, k=4) == pytest.approx(exact, abs=0.05)


def test_entropy_prefers_new_structure_type_over_near_duplicates(training):
    train = np.vstack(training)
    duplicates = [descriptor(rattled(200 + s, 0.06)) for s in range(3)]
    slab = descriptor(surface_slab())
    candidates = [duplicates[0], duplicates[1], slab, duplicates[2]]
    transform = DescriptorTransform.fit(np.concatenate([train, *candidates]))
    gain_dup = entropy_gain(train, duplicates[0], transform)
    gain_slab = entropy_gain(train, slab, transform)
    assert gain_slab > gain_dup
    assert gain_slab > 0
    result = select_max_entropy(train, candidates, k=2)
    assert result.indices[0] == 2
    assert result.gains[0] > result.gains[1]
    assert result.entropy[0] > result.initial_entropy
    stop = select_max_entropy(train, candidates, k=4, min_gain=result.gains[0] * 0.5)
    assert stop.indices == [2]


# --- thresholds and batches ----------------------------------------------------------


def test_threshold_select_pacemaker_window():
    gammas = [np.array([1.0, 2.0]), np.array([0.5, 7.0]), np.array([30.0]), np.array([np.nan])]
    force_dev = [0.01, 0.02, 0.03, 0.04]
    result = threshold_select(
        {"gamma": gammas, "force_dev": force_dev},
        {"gamma": PACEMAKER_GAMMA, "force_dev": (0.05, 0.15)},
    )
    assert result.status == ["skip", "collect", "reject", "reject"]
    assert result.collect.tolist() == [1]
    assert "gamma=7" in result.reasons[1]
    assert "not finite" in result.reasons[3]
    result = threshold_select(
        {"force_dev": np.array([0.01, 0.1, 0.2])}, {"force_dev": (0.05, 0.15)}
    )
    assert result.status == ["skip", "collect", "reject"]
    with pytest.raises(AcealInputError):
        threshold_select({"gamma": [1.0]}, {"force_dev": (0.05, 0.15)})


def test_farthest_point_sampling_on_a_line():
    x = np.linspace(0.0, 10.0, 11)[:, None]
    idx, dist = farthest_point_sampling(x, 3)
    assert sorted(idx[:2]) == [0, 10] and idx[2] == 5
    assert dist[2] == pytest.approx(5.0)
    idx, _ = farthest_point_sampling(x, 2, existing=np.array([[0.0]]))
    assert idx == [10, 5]


def test_greedy_d_optimal_fills_the_missing_direction():
    existing = np.array([[1.0, 0.0], [2.0, 0.0]])
    cands = np.array([[3.0, 0.0], [0.1, 1.0], [1.0, 0.1]])
    idx, gains = greedy_d_optimal(cands, 2, existing)
    assert idx[0] == 1
    assert gains[0] > gains[1] > 0


@pytest.mark.parametrize("method", ["fps", "d-optimal", "entropy"])
def test_select_batch_picks_new_structures_first(training, method):
    candidates = [descriptor(rattled(300 + s, 0.06)) for s in range(3)]
    candidates.insert(1, descriptor(surface_slab()))
    candidates.append(descriptor(liquid_like(seed=1)))
    batch = select_batch(candidates, 2, method, training=training)
    assert sorted(batch.indices) == [1, 4]
    assert len(batch.reasons) == 2 and all(method in r for r in batch.reasons)
    prio = select_batch(candidates, 2, method, training=training, priority=[3])
    assert prio.indices[0] == 3 and prio.reasons[0].startswith("priority")
    assert prio.indices[1] in (1, 4)


def test_select_batch_rejects_unknown_method(training):
    with pytest.raises(AcealInputError, match="unknown selection method"):
        select_batch([training[0], training[1]], 1, "uniform")
    with pytest.raises(AcealInputError, match="rng"):
        select_batch([training[0], training[1]], 1, "random")


def test_random_selection_is_uniform_seeded_and_keeps_priority():
    candidates = [np.full((2, 3), float(i)) for i in range(10)]
    first = select_batch(candidates, 4, "random", priority=[7],
                         rng=np.random.default_rng(1)).indices
    again = select_batch(candidates, 4, "random", priority=[7],
                         rng=np.random.default_rng(1)).indices
    assert first == again and first[0] == 7 and len(set(first)) == 4
    counts = np.zeros(10)
    rng = np.random.default_rng(2)
    for _ in range(2000):
        counts[select_batch(candidates, 3, "random", rng=rng).indices] += 1
    # every candidate drawn with probability 3/10: 600 +- 3 sigma (sigma ~ 20.5)
    assert np.all(np.abs(counts - 600) < 65)


# --- generator -----------------------------------------------------------------------


def test_generator_is_deterministic_and_raises_entropy():
    seeds = [fcc_cu(2)]
    kwargs = dict(n_rounds=2, proposals_per_round=6, keep_per_round=2, seed=7)
    first = generate_structures(seeds, descriptor, **kwargs)
    second = generate_structures(seeds, descriptor, **kwargs)
    assert 1 <= len(first.structures) <= 4
    assert len(first.structures) == len(second.structures)
    for a, b in zip(first.structures, second.structures, strict=True):
        assert a.info == b.info
        assert len(a) == len(b)
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.cell.array, b.cell.array)
    assert first.final_entropy > first.initial_entropy
    for s in first.structures:
        assert s.calc is None
        assert s.info["entropy_gain"] > 0
        assert s.info["generator_move"] in (
            "rattle",
            "strain",
            "vacancy",
            "interstitial",
            "displace",
        )
        if len(s) > 1:
            assert neighbor_list("d", s, 0.7 * A_CU / np.sqrt(2)).size == 0
    other = generate_structures(seeds, descriptor, **{**kwargs, "seed": 8})
    assert [s.positions.tolist() for s in other.structures] != [
        s.positions.tolist() for s in first.structures
    ]
