"""Walkers (signals, candidates, blow-up safety), structures and the incremental refit."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from aceal import ACEBasis, ACEModel
from aceal.descriptors import DesignTables
from aceal.loop.config import RareEventSettings, StructureSettings, validate_campaign_config
from aceal.loop.refit import Refitter
from aceal.loop.structures import build_structure, min_distance, seed_configurations
from aceal.loop.walker import new_walker, run_segment
from tests.loop_helpers import ROOT, tiny_config


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    cfg = validate_campaign_config(tiny_config(tmp_path_factory.mktemp("o")), ROOT)
    basis = ACEBasis(elements=["Cu"], **cfg.basis)
    tables = DesignTables(basis)
    base = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    seeds = seed_configurations([base], 4, 0.06, 0.01, np.random.default_rng(0))
    for a in seeds:
        a.calc = EMT()
        a.get_forces()
    d = tmp_path_factory.mktemp("fit")
    ref = Refitter(basis, tables, cfg.fit, {"Cu": 0.0}, d)
    ref.fold(seeds)
    post, com = ref.solve(np.random.default_rng(0))
    bundle = ref.bundle(0, post, com, None)
    model = ACEModel(basis, post.mean, e0={"Cu": 0.0}, committee=com)
    return cfg, basis, tables, base, seeds, ref, bundle, model, d


def _run(setup, md=None, unc=None, temperature=900.0):
    cfg, basis, tables, base, seeds, ref, bundle, model, _ = setup
    mdc = cfg.md.model_copy(update=md or {})
    uc = cfg.uncertainty.model_copy(update=unc or {})
    w = new_walker(0, base, temperature, np.random.default_rng(1))
    return w, run_segment(w, model, tables, bundle, mdc, uc, temperature,
                          np.random.default_rng(2))


def test_segment_samples_signals_and_collects(setup):
    w, r = _run(setup, unc={"force_std": [0.0, 10.0], "gamma": None})
    assert r.blowup is None and r.steps == 40
    assert len(r.trace) == 4
    t, fstd, gamma, estd = r.trace[-1]
    assert t == pytest.approx(80.0) and fstd > 0 and gamma > 0 and estd >= 0
    assert len(r.candidates) == 4 and all(c.reason == "uncertainty" for c in r.candidates)
    c = r.candidates[0]
    assert c.descriptors.shape == (32, len(setup[1]))
    assert c.signals["force_std_max"] == pytest.approx(r.trace[0][1])
    assert r.state.md_time == pytest.approx(80.0)
    assert not np.allclose(r.state.atoms.positions, w.atoms.positions)


def test_per_atom_signal_uses_worst_atom(setup):
    # collect threshold between the smallest and the largest per-atom value: collected
    w, r = _run(setup, unc={"force_std": None, "gamma": [0.0, 1e9]})
    assert len(r.candidates) == 4
    g = r.trace[0][2]
    w, r2 = _run(setup, unc={"force_std": None, "gamma": [g * 0.999, 1e9]})
    assert r2.candidates and r2.candidates[0].signals["gamma_max"] >= g * 0.999


def test_uncertainty_stop_makes_blowup_candidates_and_restarts(setup):
    w, r = _run(setup, unc={"force_std": [0.0, 1e-9]})
    assert r.blowup and "uncertainty" in r.blowup
    assert r.steps == 10
    assert [c.reason for c in r.candidates] == ["blowup"]
    assert "stop threshold" in r.candidates[0].detail
    assert r.state.restarts == 1
    np.testing.assert_allclose(r.state.atoms.positions, w.good.positions)   # last good frame


def test_signals_and_kept_rows_match_the_design_rows(setup):
    # force_std and energy_std come from one committee evaluation of the frame; they must
    # equal the spread of the committee's predictions through the design rows
    from aceal.descriptors import design_rows

    cfg, basis, tables, base, seeds, ref, bundle, model, _ = setup
    w = new_walker(0, base, 900.0, np.random.default_rng(1))
    unc = cfg.uncertainty.model_copy(update={"force_std": [0.0, 10.0], "gamma": [0.0, 0.0]})
    r = run_segment(w, model, tables, bundle, cfg.md, unc, 900.0, np.random.default_rng(2),
                    keep_rows=True)
    assert r.blowup and [c.reason for c in r.candidates] == ["blowup"]   # rows kept there too
    c = r.candidates[0]
    rows = design_rows(tables, [c.atoms])[0]
    np.testing.assert_allclose(c.rows.forces, rows.forces, atol=1e-12)
    com = bundle.committee
    fk = (rows.forces @ com.T).reshape(len(c.atoms), 3, -1)
    fstd = np.sqrt(fk.var(axis=2, ddof=1).sum(axis=1))
    assert c.signals["force_std_max"] == pytest.approx(fstd.max(), rel=1e-8)
    estd = (rows.energy @ com.T).std(ddof=1) / len(c.atoms)
    assert c.signals["energy_std"] == pytest.approx(estd, rel=1e-6, abs=1e-12)
    w, r = _run(setup, unc={"force_std": [0.0, 10.0]})
    assert all(c.rows is None for c in r.candidates)   # not kept unless asked


def test_too_close_atoms_stop_without_bad_candidates(setup):
    w, r = _run(setup, md={"min_distance": 3.0})
    assert r.blowup == "too_close"
    assert r.candidates == []            # no sane frame to label
    assert r.state.restarts == 1
    np.testing.assert_allclose(r.state.atoms.positions, w.good.positions)


def test_exploding_model_stops_the_walker(setup):
    cfg, basis, tables, base, seeds, ref, bundle, model, _ = setup
    rng = np.random.default_rng(5)
    bad = ACEModel(basis, rng.normal(size=len(basis)) * 1e3, e0={"Cu": 0.0},
                   committee=model.committee)
    w = new_walker(0, base, 900.0, np.random.default_rng(1))
    unc = cfg.uncertainty.model_copy(update={"force_std": None, "gamma": [1e6, 1e9]})
    r = run_segment(w, bad, tables, bundle, cfg.md, unc, 900.0, np.random.default_rng(2))
    assert r.blowup in ("too_close", "nan_positions", "nan_forces") or \
        r.blowup.startswith("model_error"), r.blowup
    assert r.steps == 10
    assert r.candidates == []            # the first sample was already broken
    assert r.state.restarts == 1
    np.testing.assert_allclose(r.state.atoms.positions, w.good.positions)


def test_npt_segment_changes_the_cell(setup):
    w, r = _run(setup, md={"ensemble": "npt", "pressure": 5.0, "taup": 100.0})
    assert r.blowup is None
    assert r.state.atoms.get_volume() != pytest.approx(w.atoms.get_volume(), rel=1e-6)


def test_structure_builders():
    rng = np.random.default_rng(0)
    base = {"builder": "bulk", "element": "Cu", "crystal": "fcc", "a": 3.61, "repeat": [2, 2, 2]}

    def build(**over):
        return build_structure(StructureSettings.model_validate({**base, **over}), rng)

    assert len(build()) == 32
    v = build(vacancies=2)
    assert len(v) == 30 and v.info["config_type"] == "fcc_vacancy"
    i = build(interstitials=1)
    assert len(i) == 33 and min_distance(i) > 1.2
    s = build(repeat=[1, 1, 1], surface={"miller": [1, 1, 1], "layers": 4, "vacuum": 6.0})
    assert not s.pbc[2] and s.info["config_type"] == "fcc_surface111"


def test_refit_is_additive_and_restartable(setup):
    cfg, basis, tables, base, seeds, ref, bundle, model, d = setup
    r2 = Refitter(basis, tables, cfg.fit, {"Cu": 0.0}, d / "two")
    r2.fold(seeds[:2])
    r2.save()
    r3 = Refitter(basis, tables, cfg.fit, {"Cu": 0.0}, d / "two")
    assert r3.load() and r3.n_folded == 2
    r3.fold(seeds[2:])
    a, b = r3.neq.total(), ref.neq.total()
    np.testing.assert_allclose(a[0], b[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-10, atol=1e-12)
    p3, _ = r3.solve(np.random.default_rng(0))
    p1, _ = ref.solve(np.random.default_rng(0))
    # evidence maximisation amplifies round-off a little: same solution to ~1e-3
    np.testing.assert_allclose(p3.mean, p1.mean, rtol=5e-3, atol=1e-6)
    assert (d / "two" / "fit_state.npz").is_file()


def test_a_persistent_hop_hands_its_ends_to_the_neb_protocol(setup):
    # a hop threshold below the thermal amplitude: every atom "hops" and stays away
    w, r = _run(setup, unc={"force_std": [0.0, 10.0], "gamma": None,
                            "rare_events": RareEventSettings(kinds=["hop"], hop_fraction=0.02,
                                                             persistence=1)})
    assert len(r.hops) == 1
    before, after = r.hops[0]
    assert before.calc is None and len(before) == len(after)
    assert not np.allclose(before.positions, after.positions)
