"""Angular momentum algebra: Clebsch-Gordan coefficients and spherical harmonics.

Conventions (identical to PACE):

* Clebsch-Gordan coefficients ``<l1 m1 l2 m2 | L M>`` in the Condon-Shortley phase
  convention (real, ``<l1 l1 l2 (L-l1) | L L> > 0``), computed from Racah's closed formula
  with exact integer/rational arithmetic; the float result is correctly rounded up to one
  or two ulps (relative error < 1e-15) for any integer angular momenta.
* Orthonormal complex spherical harmonics with the Condon-Shortley phase,
  ``Y_0^0 = 1/sqrt(4 pi)``, ``Y_1^0 = sqrt(3/(4 pi)) z/r``,
  ``Y_1^1 = -sqrt(3/(8 pi)) (x + i y)/r`` and ``Y_l^{-m} = (-1)^m conj(Y_l^m)``.

Only integer angular momenta are supported (that is all ACE needs).
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import cache

import numpy as np

__all__ = [
    "clebsch_gordan",
    "cg_block",
    "spherical_harmonics",
    "wigner_3j",
]


def _check_integers(*values: int) -> None:
    for v in values:
        if int(v) != v:
            raise ValueError(f"only integer angular momenta are supported, got {v!r}")


@cache
def _cg_exact(l1: int, m1: int, l2: int, m2: int, big_l: int) -> tuple[int, Fraction]:
    """Return ``(sign, C**2)`` of ``<l1 m1 l2 m2 | L m1+m2>`` as an exact rational."""
    big_m = m1 + m2
    f = math.factorial
    # Racah's formula: C = sqrt(pref) * S with an alternating sum S over k.
    pref = Fraction(
        (2 * big_l + 1)
        * f(big_l + l1 - l2)
        * f(big_l - l1 + l2)
        * f(l1 + l2 - big_l)
        * f(big_l + big_m)
        * f(big_l - big_m)
        * f(l1 - m1)
        * f(l1 + m1)
        * f(l2 - m2)
        * f(l2 + m2),
        f(l1 + l2 + big_l + 1),
    )
    k_min = max(0, l2 - big_l - m1, l1 - big_l + m2)
    k_max = min(l1 + l2 - big_l, l1 - m1, l2 + m2)
    s = Fraction(0)
    for k in range(k_min, k_max + 1):
        den = (
            f(k)
            * f(l1 + l2 - big_l - k)
            * f(l1 - m1 - k)
            * f(l2 + m2 - k)
            * f(big_l - l2 + m1 + k)
            * f(big_l - l1 - m2 + k)
        )
        s += Fraction((-1) ** k, den)
    if s == 0:
        return 0, Fraction(0)
    return (1 if s > 0 else -1), s * s * pref


def clebsch_gordan(l1: int, m1: int, l2: int, m2: int, big_l: int, big_m: int) -> float:
    """Clebsch-Gordan coefficient ``<l1 m1 l2 m2 | L M>`` (Condon-Shortley convention).

    Parameters
    ----------
    l1, m1, l2, m2 : int
        Angular momenta and projections of the two coupled states.
    big_l, big_m : int
        Total angular momentum and its projection.

    Returns
    -------
    float
        The coefficient; zero whenever the selection rules (``M = m1 + m2``,
        ``|l1 - l2| <= L <= l1 + l2``, ``|m| <= l``) are violated.
    """
    _check_integers(l1, m1, l2, m2, big_l, big_m)
    l1, m1, l2, m2, big_l, big_m = (int(v) for v in (l1, m1, l2, m2, big_l, big_m))
    if big_m != m1 + m2 or min(l1, l2, big_l) < 0:
        return 0.0
    if abs(m1) > l1 or abs(m2) > l2 or abs(big_m) > big_l:
        return 0.0
    if big_l < abs(l1 - l2) or big_l > l1 + l2:
        return 0.0
    sign, sq = _cg_exact(l1, m1, l2, m2, big_l)
    if sign == 0:
        return 0.0
    # float(Fraction) is correctly rounded and so is sqrt: <= 1 ulp + 1/2 ulp error.
    return sign * math.sqrt(sq.numerator / sq.denominator)


def wigner_3j(l1: int, m1: int, l2: int, m2: int, l3: int, m3: int) -> float:
    """Wigner 3j symbol ``(l1 l2 l3; m1 m2 m3)`` from the Clebsch-Gordan coefficient."""
    cg = clebsch_gordan(l1, m1, l2, m2, l3, -m3)
    return (-1) ** (l1 - l2 - m3) * cg / math.sqrt(2 * l3 + 1)


@cache
def cg_block(l1: int, l2: int, big_l: int) -> np.ndarray:
    """Dense table of ``<l1 m1 l2 m2 | L m1+m2>``.

    Returns
    -------
    numpy.ndarray
        Read-only array of shape ``(2 l1 + 1, 2 l2 + 1)`` indexed by ``(m1 + l1, m2 + l2)``;
        entries with ``|m1 + m2| > L`` are zero.
    """
    out = np.zeros((2 * l1 + 1, 2 * l2 + 1))
    for m1 in range(-l1, l1 + 1):
        for m2 in range(-l2, l2 + 1):
            if abs(m1 + m2) <= big_l:
                out[m1 + l1, m2 + l2] = clebsch_gordan(l1, m1, l2, m2, big_l, m1 + m2)
    out.setflags(write=False)
    return out


def spherical_harmonics(vectors: np.ndarray, lmax: int) -> np.ndarray:
    """Orthonormal complex spherical harmonics ``Y_l^m`` of direction vectors.

    Plain-numpy reference implementation (Condon-Shortley phase, PACE convention).
    The length of the vectors is irrelevant (only directions are used); zero vectors
    are not allowed.

    Parameters
    ----------
    vectors : numpy.ndarray
        Cartesian vectors, shape ``(..., 3)`` (any length unit, e.g. Å).
    lmax : int
        Largest ``l``.

    Returns
    -------
    numpy.ndarray
        Complex array of shape ``(..., lmax + 1, 2 lmax + 1)``; ``Y[..., l, m + lmax]`` holds
        ``Y_l^m`` for ``|m| <= l`` and zero elsewhere.
    """
    v = np.asarray(vectors, dtype=float)
    if v.shape[-1] != 3:
        raise ValueError("vectors must have shape (..., 3)")
    lmax = int(lmax)
    r = np.linalg.norm(v, axis=-1)
    if np.any(r == 0):
        raise ValueError("spherical harmonics of a zero vector are undefined")
    x, y, z = v[..., 0] / r, v[..., 1] / r, v[..., 2] / r
    rho = np.hypot(x, y)  # sin(theta) >= 0
    phase = np.where(rho > 0, (x + 1j * y) / np.where(rho > 0, rho, 1.0), 1.0)  # e^{i phi}

    # Fully normalised associated Legendre functions
    # Pbar_l^m = sqrt((2l+1)/(4 pi) (l-m)!/(l+m)!) P_l^m(z), P with Condon-Shortley phase.
    shape = v.shape[:-1]
    pbar = np.zeros((lmax + 1, lmax + 1) + shape)
    pbar[0, 0] = 1.0 / math.sqrt(4.0 * math.pi)
    for m in range(1, lmax + 1):
        pbar[m, m] = -math.sqrt((2 * m + 1) / (2 * m)) * rho * pbar[m - 1, m - 1]
    for m in range(0, lmax):
        pbar[m + 1, m] = math.sqrt(2 * m + 3) * z * pbar[m, m]
    for m in range(0, lmax + 1):
        for ll in range(m + 2, lmax + 1):
            a = math.sqrt((4 * ll * ll - 1) / (ll * ll - m * m))
            b = math.sqrt(((ll - 1) ** 2 - m * m) / (4 * (ll - 1) ** 2 - 1))
            pbar[ll, m] = a * (z * pbar[ll - 1, m] - b * pbar[ll - 2, m])

    out = np.zeros(shape + (lmax + 1, 2 * lmax + 1), dtype=complex)
    eimphi = np.ones(shape, dtype=complex)
    for m in range(0, lmax + 1):
        for ll in range(m, lmax + 1):
            val = pbar[ll, m] * eimphi
            out[..., ll, lmax + m] = val
            if m > 0:
                out[..., ll, lmax - m] = (-1) ** m * np.conj(val)
        eimphi = eimphi * phase
    return out
