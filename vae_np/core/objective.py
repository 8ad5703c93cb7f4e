"""The objective as a component: how the per-sample terms of the trace become one loss.

An objective component has one forward/backward pair:

    forward(trace, posterior)  records loss from the posterior's and likelihood's terms (nll, kl,
                               or the per-sample ln p(z) and ln q(z|x) it asks the posterior for)
    backward(trace)            records d loss / d term for each term it read

``NegativeELBO`` is the default: with the analytic KL of a diagonal Gaussian posterior,

    loss = mean_b [ 1/K sum_k nll_kb + kl_b ]          (nats per example)
    d loss / d nll_kb = 1 / (K B),   d loss / d kl_b = 1 / B.

``NegativeIWAE`` is the importance-weighted bound of Burda, Grosse & Salakhutdinov (2016): with
the log-weights ln w_kb = -nll_kb + ln p(z_kb) - ln q(z_kb | x_b),

    loss = -mean_b [ logsumexp_k ln w_kb - ln K ]
    d loss / d ln w_kb = -w~_kb / B,   w~_kb = softmax_k(ln w_kb)  (the normalised weights)

and each term of ln w gets its share: d nll = w~ / B, d ln p(z) = -w~ / B, d ln q = w~ / B. At K = 1
this is the single-sample ELBO with a Monte Carlo KL, ln q(z|x) - ln p(z), in place of the
analytic one: equal to the ELBO in expectation, not sample by sample.
"""
from __future__ import annotations

import math

import numpy as np


class NegativeELBO:
    """-ELBO = E_q[-ln p(x|z)] + KL(q(z|x) || p(z)), Monte Carlo over K samples, analytic KL."""
    equation = "loss = mean_b [ 1/K sum_k nll + kl ]"
    uses_sample_terms = False

    def forward(self, trace, posterior):
        nll, kl = trace.values["nll"], trace.values["kl"]
        loss = np.mean(nll.mean(axis=0) + kl)
        trace.record("loss", loss, self.equation)

    grad_equations = {"loss": "dloss = 1", "nll": "dnll = d loss / d nll = 1 / (K B)",
                      "kl": "dkl = d loss / d kl = 1 / B"}

    def backward(self, trace):
        K, B = trace.values["nll"].shape
        dtype = trace.values["nll"].dtype
        d = trace.grads
        d["loss"] = np.ones((), dtype=dtype)
        d["nll"] = np.full((K, B), 1 / (K * B), dtype=dtype)    # d loss / d nll_kb
        d["kl"] = np.full(B, 1 / B, dtype=dtype)                # d loss / d kl_b


class NegativeIWAE:
    """-L_K = -E[ln 1/K sum_k w_k], w_k = p(x, z_k) / q(z_k | x), z_k ~ q(z|x), K = eps.shape[0]."""
    equation = "loss = -mean_b [ logsumexp_k ln w - ln K ]"
    uses_sample_terms = True          # ln p(z) and ln q(z|x) of each sample
    grad_equations = {"loss": "dloss = 1",
                      "log_w": "dln w = -w~ / B,  w~ = softmax_k(ln w)",
                      "nll": "dnll = -dln w = w~ / B",
                      "log_pz": "dln p(z) = dln w = -w~ / B",
                      "log_q": "dln q = -dln w = w~ / B",
                      "kl": "dkl = 0   (the analytic KL is not part of this bound)"}

    def forward(self, trace, posterior):
        posterior.sample_terms(trace)          # ln p(z) and ln q(z|x) per sample, (K, B)
        v = trace.values
        log_w = trace.record("log_w", -v["nll"] + v["log_pz"] - v["log_q"],
                             "ln w = -nll + ln p(z) - ln q(z|x)")
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



class NegativeIWAEDReG(NegativeIWAE):
    """The IWAE bound with the doubly-reparameterized gradient estimator (Tucker et al. 2019).

    The value is the IWAE loss and the decoder's gradient is the IWAE gradient. The encoder's
    gradient is the DReG estimator, which is not the gradient of this batch's loss but has the
    same expectation over eps, with a variance that does not blow up as K grows:

        grad_phi = -1/B sum_b sum_k w~_bk^2  d ln w_bk / d z_bk  d z_bk / d phi

    where d ln w / dz is the path derivative only: q's parameters are held fixed in ln q, so
    d ln q / dz = -(z - mu) / sigma^2 = -eps / sigma, and there is no d ln q / d sigma term.
    In the backward pass: dnll = w~ / B as for IWAE (the decoder's parameters), then the
    decoder's dz is weighted by w~ once more (``dz_weight``; w~^2 in all), d ln p(z) = -w~^2 / B
    and the path term d ln q = w~^2 / B reach z, and no gradient reaches the analytic KL.
    """
    equation = "loss = -mean_b [ logsumexp_k ln w - ln K ]   (DReG encoder gradient)"
    grad_equations = {**NegativeIWAE.grad_equations,
                      "log_pz": "dln p(z) = -w~^2 / B   (DReG: for the encoder's path)",
                      "log_q": "(DReG: ln q's path term w~^2 / B * (-eps / sigma) reaches dz)"}

    def backward(self, trace):
        super().backward(trace)
        d = trace.grads
        B = d["log_w"].shape[1]
        w_tilde = -B * d["log_w"]                    # the normalised weights again
        d["dz_weight"] = w_tilde                     # decoder's path to z: w~ (w~/B) dnll/dz
        d["log_pz"] = -w_tilde * w_tilde / B
        d["log_q_path"] = w_tilde * w_tilde / B
        del d["log_q"]                               # no score term: q's parameters held fixed


OBJECTIVES = {"elbo": NegativeELBO, "iwae": NegativeIWAE}
"""objective name -> component class."""
ESTIMATORS = {("iwae", "dreg"): NegativeIWAEDReG}
"""(objective, estimator) -> component class for estimators other than the objective's own
gradient ("standard")."""
