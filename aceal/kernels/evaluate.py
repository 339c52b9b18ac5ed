"""Energy, site energies, densities and pair gradients of an ACE potential (numba).

One pass per atom: neighbour radial/angular functions → atomic base ``A`` → products
and densities ``rho_p`` → embedding → adjoint ``dE/dA`` → per-pair gradients
``dE_i/dr_ij``. Forces and the virial follow from the pair gradients
(:func:`scatter_pair_gradients`). Table layout: :mod:`aceal.basis.tables`.
Units: Å and eV; pair gradients in eV/Å.

The energy path (:func:`evaluate_atoms`) is laid out for speed: an atom's neighbours are
grouped by species, spline values and ``Y_lm`` are stored function-major
(``[function, neighbour]``, real and imaginary parts apart) so that ``A`` accumulation and
the force contraction are loops over neighbours that LLVM vectorises; the force
contraction sums the weights over ``n`` first and never forms ``dY_lm`` (it uses
``(x+iy)^m`` and ``dP_lm/dz``); the product terms are evaluated on a product graph
(:func:`aceal.basis.tables.product_tree`) with one forward and one reverse pass.
:func:`atomic_base` (neighbours, splines, ``Y_lm``, ``A``) and :func:`ylm_gradients` also
serve the design-matrix kernels.

Arguments travel in NamedTuples of arrays (numba passes them like the arrays themselves):
the neighbour list (:class:`Neighbours`), the tables of :mod:`aceal.basis.tables`
(``BaseTables``, ``EmbeddingTables``, ``DensityTables``), per-thread scratch
(:class:`BaseScratch`, :class:`SiteScratch`, :class:`CommitteeScratch`, allocated once per
chunk of atoms) and the outputs (:class:`EvaluationOutputs`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from aceal.kernels.sphharm import Y00


@njit(cache=True)
def poly_cutoff(x, x_in, delta):
    """Quintic switch (value, derivative): 1 below ``x_in - delta``, 0 above ``x_in``."""
    if x <= x_in - delta:
        return 1.0, 0.0
    if x >= x_in:
        return 0.0, 0.0
    t = 1.0 - 2.0 * (1.0 + (x - x_in) / delta)
    fc = 0.5 + 3.75 * (t / 4.0 - t**3 / 6.0 + t**5 / 20.0)
    dfc = -7.5 / delta * (0.25 - t * t / 2.0 + t**4 / 4.0)
    return fc, dfc


@njit(cache=True)
def embedding(kind, rho, params, ndens, dF):
    """Embedding energy ``sum_p w_p F(rho_p; m_p)``; fills ``dF[p] = dE/drho_p``.

    ``kind`` 0: linear (``E = rho_0``); 1: Finnis-Sinclair; 2: shifted-scaled FS (PACE).
    """
    if kind == 0:
        for p in range(dF.shape[0]):
            dF[p] = 0.0
        dF[0] = 1.0
        return rho[0]
    energy = 0.0
    for p in range(ndens):
        w = params[p, 0]
        mexp = params[p, 1]
        x = rho[p]
        if kind == 1:
            wfs = 1.0e6
            lam = (1.0 / wfs) ** (mexp - 1.0)
            if abs(x) > 1e-10:
                a = abs(x)
                am = a**mexp
                w3x3 = (wfs * a) ** 3
                g = 0.0 if w3x3 > 30.0 else math.exp(-w3x3)
                sign = -1.0 if x < 0 else 1.0
                f = sign * ((1.0 - g) * am + lam * g * a)
                dg = -3.0 * wfs**3 * a * a * g
                df = mexp * a ** (mexp - 1.0) * (1.0 - g) - am * dg + lam * dg * a + lam * g
            else:
                f = lam * x
                df = lam
        else:
            if abs(mexp - 1.0) < 1e-10:
                f = x
                df = 1.0
            else:
                a = abs(x)
                ex = math.exp(-a)
                nx = 1.0 / mexp
                xoff = nx ** (nx / (1.0 - nx)) * ex
                yoff = nx ** (1.0 / (1.0 - nx)) * ex
                sign = -1.0 if x < 0 else 1.0
                f = sign * ((xoff + a) ** mexp - yoff)
                df = yoff + mexp * (1.0 - xoff) * (xoff + a) ** (mexp - 1.0)
        energy += w * f
        dF[p] = w * df
    for p in range(ndens, dF.shape[0]):
        dF[p] = 0.0
    return energy


# fast-math flags for the pure-arithmetic kernels (reassociation lets LLVM vectorise the
# sums over neighbours); no nnan/ninf so non-finite checks stay meaningful
_FM = {"reassoc", "contract", "nsz", "arcp"}


class Neighbours(NamedTuple):
    """A full CSR neighbour list with displacement vectors (both ``i -> j`` and ``j -> i``)."""

    first: np.ndarray  # (natoms + 1,) int64: the pairs of atom i are first[i]:first[i+1]
    j: np.ndarray  # (npairs,) int64 neighbour of each pair
    d: np.ndarray  # (npairs, 3) displacement r_j - r_i (Å)
    species: np.ndarray  # (natoms,) int64 species index of each atom


class BaseScratch(NamedTuple):
    """Per-thread scratch of :func:`atomic_base` for up to ``maxnb`` neighbours of one atom
    (:func:`base_scratch`); blocks are function-major, ``[function, neighbour]``."""

    rr: np.ndarray  # (maxnb,) distances, neighbours grouped by species
    hx: np.ndarray  # (maxnb,) unit vector
    hy: np.ndarray
    hz: np.ndarray
    pidx: np.ndarray  # (maxnb,) int64 pair index in the neighbour list
    sp_off: np.ndarray  # (nelem + 1,) int64 species groups of the neighbours
    V: np.ndarray  # (nfs, maxnb) spline values
    D: np.ndarray  # (nfs, maxnb) their radial derivatives
    P: np.ndarray  # (nlmh, maxnb) P_lm(z), lm = l(l+1)/2 + m
    dP: np.ndarray  # (nlmh, maxnb) dP_lm/dz
    Er: np.ndarray  # (lmax + 1, maxnb) Er + i Ei = (x + iy)^m
    Ei: np.ndarray
    Yr: np.ndarray  # (nlmh, maxnb) Y_lm, m >= 0
    Yi: np.ndarray
    A: np.ndarray  # (nelem * nradmax * (lmax+1)^2,) complex atomic base, all m
    A1: np.ndarray  # (nelem * nradbase,) rank-1 atomic base


class SiteScratch(NamedTuple):
    """Per-thread scratch of :func:`_site` beyond :class:`BaseScratch` (:func:`site_scratch`)."""

    W: np.ndarray  # like A: dE/dA (folded onto m >= 0 before the contraction)
    W1: np.ndarray  # like A1: dE/dA1
    rho: np.ndarray  # (ndensity,) densities of the site
    dF: np.ndarray  # (ndensity,) dE/drho_p (first the sum of the products, _densities)
    tv: np.ndarray  # (maxnodes,) complex products at the nodes of the product graph
    tadj: np.ndarray  # (maxnodes,) complex adjoints of the nodes
    rad: np.ndarray  # (maxnb,) radial coefficient of dE/dr_ij (of the unit vector)
    Tx: np.ndarray  # (maxnb,) Cartesian vector T of dE/dr_ij (before projection and 1/r)
    Ty: np.ndarray
    Tz: np.ndarray
    Ur: np.ndarray  # (maxnb,) sums over n of the weights times V ...
    Ui: np.ndarray
    Vr: np.ndarray  # (maxnb,) ... and times D
    Vi: np.ndarray
    cstate: np.ndarray  # (2,) inner cutoff fcut, dfcut of the last site


class CommitteeScratch(NamedTuple):
    """Per-thread scratch of :func:`_committee_gradients` for ``ncom`` members
    (:func:`committee_scratch`; empty for ``ncom = 0``)."""

    cadj_r: np.ndarray  # (maxnodes, ncom) adjoints of the nodes, real and imaginary parts
    cadj_i: np.ndarray
    cW_r: np.ndarray  # (nchan, ncom) dE_k/dA
    cW_i: np.ndarray
    cW1: np.ndarray  # (ncom, nelem * nradbase) dE_k/dA1
    cdcore: np.ndarray  # (ncom,) dE_k/drho_core
    wbuf: np.ndarray  # weights of one l, [member, m, re/im] x n
    bbuf: np.ndarray  # n x [V | D] of one species group
    cbuf: np.ndarray  # their product
    radk: np.ndarray  # (ncom, maxnb) as SiteScratch.rad, Tx, Ty, Tz per member
    Txk: np.ndarray
    Tyk: np.ndarray
    Tzk: np.ndarray


class EvaluationOutputs(NamedTuple):
    """Outputs of :func:`evaluate_atoms`."""

    site_energy: np.ndarray  # (natoms,) eV
    rho: np.ndarray  # (natoms, ndensity) densities
    pair_grad: np.ndarray  # (npairs, 3) dE_i/dr_ij, eV/Å
    pair_grad_c: np.ndarray  # (ncom, npairs, 3) committee members' dE_i/dr_ij, eV/Å
    overlap: np.ndarray  # (natoms,) int64: a pair closer than the first spline node, or -1


@njit(cache=True)
def gather_neighbours(i, nbrs, base, s):
    """Neighbours of atom ``i`` inside the cutoff, grouped by species (``s.sp_off[mu]`` to
    ``s.sp_off[mu+1]``): distance, unit vector and pair index. Returns their number, or
    ``-1 - p`` for a pair ``p`` closer than the first spline node."""
    first = nbrs.first
    nbr_j = nbrs.j
    nbr_d = nbrs.d
    species = nbrs.species
    nelem = base.nelem
    rcut = base.rcut
    rmin = base.rmin
    rr = s.rr
    hx = s.hx
    hy = s.hy
    hz = s.hz
    pidx = s.pidx
    sp_off = s.sp_off
    mu_i = species[i]
    nn = 0
    for mu in range(nelem):
        sp_off[mu] = nn
        pair = mu_i * nelem + mu
        rc2 = rcut[pair] * rcut[pair]
        for p in range(first[i], first[i + 1]):
            if species[nbr_j[p]] != mu:
                continue
            dx = nbr_d[p, 0]
            dy = nbr_d[p, 1]
            dz = nbr_d[p, 2]
            r2 = dx * dx + dy * dy + dz * dz
            if r2 >= rc2:
                continue
            r = math.sqrt(r2)
            if r < rmin[pair]:
                return -1 - p
            inv = 1.0 / r
            rr[nn] = r
            hx[nn] = dx * inv
            hy[nn] = dy * inv
            hz[nn] = dz * inv
            pidx[nn] = p
            nn += 1
    sp_off[nelem] = nn
    return nn


@njit(cache=True, fastmath=_FM)
def splines_block(base, pair, s0, s1, s):
    """Hermite lookup of all spline functions of ``pair`` for neighbours ``s0:s1`` (distances
    ``s.rr``): values ``s.V[f, q]`` and radial derivatives ``s.D[f, q]`` (function-major)."""
    spline = base.spline
    rscale = base.rscale[pair]
    nlut = base.nlut[pair]
    rr = s.rr
    V = s.V
    D = s.D
    q0 = np.uint64(s0)  # unsigned neighbour indices: no negative-index checks in the loops
    q1 = np.uint64(s1)
    nfs = spline.shape[2]
    for q in range(q0, q1):
        xs = rr[q] * rscale
        nl = int(xs)
        if nl >= nlut:
            for f in range(nfs):
                V[f, q] = 0.0
                D[f, q] = 0.0
            continue
        w = xs - nl
        for f in range(nfs):
            c0 = spline[pair, nl, f, 0]
            c1 = spline[pair, nl, f, 1]
            c2 = spline[pair, nl, f, 2]
            c3 = spline[pair, nl, f, 3]
            V[f, q] = c0 + w * (c1 + w * (c2 + w * c3))
            D[f, q] = (c1 + w * (2.0 * c2 + 3.0 * c3 * w)) * rscale


@njit(cache=True, fastmath=_FM)
def ylm_block(nn, base, s):
    """``Y_lm`` (m >= 0, index ``l(l+1)/2+m``) of ``nn`` unit vectors ``s.hx, s.hy, s.hz``,
    neighbour-innermost: ``Y = (x+iy)^m P_lm(z)`` with ``Er + i Ei = (x+iy)^m`` and
    ``dP = dP_lm/dz`` (the Cartesian gradient of the homogeneous extension follows from
    these); fills ``s.P, s.dP, s.Er, s.Ei, s.Yr, s.Yi``. Reads ``base.lmax`` and
    ``base.ylm_coef``."""
    lmax = base.lmax
    coef = base.ylm_coef
    hx = s.hx
    hy = s.hy
    hz = s.hz
    P = s.P
    dP = s.dP
    Er = s.Er
    Ei = s.Ei
    Yr = s.Yr
    Yi = s.Yi
    for q in range(nn):
        P[0, q] = Y00
        dP[0, q] = 0.0
        Er[0, q] = 1.0
        Ei[0, q] = 0.0
        Yr[0, q] = Y00
        Yi[0, q] = 0.0
    if lmax > 0:
        sq3 = math.sqrt(3.0) * Y00
        c11 = -math.sqrt(1.5) * Y00
        for q in range(nn):
            P[1, q] = sq3 * hz[q]
            dP[1, q] = sq3
            P[2, q] = c11
            dP[2, q] = 0.0
        for l in range(2, lmax + 1):
            base_l = l * (l + 1) // 2
            b1 = (l - 1) * l // 2
            b2 = (l - 2) * (l - 1) // 2
            for m in range(0, l - 1):
                a = coef[0, l, m]
                b = coef[1, l, m]
                for q in range(nn):
                    P[base_l + m, q] = a * (hz[q] * P[b1 + m, q] + b * P[b2 + m, q])
                    dP[base_l + m, q] = a * (P[b1 + m, q] + hz[q] * dP[b1 + m, q]
                                             + b * dP[b2 + m, q])
            c3 = coef[3, l, 0]
            c2 = coef[2, l, 0]
            for q in range(nn):
                t = c3 * P[b1 + l - 1, q]
                P[base_l + l - 1, q] = t * hz[q]
                dP[base_l + l - 1, q] = t
                P[base_l + l, q] = c2 * P[b1 + l - 1, q]
                dP[base_l + l, q] = 0.0
        for m in range(1, lmax + 1):
            for q in range(nn):
                Er[m, q] = Er[m - 1, q] * hx[q] - Ei[m - 1, q] * hy[q]
                Ei[m, q] = Er[m - 1, q] * hy[q] + Ei[m - 1, q] * hx[q]
        for l in range(1, lmax + 1):
            for m in range(l + 1):
                k = l * (l + 1) // 2 + m
                for q in range(nn):
                    Yr[k, q] = Er[m, q] * P[k, q]
                    Yi[k, q] = Ei[m, q] * P[k, q]


@njit(cache=True, fastmath=_FM)
def accumulate_A(mu, s0, s1, base, s):
    """Add the neighbours ``s0:s1`` (species ``mu``) to ``s.A`` (m >= 0) and ``s.A1``."""
    nradmax = base.nradmax
    nradbase = base.nradbase
    lmax = base.lmax
    V = s.V
    Yr = s.Yr
    Yi = s.Yi
    A = s.A
    A1 = s.A1
    q0 = np.uint64(s0)  # unsigned neighbour indices: no negative-index checks in the loops
    q1 = np.uint64(s1)
    nl1 = lmax + 1
    nlm = nl1 * nl1
    for k in range(nradbase):
        acc = 0.0
        for q in range(q0, q1):
            acc += V[k, q]
        A1[mu * nradbase + k] += acc * Y00
    for n in range(nradmax):
        for l in range(nl1):
            f = nradbase + n * nl1 + l
            c = (mu * nradmax + n) * nlm + l * l + l
            h = l * (l + 1) // 2
            for m in range(l + 1):
                sr = 0.0
                si = 0.0
                for q in range(q0, q1):
                    v = V[f, q]
                    sr += v * Yr[h + m, q]
                    si += v * Yi[h + m, q]
                A[c + m] += complex(sr, si)


@njit(cache=True)
def base_scratch(maxnb, base):
    """A :class:`BaseScratch` for atoms with up to ``maxnb`` neighbours."""
    nelem = base.nelem
    lmax = base.lmax
    nfs = base.spline.shape[2]
    nlmh = (lmax + 1) * (lmax + 2) // 2
    nlm = (lmax + 1) * (lmax + 1)
    return BaseScratch(
        np.empty(maxnb), np.empty(maxnb), np.empty(maxnb), np.empty(maxnb),
        np.empty(maxnb, dtype=np.int64), np.empty(nelem + 1, dtype=np.int64),
        np.empty((nfs, maxnb)), np.empty((nfs, maxnb)),
        np.empty((nlmh, maxnb)), np.empty((nlmh, maxnb)),
        np.empty((lmax + 1, maxnb)), np.empty((lmax + 1, maxnb)),
        np.empty((nlmh, maxnb)), np.empty((nlmh, maxnb)),
        np.empty(nelem * base.nradmax * nlm, dtype=np.complex128),
        np.empty(nelem * max(base.nradbase, 1)),
    )  # fmt: skip


@njit(cache=True)
def atomic_base(i, nbrs, base, s):
    """Atom ``i``'s neighbours inside the cutoff (grouped by species, see
    :func:`gather_neighbours`), their spline values ``s.V``/``s.D`` and ``Y_lm`` (function-
    major blocks), its atomic base ``s.A`` (all m) and ``s.A1``. Returns ``(nn, rho_core)``,
    with ``nn = -1 - p`` when pair ``p`` is closer than the first spline node."""
    nn = gather_neighbours(i, nbrs, base, s)
    if nn < 0:
        return nn, 0.0
    A = s.A
    A1 = s.A1
    V = s.V
    sp_off = s.sp_off
    nelem = base.nelem
    lmax = base.lmax
    mu_i = nbrs.species[i]
    for a in range(A.shape[0]):
        A[a] = 0.0
    for a in range(A1.shape[0]):
        A1[a] = 0.0
    nfs = base.spline.shape[2]
    ylm_block(nn, base, s)
    rho_core = 0.0
    for mu in range(nelem):
        s0 = sp_off[mu]
        s1 = sp_off[mu + 1]
        if s1 == s0:
            continue
        pair = mu_i * nelem + mu
        splines_block(base, pair, s0, s1, s)
        accumulate_A(mu, s0, s1, base, s)
        for q in range(np.uint64(s0), np.uint64(s1)):
            rho_core += V[nfs - 1, q]
    # negative m from A_{l,-m} = (-1)^m conj(A_{l,m})
    nlm = (lmax + 1) * (lmax + 1)
    for mn in range(nelem * base.nradmax):
        for l in range(1, lmax + 1):
            c = mn * nlm + l * l + l
            for m in range(1, l + 1):
                v = A[c + m].conjugate()
                A[c - m] = v if m % 2 == 0 else -v
    return nn, rho_core


@njit(cache=True, fastmath=_FM)
def ylm_gradients(nn, base, s, dYr, dYi):
    """Tangential gradients ``dY[lm, a, q]`` (m >= 0, real and imaginary parts apart) of
    ``Y_lm`` at ``nn`` unit vectors, from the blocks of :func:`ylm_block` in ``s``; the
    gradient with respect to the neighbour's position is ``dY / r``."""
    lmax = base.lmax
    hx = s.hx
    hy = s.hy
    hz = s.hz
    P = s.P
    dP = s.dP
    Er = s.Er
    Ei = s.Ei
    for l in range(lmax + 1):
        for m in range(l + 1):
            k = l * (l + 1) // 2 + m
            for q in range(nn):
                x = hx[q]
                y = hy[q]
                z = hz[q]
                p = P[k, q]
                # gradient of the homogeneous extension (x+iy)^m P_lm(z): x and y parts
                # m (x+iy)^(m-1) P (times 1 and i), z part (x+iy)^m dP/dz
                gxr = 0.0
                gxi = 0.0
                if m > 0:
                    gxr = m * p * Er[m - 1, q]
                    gxi = m * p * Ei[m - 1, q]
                gyr = -gxi
                gyi = gxr
                gzr = dP[k, q] * Er[m, q]
                gzi = dP[k, q] * Ei[m, q]
                rr_ = x * gxr + y * gyr + z * gzr
                ri = x * gxi + y * gyi + z * gzi
                dYr[k, 0, q] = gxr - rr_ * x
                dYr[k, 1, q] = gyr - rr_ * y
                dYr[k, 2, q] = gzr - rr_ * z
                dYi[k, 0, q] = gxi - ri * x
                dYi[k, 1, q] = gyi - ri * y
                dYi[k, 2, q] = gzi - ri * z


