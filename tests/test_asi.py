"""pacemaker formats without LAMMPS: the ``.asi`` file and the B-basis ``.yaml``.

The agreement with LAMMPS itself (γ from ``pair_style pace/extrapolation``) is in
tests/test_lammps.py; here: file format, round trips, the rank-deficiency error, and
that pacemaker's B functions (its coupling trees, evaluated by our kernel) are related to
ours by the transform the writers use.
"""

import zipfile

import numpy as np
import pytest
from ase.build import bulk

from aceal import ACECalculator, ACEModel
from aceal.basis.coupling import m_tuples
from aceal.basis.ctilde import CTildeFunction, CTildePotential, Embedding
from aceal.basis.tables import build_tables
from aceal.descriptors import DesignTables, per_atom_basis
from aceal.errors import AcealInputError
from aceal.evaluation import evaluate_tables, species_indices
from aceal.formats.asi import asi_arrays, read_asi, write_asi
from aceal.formats.pace_bbasis import (
    _gen_cg,
    pace_bbasis_map,
    pace_coupling_tree,
    read_pace_bbasis,
    write_pace_bbasis,
)
from aceal.grade import ExtrapolationGrader
from aceal.kernels.neighbours import NeighbourList
from tests.conftest import random_linear_model

REPULSION = {"prehc": 400.0, "lambdahc": 7.0}
CASES = {
    "Cu-order3": (("Cu",), 3, 8),
    "CuNi-order3": (("Cu", "Ni"), 3, 6),
    "NiCu-order4": (("Ni", "Cu"), 4, 7),  # not alphabetical: pacemaker sorts the elements
}


def _model(elements, order, max_degree):
    m = random_linear_model(elements=elements, order=order, max_degree=max_degree,
                            r_in=1.2, delta_in=0.3)  # fmt: skip
    return ACEModel(m.basis, m.coefficients, e0=m.e0, repulsion=REPULSION)


def _structures(elements, n, rattle, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = bulk("Cu", "fcc", a=3.6 * (1 + 0.03 * rng.normal()), cubic=True).repeat((2, 2, 2))
        a.set_cell(a.cell.array @ (np.eye(3) + 0.02 * rng.normal(size=(3, 3))), scale_atoms=True)
        a.positions += rng.normal(scale=rattle, size=a.positions.shape)
        a.symbols = rng.choice(list(elements), size=len(a))
        out.append(a)
    return out


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    elements, order, deg = CASES[request.param]
    model = _model(elements, order, deg)
    grader = ExtrapolationGrader.from_training(model.basis, _structures(elements, 40, 0.25, 0))
    return model, grader


def test_coupling_tree_shapes():
    # pacemaker pairs the factors first: ((0 1)4 (2 3)5)->0 for rank 4
    assert pace_coupling_tree(2) == ((0, 1, -1),)
    assert pace_coupling_tree(3) == ((0, 1, 3), (3, 2, -1))
    assert pace_coupling_tree(4) == ((0, 1, 4), (2, 3, 5), (4, 5, -1))
    assert pace_coupling_tree(5) == ((0, 1, 5), (2, 3, 6), (5, 6, 7), (7, 4, -1))


def test_write_read_asi_format(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"Cu": rng.normal(size=(4, 4)), "Ni": np.asfortranarray(rng.normal(size=(3, 3)))}
    path = tmp_path / "x.asi"
    write_asi(path, arrays)
    with zipfile.ZipFile(path) as zf:  # LAMMPS' reader (cnpy) wants plain stored .npy members
        assert sorted(zf.namelist()) == ["Cu.npy", "Ni.npy"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
    with np.load(path) as data:
        for el, a in arrays.items():
            assert data[el].dtype == np.float64 and data[el].flags.c_contiguous
            np.testing.assert_array_equal(data[el], a)
    back = read_asi(path)
    assert sorted(back) == ["Cu", "Ni"]
    np.testing.assert_array_equal(back["Ni"], arrays["Ni"])
    with pytest.raises(AcealInputError, match="square"):
        write_asi(tmp_path / "y.asi", {"Cu": np.ones((3, 2))})
    with pytest.raises(AcealInputError, match="chemical symbol"):
        write_asi(tmp_path / "y.asi", {"X1": np.ones((2, 2))})
    (tmp_path / "bad.asi").write_text("not a zip")
    with pytest.raises(AcealInputError, match="not a pacemaker"):
        read_asi(tmp_path / "bad.asi")


def test_grader_asi_roundtrip(case, tmp_path):
    model, grader = case
    grader.save(tmp_path / "m.asi")
    grader.save(tmp_path / "m.asi.npz")  # aceal's own format is unchanged
    arrays = read_asi(tmp_path / "m.asi")
    bmap = pace_bbasis_map(model.basis)
    assert sorted(arrays) == bmap.elements
    for el, a in arrays.items():
        assert a.shape == (len(bmap.columns[el]),) * 2
    again = ExtrapolationGrader.load(model.basis, tmp_path / "m.asi")
    npz = ExtrapolationGrader.load(model.basis, tmp_path / "m.asi.npz")
    for atoms in _structures(model.elements, 2, 0.3, 7):
        g = grader(atoms)
        np.testing.assert_allclose(again(atoms), g, rtol=1e-9)
        np.testing.assert_allclose(npz(atoms), g, rtol=0, atol=0)


def test_rank_deficient_active_set_is_refused(tmp_path):
    model = _model(("Cu",), 3, 8)
    perfect = [bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))]
    grader = ExtrapolationGrader.from_training(model.basis, perfect)
    assert any(inv.complement is not None for inv in grader.inverses.values())
    with pytest.raises(AcealInputError, match="rank deficient"):
        grader.save(tmp_path / "m.asi")
    assert not (tmp_path / "m.asi").exists()
    grader.save(tmp_path / "m.asi.npz")  # still fine in aceal's format


