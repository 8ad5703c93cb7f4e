"""Claim 6: score-function and reparameterization estimators of grad E_q[f(z)], q = N(mu, sigma^2).

Both are unbiased; they differ in variance (vae_np.derivations.score_reparam). Each check compares the Monte Carlo
mean with the exact gradient of the closed-form expectation, in units of its standard error.
Also: the score d ln q / d(mu, sigma) has mean zero under q, so the path derivative of ln q alone
(q's parameters held fixed) is an unbiased estimate of grad E_q[ln q].
"""
from __future__ import annotations

import math

import numpy as np

from ._record import MC_SIGMAS, make_claim, quad
from .score_reparam import reparameterization_gradient, score_function_gradient

N_SAMPLES = 100_000


def _sin_exact(mu, sigma):
    damp = math.exp(-0.5 * sigma * sigma)
    return (math.cos(mu) * damp, -sigma * math.sin(mu) * damp)


def _exp_exact(mu, sigma):
    j = math.exp(mu + 0.5 * sigma * sigma)
    return (j, sigma * j)


TEST_FUNCTIONS = {
    # name: (f, f', exact (dJ/dmu, dJ/dsigma), J in closed form)
    "square": (lambda z: z * z, lambda z: 2 * z, lambda m, s: (2 * m, 2 * s),
               "E[z^2] = mu^2 + sigma^2"),
    "sin": (np.sin, np.cos, _sin_exact, "E[sin z] = sin(mu) exp(-sigma^2/2)"),
    "exp": (np.exp, np.exp, _exp_exact, "E[e^z] = exp(mu + sigma^2/2)"),
}
"""f(z) with E_{N(mu, sigma^2)}[f] in closed form, and that closed form's gradient."""


def estimator_records(f_name, mu, sigma, rng, n=N_SAMPLES):
    """Two records for one f: the score-function and the reparameterization estimate against the
    exact gradient; the error is the largest |estimate - exact| / SE over (d/dmu, d/dsigma)."""
    f, df, exact_fn, closed = TEST_FUNCTIONS[f_name]
    exact = np.array(exact_fn(mu, sigma))
    estimates = {"score": score_function_gradient(f, mu, sigma, n, rng),
                 "reparam": reparameterization_gradient(f, df, mu, sigma, n, rng)}
    ratio = estimates["score"].variance / estimates["reparam"].variance
    records = []
    for kind, est in estimates.items():
        z_scores = np.abs(est.mean - exact) / est.stderr
        label = ("score function: f(z) d ln q/d(mu, sigma)" if kind == "score"
                 else "reparameterization: f'(z) d(mu + sigma eps)/d(mu, sigma)")
        records.append(make_claim(
            f"estimators.{f_name}.{kind}",
            f"The {label} is unbiased for grad E_q[f], f = {f_name} ({closed})",
            f"mean of {n} single-sample estimates = exact (dJ/dmu, dJ/dsigma)   [error in SE]",
            tuple(est.mean), tuple(exact), float(z_scores.max()), MC_SIGMAS,
            f"{MC_SIGMAS:g} standard errors (error column is |mean - exact| / SE, the worse of the "
            "two components); a correct estimator exceeds it with probability ~1e-4",
            unit="SE",
            details=dict(mu=mu, sigma=sigma, n=n, variance=est.variance, stderr=est.stderr,
                         variance_ratio_score_over_reparam=ratio,
                         note=(f"{f_name}: per-sample variance (d/dmu, d/dsigma) score "
                               f"({est.variance[0]:.4g}, {est.variance[1]:.4g}), reparam "
                               f"({estimates['reparam'].variance[0]:.4g}, "
                               f"{estimates['reparam'].variance[1]:.4g}); ratio "
                               f"{ratio[0]:.3g}, {ratio[1]:.3g}")
                         if kind == "score" else None)))
    return records


def path_derivative_log_q(eps, sigma):
    """The pathwise part of d/d(mu, sigma) ln q(z; mu, sigma) at z = mu + sigma eps: the density's
    parameters held fixed, only z moves. d ln q/dz = -(z - mu)/sigma^2 = -eps/sigma times
    dz/d(mu, sigma) = (1, eps) gives (-eps/sigma, -eps^2/sigma) per sample, shape (n, 2)."""
    d_ln_q_dz = -eps / sigma
    return np.stack([d_ln_q_dz, d_ln_q_dz * eps], axis=1)