@njit(cache=True, fastmath=_FM)
def contract_forces(mu, s0, s1, base, s, w, dE_dcore):
    """For neighbours ``s0:s1`` of species ``mu``: the radial coefficient ``w.rad`` (of the
    unit vector) and the Cartesian vector ``w.T*`` (before projection and division by r)
    of ``dE/dr_ij`` from the folded weights ``w.W`` (m >= 0) and ``w.W1``."""
    nradmax = base.nradmax
    nradbase = base.nradbase
    lmax = base.lmax
    V = s.V
    D = s.D
    P = s.P
    dP = s.dP
    Er = s.Er
    Ei = s.Ei
    W = w.W
    W1 = w.W1
    rad = w.rad
    Tx = w.Tx
    Ty = w.Ty
    Tz = w.Tz
    Ur = w.Ur
    Ui = w.Ui
    Vr = w.Vr
    Vi = w.Vi
    q0 = np.uint64(s0)  # unsigned neighbour indices: no negative-index checks in the loops
    q1 = np.uint64(s1)
    nl1 = lmax + 1
    nlm = nl1 * nl1
    nfs = V.shape[0]
    for q in range(q0, q1):
        rad[q] = dE_dcore * D[nfs - 1, q]
        Tx[q] = 0.0
        Ty[q] = 0.0
        Tz[q] = 0.0
    for k in range(nradbase):
        w1 = W1[mu * nradbase + k] * Y00
        if w1 != 0.0:
            for q in range(q0, q1):
                rad[q] += w1 * D[k, q]
    for l in range(nl1):
        for m in range(l + 1):
            k = l * (l + 1) // 2 + m
            used = False
            for n in range(nradmax):
                wv = W[(mu * nradmax + n) * nlm + l * l + l + m]
                if wv == 0.0:
                    continue
                f = nradbase + n * nl1 + l
                wr = wv.real
                wi = wv.imag
                if not used:
                    used = True
                    for q in range(q0, q1):
                        Ur[q] = wr * V[f, q]
                        Ui[q] = wi * V[f, q]
                        Vr[q] = wr * D[f, q]
                        Vi[q] = wi * D[f, q]
                else:
                    for q in range(q0, q1):
                        Ur[q] += wr * V[f, q]
                        Ui[q] += wi * V[f, q]
                        Vr[q] += wr * D[f, q]
                        Vi[q] += wi * D[f, q]
            if not used:
                continue
            if m == 0:
                for q in range(q0, q1):
                    rad[q] += P[k, q] * Vr[q]
                    Tz[q] += dP[k, q] * Ur[q]
            else:
                for q in range(q0, q1):
                    er = Er[m, q]
                    ei = Ei[m, q]
                    p = P[k, q]
                    rad[q] += p * (Vr[q] * er - Vi[q] * ei)
                    Tz[q] += dP[k, q] * (Ur[q] * er - Ui[q] * ei)
                    er1 = Er[m - 1, q]
                    ei1 = Ei[m - 1, q]
                    cm = m * p
                    Tx[q] += cm * (Ur[q] * er1 - Ui[q] * ei1)
                    Ty[q] -= cm * (Ur[q] * ei1 + Ui[q] * er1)


