"""Claims 1-3: the closed-form KL(N(mu, sigma^2) || N(0, 1)), its three integrals, and its gradient.

    KL = E_q[ln q(z) - ln p(z)]
       = 1/2 E_q[-ln sigma^2 - (z - mu)^2 / sigma^2 + z^2]          (the ln 2 pi terms cancel)
       = 1/2 (-ln sigma^2 - 1 + mu^2 + sigma^2)                        (three Gaussian integrals)
"""
from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar

from .. import ops
from ..numerics import central_difference
from ._record import EPS, MC_SIGMAS, make_claim, monte_carlo, quad

N_DRAWS = 5           # (mu, sigma) pairs per quadrature claim
N_MC = 200_000        # Monte Carlo samples for the KL estimates
HALF_WIDTH = 40.0     # integrate q over mu +- 40 sigma: the mass outside is below 1e-300


def _draw_mu_sigma(rng, size):
    mu = rng.uniform(-2.0, 2.0, size)
    sigma = np.exp(rng.uniform(np.log(0.2), np.log(3.0), size))
    return mu, sigma


def gaussian_pdf(z, mu, sigma):
    """N(z; mu, sigma^2)."""
    return math.exp(-0.5 * ((z - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


def log_ratio_q_p(z, mu, sigma):
    """ln q(z) - ln p(z) = -ln sigma - (z - mu)^2 / 2 sigma^2 + z^2 / 2, q = N(mu, sigma^2)."""
    return -np.log(sigma) - 0.5 * ((z - mu) / sigma) ** 2 + 0.5 * z * z


def _expectation(g, mu, sigma):
    """E_q[g(z)] by quadrature over mu +- 40 sigma, with its error bound."""
    return quad(lambda z: gaussian_pdf(z, mu, sigma) * g(z),
                mu - HALF_WIDTH * sigma, mu + HALF_WIDTH * sigma, points=[mu])


QUAD_REASON = ("QUADPACK's error estimate of the quadrature plus 64 ulps of the integral of |f| "
               "for rounding, plus 4 ulps of the closed form; the Gaussian mass outside "
               "mu +- 40 sigma (< 1e-300) is negligible. Checked for each drawn pair; the worst "
               "pair is shown.")


def _quadrature_record(name, statement, equation, pairs, integrand, closed_form):
    """One record over several (mu, sigma): quad of E_q[integrand] against the closed form."""
    rows = []
    for mu, sigma in pairs:
        value, bound = _expectation(lambda z: integrand(z, mu, sigma), mu, sigma)
        exact = closed_form(mu, sigma)
        rows.append((mu, sigma, value, exact, abs(value - exact), bound + 4 * EPS * abs(exact)))
    i = int(np.argmax([r[4] / r[5] for r in rows]))
    mu, sigma, value, exact, error, tol = rows[i]
    return make_claim(name, statement, equation, value, exact, error, tol, QUAD_REASON,
                      unit="abs",
                      details={"draws": [dict(mu=r[0], sigma=r[1], quadrature=r[2], exact=r[3],
                                              error=r[4], tolerance=r[5]) for r in rows],
                               "shown": dict(mu=mu, sigma=sigma)},
                      passed=all(r[4] <= r[5] for r in rows))


def kl_integrals(seed=0):
    """Claim 1: the three Gaussian integrals behind the closed-form KL, by quadrature.

    For q = N(mu, sigma^2) and drawn (mu, sigma):
        E_q[-ln sigma^2]               = -ln sigma^2      (q integrates to 1)
        E_q[z^2]                       = mu^2 + sigma^2   (second moment)
        E_q[-(z - mu)^2 / sigma^2]     = -1               (standardized second moment)
    Returns three records, ``kl_integrals.log_var``, ``.second_moment``, ``.standardized``.
    """
    rng = np.random.default_rng(seed)
    pairs = list(zip(*_draw_mu_sigma(rng, N_DRAWS)))
    return [
        _quadrature_record(
            "kl_integrals.log_var", "E_q[-ln sigma^2] is -ln sigma^2: q is normalized",
            "int N(z; mu, sigma^2) (-ln sigma^2) dz = -ln sigma^2", pairs,
            lambda z, mu, s: -math.log(s * s), lambda mu, s: -math.log(s * s)),
        _quadrature_record(
            "kl_integrals.second_moment", "E_q[z^2] is the second moment mu^2 + sigma^2",
            "int N(z; mu, sigma^2) z^2 dz = mu^2 + sigma^2", pairs,
            lambda z, mu, s: z * z, lambda mu, s: mu * mu + s * s),
        _quadrature_record(
            "kl_integrals.standardized", "E_q[-(z - mu)^2 / sigma^2] is -1",
            "int N(z; mu, sigma^2) (-(z - mu)^2 / sigma^2) dz = -1", pairs,
            lambda z, mu, s: -((z - mu) / s) ** 2, lambda mu, s: -1.0),
    ]


def kl_closed_form(seed=0):
    """Claim 2: KL(N(mu, diag sigma^2) || N(0, I)) in closed form = quadrature = Monte Carlo.

        1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - ln sigma_j^2)          (vae_np.ops.kl_forward)
          = sum_j int q_j(z) [ln q_j(z) - ln p(z)] dz                (quadrature per dimension)
          = E_q[ln q(z) - ln p(z)] ~ 1/n sum_i [ln q(z_i) - ln p(z_i)]
    with z_i ~ q drawn directly, and again with reparameterized z_i = mu + sigma * eps_i
    (vae_np.ops.reparameterize_forward). Records ``kl_closed_form.quadrature``, ``.monte_carlo``,
    ``.reparameterized``.
    """
    rng = np.random.default_rng(seed)
    Z = 3
    mu = rng.standard_normal(Z)
    sigma = np.exp(rng.uniform(np.log(0.3), np.log(2.0), Z))
    closed = float(ops.kl_forward(mu[None], sigma[None])[0][0])

    parts = [_expectation(lambda z, m=m, s=s: log_ratio_q_p(z, m, s), m, s)
             for m, s in zip(mu, sigma)]
    quad_value = sum(v for v, _ in parts)
    quad_bound = sum(b for _, b in parts) + 8 * Z * EPS * abs(closed)
    records = [make_claim(
        "kl_closed_form.quadrature",
        "The library's closed-form KL equals the integral that defines it",
        "1/2 sum(mu^2 + sigma^2 - 1 - ln sigma^2) = sum_j int q_j ln(q_j / p) dz",
        closed, quad_value, abs(closed - quad_value), quad_bound,
        "QUADPACK error estimates summed over the dimensions, plus rounding of the closed form",
        unit="nats", details=dict(mu=mu, sigma=sigma))]

    direct = rng.normal(mu, sigma, size=(N_MC, Z))
    eps = rng.standard_normal((N_MC, 1, Z))
    reparam, _ = ops.reparameterize_forward(mu[None], sigma[None], eps)
    records.append(monte_carlo_record(
        "kl_closed_form.monte_carlo", "z ~ N(mu, sigma^2) drawn directly", closed,
        log_ratio_q_p(direct, mu, sigma).sum(axis=1)))
    records.append(monte_carlo_record(
        "kl_closed_form.reparameterized",
        "z = mu + sigma * eps, eps ~ N(0, I) (ops.reparameterize_forward)", closed,
        log_ratio_q_p(reparam[:, 0, :], mu, sigma).sum(axis=1)))
    return records


def monte_carlo_record(name, how, closed, samples):
    """Record that the closed-form KL equals the mean of the samples ln q(z_i) - ln p(z_i) within
    MC_SIGMAS standard errors (``samples`` : (n,) one value per draw z_i)."""
    mean, se = monte_carlo(samples)
    n = len(samples)
    return make_claim(
        name, f"The closed-form KL equals a Monte Carlo estimate of E_q[ln q - ln p], {how}",
        "1/2 sum(mu^2 + sigma^2 - 1 - ln sigma^2) = 1/n sum_i ln q(z_i)/p(z_i) +- SE",
        closed, float(mean), abs(closed - mean), MC_SIGMAS * se,
        f"{MC_SIGMAS:g} standard errors of the {n}-sample mean (SE = sample std / sqrt(n)); "
        "a correct estimator exceeds it with probability 6e-5", unit="nats",
        details=dict(n=n, standard_error=se, error_in_se=abs(closed - mean) / se))


# --------------------------------------------------------------------------- claim 3
def compare_gradients(name, statement, equation, analytic, numeric, bound, factor=1.0,
                      details=None, reason=None):
    """Record that ``analytic`` equals ``factor`` times a finite-difference gradient.

    Passes when every component satisfies |analytic_i - factor numeric_i| <= factor bound_i, the
    difference quotient's own error bound (see ``central_difference``). The shown error and
    tolerance are those of the component closest to failing (absolute, in the gradient's units);
    lhs is the measured ratio <analytic, numeric> / <numeric, numeric> and rhs the claimed factor.
    """
    a = np.ravel(np.asarray(analytic, dtype=float))
    n = np.ravel(np.asarray(numeric, dtype=float))
    tol = abs(factor) * np.ravel(np.asarray(bound, dtype=float)) + 4 * EPS * np.abs(a)
    dev = np.abs(a - factor * n)
    i = int(np.argmax(dev / tol))
    ratio = float(a @ n / (n @ n))
    return make_claim(
        name, statement, equation, ratio, factor, dev[i], tol[i],
        reason or "per component: the central difference's truncation (|D(2h) - D(h)|) plus "
        "rounding (8 ulps of f / 2h), times the claimed factor; the component closest to failing "
        "is shown",
        details=dict(details or {}, ratio=ratio, components=a.size,
                     max_abs_difference=float(dev.max()), worst_component=i,
                     analytic=a, finite_difference=n, finite_difference_bound=tol),
        passed=bool(np.all(dev <= tol)), relation="ratio", unit="abs")


def _argmax_record(name, statement, equation, f, bounds, exact):
    """Locate the maximum of f by Brent's bounded search and compare it with ``exact``."""
    xatol = 1e-12
    res = minimize_scalar(lambda t: -f(t), bounds=bounds, method="bounded",
                          options=dict(xatol=xatol))
    x = float(res.x)
    tol = 2 * (math.sqrt(EPS) * abs(x) + xatol / 3) + 4 * math.sqrt(EPS)
    return make_claim(
        name, statement, equation, x, exact, abs(x - exact), tol,
        "Brent's bounded search stops within 2 (sqrt(eps)|x| + xatol/3) of the maximizer, plus "
        "4 sqrt(eps): a maximum is flat (f drops by delta^2/2), so function values cannot place it "
        "closer than ~sqrt(eps)",
        details=dict(evaluations=int(res.nfev), f_at_max=f(x)), unit="abs")


def kl_gradient(seed=0):
    """Claim 3: the gradient of the KL, the doubled expression, and the maxima of its two pieces.

    * ``kl_gradient.library``: vae_np.ops.kl_backward gives dKL/dmu = mu, dKL/dsigma =
      sigma - 1/sigma, equal to central differences of vae_np.ops.kl_forward (ratio 1).
    * ``kl_gradient.doubled_expression``: 2(1/sigma - sigma) grad sigma - 2 mu grad mu equals twice
      the central-difference gradient of -KL = 1/2 (1 + ln sigma^2 - mu^2 - sigma^2) (ratio 2): it
      is the gradient of the bracket without its 1/2.
    * ``kl_gradient.sigma_piece``: 1 + ln sigma^2 - sigma^2 is maximized at sigma^2 = 1.
    * ``kl_gradient.mu_piece``: -mu^2 is maximized at mu = 0.
    """
    rng = np.random.default_rng(seed)
    B, Z = 4, 3
    mu, sigma = _draw_mu_sigma(rng, (B, Z))
    kl, cache = ops.kl_forward(mu, sigma)
    dmu, dsigma = ops.kl_backward(np.ones(B), cache)
    n = mu.size

    def total_kl(v):
        return float(np.sum(ops.kl_forward(v[:n].reshape(B, Z), v[n:].reshape(B, Z))[0]))

    v = np.concatenate([mu.ravel(), sigma.ravel()])
    fd, bound = central_difference(total_kl, v)
    library = compare_gradients(
        "kl_gradient.library",
        "The library's KL gradient (ops.kl_backward) equals central differences of ops.kl_forward",
        "(dKL/dmu, dKL/dsigma) = (mu, sigma - 1/sigma) = FD gradient of KL   [ratio lhs = 1]",
        np.concatenate([dmu.ravel(), dsigma.ravel()]), fd, bound, 1.0,
        details=dict(batch=B, z_dim=Z, mu=mu, sigma=sigma,
                     order="analytic and finite_difference list dKL/dmu, then dKL/dsigma, "
                           "row-major over (batch, z)"))
    expression = np.concatenate([(-2 * mu).ravel(), (2 * (1 / sigma - sigma)).ravel()])
    ratio = float(expression @ -fd / (fd @ fd))
    doubled = compare_gradients(
        "kl_gradient.doubled_expression",
        "2(1/sigma - sigma) grad sigma - 2 mu grad mu is twice the gradient of -KL "
        "(it drops the 1/2)",
        "2(1/sigma - sigma) grad sigma - 2 mu grad mu = 2 x FD gradient of -KL   [ratio lhs = 2]",
        expression, -fd, bound, 2.0,
        details=dict(mu=mu, sigma=sigma,
                     note=f"measured ratios to the finite-difference gradient: library "
                          f"{library.lhs:.10f} (of KL), 2(1/sigma - sigma) grad sigma "
                          f"- 2 mu grad mu {ratio:.10f} (of -KL)"))
    sigma_piece = _argmax_record(
        "kl_gradient.sigma_piece", "1 + ln sigma^2 - sigma^2 is maximized at sigma^2 = 1",
        "argmax_v (1 + ln v - v) = 1   (d/dv = 1/v - 1, d2/dv2 = -1/v^2 < 0)",
        lambda t: 1 + math.log(t) - t, (0.05, 7.0), 1.0)
    mu_piece = _argmax_record(
        "kl_gradient.mu_piece", "-mu^2 is maximized at mu = 0",
        "argmax_mu (-mu^2) = 0", lambda t: -t * t, (-3.0, 5.0), 0.0)
    return [library, doubled, sigma_piece, mu_piece]
