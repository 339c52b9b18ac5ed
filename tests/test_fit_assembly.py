"""Normal equations (additivity, files), weights, assembly of observations, labels, E0."""

from dataclasses import dataclass

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from aceal.errors import AcealInputError
from aceal.fit.assembly import assemble, observations
from aceal.fit.data import Keys, get_labels, nearest_neighbour_distance
from aceal.fit.e0 import check_e0, fit_e0, isolated_atom_e0, reference_energy
from aceal.fit.normal_equations import NormalEquations
from aceal.fit.weights import Weights
from aceal.store import read_configurations

M = 7


@dataclass
class FakeRows:
    energy: np.ndarray
    forces: np.ndarray
    stress: np.ndarray | None
    natoms: int


def fake_rows(structures):
    """Deterministic pseudo design rows from positions (a stand-in for design_rows)."""
    out = []
    for atoms in structures:
        seed = int(abs(atoms.positions.sum()) * 1e6) % (2**32)
        rng = np.random.default_rng(seed)
        n = len(atoms)
        stress = rng.standard_normal((6, M)) if all(atoms.pbc) else None
        out.append(FakeRows(rng.standard_normal(M), rng.standard_normal((3 * n, M)), stress, n))
    return out


def labelled(seed, n_rep=2, config_type="bulk", weight=None, stress=True, energy=True):
    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(n_rep)
    atoms.rattle(0.05, seed=seed)
    res = {"forces": rng.standard_normal((len(atoms), 3))}
    if energy:
        res["energy"] = -3.5 * len(atoms) + rng.standard_normal()
    if stress:
        res["stress"] = rng.standard_normal(6) * 1e-3
    atoms.calc = SinglePointCalculator(atoms, **res)
    atoms.info["config_type"] = config_type
    if weight is not None:
        atoms.info["weight"] = weight
    return atoms


def _dataset(n=6, **kw):
    structures = [labelled(s, n_rep=1 + s % 2, config_type="ab"[s % 2], **kw) for s in range(n)]
    return structures, [get_labels(a) for a in structures]


def test_normal_equations_are_additive():
    structures, labels = _dataset(8)
    w, e0 = Weights(10.0, 2.0, 3.0), {"Cu": -3.5}
    whole = assemble(structures, labels, w, e0, fake_rows, M, chunk_size=3, progress=False)
    part1 = assemble(structures[:5], labels[:5], w, e0, fake_rows, M, progress=False)
    part2 = assemble(structures[5:], labels[5:], w, e0, fake_rows, M, progress=False)
    total = part1 + part2
    for kind in ("energy", "forces", "virial"):
        np.testing.assert_allclose(total.blocks[kind].ata, whole.blocks[kind].ata, atol=1e-12)
        np.testing.assert_allclose(total.blocks[kind].aty, whole.blocks[kind].aty, atol=1e-12)
        assert total.blocks[kind].yty == pytest.approx(whole.blocks[kind].yty)
        assert total.blocks[kind].n_rows == whole.blocks[kind].n_rows
    assert total.n_configs == 8 and total.n_atoms == sum(len(a) for a in structures)
    # folding into existing equations is the same as adding
    folded = assemble(structures[5:], labels[5:], w, e0, fake_rows, M, progress=False,
                      neq=part1.copy())
    np.testing.assert_allclose(folded.total()[0], whole.total()[0], atol=1e-12)
    assert whole.n_rows == {"energy": 8, "forces": sum(3 * len(a) for a in structures),
                            "virial": 48}


def test_normal_equations_total_equals_dense_least_squares():
    rng = np.random.default_rng(0)
    neq = NormalEquations(M)
    rows, ys = [], []
    for kind in ("energy", "forces", "virial", "forces"):
        a, y, w = rng.standard_normal((9, M)), rng.standard_normal(9), rng.uniform(0.5, 2, 9)
        neq.add(kind, a, y, w)
        rows.append(a * np.sqrt(w)[:, None])
        ys.append(y * np.sqrt(w))
    a, y = np.concatenate(rows), np.concatenate(ys)
    ata, aty, yty, n = neq.total()
    np.testing.assert_allclose(ata, a.T @ a, atol=1e-12)
    np.testing.assert_allclose(aty, a.T @ y, atol=1e-12)
    assert yty == pytest.approx(y @ y) and n == 36
    c = rng.standard_normal(M)
    assert sum(neq.residual_norms(c).values()) == pytest.approx(np.sum((a @ c - y) ** 2))