@njit(cache=True)
def site_scratch(maxnb, maxnodes, ndensity, base):
    """A :class:`SiteScratch` for atoms with up to ``maxnb`` neighbours and product graphs
    of up to ``maxnodes`` nodes."""
    nlm = (base.lmax + 1) * (base.lmax + 1)
    return SiteScratch(
        np.empty(base.nelem * base.nradmax * nlm, dtype=np.complex128),
        np.empty(base.nelem * max(base.nradbase, 1)),
        np.empty(ndensity), np.empty(ndensity),
        np.empty(maxnodes, dtype=np.complex128), np.empty(maxnodes, dtype=np.complex128),
        np.empty(maxnb), np.empty(maxnb), np.empty(maxnb), np.empty(maxnb),
        np.empty(maxnb), np.empty(maxnb), np.empty(maxnb), np.empty(maxnb),
        np.empty(2),
    )  # fmt: skip


@njit(cache=True)
def _densities(mu_i, dens, s, w):
    """Densities ``w.rho`` of an atom of species ``mu_i`` from its atomic base ``s.A``,
    ``s.A1``: rank-1 functions and the forward pass over the product graph (node products
    in ``w.tv``)."""
    A = s.A
    A1 = s.A1
    rho = w.rho
    acc = w.dF  # scratch here
    tv = w.tv
    r1_coef = dens.r1_coef
    r1_idx = dens.r1_idx
    nd = rho.shape[0]
    for d in range(nd):
        rho[d] = 0.0
    for f in range(dens.r1_off[mu_i], dens.r1_off[mu_i + 1]):
        a1 = A1[r1_idx[f]]
        for d in range(nd):
            rho[d] += r1_coef[f, d] * a1
    # this species' block of the tree; unsigned node and channel indices spare numba's
    # negative-index checks in the passes over it (~30% of their time)
    tb = dens.tree_off[mu_i]
    nloc = dens.tree_off[mu_i + 1] - tb
    nint = dens.tree_nint[mu_i]
    tpar = dens.tree_parent[tb : tb + nloc]
    tch = dens.tree_chan[tb : tb + nloc]
    tcoef = dens.tree_coef[tb : tb + nloc]
    tv[0] = 1.0
    for j in range(1, nint):
        tv[j] = tv[tpar[j]] * A[tch[j]]
    for d in range(nd):
        acc[d] = 0.0
    for j in range(1, nint):  # one sweep over the nodes (coefficient rows are contiguous)
        t = tv[j].real
        for d in range(nd):
            acc[d] += tcoef[j, d] * t
    for j in range(nint, nloc):  # leaves: only the real part is used, not stored
        x = tv[tpar[j]]
        a = A[tch[j]]
        t = x.real * a.real - x.imag * a.imag
        for d in range(nd):
            acc[d] += tcoef[j, d] * t
    for d in range(nd):
        rho[d] += acc[d]


