"""The continuous Bernoulli (Loaiza-Ganem & Cunningham 2019): the Bernoulli "likelihood" of a grey
level x in [0, 1] is not a density on [0, 1].

    int_0^1 lambda^x (1 - lambda)^(1-x) dx = (1 - 2 lambda) / (2 artanh(1 - 2 lambda))
                                          = 1 / C(lambda)

which is at most 1/2 (C >= 2, with C = 2 at lambda = 1/2). The continuous Bernoulli
C(lambda) lambda^x (1 - lambda)^(1-x) is the normalised density; in logits l = logit(lambda),
C = l / tanh(l/2). A Bernoulli cross-entropy on grey data therefore exceeds the continuous
Bernoulli's -ln p by sum_d ln C(l_d) >= D ln 2 nats (543 nats for 784 pixels): it is not the
negative log of any density of the grey image.
"""
from __future__ import annotations

import math

import numpy as np

from ..numerics import central_difference
from ..ops import likelihoods as lk
from ._record import EPS, make_claim, quad
from .kl import compare_gradients

LAMBDAS = (1e-4, 0.02, 0.3, 0.5 - 1e-7, 0.5, 0.5 + 1e-4, 0.8, 0.999)
"""lambda = sigmoid(l) at which the normaliser is checked: extremes, near and at 1/2."""

GRAD_LOGITS = (-30.0, -3.0, -1.01, -0.99, -1e-3, 0.0, 1e-6, 0.2, 0.999, 1.0, 1.5, 12.0)
"""Logits of the gradient check: both branches of the stable forms, their switch at |l| = 1,
and 0."""


def _logit(lam):
    return math.log(lam) - math.log1p(-lam)


def _bernoulli_mass(lam):
    """int_0^1 lambda^x (1 - lambda)^(1-x) dx by quadrature (no closed form used)."""
    return quad(lambda x: math.exp(x * math.log(lam) + (1 - x) * math.log1p(-lam)), 0.0, 1.0)


def _closed_form_c(lam):
    """C(lambda) = 2 artanh(1 - 2 lambda) / (1 - 2 lambda) as written (only for lambda != 1/2)."""
    return 2 * math.atanh(1 - 2 * lam) / (1 - 2 * lam)


def _rows_record(name, statement, equation, rows, reason, **kw):
    """rows: (lhs, rhs, error, tolerance, detail dict); the row closest to failing is shown."""
    if kw.get("relation") == "<=":             # the row with the smallest margin
        i = int(np.argmax([(r[0] - r[1]) / r[3] for r in rows]))
    else:
        i = int(np.argmax([(r[2] + 1e-300) / r[3] for r in rows]))
    return make_claim(name, statement, equation, rows[i][0], rows[i][1], rows[i][2], rows[i][3],
                      reason, passed=all(r[2] <= r[3] for r in rows),
                      details=dict(rows=[r[4] for r in rows], **kw.pop("details", {})), **kw)


