"""Design-matrix rows and per-atom basis values of a linear ACE basis (numba).

For every basis function ``B_k`` the rows hold its contribution to a configuration's
energy (``sum_i B_k(i)``), to every force component (``-d/dr_j sum_i B_k(i)``) and to the
virial (``sum_ij r_ij ⊗ dB_k(i)/dr_ij``), so that for coefficients ``c`` the model's
energy, forces and virial are rows @ c. Parallel over configurations.

Tables: :class:`aceal.descriptors.DesignTables` (the kernel tables of the basis with unit
coefficients, one table function per basis function, plus per function the distinct
one-particle channels ``(mu, n, l, m >= 0)`` it uses, ``fch_*``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from aceal.kernels.evaluate import atomic_base, neighbour_scratch, ylm_gradients


@njit(cache=True)
def _function_value_and_adjoint(s0, s1, comb_aoff, comb_aidx, comb_coef, A, W, fw, adjoint):
    """``B = sum_s c_s Re(prod_t A)`` over product terms ``s0:s1``; adds ``dB/dA`` to W."""
    value = 0.0
    for s in range(s0, s1):
        o = comb_aoff[s]
        rank = comb_aoff[s + 1] - o
        fw[0] = 1.0
        for t in range(rank):
            fw[t + 1] = fw[t] * A[np.uint64(comb_aidx[o + t])]
        c = comb_coef[s, 0]
        value += c * fw[rank].real
        if adjoint:
            b = complex(c, 0.0)
            for t in range(rank - 1, -1, -1):
                a = np.uint64(comb_aidx[o + t])
                W[a] += fw[t] * b
                b = b * A[a]
    return value


@njit(cache=True, parallel=True)
def design_rows(
    conf_off, order, first, nbr_j, nbr_d, species, volume,
    nelem, lmax, nradmax, nradbase, spline, nlut, rscale, rcut, rmin, ylm_coef, rankmax,
    r1_off, r1_idx, col_r1, hf_off, func_comb_off, col_h, comb_aoff, comb_aidx, comb_coef,
    fch_off, fch_chan, fch_mu, fch_nl, fch_lm, fch_m,
    energy_rows, force_rows_t, stress_rows, overlap, nthreads,
):
    """Fill ``energy_rows[c, k]``, ``force_rows_t[k, 3*atom + a]`` and
    ``stress_rows[c, v, k]`` (Voigt, eV/Å³ per unit coefficient; zero where ``volume <= 0``).

    ``conf_off`` gives each configuration's atoms (global indices); ``order`` the order in
    which configurations are handed to threads (largest first balances the load).
    Rank-1 function ``f`` (``r1_off[mu]:r1_off[mu+1]``) fills column ``col_r1[f]``;
    higher-rank function ``h`` (``hf_off[mu]:hf_off[mu+1]``) sums product terms
    ``func_comb_off[h]:func_comb_off[h+1]`` into column ``col_h[h]``.
    """
    nconf = conf_off.shape[0] - 1
    maxnb = 0
    for i in range(first.shape[0] - 1):
        maxnb = max(maxnb, first[i + 1] - first[i])
    nlm = (lmax + 1) * (lmax + 1)
    nlmh = (lmax + 1) * (lmax + 2) // 2
    nfs = spline.shape[2]
    maxq = 0
    for h in range(fch_off.shape[0] - 1):
        maxq = max(maxq, fch_off[h + 1] - fch_off[h])
    nchunks = min(nconf, 4 * nthreads) if nconf > 0 else 0
    for chunk in prange(nchunks):
        rr, hx, hy, hz, pidx, sp_off, V, D, P, dP, Er, Ei, Yr, Yi = neighbour_scratch(
            maxnb, nelem, nfs, lmax
        )
        A = np.empty(nelem * max(nradmax, 1) * nlm, dtype=np.complex128)
        W = np.zeros(nelem * max(nradmax, 1) * nlm, dtype=np.complex128)
        A1 = np.empty(nelem * max(nradbase, 1))
        dYr = np.empty((nlmh, 3, maxnb))
        dYi = np.empty((nlmh, 3, maxnb))
        nmu = np.empty(maxnb, dtype=np.int64)
        fw = np.empty(rankmax + 1, dtype=np.complex128)
        wf = np.empty(maxq + 1, dtype=np.complex128)
        vir = np.zeros((3, 3))
        for ci in range(chunk, nconf, nchunks):
            c = order[ci]
            vol = volume[c]
            for i in range(conf_off[c], conf_off[c + 1]):
                mu_i = species[i]
                nn, _ = atomic_base(
                    i, mu_i, first, nbr_j, nbr_d, species,
                    nelem, lmax, nradmax, nradbase, spline, nlut, rscale, rcut, rmin, ylm_coef,
                    rr, hx, hy, hz, pidx, sp_off, V, D, P, dP, Er, Ei, Yr, Yi, A, A1,
                )
                if nn < 0:
                    overlap[c] = -1 - nn
                    break
                ylm_gradients(nn, lmax, hx, hy, hz, P, dP, Er, Ei, dYr, dYi)
                for mu in range(nelem):
                    for jj in range(sp_off[mu], sp_off[mu + 1]):
                        nmu[jj] = mu
                # ---- rank-1 functions: B = A1[mu, n], dB/dr_ij = g'_n(r) r_hat
                for f in range(r1_off[mu_i], r1_off[mu_i + 1]):
                    k = col_r1[f]
                    idx = r1_idx[f]
                    mu_f = idx // nradbase
                    n = idx % nradbase
                    energy_rows[c, k] += A1[idx]
                    for a in range(3):
                        for b in range(3):
                            vir[a, b] = 0.0
                    for jj in range(sp_off[mu_f], sp_off[mu_f + 1]):
                        g = D[n, jj]
                        _add_pair(force_rows_t, vir, k, i, nbr_j, nbr_d, pidx[jj],
                                  g * hx[jj], g * hy[jj], g * hz[jj])  # fmt: skip
                    if vol > 0:
                        _add_stress(stress_rows, c, k, vir, vol)
                # ---- rank >= 2 functions
                for h in range(hf_off[mu_i], hf_off[mu_i + 1]):
                    k = col_h[h]
                    s0 = func_comb_off[h]
                    s1 = func_comb_off[h + 1]
                    energy_rows[c, k] += _function_value_and_adjoint(
                        s0, s1, comb_aoff, comb_aidx, comb_coef, A, W, fw, True
                    )
                    # fold -m onto +m and clear W for the next function (unsigned
                    # indices spare numba's negative-index checks, as in the evaluator)
                    q0 = np.uint64(fch_off[h])
                    q1 = np.uint64(fch_off[h + 1])
                    for q in range(q0, q1):
                        ch = fch_chan[q]
                        m = fch_m[q]
                        w = W[ch]
                        W[ch] = 0.0
                        if m > 0:
                            v = W[ch - 2 * m].conjugate()
                            W[ch - 2 * m] = 0.0
                            w += v if m % 2 == 0 else -v
                        wf[q - q0] = w
                    for a in range(3):
                        for b in range(3):
                            vir[a, b] = 0.0
                    for jj in range(nn):
                        mu_j = nmu[jj]
                        inv = 1.0 / rr[jj]
                        radial = 0.0
                        gx = 0.0
                        gy = 0.0
                        gz = 0.0
                        for q in range(q0, q1):
                            if fch_mu[q] != mu_j:
                                continue
                            wr = wf[q - q0].real
                            wi = wf[q - q0].imag
                            lm = np.uint64(fch_lm[q])
                            f = np.uint64(nradbase + fch_nl[q])
                            radial += D[f, jj] * (wr * Yr[lm, jj] - wi * Yi[lm, jj])
                            ro = V[f, jj] * inv
                            gx += ro * (wr * dYr[lm, 0, jj] - wi * dYi[lm, 0, jj])
                            gy += ro * (wr * dYr[lm, 1, jj] - wi * dYi[lm, 1, jj])
                            gz += ro * (wr * dYr[lm, 2, jj] - wi * dYi[lm, 2, jj])
                        _add_pair(force_rows_t, vir, k, i, nbr_j, nbr_d, pidx[jj],
                                  radial * hx[jj] + gx, radial * hy[jj] + gy,
                                  radial * hz[jj] + gz)  # fmt: skip
                    if vol > 0:
                        _add_stress(stress_rows, c, k, vir, vol)


@njit(cache=True)
def _add_pair(force_rows_t, vir, k, i, nbr_j, nbr_d, p, g0, g1, g2):
    """Column ``k``: pair ``p`` (atom ``i`` to ``nbr_j[p]``) with gradient ``g`` of
    ``B_k(i)`` with respect to ``r_ij``: forces on both atoms and the virial."""
    j = nbr_j[p]
    force_rows_t[k, 3 * j] -= g0
    force_rows_t[k, 3 * j + 1] -= g1
    force_rows_t[k, 3 * j + 2] -= g2
    force_rows_t[k, 3 * i] += g0
    force_rows_t[k, 3 * i + 1] += g1
    force_rows_t[k, 3 * i + 2] += g2
    for b in range(3):
        db = nbr_d[p, b]
        vir[b, 0] += db * g0
        vir[b, 1] += db * g1
        vir[b, 2] += db * g2


@njit(cache=True)
def _add_stress(stress_rows, c, k, vir, vol):
    stress_rows[c, 0, k] += vir[0, 0] / vol
    stress_rows[c, 1, k] += vir[1, 1] / vol
    stress_rows[c, 2, k] += vir[2, 2] / vol
    stress_rows[c, 3, k] += 0.5 * (vir[1, 2] + vir[2, 1]) / vol
    stress_rows[c, 4, k] += 0.5 * (vir[0, 2] + vir[2, 0]) / vol
    stress_rows[c, 5, k] += 0.5 * (vir[0, 1] + vir[1, 0]) / vol


@njit(cache=True, parallel=True)
def basis_values(
    first, nbr_j, nbr_d, species,
    nelem, lmax, nradmax, nradbase, spline, nlut, rscale, rcut, rmin, ylm_coef, rankmax,
    r1_off, r1_idx, col_r1, hf_off, func_comb_off, col_h, comb_aoff, comb_aidx, comb_coef,
    out, overlap, nthreads,
):
    """Per-atom basis values ``out[i, k] = B_k(i)`` (zero for functions of other species)."""
    nat = first.shape[0] - 1
    maxnb = 0
    for i in range(nat):
        maxnb = max(maxnb, first[i + 1] - first[i])
    nlm = (lmax + 1) * (lmax + 1)
    nfs = spline.shape[2]
    nchunks = min(nat, 4 * nthreads) if nat > 0 else 0
    for chunk in prange(nchunks):
        rr, hx, hy, hz, pidx, sp_off, V, D, P, dP, Er, Ei, Yr, Yi = neighbour_scratch(
            maxnb, nelem, nfs, lmax
        )
        A = np.empty(nelem * max(nradmax, 1) * nlm, dtype=np.complex128)
        W = np.empty(1, dtype=np.complex128)
        A1 = np.empty(nelem * max(nradbase, 1))
        fw = np.empty(rankmax + 1, dtype=np.complex128)
        for i in range(chunk, nat, nchunks):
            mu_i = species[i]
            nn, _ = atomic_base(
                i, mu_i, first, nbr_j, nbr_d, species,
                nelem, lmax, nradmax, nradbase, spline, nlut, rscale, rcut, rmin, ylm_coef,
                rr, hx, hy, hz, pidx, sp_off, V, D, P, dP, Er, Ei, Yr, Yi, A, A1,
            )
            if nn < 0:
                overlap[i] = -1 - nn
                continue
            for f in range(r1_off[mu_i], r1_off[mu_i + 1]):
                out[i, col_r1[f]] = A1[r1_idx[f]]
            for h in range(hf_off[mu_i], hf_off[mu_i + 1]):
                out[i, col_h[h]] = _function_value_and_adjoint(
                    func_comb_off[h], func_comb_off[h + 1], comb_aoff, comb_aidx, comb_coef,
                    A, W, fw, False,
                )