@njit(cache=True)
def _adjoint(mu_i, nde, base, dens, s, w):
    """``w.W = dE/dA`` (folded onto m >= 0) and ``w.W1 = dE/dA1`` of an atom of species
    ``mu_i`` from ``w.dF = dE/drho_p`` (``p < nde``): the reverse pass over the product
    graph (node products ``w.tv`` from :func:`_densities`)."""
    A = s.A
    W = w.W
    W1 = w.W1
    dF = w.dF
    tv = w.tv
    tadj = w.tadj
    r1_coef = dens.r1_coef
    r1_idx = dens.r1_idx
    tb = dens.tree_off[mu_i]
    nloc = dens.tree_off[mu_i + 1] - tb
    nint = dens.tree_nint[mu_i]
    tpar = dens.tree_parent[tb : tb + nloc]  # unsigned indices, see _densities
    tch = dens.tree_chan[tb : tb + nloc]
    tcoef = dens.tree_coef[tb : tb + nloc]
    for j in range(nint):
        theta = 0.0
        for d in range(nde):
            theta += dF[d] * tcoef[j, d]
        tadj[j] = theta
    for a in range(W.shape[0]):
        W[a] = 0.0
    for k in range(nloc - nint):  # leaves (last first): real adjoint, their own seed
        j = np.uint64(nloc - 1 - k)
        g = 0.0
        for d in range(nde):
            g += dF[d] * tcoef[j, d]
        par = tpar[j]
        ch = tch[j]
        W[ch] += g * tv[par]
        tadj[par] += g * A[ch]
    for k in range(1, nint):  # then the internal nodes, children before parents
        j = np.uint64(nint - k)
        g = tadj[j]
        par = tpar[j]
        ch = tch[j]
        W[ch] += g * tv[par]
        tadj[par] += g * A[ch]
    for a in range(W1.shape[0]):
        W1[a] = 0.0
    for f in range(dens.r1_off[mu_i], dens.r1_off[mu_i + 1]):
        theta = 0.0
        for d in range(nde):
            theta += dF[d] * r1_coef[f, d]
        W1[r1_idx[f]] += theta
    # fold -m weights onto +m: dE = Re(W_m dA_m + W_-m (-1)^m conj(dA_m))
    nl1 = base.lmax + 1
    nlm = nl1 * nl1
    for mn in range(base.nelem * base.nradmax):
        for l in range(1, nl1):
            c = mn * nlm + l * l + l
            for m in range(1, l + 1):
                v = W[c - m].conjugate()
                W[c + m] += v if m % 2 == 0 else -v


