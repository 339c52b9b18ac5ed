"""Kernel building blocks of the evaluator on their own: Y_lm block, radial splines and the
product graph (the end-to-end guards are test_pace_reference / test_calculator)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aceal.basis.radial import core_repulsion, radial_basis, radial_functions
from aceal.basis.tables import build_tables
from aceal.formats.yace import read_yace
from aceal.kernels.evaluate import base_scratch, splines_block, ylm_block
from aceal.kernels.sphharm import ylm_recursion_coefficients

DATA = Path(__file__).parent / "data"
LMAX = 6


def _unit_vectors(n, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, 3))
    v[0] = [0.0, 0.0, 1.0]  # poles
    v[1] = [0.0, 0.0, -1.0]
    return v / np.linalg.norm(v, axis=1)[:, None]


def _base(lmax=LMAX):
    """The atomic-base tables of cu_small with ``lmax`` (and its Y_lm coefficients)."""
    base = build_tables(read_yace(DATA / "cu_small.yace")).base
    return base._replace(lmax=lmax, ylm_coef=ylm_recursion_coefficients(lmax))


def _ylm(h, lmax=LMAX):
    n = len(h)
    base = _base(lmax)
    s = base_scratch(n, base)
    for k, x in enumerate((s.hx, s.hy, s.hz)):
        x[:] = h[:, k]
    ylm_block(n, base, s)
    return s.P, s.dP, s.Er, s.Ei, s.Yr + 1j * s.Yi


def test_ylm_matches_scipy_times_sqrt_4pi():
    sph_harm_y = pytest.importorskip("scipy.special").sph_harm_y
    h = _unit_vectors(40)
    _, _, _, _, Y = _ylm(h)
    theta = np.arccos(np.clip(h[:, 2], -1, 1))
    phi = np.arctan2(h[:, 1], h[:, 0])
    for l in range(LMAX + 1):
        for m in range(l + 1):
            ref = np.sqrt(4 * np.pi) * sph_harm_y(l, m, theta, phi)
            np.testing.assert_allclose(Y[l * (l + 1) // 2 + m], ref, atol=1e-12, rtol=1e-12)


def test_ylm_gradient_matches_finite_differences():
    """The evaluator's gradient of Y(r/|r|): ((g - r_hat (r_hat.g)) / |r|) with
    g_x = m e_{m-1} P, g_y = i m e_{m-1} P, g_z = e_m dP/dz, e_m = (x + i y)^m."""
    rng = np.random.default_rng(1)
    r = _unit_vectors(10, seed=2) * rng.uniform(1.5, 4.0, size=(10, 1))
    rn = np.linalg.norm(r, axis=1)
    h = r / rn[:, None]
    P, dP, Er, Ei, _ = _ylm(h)
    e = Er + 1j * Ei
    eps = 1e-6
    for l in range(LMAX + 1):
        for m in range(l + 1):
            k = l * (l + 1) // 2 + m
            em1 = e[m - 1] if m > 0 else np.zeros(len(h))
            g = np.stack([m * em1 * P[k], 1j * m * em1 * P[k], e[m] * dP[k]], axis=1)
            grad = (g - h * np.sum(h * g, axis=1)[:, None]) / rn[:, None]
            for a in range(3):
                dr = np.zeros(3)
                dr[a] = eps
                yp = _ylm((r + dr) / np.linalg.norm(r + dr, axis=1)[:, None])[4][k]
                ym = _ylm((r - dr) / np.linalg.norm(r - dr, axis=1)[:, None])[4][k]
                np.testing.assert_allclose(grad[:, a], (yp - ym) / (2 * eps), atol=1e-7)


@pytest.mark.parametrize("name", ["cu_small", "Cu-PBE-core-rep"])
def test_splines_match_analytic_radial_functions(name):
    pot = read_yace(DATA / f"{name}.yace")
    t = build_tables(pot)
    bond = pot.bonds[(0, 0)]
    r = np.random.default_rng(3).uniform(1.2, bond.rcut - 1e-3, 50)
    nfs = t.spline.shape[2]
    s = base_scratch(len(r), t.base)
    s.rr[:] = r
    splines_block(t.base, 0, 0, len(r), s)
    V, D = s.V, s.D
    g, dg = radial_basis(bond, r)
    R, dR = radial_functions(bond, r)
    c, dc = core_repulsion(bond, r)
    nb = bond.nradbase
    nl1 = t.lmax + 1
    rnl = np.zeros((t.nradmax, nl1, len(r)))
    drnl = np.zeros_like(rnl)
    rnl[: R.shape[0], : R.shape[1]] = R
    drnl[: R.shape[0], : R.shape[1]] = dR
    scale = max(1.0, np.abs(V).max())
    tol = 1e-6 * scale  # cubic Hermite on the deltaSplineBins grid
    np.testing.assert_allclose(V[:nb], g, atol=tol)
    np.testing.assert_allclose(V[t.nradbase : t.nradbase + t.nradmax * nl1],
                               rnl.reshape(-1, len(r)), atol=tol)  # fmt: skip
    np.testing.assert_allclose(V[nfs - 1], c, atol=tol)
    dtol = 1e-4 * max(1.0, np.abs(D).max())
    np.testing.assert_allclose(D[:nb], dg, atol=dtol)
    np.testing.assert_allclose(D[t.nradbase : t.nradbase + t.nradmax * nl1],
                               drnl.reshape(-1, len(r)), atol=dtol)  # fmt: skip
    np.testing.assert_allclose(D[nfs - 1], dc, atol=dtol)


@pytest.mark.parametrize("name", ["cu_template", "cuni_small"])
def test_product_tree_reproduces_direct_products(name):
    t = build_tables(read_yace(DATA / f"{name}.yace"))
    rng = np.random.default_rng(4)
    A = rng.normal(size=t.n_channels) + 1j * rng.normal(size=t.n_channels)
    for mu in range(t.nelem):
        direct = np.zeros(t.ndensity)
        for s in range(t.comb_off[mu], t.comb_off[mu + 1]):
            chans = t.comb_aidx[t.comb_aoff[s] : t.comb_aoff[s + 1]]
            direct += t.comb_coef[s] * np.prod(A[chans]).real
        b, e = t.tree_off[mu], t.tree_off[mu + 1]
        par, chan = t.tree_parent[b:e], t.tree_chan[b:e]
        assert np.all(par[1:] < np.arange(1, e - b))  # parents before children
        tv = np.ones(e - b, dtype=complex)
        for j in range(1, e - b):
            tv[j] = tv[par[j]] * A[chan[j]]
        tree = (t.tree_coef[b:e] * tv.real[:, None]).sum(axis=0)
        np.testing.assert_allclose(tree, direct, rtol=1e-12, atol=1e-12)
        # fewer multiplications than the term-by-term products
        assert e - b - 1 <= t.comb_aoff[t.comb_off[mu + 1]] - t.comb_aoff[t.comb_off[mu]]


def test_table_bundles_are_built_once_and_share_the_arrays():
    t = build_tables(read_yace(DATA / "cuni_small.yace"))
    assert t.base is t.base and t.embedding is t.embedding and t.densities is t.densities
    assert (t.base.nelem, t.base.lmax, t.base.nradmax, t.base.nradbase) == (
        t.nelem, t.lmax, t.nradmax, t.nradbase
    )
    assert t.base.spline is t.spline and t.embedding.e0 is t.e0
    assert t.densities.tree_parent is t.tree_parent and t.densities.r1_coef is t.r1_coef
    np.testing.assert_array_equal(t.base.ylm_coef, ylm_recursion_coefficients(t.lmax))
