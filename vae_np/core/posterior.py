"""The approximate posterior q(z|x) as a component: from the encoder's output h to z and the KL.

A posterior component owns the encoder's output heads and has one forward/backward pair:

    forward(trace, h, eps)   records its quantities (here mu, s, sigma, eps, z, kl)
    backward(trace, need_dh) reads d z and d kl from trace.grads, fills d<name> for its own
                             quantities and parameters, and returns d h (None if not needed)

``DiagonalGaussian`` is q(z|x) = N(mu, diag sigma^2) with the reparameterization
z = mu + sigma * eps and the closed-form KL to N(0, I). How sigma is read from its head s is a
small component of its own (``SIGMA_HEADS``), chosen once at construction.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..numerics import LN_2PI
from .layers import Dense


class LogVarSigma:
    """s is the log-variance: sigma = exp(s / 2), dsigma/ds = sigma / 2."""
    equation = "sigma = exp(s / 2)"
    grad_equation = "ds = dsigma * sigma / 2"

    def __init__(self, sigma_min):
        del sigma_min      # exp(s / 2) > 0 needs no bound

    def forward(self, s):
        return ops.sigma_logvar_forward(s)

    def backward(self, dsigma, cache):
        return ops.sigma_logvar_backward(dsigma, cache)


class SoftplusSigma:
    """sigma = softplus(s) + sigma_min, dsigma/ds = sigmoid(s)."""
    equation = "sigma = softplus(s) + sigma_min"
    grad_equation = "ds = dsigma * sigmoid(s)"

    def __init__(self, sigma_min):
        self.sigma_min = sigma_min

    def forward(self, s):
        return ops.sigma_softplus_forward(s, self.sigma_min)

    def backward(self, dsigma, cache):
        return ops.sigma_softplus_backward(dsigma, cache)


SIGMA_HEADS = {"logvar": LogVarSigma, "softplus": SoftplusSigma}
"""sigma parameterization name -> component class (constructed with sigma_min)."""


class DiagonalGaussian:
    """q(z|x) = N(mu, diag sigma^2): two dense heads on h, the reparameterization, the KL.

    Parameters
    ----------
    store : the model's FlatParameters, holding ``encoder.mu.W/b`` and ``encoder.sigma.W/b``
    sigma_head : a SIGMA_HEADS component
    h_name : the trace name of the heads' input (the last encoder layer's output, or x)
    """

    def __init__(self, store, sigma_head, h_name):
        self.mu_head = Dense(store, "encoder.mu")
        self.s_head = Dense(store, "encoder.sigma")
        self.sigma_head = sigma_head
        self.h_name = h_name

    @staticmethod
    def param_spec(width, z_dim):
        """The parameters this component owns: [(prefix, (in, out))] of its dense heads."""
        return [("encoder.mu", (width, z_dim)), ("encoder.sigma", (width, z_dim))]

    def grad_equations(self, sample_terms=False):
        """d<name> -> the backward equation that computes it (see ``backward``); with
        ``sample_terms``, for an objective that used ln p(z) and ln q(z|x) of each sample."""
        h = self.h_name
        eq = {"sigma": "dsigma = sum_k dz * eps + dkl * (sigma - 1/sigma)   (dz/dsigma = eps)",
              "mu": "dmu = sum_k dz + dkl * mu   (dz/dmu = 1)",
              "s": self.sigma_head.grad_equation,
              h: f"d{h} = dmu W_mu^T + ds W_s^T   ({h} fans out to both heads)"}
        if sample_terms:
            eq["sigma"] = "dsigma = sum_k (dz * eps - dln q / sigma)   (d ln q/dsigma = -1/sigma)"
        for head, d in (("encoder.mu", "dmu"), ("encoder.sigma", "ds")):
            eq[head + ".W"], eq[head + ".b"] = f"dW = {h}^T {d}", f"db = sum_b {d}"
        return eq

    def encode(self, h):
        """mu and sigma of q(z|x) from the encoder's output h, without a trace."""
        return self.mu_head.forward(h)[0], self.sigma_head.forward(self.s_head.forward(h)[0])[0]

    def forward(self, trace, h, eps):
        """Record mu, s, sigma, eps, z (K, B, Z) and kl (B,); return z."""
        h_ = self.h_name
        mu, cache = self.mu_head.forward(h)
        mu = trace.record("mu", mu, f"mu = {h_} W + b   (encoder.mu)", cache)
        s, cache = self.s_head.forward(h)
        s = trace.record("s", s, f"s = {h_} W + b   (encoder.sigma)", cache)
        sigma, cache = self.sigma_head.forward(s)
        sigma = trace.record("sigma", sigma, self.sigma_head.equation, cache)
        eps = trace.record("eps", eps, "eps ~ N(0, I)   (K samples per example)")
        z, cache = ops.reparameterize_forward(mu, sigma, eps)
        z = trace.record("z", z, "z = mu + sigma * eps", cache)
        kl, cache = ops.kl_forward(mu, sigma)
        trace.record("kl", kl, "kl = 1/2 sum_j (mu^2 + sigma^2 - 1 - ln sigma^2)", cache)
        return z

    def sample_terms(self, trace):
        """Record ln p(z) and ln q(z|x) per sample (K, B), for an objective that needs them.

        ln p(z) = -1/2 |z|^2 - Z/2 ln 2 pi,
        ln q(z|x) = -1/2 |eps|^2 - sum_j ln sigma_j - Z/2 ln 2 pi   (since (z - mu) / sigma = eps),
        the density at the sample as a function of eps: d ln q/dmu = 0, d ln q/dsigma = -1/sigma.
        """
        v = trace.values
        Z = v["z"].shape[-1]
        trace.record("log_pz", -0.5 * np.sum(v["z"] * v["z"], axis=-1) - 0.5 * Z * LN_2PI,
                     "ln p(z) = -1/2 |z|^2 - Z/2 ln 2 pi")
        trace.record("log_q", -0.5 * np.sum(v["eps"] * v["eps"], axis=-1)
                     - np.sum(np.log(v["sigma"]), axis=-1) - 0.5 * Z * LN_2PI,
                     "ln q(z|x) = -1/2 |eps|^2 - sum ln sigma - Z/2 ln 2 pi")

    def backward(self, trace, need_dh=True):
        """From d z and d kl (and d ln p(z), d ln q if recorded) to d mu, d sigma, d s, the heads'
        parameters and d h."""
        d, caches, v = trace.grads, trace.caches, trace.values
        if "dz_weight" in d:       # an estimator (DReG) that reweights each sample's path to z
            d["z"] = d["z"] * d["dz_weight"][..., None]
        if "log_pz" in d:          # the objective used ln p(z) of each sample
            d["z"] = d["z"] + d["log_pz"][..., None] * -v["z"]          # d ln p(z)/dz = -z
        if "log_q_path" in d:      # ln q's path derivative alone: d ln q/dz = -eps / sigma
            d["z"] = d["z"] + d["log_q_path"][..., None] * -(v["eps"] / v["sigma"])
        # z = mu + sigma * eps:  dz/dmu = 1, dz/dsigma = eps  (each summed over the K samples)
        dmu_z, dsigma_z = ops.reparameterize_backward(d["z"], caches["z"])
        # KL = 1/2 sum(mu^2 + sigma^2 - 1 - ln sigma^2): dKL/dmu = mu, dKL/dsigma = sigma - 1/sigma
        dmu_kl, dsigma_kl = ops.kl_backward(d["kl"], caches["kl"])
        d["mu"] = dmu_z + dmu_kl                  # mu fans out to z and to the KL
        d["sigma"] = dsigma_z + dsigma_kl         # so does sigma
        if "log_q" in d:           # d ln q / d sigma = -1/sigma at fixed eps; d ln q / d mu = 0
            d["sigma"] += np.sum(d["log_q"], axis=0)[..., None] * -(1 / v["sigma"])
        d["s"] = self.sigma_head.backward(d["sigma"], caches["sigma"])     # ds = dsigma dsigma/ds
        # the heads mu = h W + b and s = h W + b:  dW = h^T d(head), db = sum_b d(head)
        dh, d["encoder.mu.W"], d["encoder.mu.b"] = self.mu_head.backward(
            d["mu"], caches["mu"], need_dx=need_dh)
        dh_s, d["encoder.sigma.W"], d["encoder.sigma.b"] = self.s_head.backward(
            d["s"], caches["s"], need_dx=need_dh)
        if need_dh:
            dh += dh_s                            # h fans out to both heads
        return dh