def test_normal_equations_save_load(tmp_path):
    structures, labels = _dataset(3)
    neq = assemble(structures, labels, Weights(), {"Cu": 0.0}, fake_rows, M, progress=False)
    neq.save(tmp_path / "neq.npz")
    back = NormalEquations.load(tmp_path / "neq.npz")
    assert back.n_configs == 3 and back.n_rows == neq.n_rows
    for kind in neq.blocks:
        np.testing.assert_array_equal(back.blocks[kind].ata, neq.blocks[kind].ata)
    (tmp_path / "bad.npz").write_bytes(b"nonsense")
    with pytest.raises(AcealInputError):
        NormalEquations.load(tmp_path / "bad.npz")
    with pytest.raises(ValueError):
        neq + NormalEquations(M + 1)
    with pytest.raises(ValueError):
        neq.add("forces", np.zeros((2, M + 1)), np.zeros(2))


def test_observation_rows_and_targets():
    atoms = labelled(1, n_rep=2)
    lab = get_labels(atoms)
    rows = fake_rows([atoms])[0]
    n, vol = len(atoms), atoms.get_volume()
    obs = observations(atoms, rows, lab, Weights(4.0, 2.0, 3.0), {"Cu": -3.0})
    np.testing.assert_allclose(obs.rows["energy"][0], rows.energy / n)
    assert obs.targets["energy"][0] == pytest.approx((lab.energy + 3.0 * n) / n)
    np.testing.assert_allclose(obs.rows["forces"], rows.forces)
    np.testing.assert_allclose(obs.targets["forces"], lab.forces.ravel())
    np.testing.assert_allclose(obs.rows["virial"], rows.stress * vol / n)
    np.testing.assert_allclose(obs.targets["virial"], lab.stress * vol / n)
    assert obs.weights == {"energy": 4.0, "forces": 2.0, "virial": 3.0}

    # a baseline is subtracted from every target
    def base(a):
        return 1.5, np.ones((len(a), 3)), np.full(6, 1e-3)

    obs_b = observations(atoms, rows, lab, Weights(), {"Cu": -3.0}, baseline=base)
    assert obs_b.targets["energy"][0] == pytest.approx(obs.targets["energy"][0] - 1.5 / n)
    np.testing.assert_allclose(obs_b.targets["forces"], obs.targets["forces"] - 1.0)
    np.testing.assert_allclose(obs_b.targets["virial"], obs.targets["virial"] - 1e-3 * vol / n)


def test_missing_labels_and_non_periodic_cells_are_skipped():
    atoms = labelled(2, stress=False, energy=False)
    obs = observations(atoms, fake_rows([atoms])[0], get_labels(atoms), Weights(), {"Cu": 0})
    assert set(obs.rows) == {"forces"}
    mol = Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.3]])
    mol.calc = SinglePointCalculator(mol, energy=-1.0, forces=np.zeros((2, 3)))
    lab = get_labels(mol)
    assert lab.stress is None
    obs = observations(mol, fake_rows([mol])[0], lab, Weights(), {"Cu": 0})
    assert set(obs.rows) == {"energy", "forces"}
    # zero weight: the kind is left out entirely
    obs = observations(mol, fake_rows([mol])[0], lab, Weights(energy=0.0), {"Cu": 0})
    assert set(obs.rows) == {"forces"}


def test_weights_overrides_and_config_factor():
    w = Weights(10.0, 1.0, 2.0, {"surf": {"energy": 100.0}})
    assert w.for_config("bulk") == {"energy": 10.0, "forces": 1.0, "virial": 2.0}
    assert w.for_config("surf", 0.5) == {"energy": 50.0, "forces": 0.5, "virial": 1.0}
    with pytest.raises(ValueError):
        Weights(energy=-1.0)
    with pytest.raises(ValueError):
        Weights(config_types={"x": {"force": 1.0}})
    # per-configuration weight from info scales the assembled contribution
    a1 = labelled(3, weight=4.0)
    a2 = labelled(3)
    n1 = assemble([a1], [get_labels(a1)], w, {"Cu": 0}, fake_rows, M, progress=False)
    n2 = assemble([a2], [get_labels(a2)], w, {"Cu": 0}, fake_rows, M, progress=False)
    np.testing.assert_allclose(n1.total()[0], 4.0 * n2.total()[0])


