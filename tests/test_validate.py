"""Tests for the validation suite (aceal.validate, aceal validate)."""

import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc100
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.optimize import FIRE

from aceal.cli import main
from aceal.reference import make_calculator
from aceal.validate import bulk as vbulk
from aceal.validate import defects, dynamics, fewbody, rare_events
from aceal.validate.suite import QUICK_SETTINGS, compare, run_validation

DATA = Path(__file__).parent / "data"
CU_EAM = DATA / "Cu_mishin1.eam.alloy"
W_EAM = DATA / "W_zhou.eam.alloy"


@pytest.fixture(scope="module")
def mishin():
    return make_calculator({"name": "EAM", "potential": str(CU_EAM)})


@pytest.fixture(scope="module")
def mishin_a0(mishin):
    return vbulk.equation_of_state("Cu", mishin)["a0_A"]


# ---------------------------------------------------------------- bulk
def test_emt_lattice_constant_matches_direct_scan():
    res = vbulk.equation_of_state("Cu", EMT(), a_guess=3.75)  # deliberately poor guess
    a = np.arange(3.55, 3.63, 0.0005)
    e = []
    for x in a:
        at = bulk("Cu", "fcc", a=x)
        at.calc = EMT()
        e.append(at.get_potential_energy())
    assert res["a0_A"] == pytest.approx(a[int(np.argmin(e))], abs=1e-3)
    assert res["structure"] == "fcc"
    assert len(res["volumes_A3_per_atom"]) == 9


def test_mishin_cu_lattice_and_elastic_constants(mishin, mishin_a0):
    # Mishin et al. PRB 63, 224106 (2001): a0 = 3.615 Å, C11 169.9, C12 122.6, C44 76.2 GPa
    assert mishin_a0 == pytest.approx(3.615, abs=2e-3)
    c = vbulk.elastic_constants("Cu", mishin, a0=mishin_a0)
    assert c["C11_GPa"] == pytest.approx(169.9, abs=1.5)
    assert c["C12_GPa"] == pytest.approx(122.6, abs=1.5)
    assert c["C44_GPa"] == pytest.approx(76.2, abs=1.0)
    eos_b = vbulk.equation_of_state("Cu", mishin)["B_GPa"]
    assert c["B_GPa"] == pytest.approx(eos_b, rel=0.03)


def test_c44_against_energy_second_derivative():
    # independent: E(gamma) = E0 + V C44 gamma^2 / 2 for a yz shear of fcc EMT Cu
    a0 = vbulk.equation_of_state("Cu", EMT())["a0_A"]
    ref = bulk("Cu", "fcc", a=a0, cubic=True)
    g = 0.004
    es = []
    for gam in (-g, 0.0, g):
        at = ref.copy()
        f = np.eye(3)
        f[1, 2] = f[2, 1] = gam / 2
        at.set_cell(ref.cell.array @ f.T, scale_atoms=True)
        at.calc = EMT()
        es.append(at.get_potential_energy())
    c44 = (es[0] - 2 * es[1] + es[2]) / g**2 / ref.get_volume() * 160.21766208  # eV/Å^3 -> GPa
    res = vbulk.elastic_constants("Cu", EMT(), a0=a0)
    assert res["C44_GPa"] == pytest.approx(c44, rel=0.01)


def test_stillinger_weber_si_elastic_constants_need_internal_relaxation():
    # SW Si: C11 151.4, C12 76.4, C44 56.4 GPa (relaxed; unrelaxed C44 is about twice)
    sw = make_calculator("SW")
    a0 = vbulk.equation_of_state("Si", sw)["a0_A"]
    c = vbulk.elastic_constants("Si", sw, a0=a0)
    assert (c["C11_GPa"], c["C12_GPa"], c["C44_GPa"]) == pytest.approx((151.4, 76.4, 56.4), abs=1.0)
    unrelaxed = vbulk.elastic_constants("Si", sw, a0=a0, relax_internal=False)
    assert unrelaxed["C44_GPa"] > 1.5 * c["C44_GPa"]


