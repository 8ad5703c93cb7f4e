"""A self-contained linear VAE with an exact ELBO and a hand-written gradient.

    p(z) = N(0, I_q),   p(x|z) = N(W z + b, sigma^2 I_D),   q(z|x) = N(V x + c, diag(tau^2))

with sigma = e^r (learned, or held fixed) and tau = e^t shared by all x. Because the decoder is
linear, E_q[ln p(x|z)] needs no sampling: with m = V x + c and e = x - W m - b,

    E_q[ln p(x|z)] = -D/2 ln 2 pi - D r - (||e||^2 + sum_j tau_j^2 ||w_j||^2) / (2 sigma^2)
    KL(q || p)     = 1/2 sum_j (m_j^2 + tau_j^2 - 1 - 2 t_j)

The term sum_j tau_j^2 ||w_j||^2 is E_eps ||W (tau * eps)||^2, what the reparameterization noise
z = m + tau * eps contributes. The mean ELBO over the rows of X is maximised by BFGS on the
hand-written gradient and then by Newton steps on a Hessian from central differences of that
gradient; the Hessian also bounds the distance to the maximum (``convergence``).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize

from ..numerics import LN_2PI


def shapes(d, q, learn_sigma=True):
    """Parameter names and shapes in the order of the flat vector."""
    out = [("W", (d, q)), ("b", (d,)), ("V", (q, d)), ("c", (q,)), ("t", (q,))]
    return out + [("r", ())] if learn_sigma else out


def unpack(theta, d, q, learn_sigma=True, r_fixed=0.0):
    """Flat vector -> dict of parameters (views); r is ``r_fixed`` when sigma is not learned."""
    params, start = {}, 0
    for name, shape in shapes(d, q, learn_sigma):
        size = int(np.prod(shape))
        params[name] = theta[start:start + size].reshape(shape)
        start += size
    if not learn_sigma:
        params["r"] = np.array(r_fixed)
    return params


def pack(params, learn_sigma=True):
    d, q = params["W"].shape
    return np.concatenate([np.ravel(params[name]) for name, _ in shapes(d, q, learn_sigma)])


def kl_terms(m, t):
    """Per-example KL(q || p) = 1/2 sum_j (m_j^2 + e^{2 t_j} - 1 - 2 t_j) and its gradients
    dKL/dm = m (per example), dKL/dt = e^{2t} - 1 (per example, the same for every x)."""
    tau2 = np.exp(2 * t)
    kl = 0.5 * np.sum(m * m + tau2 - 1 - 2 * t, axis=1)
    return kl, m, tau2 - 1


def noise_term(W, t):
    """E_eps ||W (tau * eps)||^2 = sum_j tau_j^2 ||w_j||^2 and its gradients (dW, dt)."""
    tau2 = np.exp(2 * t)
    col2 = np.sum(W * W, axis=0)
    return float(tau2 @ col2), 2 * W * tau2, 2 * tau2 * col2


def elbo_and_grad(theta, X, q, learn_sigma=True, r_fixed=0.0, beta=1.0):
    """Mean ELBO over the rows of X and its gradient with respect to the flat vector theta; with
    ``beta`` != 1 the KL is weighted by beta (the beta-VAE objective E_q[ln p(x|z)] - beta KL)."""
    n, d = X.shape
    p = unpack(theta, d, q, learn_sigma, r_fixed)
    W, b, V, c, t, r = p["W"], p["b"], p["V"], p["c"], p["t"], float(p["r"])
    s2 = math.exp(2 * r)
    m = X @ V.T + c                                   # (n, q)
    e = X - m @ W.T - b                               # (n, d)
    sq = np.sum(e * e, axis=1)
    noise, dnoise_dW, dnoise_dt = noise_term(W, t)
    kl, dkl_dm, dkl_dt = kl_terms(m, t)
    kl, dkl_dm, dkl_dt = beta * kl, beta * dkl_dm, beta * dkl_dt
    recon = -0.5 * d * LN_2PI - d * r - (sq + noise) / (2 * s2)
    elbo = float(np.mean(recon - kl))
    # backward: dL/de = -e / (s2 n); e = x - W m - b
    de = -e / (s2 * n)
    grads = {"W": -de.T @ m - dnoise_dW / (2 * s2), "b": -de.sum(axis=0)}
    dm = -de @ W - dkl_dm / n
    grads["V"] = dm.T @ X
    grads["c"] = dm.sum(axis=0)
    grads["t"] = -dnoise_dt / (2 * s2) - dkl_dt
    grads["r"] = np.array(-d + (float(np.mean(sq)) + noise) / s2)
    return elbo, pack(grads, learn_sigma)


def per_unit(theta, X, q, learn_sigma=True, r_fixed=0.0):
    """Per latent unit: mean KL over the rows of X, squared decoder column norm ||w_j||^2, and the
    activity Cov_x(E_q[z_j]) (Burda et al.'s active-unit statistic)."""
    p = unpack(theta, X.shape[1], q, learn_sigma, r_fixed)
    m = X @ p["V"].T + p["c"]
    kl = 0.5 * (np.mean(m * m, axis=0) + np.exp(2 * p["t"]) - 1 - 2 * p["t"])
    return kl, np.sum(p["W"] ** 2, axis=0), np.var(m, axis=0)


def initial_theta(rng, d, q, learn_sigma=True):
    """Small random weights, tau = 1 and (when learned) sigma = 1."""
    params = {"W": 0.1 * rng.standard_normal((d, q)), "b": np.zeros(d),
              "V": 0.1 * rng.standard_normal((q, d)), "c": np.zeros(q), "t": np.zeros(q),
              "r": np.zeros(())}
    return pack(params, learn_sigma)


def hessian(grad, theta, h_rel=1e-5):
    """Hessian of a function from central differences of its gradient, symmetrised."""
    H = np.empty((theta.size, theta.size))
    for i in range(theta.size):
        h = h_rel * max(1.0, abs(theta[i]))
        plus, minus = theta.copy(), theta.copy()
        plus[i] += h
        minus[i] -= h
        H[:, i] = (grad(plus) - grad(minus)) / (plus[i] - minus[i])
    return 0.5 * (H + H.T)


def fit(X, q, theta0, learn_sigma=True, r_fixed=0.0, newton_steps=4, beta=1.0):
    """Maximise the mean ELBO: BFGS on the hand-written gradient, then Newton steps. Returns
    theta and the convergence summary of ``convergence``."""
    def negative(v):
        value, g = elbo_and_grad(v, X, q, learn_sigma, r_fixed, beta)
        return -value, -g

    result = minimize(negative, theta0, jac=True, method="BFGS",
                      options=dict(gtol=1e-10, maxiter=20000))
    theta = result.x

    def grad(v):
        return elbo_and_grad(v, X, q, learn_sigma, r_fixed, beta)[1]

    for _ in range(newton_steps):
        H = hessian(grad, theta)
        eigenvalues = np.linalg.eigvalsh(H)
        if eigenvalues.max() >= 0:                    # not at a strict maximum: no Newton step
            break
        theta = theta - np.linalg.solve(H, grad(theta))
    return theta, convergence(grad, theta)


def convergence(grad, theta):
    """How far theta can be from the maximum of a function that is strictly concave near it.

    With g the gradient and mu the smallest eigenvalue of -H (H the Hessian), a quadratic model
    puts the maximum at distance |g| / mu and the function's value there at most |g|^2 / (2 mu)
    above the current one; both are doubled here for the terms beyond second order. mu <= 0 (a
    saddle or a flat direction) gives an infinite bound.
    """
    g = grad(theta)
    mu = float(-np.linalg.eigvalsh(hessian(grad, theta)).max())
    norm = float(np.linalg.norm(g))
    if mu <= 0:
        return dict(grad_norm=norm, curvature=mu, distance=math.inf, value_gap=math.inf)
    return dict(grad_norm=norm, curvature=mu, distance=2 * norm / mu,
                value_gap=norm * norm / mu)


def jacobian_norm(f, theta, h_rel=1e-5):
    """Spectral norm of the Jacobian of a vector function f(theta), by central differences: the
    first-order sensitivity that turns a distance in theta into a bound on f."""
    cols = []
    for i in range(theta.size):
        h = h_rel * max(1.0, abs(theta[i]))
        plus, minus = theta.copy(), theta.copy()
        plus[i] += h
        minus[i] -= h
        cols.append((np.ravel(f(plus)) - np.ravel(f(minus))) / (plus[i] - minus[i]))
    return float(np.linalg.norm(np.stack(cols, axis=1), 2))