def _entropy_path(seed, n=N_SAMPLES):
    """The path derivative of ln q alone is unbiased for grad E_q[ln q] (the score term dropped by
    it has mean zero): E[(-eps/sigma, -eps^2/sigma)] = (0, -1/sigma) = grad(-ln sigma - const)."""
    rng = np.random.default_rng(seed + 7)
    mu, sigma = float(rng.uniform(-2, 2)), float(rng.uniform(0.3, 3))
    samples = path_derivative_log_q(rng.standard_normal(n), sigma)
    mean = samples.mean(axis=0)
    stderr = samples.std(axis=0, ddof=1) / math.sqrt(n)
    exact = np.array([0.0, -1.0 / sigma])
    z_scores = np.abs(mean - exact) / stderr
    return make_claim(
        "estimators.entropy_path",
        "The path derivative of ln q(z) with q's parameters held fixed (only z = mu + sigma eps "
        "moves) is an unbiased estimate of grad E_q[ln q], because the score term it drops has "
        "mean zero",
        f"mean of {n} samples (-eps/sigma, -eps^2/sigma) = d/d(mu, sigma) "
        "(-ln sigma - 1/2 (1 + ln 2 pi)) = (0, -1/sigma)   [error in SE]",
        tuple(mean), tuple(exact), float(z_scores.max()), MC_SIGMAS,
        f"{MC_SIGMAS:g} standard errors (error column is |mean - exact| / SE, the worse of the two "
        "components); a correct estimator exceeds it with probability ~1e-4",
        unit="SE", details=dict(mu=mu, sigma=sigma, n=n, stderr=stderr,
                                variance=samples.var(axis=0, ddof=1)))


def _score_mean_zero(seed):
    """E_q[d ln q / dmu] = E_q[(z - mu)/sigma^2] = 0 and E_q[d ln q / dsigma] = 0, by quadrature."""
    rng = np.random.default_rng(seed)
    mu, sigma = rng.uniform(-2, 2), rng.uniform(0.3, 3)
    pdf = lambda z: math.exp(-0.5 * ((z - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    lo, hi = mu - 40 * sigma, mu + 40 * sigma
    d_mu, err_mu = quad(lambda z: pdf(z) * (z - mu) / sigma ** 2, lo, hi, points=[mu])
    d_sigma, err_sigma = quad(lambda z: pdf(z) * (((z - mu) / sigma) ** 2 - 1) / sigma, lo, hi,
                              points=[mu])
    i = int(np.argmax([abs(d_mu) / err_mu, abs(d_sigma) / err_sigma]))
    return make_claim(
        "estimators.score_mean_zero",
        "The score has mean zero under q, so subtracting a constant from f leaves the "
        "score-function estimator unbiased",
        "E_q[d ln q/dmu] = E_q[d ln q/dsigma] = 0   (quadrature)",
        (d_mu, d_sigma), (0.0, 0.0), [abs(d_mu), abs(d_sigma)][i], [err_mu, err_sigma][i],
        "QUADPACK error estimate plus 64 ulps of the integral of |f| (mass outside mu +- 40 sigma "
        "< 1e-300); the worse component is shown",
        details=dict(mu=mu, sigma=sigma), unit="abs",
        passed=abs(d_mu) <= err_mu and abs(d_sigma) <= err_sigma)


def estimators(seed=0):
    """Claim 6: for q = N(mu, sigma^2) with drawn (mu, sigma) and f in {z^2, sin z, e^z}, the
    score-function and reparameterization estimators of (dJ/dmu, dJ/dsigma), J = E_q[f], both agree
    with the exact gradient within 4 standard errors (``estimators.<f>.score`` / ``.reparam``;
    variances and their ratio in the details); plus ``estimators.entropy_path`` and
    ``estimators.score_mean_zero``.
    """
    rng = np.random.default_rng(seed)
    mu, sigma = float(rng.uniform(-1, 1)), float(rng.uniform(0.5, 1.5))
    records = []
    for name in TEST_FUNCTIONS:
        records += estimator_records(name, mu, sigma, rng)
    return records + [_entropy_path(seed), _score_mean_zero(seed)]