@njit(cache=True)
def _site(i, nbrs, base, emb, dens, s, w, out):
    """Site energy of atom ``i`` (returned), its densities ``out.rho[i]`` and pair gradients
    ``out.pair_grad`` (its pairs); sets ``out.overlap[i]`` on an overlap (and returns 0).
    Leaves in ``s`` and ``w`` what the committee members reuse (:func:`_committee_gradients`)."""
    mu_i = nbrs.species[i]
    first = nbrs.first
    pair_grad = out.pair_grad
    for p in range(first[i], first[i + 1]):
        pair_grad[p, 0] = 0.0
        pair_grad[p, 1] = 0.0
        pair_grad[p, 2] = 0.0
    nn, rho_core = atomic_base(i, nbrs, base, s)
    if nn < 0:
        out.overlap[i] = -1 - nn
        return 0.0

    # ---- inner (core-density) cutoff
    rho_cut = emb.rho_cut[mu_i]
    drho_cut = emb.drho_cut[mu_i]
    fcut, dfcut = 1.0, 0.0
    if rho_core >= rho_cut:
        fcut = 0.0
    elif rho_core > rho_cut - drho_cut:
        fcut, dfcut = poly_cutoff(rho_core, rho_cut, drho_cut)

    # ---- densities and embedding
    _densities(mu_i, dens, s, w)
    rho = w.rho
    dF = w.dF
    nd = rho.shape[0]
    for d in range(nd):
        out.rho[i, d] = rho[d]
    kind = emb.emb_type[mu_i]
    F = embedding(kind, rho, emb.emb_params[mu_i], emb.emb_ndens[mu_i], dF)
    nde = 1 if kind == 0 else min(emb.emb_ndens[mu_i], nd)
    for d in range(nd):
        dF[d] *= fcut

    # ---- adjoint dE/dA, then the pair gradients dE_i / dr_ij
    _adjoint(mu_i, nde, base, dens, s, w)
    energy = emb.e0[mu_i] + F * fcut + rho_core
    dE_dcore = F * dfcut + 1.0
    sp_off = s.sp_off
    for mu in range(base.nelem):
        s0 = sp_off[mu]
        s1 = sp_off[mu + 1]
        if s1 == s0:
            continue
        contract_forces(mu, s0, s1, base, s, w, dE_dcore)
    rr = s.rr
    hx = s.hx
    hy = s.hy
    hz = s.hz
    pidx = s.pidx
    rad = w.rad
    Tx = w.Tx
    Ty = w.Ty
    Tz = w.Tz
    for q in range(nn):
        x = hx[q]
        y = hy[q]
        z = hz[q]
        inv = 1.0 / rr[q]
        proj = x * Tx[q] + y * Ty[q] + z * Tz[q]
        p = pidx[q]
        pair_grad[p, 0] = rad[q] * x + (Tx[q] - x * proj) * inv
        pair_grad[p, 1] = rad[q] * y + (Ty[q] - y * proj) * inv
        pair_grad[p, 2] = rad[q] * z + (Tz[q] - z * proj) * inv
    w.cstate[0] = fcut
    w.cstate[1] = dfcut
    return energy