def test_missing_element_is_refused(case):
    model, grader = case
    if len(model.elements) < 2:
        pytest.skip("needs two elements")
    partial = ExtrapolationGrader(model.basis, dict(list(grader.inverses.items())[:1]))
    with pytest.raises(AcealInputError, match="no active set"):
        asi_arrays(partial)


def _pace_projections(model, atoms):
    """pacemaker's B functions per atom (its coupling trees, evaluated by our kernel):
    one density per pacemaker function, in pacemaker's order, for the centre's element."""
    bmap = pace_bbasis_map(model.basis)
    pot = model.ctilde
    index = {el: mu for mu, el in enumerate(model.elements)}
    nmax = max(len(f) for f in bmap.functions.values())
    funcs = {}
    for el, flist in bmap.functions.items():
        mu0 = index[el]
        funcs[mu0] = []
        for s, f in enumerate(flist):
            mus = np.array([index[e] for e in f.elements[1:]], dtype=np.int64)
            ns, ls = np.array(f.ns, dtype=np.int64), np.array(f.ls, dtype=np.int64)
            if len(ls) == 1:
                ms, cg = np.zeros((1, 1), dtype=np.int64), np.ones(1)
            else:
                ms = m_tuples(tuple(f.ls))
                cg = _gen_cg(tuple(f.ls), f.lint, ms)
            ct = np.zeros((len(cg), nmax))
            ct[:, s] = cg
            funcs[mu0].append(CTildeFunction(mu0, mus, ns, ls, np.ascontiguousarray(ms), ct))
    onehot = CTildePotential(
        elements=list(model.elements), e0=np.zeros(len(model.elements)), bonds=pot.bonds,
        embeddings={mu: Embedding(ndensity=nmax, npoti="linear",
                                  FS_parameters=[1.0, 1.0] * nmax) for mu in index.values()},
        functions=funcs, delta_spline_bins=pot.delta_spline_bins,
    )  # fmt: skip
    tables = build_tables(onehot)
    nl = NeighbourList(tables.cutoff, skin=0.0)
    nl.update(atoms.positions, atoms.cell.array, atoms.pbc, atoms.numbers)
    ev = evaluate_tables(tables, species_indices(atoms.numbers, model.elements),
                         nl.first, nl.j, nl.d, 1)  # fmt: skip
    return ev.densities


def test_pacemaker_functions_map_to_ours(case):
    """b_aceal = b_pacemaker @ T atom by atom, with pacemaker's B functions built from its
    coupling trees independently of our couplings."""
    model, _ = case
    bmap = pace_bbasis_map(model.basis)
    tables = DesignTables(model.basis)
    for atoms in _structures(model.elements, 2, 0.3, 11):
        ours = per_atom_basis(tables, atoms)
        theirs = _pace_projections(model, atoms)
        for el in bmap.elements:
            sel = np.array(atoms.get_chemical_symbols()) == el
            t = bmap.transform[el]
            pred = theirs[sel][:, : t.shape[0]] @ t
            np.testing.assert_allclose(pred, ours[np.ix_(sel, bmap.columns[el])],
                                       rtol=1e-10, atol=1e-12)  # fmt: skip


def test_bbasis_yaml_reproduces_model(case, tmp_path):
    """The written B-basis, read back with pacemaker's conventions, is the same model
    (without E0, which the format lacks)."""
    model, _ = case
    write_pace_bbasis(model, tmp_path / "m.yaml")
    text = (tmp_path / "m.yaml").read_text()
    assert "speciesblock" in text and "core-repulsion: [400.0, 7.0]" in text
    back = ACEModel(ctilde=read_pace_bbasis(tmp_path / "m.yaml"))
    assert back.elements == sorted(model.elements)
    for atoms in _structures(model.elements, 2, 0.2, 3):
        atoms.positions[1] = atoms.positions[0] + [1.0, 0.1, 0.1]  # inside the repulsion
        atoms.calc = ACECalculator(model)
        e, f = atoms.get_potential_energies(), atoms.get_forces()
        e0 = model.e0[species_indices(atoms.numbers, model.elements)]
        atoms.calc = ACECalculator(back)
        np.testing.assert_allclose(atoms.get_potential_energies(), e - e0, atol=1e-12)
        np.testing.assert_allclose(atoms.get_forces(), f, atol=1e-11)


def test_bbasis_needs_linear_model(tmp_path, data_dir):
    pace = ACEModel.load(data_dir / "cu_small.yace")
    with pytest.raises(AcealInputError, match="linear"):
        write_pace_bbasis(pace, tmp_path / "x.yaml")
