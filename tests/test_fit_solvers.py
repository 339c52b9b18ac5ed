"""Solvers: ridge with smoothness prior, evidence maximisation, posterior committees."""

import numpy as np
import pytest

from aceal.fit.solvers import fit_bayesian, fit_ridge, smoothness_prior


def _problem(n=3000, m=40, noise=0.03, seed=0, col_scale=None):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, m))
    if col_scale is not None:
        a = a * col_scale
    c = rng.standard_normal(m)
    y = a @ c + noise * rng.standard_normal(n)
    return a, c, y


def _neq(a, y):
    return a.T @ a, a.T @ y, float(y @ y), len(y)


def test_smoothness_prior_grows_with_degree():
    p = smoothness_prior(np.array([0, 1, 4, 9]), power=2.0)
    np.testing.assert_allclose(p, [1, 4, 25, 100])
    assert np.all(smoothness_prior(np.arange(5), power=0.0) == 1.0)
    with pytest.raises(ValueError):
        smoothness_prior(np.array([-1.0]))
    # order factor: times f**(order - 1)
    p = smoothness_prior(np.array([2, 2, 2]), power=1.0, orders=np.array([1, 2, 3]),
                         order_factor=4.0)
    np.testing.assert_allclose(p, [3, 12, 48])
    with pytest.raises(ValueError):
        smoothness_prior(np.array([1.0]), orders=np.array([1]), order_factor=0.0)


def test_ridge_noise_free_recovers_coefficients():
    a, c, y = _problem(noise=0.0)
    post = fit_ridge(*_neq(a, y), np.ones(a.shape[1]), lam=0.0)
    np.testing.assert_allclose(post.mean, c, atol=1e-8)


def test_ridge_matches_direct_solution_with_prior():
    a, _, y = _problem()
    prior = smoothness_prior(np.arange(a.shape[1]) % 7, power=3.0)
    lam = 5.0
    post = fit_ridge(*_neq(a, y), prior, lam=lam)
    direct = np.linalg.solve(a.T @ a + lam * np.diag(prior), a.T @ y)
    np.testing.assert_allclose(post.mean, direct, rtol=1e-10, atol=1e-12)


def test_prior_power_shrinks_high_degree_functions_more():
    a, _, y = _problem(n=60, m=40, noise=0.5)  # underdetermined-ish: prior matters
    degrees = np.arange(a.shape[1]) // 4
    flat = fit_ridge(*_neq(a, y), smoothness_prior(degrees, 0.0), lam=20.0).mean
    smooth = fit_ridge(*_neq(a, y), smoothness_prior(degrees, 2.0), lam=20.0).mean
    high = degrees >= 6
    assert np.linalg.norm(smooth[high]) < 0.5 * np.linalg.norm(flat[high])


@pytest.mark.parametrize("noise", [0.01, 0.2])
def test_evidence_recovers_noise_level(noise):
    a, c, y = _problem(noise=noise, seed=3)
    post = fit_bayesian(*_neq(a, y), np.ones(a.shape[1]))
    assert post.converged
    sigma = 1.0 / np.sqrt(post.beta)
    assert abs(sigma - noise) < 0.05 * noise
    # the prior scale is of order 1/var(c) = 1
    assert 0.1 < post.alpha < 10.0
    assert np.sqrt(np.mean((post.mean - c) ** 2)) < 5 * noise / np.sqrt(len(y)) * 3


def test_evidence_is_maximal_at_returned_hyperparameters():
    from aceal.fit.solvers import _log_evidence, _spectrum

    a, _, y = _problem(n=200, m=30, noise=0.1, seed=5)
    prior = smoothness_prior(np.arange(30) // 3, 1.0)
    post = fit_bayesian(*_neq(a, y), prior)
    sp = _spectrum(*_neq(a, y), prior)
    best = _log_evidence(sp, post.alpha, post.beta)
    assert best == pytest.approx(post.log_evidence)
    for fa, fb in [(2, 1), (0.5, 1), (1, 1.2), (1, 0.8)]:
        assert _log_evidence(sp, post.alpha * fa, post.beta * fb) < best


def test_evidence_on_ill_conditioned_columns_stays_finite():
    m = 30
    scale = np.logspace(0, -9, m)
    a, c, y = _problem(n=500, m=m, noise=1e-3, col_scale=scale, seed=7)
    post = fit_bayesian(*_neq(a, y), np.ones(m))
    assert np.all(np.isfinite(post.mean))
    resid = a @ post.mean - y
    assert np.sqrt(np.mean(resid**2)) < 2e-3
    # well-determined (large) columns are recovered
    np.testing.assert_allclose(post.mean[:5], c[:5], atol=1e-3)


def test_committee_mean_and_covariance_match_posterior():
    a, _, y = _problem(n=100, m=8, noise=0.3, seed=11)
    post = fit_bayesian(*_neq(a, y), np.ones(8))
    k = 4000
    comm = post.sample(k, seed=1)
    assert comm.shape == (k, 8)
    sd = np.sqrt(np.diag(post.covariance()))
    # mean of K draws: standard error sd / sqrt(K); 5 sigma bound
    assert np.all(np.abs(comm.mean(axis=0) - post.mean) < 5 * sd / np.sqrt(k))
    np.testing.assert_allclose(np.cov(comm.T), post.covariance(), atol=0.1 * sd.max() ** 2)
    # the same seed gives the same committee, another seed another one
    np.testing.assert_array_equal(post.sample(3, seed=2), post.sample(3, seed=2))
    assert not np.allclose(post.sample(3, seed=2), post.sample(3, seed=3))


def test_predictive_variance_matches_committee_spread():
    a, _, y = _problem(n=100, m=8, noise=0.3, seed=12)
    post = fit_bayesian(*_neq(a, y), np.ones(8))
    rows = np.random.default_rng(0).standard_normal((5, 8))
    comm = post.sample(20000, seed=4)
    np.testing.assert_allclose(post.predictive_variance(rows), (comm @ rows.T).var(axis=0),
                               rtol=0.05)
    noisy = post.predictive_variance(rows, weights=1.0)
    np.testing.assert_allclose(noisy - post.predictive_variance(rows), 1.0 / post.beta)


def test_bad_inputs():
    a, _, y = _problem(n=50, m=5)
    with pytest.raises(ValueError):
        fit_ridge(*_neq(a, y), -np.ones(5), lam=1.0)
    with pytest.raises(ValueError):
        fit_ridge(*_neq(a, y), np.ones(5), lam=-1.0)
    ata, aty, yty, n = _neq(a, y)
    ata[0, 0] = np.nan
    with pytest.raises(ValueError):
        fit_bayesian(ata, aty, yty, n, np.ones(5))