@njit(cache=True)
def committee_scratch(ncom, maxnb, maxnodes, base):
    """A :class:`CommitteeScratch` for ``ncom`` members (empty arrays for ``ncom = 0``)."""
    lmax = base.lmax
    nradmax = base.nradmax
    nchan = base.nelem * nradmax * (lmax + 1) * (lmax + 1)
    return CommitteeScratch(
        np.empty((maxnodes if ncom > 0 else 0, ncom)),
        np.empty((maxnodes if ncom > 0 else 0, ncom)),
        np.empty((nchan, ncom)), np.empty((nchan, ncom)),
        np.empty((ncom, base.nelem * max(base.nradbase, 1))), np.empty(ncom),
        np.empty(2 * ncom * (lmax + 1) * nradmax),
        np.empty(nradmax * 2 * maxnb if ncom > 0 else 0),
        np.empty(2 * ncom * (lmax + 1) * 2 * maxnb),
        np.empty((ncom, maxnb)), np.empty((ncom, maxnb)),
        np.empty((ncom, maxnb)), np.empty((ncom, maxnb)),
    )  # fmt: skip


@njit(cache=True)
def _committee_gradients(i, nbrs, base, dens, s, w, c, out):
    """Pair gradients ``out.pair_grad_c[k]`` of atom ``i``'s pairs for the committee members
    (linear embedding: member ``k`` is density ``1 + k``, site energy
    ``E0 + fcut * rho_{1+k} + rho_core``), right after :func:`_site` of the same atom: reuses
    the forward products ``w.tv``, the densities, the inner cutoff and the per-neighbour
    functions of the mean's pass; the reverse pass carries all members' adjoints at once
    (real and imaginary parts apart, member-innermost), then all members' folded weights
    are contracted at once (:func:`_committee_contract`)."""
    lmax = base.lmax
    nelem = base.nelem
    nradmax = base.nradmax
    first = nbrs.first
    pair_grad_c = out.pair_grad_c
    ncom = pair_grad_c.shape[0]
    mu_i = nbrs.species[i]
    fcut = w.cstate[0]
    dfcut = w.cstate[1]
    rho = w.rho
    tv = w.tv
    A = s.A
    sp_off = s.sp_off
    rr = s.rr
    hx = s.hx
    hy = s.hy
    hz = s.hz
    pidx = s.pidx
    cadj_r = c.cadj_r
    cadj_i = c.cadj_i
    cW_r = c.cW_r
    cW_i = c.cW_i
    cW1 = c.cW1
    cdcore = c.cdcore
    radk = c.radk
    Txk = c.Txk
    Tyk = c.Tyk
    Tzk = c.Tzk
    r1_off = dens.r1_off
    r1_idx = dens.r1_idx
    r1_coef = dens.r1_coef
    nlm = (lmax + 1) * (lmax + 1)
    nl1 = lmax + 1
    nchan = cW_r.shape[0]
    pair_grad_c[:, first[i] : first[i + 1], :] = 0.0
    if out.overlap[i] >= 0:  # overlap (reported by the caller)
        return
    nn = sp_off[nelem]
    for a in range(nchan):
        for k in range(ncom):
            cW_r[a, k] = 0.0
            cW_i[a, k] = 0.0
    tb = dens.tree_off[mu_i]
    nloc = dens.tree_off[mu_i + 1] - tb
    nint = dens.tree_nint[mu_i]
    tpar = dens.tree_parent[tb : tb + nloc]  # unsigned indices, see _densities
    tch = dens.tree_chan[tb : tb + nloc]
    tcoef = dens.tree_coef[tb : tb + nloc]
    for j in range(nint):  # seeds of the internal nodes (real)
        for k in range(ncom):
            cadj_r[j, k] = fcut * tcoef[j, 1 + k]
            cadj_i[j, k] = 0.0
    for jj in range(nloc - nint):  # leaves (last first): real adjoint = the seed
        j = np.uint64(nloc - 1 - jj)
        par = tpar[j]
        ch = tch[j]
        tr = tv[par].real
        ti = tv[par].imag
        ar = A[ch].real
        ai = A[ch].imag
        for k in range(ncom):
            g = fcut * tcoef[j, 1 + k]
            cW_r[ch, k] += g * tr
            cW_i[ch, k] += g * ti
            cadj_r[par, k] += g * ar
            cadj_i[par, k] += g * ai
    for jj in range(1, nint):  # internal nodes, children before parents
        j = np.uint64(nint - jj)
        par = tpar[j]
        ch = tch[j]
        tr = tv[par].real
        ti = tv[par].imag
        ar = A[ch].real
        ai = A[ch].imag
        for k in range(ncom):
            gr = cadj_r[j, k]
            gi = cadj_i[j, k]
            cW_r[ch, k] += gr * tr - gi * ti
            cW_i[ch, k] += gr * ti + gi * tr
            cadj_r[par, k] += gr * ar - gi * ai
            cadj_i[par, k] += gr * ai + gi * ar
    # fold -m onto +m (as for the mean): W_m += (-1)^m conj(W_-m), all members at once
    for mn in range(nelem * nradmax):
        for l in range(1, nl1):
            cc = mn * nlm + l * l + l
            for m in range(1, l + 1):
                sg = 1.0 if m % 2 == 0 else -1.0
                for k in range(ncom):
                    cW_r[cc + m, k] += sg * cW_r[cc - m, k]
                    cW_i[cc + m, k] -= sg * cW_i[cc - m, k]
    for k in range(ncom):
        for a in range(cW1.shape[1]):
            cW1[k, a] = 0.0
        cdcore[k] = rho[1 + k] * dfcut + 1.0
    for f in range(r1_off[mu_i], r1_off[mu_i + 1]):
        for k in range(ncom):
            cW1[k, r1_idx[f]] += fcut * r1_coef[f, 1 + k]
    for mu in range(nelem):
        s0 = sp_off[mu]
        s1 = sp_off[mu + 1]
        if s1 == s0:
            continue
        _committee_contract(mu, s0, s1, base, s, c)
    for k in range(ncom):
        for q in range(nn):
            x = hx[q]
            y = hy[q]
            z = hz[q]
            inv = 1.0 / rr[q]
            tx = Txk[k, q]
            ty = Tyk[k, q]
            tz = Tzk[k, q]
            rq = radk[k, q]
            proj = x * tx + y * ty + z * tz
            p = pidx[q]
            pair_grad_c[k, p, 0] = rq * x + (tx - x * proj) * inv
            pair_grad_c[k, p, 1] = rq * y + (ty - y * proj) * inv
            pair_grad_c[k, p, 2] = rq * z + (tz - z * proj) * inv


