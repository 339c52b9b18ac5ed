"""Conventions and recursion coefficients of the complex spherical harmonics.

The harmonics themselves are evaluated in blocks of neighbours by
:func:`aceal.kernels.evaluate.ylm_block` and their gradients by
:func:`aceal.kernels.evaluate.ylm_gradients`.
``Y_l^m`` follow PACE: the orthonormal harmonics with the Condon-Shortley phase times
``sqrt(4 pi)``, so that ``Y_0^0 = 1``. Only ``m >= 0`` is computed;
``Y_l^{-m} = (-1)^m conj(Y_l^m)``. Index ``lm = l (l + 1) / 2 + m``.
"""

from __future__ import annotations

import math

import numpy as np

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
