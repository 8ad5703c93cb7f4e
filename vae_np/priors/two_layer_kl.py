"""The two-layer model's KL with the top layer in closed form given each sample z1
(``top_kl="analytic"`` of ``vae_np.priors.two_layer``, the default with an N(0, I) top):

    kl = 1/K sum_k [ln q(z1|x) - ln p(z1|z2) + KL(q(z2|z1) || N(0, I))]             (B,)

The lower layer is a Monte Carlo term (ln q(z1|x) - ln p(z1|z2) at each sample), the top layer's
KL given z1 the closed form of the Gaussian (``ops.kl_forward``). Its expectation over eps2 is the
Monte Carlo KL's (``verify --claim two_layer_kl``).
"""
from __future__ import annotations

import numpy as np

from .. import ops


class TwoLayerKL:
    """kl = 1/K sum_k [ln q(z1|x) - ln p(z1|z2) + KL(q(z2|z1) || N(0, I))], (B,): the lower layer
    by Monte Carlo, the top layer in closed form given each sample z1 (recorded as kl2 (K, B)).

    Groups for free bits (``record_groups``): the lower layer as one group (ln q(z1|x) of a
    flow does not split into units) and each unit of z2 (closed form per unit): G = 1 + Z2.
    """
    group = "the lower layer, then each unit of z2"

    def __init__(self, posterior):
        self.posterior = posterior

    def forward(self, trace):
        v = trace.values
        log_q = self.posterior.log_density(trace)
        K, B = log_q.shape
        kl2, cache = ops.kl_forward(v["mu2"], v["sigma2"])
        kl2 = trace.record("kl2", kl2.reshape(K, B),
                           "kl2 = KL(q(z2|z1) || N(0, I)) = 1/2 sum_j (mu2^2 + sigma2^2 - 1 - "
                           "ln sigma2^2)", cache)
        trace.record("kl", np.mean(log_q - v["log_pz1"] + kl2, axis=0),
                     "kl = 1/K sum_k [ln q(z1|x) - ln p(z1|z2) + kl2]")

    def record_groups(self, trace):
        """(B, 1 + Z2): 1/K sum_k [ln q(z1|x) - ln p(z1|z2)], then 1/K sum_k KL_j of each z2 unit."""
        v = trace.values
        if "kl_groups" not in v:
            K, B = v["kl2"].shape
            mu2, sigma2 = v["mu2"], v["sigma2"]
            units = 0.5 * (mu2 * mu2 + sigma2 * sigma2 - 1 - 2 * np.log(sigma2))
            lower = np.mean(v["log_q"] - v["log_pz1"], axis=0)[:, None]
            trace.record("kl_groups", np.concatenate(
                [lower, units.reshape(K, B, -1).mean(axis=0)], axis=1),
                "kl_groups = [1/K sum_k (ln q(z1|x) - ln p(z1|z2)), 1/K sum_k kl2_j]")
        return v["kl_groups"]

    def backward(self, trace):
        d, v = trace.grads, trace.values
        K, B = v["kl2"].shape
        dkl = d["kl"] if "kl" in d else np.zeros(B, v["kl"].dtype)
        lower = dkl + d["kl_groups"][:, 0] if "kl_groups" in d else dkl   # the lower group's too
        share = np.broadcast_to(lower / K, (K, B))
        d["log_q"] = d["log_q"] + share if "log_q" in d else share
        d["log_pz1"] = d["log_pz1"] - share if "log_pz1" in d else -share
        d["kl2"] = np.broadcast_to(dkl / K, (K, B))
        d["mu2"], d["sigma2"] = ops.kl_backward(d["kl2"].reshape(K * B), trace.caches["kl2"])
        if "kl_groups" in d:       # each z2 unit's own share: dkl_j/dmu2 = mu2, ...
            g = np.broadcast_to(d["kl_groups"][:, 1:] / K, (K,) + d["kl_groups"][:, 1:].shape)
            g = g.reshape(K * B, -1)
            d["mu2"] = d["mu2"] + g * v["mu2"]
            d["sigma2"] = d["sigma2"] + g * (v["sigma2"] - 1 / v["sigma2"])

    def grad_equations(self, eq, terms):
        if "kl" not in eq:
            return
        dkl = "(dkl + dkl_1)" if "kl_groups" in eq else "dkl"
        eq["log_q"] = (f"{eq['log_q']} + {dkl} / K" if "log_q" in eq else
                       f"dln q = {dkl} / K   (kl = 1/K sum_k [ln q - ln p(z1|z2) + kl2])")
        eq["log_pz1"] = (f"{eq['log_pz1']} - {dkl} / K" if "log_pz1" in eq else
                         f"dln p(z1|z2) = -{dkl} / K")
        eq["kl2"] = "dkl2 = dkl / K"
        terms.setdefault("mu2", []).append("dkl2 * mu2")
        terms.setdefault("sigma2", []).append("dkl2 * (sigma2 - 1/sigma2)")
        if "kl_groups" in eq:
            terms["mu2"].append("dkl_j / K * mu2")
            terms["sigma2"].append("dkl_j / K * (sigma2 - 1/sigma2)")