def test_labels_from_custom_keys(tmp_path):
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.info["dft_energy"] = -10.0
    atoms.arrays["dft_forces"] = np.ones((2, 3))
    atoms.info["dft_stress"] = np.eye(3).ravel() * 0.01
    atoms.info["group"] = "x"
    lab = get_labels(atoms, Keys(energy="dft_energy", forces="dft_forces", stress="dft_stress",
                                 config_type="group"))
    assert lab.energy == -10.0 and lab.config_type == "x"
    np.testing.assert_allclose(lab.stress, [0.01, 0.01, 0.01, 0, 0, 0])
    assert get_labels(atoms).energy is None and get_labels(atoms).config_type == "default"
    atoms.arrays["bad"] = np.ones((2, 2))
    with pytest.raises(AcealInputError, match="bad"):
        get_labels(atoms, Keys(forces="bad"))
    # round trip through extended XYZ
    path = tmp_path / "x.xyz"
    import ase.io

    ase.io.write(path, [labelled(0), labelled(1)])
    frames = read_configurations(path)
    assert len(frames) == 2 and get_labels(frames[1]).stress.shape == (6,)
    with pytest.raises(AcealInputError, match="file not found"):
        read_configurations(tmp_path / "missing.xyz")
    (tmp_path / "junk.xyz").write_text("not an xyz file\n")
    with pytest.raises(AcealInputError):
        read_configurations(tmp_path / "junk.xyz")


def test_reference_energies():
    rng = np.random.default_rng(0)
    true = {"Cu": -3.7, "Ni": -5.1}
    numbers, energies = [], []
    for _ in range(10):
        z = rng.choice([28, 29], size=rng.integers(2, 9))
        numbers.append(z)
        energies.append(reference_energy(z, true))
    e0 = fit_e0(numbers, energies, ["Ni", "Cu"])
    assert e0 == pytest.approx(true)
    assert check_e0({"Cu": 1, "Ni": 2.5}, ["Cu", "Ni"]) == {"Cu": 1.0, "Ni": 2.5}
    with pytest.raises(AcealInputError, match="Ni"):
        check_e0({"Cu": 1}, ["Cu", "Ni"])
    with pytest.raises(AcealInputError, match="Xx"):
        check_e0({"Xx": 1}, [])
    iso = [Atoms("Cu"), Atoms("Ni"), bulk("Cu")]
    assert isolated_atom_e0(iso, [-0.1, -0.2, -3.0], ["Cu", "Ni"]) == {"Cu": -0.1, "Ni": -0.2}
    with pytest.raises(AcealInputError, match="Ni"):
        isolated_atom_e0(iso[:1], [-0.1], ["Cu", "Ni"])


def test_nearest_neighbour_distance():
    d = nearest_neighbour_distance([bulk("Cu", "fcc", a=3.6), bulk("Si", "diamond", a=5.43)],
                                   quantile=0.0)
    assert d == pytest.approx(5.43 * np.sqrt(3) / 4)
    assert nearest_neighbour_distance([bulk("Cu", "fcc", a=3.6)]) == pytest.approx(3.6 / 2**0.5)


def test_read_configurations_from_store(tmp_path):
    store_mod = pytest.importorskip("aceal.store")
    images = [labelled(0), labelled(1, config_type="surf", weight=2.0)]
    with store_mod.open_store(tmp_path / "train.zarr", "a") as store:
        store.append(images, source="import")
    frames = read_configurations(tmp_path / "train.zarr")
    assert len(frames) == 2
    labs = [get_labels(a) for a in frames]
    assert labs[1].config_type == "surf" and labs[1].weight == 2.0
    assert labs[0].energy == pytest.approx(images[0].get_potential_energy())
    np.testing.assert_allclose(labs[0].forces, images[0].get_forces())
    np.testing.assert_allclose(labs[0].stress, images[0].get_stress())
