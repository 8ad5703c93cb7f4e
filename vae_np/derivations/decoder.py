"""Claim 7: the Gaussian decoder. With sigma_theta = 1 the NLL is the squared error plus a
constant; with a learned sigma_theta the likelihood of a reproduced point is unbounded unless sigma
is bounded below.

    -ln N(x; x~, sigma^2 I) = ||x - x~||^2 / (2 sigma^2) + D ln sigma + D/2 ln 2 pi
    sigma = 1:  1/2 ||x - x~||^2 + D/2 ln 2 pi
    x~ = x:     D ln sigma + D/2 ln 2 pi  ->  -infinity as sigma -> 0
    sigma = sigma_min + e^r:   -ln p(x|z) > D ln sigma_min + D/2 ln 2 pi, so
                               ln p(x) <= max_z ln p(x|z) < -D ln sigma_min - D/2 ln 2 pi.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from ..core.model import VAE
from ..core.trace import Trace
from ..numerics import LN_2PI
from ..optim import SGD
from ._record import EPS, MC_SIGMAS, make_claim, sum_rounding

D = 4
SIGMA_MIN = 0.05
STEPS = 600
LR = 0.02
K_TRAIN = 8
K_EVAL = 256


def unit_sigma_mse(seed=0):
    """-ln p(x|z) of the VAE code path with a Gaussian decoder, sigma = 1, equals
    1/2 ||x - x~||^2 + D/2 ln 2 pi, x~ = decoder mean at the same z (and -sum_d ln N(x_d; x~_d, 1)
    from scipy.stats)."""
    rng = np.random.default_rng(seed)
    model = VAE(5, (6,), 2, "tanh", "gaussian", dtype=np.float64, seed=seed, decoder_sigma=1.0)
    x = rng.standard_normal((8, 5))
    eps = rng.standard_normal((8, model.noise_dim))
    recon, _ = model.elbo_terms(x, k=1, eps=eps)                 # library: ops.gaussian_nll_forward
    mu, sigma = model.encode(x)
    x_tilde = model.decode(mu + sigma * eps)
    sq = 0.5 * np.sum((x - x_tilde) ** 2, axis=1)
    mse_form = sq + 0.5 * x.shape[1] * LN_2PI
    scipy_form = -np.sum(norm.logpdf(x, loc=x_tilde, scale=1.0), axis=1)
    errors = np.maximum(np.abs(recon - mse_form), np.abs(scipy_form - mse_form))
    tols = np.array([sum_rounding(np.concatenate([0.5 * (x[b] - x_tilde[b]) ** 2,
                                                  np.full(x.shape[1], 0.5 * LN_2PI)]))
                     for b in range(x.shape[0])])
    i = int(np.argmax(errors / tols))
    return make_claim(
        "decoder_sigma.unit_mse",
        "With sigma_theta = 1 the Gaussian decoder's -ln p(x|z) is half the squared error plus "
        "D/2 ln 2 pi (VAE code path and scipy.stats.norm, 8 examples, D = 5)",
        "-ln N(x; x~, I) = 1/2 ||x - x~||^2 + D/2 ln 2 pi",
        recon[i], mse_form[i], errors[i], tols[i],
        "rounding of the D-term sums on each side (2 (n + 4) eps sum|terms|); the example closest "
        "to failing is shown",
        details=dict(scipy_form=scipy_form[i], max_error=float(errors.max())), unit="nats",
        passed=bool(np.all(errors <= tols)))


def _reproducing_model(seed, sigma_min):
    """A VAE 4-8-2 (tanh, learned per-pixel sigma) whose decoder mean reproduces x exactly
    (decoder.out.W = 0, decoder.out.b = x), so only sigma_theta is left to fit."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (1, D))
    model = VAE(D, (8,), 2, "tanh", "gaussian-learned", dtype=np.float64, seed=seed,
                decoder_sigma_min=sigma_min)
    model.params["decoder.out.W"][...] = 0.0
    model.params["decoder.out.b"][...] = x[0]
    return model, x, rng


