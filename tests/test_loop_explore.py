"""Exploration protocols: relax, strain, vacancy-hop NEB and few-body candidates."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.data import atomic_numbers, covalent_radii
from ase.geometry import find_mic

from aceal import ACEBasis, ACEModel
from aceal.calculator import ACECalculator
from aceal.descriptors import DesignTables
from aceal.errors import AcealInputError
from aceal.loop.config import (
    ExplorationSettings,
    FewBodySettings,
    StructureSettings,
    validate_campaign_config,
)
from aceal.loop.explore import (
    ExploreJob,
    exploration_jobs,
    fewbody_clusters,
    run_protocol,
    voigt_strains,
)
from aceal.loop.refit import Refitter
from aceal.loop.state import load_state
from aceal.loop.structures import build_structure, seed_configurations
from tests.loop_helpers import ROOT, tiny_config


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    cfg = validate_campaign_config(tiny_config(tmp_path_factory.mktemp("o")), ROOT)
    basis = ACEBasis(elements=["Cu"], **cfg.basis)
    tables = DesignTables(basis)
    base = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    vac = base.copy()
    del vac[5]
    seeds = seed_configurations([base, vac], 4, 0.08, 0.02, np.random.default_rng(0))
    for a in seeds:
        a.calc = EMT()
        a.get_forces()
    ref = Refitter(basis, tables, cfg.fit, {"Cu": 0.0}, tmp_path_factory.mktemp("fit"))
    ref.fold(seeds)
    post, com = ref.solve(np.random.default_rng(0))
    bundle = ref.bundle(0, post, com, None)
    model = ACEModel(basis, post.mean, e0={"Cu": 0.0}, committee=com)
    return tables, bundle, model


def _structure(**kw):
    spec = StructureSettings(builder="bulk", element="Cu", crystal="fcc", a=3.61,
                             repeat=[2, 2, 2], **kw)
    return spec, build_structure(spec, np.random.default_rng(3))


def _energies(setup, candidates) -> list[float]:
    """Model energies (eV) of candidate frames."""
    calc = ACECalculator(setup[2])
    out = []
    for c in candidates:
        a = c.atoms.copy()
        a.calc = calc
        out.append(a.get_potential_energy())
    return out


def _run(setup, protocol, atoms, settings=None, keep_rows=False, model=None):
    tables, bundle, good = setup
    return run_protocol(ExploreJob(protocol, 0, atoms), model or good, tables, bundle,
                        settings or ExplorationSettings(), 1.5, np.random.default_rng(4),
                        keep_rows=keep_rows)


def test_auto_protocols_follow_the_structure_kind():
    assert _structure()[0].protocols() == ["md", "strain"]
    assert _structure(vacancies=1)[0].protocols() == ["md", "relax", "neb"]
    assert _structure(interstitials=1)[0].protocols() == ["md", "relax"]
    slab = StructureSettings(builder="bulk", element="Cu", surface={"miller": [1, 1, 1]})
    assert slab.protocols() == ["md", "relax"]
    assert _structure(explore=["relax", "relax"])[0].protocols() == ["relax"]


@pytest.mark.parametrize("over, message", [
    ({"explore": ["neb"]}, "neb needs a built structure with vacancies"),
    ({"explore": ["md", "strain"], "surface": {"miller": [1, 0, 0]}}, "strain needs a periodic"),
])
def test_impossible_protocols_are_config_errors(tmp_path, over, message):
    doc = tiny_config(tmp_path)
    doc["structures"][0].update(over)
    with pytest.raises(AcealInputError, match=rf"structures\[0\].*{message}"):
        validate_campaign_config(doc, ROOT)


def test_a_campaign_needs_a_structure_with_md(tmp_path):
    doc = tiny_config(tmp_path)
    for s in doc["structures"]:
        s["explore"] = ["relax"]
    with pytest.raises(AcealInputError, match="no structure explores with md"):
        validate_campaign_config(doc, ROOT)


def test_jobs_every_k_iterations_and_fewbody_once():
    structures = [_structure()[1], _structure(vacancies=1)[1]]
    protocols = [["md", "strain"], ["md", "relax", "neb"]]
    s = ExplorationSettings(every=2, fewbody=FewBodySettings(enabled=True))
    jobs = exploration_jobs(structures, protocols, s, 1)
    assert [(j.protocol, j.structure) for j in jobs] == [
        ("strain", 0), ("relax", 1), ("neb", 1), ("fewbody", -1)]
    assert exploration_jobs(structures, protocols, s, 2) == []
    assert len(exploration_jobs(structures, protocols, s, 3)) == 4


def test_an_interstitial_structure_is_also_relaxed_from_each_dumbbell(setup):
    spec, atoms = _structure(interstitials=1)
    assert atoms.info["interstitials"] == 1
    jobs = exploration_jobs([atoms], [["md", "relax"]], ExplorationSettings(), 1)
    assert [j.variant for j in jobs] == ["", "dumbbell <110>", "dumbbell <100>",
                                         "dumbbell <211>"]
    for job in jobs[1:]:
        a = job.atoms
        assert len(a) == len(atoms)
        # a split pair about one lattice site, the built interstitial gone
        d = a.get_distances(len(a) - 1, range(len(a) - 1), mic=True)
        assert 0.6 * 2.55 < d.min() < 0.8 * 2.55
    r = run_protocol(jobs[2], setup[2], setup[0], setup[1], ExplorationSettings(), 1.5,
                     np.random.default_rng(4))
    assert r.blowup is None and r.candidates
    assert r.candidates[-1].detail.endswith("relax dumbbell <100> final")
    assert [c.relaxed for c in r.candidates] == [False] * (len(r.candidates) - 1) + [True]
    off = exploration_jobs([atoms], [["md", "relax"]],
                           ExplorationSettings(relax={"dumbbells": 0}), 1)
    assert len(off) == 1


def test_voigt_strains_are_symmetric_and_complete():
    strains = voigt_strains(0.02)
    assert len(strains) == 14
    for _, eps in strains:
        np.testing.assert_array_equal(eps, eps.T)
        assert np.abs(eps).max() == pytest.approx(0.02 if np.trace(np.abs(eps)) else 0.01)


def test_strain_frames_are_strained_copies_of_the_relaxed_cell(setup):
    _, atoms = _structure()
    r = _run(setup, "strain", atoms)
    assert r.blowup is None and len(r.candidates) == 28   # 2 amplitudes x 14
    cells = [c.atoms.cell.array for c in r.candidates]
    v0 = np.linalg.det(cells[0] @ np.linalg.inv(np.eye(3) * 1.01))   # first: hydrostatic +1 %
    assert np.linalg.det(cells[7]) == pytest.approx(v0 * 0.99 ** 3, rel=1e-10)
    for c in r.candidates:
        assert c.reason == "strain" and c.walker == -1
        assert c.atoms.calc is None and np.isfinite(c.signals["gamma_max"])


def test_relax_lowers_the_model_energy_and_ends_near_a_minimum(setup):
    _, atoms = _structure(vacancies=1)
    settings = ExplorationSettings(relax={"steps": 200, "sample_every": 5, "fmax": 0.02})
    r = _run(setup, "relax", atoms, settings, keep_rows=True)
    assert r.blowup is None and len(r.candidates) >= 2
    energies = _energies(setup, r.candidates)
    assert energies[-1] < energies[0]
    a = r.candidates[-1].atoms.copy()
    a.calc = ACECalculator(setup[2])
    assert np.abs(a.get_forces()).max() < 0.05
    assert r.candidates[0].rows is not None


def test_neb_images_carry_the_hopping_atom_over_a_barrier(setup):
    _, atoms = _structure(vacancies=1)
    site = np.asarray(atoms.info["vacancy_sites"][0]) @ atoms.cell.array
    r = _run(setup, "neb", atoms)
    images = [c for c in r.candidates if " image " in c.detail]
    mids = [c for c in r.candidates if " midpoint " in c.detail]
    assert r.blowup is None and len(images) == 3 and len(mids) == 4
    assert len(r.candidates) == 7
    # the midpoint between images 1 and 2, half-way in minimum image
    a, b = images[0].atoms, images[1].atoms
    half = a.positions + 0.5 * find_mic(b.positions - a.positions, a.cell, a.pbc)[0]
    assert "1.5/4" in mids[1].detail
    np.testing.assert_allclose(mids[1].atoms.positions, half, atol=1e-9)
    # no midpoints when asked not to
    r2 = _run(setup, "neb", atoms, ExplorationSettings(neb={"midpoints": False}))
    assert len(r2.candidates) == 3
    # the hopper: the atom that moves most between the first and the last image
    first, last = images[0].atoms, images[-1].atoms
    k = int(np.argmax(np.linalg.norm(last.positions - first.positions, axis=1)))
    mid = images[1].atoms
    nn = 3.61 / np.sqrt(2)
    probe = mid.copy()
    probe.append("Cu")
    probe.positions[-1] = site
    assert 0.2 * nn < probe.get_distance(k, len(probe) - 1, mic=True) < 0.8 * nn
    e = _energies(setup, images)
    assert e[1] > min(e[0], e[2]) - 1e-6      # the middle image is not below the others


def test_fewbody_clusters_scan_from_the_core_to_the_cutoff():
    s = FewBodySettings(points=6, angles=[60.0, 180.0])
    frames = fewbody_clusters(["Cu"], s, np.array([[4.8]]), np.random.default_rng(0))
    dimers = [a for a, d in frames if len(a) == 2]
    trimers = [a for a, d in frames if len(a) == 3]
    assert len(dimers) == 6 and len(trimers) == 3 * 2
    r = np.array([a.get_distance(0, 1) for a in dimers])
    r0 = 0.7 * 2 * covalent_radii[atomic_numbers["Cu"]]
    step = (4.8 - r0) / 5
    assert r.min() >= r0 - 0.25 * step and r.max() <= 4.8 + 0.25 * step
    assert all(not a.pbc.any() and a.info["config_type"] == "fewbody" for a, _ in frames)
    linear = [a for a, d in frames if "angle=180" in d]
    assert all(a.get_angle(1, 0, 2) == pytest.approx(180.0) for a in linear)


def test_a_broken_model_ends_the_protocol_without_raising(setup):
    tables, bundle, model = setup
    rng = np.random.default_rng(5)
    bad = ACEModel(model.basis, rng.normal(size=len(model.basis)) * 1e3, e0=model.e0,
                   committee=model.committee)
    _, atoms = _structure(vacancies=1)
    r = _run(setup, "relax", atoms, model=bad)
    assert r.blowup is not None and r.blowup.startswith("relax")


def test_fewbody_clusters_get_their_own_fit_weights(tmp_path):
    doc = tiny_config(tmp_path, exploration={"fewbody": {"enabled": True, "weight": 0.1}})
    w = validate_campaign_config(doc, ROOT).fit.weights
    assert w.config_types["fewbody"].energy == pytest.approx(0.1 * w.energy)
    assert w.config_types["fewbody"].forces == pytest.approx(0.1 * w.forces)
    doc["fit"] = {"weights": {"config_types": {"fewbody": {"energy": 5.0}}}}
    w = validate_campaign_config(doc, ROOT).fit.weights   # the user's own setting wins
    assert w.config_types["fewbody"].energy == 5.0 and w.config_types["fewbody"].forces is None


def test_e0_auto_is_the_isolated_atom_with_fewbody_and_composition_without(tmp_path):
    doc = tiny_config(tmp_path)
    assert validate_campaign_config(doc, ROOT).e0.method == "composition"
    doc["exploration"] = {"fewbody": {"enabled": True}}
    assert validate_campaign_config(doc, ROOT).e0.method == "isolated"
    doc["e0"] = {"method": "composition"}                     # the user's choice wins
    assert validate_campaign_config(doc, ROOT).e0.method == "composition"


def test_a_hop_a_walker_saw_gets_a_neb_between_its_ends(setup):
    _, atoms = _structure(vacancies=1)
    initial, final = atoms.copy(), atoms.copy()
    site = np.asarray(atoms.info["vacancy_sites"][0]) @ atoms.cell.array
    k = int(np.argmin(find_mic(atoms.positions - site, atoms.cell, atoms.pbc)[1]))
    final.positions[k] = site
    jobs = exploration_jobs([atoms], [["md"]], ExplorationSettings(every=5), 2,
                            hops=[[0, initial, final]])
    assert [(j.protocol, j.final is not None) for j in jobs] == [("neb", True)]
    tables, bundle, model = setup
    r = run_protocol(jobs[0], model, tables, bundle, ExplorationSettings(), 1.5,
                     np.random.default_rng(0))
    assert r.blowup is None and len(r.candidates) == 7   # 3 images, 4 midpoints
    moved = np.linalg.norm(r.candidates[1].atoms.positions - initial.positions, axis=1)
    assert int(np.argmax(moved)) == k
    # a "hop" that relaxes back to where it started has no path: no candidates
    back = exploration_jobs([atoms], [["md"]], ExplorationSettings(every=5), 2,
                            hops=[[0, initial, initial.copy()]])
    assert run_protocol(back[0], model, tables, bundle, ExplorationSettings(), 1.5,
                        np.random.default_rng(0)).candidates == []


def test_a_campaign_with_fewbody_labels_the_dimer_scan_with_its_seeds(tmp_path):
    from aceal.loop.cli import run_campaign
    from aceal.store import open_store

    out = tmp_path / "fb"
    doc = tiny_config(out, exploration={"fewbody": {"enabled": True, "points": 5,
                                                    "angles": [90.0]}},
                      stopping={"max_iterations": 1})
    run_campaign(validate_campaign_config(doc, ROOT), quiet=True)
    with open_store(out / "train.zarr") as store:
        seeds = store[store.indices(source="seed")]
        dimers = [a for a in seeds if len(a) == 2]
        atom = [a for a in seeds if len(a) == 1]
        assert len(dimers) == 5 and len(atom) == 1 and len(seeds) == 4 + 5 + 1
        assert all(a.info["config_type"] == "fewbody" and a.calc is not None
                   and not a.pbc.any() for a in dimers + atom)
        explored = store[store.indices(source="explore")]
    # E0 is the reference's own isolated atom, so dimer energies are binding energies
    isolated = atom[0].copy()
    isolated.calc = EMT()
    state = load_state(out)
    assert state["e0"]["Cu"] == pytest.approx(isolated.get_potential_energy(), abs=1e-9)
    assert state["e0"]["Cu"] == pytest.approx(atom[0].get_potential_energy(), abs=1e-9)
    assert explored and all(a.info["reason"] in ("strain", "relax", "neb", "fewbody")
                            for a in explored)