def continuous_bernoulli(seed=0):
    """Claim: the continuous Bernoulli's normaliser, density, mean and gradient, by quadrature.

    * ``continuous_bernoulli.normaliser``: ln C(l) of ``ops.continuous_bernoulli_log_normaliser``
      = -ln int_0^1 lambda^x (1 - lambda)^(1-x) dx (quadrature), at 8 lambda incl. 1/2 and 1/2 +- d.
    * ``continuous_bernoulli.bernoulli_mass``: that integral, the total mass of the Bernoulli
      "density" of a grey level, is <= 1/2 (= 1/2 only at lambda = 1/2).
    * ``continuous_bernoulli.density``: int_0^1 exp(-continuous_bernoulli_nll(l, x)) dx = 1.
    * ``continuous_bernoulli.mean``: int_0^1 x p(x) dx = sigmoid(l) - d ln C/dl, the term of the
      backward pass (at the mean, the expected gradient of -ln p is zero).
    * ``continuous_bernoulli.gradient``: the hand-written backward = central differences.
    """
    rng = np.random.default_rng(seed)
    norm_rows, mass_rows, density_rows, mean_rows = [], [], [], []
    for lam in LAMBDAS:
        l = _logit(lam)
        mass, err = _bernoulli_mass(lam)
        log_c = float(lk.continuous_bernoulli_log_normaliser(np.array([l]))[0])
        closed = _closed_form_c(lam) if lam != 0.5 else 2.0
        detail = dict(lam=lam, logit=l, log_c_library=log_c, log_c_quadrature=-math.log(mass),
                      c_closed_form=closed)
        norm_rows.append((log_c, -math.log(mass), abs(log_c + math.log(mass)),
                          err / mass + 8 * EPS * (1 + abs(log_c)), detail))
        mass_rows.append((mass, 0.5, max(mass - 0.5, 0.0), err, detail))

        def density(x, l=l):
            nll, _ = lk.continuous_bernoulli_nll_forward(np.array([[l]]), np.array([[x]]))
            return math.exp(-float(nll[0]))

        total, err_total = quad(density, 0.0, 1.0)
        density_rows.append((total, 1.0, abs(total - 1.0), err_total + 8 * EPS, detail))
        mean_q, err_mean = quad(lambda x, f=density: x * f(x), 0.0, 1.0)
        mean_lib = float(lk.sigmoid(np.array(l)) - lk.continuous_bernoulli_log_normaliser_grad(
            np.array([l]))[0])
        mean_rows.append((mean_lib, mean_q, abs(mean_lib - mean_q),
                          err_mean + err_total * abs(mean_q) + 8 * EPS, detail))
    quad_reason = ("QUADPACK's error estimate plus 64 ulps of the integral of |f| (relative to the "
                   "integral for a logarithm), plus 8 ulps for the library's side; the lambda "
                   "closest to failing is shown")
    records = [
        _rows_record("continuous_bernoulli.normaliser",
                     "The library's stable ln C(l) (a series for |l| < 1) is minus the log of the "
                     "Bernoulli kernel's integral over [0, 1], at 8 lambda including 1/2 and "
                     "1/2 + 1e-4",
                     "ln C(l) = ln(l / tanh(l/2)) = -ln int_0^1 lambda^x (1 - lambda)^(1-x) dx",
                     norm_rows, quad_reason, unit="nats"),
        _rows_record("continuous_bernoulli.bernoulli_mass",
                     "The Bernoulli 'likelihood' of a grey level is not a density on [0, 1]: it "
                     "integrates to 1/C(lambda) <= 1/2",
                     "int_0^1 lambda^x (1 - lambda)^(1-x) dx <= 1/2",
                     mass_rows, "QUADPACK's error estimate; error = excess over 1/2, 0 when the "
                     "inequality holds", relation="<=", unit="abs",
                     details=dict(note="mass of the Bernoulli kernel over [0, 1]: "
                                  + ", ".join(f"{r[0]:.3g}" for r in mass_rows)
                                  + f" at lambda = {', '.join(f'{v:g}' for v in LAMBDAS)}")),
        _rows_record("continuous_bernoulli.density",
                     "exp(-continuous_bernoulli_nll) integrates to 1 over x in [0, 1]",
                     "int_0^1 exp(-ops.continuous_bernoulli_nll_forward(l, x)) dx = 1",
                     density_rows, quad_reason, unit="abs"),
        _rows_record("continuous_bernoulli.mean",
                     "The continuous Bernoulli's mean is sigmoid(l) - d ln C/dl, the term the "
                     "backward pass subtracts (so the expected gradient of -ln p is zero at it)",
                     "int_0^1 x p(x) dx = sigmoid(l) - (1/l - 1/sinh l)",
                     mean_rows, quad_reason + " (the mean's error includes that of the density)",
                     unit="abs"),
    ]
    logits = np.array(GRAD_LOGITS).reshape(3, 4)
    x = rng.uniform(0.0, 1.0, logits.shape)
    nll, cache = lk.continuous_bernoulli_nll_forward(logits, x)
    dnll = rng.uniform(0.5, 2.0, nll.shape)
    analytic = lk.continuous_bernoulli_nll_backward(dnll, cache)

    def f(v):
        return float(dnll @ lk.continuous_bernoulli_nll_forward(v.reshape(logits.shape), x)[0])

    fd, bound = central_difference(f, logits.ravel())
    records.append(compare_gradients(
        "continuous_bernoulli.gradient",
        "ops.continuous_bernoulli_nll_backward equals central differences of the forward, at "
        "logits on both sides of the series/closed-form switch and at 0",
        "dnll/dl = sigmoid(l) - x - (1/l - 1/sinh l) = FD gradient   [ratio lhs = 1]",
        analytic.ravel(), fd, bound, 1.0, details=dict(logits=logits.ravel(), x=x.ravel())))
    return records
