"""Energy, site energies, densities and pair gradients of an ACE potential (numba).

One pass per atom: neighbour radial/angular functions → atomic base ``A`` → products
and densities ``rho_p`` → embedding → adjoint ``dE/dA`` → per-pair gradients
``dE_i/dr_ij``. Forces and the virial follow from the pair gradients
(:func:`scatter_pair_gradients`). Table layout: :mod:`aceal.basis.tables`.
Units: Å and eV; pair gradients in eV/Å.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from aceal.kernels.sphharm import Y00, compute_ylm, spline_eval


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


@njit(cache=True)
def neighbour_basis(
    i, mu_i, first, nbr_j, nbr_d, species,
    nelem, lmax, nradmax, nradbase, spline, nlut, rscale, rcut, rmin, ylm_coef,
    rr, rhat, pidx, mus, vals, ders, G, dG, R, dR, dcore, Y, dY, plm, dplm, A, A1,
):
    """Radial/angular functions of atom ``i``'s neighbours inside the cutoff and its atomic
    base ``A`` (all m) and ``A1``. Returns ``(n_neighbours, rho_core, overlap_pair)`` where
    ``overlap_pair >= 0`` flags two atoms closer than the first spline node."""
    nlm = (lmax + 1) * (lmax + 1)
    nl1 = lmax + 1
    nfs = vals.shape[0]
    for a in range(A.shape[0]):
        A[a] = 0.0
    for a in range(A1.shape[0]):
        A1[a] = 0.0
    rho_core = 0.0
    nn = 0
    for p in range(first[i], first[i + 1]):
        j = nbr_j[p]
        mu_j = species[j]
        pair = mu_i * nelem + mu_j
        dx = nbr_d[p, 0]
        dy = nbr_d[p, 1]
        dz = nbr_d[p, 2]
        r = math.sqrt(dx * dx + dy * dy + dz * dz)
        if r >= rcut[pair]:
            continue
        if r < rmin[pair]:
            return nn, rho_core, p
        rr[nn] = r
        inv = 1.0 / r
        rhat[nn, 0] = dx * inv
        rhat[nn, 1] = dy * inv
        rhat[nn, 2] = dz * inv
        pidx[nn] = p
        mus[nn] = mu_j
        spline_eval(spline, pair, r, rscale[pair], nlut[pair], nfs, vals, ders)
        for k in range(nradbase):
            G[nn, k] = vals[k]
            dG[nn, k] = ders[k]
            A1[mu_j * nradbase + k] += vals[k] * Y00
        for q in range(nradmax * nl1):
            R[nn, q] = vals[nradbase + q]
            dR[nn, q] = ders[nradbase + q]
        rho_core += vals[nfs - 1]
        dcore[nn] = ders[nfs - 1]
        compute_ylm(rhat[nn, 0], rhat[nn, 1], rhat[nn, 2], lmax, ylm_coef, plm, dplm,
                    Y[nn], dY[nn])
        for n in range(nradmax):
            base = (mu_j * nradmax + n) * nlm
            for l in range(nl1):
                rnl = R[nn, n * nl1 + l]
                if rnl == 0.0:
                    continue
                h = l * (l + 1) // 2
                c = base + l * l + l
                for m in range(l + 1):
                    A[c + m] += rnl * Y[nn, h + m]
        nn += 1
    # negative m from A_{l,-m} = (-1)^m conj(A_{l,m})
    for mn in range(nelem * nradmax):
        for l in range(1, nl1):
            c = mn * nlm + l * l + l
            for m in range(1, l + 1):
                v = A[c + m].conjugate()
                A[c - m] = v if m % 2 == 0 else -v
    return nn, rho_core, -1


@njit(cache=True)
def _site(
    i, mu_i, first, nbr_j, nbr_d, species,
    nelem, lmax, nradmax, nradbase, spline, nlut, rscale, rcut, rmin,
    e0, emb_type, emb_params, emb_ndens, rho_cut, drho_cut,
    r1_off, r1_idx, r1_coef, comb_off, comb_aoff, comb_aidx, comb_coef, ylm_coef,
    # scratch
    rr, rhat, pidx, mus, vals, ders, G, dG, R, dR, dcore, Y, dY, plm, dplm,
    A, A1, W, W1, rho, dF, fw,
    # outputs
    pair_grad, rho_out, overlap,
):
    nlm = (lmax + 1) * (lmax + 1)
    nl1 = lmax + 1
    for p in range(first[i], first[i + 1]):
        pair_grad[p, 0] = 0.0
        pair_grad[p, 1] = 0.0
        pair_grad[p, 2] = 0.0
    for a in range(W.shape[0]):
        W[a] = 0.0
    for a in range(W1.shape[0]):
        W1[a] = 0.0
    nn, rho_core, bad = neighbour_basis(
        i, mu_i, first, nbr_j, nbr_d, species,
        nelem, lmax, nradmax, nradbase, spline, nlut, rscale, rcut, rmin, ylm_coef,
        rr, rhat, pidx, mus, vals, ders, G, dG, R, dR, dcore, Y, dY, plm, dplm, A, A1,
    )
    if bad >= 0:
        overlap[i] = bad
        return 0.0

    # ---- inner (core-density) cutoff
    fcut, dfcut = 1.0, 0.0
    if rho_core >= rho_cut[mu_i]:
        fcut = 0.0
    elif rho_core > rho_cut[mu_i] - drho_cut[mu_i]:
        fcut, dfcut = poly_cutoff(rho_core, rho_cut[mu_i], drho_cut[mu_i])

    # ---- densities (and, for a linear embedding, the adjoint in the same pass)
    nd = rho.shape[0]
    for d in range(nd):
        rho[d] = 0.0
    linear = emb_type[mu_i] == 0
    for f in range(r1_off[mu_i], r1_off[mu_i + 1]):
        a1 = A1[r1_idx[f]]
        for d in range(nd):
            rho[d] += r1_coef[f, d] * a1
    for s in range(comb_off[mu_i], comb_off[mu_i + 1]):
        o = comb_aoff[s]
        rank = comb_aoff[s + 1] - o
        fw[0] = 1.0
        for t in range(rank):
            fw[t + 1] = fw[t] * A[comb_aidx[o + t]]
        pr = fw[rank].real
        for d in range(nd):
            rho[d] += comb_coef[s, d] * pr
        if linear:
            theta = comb_coef[s, 0] * fcut
            if theta != 0.0:
                b = complex(theta, 0.0)
                for t in range(rank - 1, -1, -1):
                    W[comb_aidx[o + t]] += fw[t] * b
                    b = b * A[comb_aidx[o + t]]
    for d in range(nd):
        rho_out[i, d] = rho[d]
    F = embedding(emb_type[mu_i], rho, emb_params[mu_i], emb_ndens[mu_i], dF)
    for d in range(nd):
        dF[d] *= fcut
    if not linear:
        for s in range(comb_off[mu_i], comb_off[mu_i + 1]):
            theta = 0.0
            for d in range(nd):
                theta += dF[d] * comb_coef[s, d]
            if theta == 0.0:
                continue
            o = comb_aoff[s]
            rank = comb_aoff[s + 1] - o
            fw[0] = 1.0
            for t in range(rank):
                fw[t + 1] = fw[t] * A[comb_aidx[o + t]]
            b = complex(theta, 0.0)
            for t in range(rank - 1, -1, -1):
                W[comb_aidx[o + t]] += fw[t] * b
                b = b * A[comb_aidx[o + t]]
    for f in range(r1_off[mu_i], r1_off[mu_i + 1]):
        theta = 0.0
        for d in range(nd):
            theta += dF[d] * r1_coef[f, d]
        W1[r1_idx[f]] += theta
    energy = e0[mu_i] + F * fcut + rho_core
    dE_dcore = F * dfcut + 1.0
    # fold -m weights onto +m: dE = Re(W_m dA_m + W_-m (-1)^m conj(dA_m))
    for mn in range(nelem * nradmax):
        for l in range(1, nl1):
            c = mn * nlm + l * l + l
            for m in range(1, l + 1):
                v = W[c - m].conjugate()
                W[c + m] += v if m % 2 == 0 else -v

    # ---- pair gradients dE_i / dr_ij
    for jj in range(nn):
        mu_j = mus[jj]
        inv = 1.0 / rr[jj]
        hx = rhat[jj, 0]
        hy = rhat[jj, 1]
        hz = rhat[jj, 2]
        radial = dE_dcore * dcore[jj]  # coefficient of r_hat
        for k in range(nradbase):
            w1 = W1[mu_j * nradbase + k]
            if w1 != 0.0:
                radial += w1 * dG[jj, k] * Y00
        gx = 0.0
        gy = 0.0
        gz = 0.0
        for n in range(nradmax):
            base = (mu_j * nradmax + n) * nlm
            for l in range(nl1):
                rnl = R[jj, n * nl1 + l]
                drnl = dR[jj, n * nl1 + l]
                h = l * (l + 1) // 2
                c = base + l * l + l
                r_over = rnl * inv
                for m in range(l + 1):
                    w = W[c + m]
                    if w == 0.0:
                        continue
                    y = Y[jj, h + m]
                    radial += drnl * (w.real * y.real - w.imag * y.imag)
                    gx += r_over * (w.real * dY[jj, h + m, 0].real - w.imag * dY[jj, h + m, 0].imag)
                    gy += r_over * (w.real * dY[jj, h + m, 1].real - w.imag * dY[jj, h + m, 1].imag)
                    gz += r_over * (w.real * dY[jj, h + m, 2].real - w.imag * dY[jj, h + m, 2].imag)
        p = pidx[jj]
        pair_grad[p, 0] = radial * hx + gx
        pair_grad[p, 1] = radial * hy + gy
        pair_grad[p, 2] = radial * hz + gz
    return energy


@njit(cache=True, parallel=True)
def evaluate_atoms(
    first, nbr_j, nbr_d, species,
    nelem, lmax, nradmax, nradbase, spline, nlut, rscale, rcut, rmin,
    e0, emb_type, emb_params, emb_ndens, rho_cut, drho_cut,
    r1_off, r1_idx, r1_coef, comb_off, comb_aoff, comb_aidx, comb_coef, ylm_coef, rankmax,
    site_energy, rho_out, pair_grad, overlap, nthreads,
):
    """Site energies (eV), densities and pair gradients ``dE_i/dr_ij`` (eV/Å) of all atoms.

    ``first``/``nbr_j``/``nbr_d`` is a full CSR neighbour list with displacement vectors
    (Å); ``species`` the species index of each atom. ``overlap[i]`` is set to a pair index
    where two atoms are closer than the spline's first node (else left at -1).
    """
    nat = first.shape[0] - 1
    maxnb = 0
    for i in range(nat):
        maxnb = max(maxnb, first[i + 1] - first[i])
    nchunks = min(nat, 4 * nthreads) if nat > 0 else 0
    nlm = (lmax + 1) * (lmax + 1)
    nlmh = (lmax + 1) * (lmax + 2) // 2
    nd = rho_out.shape[1]
    nfs = spline.shape[2]
    for c in prange(nchunks):
        rr = np.empty(maxnb)
        rhat = np.empty((maxnb, 3))
        pidx = np.empty(maxnb, dtype=np.int64)
        mus = np.empty(maxnb, dtype=np.int64)
        vals = np.empty(nfs)
        ders = np.empty(nfs)
        G = np.empty((maxnb, max(nradbase, 1)))
        dG = np.empty((maxnb, max(nradbase, 1)))
        R = np.empty((maxnb, nradmax * (lmax + 1)))
        dR = np.empty((maxnb, nradmax * (lmax + 1)))
        dcore = np.empty(maxnb)
        Y = np.empty((maxnb, nlmh), dtype=np.complex128)
        dY = np.empty((maxnb, nlmh, 3), dtype=np.complex128)
        plm = np.empty(nlmh)
        dplm = np.empty(nlmh)
        A = np.empty(nelem * nradmax * nlm, dtype=np.complex128)
        W = np.empty(nelem * nradmax * nlm, dtype=np.complex128)
        A1 = np.empty(nelem * max(nradbase, 1))
        W1 = np.empty(nelem * max(nradbase, 1))
        rho = np.empty(nd)
        dF = np.empty(nd)
        fw = np.empty(rankmax + 1, dtype=np.complex128)
        for i in range(c, nat, nchunks):
            site_energy[i] = _site(
                i, species[i], first, nbr_j, nbr_d, species,
                nelem, lmax, nradmax, nradbase, spline, nlut, rscale, rcut, rmin,
                e0, emb_type, emb_params, emb_ndens, rho_cut, drho_cut,
                r1_off, r1_idx, r1_coef, comb_off, comb_aoff, comb_aidx, comb_coef, ylm_coef,
                rr, rhat, pidx, mus, vals, ders, G, dG, R, dR, dcore, Y, dY, plm, dplm,
                A, A1, W, W1, rho, dF, fw,
                pair_grad, rho_out, overlap,
            )


@njit(cache=True)
def scatter_pair_gradients(first, nbr_j, nbr_d, pair_grad, forces, virial):
    """Forces (eV/Å) and virial ``sum r_ij ⊗ dE_i/dr_ij`` (eV) from pair gradients."""
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