# ---------------------------------------------------------------- defects
def test_mishin_vacancy_formation(mishin, mishin_a0):
    res = defects.vacancy_formation("Cu", mishin, a0=mishin_a0, size=3)
    assert res["Evac_eV"] == pytest.approx(1.27, abs=0.03)  # published 1.27 eV
    assert res["Evac_eV"] < res["Evac_unrelaxed_eV"]


def test_vacancy_formation_matches_direct_computation():
    a0 = vbulk.equation_of_state("Cu", EMT())["a0_A"]
    perfect = bulk("Cu", "fcc", a=a0, cubic=True).repeat(2)
    perfect.calc = EMT()
    e_perfect = perfect.get_potential_energy()
    vac = perfect.copy()
    del vac[5]
    vac.calc = EMT()
    FIRE(vac, logfile=None).run(fmax=1e-3)
    direct = vac.get_potential_energy() - e_perfect * (len(perfect) - 1) / len(perfect)
    res = defects.vacancy_formation("Cu", EMT(), a0=a0, size=2, fmax=1e-3)
    assert res["Evac_eV"] == pytest.approx(direct, abs=2e-4)


def test_mishin_vacancy_migration_neb(mishin, mishin_a0):
    res = defects.vacancy_migration("Cu", mishin, a0=mishin_a0, size=2, n_images=3, fmax=0.05)
    assert res["converged"]
    assert res["Em_eV"] == pytest.approx(0.69, abs=0.05)  # published 0.69 eV
    e = np.array(res["path_energies_eV"])
    assert abs(res["dE_ends_eV"]) < 1e-6
    np.testing.assert_allclose(e, e[::-1], atol=5e-3)  # symmetric hop
    assert np.argmax(e) == len(e) // 2


def test_surface_energy_matches_direct_slab():
    a0 = vbulk.equation_of_state("Cu", EMT())["a0_A"]
    res = defects.surface_energies(
        "Cu", EMT(), a0=a0, facets=((1, 0, 0),), relax=False, min_thickness=10
    )
    n = res["100"]["n_atoms"]
    slab = fcc100("Cu", size=(2, 2, n), a=a0, vacuum=10.0)  # bigger in-plane cell: same gamma
    slab.calc = EMT()
    cell = bulk("Cu", "fcc", a=a0)
    cell.calc = EMT()
    area = np.linalg.norm(np.cross(slab.cell[0], slab.cell[1]))
    direct = (slab.get_potential_energy() - len(slab) * cell.get_potential_energy()) / (2 * area)
    assert res["100"]["gamma_eV_per_A2"] == pytest.approx(direct, abs=1e-6)
    assert res["100"]["gamma_unrelaxed_J_per_m2"] == pytest.approx(direct * 16.02176634, abs=1e-5)


def test_mishin_surface_energies(mishin, mishin_a0):
    # Mishin et al. (2001), relaxed: 1.345 (100), 1.475 (110), 1.239 (111) J/m^2
    res = defects.surface_energies("Cu", mishin, a0=mishin_a0, min_thickness=10)
    got = [res[k]["gamma_J_per_m2"] for k in ("100", "110", "111")]
    assert got == pytest.approx([1.345, 1.475, 1.239], abs=0.01)


def test_interstitial_dumbbell_relaxes():
    res = defects.interstitial_formation("Cu", EMT(), size=2)
    assert res["converged"]
    assert 1.5 < res["Eint_eV"] < 6.0
    assert res["dumbbell_length_A"] < 2.55  # shorter than the nearest-neighbour distance


def test_neighbour_shell_directions_name_the_standard_dumbbells():
    from aceal.validate.crystal import direction_name, neighbour_shells, supercell

    expect = {"bcc": ["<111>", "<100>", "<110>"], "fcc": ["<110>", "<100>", "<211>"],
              "diamond": ["<111>", "<110>", "<311>"]}
    for structure, names in expect.items():
        cell = supercell("W", structure, 3.2, 3)
        shells, nearest = neighbour_shells(cell, 5, shells=3)
        assert [direction_name(u) for u in shells] == names
        assert nearest == pytest.approx(cell.get_distances(5, range(len(cell)),
                                                           mic=True)[np.arange(len(cell)) != 5]
                                        .min())


