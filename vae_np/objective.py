"""The objective as a component: how the per-sample terms of the trace become one loss.

An objective component has one forward/backward pair:

    forward(trace)   records loss from the posterior's and likelihood's terms (nll, kl, ...)
    backward(trace)  records d loss / d loss = 1 and d loss / d term for each term it read

``NegativeELBO`` is the default: with the analytic KL of a diagonal Gaussian posterior,

    loss = mean_b [ 1/K sum_k nll_kb + kl_b ]          (nats per example)
    d loss / d nll_kb = 1 / (K B),   d loss / d kl_b = 1 / B.

Further objectives (the importance-weighted bound) plug in with the same two methods.
"""
from __future__ import annotations

import numpy as np


class NegativeELBO:
    """-ELBO = E_q[-ln p(x|z)] + KL(q(z|x) || p(z)), Monte Carlo over K samples, analytic KL."""
    equation = "loss = mean_b [ 1/K sum_k nll + kl ]"

    def forward(self, trace):
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


OBJECTIVES = {"elbo": NegativeELBO}
"""objective name -> component class."""
