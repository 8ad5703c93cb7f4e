"""Two Monte Carlo estimators of the gradient of an expectation under q = N(mu, sigma^2).

For J(mu, sigma) = E_{z ~ q}[f(z)] there are two unbiased estimators from samples eps_i ~ N(0, 1),
z_i = mu + sigma eps_i:

score function (REINFORCE, likelihood ratio): differentiate the density,
    dJ/dtheta = E_q[f(z) d ln q(z)/dtheta],   d ln q/dmu = (z - mu)/sigma^2 = eps/sigma,
                                              d ln q/dsigma = ((z - mu)^2/sigma^2 - 1)/sigma
                                                            = (eps^2 - 1)/sigma
    needs only values of f;

reparameterization (pathwise): differentiate through z = mu + sigma eps,
    dJ/dmu = E[f'(z) dz/dmu] = E[f'(z)],   dJ/dsigma = E[f'(z) dz/dsigma] = E[f'(z) eps]
    needs f', and usually has a much smaller variance.

Both return a :class:`GradientEstimate`: the mean over n samples, the per-sample variance and the
standard error sqrt(variance / n), each a pair (d/dmu, d/dsigma).
"""
from __future__ import annotations

import numbers
from typing import Callable, NamedTuple

import numpy as np

from .._validate import check_int, check_positive, check_rng


class GradientEstimate(NamedTuple):
    """Monte Carlo estimate of (dJ/dmu, dJ/dsigma).

    mean : (2,) the estimate;  variance : (2,) per-sample variance (ddof = 1);
    stderr : (2,) standard error of the mean, sqrt(variance / n);  n : number of samples
    """
    mean: np.ndarray
    variance: np.ndarray
    stderr: np.ndarray
    n: int


def _summarize(per_sample: np.ndarray) -> GradientEstimate:
    """per_sample : (n, 2) single-sample estimates -> their mean, variance and standard error."""
    n = per_sample.shape[0]
    variance = per_sample.var(axis=0, ddof=1)
    return GradientEstimate(per_sample.mean(axis=0), variance, np.sqrt(variance / n), n)


def _check(mu, sigma, n, rng):
    if isinstance(mu, bool) or not isinstance(mu, numbers.Real) or not np.isfinite(mu):
        raise ValueError(f"mu must be a finite real number, got {mu!r}")
    return float(mu), check_positive("sigma", sigma), check_int("n", n, minimum=2), \
        check_rng("rng", rng)


def _evaluate(name, g, z):
    if not callable(g):
        raise ValueError(f"{name} must be a vectorized callable, got {type(g).__name__}")
    try:
        with np.errstate(all="ignore"):     # a non-finite value is reported just below
            values = np.asarray(g(z), dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must return real numbers for an array of samples: {exc}") from None
    if values.shape != z.shape:
        raise ValueError(f"{name} must map an array of samples to an array of the same shape, "
                         f"got {values.shape} for {z.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"{name} returned NaN or inf at some samples z (the estimate would be "
                         "NaN): it must be finite on the support of N(mu, sigma^2)")
    return values


def score_function_gradient(f: Callable, mu: float, sigma: float, n: int,
                            rng: np.random.Generator) -> GradientEstimate:
    """Score-function (REINFORCE) estimate of d/d(mu, sigma) E_{N(mu, sigma^2)}[f(z)].

    g_i = f(z_i) * (eps_i / sigma, (eps_i^2 - 1) / sigma),   z_i = mu + sigma eps_i

    Parameters
    ----------
    f : vectorized callable, f(z) for an array z of samples
    mu, sigma : the parameters of q (sigma > 0)
    n : number of samples (>= 2, for the variance)
    rng : numpy.random.Generator drawing eps

    Returns
    -------
    GradientEstimate
    """
    mu, sigma, n, rng = _check(mu, sigma, n, rng)
    eps = rng.standard_normal(n)
    fz = _evaluate("f", f, mu + sigma * eps)
    score = np.stack([eps / sigma, (eps * eps - 1) / sigma], axis=1)   # d ln q / d(mu, sigma)
    return _summarize(fz[:, None] * score)


def reparameterization_gradient(f: Callable, df: Callable, mu: float, sigma: float, n: int,
                                rng: np.random.Generator) -> GradientEstimate:
    """Reparameterization (pathwise) estimate of d/d(mu, sigma) E_{N(mu, sigma^2)}[f(z)].

    g_i = f'(z_i) * (dz/dmu, dz/dsigma) = f'(z_i) * (1, eps_i),   z_i = mu + sigma eps_i

    Parameters
    ----------
    f : vectorized callable (unused by the estimate; kept so both estimators take the same f)
    df : vectorized derivative f'(z)
    mu, sigma, n, rng : as for :func:`score_function_gradient`

    Returns
    -------
    GradientEstimate
    """
    mu, sigma, n, rng = _check(mu, sigma, n, rng)
    eps = rng.standard_normal(n)
    dfz = _evaluate("df", df, mu + sigma * eps)
    return _summarize(np.stack([dfz, dfz * eps], axis=1))
