"""Regularised and Bayesian linear least squares on accumulated normal equations.

Model (in the weighted space, rows already scaled by ``sqrt(weight)``)::

    y = A c + e,      e ~ N(0, 1/beta I),      c ~ N(0, (alpha P)^-1)

``P`` is a diagonal *smoothness prior*: ``P_k = (1 + degree_k)**power``, so functions of high
total degree (rough, short wavelength) are penalised more than smooth low-degree ones,
optionally times ``order_factor**(order_k - 1)`` to penalise high body orders
(:func:`smoothness_prior`).  ``alpha`` scales the prior precision and ``beta`` is the
noise precision of the weighted residuals (``beta = 1`` means the weights are exactly the
inverse noise variances).  The maximum a-posteriori coefficients minimise::

    sum_rows w (a c - y)**2 + lam * sum_k P_k c_k**2,     lam = alpha / beta.

Numerics.  We substitute ``c = S u`` with ``S = P^-1/2`` (column scaling, so the prior on
``u`` is isotropic) and eigen-decompose the symmetric matrix ``H = S A^T W A S = V diag(l) V^T``
once (``numpy.linalg.eigh``, backward stable; eigenvalues below zero from rounding are
clipped).  Every quantity then costs ``O(M)`` per value of ``(alpha, beta)``: the posterior
mean ``u = V diag(1/(l + lam)) V^T S b``, the log evidence, the effective number of
parameters ``gamma = sum l/(l + lam)``.  ``A^T W A`` is never inverted: ``lam`` is kept at
least ``1e-12 * max(l)`` so the spectrum that is used is always well conditioned.

The evidence is maximised with MacKay's fixed-point iterations
(``alpha = gamma / |u|^2``, ``beta = (n - gamma) / |y - A c|^2``) polished by a bounded
quasi-Newton step over ``(log alpha, log beta)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

__all__ = [
    "Posterior",
    "profile_out",
    "smoothness_prior",
    "fit_bayesian",
    "fit_ridge",
]

#: smallest allowed lam = alpha/beta relative to the largest eigenvalue of H
LAM_MIN_REL = 1e-12
#: largest allowed lam relative to the largest eigenvalue of H
LAM_MAX_REL = 1e8


def smoothness_prior(degrees: np.ndarray, power: float = 2.0, offset: float = 1.0,
                     orders: np.ndarray | None = None, order_factor: float = 1.0) -> np.ndarray:
    """Diagonal prior precision ``P_k = (offset + degree_k)**power * order_factor**(order_k - 1)``.

    Dimensionless.  The first factor penalises rough (high total degree) functions, the
    second, optional one higher correlation orders (more complex functions).

    Parameters
    ----------
    degrees
        Total degree of each basis function (``ACEBasis.degrees``).
    power
        Growth exponent; ``0`` gives plain ridge regression (``P = 1``).
    offset
        Added to the degree before raising to ``power`` (must be positive).
    orders, order_factor
        Correlation order of each function (``ACEBasis.orders``) and the factor per
        order above 1 (``1``: no order dependence).
    """
    d = np.asarray(degrees, dtype=float)
    if offset <= 0:
        raise ValueError("smoothness prior offset must be positive")
    if order_factor <= 0:
        raise ValueError("prior order_factor must be positive")
    if np.any(d < 0):
        raise ValueError("basis degrees must be non-negative")
    p = (offset + d) ** float(power)
    if orders is not None and order_factor != 1.0:
        o = np.asarray(orders, dtype=float)
        if o.shape != d.shape:
            raise ValueError("orders and degrees must have the same shape")
        p = p * float(order_factor) ** (o - 1.0)
    return p


@dataclass
class Posterior:
    """Gaussian posterior over the coefficients, from one eigen-decomposition.

    Attributes
    ----------
    mean
        ``(M,)`` posterior mean = MAP coefficients (eV per unit basis function).
    alpha, beta
        Prior-precision scale and noise precision of the weighted residuals.
    prior
        ``(M,)`` diagonal prior precision ``P``.
    eigvals, eigvecs
        Spectrum of the column-scaled Gram matrix ``S A^T W A S``.
    n_rows
        Number of (non-zero weight) observations.
    log_evidence
        ``log p(y | alpha, beta)`` (natural log).
    gamma
        Effective number of well-determined parameters.
    """

    mean: np.ndarray
    alpha: float
    beta: float
    prior: np.ndarray
    eigvals: np.ndarray
    eigvecs: np.ndarray
    n_rows: int
    log_evidence: float
    gamma: float
    iterations: int = 0
    converged: bool = True

    @property
    def lam(self) -> float:
        """Ridge parameter ``alpha / beta`` of the MAP problem."""
        return self.alpha / self.beta

    def factor(self) -> np.ndarray:
        """``L`` with ``Sigma = L L^T`` (``(M, M)``)."""
        s = 1.0 / np.sqrt(self.prior)
        d = 1.0 / np.sqrt(self.beta * self.eigvals + self.alpha)
        return (s[:, None] * self.eigvecs) * d[None, :]

    def covariance(self) -> np.ndarray:
        """Posterior covariance ``Sigma = (beta A^T W A + alpha P)^-1`` (``(M, M)``)."""
        f = self.factor()
        return f @ f.T

    def sample(self, n: int, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """Draw ``n`` coefficient vectors from the posterior (``(n, M)``), e.g. a committee."""
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((self.mean.size, int(n)))
        return (self.mean[:, None] + self.factor() @ z).T

    def predictive_variance(self, rows: np.ndarray, weights: float | np.ndarray | None = None
                            ) -> np.ndarray:
        """Variance of ``rows @ c`` under the posterior (model part only by default).

        Parameters
        ----------
        rows
            ``(n, M)`` unweighted design rows (e.g. energy or force rows).
        weights
            If given, the observation noise ``1 / (beta * w)`` of a row of weight ``w`` is
            added, giving the variance of a new observation.
        """
        g = np.atleast_2d(np.asarray(rows, dtype=float)) @ self.factor()
        var = np.einsum("ij,ij->i", g, g)
        if weights is not None:
            var = var + 1.0 / (self.beta * np.asarray(weights, dtype=float))
        return var


# ---------------------------------------------------------------------- helpers
@dataclass
class _Spectrum:
    lam: np.ndarray     # eigenvalues (clipped >= 0)
    vecs: np.ndarray
    bhat: np.ndarray    # V^T S A^T W y
    yty: float
    n: int
    scale: np.ndarray   # S = P^-1/2

    @property
    def lam_bounds(self) -> tuple[float, float]:
        top = float(max(self.lam.max(initial=0.0), 1e-300))
        return LAM_MIN_REL * top, LAM_MAX_REL * top


def _spectrum(ata: np.ndarray, aty: np.ndarray, yty: float, n: int, prior: np.ndarray
              ) -> _Spectrum:
    prior = np.asarray(prior, dtype=float)
    if prior.shape != aty.shape or np.any(prior <= 0) or not np.all(np.isfinite(prior)):
        raise ValueError("prior precision must be positive and one value per basis function")
    if not (np.all(np.isfinite(ata)) and np.all(np.isfinite(aty))):
        raise ValueError("normal equations contain NaN or inf")
    s = 1.0 / np.sqrt(prior)
    h = (s[:, None] * ata) * s[None, :]
    h = 0.5 * (h + h.T)
    lam, vecs = np.linalg.eigh(h)
    lam = np.clip(lam, 0.0, None)
    bhat = vecs.T @ (s * aty)
    return _Spectrum(lam, vecs, bhat, float(yty), int(n), s)


def _terms(sp: _Spectrum, r: float) -> tuple[float, float, float]:
    """``(E_D, E_W, gamma)`` at ridge ``r = alpha / beta``."""
    den = sp.lam + r
    b2 = sp.bhat**2
    ew = float(np.sum(b2 / den**2))
    ed = float(sp.yty - np.sum(b2 * (sp.lam + 2.0 * r) / den**2))
    ed = max(ed, 1e-300, 1e-15 * abs(sp.yty))
    gamma = float(np.sum(sp.lam / den))
    return ed, ew, gamma


def _log_evidence(sp: _Spectrum, alpha: float, beta: float) -> float:
    m = sp.lam.size
    ed, ew, _ = _terms(sp, alpha / beta)
    return float(0.5 * m * math.log(alpha) + 0.5 * sp.n * math.log(beta)
                 - 0.5 * beta * ed - 0.5 * alpha * ew
                 - 0.5 * np.sum(np.log(beta * sp.lam + alpha))
                 - 0.5 * sp.n * math.log(2.0 * math.pi))


def _posterior(sp: _Spectrum, alpha: float, beta: float, prior: np.ndarray,
               iterations: int = 0, converged: bool = True) -> Posterior:
    r = alpha / beta
    u = sp.vecs @ (sp.bhat / (sp.lam + r))
    _, _, gamma = _terms(sp, r)
    return Posterior(mean=sp.scale * u, alpha=float(alpha), beta=float(beta),
                     prior=np.asarray(prior, dtype=float), eigvals=sp.lam, eigvecs=sp.vecs,
                     n_rows=sp.n, log_evidence=_log_evidence(sp, alpha, beta), gamma=gamma,
                     iterations=iterations, converged=converged)


def _clip_r(sp: _Spectrum, r: float) -> float:
    lo, hi = sp.lam_bounds
    return float(min(max(r, lo), hi))


# ---------------------------------------------------------------------- solvers
def profile_out(ata: np.ndarray, aty: np.ndarray, yty: float, n_rows: int, k: int
                ) -> tuple[np.ndarray, np.ndarray, float, int, Callable[[np.ndarray], np.ndarray]]:
    """Eliminate the last ``k`` columns (flat prior, e.g. fitted reference energies).

    For every value of the first ``M - k`` coefficients ``c`` the last ``k`` (``e``) are
    set to their least-squares optimum ``e(c) = H_ee^+ (b_e - H_ec c)``; what remains is a
    least-squares problem in ``c`` alone with the Schur-complement normal equations
    ``H_cc - H_ce H_ee^+ H_ec`` (exact, ``k x k`` pseudo-inverse only).

    Returns
    -------
    (ata, aty, yty, n_rows, back)
        Reduced equations (``n_rows`` minus the rank of ``H_ee``) and ``back(c) -> e``
        (also for a stack ``(K, M - k)`` of coefficient vectors).
    """
    m = ata.shape[0] - k
    if k == 0:
        return ata, aty, yty, n_rows, lambda c: np.zeros(np.shape(c)[:-1] + (0,))
    hcc, hce, hee = ata[:m, :m], ata[:m, m:], ata[m:, m:]
    bc, be = aty[:m], aty[m:]
    hee_pinv = np.linalg.pinv(hee, rcond=1e-12, hermitian=True)
    rank = int(np.linalg.matrix_rank(hee, hermitian=True)) if hee.any() else 0
    red_ata = hcc - hce @ hee_pinv @ hce.T
    red_aty = bc - hce @ (hee_pinv @ be)
    red_yty = float(yty - be @ hee_pinv @ be)

    def back(c: np.ndarray) -> np.ndarray:
        c = np.asarray(c, dtype=float)
        return (be - c @ hce) @ hee_pinv

    return 0.5 * (red_ata + red_ata.T), red_aty, red_yty, n_rows - rank, back


def fit_ridge(ata: np.ndarray, aty: np.ndarray, yty: float, n_rows: int, prior: np.ndarray,
              lam: float) -> Posterior:
    """Regularised least squares with a fixed ridge ``lam`` (loss units, see module doc).

    The noise precision is then estimated from the residual,
    ``beta = (n - gamma) / |W^1/2 (y - A c)|^2`` and ``alpha = lam * beta``, so the returned
    :class:`Posterior` can still draw committees and predictive variances.
    ``lam`` is raised to ``1e-12 * max eigenvalue`` if smaller (conditioning guard).
    """
    if lam < 0:
        raise ValueError("ridge parameter lam must be >= 0")
    sp = _spectrum(ata, aty, yty, n_rows, prior)
    r = _clip_r(sp, float(lam))
    ed, _, gamma = _terms(sp, r)
    beta = max(sp.n - gamma, 1.0) / ed
    return _posterior(sp, r * beta, beta, prior)


def fit_bayesian(ata: np.ndarray, aty: np.ndarray, yty: float, n_rows: int, prior: np.ndarray,
                 alpha0: float | None = None, beta0: float | None = None,
                 max_iter: int = 1000, tol: float = 1e-9) -> Posterior:
    """Bayesian linear regression: choose ``alpha`` and ``beta`` by maximising the evidence.

    Parameters
    ----------
    ata, aty, yty, n_rows
        Weighted normal equations (:meth:`NormalEquations.total`).
    prior
        Diagonal prior precision ``P`` (e.g. :func:`smoothness_prior`).
    alpha0, beta0
        Starting values (default: ``beta0 = n / y^T W y``, ``alpha0 = 1e-6 * beta0 * max l``).
    max_iter, tol
        MacKay iterations and relative tolerance on ``alpha`` and ``beta``.

    Returns
    -------
    Posterior
        With ``converged`` false if the fixed point was not reached (the polished optimum
        is returned anyway).
    """
    sp = _spectrum(ata, aty, yty, n_rows, prior)
    if sp.n < 1:
        raise ValueError("no observations to fit")
    lo, hi = sp.lam_bounds
    beta = beta0 if beta0 is not None else sp.n / max(sp.yty, 1e-300)
    alpha = alpha0 if alpha0 is not None else 1e-6 * beta * max(sp.lam.max(), 1e-300)
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - reported below
        r = _clip_r(sp, alpha / beta)
        ed, ew, gamma = _terms(sp, r)
        new_beta = max(sp.n - gamma, 1e-3) / ed
        new_alpha = max(gamma, 1e-3) / max(ew, 1e-300)
        new_alpha = _clip_r(sp, new_alpha / new_beta) * new_beta
        done = (abs(new_alpha - alpha) <= tol * alpha and abs(new_beta - beta) <= tol * beta)
        alpha, beta = new_alpha, new_beta
        if done:
            converged = True
            break

    # polish (and rescue a non-converged fixed point) directly on the log evidence
    def neg(x: np.ndarray) -> float:
        return -_log_evidence(sp, math.exp(x[0] + x[1]), math.exp(x[1]))

    x0 = np.array([math.log(alpha / beta), math.log(beta)])
    res = minimize(neg, x0, method="L-BFGS-B",
                   bounds=[(math.log(lo), math.log(hi)), (None, None)])
    if res.fun < neg(x0):
        alpha, beta = math.exp(res.x[0] + res.x[1]), math.exp(res.x[1])
        converged = converged or bool(res.success)
    return _posterior(sp, alpha, beta, prior, iterations=iterations, converged=converged)
