"""Radial basis functions, cutoffs and core repulsion (plain numpy, vectorised over r).

The definitions follow PACE (pacemaker / LAMMPS ``pair_style pace``) so that ``.yace``
files evaluate identically: the radial basis ``g_k(r)`` of a bond is one of
``SBessel``, ``ChebExpCos``, ``ChebPow``, ``ChebLinear``; an inner cutoff multiplies it by
a polynomial switch; the core repulsion is ``prehc * exp(-lambdahc r^2) / r`` with a
cosine envelope. Distances in Å, energies in eV.

:func:`tabulate_bond` samples everything a bond needs on the spline grid used by the
kernels (values and derivatives at equidistant nodes; cubic Hermite in between).
"""

from __future__ import annotations

import numpy as np

from aceal.basis.ctilde import RADIAL_BASES, Bond
from aceal.errors import AcealInputError


def poly_switch(r: np.ndarray, r_in: float, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Quintic switch: 1 for ``r <= r_in - delta``, 0 for ``r >= r_in``, smooth between.

    Returns the value and its derivative with respect to ``r``.
    """
    r = np.asarray(r, dtype=float)
    fc = np.where(r <= r_in - delta, 1.0, 0.0)
    dfc = np.zeros_like(r)
    mid = (r > r_in - delta) & (r < r_in)
    if np.any(mid):
        x = 1.0 - 2.0 * (1.0 + (r[mid] - r_in) / delta)
        fc[mid] = 0.5 + 3.75 * (x / 4.0 - x**3 / 6.0 + x**5 / 20.0)
        dfc[mid] = -7.5 / delta * (0.25 - x * x / 2.0 + x**4 / 4.0)
    return fc, dfc


def _chebyshev(n: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chebyshev polynomials T_0..T_n(x) and their derivatives, shape (n+1, len(x))."""
    t = np.zeros((n + 1, x.size))
    u = np.zeros((n + 1, x.size))  # second kind, for the derivative
    t[0] = 1.0
    u[0] = 1.0
    if n >= 1:
        t[1] = x
        u[1] = 2 * x
    for m in range(1, n):
        t[m + 1] = 2 * x * t[m] - t[m - 1]
        u[m + 1] = 2 * x * u[m] - u[m - 1]
    dt = np.zeros_like(t)
    for m in range(1, n + 1):
        dt[m] = m * u[m - 1]
    return t, dt


def _sbessel(nradbase: int, rc: float, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthogonalised simplified spherical Bessel functions (Kocer et al.), smooth at rc."""

    def sinc(x):
        return np.where(x != 0, np.sin(x) / np.where(x != 0, x, 1.0), 1.0)

    def dsinc(x):
        xs = np.where(x != 0, x, 1.0)
        return np.where(x != 0, (np.cos(x) * x - np.sin(x)) / (xs * xs), 0.0)

    def aux(n):
        pre = (-1.0) ** n * np.sqrt(2.0) * np.pi / rc**1.5 * (n + 1) * (n + 2)
        pre /= np.sqrt((n + 1) ** 2 + (n + 2) ** 2)
        a, b = (n + 1) * np.pi / rc, (n + 2) * np.pi / rc
        return pre * (sinc(r * a) + sinc(r * b)), pre * (dsinc(r * a) * a + dsinc(r * b) * b)

    g = np.zeros((nradbase, r.size))
    dg = np.zeros((nradbase, r.size))
    g[0], dg[0] = aux(0)
    d_prev = 1.0
    for n in range(1, nradbase):
        en = n**2 * (n + 2) ** 2 / (4.0 * (n + 1) ** 4 + 1.0)
        dn = 1.0 - en / d_prev
        fn, dfn = aux(n)
        g[n] = (fn + np.sqrt(en / d_prev) * g[n - 1]) / np.sqrt(dn)
        dg[n] = (dfn + np.sqrt(en / d_prev) * dg[n - 1]) / np.sqrt(dn)
        d_prev = dn
    inside = r < rc
    return g * inside, dg * inside


def radial_basis(bond: Bond, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radial basis ``g_k(r)`` and ``dg_k/dr`` of a bond, each of shape (nradbase, len(r)).

    Zero outside ``(rcut_in - dcut_in, rcut)``; includes the inner cutoff switch.
    """
    r = np.atleast_1d(np.asarray(r, dtype=float))
    nb, name, rc, dc = bond.nradbase, bond.radbasename, bond.rcut, bond.dcut
    if name not in RADIAL_BASES:
        raise AcealInputError(f"unknown radial basis {name!r}; known: {', '.join(RADIAL_BASES)}")
    lam = float(bond.radparameters[0]) if len(bond.radparameters) else 0.0
    if name == "SBessel":
        g, dg = _sbessel(nb, rc, r)
    elif name == "ChebExpCos":
        y1 = np.exp(-lam * r / rc)
        y2 = np.exp(-lam)
        x = 1.0 - 2.0 * ((y1 - y2) / (1 - y2))
        dx = 2 * (lam / rc) * (y1 / (1 - y2))
        t, dt = _chebyshev(nb, x)
        g = np.empty((nb, r.size))
        dg = np.empty((nb, r.size))
        g[0], dg[0] = t[0], dt[0] * dx
        g[1:] = 0.5 - 0.5 * t[1:nb]
        dg[1:] = -0.5 * dt[1:nb] * dx
        env = 0.5 * (1.0 + np.cos(np.pi * r / rc))
        denv = -0.5 * np.sin(np.pi * r / rc) * np.pi / rc
        g, dg = g * env, dg * env + g * denv
        start = rc - dc
        fcut = np.where(r > start, 0.5 * (1.0 + np.cos(np.pi * (r - start) / dc)), 1.0)
        dfcut = np.where(r > start, -0.5 * np.sin(np.pi * (r - start) / dc) * np.pi / dc, 0.0)
        g, dg = g * fcut, dg * fcut + g * dfcut
    elif name == "ChebPow":
        y = np.clip(1.0 - r / rc, 0.0, None)
        dy = y ** (lam - 1.0)
        yl = dy * y
        dyl = -lam / rc * dy
        x = 2.0 * (1.0 - yl) - 1.0
        dx = -2.0 * dyl
        t, dt = _chebyshev(nb, x)
        g = 0.5 - 0.5 * t[1:]
        dg = -0.5 * dt[1:] * dx
    else:  # ChebLinear
        x = 1.0 - r / rc
        dx = -1.0 / rc
        t, dt = _chebyshev(nb, x)
        g = 0.5 - 0.5 * t[1:]
        dg = -0.5 * dt[1:] * dx
    if bond.inner_cutoff_type in ("distance", "zbl"):
        fc, dfc = poly_switch(r, bond.rcut_in, bond.dcut_in)
        fc, dfc = 1.0 - fc, -dfc
        g, dg = g * fc, dg * fc + g * dfc
    outside = (r <= bond.rcut_in - bond.dcut_in) | (r >= rc)
    g[:, outside] = 0.0
    dg[:, outside] = 0.0
    return g, dg


def radial_functions(bond: Bond, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``R_nl(r) = sum_k crad[n,l,k] g_k(r)`` and derivative, shape (nradmax, lmax+1, len(r))."""
    g, dg = radial_basis(bond, r)
    crad = np.asarray(bond.crad, dtype=float)
    return np.einsum("nlk,kr->nlr", crad, g), np.einsum("nlk,kr->nlr", crad, dg)


def core_repulsion(bond: Bond, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PACE core repulsion energy contribution (eV) and its r-derivative (eV/Å)."""
    r = np.atleast_1d(np.asarray(r, dtype=float))
    if bond.inner_cutoff_type == "zbl":
        raise AcealInputError("inner_cutoff_type 'zbl' is not supported yet; use 'distance'")
    pre, lam = abs(bond.prehc), abs(bond.lambdahc)
    lr2 = lam * r * r
    small = lr2 < 50.0
    y = np.exp(-np.where(small, lr2, 0.0))
    cr = np.where(small, pre * y / r, 0.0)
    dcr = np.where(small, -pre * y * (2.0 * lr2 + 1.0) / (r * r), 0.0)
    env = 0.5 * (1.0 + np.cos(np.pi * r / bond.rcut))
    denv = -0.5 * np.sin(np.pi * r / bond.rcut) * np.pi / bond.rcut
    cr, dcr = cr * env, dcr * env + cr * denv
    if bond.inner_cutoff_type == "distance":
        fc, dfc = poly_switch(r, bond.rcut_in, bond.dcut_in)
        cr, dcr = cr * fc, dcr * fc + cr * dfc
    outside = r >= bond.rcut
    cr[outside] = 0.0
    dcr[outside] = 0.0
    return cr, dcr


def tabulate_bond(
    bond: Bond, nradbase: int, nradmax: int, lmax: int, step: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """Sample a bond's functions on the spline nodes ``r_k = k * rcut / nlut``.

    Returns ``values`` and ``derivatives`` of shape (nlut + 1, nfunc) with the functions
    ordered as ``[g_0..g_{nradbase-1}, R_{n,l} (n-major), core]`` (zero-padded to the
    global sizes), and ``nlut = int(rcut / step)``.
    """
    nlut = int(bond.rcut / step)
    r = (bond.rcut / nlut) * np.arange(nlut + 1, dtype=float)
    r[0] = r[1] * 1e-3  # never used for lookups: r < step is rejected as an overlap
    nfunc = nradbase + nradmax * (lmax + 1) + 1
    values = np.zeros((nlut + 1, nfunc))
    derivs = np.zeros((nlut + 1, nfunc))
    g, dg = radial_basis(bond, r)
    values[:, : bond.nradbase] = g.T
    derivs[:, : bond.nradbase] = dg.T
    crad = np.zeros((nradmax, lmax + 1, bond.nradbase))
    c = np.asarray(bond.crad, dtype=float)
    crad[: c.shape[0], : c.shape[1], :] = c[:, :, : bond.nradbase]
    rnl = np.einsum("nlk,kr->rnl", crad, g).reshape(len(r), -1)
    drnl = np.einsum("nlk,kr->rnl", crad, dg).reshape(len(r), -1)
    values[:, nradbase : nradbase + rnl.shape[1]] = rnl
    derivs[:, nradbase : nradbase + rnl.shape[1]] = drnl
    cr, dcr = core_repulsion(bond, r)
    values[:, -1] = cr
    derivs[:, -1] = dcr
    values[nlut] = 0.0  # functions and derivatives vanish at the cutoff
    derivs[nlut] = 0.0
    return values, derivs, nlut


def hermite_coefficients(values: np.ndarray, derivs: np.ndarray, h: float) -> np.ndarray:
    """Cubic Hermite coefficients per interval: shape (nodes, nfunc, 4).

    Interval k spans ``[k h, (k+1) h]``; with ``w = r/h - k`` the value is
    ``c0 + c1 w + c2 w^2 + c3 w^3``. The last row (k = nlut) is zero.
    """
    f0, d0 = values[:-1], derivs[:-1] * h
    f1, d1 = values[1:], derivs[1:] * h
    coef = np.zeros(values.shape + (4,))
    coef[:-1, :, 0] = f0
    coef[:-1, :, 1] = d0
    coef[:-1, :, 2] = 3.0 * (f1 - f0) - d1 - 2.0 * d0
    coef[:-1, :, 3] = -2.0 * (f1 - f0) + d1 + d0
    return coef
