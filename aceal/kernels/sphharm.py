"""Conventions and recursion coefficients of the complex spherical harmonics.

The harmonics themselves are evaluated in blocks of neighbours by
:func:`aceal.kernels.evaluate.ylm_block` and their gradients by
:func:`aceal.kernels.evaluate.ylm_gradients`.
``Y_l^m`` follow PACE: the orthonormal harmonics with the Condon-Shortley phase times
``sqrt(4 pi)``, so that ``Y_0^0 = 1``. Only ``m >= 0`` is computed;
``Y_l^{-m} = (-1)^m conj(Y_l^m)``. Index ``lm = l (l + 1) / 2 + m``. The recursion
coefficients (:func:`ylm_recursion_coefficients`) are built with the kernel tables
(:mod:`aceal.basis.tables`).
"""

from __future__ import annotations

from aceal.basis.tables import ylm_recursion_coefficients

__all__ = ["Y00", "ylm_recursion_coefficients"]

Y00 = 1.0  # PACE normalisation: sqrt(4 pi) times the orthonormal Y_0^0
