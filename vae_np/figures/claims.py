"""Figures of the derivation's claims (``vae_np.derivations``): what a student would rather look at
than read. Every number is computed with the library's own functions (``vae_np.ops``,
``vae_np.derivations.score_reparam``, the claims' helpers); matplotlib (the ``plot`` extra) is imported lazily, as
in ``vae_np.figures.runs``.

==================  ===========================================================================
file                what it shows
==================  ===========================================================================
kl_monte_carlo.png  Monte Carlo KL(q || p) with a 2-standard-error band tending to the closed form
kl_curve.png        -2 KL per dimension at mu = 0, y = 1 + ln v - v (peak at v = 1), and the
                    true gradient of -KL beside the doubled expression that circulates
estimators.png      spread of the score-function and reparameterization gradient estimates
elbo_gap.png        ELBO(q) rising to ln p(x) and the gap KL(q || p(z|x)) falling to 0 as q moves
                    to the exact posterior of a conjugate Gaussian model
decoder_sigma.png   y = -ln(2 pi v) - k^2/v (twice the Gaussian log-likelihood at residual k) and
                    the learned decoder's ELBO growing without bound as sigma -> 0
==================  ===========================================================================
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .. import ops
from .._validate import check_int
from ..derivations.score_reparam import reparameterization_gradient, score_function_gradient
from ..numerics import LN_2PI, central_difference
from .canvas import _figure, _save


def _seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


# --------------------------------------------------------------------------- the KL to the prior
def kl_monte_carlo_data(seed=0, mu=(0.8, -0.5), sigma=(0.6, 1.4), n_max=100_000):
    """Monte Carlo estimates of KL(N(mu, diag sigma^2) || N(0, I)) from the first n of n_max draws
    z = mu + sigma eps (``ops.reparameterize_forward``), for n on a log grid.

    Returns dict(n, estimate, stderr, closed): ``closed`` is ``ops.kl_forward``; the estimate is
    the mean of ln q(z) - ln p(z), its standard error the sample std / sqrt(n).
    """
    rng = np.random.default_rng([_seed(seed), 1])
    mu, sigma = np.array([mu], float), np.array([sigma], float)
    eps = rng.standard_normal((check_int("n_max", n_max, minimum=10), mu.shape[1]))
    z, _ = ops.reparameterize_forward(mu, sigma, eps[:, None, :])     # n samples of one q
    z = z.reshape(eps.shape)
    log_ratio = np.sum(-0.5 * eps ** 2 - np.log(sigma) + 0.5 * z ** 2, axis=1)   # ln q - ln p
    ns = np.unique(np.logspace(1, math.log10(n_max), 30).astype(int))
    cumsum, cumsq = np.cumsum(log_ratio), np.cumsum(log_ratio ** 2)
    estimate = cumsum[ns - 1] / ns
    variance = (cumsq[ns - 1] - ns * estimate ** 2) / (ns - 1)
    return dict(n=ns, estimate=estimate, stderr=np.sqrt(np.maximum(variance, 0) / ns),
                closed=float(ops.kl_forward(mu, sigma)[0][0]))


def kl_monte_carlo(path, seed=0) -> Path:
    """The Monte Carlo KL converging to the closed form, with a +-2 standard-error band."""
    d = kl_monte_carlo_data(seed)
    fig = _figure(7, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    ax.fill_between(d["n"], d["estimate"] - 2 * d["stderr"], d["estimate"] + 2 * d["stderr"],
                    alpha=0.25, label="+- 2 standard errors")
    ax.plot(d["n"], d["estimate"], marker=".", label="Monte Carlo mean of ln q(z) - ln p(z)")
    ax.axhline(d["closed"], color="black", ls="--",
               label=f"closed form 1/2 sum(mu^2 + sigma^2 - 1 - ln sigma^2) = {d['closed']:.4f}")
    ax.set(xscale="log", xlabel="number of samples n (z = mu + sigma eps)", ylabel="nats",
           title="KL(q || N(0, I)) by Monte Carlo converges like 1/sqrt(n) to the closed form")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def kl_curve_data(v=None):
    """-2 KL per dimension at mu = 0 as a function of v = sigma^2 (``ops.kl_forward``), which is
    y = 1 + ln v - v, and d(-KL)/dsigma from ``ops.kl_backward`` beside the circulating
    2 (1/sigma - sigma) and central differences of -KL."""
    v = np.geomspace(0.02, 5, 300) if v is None else np.asarray(v, float)
    sigma = np.sqrt(v)[:, None]
    mu = np.zeros_like(sigma)
    kl, cache = ops.kl_forward(mu, sigma)
    _, dsigma = ops.kl_backward(np.ones_like(kl), cache)
    fd = central_difference(lambda sg: -ops.kl_forward(mu, sg)[0], sigma, 1e-6, rows=True)[0]
    fd = fd[:, 0]                                         # d(-KL_n) / d sigma_n, row by row
    s = sigma[:, 0]
    return dict(v=v, sigma=s, y=-2 * kl, true_grad=-dsigma[:, 0], doubled=2 * (1 / s - s), fd=fd)


def kl_curve(path) -> Path:
    """Left: y = 1 + ln v - v = -2 KL per dimension at mu = 0, peak 0 at v = 1. Right: the gradient
    of -KL in sigma from the library, from central differences, and the doubled expression."""
    d = kl_curve_data()
    fig = _figure(11, 4.2)
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(d["v"], d["y"], label="-2 KL from ops.kl_forward")
    ax.plot(1, 0, "o", color="black", label="peak at v = 1 (sigma = 1): KL = 0")
    ax.set(xscale="log", ylim=(-4.5, 0.5), xlabel="v = sigma^2",
           ylabel="y = 1 + ln v - v  (mu = 0)", title="-2 KL per latent dimension")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax = fig.add_subplot(1, 2, 2)
    pick = slice(None, None, 15)
    ax.plot(d["sigma"], d["true_grad"], label="library: -(sigma - 1/sigma) (ops.kl_backward)")
    ax.plot(d["sigma"][pick], d["fd"][pick], "o", ms=4, mfc="none", color="black",
            label="central differences of -KL")
    ax.plot(d["sigma"], d["doubled"], ls="--", label="circulating 2(1/sigma - sigma): 2x too big")
    ax.set(xscale="log", ylim=(-6, 12), xlabel="sigma", ylabel="d(-KL)/dsigma",
           title="the gradient keeps the 1/2 of the KL")
    ax.set_xticks([0.2, 0.5, 1, 2], ["0.2", "0.5", "1", "2"])
    ax.set_xticks([], minor=True)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


# --------------------------------------------------------------------------- gradient estimators
def estimator_spread_data(seed=0, mu=1.0, sigma=0.5, n=10, repeats=400):
    """``repeats`` estimates of grad E_q[z^2] (exact (2 mu, 2 sigma)) from n samples each, by
    ``estimators.score_function_gradient`` and ``estimators.reparameterization_gradient``.

    Returns dict(score=(repeats, 2), reparam=(repeats, 2), exact=(2,), mu, sigma, n)."""
    rng = np.random.default_rng([_seed(seed), 2])

    def f(z):
        return z * z

    def df(z):
        return 2 * z

    score = np.array([score_function_gradient(f, mu, sigma, n, rng).mean for _ in range(repeats)])
    reparam = np.array([reparameterization_gradient(f, df, mu, sigma, n, rng).mean
                        for _ in range(repeats)])
    return dict(score=score, reparam=reparam, exact=np.array([2 * mu, 2 * sigma]), mu=mu,
                sigma=sigma, n=n)


def estimator_spread(path, seed=0) -> Path:
    """Histograms of the two estimators of d/dmu and d/dsigma of E_q[z^2]: both centred on the
    exact value, the score function far wider."""
    d = estimator_spread_data(seed)
    fig = _figure(11, 4.2)
    for i, name in enumerate(("mu", "sigma")):
        ax = fig.add_subplot(1, 2, i + 1)
        lo = min(d["score"][:, i].min(), d["reparam"][:, i].min())
        hi = max(d["score"][:, i].max(), d["reparam"][:, i].max())
        bins = np.linspace(lo, hi, 60)
        for key, label in (("score", "score function"), ("reparam", "reparameterization")):
            values = d[key][:, i]
            ax.hist(values, bins=bins, alpha=0.6, label=f"{label} (sd {values.std(ddof=1):.3f})")
        ax.axvline(d["exact"][i], color="black", ls="--", label=f"exact {d['exact'][i]:g}")
        ax.set(xlabel=f"estimate of dE[z^2]/d{name} from {d['n']} samples",
               ylabel=f"count of {len(d['score'])} repeats",
               title=f"d/d{name}, q = N({d['mu']:g}, {d['sigma']:g}^2)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle("both estimators are unbiased; the score function spreads far wider", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


# --------------------------------------------------------------------------- the ELBO gap
def gaussian_kl(m1, v1, m2, v2):
    """KL(N(m1, v1) || N(m2, v2)) for scalars or arrays (variances v)."""
    return 0.5 * (np.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1)


def elbo_gap_data(x=2.0, s2=0.5, steps=41):
    """A conjugate model p(z) = N(0, 1), p(x|z) = N(x; z, s2): p(z|x) = N(x / (1 + s2),
    s2 / (1 + s2)) and ln p(x) = ln N(x; 0, 1 + s2) are exact. q_t = N(m_t, v_t) moves from the
    prior (t = 0) to the posterior (t = 1), the mean linearly and ln v_t linearly. For each t:

        ELBO(q_t) = E_q[ln p(x|z)] - KL(q_t || p(z))    (KL by ops.kl_forward)
        gap = ln p(x) - ELBO(q_t),   and KL(q_t || p(z|x)) in closed form (it must equal the gap).
    """
    m_post, v_post = x / (1 + s2), s2 / (1 + s2)
    log_px = -0.5 * (LN_2PI + math.log(1 + s2) + x * x / (1 + s2))
    t = np.linspace(0.0, 1.0, steps)
    m = t * m_post
    v = np.exp(t * math.log(v_post))
    expected_loglik = -0.5 * (LN_2PI + math.log(s2) + ((x - m) ** 2 + v) / s2)
    kl_prior = ops.kl_forward(m[:, None], np.sqrt(v)[:, None])[0]
    elbo = expected_loglik - kl_prior
    return dict(t=t, m=m, v=v, elbo=elbo, log_px=log_px, gap=log_px - elbo,
                kl_post=gaussian_kl(m, v, m_post, v_post), m_post=m_post, v_post=v_post, x=x,
                s2=s2)


def elbo_gap(path) -> Path:
    """Left: q_t and the exact posterior. Middle: ELBO(q_t) below ln p(x). Right: the gap and
    KL(q_t || p(z|x)) on a log scale: the same numbers, falling to 0 at the posterior."""
    d = elbo_gap_data()
    fig = _figure(14, 4.2)
    ax = fig.add_subplot(1, 3, 1)
    z = np.linspace(-3.5, 3.5, 400)
    for t in (0.0, 0.5, 0.9):
        i = int(np.argmin(np.abs(d["t"] - t)))
        ax.plot(z, np.exp(-0.5 * (z - d["m"][i]) ** 2 / d["v"][i]) / np.sqrt(2 * np.pi * d["v"][i]),
                label=f"q_t, t = {t:g}")
    ax.plot(z, np.exp(-0.5 * (z - d["m_post"]) ** 2 / d["v_post"]) /
            np.sqrt(2 * np.pi * d["v_post"]), "k--", label="p(z|x), t = 1")
    ax.set(xlabel="z", ylabel="density",
           title=f"p(z) = N(0,1), p(x|z) = N(x; z, {d['s2']:g}), x = {d['x']:g}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = fig.add_subplot(1, 3, 2)
    ax.plot(d["t"], d["elbo"], label="ELBO(q_t) (library KL)")
    ax.axhline(d["log_px"], color="black", ls="--", label=f"ln p(x) = {d['log_px']:.3f}")
    ax.set(xlabel="t (0: q = prior, 1: q = posterior)", ylabel="nats",
           title="Jensen: ELBO(q) <= ln p(x)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = fig.add_subplot(1, 3, 3)
    inner = d["t"] < 1
    ax.plot(d["t"][inner], d["gap"][inner], label="ln p(x) - ELBO(q_t)")
    ax.plot(d["t"][inner][::4], d["kl_post"][inner][::4], "o", ms=4, mfc="none", color="black",
            label="KL(q_t || p(z|x)), closed form")
    ax.set(yscale="log", xlabel="t", ylabel="nats", title="the gap is KL(q || p(z|x)) -> 0")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


# --------------------------------------------------------------------------- the Gaussian decoder
def gaussian_loglik_curve(v, k):
    """y = -ln(2 pi v) - k^2 / v = 2 ln N(x; x~, v) at residual k = x - x~, by
    ``ops.gaussian_learned_nll_forward`` with ln sigma = ln(v) / 2 (one pixel)."""
    v = np.asarray(v, float)
    r = 0.5 * np.log(v)[:, None]
    mean = np.zeros_like(r)
    nll, _ = ops.gaussian_learned_nll_forward(mean, r, np.full_like(r, float(k)))
    return -2 * nll


def decoder_sigma(path, seed=0) -> Path:
    """Left: y = -ln(2 pi v) - k^2/v for several residuals k: bounded (peak at v = k^2) for k > 0,
    unbounded as v -> 0 for k = 0. Right: the ELBO of a decoder that reproduces x, maximised over
    its learned sigma by SGD (the ``decoder_sigma`` claim's run), with and without sigma_min."""
    from ..derivations.decoder import D, SIGMA_MIN, maximize_sigma_likelihood

    seed = _seed(seed)
    v = np.geomspace(1e-4, 10, 400)
    fig = _figure(11, 4.2)
    ax = fig.add_subplot(1, 2, 1)
    for k in (0.0, 0.05, 0.2, 1.0):
        ax.plot(v, gaussian_loglik_curve(v, k), label=f"k = {k:g}" + (" (x~ = x)" if k == 0 else
                                                                        f", peak at v = {k * k:g}"))
    ax.set(xscale="log", ylim=(-12, 10), xlabel="v = sigma^2",
           ylabel="y = -ln(2 pi v) - k^2 / v", title="twice ln N(x; x~, v) at residual k = x - x~")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax = fig.add_subplot(1, 2, 2)
    ceiling = -D * math.log(SIGMA_MIN) - 0.5 * D * LN_2PI
    for sigma_min, label in ((0.0, "sigma = e^r (no bound)"),
                             (SIGMA_MIN, f"sigma = {SIGMA_MIN:g} + e^r")):
        trace, _ = maximize_sigma_likelihood(seed, sigma_min)
        steps = [t["step"] for t in trace]
        elbo = np.array([t["elbo"] for t in trace])
        err = 2 * np.array([t["stderr"] for t in trace])
        ax.errorbar(steps, elbo, yerr=err, marker=".", capsize=2, label=label)
    ax.axhline(ceiling, color="black", ls="--",
               label=f"ceiling -D ln sigma_min - D/2 ln 2 pi = {ceiling:.2f}")
    ax.set(xlabel="SGD step", ylabel="ELBO <= ln p(x) (nats)",
           title=f"a learned sigma -> 0 makes ln p(x) unbounded (D = {D})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


# --------------------------------------------------------------------------- all of them
def write_claim_figures(directory, seed=0) -> list:
    """Draw every claim figure into ``directory`` (created if missing); returns the list of paths
    in the order of the derivation. ``seed`` selects every random draw."""
    seed = _seed(seed)
    out = Path(directory)
    return [kl_monte_carlo(out / "kl_monte_carlo.png", seed),
            kl_curve(out / "kl_curve.png"),
            elbo_gap(out / "elbo_gap.png"),
            estimator_spread(out / "estimators.png", seed),
            decoder_sigma(out / "decoder_sigma.png", seed)]