def test_every_dumbbell_orientation_is_measured():
    # EMT Cu: the <100> dumbbell is the stable one; a <211> start relaxes into it, and
    # the <110> dumbbell stays (by symmetry) on its higher saddle
    res = defects.interstitial_formations("Cu", EMT(), size=2)
    assert list(res) == ["<110>", "<100>", "<211>"]
    e = {k: v["Eint_eV"] for k, v in res.items()}
    assert e["<100>"] == pytest.approx(defects.interstitial_formation(
        "Cu", EMT(), size=2)["Eint_eV"], abs=1e-6)
    assert e["<211>"] == pytest.approx(e["<100>"], abs=0.01)
    assert e["<110>"] > e["<100>"] + 0.5


# ---------------------------------------------------------------- few-body
def _lj(r, sigma=1.0, eps=1.0, rc=10.0):
    v = lambda x: 4 * eps * ((sigma / x) ** 12 - (sigma / x) ** 6)  # noqa: E731
    return v(r) - v(rc)


def test_fewbody_curves_match_lennard_jones():
    lj = make_calculator({"name": "LJ", "sigma": 1.0, "epsilon": 1.0, "rc": 10.0})
    r = np.linspace(0.9, 2.5, 17)
    d = fewbody.dimer_curve("Ar", "Ar", lj, r)
    np.testing.assert_allclose(d["energy_eV"], _lj(r), atol=1e-10)
    t = fewbody.trimer_curves(("Ar", "Ar", "Ar"), lj, r, r0=1.12)
    np.testing.assert_allclose(t["equilateral"]["energy_eV"], 3 * _lj(r), atol=1e-10)
    th = np.radians(t["angle"]["theta_deg"])
    expected = 2 * _lj(1.12) + _lj(2 * 1.12 * np.sin(th / 2))
    np.testing.assert_allclose(t["angle"]["energy_eV"], expected, atol=1e-10)


def test_fewbody_all_pairs_and_overlay_plot(tmp_path):
    c = fewbody.fewbody_curves(["Cu", "Ni"], EMT(), n_points=8, n_angles=6)
    assert set(c["dimers"]) == {"Cu-Cu", "Cu-Ni", "Ni-Ni"}
    assert len(c["trimers"]) == 4
    two = fewbody.fewbody_curves(["Cu", "Ni"], make_calculator("LJ"), n_points=8, n_angles=6)
    path = fewbody.plot_fewbody({"EMT": c, "LJ": two}, tmp_path / "fb.png")
    assert Path(path).stat().st_size > 1000


# ---------------------------------------------------------------- dynamics
def test_rdf_of_perfect_crystal_peaks_at_nn_distance():
    at = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(3)
    g = dynamics.rdf([at], r_max=5.0, n_bins=100)
    assert g["first_peak_A"] == pytest.approx(3.6 / np.sqrt(2), abs=0.05)
    # coordination number 12 from integrating g(r) over the first shell
    r, gr = np.array(g["r_A"]), np.array(g["g"])
    rho = len(at) / at.get_volume()
    dr = r[1] - r[0]
    shell = r < 3.0
    assert np.sum(4 * np.pi * r[shell] ** 2 * gr[shell] * rho * dr) == pytest.approx(12, abs=0.2)


