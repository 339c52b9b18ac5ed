"""Neighbour list: exact agreement with ASE, skin logic, input errors."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111
from ase.neighborlist import neighbor_list as ase_neighbor_list

from aceal.errors import AcealInputError
from aceal.kernels.neighbours import NeighbourList, neighbour_list


def _as_dict(i, j, shift, d):
    return {
        (int(a), int(b), int(s0), int(s1), int(s2)): v
        for a, b, (s0, s1, s2), v in zip(i, j, shift, d, strict=True)
    }


def _check_against_ase(atoms, cutoff, positions=None):
    """Same pair set, same d (1e-12 Å), consistent shifts, CSR sorted by (j, shift)."""
    pos = atoms.positions if positions is None else positions
    ai, aj, ad, aD, aS = ase_neighbor_list("ijdDS", atoms, cutoff, self_interaction=False)
    first, j, d, shift = neighbour_list(pos, atoms.cell.array, atoms.pbc, cutoff)
    n = len(atoms)
    assert first.shape == (n + 1,) and first.dtype == np.int64
    assert j.dtype == np.int64 and shift.dtype == np.int64 and d.dtype == np.float64
    assert first[0] == 0 and first[-1] == j.size and np.all(np.diff(first) >= 0)
    i = np.repeat(np.arange(n), np.diff(first))
    mine = _as_dict(i, j, shift, d)
    ref = _as_dict(ai, aj, aS, aD)
    assert len(mine) == j.size, "duplicate pairs"
    assert set(mine) == set(ref)
    keys = sorted(ref)
    np.testing.assert_allclose(
        np.array([mine[k] for k in keys]), np.array([ref[k] for k in keys]), rtol=0, atol=1e-12
    )
    # d follows the documented formula from the positions as given
    np.testing.assert_allclose(d, pos[j] + shift @ atoms.cell.array - pos[i], rtol=0, atol=1e-12)
    assert np.all(np.linalg.norm(d, axis=1) < cutoff)
    assert not np.any((i == j) & np.all(shift == 0, axis=1)), "self pair present"
    assert np.all(shift[:, ~atoms.pbc] == 0)
    # full list: every pair has its reverse
    rev = {(b, a, -s0, -s1, -s2) for a, b, s0, s1, s2 in mine}
    assert rev == set(mine)
    # sorted by j, then shift, within each atom
    for a in range(n):
        sl = slice(first[a], first[a + 1])
        rows = np.column_stack([j[sl], shift[sl]]).tolist()
        assert rows == sorted(rows)
    return first, j, d, shift


def test_random_dense_cluster_no_pbc():
    rng = np.random.default_rng(1)
    atoms = Atoms("C80", positions=rng.uniform(-2.0, 4.0, (80, 3)))  # zero cell
    first, j, _, _ = _check_against_ase(atoms, 2.5)
    assert j.size > 500


def test_fcc_primitive_many_images():
    atoms = bulk("Cu", "fcc", a=3.615)  # 1 atom, heights ~2.1 Å
    first, j, _, shift = _check_against_ase(atoms, 7.0)
    assert np.all(j == 0)
    assert np.abs(shift).max() >= 3
    # shells at 12, 6, 24, 12, 24, 8, 48, ...: 134 neighbours inside 7 Å
    assert first[-1] == 134


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_skewed_triclinic(seed):
    rng = np.random.default_rng(seed)
    cell = np.array([[5.0, 0.0, 0.0], [4.3, 2.1, 0.0], [-3.7, 1.9, 2.4]])  # strongly skewed
    cell = cell @ np.linalg.qr(rng.normal(size=(3, 3)))[0]  # random orientation
    atoms = Atoms("Si12", cell=cell, pbc=True, scaled_positions=rng.uniform(0, 1, (12, 3)))
    _check_against_ase(atoms, 4.0)


def test_many_bins_triclinic_and_vacuum():
    """Larger systems so that the bin grid has many bins and bin-level wrap-around."""
    rng = np.random.default_rng(7)
    cell = np.array([[14.0, 0.0, 0.0], [6.0, 12.0, 0.0], [-4.0, 3.0, 13.0]])
    atoms = Atoms("Ni400", cell=cell, pbc=True, scaled_positions=rng.uniform(0, 1, (400, 3)))
    _check_against_ase(atoms, 3.2)
    atoms.pbc = (False, True, True)
    _check_against_ase(atoms, 3.2)
    # sparse cloud in a huge periodic box (bin-count cap)
    atoms = Atoms("He60", cell=np.eye(3) * 80.0, pbc=True,
                  positions=rng.uniform(0, 80.0, (60, 3)))
    atoms.positions[:30] = rng.uniform(0, 6.0, (30, 3))
    _check_against_ase(atoms, 3.0)


def test_slab_mixed_pbc():
    atoms = fcc111("Al", size=(3, 3, 4), vacuum=6.0)
    atoms.rattle(0.05, seed=3)
    assert tuple(atoms.pbc) == (True, True, False)
    _check_against_ase(atoms, 5.5)
    atoms.pbc = (True, False, False)  # wire
    _check_against_ase(atoms, 5.5)
    # non-periodic direction with a zero cell vector
    atoms.pbc = (True, True, False)
    atoms.cell[2] = 0.0
    _check_against_ase(atoms, 5.5)


def test_atoms_outside_the_box():
    rng = np.random.default_rng(4)
    cell = np.array([[6.0, 0.0, 0.0], [1.0, 5.5, 0.0], [0.5, -1.0, 5.0]])
    atoms = Atoms("Fe20", cell=cell, pbc=True, scaled_positions=rng.uniform(-3, 4, (20, 3)))
    pos = atoms.positions.copy()
    assert np.any(atoms.get_scaled_positions(wrap=False) < 0)
    _check_against_ase(atoms, 4.5, positions=pos)


def test_two_atom_cell_cutoff_several_cell_lengths():
    cell = np.array([[1.7, 0.0, 0.0], [0.4, 1.5, 0.0], [0.2, 0.3, 1.9]])
    atoms = Atoms("Ar2", cell=cell, pbc=True, positions=[[0.1, 0.2, 0.3], [1.0, 0.9, 1.2]])
    first, j, _, shift = _check_against_ase(atoms, 6.0)
    assert first[-1] > 600 and np.abs(shift).max() >= 3


def test_empty_and_isolated():
    first, j, d, shift = neighbour_list(np.zeros((0, 3)), np.zeros((3, 3)), False, 3.0)
    assert first.tolist() == [0] and j.size == 0 and d.shape == (0, 3) and shift.shape == (0, 3)
    first, j, _, _ = neighbour_list([[0, 0, 0], [10, 0, 0]], np.zeros((3, 3)), False, 3.0)
    assert first.tolist() == [0, 0, 0]


def _within(nl_or_tuple, cutoff):
    first, j, d, shift = nl_or_tuple
    i = np.repeat(np.arange(first.size - 1), np.diff(first))
    keep = np.linalg.norm(d, axis=1) < cutoff
    return _as_dict(i[keep], j[keep], shift[keep], d[keep])


def test_skin_reuse_and_rebuild():
    atoms = bulk("Cu", "fcc", a=3.615, cubic=True).repeat((3, 3, 3))
    rng = np.random.default_rng(5)
    cutoff, skin = 4.0, 0.4
    nl = NeighbourList(cutoff, skin=skin)
    cell, pbc, z = atoms.cell.array, atoms.pbc, atoms.numbers
    pos0 = atoms.positions.copy()
    assert nl.update(pos0, cell, pbc, z) is True and nl.n_builds == 1
    assert np.all(np.linalg.norm(nl.d, axis=1) < cutoff + skin)
    # small moves (< skin/2 each): reuse, identical pairs within cutoff to a fresh build
    for _ in range(3):
        step = rng.normal(size=pos0.shape)
        step *= 0.19 / np.linalg.norm(step, axis=1).max()
        pos = pos0 + step
        assert nl.update(pos, cell, pbc, z) is False
        assert nl.n_builds == 1
        got = _within((nl.first, nl.j, nl.d, nl.shift), cutoff)
        ref = _within(neighbour_list(pos, cell, pbc, cutoff), cutoff)
        assert set(got) == set(ref)
        keys = sorted(ref)
        np.testing.assert_allclose([got[k] for k in keys], [ref[k] for k in keys], atol=1e-12)
    # one atom moves by more than skin/2: rebuild
    pos = pos0.copy()
    pos[7] += [0.25, 0.0, 0.0]
    assert nl.update(pos, cell, pbc, z) is True and nl.n_builds == 2
    # same positions again: no rebuild
    assert nl.update(pos, cell, pbc, z) is False and nl.n_builds == 2
    # cell change (tiny strain): rebuild
    assert nl.update(pos, cell * 1.001, pbc, z) is True and nl.n_builds == 3
    # pbc change and numbers change: rebuild
    assert nl.update(pos, cell * 1.001, (True, True, False), z) is True
    z2 = z.copy()
    z2[0] = 28
    assert nl.update(pos, cell * 1.001, (True, True, False), z2) is True
    assert nl.n_builds == 5
    got = _within((nl.first, nl.j, nl.d, nl.shift), cutoff)
    ref = _within(neighbour_list(pos, cell * 1.001, (True, True, False), cutoff), cutoff)
    assert set(got) == set(ref)


@pytest.mark.parametrize(
    ("positions", "cell", "pbc", "cutoff", "match"),
    [
        ([[0, 0, 0], [np.nan, 0, 0]], np.eye(3) * 5, True, 3.0, "NaN or inf"),
        ([[0, 0, 0], [np.inf, 0, 0]], np.eye(3) * 5, False, 3.0, "NaN or inf"),
        ([[0, 0, 0]], np.eye(3) * 5, True, 0.0, "cutoff"),
        ([[0, 0, 0]], np.eye(3) * 5, True, -1.0, "cutoff"),
        ([[0, 0, 0]], np.eye(3) * 5, True, float("nan"), "cutoff"),
        ([[0, 0, 0]], np.diag([5.0, 5.0, 0.0]), True, 3.0, "cell vector c is zero"),
        ([[0, 0, 0]], [[5, 0, 0], [10, 0, 0], [0, 0, 5]], True, 3.0, "linearly dependent"),
        ([[0, 0, 0]], [[5, 0, 0], [10, 0, 0], [0, 0, 5]], (True, True, False), 3.0,
         "linearly dependent"),
        ([[0, 0]], np.eye(3) * 5, True, 3.0, "shape"),
    ],
)
def test_bad_input(positions, cell, pbc, cutoff, match):
    with pytest.raises(AcealInputError, match=match):
        neighbour_list(np.array(positions, dtype=float), cell, pbc, cutoff)


def test_bad_input_neighbourlist():
    with pytest.raises(AcealInputError, match="cutoff"):
        NeighbourList(-1.0)
    with pytest.raises(AcealInputError, match="skin"):
        NeighbourList(3.0, skin=-0.1)
    nl = NeighbourList(3.0)
    with pytest.raises(AcealInputError, match="NaN or inf"):
        nl.update([[0, 0, 0], [0, np.nan, 0]], np.eye(3) * 4, True)
    # a degenerate cell that is not periodic is fine
    assert nl.update([[0, 0, 0], [1, 0, 0]], np.zeros((3, 3)), False)
    assert nl.first.tolist() == [0, 1, 2]