def maximize_sigma_likelihood(seed, sigma_min, steps=STEPS, lr=LR):
    """Plain SGD on the VAE's negative ELBO for one reproduced point, updating only the decoder's
    log-sigma head (the rest is fixed: the mean already equals x). Returns the ELBO (with its
    standard error over K_EVAL fixed samples) every 50 steps and the final log-sigma gradient."""
    model, x, rng = _reproducing_model(seed, sigma_min)
    n_head = model.params["decoder.logsigma.W"].size + model.params["decoder.logsigma.b"].size
    head = slice(model.flat.size - n_head, None)                  # the last parameters in order
    assert np.shares_memory(model.flat[head], model.params["decoder.logsigma.b"])
    opt = SGD(lr)
    eps_eval = rng.standard_normal((K_EVAL, 1, model.noise_dim))
    trace = []
    for step in range(1, steps + 1):
        _, grads = model.loss_and_grads(x, k=K_TRAIN, rng=rng)
        grad_b = grads["decoder.logsigma.b"].copy()
        opt.step(model.flat[head], model.grad_flat[head])
        if step % 50 == 0:
            log_w = model.log_weights(x, k=K_EVAL, eps=eps_eval)[:, 0]   # ln p(x,z) - ln q
            mu, sig = model.encode(x)
            g = model.decoder.forward(Trace(), mu)
            r, _ = model.decoder_likelihood.r_head.forward(g)
            sigma_theta = sigma_min + np.exp(r[0])
            trace.append(dict(step=step, elbo=float(log_w.mean()),
                              stderr=float(log_w.std(ddof=1) / math.sqrt(K_EVAL)),
                              max_sigma_theta=float(sigma_theta.max())))
    return trace, grad_b


def learned_sigma(seed=0):
    """The unbounded and the bounded learned decoder sigma, by a short SGD run each."""
    ceiling = -D * math.log(SIGMA_MIN) - 0.5 * D * LN_2PI
    free, grad_free = maximize_sigma_likelihood(seed, 0.0)
    bounded, grad_bounded = maximize_sigma_likelihood(seed, SIGMA_MIN)
    last = free[-1]
    elbos = [t["elbo"] for t in free]
    rises = np.diff(elbos)
    unbounded = make_claim(
        "decoder_sigma.unbounded",
        f"Learned sigma_theta = e^r, no lower bound, decoder reproducing x: SGD drives sigma_theta "
        f"toward 0 and ln p(x) >= ELBO past any ceiling ({STEPS} steps of lr {LR})",
        f"ELBO after {STEPS} steps > -D ln {SIGMA_MIN} - D/2 ln 2 pi (the bounded model's "
        "ceiling); d(-ln p)/dr = 1 never decays",
        last["elbo"], ceiling, max(ceiling - (last["elbo"] - MC_SIGMAS * last["stderr"]), 0.0), 0.0,
        f"inequality: the ELBO estimate minus {MC_SIGMAS:g} standard errors must exceed the "
        "ceiling (error = shortfall, 0 when it does)", relation=">=", unit="nats",
        details=dict(trace=free, final_grad_logsigma_bias=grad_free,
                     elbo_rise_per_50_steps=rises,
                     note=f"unbounded sigma: ELBO {elbos[0]:.1f} -> {elbos[-1]:.1f} nats, rising "
                          f"{rises.min():.2f}..{rises.max():.2f} per 50 steps; sigma_theta "
                          f"{free[0]['max_sigma_theta']:.2g} -> {last['max_sigma_theta']:.2g}"))
    peak = max(t["elbo"] for t in bounded)
    bounded_record = make_claim(
        "decoder_sigma.bounded",
        f"With sigma_theta = {SIGMA_MIN} + e^r the same optimization stays below the ceiling "
        "(ln p(x) <= max_z ln p(x|z) < -D ln sigma_min - D/2 ln 2 pi)",
        f"max over the run of ELBO <= -D ln {SIGMA_MIN} - D/2 ln 2 pi",
        peak, ceiling, max(peak - ceiling, 0.0), 8 * EPS * D * abs(ceiling),
        "inequality, exact for every sample (each -ln p(x|z) exceeds D ln sigma_min + "
        "D/2 ln 2 pi): error = excess over the ceiling, tolerance = rounding of the D-term sum",
        relation="<=", unit="nats",
        details=dict(trace=bounded, final_grad_logsigma_bias=grad_bounded,
                     note=f"bounded sigma: ELBO peaks at {peak:.3f} {compare(peak, ceiling)} "
                          f"ceiling {ceiling:.3f}; "
                          f"sigma_theta -> {bounded[-1]['max_sigma_theta']:.4g} "
                          f"(sigma_min {SIGMA_MIN})"))
    return [unbounded, bounded_record]


def compare(a, b) -> str:
    """The relation between two numbers as a symbol, computed from them: "<", "=" or ">"."""
    return "<" if a < b else (">" if a > b else "=")


def decoder_sigma(seed=0):
    """Claim 7: ``decoder_sigma.unit_mse`` (sigma = 1 gives the squared error plus D/2 ln 2 pi),
    ``decoder_sigma.unbounded`` (a learned sigma without a lower bound makes ln p unbounded) and
    ``decoder_sigma.bounded`` (sigma >= sigma_min caps it)."""
    return [unit_sigma_mse(seed)] + learned_sigma(seed)
