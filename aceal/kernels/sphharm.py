"""Complex spherical harmonics and radial splines for the per-neighbour loop (numba).

``Y_l^m`` follow PACE: the orthonormal harmonics with the Condon-Shortley phase times
``sqrt(4 pi)``, so that ``Y_0^0 = 1``. Only ``m >= 0`` is computed;
``Y_l^{-m} = (-1)^m conj(Y_l^m)``. Index ``lm = l (l + 1) / 2 + m``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

Y00 = 1.0  # PACE normalisation: sqrt(4 pi) times the orthonormal Y_0^0


def ylm_recursion_coefficients(lmax: int) -> np.ndarray:
    """Coefficients of the normalised associated-Legendre recursion, shape (4, lmax+1, lmax+1).

    ``[0]`` = a_lm, ``[1]`` = b_lm (three-term recursion in l), ``[2][l, 0]`` = c_l (diagonal),
    ``[3][l, 0]`` = d_l (first off-diagonal).
    """
    c = np.zeros((4, lmax + 1, lmax + 1))
    for l in range(1, lmax + 1):
        for m in range(0, l - 1):
            c[0, l, m] = math.sqrt((4.0 * l * l - 1.0) / (l * l - m * m))
            c[1, l, m] = -math.sqrt(((l - 1.0) ** 2 - m * m) / (4.0 * (l - 1.0) ** 2 - 1.0))
        c[2, l, 0] = -math.sqrt(1.0 + 0.5 / l)
        c[3, l, 0] = math.sqrt(2.0 * (l - 1) + 3.0)
    return c


@njit(cache=True, fastmath=False)
def compute_ylm(x, y, z, lmax, coef, plm, dplm, ylm, dylm):
    """Fill ``ylm[lm]`` and the tangential gradient ``dylm[lm, 3]`` for a unit vector.

    The gradient of ``Y(r/|r|)`` with respect to ``r`` is ``dylm / |r|``.
    """
    plm[0] = Y00
    dplm[0] = 0.0
    if lmax > 0:
        sq3 = math.sqrt(3.0)
        plm[1] = Y00 * sq3 * z
        dplm[1] = Y00 * sq3
        plm[2] = -math.sqrt(1.5) * Y00
        dplm[2] = 0.0
        for l in range(2, lmax + 1):
            base = l * (l + 1) // 2
            b1 = (l - 1) * l // 2
            b2 = (l - 2) * (l - 1) // 2
            for m in range(0, l - 1):
                a = coef[0, l, m]
                b = coef[1, l, m]
                plm[base + m] = a * (z * plm[b1 + m] + b * plm[b2 + m])
                dplm[base + m] = a * (plm[b1 + m] + z * dplm[b1 + m] + b * dplm[b2 + m])
            t = coef[3, l, 0] * plm[b1 + l - 1]
            plm[base + l - 1] = t * z
            dplm[base + l - 1] = t
            plm[base + l] = coef[2, l, 0] * plm[b1 + l - 1]
            dplm[base + l] = 0.0
    phase = complex(x, y)
    phase_m = complex(1.0, 0.0)  # phase^m
    phase_m1 = complex(0.0, 0.0)  # m * phase^(m-1)
    for m in range(0, lmax + 1):
        for l in range(m, lmax + 1):
            k = l * (l + 1) // 2 + m
            p = plm[k]
            ylm[k] = phase_m * p
            gx = phase_m1 * p
            gy = complex(-gx.imag, gx.real)  # i * m * phase^(m-1) * p
            gz = phase_m * dplm[k]
            rdot = x * gx + y * gy + z * gz
            dylm[k, 0] = gx - rdot * x
            dylm[k, 1] = gy - rdot * y
            dylm[k, 2] = gz - rdot * z
        phase_m1 = (m + 1) * phase_m
        phase_m = phase_m * phase


@njit(cache=True)
def spline_eval(table, pair, r, rscale, nlut, nfunc, out_val, out_der):
    """Cubic Hermite lookup of all ``nfunc`` functions of ``pair`` at distance ``r`` (Å).

    Returns False (and fills zeros) beyond the last node.
    """
    xs = r * rscale
    nl = int(math.floor(xs))
    if nl >= nlut:
        for f in range(nfunc):
            out_val[f] = 0.0
            out_der[f] = 0.0
        return False
    w = xs - nl
    w2 = w * w
    w3 = w2 * w
    for f in range(nfunc):
        c0 = table[pair, nl, f, 0]
        c1 = table[pair, nl, f, 1]
        c2 = table[pair, nl, f, 2]
        c3 = table[pair, nl, f, 3]
        out_val[f] = c0 + c1 * w + c2 * w2 + c3 * w3
        out_der[f] = (c1 + 2.0 * c2 * w + 3.0 * c3 * w2) * rscale
    return True
