"""Design-matrix rows and per-atom basis values of a linear ACE basis (numba).

For every basis function ``B_k`` the rows hold its contribution to a configuration's
energy (``sum_i B_k(i)``), to every force component (``-d/dr_j sum_i B_k(i)``) and to the
virial (``sum_ij r_ij ⊗ dB_k(i)/dr_ij``), so that for coefficients ``c`` the model's
energy, forces and virial are rows @ c. Parallel over configurations.

Tables: :class:`aceal.descriptors.DesignTables` (the kernel tables of the basis with unit
coefficients, one table function per basis function): the atomic-base tables
(:class:`aceal.basis.tables.BaseTables`), the functions (:class:`FunctionTables`) and per
function the distinct one-particle channels ``(mu, n, l, m >= 0)`` it uses
(:class:`ChannelTables`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from aceal.kernels.evaluate import atomic_base, base_scratch, ylm_gradients


class FunctionTables(NamedTuple):
    """The basis functions of each central species ``mu`` and their columns. Rank-1 function
    ``f`` (``r1_off[mu]:r1_off[mu+1]``) is ``A1[r1_idx[f]]`` in column ``col_r1[f]``;
    higher-rank function ``h`` (``hf_off[mu]:hf_off[mu+1]``) sums the product terms
    ``func_comb_off[h]:func_comb_off[h+1]`` (channels ``comb_aidx[comb_aoff[s]:...]``,
    coefficient ``comb_coef[s, 0]``) into column ``col_h[h]``."""

    rankmax: int
    r1_off: np.ndarray
    r1_idx: np.ndarray
    col_r1: np.ndarray
    hf_off: np.ndarray
    func_comb_off: np.ndarray
    col_h: np.ndarray
    comb_aoff: np.ndarray
    comb_aidx: np.ndarray
    comb_coef: np.ndarray


class ChannelTables(NamedTuple):
    """Per higher-rank function ``h`` the distinct channels with m >= 0 that it uses,
    ``fch_off[h]:fch_off[h+1]``: channel index, species, radial function ``n * (lmax+1) + l``,
    ``Y_lm`` index ``l(l+1)/2 + m`` and ``m``."""

    fch_off: np.ndarray
    fch_chan: np.ndarray
    fch_mu: np.ndarray
    fch_nl: np.ndarray
    fch_lm: np.ndarray
    fch_m: np.ndarray


class Configurations(NamedTuple):
    """The configurations of a batch: atoms ``conf_off[c]:conf_off[c+1]`` (global indices),
    the order in which they are handed to threads (largest first balances the load) and
    their volumes (Å³, 0 where not fully periodic)."""

    conf_off: np.ndarray
    order: np.ndarray
    volume: np.ndarray


class DesignOutputs(NamedTuple):
    """Outputs of :func:`design_rows`."""

    energy: np.ndarray  # (nconf, nbasis)
    forces_t: np.ndarray  # (nbasis, 3 * natoms)
    stress: np.ndarray  # (nconf, 6, nbasis), Voigt, per unit coefficient
    overlap: np.ndarray  # (nconf,) int64: a pair closer than the first spline node, or -1


class DesignScratch(NamedTuple):
    """Per-thread scratch of :func:`design_rows` beyond the atomic base's."""

    W: np.ndarray  # like A: dB/dA of one function (kept zero between functions)
    dYr: np.ndarray  # (nlmh, 3, maxnb) tangential gradients of Y_lm
    dYi: np.ndarray
    nmu: np.ndarray  # (maxnb,) species of each neighbour
    fw: np.ndarray  # (rankmax + 1,) partial products of one term
    wf: np.ndarray  # (max channels of a function + 1,) folded weights of one function
    vir: np.ndarray  # (3, 3) virial of one function


