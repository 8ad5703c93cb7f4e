"""Claims of the importance-weighted bound (Burda, Grosse & Salakhutdinov 2016).

    L_K = E_{z_1..K ~ q}[ ln 1/K sum_k w_k ],   w_k = p(x, z_k) / q(z_k),
    L_1 = ELBO <= L_K <= L_{K+1} <= ln p(x),    ln p(x) - L_K = Var_q(w / p(x)) / 2K + O(1/K^2).

``iwae_bound`` checks the order and the limit where ln p(x) is exact (a Gaussian mixture with a
discrete z, every K-tuple enumerated) and, by Monte Carlo, on the VAE code path where ln p(x) comes
from quadrature. ``iwae_gradient`` checks the library's hand-written gradient against central
differences, and shows the spurious term that appears when the normalised weights w~ are
differentiated instead of held fixed: -sum_k w~_k ln w_k has the right value at K = 1 only and a
gradient off by sum_k w~_k (ln w_k - sum_j w~_j ln w_j) d(-ln w_k).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.special import logsumexp

from ..numerics import central_difference
from ._record import EPS, make_claim
from .elbo import (_continuous_model, _mixture, discrete_elbo, log_evidence,
                   mixture_log_evidence, mixture_log_joint)

EXACT_K = (1, 2, 3, 4)          # every K-tuple of 5 components: 5^4 = 625 terms at most
MC_K = (10, 100, 1000)
MC_DRAWS = 2000


def exact_iwae(q, log_joint, K):
    """L_K for a categorical q over the mixture's components, by enumerating every K-tuple."""
    values, logs = [], []
    for tup in itertools.product(range(q.size), repeat=K):
        idx = np.array(tup)
        log_w = log_joint[idx] - np.log(q[idx])
        values.append(float(logsumexp(log_w)) - math.log(K))
        logs.append(float(np.sum(np.log(q[idx]))))
    return float(np.sum(np.exp(logs) * np.array(values))), values


def iwae_bound(seed=0):
    """Claim: L_1 = ELBO <= L_2 <= ... <= ln p(x), the gap's 1/K law, and the VAE code path's order.

    * ``iwae_bound.exact_order``: a Gaussian mixture with discrete z and a categorical q, L_K for
      K = 1..4 as exact sums over every K-tuple: ELBO = L_1 <= L_2 <= L_3 <= L_4 <= ln p(x).
    * ``iwae_bound.limit``: ln p(x) - L_K = Var_q(w/p) / 2K - E[(w/p - 1)^3] / 3K^2 + O(1/K^3) at
      K = 10, 100, 1000, by Monte Carlo against the exact moments of the categorical q.
    * ``iwae_bound.vae_path``: ``VAE.loss(objective="iwae")`` on the VAE of claim 4(b), where
      ln p(x) comes from quadrature: L_1 <= L_5 <= L_50 <= ln p(x) within standard errors.
    """
    rng = np.random.default_rng(seed)
    weights, means, sds = _mixture(rng)
    order_rows, worst, tol = [], -np.inf, 0.0
    for x in rng.normal(means, sds)[:3]:
        lj = mixture_log_joint(x, weights, means, sds)
        log_px = mixture_log_evidence(lj)
        q = rng.dirichlet(np.full(weights.size, 1.5))
        bounds = [exact_iwae(q, lj, K)[0] for K in EXACT_K]
        elbo = discrete_elbo(q, lj)
        chain = [elbo] + bounds + [log_px]             # ELBO, L_1, ..., L_4, ln p(x)
        # L_1 = ELBO (first step, an equality) and each later step must not go down
        steps = [abs(chain[1] - chain[0])] + [chain[i] - chain[i + 1] for i in range(1, 5)]
        worst = max(worst, max(steps))
        tol = max(tol, 64 * EPS * (abs(log_px) + np.max(np.abs(lj)) + 10) * 625)
        order_rows.append(dict(x=float(x), elbo=elbo, bounds=bounds, log_px=log_px))
    records = [make_claim(
        "iwae_bound.exact_order",
        "On a Gaussian mixture with discrete z, L_1 = ELBO and L_1 <= L_2 <= L_3 <= L_4 <= ln p(x), "
        "every expectation an exact sum over K-tuples",
        "ELBO = L_1 <= L_2 <= L_3 <= L_4 <= ln p(x)",
        order_rows[0]["bounds"][-1], order_rows[0]["log_px"], worst, tol,
        "rounding of up to 625 logsumexp terms of size |ln p(x, k)| + 10", relation="<=",
        unit="nats", details=dict(points=order_rows))]
    records.append(_limit_record(rng, weights, means, sds))
    records.append(_continuous_record(seed))
    return records


