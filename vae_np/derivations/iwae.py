"""Claims of the importance-weighted bound (Burda, Grosse & Salakhutdinov 2016).

    L_K = E_{z_1..K ~ q}[ ln 1/K sum_k w_k ],   w_k = p(x, z_k) / q(z_k),
    L_1 = ELBO <= L_K <= L_{K+1} <= ln p(x),
    ln p(x) - L_K = Var_q(r) / 2K + (3 Var_q(r)^2 / 4 - E_q[(r - 1)^3] / 3) / K^2 + O(1/K^3),
    r = w / p(x).

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
from .elbo import (_continuous_model, _mixture, discrete_elbo, log_evidence, mixture_log_evidence,
                   mixture_log_joint)

EXACT_K = (1, 2, 3, 4)          # every K-tuple of 5 components: 5^4 = 625 terms at most
LIMIT_K = (16, 32, 64)          # the sign of the 1/K^2 term is resolved at the smallest K
LIMIT_DRAWS = 400_000           # per K: the gap to ~0.3 % of itself, ~0.2 s per K
LIMIT_POSTERIOR_SHARE = 0.8


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
    * ``iwae_bound.limit``: ln p(x) - L_K = Var_q(w/p) / 2K + (3 Var^2 / 4 - E[(w/p - 1)^3] / 3)
      / K^2 + c_3 / K^3 + O(1/K^4) (``gap_series``) at K = 16, 32, 64, by Monte Carlo against the
      exact cumulants of the categorical q, precise enough that a first-order term Var/K or a
      flipped sign of the E[(w/p - 1)^3] term lies many standard errors away.
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


def gap_series(k2, k3, k4, K):
    """ln p(x) - L_K to third order in 1/K, from the cumulants of r = w / p(x) under q.

    With d = (1/K) sum_k r_k - 1 (mean 0), ln p(x) - L_K = E[-ln(1 + d)] = sum_n (-1)^n E[d^n] / n,
    and the moments of a mean of K independent draws are E[d^2] = k2 / K, E[d^3] = k3 / K^2,
    E[d^4] = 3 k2^2 / K^2 + k4 / K^3, E[d^5] = 10 k2 k3 / K^3 + O(1/K^4), E[d^6] = 15 k2^3 / K^3
    + O(1/K^4) (k2 = Var(r), k3 = E[(r - 1)^3], k4 = E[(r - 1)^4] - 3 k2^2). Collecting powers:

        k2 / 2K  +  (3 k2^2 / 4 - k3 / 3) / K^2  +  (k4 / 4 - 2 k2 k3 + 5 k2^3 / 2) / K^3.

    Parameters
    ----------
    k2, k3, k4 : float   the second, third and fourth cumulants of w / p(x) under q
    K : int or array     the number of samples

    Returns
    -------
    float or array of K's shape: the series, without its O(1/K^4) remainder
    """
    return (k2 / (2 * K) + (0.75 * k2 * k2 - k3 / 3) / K ** 2
            + (k4 / 4 - 2 * k2 * k3 + 2.5 * k2 ** 3) / K ** 3)


def log_mean_weight(log_w, counts):
    """ln (1/K sum_k w_k), the K-sample bound's estimate, for draws given as counts per component.

    Parameters
    ----------
    log_w : (C,) array     ln w of each of the C components
    counts : (N, C) array  how often each component was drawn; every row sums to K

    Returns
    -------
    (N,) array: ln (1/K sum_c counts_c w_c), shifted by max ln w so that nothing overflows
    """
    top = float(np.max(log_w))
    return top + np.log(counts @ np.exp(log_w - top)) - np.log(counts.sum(axis=1))


def _limit_record(rng, weights, means, sds):
    """ln p(x) - L_K against the series of ``gap_series``, by Monte Carlo at K = 16, 32, 64.

    The K samples of a categorical q enter L_K only through how often each component is drawn,
    so every draw of L_K is a multinomial count vector (the same distribution as K categorical
    draws, at a cost independent of K). The mean of ln p(x) - L_K alone would be hopeless: its
    per-draw deviation is sqrt(k2 / K), against a gap of k2 / 2K. Adding the control variate
    d = (1/K) sum_k r_k - E_q[r] (mean exactly 0: E_q[w] = p(x)) cancels the first-order
    fluctuation and leaves d - ln(1 + d) ~ d^2 / 2, whose deviation is ~0.8 k2 / K: N draws give
    the gap to about 1/sqrt(N) of itself at every K.
    """
    x = float(rng.normal(means[0], sds[0]))
    lj = mixture_log_joint(x, weights, means, sds)
    log_px = mixture_log_evidence(lj)
    # q = 0.8 posterior + 0.2 a random categorical: Var(w/p) ~ 0.1-0.3, so that at K = 16 the
    # series' O(1/K^4) remainder is below a fifth of a standard error
    # (tests/derivations/test_iwae_claims.py checks it against the exact sum over every count
    # vector)
    q = LIMIT_POSTERIOR_SHARE * np.exp(lj - log_px) + (1 - LIMIT_POSTERIOR_SHARE) * rng.dirichlet(
        np.full(weights.size, 3.0))
    log_w = lj - np.log(q)
    r = np.exp(log_w - log_px)                          # w / p(x) per component, mean 1 under q
    d0 = r - float(q @ r)
    k2, k3 = float(q @ d0 ** 2), float(q @ d0 ** 3)
    k4 = float(q @ d0 ** 4) - 3 * k2 * k2
    rows = []
    wrong = {"Var/K": lambda K: k2 / (2 * K), "+E[(r-1)^3]/3K^2": lambda K: 2 * k3 / (3 * K * K),
             "no 3Var^2/4K^2": lambda K: -0.75 * k2 * k2 / K ** 2,
             "no 1/K^3 term": lambda K: -(k4 / 4 - 2 * k2 * k3 + 2.5 * k2 ** 3) / K ** 3}
    away = dict.fromkeys(wrong, 0.0)
    for K in LIMIT_K:
        counts = rng.multinomial(K, q, size=LIMIT_DRAWS).astype(float)
        values = (log_px - log_mean_weight(log_w, counts)) + counts @ d0 / K
        gap, se = float(values.mean()), float(values.std(ddof=1) / math.sqrt(LIMIT_DRAWS))
        predicted = float(gap_series(k2, k3, k4, K))
        rows.append(dict(K=K, gap=gap, se=se, predicted=predicted, t=(gap - predicted) / se))
        for name, change in wrong.items():          # how far a wrong series would lie, in SE
            away[name] = max(away[name], abs(gap - predicted - change(K)) / se)
    worst = max(abs(row["t"]) for row in rows)
    note = (f"|t| <= {worst:.2f} at K = {LIMIT_K[0]}..{LIMIT_K[-1]}; a series with Var/K is "
            f"{away['Var/K']:.0f} SE off, with +E[(r-1)^3]/3K^2 {away['+E[(r-1)^3]/3K^2']:.0f} SE")
    return make_claim(
        "iwae_bound.limit",
        "ln p(x) - L_K = Var(w/p) / 2K + (3 Var^2 / 4 - E[(w/p - 1)^3] / 3) / K^2 + O(1/K^3): the "
        "gap falls like 1/K with both coefficients resolved (Monte Carlo, exact moments of q)",
        "ln p(x) - L_K = k2/2K + (3 k2^2/4 - k3/3)/K^2 + (k4/4 - 2 k2 k3 + 5 k2^3/2)/K^3 "
        "+ O(1/K^4), k_n the cumulants of w/p(x) under q", rows[0]["gap"], rows[0]["predicted"],
        worst, 4.5,
        f"standard errors of {LIMIT_DRAWS} draws of L_K per K (with a control variate of known "
        f"mean 0); the largest of {len(LIMIT_K)} |t| values of a true zero exceeds 4.5 with "
        "probability below 1e-4, and the O(1/K^4) remainder is below 0.2 SE", unit="SE",
        details=dict(k2=k2, k3=k3, k4=k4, q=q, log_w=log_w, log_px=log_px, rows=rows,
                     wrong_series_se=away, note=note))


def _continuous_record(seed):
    """L_1 <= L_5 <= L_50 <= ln p(x) on the VAE code path (objective="iwae"), ln p(x) by
    quadrature: Monte Carlo means and their standard errors."""
    model = _continuous_model(seed)
    rng = np.random.default_rng([seed, 13])
    x = model.decode(rng.standard_normal((1, 1)))[0] + 0.5 * rng.standard_normal(2)
    params = {n: p.copy() for n, p in model.params.items()}
    from .elbo import decoder_mean  # the decoder recomputed from its weights

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


def spurious_term(w_tilde, log_w, per_sample):
    """What differentiating w~ adds to the IWAE gradient: sum_k w~_k (ln w_k - E_w~ ln w) d(-ln w_k)

    From d w~_k = w~_k (d ln w_k - sum_j w~_j d ln w_j): d(-sum_k w~_k ln w_k) = -sum_k w~_k
    d ln w_k - sum_k ln w_k d w~_k, whose second part is sum_k w~_k (ln w_k - sum_j w~_j ln w_j)
    d(-ln w_k).

    Parameters
    ----------
    w_tilde : (K,) array      the normalised weights softmax_k(ln w_k)
    log_w : (K,) array        ln w_k
    per_sample : (K, P) array the gradient of -ln w_k for each k

    Returns
    -------
    (P,) array
    """
    return (w_tilde * (log_w - w_tilde @ log_w)) @ per_sample


def iwae_gradient(seed=0):
    """Claim: the library's IWAE gradient = central differences of L_K (frozen eps) =
    sum_k w~_k d(-ln w_k), the per-sample gradients weighted by w~ = softmax_k(ln w); a loss that
    differentiates w~ as well adds a spurious term sum_k w~_k (ln w_k - E_w~ ln w) d(-ln w_k)."""
    from ..core.model import VAE
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
    difference, slack = wrong - fd, 2 * (bound + wrong_bound)
    spurious = spurious_term(w_tilde, log_w, per_sample)
    # what the record must show, coordinate by coordinate: (1) the slip moves the gradient far
    # beyond what the difference quotients can resolve, and (2) by exactly the derived term
    j = int(np.argmax(np.abs(difference)))
    bias = float(np.max(np.abs(difference)))
    bias_over_bound = bias / float(np.max(slack))
    mismatch = float(np.max(np.abs(difference - spurious) / slack))
    records.append(make_claim(
        "iwae_gradient.spurious_term",
        "Differentiating the weights (the surrogate -sum_k w~_k ln w_k without holding w~ fixed) "
        "adds sum_k w~_k (ln w_k - sum_j w~_j ln w_j) d(-ln w_k): a bias far beyond the "
        "difference quotients' error, and exactly that term at every coordinate",
        "d(-sum w~ ln w) - d(-L_K) = sum_k w~_k (ln w_k - mean_w~ ln w) d(-ln w_k)",
        float(difference[j]), float(spurious[j]), mismatch, 1.0,
        "at every coordinate the bias must equal the spurious term within twice both quotients' "
        "error bounds (the error is in units of that), and the largest bias must exceed 100 "
        "times those bounds", unit="x bound",
        passed=bool(mismatch <= 1.0 and bias_over_bound > 100),
        details=dict(bias=bias, coordinate=j, quotient_bound=float(np.max(slack)) / 2,
                     bias_over_bound=bias_over_bound)))
    return records