@njit(cache=True, fastmath=_FM)
def _committee_contract(mu, s0, s1, base, s, c):
    """:func:`contract_forces` for all committee members at once (neighbours ``s0:s1`` of
    species ``mu``): per ``l`` the sums over ``n`` of all members' weights times the
    radial values and derivatives are one small matrix product
    ``[member, m, re/im] x n  @  n x [V | D]``."""
    nradmax = base.nradmax
    nradbase = base.nradbase
    lmax = base.lmax
    V = s.V
    D = s.D
    P = s.P
    dP = s.dP
    Er = s.Er
    Ei = s.Ei
    cW_r = c.cW_r
    cW_i = c.cW_i
    cW1 = c.cW1
    cdcore = c.cdcore
    radk = c.radk
    Txk = c.Txk
    Tyk = c.Tyk
    Tzk = c.Tzk
    ncom = cdcore.shape[0]
    q0 = np.uint64(s0)  # unsigned neighbour indices: no negative-index checks in the loops
    q1 = np.uint64(s1)
    nl1 = lmax + 1
    nlm = nl1 * nl1
    nfs = V.shape[0]
    ns = s1 - s0
    nsu = q1 - q0  # ns, unsigned
    for k in range(ncom):
        dc = cdcore[k]
        for q in range(q0, q1):
            radk[k, q] = dc * D[nfs - 1, q]
            Txk[k, q] = 0.0
            Tyk[k, q] = 0.0
            Tzk[k, q] = 0.0
        for k1 in range(nradbase):
            w1 = cW1[k, mu * nradbase + k1] * Y00
            if w1 != 0.0:
                for q in range(q0, q1):
                    radk[k, q] += w1 * D[k1, q]
    Bl = c.bbuf[: nradmax * 2 * ns].reshape(nradmax, 2 * ns)
    for l in range(nl1):
        rows = 2 * ncom * (l + 1)
        Wl = c.wbuf[: rows * nradmax].reshape(rows, nradmax)
        for m in range(l + 1):
            for n in range(nradmax):
                a = (mu * nradmax + n) * nlm + l * l + l + m
                for k in range(ncom):
                    r = 2 * (m * ncom + k)
                    Wl[r, n] = cW_r[a, k]
                    Wl[r + 1, n] = cW_i[a, k]
        for n in range(nradmax):
            f = nradbase + n * nl1 + l
            for q in range(ns):
                Bl[n, q] = V[f, s0 + q]
                Bl[n, ns + q] = D[f, s0 + q]
        Cl = c.cbuf[: rows * 2 * ns].reshape(rows, 2 * ns)
        np.dot(Wl, Bl, Cl)
        for m in range(l + 1):
            kk = l * (l + 1) // 2 + m
            for k in range(ncom):
                r = 2 * (m * ncom + k)
                if m == 0:
                    for g in range(q0, q1):
                        q = g - q0
                        radk[k, g] += P[kk, g] * Cl[r, nsu + q]
                        Tzk[k, g] += dP[kk, g] * Cl[r, q]
                else:
                    for g in range(q0, q1):
                        q = g - q0
                        ur = Cl[r, q]
                        ui = Cl[r + 1, q]
                        vr = Cl[r, nsu + q]
                        vi = Cl[r + 1, nsu + q]
                        er = Er[m, g]
                        ei = Ei[m, g]
                        pp = P[kk, g]
                        radk[k, g] += pp * (vr * er - vi * ei)
                        Tzk[k, g] += dP[kk, g] * (ur * er - ui * ei)
                        er1 = Er[m - 1, g]
                        ei1 = Ei[m - 1, g]
                        cm = m * pp
                        Txk[k, g] += cm * (ur * er1 - ui * ei1)
                        Tyk[k, g] -= cm * (ur * ei1 + ui * er1)