def _limit_record(rng, weights, means, sds):
    """ln p(x) - L_K against Var(w/p)/2K - mu3/3K^2 (the delta method's first two terms), by
    Monte Carlo at K = 10, 100, 1000."""
    x = float(rng.normal(means[0], sds[0]))
    lj = mixture_log_joint(x, weights, means, sds)
    log_px = mixture_log_evidence(lj)
    # q between the posterior and a random categorical: Var(w/p) ~ 1, so that K = 10 is already
    # in the regime of the expansion (a q far from the posterior needs K >> Var(w/p))
    q = 0.6 * np.exp(lj - log_px) + 0.4 * rng.dirichlet(np.full(weights.size, 3.0))
    r = np.exp(lj - np.log(q) - log_px)                 # w / p(x) per component, mean 1 under q
    var, mu3 = float(np.sum(q * (r - 1) ** 2)), float(np.sum(q * (r - 1) ** 3))
    rows, worst = [], 0.0
    for K in MC_K:
        draws = rng.choice(q.size, size=(MC_DRAWS, K), p=q)
        log_w = lj[draws] - np.log(q[draws])
        gaps = log_px - (logsumexp(log_w, axis=1) - math.log(K))
        gap, se = float(gaps.mean()), float(gaps.std(ddof=1) / math.sqrt(MC_DRAWS))
        predicted = var / (2 * K) - mu3 / (3 * K * K)
        z = abs(gap - predicted) / se
        worst = max(worst, z)
        rows.append(dict(K=K, gap=gap, se=se, predicted=predicted))
    return make_claim(
        "iwae_bound.limit",
        "ln p(x) - L_K falls like Var_q(w / p(x)) / 2K: L_K -> ln p(x) (Monte Carlo, exact moments)",
        "ln p(x) - L_K = Var(w/p) / 2K - E[(w/p - 1)^3] / 3K^2 + O(1/K^3)",
        rows[-1]["gap"], rows[-1]["predicted"], worst, 4.5,
        f"standard errors of {MC_DRAWS} draws of L_K; the largest of 3 |t| values of a true zero "
        "exceeds 4.5 with probability below 1e-4, and the neglected O(1/K^3) term is far below "
        "one SE", unit="SE", details=dict(var=var, mu3=mu3, rows=rows))


def _continuous_record(seed):
    """L_1 <= L_5 <= L_50 <= ln p(x) on the VAE code path (objective="iwae"), ln p(x) by
    quadrature: Monte Carlo means and their standard errors."""
    model = _continuous_model(seed)
    rng = np.random.default_rng([seed, 13])
    x = model.decode(rng.standard_normal((1, 1)))[0] + 0.5 * rng.standard_normal(2)
    params = {n: p.copy() for n, p in model.params.items()}
    from .elbo import decoder_mean                    # the decoder recomputed from its weights

    def log_joint(z):
        r = x - decoder_mean(params, z)
        return (-0.5 * z * z - 0.5 * math.log(2 * math.pi) - 0.5 * float(r @ r) / 0.25
                - 2 * math.log(0.5) - math.log(2 * math.pi))
    mu, _ = model.encode(x[None])
    log_px, _ = log_evidence(log_joint, float(mu[0, 0]))
    rows = []
    for K in (1, 5, 50):
        values = np.array([-model.loss(x[None], k=K, rng=rng, objective="iwae")
                           for _ in range(400)])
        rows.append(dict(K=K, mean=float(values.mean()),
                         se=float(values.std(ddof=1) / math.sqrt(values.size))))
    chain = [r["mean"] for r in rows] + [log_px]
    ses = [r["se"] for r in rows] + [0.0]
    # how far (in SE) the worst step goes down; 0 when every step goes up
    worst = max(0.0, max((chain[i] - chain[i + 1]) / math.hypot(ses[i], ses[i + 1])
                         for i in range(len(chain) - 1)))
    return make_claim(
        "iwae_bound.vae_path",
        "On a VAE 2-3-1 (tanh, Gaussian decoder), objective='iwae' gives L_1 <= L_5 <= L_50 <= "
        "ln p(x), with ln p(x) by quadrature",
        "L_1 <= L_5 <= L_50 <= ln p(x)", chain[-2], log_px, worst, 4.0,
        "each step may go down by at most 4 standard errors of its Monte Carlo difference",
        relation="<=", unit="SE", details=dict(rows=rows, log_px=log_px))


