"""Claim 8: the linear VAE on probabilistic-PCA data closes the ELBO gap at the maximum likelihood.

pPCA (Tipping & Bishop 1999): x = W z + m + noise, z ~ N(0, I_q), noise ~ N(0, sigma^2 I_D), so
x ~ N(m, C) with C = W W^T + sigma^2 I. With S the sample covariance, eigenvalues l_1 >= ... >= l_D
and eigenvectors U, the maximum of the mean log-likelihood is attained at

    m = x_bar,  sigma^2_ML = 1/(D - q) sum_{j > q} l_j,  W_ML = U_q (L_q - sigma^2_ML I)^(1/2) R

    ln p_ML / N = -1/2 [ D ln 2 pi + sum_{j <= q} ln l_j + (D - q) ln sigma^2_ML + D ].

The exact posterior p(z|x) = N(M^-1 W^T (x - m), sigma^2 M^-1), M = W^T W + sigma^2 I, is Gaussian
with a mean linear in x, and diagonal when W's columns are orthogonal (one of the ML solutions), so
a VAE with a linear encoder and a diagonal q can make the ELBO equal to ln p_ML. The linear VAE of
``linear_model`` (exact ELBO, hand-written gradient, sigma learned from sigma = 1) reaches it.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.stats import multivariate_normal

from ..numerics import LN_2PI, central_difference
from . import linear_model as lm
from ._record import EPS, make_claim, sum_rounding
from .kl import compare_gradients

D, Q, N = 5, 2, 2000
NOISE = 0.5
N_PERTURBATIONS = 20


def ppca_data(rng, d=D, q=Q, n=N, noise=NOISE):
    """n draws of x = W z + m + noise * e with a random W (columns scaled 2 and 1), m ~ N(0, I)."""
    W = rng.standard_normal((d, q)) * np.linspace(2.0, 1.0, q)
    m = rng.standard_normal(d)
    X = rng.standard_normal((n, q)) @ W.T + m + noise * rng.standard_normal((n, d))
    return X, W


def ppca_ml(X, q):
    """Tipping & Bishop's closed-form maximum-likelihood pPCA fit of the rows of X.

    Returns dict: mean, eigenvalues (descending), U (D, D) eigenvectors, sigma2, W (D, q) with
    orthogonal columns, log_likelihood (mean over examples, nats).
    """
    n, d = X.shape
    mean = X.mean(axis=0)
    S = (X - mean).T @ (X - mean) / n
    eigenvalues, U = np.linalg.eigh(S)
    eigenvalues, U = eigenvalues[::-1], U[:, ::-1]
    sigma2 = float(eigenvalues[q:].mean())
    W = U[:, :q] * np.sqrt(eigenvalues[:q] - sigma2)
    loglik = -0.5 * (d * LN_2PI + np.sum(np.log(eigenvalues[:q])) + (d - q) * math.log(sigma2) + d)
    return dict(mean=mean, eigenvalues=eigenvalues, U=U, sigma2=sigma2, W=W,
                log_likelihood=float(loglik))


def gaussian_loglik(X, mean, C):
    """Mean over rows of ln N(x; mean, C) (scipy.stats), and the per-row values."""
    values = multivariate_normal(mean, C).logpdf(X)
    return float(values.mean()), values


def ml_perturbations(X, ml, rng, n=N_PERTURBATIONS, scale=0.05):
    """Mean log-likelihoods at n random points near (W_ML, sigma^2_ML)."""
    out = []
    for _ in range(n):
        Wp = ml["W"] + scale * rng.standard_normal(ml["W"].shape)
        s2 = ml["sigma2"] * math.exp(scale * rng.standard_normal())
        out.append(gaussian_loglik(X, ml["mean"], Wp @ Wp.T + s2 * np.eye(X.shape[1]))[0])
    return np.array(out)


def linear_vae(seed=0):
    """Claim 8 on D = 5, q = 2, N = 2000 pPCA data.

    * ``linear_vae.closed_form``: Tipping & Bishop's closed-form ln p_ML equals the Gaussian
      log-density of the data under (x_bar, W_ML W_ML^T + sigma^2_ML I) (scipy.stats).
    * ``linear_vae.ml_is_maximum``: 20 random nearby (W, sigma^2) all have a lower likelihood.
    * ``linear_vae.gradient``: the linear VAE's hand-written ELBO gradient = central differences.
    * ``linear_vae.elbo``: trained with sigma learned from sigma = 1, its ELBO = ln p_ML.
    * ``linear_vae.sigma``: the learned sigma^2 = sigma^2_ML, the mean of the discarded eigenvalues.
    * ``linear_vae.decoder_covariance``: W W^T + sigma^2 I = W_ML W_ML^T + sigma^2_ML I.
    """
    rng = np.random.default_rng(seed)
    X, W_true = ppca_data(rng)
    ml = ppca_ml(X, Q)
    C = ml["W"] @ ml["W"].T + ml["sigma2"] * np.eye(D)
    direct, per_row = gaussian_loglik(X, ml["mean"], C)
    tol_cf = sum_rounding(per_row) / N + 16 * D * EPS * np.linalg.cond(C) * (1 + abs(direct))
    eig_err = 16 * D * EPS * float(ml["eigenvalues"][0])       # of each computed eigenvalue
    records = [make_claim(
        "linear_vae.closed_form",
        "Tipping & Bishop's closed-form pPCA maximum log-likelihood equals the Gaussian "
        f"log-density of the data at (W_ML, sigma^2_ML) (D = {D}, q = {Q}, N = {N})",
        "-1/2 [D ln 2 pi + sum_{j<=q} ln l_j + (D-q) ln sigma^2_ML + D] = "
        "1/N sum_n ln N(x_n; x_bar, W W^T + sigma^2 I)",
        ml["log_likelihood"], direct, abs(ml["log_likelihood"] - direct), tol_cf,
        "rounding of the N-term mean (2 (n + 4) eps sum|terms| / N) plus 16 D eps cond(C) "
        "(1 + |ln p|) for the Cholesky solve and log-determinant", unit="nats",
        details=dict(sigma2_ml=ml["sigma2"], eigenvalues=ml["eigenvalues"]))]
    perturbed = ml_perturbations(X, ml, rng)
    best = float(perturbed.max())

    def loglik(v):                       # v = (W flattened, ln sigma^2)
        Wv = v[:-1].reshape(D, Q)
        return gaussian_loglik(X, ml["mean"], Wv @ Wv.T + math.exp(v[-1]) * np.eye(D))[0]

    grad_ml, bound_ml = central_difference(loglik, np.append(ml["W"].ravel(),
                                                              math.log(ml["sigma2"])))
    worst = int(np.argmax(np.abs(grad_ml) / bound_ml))
    records.append(make_claim(
        "linear_vae.ml_is_maximum",
        "The closed-form (W_ML, sigma^2_ML) is a maximum of the mean log-likelihood: its gradient "
        f"in (W, ln sigma^2) vanishes, and {N_PERTURBATIONS} random nearby points "
        "(W + 0.05 N(0, 1), sigma^2 e^{0.05 N(0, 1)}) are all lower",
        "d/d(W, ln sigma^2) 1/N sum_n ln N(x_n; x_bar, W W^T + sigma^2 I) = 0 at W_ML, "
        "sigma^2_ML  (and every perturbation <= ln p_ML)",
        float(grad_ml[worst]), 0.0, abs(float(grad_ml[worst])), float(bound_ml[worst]),
        "per component: the central difference's truncation and rounding bound (the component "
        "closest to failing is shown); the perturbations must not exceed ln p_ML by more than "
        "the rounding of both log-likelihoods",
        passed=bool(np.all(np.abs(grad_ml) <= bound_ml) and best <= direct + 2 * tol_cf),
        unit="nats",
        details=dict(perturbed=perturbed, gradient=grad_ml, bound=bound_ml,
                     note=f"{N_PERTURBATIONS} perturbations lose "
                          f"{direct - best:.3g} .. {direct - perturbed.min():.3g} nats/example")))

    # the hand-written gradient of the linear VAE's exact ELBO, at a random point
    theta = lm.initial_theta(rng, D, Q)
    theta = theta + 0.3 * rng.standard_normal(theta.size)
    _, analytic = lm.elbo_and_grad(theta, X, Q)
    fd, bound = central_difference(lambda v: lm.elbo_and_grad(v, X, Q)[0], theta)
    records.append(compare_gradients(
        "linear_vae.gradient",
        "The linear VAE's hand-written gradient of its exact mean ELBO (W, b, V, c, ln tau, "
        "ln sigma) equals central differences",
        "d ELBO / d(W, b, V, c, ln tau, ln sigma) = FD gradient   [ratio lhs = 1]",
        analytic, fd, bound, 1.0, details=dict(parameters=int(theta.size))))

    theta, conv = lm.fit(X, Q, lm.initial_theta(rng, D, Q))
    elbo, _ = lm.elbo_and_grad(theta, X, Q)
    p = lm.unpack(theta, D, Q)
    sigma2 = math.exp(2 * float(p["r"]))
    rounding = 2 * (N + 4) * EPS * (abs(elbo) + 1)
    gap = ml["log_likelihood"] - elbo
    fixed, _ = lm.fit(X, Q, lm.initial_theta(rng, D, Q, learn_sigma=False), learn_sigma=False)
    unit_gap = ml["log_likelihood"] - lm.elbo_and_grad(fixed, X, Q, learn_sigma=False)[0]
    convergence_reason = (
        f"the distance to the maximum bounded from the final gradient (|g| = "
        f"{conv['grad_norm']:.1e}) and the curvature (smallest eigenvalue of -Hessian, "
        f"{conv['curvature']:.3g}, central differences of the gradient): 2 |g| / mu in the "
        "parameters, |g|^2 / mu in the ELBO, times the quantity's sensitivity")
    records.append(make_claim(
        "linear_vae.elbo",
        "The linear VAE trained with a learned decoder sigma (from sigma = 1) reaches Tipping & "
        "Bishop's maximum log-likelihood: its exact ELBO per example equals ln p_ML",
        "max ELBO(W, b, V, c, tau, sigma) / N = ln p_ML / N",
        elbo, ml["log_likelihood"], abs(gap), conv["value_gap"] + rounding + tol_cf,
        convergence_reason + "; plus the rounding of the N-term means", unit="nats",
        details=dict(convergence=conv, gap=gap, sigma_fixed_at_1_gap=unit_gap,
                     note=f"learned sigma: ln p_ML - ELBO = {gap:.1e} nats/example; with sigma "
                          f"fixed at 1 the best ELBO is {unit_gap:.3f} nats/example lower")))
    sens_sigma = 2 * sigma2 * conv["distance"]
    records.append(make_claim(
        "linear_vae.sigma",
        "The learned decoder variance is the ML one, the mean of the D - q discarded eigenvalues",
        "sigma^2 = e^{2r} (learned) = 1/(D - q) sum_{j>q} l_j",
        sigma2, ml["sigma2"], abs(sigma2 - ml["sigma2"]), sens_sigma + 8 * EPS * sigma2 + eig_err,
        convergence_reason + " (d sigma^2/dr = 2 sigma^2); plus the eigenvalues' rounding, "
        "16 D eps l_1", unit="abs", details=dict(convergence=conv)))

    def model_cov(v):
        pv = lm.unpack(v, D, Q)
        return pv["W"] @ pv["W"].T + math.exp(2 * float(pv["r"])) * np.eye(D)

    C_vae = model_cov(theta)
    norm_c = float(np.linalg.norm(C))
    rel = float(np.linalg.norm(C_vae - C)) / norm_c
    sens = lm.jacobian_norm(model_cov, theta) * conv["distance"] / norm_c
    records.append(make_claim(
        "linear_vae.decoder_covariance",
        "The trained linear VAE's model distribution is the ML one: its covariance W W^T + "
        "sigma^2 I equals C_ML (which also puts W in the principal subspace, at the ML scale)",
        "||W W^T + sigma^2 I - C_ML||_F / ||C_ML||_F = 0",
        rel, 0.0, rel, sens + eig_err / norm_c * D + 16 * D * EPS,
        convergence_reason + " (the Jacobian's spectral norm of theta -> W W^T + sigma^2 I); "
        "plus rounding of the eigenvectors and the products", unit="rel",
        details=dict(C_vae=C_vae, C_ml=C,
                     sin_angle_sample_vs_generating=sin_largest_principal_angle(W_true,
                                                                                ml["U"][:, :Q]))))
    return records


def sin_largest_principal_angle(A, B):
    """sin of the largest principal angle between the column spaces of A and B (both D x q)."""
    qa, _ = np.linalg.qr(A)
    qb, _ = np.linalg.qr(B)
    return float(np.linalg.norm(qb - qa @ (qa.T @ qb), 2))
