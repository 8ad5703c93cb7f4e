"""Claim 6: score-function and reparameterization estimators of grad E_q[f(z)], q = N(mu, sigma^2).

Both are unbiased; they differ in variance (vae_np.estimators). Each check compares the Monte Carlo
mean with the exact gradient of the closed-form expectation, in units of its standard error.
Also: E_q[ln q] does not depend on the decoder's theta, so its theta-gradient is zero, and the
score d ln q / d(mu, sigma) has mean zero under q.
"""
from __future__ import annotations

import math

import numpy as np

from ..estimators import reparameterization_gradient, score_function_gradient
from ..model import VAE
from ._record import MC_SIGMAS, central_difference, make_claim, quad

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
            details=dict(mu=mu, sigma=sigma, n=n, variance=est.variance, stderr=est.stderr,
                         variance_ratio_score_over_reparam=ratio,
                         note=(f"{f_name}: per-sample variance (d/dmu, d/dsigma) score "
                               f"({est.variance[0]:.4g}, {est.variance[1]:.4g}), reparam "
                               f"({estimates['reparam'].variance[0]:.4g}, "
                               f"{estimates['reparam'].variance[1]:.4g}); ratio "
                               f"{ratio[0]:.3g}, {ratio[1]:.3g}")
                         if kind == "score" else None)))
    return records


def _entropy_theta(seed):
    """grad_theta E_q[ln q(z|x)] = 0: perturb every decoder parameter, E_q[ln q] does not move."""
    rng = np.random.default_rng(seed)
    model = VAE(3, (4,), 2, "tanh", "gaussian", dtype=np.float64, seed=seed)
    x = rng.standard_normal((5, 3))
    eps = rng.standard_normal((64, 5, 2))        # frozen noise: E_q by a fixed sample average

    def expected_log_q(flat):
        saved = model.flat.copy()
        model.flat[...] = flat
        try:
            mu, sigma = model.encode(x)
            z = mu + sigma * eps
            log_q = np.sum(-0.5 * ((z - mu) / sigma) ** 2 - np.log(sigma)
                           - 0.5 * math.log(2 * math.pi), axis=-1)
            return float(log_q.mean())
        finally:
            model.flat[...] = saved

    e = model.n_encoder
    theta_index = np.arange(e, model.flat.size)
    grad, _ = central_difference(lambda v: expected_log_q(_with(model.flat, theta_index, v)),
                                 model.flat[theta_index])
    phi_grad, _ = central_difference(lambda v: expected_log_q(_with(model.flat, np.arange(e), v)),
                                     model.flat[:e])
    lhs = float(np.max(np.abs(grad)))
    return make_claim(
        "estimators.entropy_theta",
        "E_q[ln q_phi(z|x)] does not depend on the decoder's theta: its theta-gradient is zero "
        "(every decoder parameter of a VAE 3-4-2, by central differences)",
        "max_theta |d/dtheta E_q[ln q_phi(z|x)]| = 0",
        lhs, 0.0, lhs, 0.0,
        "exact: the function never reads theta, so every difference quotient is exactly 0 in "
        "floating point; any nonzero value would mean q depends on theta",
        details=dict(theta_parameters=int(theta_index.size),
                     max_abs_phi_gradient=float(np.max(np.abs(phi_grad))),
                     note="for contrast, the phi-gradient of E_q[ln q] is nonzero "
                          f"(max |d/dphi| = {float(np.max(np.abs(phi_grad))):.3g})"))


def _with(flat, index, values):
    out = flat.copy()
    out[index] = values
    return out


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
        details=dict(mu=mu, sigma=sigma),
        passed=abs(d_mu) <= err_mu and abs(d_sigma) <= err_sigma)


def estimators(seed=0):
    """Claim 6: for q = N(mu, sigma^2) with drawn (mu, sigma) and f in {z^2, sin z, e^z}, the
    score-function and reparameterization estimators of (dJ/dmu, dJ/dsigma), J = E_q[f], both agree
    with the exact gradient within 4 standard errors (``estimators.<f>.score`` / ``.reparam``;
    variances and their ratio in the details); plus ``estimators.entropy_theta`` and
    ``estimators.score_mean_zero``.
    """
    rng = np.random.default_rng(seed)
    mu, sigma = float(rng.uniform(-1, 1)), float(rng.uniform(0.5, 1.5))
    records = []
    for name in TEST_FUNCTIONS:
        records += estimator_records(name, mu, sigma, rng)
    return records + [_entropy_theta(seed), _score_mean_zero(seed)]