@njit(cache=True, parallel=True)
def evaluate_atoms(nbrs, base, emb, dens, out, nthreads):
    """Site energies (eV), densities and pair gradients ``dE_i/dr_ij`` (eV/Å) of all atoms
    of the neighbour list ``nbrs`` (:class:`Neighbours`) into ``out``
    (:class:`EvaluationOutputs`); tables: :class:`aceal.basis.tables.BaseTables`,
    ``EmbeddingTables``, ``DensityTables``.

    With ``K = out.pair_grad_c.shape[0] > 0`` (a linear embedding whose densities ``1..K``
    are committee members) also the members' pair gradients ``out.pair_grad_c[k, p]``
    (same pass). ``out.overlap[i]`` is set to a pair index where two atoms are closer than
    the spline's first node (else left at -1). ``nthreads`` sets the work split
    (``4 * nthreads`` chunks of atoms).
    """
    first = nbrs.first
    nat = first.shape[0] - 1
    ncom = out.pair_grad_c.shape[0]
    maxnb = 0
    for i in range(nat):
        maxnb = max(maxnb, first[i + 1] - first[i])
    maxnb = max(maxnb, 1)
    maxnodes = np.int64(1)  # not a literal: the scratch constructors compile once
    for mu in range(base.nelem):
        maxnodes = max(maxnodes, dens.tree_off[mu + 1] - dens.tree_off[mu])
    nchunks = min(nat, 4 * nthreads) if nat > 0 else 0
    nd = out.rho.shape[1]
    site_energy = out.site_energy
    for ck in prange(nchunks):
        s = base_scratch(maxnb, base)
        w = site_scratch(maxnb, maxnodes, nd, base)
        c = committee_scratch(ncom, maxnb, maxnodes, base)
        for i in range(ck, nat, nchunks):
            site_energy[i] = _site(i, nbrs, base, emb, dens, s, w, out)
            if ncom > 0:
                _committee_gradients(i, nbrs, base, dens, s, w, c, out)


@njit(cache=True)
def scatter_pair_gradients(nbrs, pair_grad, forces, virial):
    """Forces (eV/Å) and virial ``sum r_ij ⊗ dE_i/dr_ij`` (eV) from pair gradients."""
    first = nbrs.first
    nbr_j = nbrs.j
    nbr_d = nbrs.d
    nat = first.shape[0] - 1
    for a in range(3):
        for b in range(3):
            virial[a, b] = 0.0
    for i in range(forces.shape[0]):
        for a in range(3):
            forces[i, a] = 0.0
    for i in range(nat):
        for p in range(first[i], first[i + 1]):
            j = nbr_j[p]
            for a in range(3):
                g = pair_grad[p, a]
                forces[i, a] += g
                forces[j, a] -= g
                for b in range(3):
                    virial[b, a] += nbr_d[p, b] * g


@njit(cache=True)
def scatter_committee_gradients(nbrs, pair_grad_c, forces_c):
    """Committee members' forces ``forces_c[k]`` (eV/Å) from their pair gradients."""
    first = nbrs.first
    nbr_j = nbrs.j
    nat = first.shape[0] - 1
    for k in range(pair_grad_c.shape[0]):
        for i in range(forces_c.shape[1]):
            for a in range(3):
                forces_c[k, i, a] = 0.0
        for i in range(nat):
            for p in range(first[i], first[i + 1]):
                j = nbr_j[p]
                for a in range(3):
                    g = pair_grad_c[k, p, a]
                    forces_c[k, i, a] += g
                    forces_c[k, j, a] -= g
