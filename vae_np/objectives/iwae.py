"""The importance-weighted bound of Burda, Grosse & Salakhutdinov (2016) as an objective.

With the log-weights ln w_kb = -nll_kb + ln p(z_kb) - ln q(z_kb | x_b),

    loss = -mean_b [ logsumexp_k ln w_kb - ln K ]
    d loss / d ln w_kb = -w~_kb / B,   w~_kb = softmax_k(ln w_kb)  (the normalised weights)

and each term of ln w gets its share: d nll = w~ / B, d ln p(z) = -w~ / B, d ln q = w~ / B. ln p(z)
is the prior's and ln q(z|x) the posterior's (``log_density``), so the bound works with every
posterior family and prior. At K = 1 this is the single-sample ELBO with a Monte Carlo KL,
ln q(z|x) - ln p(z), in place of the analytic one: equal to the ELBO in expectation, not sample by
sample.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.objective import Objective, log_weights


class NegativeIWAE(Objective):
    """-L_K = -E[ln 1/K sum_k w_k], w_k = p(x, z_k) / q(z_k | x), z_k ~ q(z|x), K = eps.shape[0]."""
    equation = "loss = -mean_b [ logsumexp_k ln w - ln K ]"
    grad_equations = {"loss": "dloss = 1",
                      "log_w": "dln w = -w~ / B,  w~ = softmax_k(ln w)",
                      "nll": "dnll = -dln w = w~ / B",
                      "log_pz": "dln p(z) = dln w = -w~ / B",
                      "log_q": "dln q = -dln w = w~ / B",
                      "kl": "dkl = 0   (the ELBO's KL is not part of this bound)"}

    def forward(self, trace, model):
        log_w = log_weights(trace, model)      # records ln p(z), ln q(z|x) and ln w, (K, B)
        K = log_w.shape[0]
        peak = log_w.max(axis=0)               # logsumexp without overflow: shift by the max
        log_mean_w = peak + np.log(np.mean(np.exp(log_w - peak), axis=0))
        trace.record("loss", -np.mean(log_mean_w), self.equation,
                     cache=dict(peak=peak, log_mean_w=log_mean_w, K=K))

    def backward(self, trace):
        v, d = trace.values, trace.grads
        log_w = v["log_w"]
        K, B = log_w.shape
        w_tilde = np.exp(log_w - log_w.max(axis=0))
        w_tilde /= w_tilde.sum(axis=0)         # normalised importance weights, sum_k w~ = 1
        # A weight below sqrt(tiny) (1e-19 in float32) changes the gradient by less than that
        # relative to the largest weight (>= 1/K): far below rounding. Left in, its products
        # through the decoder's backward become subnormal numbers, which the CPU computes
        # tens of times slower (a K = 50 step took 2.6 x as long); so it is set to 0.
        w_tilde[w_tilde < math.sqrt(np.finfo(w_tilde.dtype).tiny)] = 0
        d["loss"] = np.ones((), dtype=log_w.dtype)
        d["log_w"] = -w_tilde / B
        d["nll"] = -d["log_w"]                 # ln w = -nll + ln p(z) - ln q(z|x)
        d["log_pz"] = d["log_w"]
        d["log_q"] = -d["log_w"]
        d["kl"] = np.zeros(B, dtype=log_w.dtype)