def differentiated_weights_loss(model, x, eps):
    """The common slip: -sum_k w~_k ln w_k as a loss, so that an automatic differentiation would
    also differentiate w~ = softmax_k(ln w). Its value is not L_K (it is E_w~[ln w]), and its
    gradient is the IWAE gradient plus a spurious term."""
    log_w = model.forward(x, eps, objective="iwae").values["log_w"][:, 0]
    return float(-np.sum(np.exp(log_w - logsumexp(log_w)) * log_w))


def iwae_gradient(seed=0):
    """Claim: the library's IWAE gradient = central differences of L_K (frozen eps) =
    sum_k w~_k d(-ln w_k), the per-sample gradients weighted by w~ = softmax_k(ln w); a loss that
    differentiates w~ as well adds a spurious term sum_k w~_k (ln w_k - E_w~ ln w) d(-ln w_k)."""
    from ..model import VAE
    model = VAE(3, (4,), 2, "tanh", "bernoulli", dtype=np.float64, seed=seed)
    rng = np.random.default_rng([seed, 17])
    x = rng.random((1, 3))
    K = 6
    eps = rng.standard_normal((K, 1, 2))
    theta = model.flat.copy()

    def at(v, f):
        model.flat[:] = v
        try:
            return f()
        finally:
            model.flat[:] = theta

    trace = model.trace(x, k=K, eps=eps, objective="iwae")
    library = model.grad_flat.copy()
    log_w = trace.values["log_w"][:, 0]
    w_tilde = np.exp(log_w - logsumexp(log_w))
    fd, bound = central_difference(lambda v: at(v, lambda: model.loss(
        x, k=K, eps=eps, objective="iwae")), theta)
    err = np.abs(library - fd)
    records = [make_claim(
        "iwae_gradient.library",
        "The hand-written IWAE gradient (objective='iwae') equals central differences of L_K with "
        "the noise frozen", "d(-L_K)/dtheta = -sum_k w~_k d ln w_k/dtheta", float(library[0]),
        float(fd[0]), float(np.max(err / (2 * bound))), 1.0,
        "each coordinate within twice the difference quotient's own error bound (truncation from "
        "the step 2h, rounding from |f|); the error is in units of that", unit="x bound",
        details=dict(max_abs_error=float(err.max()), max_bound=float(bound.max())))]
    per_sample = np.empty((K, theta.size))             # gradient of -ln w_k, one sample at a time
    for k in range(K):
        model.loss_and_grads(x, k=1, eps=eps[k:k + 1], objective="iwae")
        per_sample[k] = model.grad_flat
    weighted = w_tilde @ per_sample
    scale = float(np.max(np.abs(per_sample)))
    records.append(make_claim(
        "iwae_gradient.weighted_average",
        "The K-sample gradient is the average of the per-sample gradients of -ln w_k weighted by "
        "the normalised weights w~_k = softmax_k(ln w_k)",
        "d(-L_K) = sum_k w~_k d(-ln w_k)", float(library[0]), float(weighted[0]),
        float(np.max(np.abs(library - weighted))), 64 * EPS * K * scale,
        "rounding of K weighted sums of terms up to max |d ln w_k|", unit="abs"))

    wrong, wrong_bound = central_difference(
        lambda v: at(v, lambda: differentiated_weights_loss(model, x, eps)), theta)
    spurious = (w_tilde * (log_w - w_tilde @ log_w)) @ per_sample
    bias = float(np.max(np.abs(wrong - fd)))
    mismatch = float(np.max(np.abs((wrong - fd) - spurious) / (2 * (bound + wrong_bound))))
    records.append(make_claim(
        "iwae_gradient.spurious_term",
        "Differentiating the weights (the surrogate -sum_k w~_k ln w_k without holding w~ fixed) "
        "adds sum_k w~_k (ln w_k - sum_j w~_j ln w_j) d(-ln w_k): a bias far beyond the "
        "difference quotients' error, and exactly that term",
        "d(-sum w~ ln w) - d(-L_K) = sum_k w~_k (ln w_k - mean_w~ ln w) d(-ln w_k)",
        bias, float(np.max(np.abs(spurious))), mismatch, 1.0,
        "the bias must equal the spurious term within twice both quotients' error bounds (the "
        "error is in units of that), and exceed 100 times those bounds", unit="x bound",
        passed=bool(mismatch <= 1.0 and bias > 100 * float(np.max(bound + wrong_bound))),
        details=dict(bias=bias, quotient_bound=float(np.max(bound + wrong_bound)))))
    return records
