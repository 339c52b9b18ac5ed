"""Tests of the linear ACE basis (aceal.basis): angular algebra, counting, invariance."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import yaml

from aceal.basis import ACEBasis, angular, coupling
from aceal.basis.angular import clebsch_gordan, spherical_harmonics
from aceal.basis.coupling import canonical_groups, invariant_couplings
from aceal.basis.ctilde import CTildePotential
from aceal.errors import AcealInputError

RC = 5.0


# --------------------------------------------------------------------------- helpers
def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def radial(nmax: int, r: np.ndarray) -> np.ndarray:
    """Simple linearly independent radial functions g_{n-1}(r), n = 1..nmax; shape (..., nmax)."""
    x = np.clip(r / RC, 0.0, 1.0)
    t = np.polynomial.chebyshev.chebvander(2 * x - 1, nmax - 1)
    return t * ((1 - x) ** 2)[..., None]


def atomic_base(pos, spec, nel, nmax, lmax):
    """A[..., mu, n, l, m + lmax] (n 1-based, index 0 unused) for neighbour vectors ``pos``.

    ``pos`` has shape (..., K, 3), ``spec`` (K,) gives the neighbour species.
    """
    r = np.linalg.norm(pos, axis=-1)
    g = radial(nmax, r)  # (..., K, nmax)
    y = spherical_harmonics(pos, lmax)  # (..., K, L, M)
    out = np.zeros(pos.shape[:-2] + (nel, nmax + 1, lmax + 1, 2 * lmax + 1), dtype=complex)
    for mu in range(nel):
        sel = spec == mu
        out[..., mu, 1:, :, :] = np.einsum(
            "...kn,...klm->...nlm", g[..., sel, :], y[..., sel, :, :]
        )
    return out


def evaluate_functions(functions, a, lmax, full=False):
    """B_k = sum_s c_s Re prod_t A[...] for CTildeFunctions; (n_env, nfunc)."""
    out = []
    for f in functions:
        prod = np.ones((a.shape[0], f.ms_combs.shape[0]), dtype=complex)
        for t in range(f.rank):
            prod = prod * a[:, f.mus[t], f.ns[t], f.ls[t], f.ms_combs[:, t] + lmax]
        out.append((prod.real if not full else prod) @ f.ctildes[:, 0])
    return np.array(out).T


def random_environments(rng, n_env, n_neigh, nel=1):
    d = rng.uniform(1.0, 0.95 * RC, size=(n_env, n_neigh))
    u = rng.normal(size=(n_env, n_neigh, 3))
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    spec = rng.integers(0, nel, size=n_neigh)
    if nel > 1:
        spec[:nel] = np.arange(nel)
    return u * d[..., None], spec


def eval_basis(basis, pos, spec):
    a = atomic_base(pos, spec, basis.nelements, basis.nradbase, basis.lmax)
    return evaluate_functions(basis.functions, a, basis.lmax)


def weight_count(multiset) -> int:
    """Number of O(3)-invariants of a multiset of (mu, n, l), by weight multiplicities.

    Polynomials of the given multi-degree in the A's form prod_groups Sym^k(V_l); the
    multiplicity of L = 0 equals (#states with M = 0) - (#states with M = 1).  Under inversion
    they pick up (-1)^(sum l), so there are none for odd sum l.
    """
    if sum(f[-1] for f in multiset) % 2:
        return 0
    poly = {0: 1}
    for fac, k in _counter(multiset).items():
        ll = fac[-1]
        # multisets of size k of {-l..l}: generating function of the total M
        sym = {}
        for combo in itertools.combinations_with_replacement(range(-ll, ll + 1), k):
            sym[sum(combo)] = sym.get(sum(combo), 0) + 1
        new = {}
        for m1, c1 in poly.items():
            for m2, c2 in sym.items():
                new[m1 + m2] = new.get(m1 + m2, 0) + c1 * c2
        poly = new
    return poly.get(0, 0) - poly.get(1, 0)


def _counter(items):
    out = {}
    for it in items:
        out[it] = out.get(it, 0) + 1
    return out


def so3_quadrature(lsum: int):
    """Rotations and weights integrating D^L (L <= lsum) exactly over SO(3); with inversion."""
    n_ang = lsum + 1
    x, w = np.polynomial.legendre.leggauss(lsum // 2 + 1)
    angles = 2 * np.pi * np.arange(n_ang) / n_ang

    def rz(a):
        c, s = np.cos(a), np.sin(a)
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])

    def ry(b):
        c, s = np.cos(b), np.sin(b)
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])

    mats, weights = [], []
    for al in angles:
        for cb, wb in zip(x, w, strict=True):
            for ga in angles:
                rot = rz(al) @ ry(np.arccos(cb)) @ rz(ga)
                for sign in (1.0, -1.0):  # O(3): also the improper rotations
                    mats.append(sign * rot)
                    weights.append(wb)
    weights = np.array(weights)
    return np.array(mats), weights / weights.sum()


def numerical_rank(mat: np.ndarray, rtol: float = 1e-8) -> int:
    norms = np.linalg.norm(mat, axis=0)
    keep = norms > 1e-10 * norms.max()  # structurally zero columns are pure round-off
    mat = mat[:, keep] / norms[keep]
    sv = np.linalg.svd(mat, compute_uv=False)
    return int(np.sum(sv > rtol * sv[0]))


# --------------------------------------------------------------------------- angular
def test_cg_known_values():
    s = math.sqrt
    assert clebsch_gordan(1, 1, 1, -1, 0, 0) == pytest.approx(1 / s(3), abs=1e-15)
    assert clebsch_gordan(1, 0, 1, 0, 0, 0) == pytest.approx(-1 / s(3), abs=1e-15)
    assert clebsch_gordan(1, 0, 1, 0, 2, 0) == pytest.approx(s(2 / 3), abs=1e-15)
    assert clebsch_gordan(1, 0, 1, 0, 1, 0) == 0.0
    assert clebsch_gordan(1, 1, 1, 0, 2, 1) == pytest.approx(1 / s(2), abs=1e-15)
    assert clebsch_gordan(1, 1, 1, 0, 1, 1) == pytest.approx(1 / s(2), abs=1e-15)
    assert clebsch_gordan(2, 1, 1, -1, 1, 0) == pytest.approx(s(3 / 10), abs=1e-15)
    assert clebsch_gordan(2, 2, 2, -2, 0, 0) == pytest.approx(1 / s(5), abs=1e-15)
    assert clebsch_gordan(1, 1, 1, 1, 2, 2) == 1.0
    # selection rules
    assert clebsch_gordan(1, 1, 1, 1, 2, 1) == 0.0
    assert clebsch_gordan(1, 0, 1, 0, 3, 0) == 0.0
    assert clebsch_gordan(2, 3, 1, 0, 3, 3) == 0.0
    for ll in range(9):
        for m in range(-ll, ll + 1):
            exact = (-1) ** (ll - m) / s(2 * ll + 1)
            assert clebsch_gordan(ll, m, ll, -m, 0, 0) == pytest.approx(exact, abs=1e-15)


def test_cg_stretched_closed_form():
    # <l1 l1 l2 m2 | l1+l2, l1+m2> = sqrt( C(2l1, 2l1) C(2l2, l2-m2) / C(2L, L-M) ), L = l1+l2
    for l1 in range(6):
        for l2 in range(6):
            big_l = l1 + l2
            for m2 in range(-l2, l2 + 1):
                big_m = l1 + m2
                ref = math.sqrt(math.comb(2 * l2, l2 - m2) / math.comb(2 * big_l, big_l - big_m))
                assert clebsch_gordan(l1, l1, l2, m2, big_l, big_m) == pytest.approx(ref, rel=1e-14)


@pytest.mark.parametrize("l1,l2", [(0, 3), (1, 1), (2, 3), (4, 4), (8, 8), (5, 8)])
def test_cg_orthogonality(l1, l2):
    big_ls = range(abs(l1 - l2), l1 + l2 + 1)
    # matrix U[(m1, m2), (L, M)] is orthogonal
    rows = [(m1, m2) for m1 in range(-l1, l1 + 1) for m2 in range(-l2, l2 + 1)]
    cols = [(big_l, big_m) for big_l in big_ls for big_m in range(-big_l, big_l + 1)]
    assert len(rows) == len(cols)
    u = np.array([[clebsch_gordan(l1, m1, l2, m2, L, M) for (L, M) in cols] for (m1, m2) in rows])
    np.testing.assert_allclose(u.T @ u, np.eye(len(cols)), atol=1e-14)
    np.testing.assert_allclose(u @ u.T, np.eye(len(rows)), atol=1e-14)


def test_cg_symmetries():
    rng = np.random.default_rng(0)
    for _ in range(200):
        l1, l2 = rng.integers(0, 7, size=2)
        big_l = rng.integers(abs(l1 - l2), l1 + l2 + 1)
        m1, m2 = rng.integers(-l1, l1 + 1), rng.integers(-l2, l2 + 1)
        c = clebsch_gordan(l1, m1, l2, m2, big_l, m1 + m2)
        assert clebsch_gordan(l2, m2, l1, m1, big_l, m1 + m2) == pytest.approx(
            (-1) ** (l1 + l2 - big_l) * c, abs=1e-15
        )
        assert clebsch_gordan(l1, -m1, l2, -m2, big_l, -m1 - m2) == pytest.approx(
            (-1) ** (l1 + l2 - big_l) * c, abs=1e-15
        )


def sphere_quadrature(lmax):
    x, w = np.polynomial.legendre.leggauss(lmax + 1)
    nphi = 2 * lmax + 1
    phi = 2 * np.pi * np.arange(nphi) / nphi
    st = np.sqrt(1 - x**2)
    pts = np.stack(
        [np.outer(st, np.cos(phi)), np.outer(st, np.sin(phi)), np.outer(x, np.ones(nphi))], -1
    )
    wts = np.outer(w, np.full(nphi, 2 * np.pi / nphi))
    return pts.reshape(-1, 3), wts.reshape(-1)


def test_spherical_harmonics_convention_and_orthonormality():
    v = np.array([[0.3, -1.2, 0.7], [0.0, 0.0, 2.0], [1.0, 1.0, 0.0], [-0.2, 0.1, -3.0]])
    r = np.linalg.norm(v, axis=1)
    y = spherical_harmonics(v, 3)
    np.testing.assert_allclose(y[:, 0, 3], 1 / math.sqrt(4 * math.pi), rtol=1e-15)
    np.testing.assert_allclose(y[:, 1, 3], math.sqrt(3 / (4 * math.pi)) * v[:, 2] / r, atol=1e-15)
    y11 = -math.sqrt(3 / (8 * math.pi)) * (v[:, 0] + 1j * v[:, 1]) / r
    np.testing.assert_allclose(y[:, 1, 4], y11, atol=1e-15)
    np.testing.assert_allclose(y[:, 1, 2], -np.conj(y11), atol=1e-15)
    y22 = math.sqrt(15 / (32 * math.pi)) * ((v[:, 0] + 1j * v[:, 1]) / r) ** 2
    np.testing.assert_allclose(y[:, 2, 5], y22, atol=1e-15)
    # orthonormality on an exact quadrature (products of degree <= 2*8)
    lmax = 8
    pts, wts = sphere_quadrature(2 * lmax)
    y = spherical_harmonics(pts, lmax)
    flat = np.concatenate([y[:, ll, lmax - ll : lmax + ll + 1] for ll in range(lmax + 1)], axis=1)
    gram = flat.conj().T @ (wts[:, None] * flat)
    np.testing.assert_allclose(gram, np.eye(flat.shape[1]), atol=1e-13)


def test_gaunt_relation_links_cg_and_ylm():
    """Gaunt integral: int Y_l1^m1 Y_l2^m2 conj(Y_L^M) dOmega
    = sqrt((2l1+1)(2l2+1)/(4pi(2L+1))) <l1 0 l2 0|L 0> <l1 m1 l2 m2|L M>."""
    lmax = 4
    pts, wts = sphere_quadrature(3 * lmax)
    y = spherical_harmonics(pts, 2 * lmax)
    for l1, l2 in [(1, 1), (1, 2), (2, 3), (4, 3)]:
        for big_l in range(abs(l1 - l2), l1 + l2 + 1):
            for m1 in range(-l1, l1 + 1):
                for m2 in range(-l2, l2 + 1):
                    big_m = m1 + m2
                    if abs(big_m) > big_l:
                        continue
                    lm = 2 * lmax
                    integ = np.sum(
                        wts
                        * y[:, l1, lm + m1]
                        * y[:, l2, lm + m2]
                        * np.conj(y[:, big_l, lm + big_m])
                    )
                    pref = math.sqrt((2 * l1 + 1) * (2 * l2 + 1) / (4 * math.pi * (2 * big_l + 1)))
                    ref = (
                        pref
                        * clebsch_gordan(l1, 0, l2, 0, big_l, 0)
                        * clebsch_gordan(l1, m1, l2, m2, big_l, big_m)
                    )
                    assert abs(integ - ref) < 1e-13


# --------------------------------------------------------------------------- coupling
def test_generalized_cg_orthonormal_and_symmetric():
    for ls, groups in [
        ((1, 1, 2), (0, 1, 2)),
        ((2, 2, 2, 2), (0, 1, 2, 3)),
        ((1, 1, 1, 1), (0, 0, 1, 1)),
        ((1, 2, 2, 1, 2), (0, 1, 1, 2, 3)),
    ]:
        ms = coupling.m_tuples(ls)
        trees = coupling.coupling_trees(ls)
        vecs = np.array([coupling.generalized_cg(ls, t, ms) for t in trees])
        np.testing.assert_allclose(vecs @ vecs.T, np.eye(len(trees)), atol=1e-13)
        c = invariant_couplings(ls, groups)
        np.testing.assert_allclose(c.coeffs_full @ c.coeffs_full.T, np.eye(c.nfunc), atol=1e-12)
        # symmetric under exchange of identical factors, and C_{-m} = C_m
        index = {tuple(m): i for i, m in enumerate(ms)}
        for perm in itertools.permutations(range(len(ls))):
            if all(groups[p] == groups[q] for p, q in zip(perm, range(len(ls)), strict=True)):
                idx = [index[tuple(m[list(perm)])] for m in ms]
                np.testing.assert_allclose(c.coeffs_full[:, idx], c.coeffs_full, atol=1e-13)
        idx = [index[tuple(-m)] for m in ms]
        np.testing.assert_allclose(c.coeffs_full[:, idx], c.coeffs_full, atol=1e-13)


# --------------------------------------------------------------------------- counting
def independent_multisets(nel, rank, max_degree, w_l, lmax=None):
    """Enumerate multisets by brute force (no use of aceal.basis.spec)."""
    singles = [
        (mu, n, ll)
        for mu in range(nel)
        for n in range(1, int(max_degree) + 1)
        for ll in range(0, int(max_degree / max(w_l, 1e-9)) + 1)
        if (lmax is None or ll <= lmax)
        and (rank > 1 or ll == 0)
        # every other factor costs at least 1
        and n + w_l * ll <= max_degree - (rank - 1) + 1e-9
    ]
    out = []
    for combo in itertools.combinations_with_replacement(sorted(singles), rank):
        if sum(n + w_l * ll for _, n, ll in combo) <= max_degree + 1e-9:
            out.append(combo)
    return out


def basis_counts(basis):
    counts = {}
    for mu0, mset in zip(basis.species, basis.multisets, strict=True):
        counts[(int(mu0), mset)] = counts.get((int(mu0), mset), 0) + 1
    return counts


@pytest.mark.parametrize(
    "nel,order,max_degree,w_l,lmax",
    [
        (1, 4, 9, 1.5, None),  # nu = 1..4, many repeated (n, l)
        (1, 3, [6, 10, 10], 1.0, 3),
        (1, 5, 8, 1.0, None),
        (2, 3, 6, 1.5, None),
    ],
)
def test_counts_match_weight_formula(nel, order, max_degree, w_l, lmax):
    elements = ["Cu", "Ni", "Al"][:nel]
    basis = ACEBasis(elements, order=order, max_degree=max_degree, w_l=w_l, lmax=lmax)
    counts = basis_counts(basis)
    degs = max_degree if isinstance(max_degree, list) else [max_degree] * order
    expected = {}
    for rank in range(1, order + 1):
        for mset in independent_multisets(nel, rank, degs[rank - 1], w_l, lmax):
            k = 1 if rank == 1 else weight_count(mset)
            if k:
                for mu0 in range(nel):
                    expected[(mu0, mset)] = k
    assert counts == expected
    for r in range(1, order + 1):
        assert np.all(basis.degrees[basis.orders == r] <= degs[r - 1] + 1e-9)
    ref_deg = [sum(n + w_l * ll for _, n, ll in m) for m in basis.multisets]
    np.testing.assert_allclose(basis.degrees, ref_deg)


# multisets of (n, l): nu = 2, 3, 4 (repeated and distinct factors), 5
ROTATION_CASES = [
    ((1, 2), (2, 2)),
    ((1, 1), (1, 1), (1, 2)),
    ((1, 1), (2, 1), (1, 2)),
    ((1, 2), (1, 2), (1, 2)),
    ((1, 1), (2, 1), (3, 1), (4, 1)),
    ((1, 1), (1, 1), (2, 1), (2, 1)),
    ((1, 1), (1, 1), (1, 1), (1, 1)),
    ((1, 2), (1, 2), (2, 2), (2, 2)),
    ((1, 1), (1, 1), (1, 2), (2, 2)),
    ((1, 2), (1, 2), (1, 2), (2, 2)),
    ((1, 0), (1, 1), (1, 1), (2, 2)),
    ((1, 1), (1, 1), (1, 1), (2, 1), (2, 2)),
]


def test_counts_match_rotation_averaged_rank():
    """Rank of O(3)-averaged products of A's (exact quadrature) == number of basis functions.

    Independent of coupling.py: only spherical harmonics and an exact SO(3) quadrature.
    Also checks that the basis functions lie in the span of the averaged products.
    """
    rng = np.random.default_rng(1)
    basis = ACEBasis(["Mo"], order=5, max_degree=[2, 8, 10, 14, 13], w_l=1.0)
    counts = basis_counts(basis)
    lmax = 2
    for case in ROTATION_CASES:
        mset = tuple(sorted((0, n, ll) for n, ll in case))
        ls = [ll for _, _, ll in mset]
        lsum = sum(ls)
        n_basis = counts.get((0, mset), 0)
        n_env = 3 * max(n_basis, weight_count(mset), 1) + 6
        pos, spec = random_environments(rng, n_env, 7)
        rots, wts = so3_quadrature(lsum)
        # sum-m = 0 tuples (others average to zero under rotations about z)
        tuples = [m for m in itertools.product(*[range(-ll, ll + 1) for ll in ls]) if sum(m) == 0]
        avg = np.zeros((n_env, len(tuples)), dtype=complex)
        for chunk in np.array_split(np.arange(len(rots)), max(1, len(rots) // 64)):
            rp = np.einsum("rij,ekj->reki", rots[chunk], pos)
            a = atomic_base(rp, spec, 1, 4, lmax)[..., 0, :, :, :]  # (R, E, n, l, m)
            prod = np.ones((len(chunk), n_env, len(tuples)), dtype=complex)
            for t, (_, n, ll) in enumerate(mset):
                mt = np.array([m[t] for m in tuples])
                prod *= a[:, :, n, ll, mt + lmax]
            avg += np.einsum("r,rek->ek", wts[chunk], prod)
        rank = numerical_rank(avg)
        assert rank == weight_count(mset) == n_basis, (case, rank, n_basis)
        if n_basis:
            sel = [k for k, m in enumerate(basis.multisets) if m == mset and basis.species[k] == 0]
            a0 = atomic_base(pos, spec, 1, basis.nradbase, basis.lmax)
            b = evaluate_functions([basis.functions[k] for k in sel], a0, basis.lmax)
            assert numerical_rank(np.hstack([avg, b])) == rank


# --------------------------------------------------------------------------- invariance
@pytest.fixture(scope="module")
def basis2():
    return ACEBasis(["Cu", "Ni"], order=4, max_degree=8, r_cut=RC)


@pytest.fixture(scope="module")
def basis1():
    return ACEBasis(["Mo"], order=4, max_degree=12, r_cut=RC)


@pytest.mark.parametrize("which", ["basis1", "basis2"])
def test_invariance_and_reality(which, request):
    basis = request.getfixturevalue(which)
    rng = np.random.default_rng(2)
    nel = basis.nelements
    pos, spec = random_environments(rng, 4, 12, nel)
    b0 = eval_basis(basis, pos, spec)
    scale = np.abs(b0).max(axis=0) + 1e-300
    rot = random_rotation(rng)
    refl = np.diag([1.0, -1.0, 1.0]) @ random_rotation(rng)
    for op in (rot, refl, -np.eye(3), rot @ refl):
        b1 = eval_basis(basis, pos @ op.T, spec)
        assert np.max(np.abs(b1 - b0) / scale) < 1e-10
    perm = rng.permutation(pos.shape[1])
    b2 = eval_basis(basis, pos[:, perm], spec[perm])
    assert np.max(np.abs(b2 - b0) / scale) < 1e-10
    # the full complex sum over all m is real and equals the half-stored Re-representation
    a = atomic_base(pos, spec, nel, basis.nradbase, basis.lmax)
    for k, f in enumerate(basis.functions):
        if f.rank == 1:
            continue
        c = invariant_couplings(tuple(int(v) for v in f.ls), canonical_groups(basis.multisets[k]))
        j = basis.sub_index[k]
        prod = np.ones((a.shape[0], c.ms_full.shape[0]), dtype=complex)
        for t in range(f.rank):
            prod = prod * a[:, f.mus[t], f.ns[t], f.ls[t], c.ms_full[:, t] + basis.lmax]
        full = prod @ c.coeffs_full[j]
        assert np.max(np.abs(full.imag)) < 1e-12 * scale[k]
        np.testing.assert_allclose(full.real, b0[:, k], rtol=0, atol=1e-12 * scale[k])


def test_species_swap_symmetry(basis2):
    """Relabelling neighbour species maps functions onto functions with swapped mus."""
    rng = np.random.default_rng(3)
    pos, spec = random_environments(rng, 3, 10, 2)
    b = eval_basis(basis2, pos, spec)
    b_sw = eval_basis(basis2, pos, 1 - spec)
    key = {}
    for k, f in enumerate(basis2.functions):
        key.setdefault((int(f.mu0), basis2.multisets[k]), []).append(k)
    for k, f in enumerate(basis2.functions):
        if f.rank != 1:
            continue
        swapped = ((1 - f.mus[0], int(f.ns[0]), 0),)
        (k2,) = key[(int(f.mu0), swapped)]
        np.testing.assert_allclose(b_sw[:, k], b[:, k2], rtol=1e-12)


# --------------------------------------------------------------------------- independence
@pytest.mark.parametrize("which", ["basis1", "basis2"])
def test_linear_independence(which, request):
    basis = request.getfixturevalue(which)
    rng = np.random.default_rng(4)
    nper = int(np.sum(basis.species == 0))
    # the central species only labels the functions (same multisets for every mu0)
    funcs = [f for f in basis.functions if f.mu0 == 0]
    blocks = []
    for n_neigh in (6, 9, 14, 20):
        pos, spec = random_environments(rng, nper // 2 + 10, n_neigh, basis.nelements)
        a = atomic_base(pos, spec, basis.nelements, basis.nradbase, basis.lmax)
        blocks.append(evaluate_functions(funcs, a, basis.lmax))
    sub = np.vstack(blocks)
    assert sub.shape[0] > 2 * sub.shape[1]
    assert numerical_rank(sub, rtol=1e-10) == nper
    # the rank test does detect a dependent function
    k = rng.integers(0, nper, size=3)
    extra = sub[:, k[0]] + 0.5 * sub[:, k[1]] - sub[:, k[2]]
    assert numerical_rank(np.hstack([sub, extra[:, None]]), rtol=1e-10) == nper


# --------------------------------------------------------------------------- structure
def test_multi_element_structure(basis2):
    b = basis2
    assert b.elements == ["Cu", "Ni"]
    assert len(b) == 2 * np.sum(b.species == 0)
    combos = {(int(f.mu0), tuple(int(m) for m in f.mus)) for f in b.functions if f.rank == 3}
    expected = {
        (mu0, mus)
        for mu0 in range(2)
        for mus in itertools.combinations_with_replacement(range(2), 3)
    }
    assert combos == expected
    for f, mset in zip(b.functions, b.multisets, strict=True):
        assert [tuple(x) for x in zip(f.mus, f.ns, f.ls, strict=True)] == list(mset)
        assert list(mset) == sorted(mset)
        assert f.ctildes.shape == (f.ms_combs.shape[0], 1)
        assert np.all(f.ms_combs.sum(axis=1) == 0)
        assert np.all(np.abs(f.ms_combs) <= f.ls[None, :])
        if f.rank == 1:
            assert f.ls[0] == 0 and f.ms_combs.tolist() == [[0]] and f.ctildes.tolist() == [[1.0]]
    # global order: (rank, mu0, mus, ns, ls, sub)
    keys = [
        (int(o), int(s), tuple(f.mus), tuple(f.ns), tuple(f.ls), int(j))
        for o, s, f, j in zip(b.orders, b.species, b.functions, b.sub_index, strict=True)
    ]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert set(b.bonds) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    bond = b.bonds[(0, 1)]
    assert bond.nradbase == max(int(f.ns.max()) for f in b.functions)
    assert bond.nradmax == max(int(f.ns.max()) for f in b.functions if f.rank > 1)
    assert bond.lmax == max(int(f.ls.max()) for f in b.functions)
    assert bond.crad.shape == (bond.nradmax, bond.lmax + 1, bond.nradbase)
    for n in range(bond.nradmax):
        for ll in range(bond.lmax + 1):
            expect = np.zeros(bond.nradbase)
            expect[n] = 1.0
            np.testing.assert_array_equal(bond.crad[n, ll], expect)


def test_pair_cutoffs_and_options():
    b = ACEBasis(
        ["Cu", "Ni"],
        order=2,
        max_degree=[6, 8],
        r_cut={("Cu", "Ni"): 4.5, "Cu-Cu": 5.0, ("Ni", "Ni"): 4.0},
        radial_basis="ChebExpCos",
        radial_parameters=[3.0],
        r_in=1.0,
        delta_in=0.5,
        dcut=0.2,
        lmax=1,
    )
    assert b.bonds[(0, 1)].rcut == b.bonds[(1, 0)].rcut == 4.5
    assert b.bonds[(0, 0)].rcut == 5.0 and b.bonds[(1, 1)].rcut == 4.0
    assert b.cutoff == 5.0
    for bond in b.bonds.values():
        assert bond.radbasename == "ChebExpCos" and bond.radparameters == [3.0]
        assert (bond.rcut_in, bond.dcut_in, bond.dcut) == (1.0, 0.5, 0.2)
        assert bond.inner_cutoff_type == "distance"
        assert bond.lmax == 1
    assert int(b.orders.max()) == 2 and np.all(b.degrees[b.orders == 1] <= 6)
    d = yaml.safe_load(yaml.safe_dump(b.to_dict()))
    b2 = ACEBasis.from_dict(d)
    assert b2.to_dict() == b.to_dict()
    assert_same_functions(b, b2)


def assert_same_functions(b1, b2):
    assert len(b1) == len(b2)
    for f, g in zip(b1.functions, b2.functions, strict=True):
        assert f.mu0 == g.mu0
        for name in ("mus", "ns", "ls", "ms_combs", "ctildes"):
            np.testing.assert_array_equal(getattr(f, name), getattr(g, name))
    np.testing.assert_array_equal(b1.degrees, b2.degrees)
    np.testing.assert_array_equal(b1.orders, b2.orders)
    np.testing.assert_array_equal(b1.species, b2.species)


def clear_caches():
    for fn in (
        angular._cg_exact,
        angular.cg_block,
        coupling.m_tuples,
        coupling.coupling_trees,
        coupling.invariant_couplings,
    ):
        fn.cache_clear()


def test_determinism_and_roundtrip():
    kwargs = dict(elements=["Mo", "W"], order=4, max_degree=[10, 10, 9, 8], r_cut=5.5)
    b1 = ACEBasis(**kwargs)
    clear_caches()
    b2 = ACEBasis(**kwargs)
    assert_same_functions(b1, b2)
    d = b1.to_dict()
    text = yaml.safe_dump(d)
    b3 = ACEBasis.from_dict(yaml.safe_load(text))
    assert_same_functions(b1, b3)
    assert b3.to_dict() == d
    assert b1.labels() == b3.labels() and len(set(b1.labels())) == len(b1)


# --------------------------------------------------------------------------- potential
def test_ctilde_potential_matches_linear_model(basis2):
    rng = np.random.default_rng(5)
    nfunc = len(basis2)
    coef = rng.normal(size=(nfunc, 3))
    coef[rng.random(nfunc) < 0.2] = 0.0
    pos, spec = random_environments(rng, 5, 11, 2)
    b = eval_basis(basis2, pos, spec)
    a = atomic_base(pos, spec, 2, basis2.nradbase, basis2.lmax)
    for merge in (True, False):
        pot = basis2.ctilde_potential(coef, e0={"Ni": -1.5}, merge=merge)
        assert isinstance(pot, CTildePotential)
        assert pot.ndensity == 3 and pot.elements == ["Cu", "Ni"]
        np.testing.assert_array_equal(pot.e0, [0.0, -1.5])
        assert all(e.npoti == "linear" for e in pot.embeddings.values())
        for mu in range(2):
            rho = np.zeros((pos.shape[0], 3))
            for f in pot.functions[mu]:
                assert f.mu0 == mu and f.ctildes.shape == (f.ms_combs.shape[0], 3)
                prod = np.ones((pos.shape[0], f.ms_combs.shape[0]), dtype=complex)
                for t in range(f.rank):
                    prod = prod * a[:, f.mus[t], f.ns[t], f.ls[t], f.ms_combs[:, t] + basis2.lmax]
                rho += prod.real @ f.ctildes
            sel = basis2.species == mu
            np.testing.assert_allclose(rho, b[:, sel] @ coef[sel], rtol=1e-12, atol=1e-12)
        if not merge:
            assert sum(len(v) for v in pot.functions.values()) == nfunc
    # single read-out, e0 as a list
    pot = basis2.ctilde_potential(coef[:, 0], e0=[1.0, 2.0])
    assert pot.ndensity == 1 and pot.cutoff == RC


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(elements=["Xx"]), "elements"),
        (dict(elements=[]), "elements"),
        (dict(elements=["Cu", "Cu"]), "duplicate"),
        (dict(order=0), "order"),
        (dict(order=2.5), "order"),
        (dict(max_degree=-1), "max_degree"),
        (dict(max_degree=0.5), "max_degree"),
        (dict(order=2, max_degree=[5, 6, 7]), "max_degree"),
        (dict(max_degree="a"), "max_degree"),
        (dict(radial_basis="Gauss"), "radial_basis"),
        (dict(r_cut=-1.0), "r_cut"),
        (dict(elements=["Cu", "Ni"], r_cut={("Cu", "Ni"): 4.0, "Cu-Cu": 4.0}), "Ni-Ni"),
        (dict(elements=["Cu", "Ni"], r_cut={("Cu", "Fe"): 4.0}), "r_cut"),
        (dict(w_l=-1.0), "w_l"),
        (dict(w_l=0.0), "lmax"),
        (dict(lmax=-2), "lmax"),
        (dict(r_in=6.0), "r_in"),
        (dict(r_in=1.0, delta_in=2.0), "delta_in"),
        (dict(radial_parameters=["x"]), "radial_parameters"),
        (dict(delta_spline_bins=0), "delta_spline_bins"),
    ],
)
def test_input_validation(kwargs, match):
    with pytest.raises(AcealInputError, match=match):
        ACEBasis(**kwargs)


def test_input_validation_api(basis1):
    with pytest.raises(AcealInputError, match="unknown key"):
        ACEBasis.from_dict({"elements": ["Mo"], "cutoff": 5.0})
    with pytest.raises(AcealInputError, match="coefficients"):
        basis1.ctilde_potential(np.zeros(len(basis1) + 1))
    with pytest.raises(AcealInputError, match="e0"):
        basis1.ctilde_potential(np.zeros(len(basis1)), e0=[1.0, 2.0])