@njit(cache=True)
def _function_value_and_adjoint(s0, s1, funcs, A, W, fw, adjoint):
    """``B = sum_s c_s Re(prod_t A)`` over product terms ``s0:s1``; adds ``dB/dA`` to W."""
    comb_aoff = funcs.comb_aoff
    comb_aidx = funcs.comb_aidx
    comb_coef = funcs.comb_coef
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
def design_rows(confs, nbrs, base, funcs, chans, out, nthreads):
    """Fill ``out.energy[c, k]``, ``out.forces_t[k, 3*atom + a]`` and ``out.stress[c, v, k]``
    (Voigt, eV/Å³ per unit coefficient; zero where ``volume <= 0``) of the configurations
    ``confs`` (:class:`Configurations`) with neighbour list ``nbrs``
    (:class:`aceal.kernels.evaluate.Neighbours`); ``out.overlap[c]`` is set to a pair of an
    overlap. ``nthreads`` sets the work split (``4 * nthreads`` chunks)."""
    conf_off = confs.conf_off
    first = nbrs.first
    species = nbrs.species
    r1_off = funcs.r1_off
    r1_idx = funcs.r1_idx
    col_r1 = funcs.col_r1
    hf_off = funcs.hf_off
    func_comb_off = funcs.func_comb_off
    col_h = funcs.col_h
    fch_off = chans.fch_off
    fch_chan = chans.fch_chan
    fch_mu = chans.fch_mu
    fch_nl = chans.fch_nl
    fch_lm = chans.fch_lm
    fch_m = chans.fch_m
    energy_rows = out.energy
    force_rows_t = out.forces_t
    stress_rows = out.stress
    nelem = base.nelem
    lmax = base.lmax
    nradbase = base.nradbase
    nconf = conf_off.shape[0] - 1
    maxnb = 0
    for i in range(first.shape[0] - 1):
        maxnb = max(maxnb, first[i + 1] - first[i])
    nlm = (lmax + 1) * (lmax + 1)
    nlmh = (lmax + 1) * (lmax + 2) // 2
    maxq = 0
    for h in range(fch_off.shape[0] - 1):
        maxq = max(maxq, fch_off[h + 1] - fch_off[h])
    nchunks = min(nconf, 4 * nthreads) if nconf > 0 else 0
    for chunk in prange(nchunks):
        s = base_scratch(maxnb, base)
        ds = DesignScratch(
            np.zeros(nelem * base.nradmax * nlm, dtype=np.complex128),
            np.empty((nlmh, 3, maxnb)), np.empty((nlmh, 3, maxnb)),
            np.empty(maxnb, dtype=np.int64),
            np.empty(funcs.rankmax + 1, dtype=np.complex128),
            np.empty(maxq + 1, dtype=np.complex128),
            np.zeros((3, 3)),
        )  # fmt: skip
        rr = s.rr
        hx = s.hx
        hy = s.hy
        hz = s.hz
        pidx = s.pidx
        sp_off = s.sp_off
        V = s.V
        D = s.D
        Yr = s.Yr
        Yi = s.Yi
        A = s.A
        A1 = s.A1
        W = ds.W
        dYr = ds.dYr
        dYi = ds.dYi
        nmu = ds.nmu
        wf = ds.wf
        vir = ds.vir
        for ci in range(chunk, nconf, nchunks):
            c = confs.order[ci]
            vol = confs.volume[c]
            for i in range(conf_off[c], conf_off[c + 1]):
                mu_i = species[i]
                nn, _ = atomic_base(i, nbrs, base, s)
                if nn < 0:
                    out.overlap[c] = -1 - nn
                    break
                ylm_gradients(nn, base, s, dYr, dYi)
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
                        _add_pair(force_rows_t, vir, k, i, nbrs, pidx[jj],
                                  g * hx[jj], g * hy[jj], g * hz[jj])  # fmt: skip
                    if vol > 0:
                        _add_stress(stress_rows, c, k, vir, vol)
                # ---- rank >= 2 functions
                for h in range(hf_off[mu_i], hf_off[mu_i + 1]):
                    k = col_h[h]
                    s0 = func_comb_off[h]
                    s1 = func_comb_off[h + 1]
                    energy_rows[c, k] += _function_value_and_adjoint(
                        s0, s1, funcs, A, W, ds.fw, True
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
                        _add_pair(force_rows_t, vir, k, i, nbrs, pidx[jj],
                                  radial * hx[jj] + gx, radial * hy[jj] + gy,
                                  radial * hz[jj] + gz)  # fmt: skip
                    if vol > 0:
                        _add_stress(stress_rows, c, k, vir, vol)


@njit(cache=True)
def _add_pair(force_rows_t, vir, k, i, nbrs, p, g0, g1, g2):
    """Column ``k``: pair ``p`` (atom ``i`` to ``nbrs.j[p]``) with gradient ``g`` of
    ``B_k(i)`` with respect to ``r_ij``: forces on both atoms and the virial."""
    j = nbrs.j[p]
    force_rows_t[k, 3 * j] -= g0
    force_rows_t[k, 3 * j + 1] -= g1
    force_rows_t[k, 3 * j + 2] -= g2
    force_rows_t[k, 3 * i] += g0
    force_rows_t[k, 3 * i + 1] += g1
    force_rows_t[k, 3 * i + 2] += g2
    nbr_d = nbrs.d
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
def basis_values(nbrs, base, funcs, out, overlap, nthreads):
    """Per-atom basis values ``out[i, k] = B_k(i)`` (zero for functions of other species);
    ``overlap[i]`` is set to a pair of an overlap (else left at -1)."""
    first = nbrs.first
    species = nbrs.species
    r1_off = funcs.r1_off
    r1_idx = funcs.r1_idx
    col_r1 = funcs.col_r1
    hf_off = funcs.hf_off
    func_comb_off = funcs.func_comb_off
    col_h = funcs.col_h
    nat = first.shape[0] - 1
    maxnb = 0
    for i in range(nat):
        maxnb = max(maxnb, first[i + 1] - first[i])
    nchunks = min(nat, 4 * nthreads) if nat > 0 else 0
    for chunk in prange(nchunks):
        s = base_scratch(maxnb, base)
        A = s.A
        A1 = s.A1
        W = np.empty(1, dtype=np.complex128)
        fw = np.empty(funcs.rankmax + 1, dtype=np.complex128)
        for i in range(chunk, nat, nchunks):
            mu_i = species[i]
            nn, _ = atomic_base(i, nbrs, base, s)
            if nn < 0:
                overlap[i] = -1 - nn
                continue
            for f in range(r1_off[mu_i], r1_off[mu_i + 1]):
                out[i, col_r1[f]] = A1[r1_idx[f]]
            for h in range(hf_off[mu_i], hf_off[mu_i + 1]):
                out[i, col_h[h]] = _function_value_and_adjoint(
                    func_comb_off[h], func_comb_off[h + 1], funcs, A, W, fw, False
                )