def test_msd_diffusion_on_constructed_trajectory():
    rng = np.random.default_rng(0)
    base = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    n = len(base)
    u = rng.normal(size=(n // 2, 3))
    u /= np.linalg.norm(u, axis=1)[:, None]
    u = np.vstack([u, -u])  # zero centre-of-mass motion
    d_true, dt = 0.05, 10.0  # Å^2/ps, fs
    frames = []
    for k in range(40):
        t_ps = k * dt / 1000
        at = base.copy()
        at.positions += np.sqrt(6 * d_true * t_ps) * u
        at.wrap()  # the routine must unwrap
        frames.append(at)
    res = dynamics.msd_diffusion(frames, dt_fs=dt)
    assert res["D_A2_per_ps"] == pytest.approx(d_true, rel=1e-6)
    assert res["D_cm2_per_s"] == pytest.approx(d_true * 1e-4, rel=1e-6)


def test_md_properties_runs_and_conserves_energy():
    res = dynamics.md_properties(
        "Cu", EMT(), size=2, temperatures_K=(300, 600), steps=40, nve_steps=40, timestep_fs=2.0
    )
    assert {"T300", "T600", "nve"} <= set(res)
    assert res["T300"]["first_peak_A"] == pytest.approx(3.59 / np.sqrt(2), abs=0.15)
    assert abs(res["nve"]["max_dev_eV_per_atom"]) < 5e-3


# ---------------------------------------------------------------- rare events
class ConstantForce(Calculator):
    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        f = np.zeros((len(atoms), 3))
        f[:, 0] = 1.0
        self.results = {"energy": 0.0, "forces": f}


def test_rare_event_metrics_hand_computed():
    cell = [10.0, 10.0, 10.0]
    pos0 = [[0, 0, 0], [2, 0, 0], [0, 2, 0]]
    f0 = np.array([[0, 1, 0], [2, 0, 0], [1, 1, 0]], float)  # model gives (1,0,0) everywhere
    pos1 = [[0, 0, 0], [2, 0, 0], [0, 2, 1.0]]  # atom 2 moves 1.0 Å > 0.3 x d_NN (2.0 Å)
    f1 = np.array([[0, 0, 3], [-1, 0, 0], [3, 4, 0]], float)
    frames = []
    for p, f in ((pos0, f0), (pos1, f1)):
        at = Atoms("Cu3", positions=p, cell=cell, pbc=True)
        at.calc = SinglePointCalculator(at, energy=0.0, forces=f)
        frames.append(at)
    mask = rare_events.rare_event_mask(frames, threshold=0.3)
    np.testing.assert_array_equal(mask, [[False, False, False], [False, False, True]])
    m = rare_events.rare_event_metrics(frames, ConstantForce(), min_force=1e-8)
    # per atom |F_pred| - |F_ref|: frame0: 1-1, 1-2, 1-sqrt2; frame1: 1-3, 1-1, 1-5
    mag = np.array([0, -1, 1 - np.sqrt(2), -2, 0, -4])
    # angles: frame0: 90, 0, 45; frame1: 90, 180, arccos(3/5)
    ang = np.array([90, 0, 45, 90, 180, np.degrees(np.arccos(0.6))])
    np.testing.assert_allclose(m["distributions"]["all"]["mag_err_eV_per_A"], mag, atol=1e-12)
    np.testing.assert_allclose(m["distributions"]["all"]["angle_deg"], ang, atol=1e-9)
    assert m["rare"]["n_atoms"] == 1
    assert m["rare"]["mag_err_mean_eV_per_A"] == pytest.approx(-4.0)
    assert m["rare"]["angle_mean_deg"] == pytest.approx(np.degrees(np.arccos(0.6)))
    assert m["all"]["mag_err_mae_eV_per_A"] == pytest.approx(np.abs(mag).mean())
    assert m["all"]["mag_err_rmse_eV_per_A"] == pytest.approx(np.sqrt((mag**2).mean()))
    assert m["all"]["angle_mean_deg"] == pytest.approx(ang.mean())
    # user-given indices override the displacement criterion
    m2 = rare_events.rare_event_metrics(frames, ConstantForce(), indices=[1], min_force=1e-8)
    assert m2["rare"]["n_atoms"] == 2
    assert m2["rare"]["angle_mean_deg"] == pytest.approx(90.0)


# ---------------------------------------------------------------- suite, report, CLI
def test_compare():
    assert compare(2.0, 2.5) == {
        "reference": 2.0,
        "model": 2.5,
        "error": 0.5,
        "abs_error": 0.5,
        "rel_error": 0.25,
    }


def test_self_validation_gives_zero_errors(tmp_path):
    settings = QUICK_SETTINGS.model_copy(update=dict(
        md_steps=20, nve_steps=10, md_temperatures_K=[300.0], fewbody_points=10))
    res = run_validation(
        EMT(),
        EMT(),
        ["Cu"],
        suites=("bulk", "defects", "fewbody", "dynamics", "rare_events"),
        out_dir=tmp_path,
        settings=settings,
    )
    assert len(res["rows"]) > 20
    for row in res["rows"]:
        assert row["abs_error"] == pytest.approx(0.0, abs=1e-9), row
    data = json.loads((tmp_path / "report.json").read_text())
    assert len(data["rows"]) == len(res["rows"])
    text = (tmp_path / "report.md").read_text()
    assert text.index("## Summary") < text.index("![")
    for png in ("eos_Cu.png", "neb_Cu.png", "fewbody.png", "md_Cu.png", "rare_events_Cu.png"):
        assert (tmp_path / png).exists()


def test_emt_vs_eam_errors_are_reported(mishin):
    res = run_validation(EMT(), mishin, ["Cu"], suites=("bulk",))
    rows = {r["property"]: r for r in res["rows"]}
    assert rows["a0"]["reference"] == pytest.approx(3.615, abs=2e-3)
    assert rows["a0"]["model"] == pytest.approx(3.590, abs=5e-3)
    assert rows["C44"]["abs_error"] > 5  # EMT C44 ~ 90 vs 76 GPa
    assert rows["a0"]["rel_error"] == pytest.approx(
        rows["a0"]["abs_error"] / rows["a0"]["reference"]
    )


def test_screw_dislocation_core_w_zhou():
    from aceal.validate.dislocation import dd_difference, screw_dislocation

    w = make_calculator({"name": "EAM", "potential": str(W_EAM)})
    # Zhou W: a0 = 3.165 Å, C11/C12/C44 = 521/204/160 GPa (given, to keep this fast)
    res = screw_dislocation("W", w, a0=3.1654, cij_GPa=(521.2, 203.6, 160.5), radius_a0=4.0)
    assert res["converged"]
    assert res["E_per_length_eV_per_A"] > 0
    assert res["core_dd_over_b"] == pytest.approx(1 / 3, abs=0.03)  # compact (easy) core
    assert dd_difference(res, res) == 0.0


def test_cli_validate_writes_report(tmp_path, capsys):
    out = tmp_path / "rep"
    rc = main(
        [
            "validate",
            "--model-calc",
            "EMT",
            "--reference",
            f"EAM:{CU_EAM}",
            "--suite",
            "bulk",
            "--elements",
            "Cu",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert rc == 0
    assert (out / "report.md").exists() and (out / "report.json").exists()
    assert list(out.glob("*.png"))
    rows = json.loads(capsys.readouterr().out)
    assert {r["property"] for r in rows} >= {"a0", "C11", "C12", "C44"}


@pytest.mark.parametrize(
    "argv",
    [
        ["--model-calc", "EMT", "--reference", "NOPE", "--elements", "Cu"],
        ["--model-calc", "EMT", "--reference", "EAM:missing.eam.alloy", "--elements", "Cu"],
        ["--model-calc", "EMT", "--reference", "EMT", "--elements", "Cu", "--suite", "bulk,nope"],
        ["--reference", "EMT", "--elements", "Cu"],
        ["missing_model.json", "--reference", "EMT", "--elements", "Cu"],
        ["--model-calc", "EMT", "--reference", "EMT", "--elements", "Xx", "--suite", "bulk"],
    ],
)
def test_cli_bad_input_exits_2_with_one_line(argv, tmp_path, capsys):
    rc = main(["validate", *argv, "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("aceal validate: error:") and "\n" not in err


def test_cli_validate_model_file_uses_ace_calculator(tmp_path, capsys):
    pytest.importorskip("aceal.calculator")
    yace = DATA / "Cu-PBE-core-rep.yace"
    if not yace.exists():
        pytest.skip("no PACE Cu model in tests/data")
    out = tmp_path / "rep"
    rc = main(
        [
            "validate",
            str(yace),
            "--reference",
            f"EAM:{CU_EAM}",
            "--suite",
            "bulk",
            "--elements",
            "Cu",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert rc == 0
    rows = {r["property"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["a0"]["model"] == pytest.approx(3.63, abs=0.03)  # PBE Cu fit: ~3.63 Å
    assert rows["a0"]["abs_error"] > 1e-3  # a different potential than the reference


def test_dimer_minimum_is_refined_between_grid_points():
    lj = make_calculator({"name": "LJ", "sigma": 1.0, "epsilon": 1.0, "rc": 10.0})
    d = fewbody.dimer_curve("Ar", "Ar", lj, np.linspace(0.9, 2.0, 12))  # spacing 0.1
    assert d["r_min_A"] == pytest.approx(2 ** (1 / 6), abs=0.01)
    assert d["e_min_eV"] == pytest.approx(-1.0, abs=0.01)


def test_unbound_dimer_has_no_minimum():
    """On a repulsive curve (LJ inside sigma: every energy >= 0) and on a curve still
    falling at the end of the grid there is no r_min: NaN, not a grid point."""
    lj = make_calculator({"name": "LJ", "sigma": 1.0, "epsilon": 1.0, "rc": 10.0})
    d = fewbody.dimer_curve("Ar", "Ar", lj, np.linspace(0.85, 1.0, 6))
    assert min(d["energy_eV"]) >= 0.0
    assert np.isnan(d["r_min_A"])
    assert d["e_min_eV"] == pytest.approx(min(d["energy_eV"]))
    d = fewbody.dimer_curve("Ar", "Ar", lj, np.linspace(0.9, 1.1, 6))
    assert np.isnan(d["r_min_A"])
    assert d["e_min_eV"] == pytest.approx(min(d["energy_eV"]))


# ---------------------------------------------------------------- committee error bars
def test_committee_spread_is_each_members_property_by_the_same_protocol(tmp_path, mishin):
    """Members = Lennard-Jones with three sigmas: each row's sigma is the sample
    std of the members' own values, and calibration counts the rows within 2 sigma."""
    from ase.calculators.lj import LennardJones

    members = [LennardJones(sigma=s, epsilon=0.4, rc=6.0, smooth=True)
               for s in (2.28, 2.30, 2.32)]
    res = run_validation(mishin, EMT(), ["Cu"], suites=("bulk", "defects"), out_dir=tmp_path,
                         settings=QUICK_SETTINGS.model_copy(update={"interstitial": False}),
                         committee=members)
    rows = {r["property"]: r for r in res["rows"]}
    a0 = [vbulk.equation_of_state("Cu", m)["a0_A"] for m in members]
    assert rows["a0"]["committee_std"] == pytest.approx(np.std(a0, ddof=1), rel=1e-9)
    assert rows["a0"]["committee_mean"] == pytest.approx(np.mean(a0), rel=1e-9)
    for r in res["rows"]:
        assert r["committee_size"] == 3
        assert r["within_2sigma"] == (r["abs_error"] <= 2 * r["committee_std"])
    cal = res["meta"]["calibration"]
    assert cal["n_properties"] == len(res["rows"])
    assert cal["within_2sigma"] == sum(r["within_2sigma"] for r in res["rows"])
    text = (tmp_path / "report.md").read_text()
    assert " ± " in text and f"{cal['within_2sigma']} of {cal['n_properties']}" in text
    assert json.loads((tmp_path / "report.json").read_text())["rows"][0]["committee_std"] > 0
    neb = res["curves"]["defects"]["Cu"]["members"]   # drawn in neb_Cu.png
    assert len(neb) == 3 and all(len(m["path_energies_eV"]) > 2 for m in neb)


def test_dynamics_trimers_and_plots_get_the_committee_too(tmp_path, mishin):
    from ase.calculators.lj import LennardJones

    members = [LennardJones(sigma=s, epsilon=0.4, rc=6.0, smooth=True)
               for s in (2.28, 2.30, 2.32)]
    settings = QUICK_SETTINGS.model_copy(update={"md_steps": 40, "nve_steps": 20,
                                                 "fewbody_points": 12})
    res = run_validation(mishin, EMT(), ["Cu"], suites=("bulk", "dynamics", "fewbody"),
                         out_dir=tmp_path, settings=settings, committee=members)
    rows = {r["property"]: r for r in res["rows"]}
    a0 = [vbulk.equation_of_state("Cu", m)["a0_A"] for m in members]
    d = [dynamics.md_properties("Cu", m, a0=a, size=settings.md_size, steps=40,
                                temperatures_K=tuple(settings.md_temperatures_K),
                                nve_steps=20)["T1000"]["D_A2_per_ps"]
         for m, a in zip(members, a0, strict=True)]
    assert rows["D 1000 K"]["committee_std"] == pytest.approx(np.std(d, ddof=1), rel=1e-9)
    for name in ("RDF 1st peak 300 K", "NVE drift", "trimer equilateral E_min"):
        assert rows[name]["committee_size"] == 3 and rows[name]["committee_std"] > 0
    assert "committee_std" not in rows["trimer angle-scan RMSE"]
    assert len(res["curves"]["eos"]["Cu"]["members"]) == 3
    assert (tmp_path / "eos_Cu.png").exists()


def test_dimer_minimum_gets_the_committee_spread(mishin):
    """LJ members: a dimer's r_min is 2^(1/6) sigma, so the spread of r_min is the
    spread of 2^(1/6) sigma over the members, and E_min's mean that of -epsilon."""
    from ase.calculators.lj import LennardJones

    sig, eps = (2.26, 2.30, 2.34), (0.35, 0.40, 0.45)
    members = [LennardJones(sigma=s, epsilon=e, rc=8.0) for s, e in zip(sig, eps, strict=True)]
    res = run_validation(mishin, EMT(), ["Cu"], suites=("fewbody",),
                         settings={"fewbody_points": 60}, committee=members)
    rows = {r["property"]: r for r in res["rows"]}
    r_min = 2 ** (1 / 6) * np.array(sig)
    assert rows["dimer r_min"]["committee_std"] == pytest.approx(np.std(r_min, ddof=1),
                                                                 rel=1e-3)
    # ASE's LJ is shifted to zero at rc: E_min = -epsilon (1 - 4 (sigma/rc)^6) ~ -0.998 eps
    assert rows["dimer E_min"]["committee_mean"] == pytest.approx(-np.mean(eps), rel=5e-3)
    assert "committee_std" not in rows["dimer curve RMSE (E_ref<2 eV)"]


def test_committee_models_reproduce_the_committee_energies():
    from aceal import ACEBasis, ACEModel
    from aceal.calculator import ACECalculator

    basis = ACEBasis(["Cu"], order=2, max_degree=6, r_cut=4.5)
    rng = np.random.default_rng(0)
    coef = rng.normal(size=len(basis)) * 0.05
    model = ACEModel(basis, coef, e0={"Cu": -1.0},
                     committee=coef + 0.01 * rng.normal(size=(3, len(basis))))
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=1)
    energies = []
    for m in model.committee_models():
        a = atoms.copy()
        a.calc = ACECalculator(m)
        energies.append(a.get_potential_energy())
    atoms.calc = ACECalculator(model)
    atoms.get_potential_energy()
    np.testing.assert_allclose(energies, atoms.calc.results["energy_committee"], rtol=1e-10)
    assert ACEModel(basis, coef).committee_models() == []
