"""q(z|x) with a normalizing flow: a diagonal Gaussian q_0 followed by L amortized flow steps.

Rezende & Mohamed (2015): z_0 = mu + sigma * eps, z_l = f_l(z_{l-1}) for l = 1..L, and

    ln q_L(z_L | x) = ln q_0(z_0 | x) - sum_l ln |det d f_l / d z_{l-1}|.

The parameters of every step are produced per example by one more encoder head,
``encoder.flow``: a Dense layer from h to L * P raw numbers (P = ``flow_chain.raw_size``),
step l reading columns [(l-1) P, l P). ``flow_chain`` maps raw numbers to an invertible step
(planar: w.u_hat > -1; radial: alpha > 0, beta >= -alpha).

Shapes: B examples, K samples each, Z latent units, N = K B rows through the chain (sample-major,
each example's raw parameters repeated over its K samples).

Trace names, in forward order:

    mu, s, sigma, eps      as for DiagonalGaussian                        (B, Z), (K, B, Z)
    z_0                    mu + sigma * eps                               (K, B, Z)
    flow                   the raw flow parameters, h W + b               (B, L P)
    z_1, logdet_1, ...     each step's output and ln |det|                (K, B, Z), (K, B)
    z                      z_L: what the decoder and the prior read       (K, B, Z)
    log_q0                 ln q_0(z_0) = -|eps|^2/2 - sum ln sigma - Z/2 ln 2 pi      (K, B)
    kl                     1/K sum_k [ln q_0(z_0) - sum_l logdet_l - ln p(z_L)]      (B,)

``kl`` is a Monte Carlo estimate (a flow has no closed-form KL), so ``NegativeELBO`` works
unchanged. ``sample_terms`` adds log_pz = ln p(z_L) and log_q = ln q_0(z_0) - sum_l logdet_l for
the IWAE objective. ln q_0 is written as a function of eps (as the reparameterized estimator
uses it): d ln q_0 / d mu = 0, d ln q_0 / d sigma = -1 / sigma, and nothing reaches z_0 from it.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..core.layers import Dense
from ..numerics import LN_2PI
from . import chain as flow_chain


def log_standard_normal(z):
    """ln N(z; 0, I) over the last axis: -1/2 |z|^2 - Z/2 ln 2 pi.  (..., Z) -> (...)."""
    return -0.5 * np.sum(z * z, axis=-1) - 0.5 * z.shape[-1] * LN_2PI


def log_q_flow(log_q0, logdets):
    """ln q_L(z_L) = ln q_0(z_0) - sum_l logdet_l (the change of variables), (K, B)."""
    total = log_q0
    for logdet in logdets:
        total = total - logdet
    return total


class FlowPosterior:
    """q_L(z|x): a DiagonalGaussian q_0, then ``length`` steps of flow ``kind``.

    Parameters
    ----------
    store : the model's FlatParameters, holding encoder.mu, encoder.sigma, encoder.flow (W, b)
    sigma_head : a posterior.SIGMA_HEADS component
    h_name : the trace name of the heads' input
    kind : a key of ``flow_chain.FLOW_KINDS``;  length : L >= 0;  z_dim : Z
    """

    refused_estimators = {
        "dreg": "the DReG estimator needs the path derivative d ln q_L(z_L) / d z_L with q's "
                "parameters held fixed, which goes through the inverse of the flow (a planar or "
                "radial step has no closed-form inverse); use estimator='standard'"}
    """estimator -> why this posterior cannot give it (``VAE`` refuses it with that reason)."""

    def __init__(self, store, sigma_head, h_name, kind, length, z_dim):
        self.mu_head = Dense(store, "encoder.mu")
        self.s_head = Dense(store, "encoder.sigma")
        self.flow_head = Dense(store, "encoder.flow") if length else None
        self.sigma_head = sigma_head
        self.h_name = h_name
        self.kind, self.length, self.z_dim = kind, length, z_dim
        self.raw_size = flow_chain.raw_size(kind, z_dim)
        self.work_per_sample = length * (3 * self.raw_size + 4 * z_dim + 4)
        """Approximate work-array numbers per (sample, example) pair, for evaluation chunks."""

    @staticmethod
    def param_spec(width, z_dim, kind, length):
        """[(prefix, (in, out))] of the heads: mu, sigma (Z each) and, for L >= 1, flow (L P raw
        numbers; a zero-length flow has no flow head)."""
        spec = [("encoder.mu", (width, z_dim)), ("encoder.sigma", (width, z_dim))]
        if length:
            spec.append(("encoder.flow", (width, length * flow_chain.raw_size(kind, z_dim))))
        return spec

    def grad_equations(self, sample_terms=False):
        """d<name> -> the backward equation that computes it (see ``backward``)."""
        h, L = self.h_name, self.length
        dq = "dkl / K + dln q" if sample_terms else "dkl / K"
        dp = "-dkl / K + dln p(z)" if sample_terms else "-dkl / K"
        eq = {"log_q0": f"dln q0 = {dq}",
              "z": f"dz = (decoder's dz) + ({dp}) * (-z)   (d ln p(z)/dz = -z, at z = z_L)",
              f"z_{L}": f"dz_{L} = dz   (z = z_{L})",
              "z_0": "dz_0 = step 1's chain rule applied to dz_1 and dlogdet_1" if L else
                     "dz_0 = dz   (no flow step)",
              "mu": "dmu = sum_k dz_0   (dz_0/dmu = 1; ln q0 does not depend on mu at fixed eps)",
              "sigma": "dsigma = sum_k (dz_0 * eps - dln q0 / sigma)   (d ln q0/dsigma = -1/sigma)",
              "s": self.sigma_head.grad_equation,
              h: f"d{h} = dmu W_mu^T + ds W_s^T + dflow W_flow^T   ({h} feeds three heads)"}
        if L:
            eq["flow"] = "dflow = sum_k (each step's draw_l, in its columns)   (repeated over K)"
        for l in range(1, L + 1):
            eq[f"logdet_{l}"] = "dlogdet = -dln q0   (ln q_L = ln q0 - sum_l logdet_l)"
            if l < L:
                eq[f"z_{l}"] = f"dz_{l} = step {l + 1}'s chain rule (dz_{l + 1}, dlogdet_{l + 1})"
        if sample_terms:
            eq["log_pz"] = "dln p(z), from the objective"
            eq["log_q"] = "dln q, from the objective (reaches ln q0 and every logdet)"
        heads = (("encoder.mu", "dmu"), ("encoder.sigma", "ds"), ("encoder.flow", "dflow"))
        for head, d in heads[:3 if L else 2]:
            eq[head + ".W"], eq[head + ".b"] = f"dW = {h}^T {d}", f"db = sum_b {d}"
        return eq

    def encode(self, h):
        """mu and sigma of q_0(z|x) from the encoder's output h, without a trace."""
        return self.mu_head.forward(h)[0], self.sigma_head.forward(self.s_head.forward(h)[0])[0]

    def _log_prior(self, zs):
        """ln p at the flow's output z_L (zs = [z_0, ..., z_L])."""
        return log_standard_normal(zs[-1])

    def forward(self, trace, h, eps):
        """Record the names listed in the module docstring; return z = z_L (K, B, Z)."""
        h_, P, L = self.h_name, self.raw_size, self.length
        mu, cache = self.mu_head.forward(h)
        mu = trace.record("mu", mu, f"mu = {h_} W + b   (encoder.mu)", cache)
        s, cache = self.s_head.forward(h)
        s = trace.record("s", s, f"s = {h_} W + b   (encoder.sigma)", cache)
        sigma, cache = self.sigma_head.forward(s)
        sigma = trace.record("sigma", sigma, self.sigma_head.equation, cache)
        eps = trace.record("eps", eps, "eps ~ N(0, I)   (K samples per example)")
        z, cache = ops.reparameterize_forward(mu, sigma, eps)
        z = trace.record("z_0", z, "z_0 = mu + sigma * eps", cache)
        K, B, Z = z.shape
        if L:
            raw, cache = self.flow_head.forward(h)
            raw = trace.record("flow", raw, f"flow = {h_} W + b   (encoder.flow: {L} x {P} raw)",
                               cache)
            rows = np.broadcast_to(raw, (K,) + raw.shape).reshape(K * B, L * P)  # repeat over K
        zs, logdets = [z], []
        for l in range(1, L + 1):
            (_, z_next), (logdet,), step_caches = flow_chain.chain_forward(
                self.kind, z.reshape(K * B, Z), [rows[:, (l - 1) * P:l * P]])
            z = trace.record(f"z_{l}", z_next.reshape(K, B, Z),
                             f"z_{l} = f_{l}(z_{l - 1})   ({self.kind})", step_caches)
            logdets.append(trace.record(f"logdet_{l}", logdet.reshape(K, B),
                                        f"logdet_{l} = ln |det df_{l}/dz_{l - 1}|"))
            zs.append(z)
        z = trace.record("z", z, f"z = z_{L}   (the decoder's input and the prior's argument)")
        zs[-1] = z
        log_q0 = trace.record(
            "log_q0", -0.5 * np.sum(eps * eps, axis=-1) - np.sum(np.log(sigma), axis=-1)
            - 0.5 * Z * LN_2PI, "ln q_0(z_0) = -1/2 |eps|^2 - sum ln sigma - Z/2 ln 2 pi")
        kl = np.mean(log_q_flow(log_q0, logdets) - self._log_prior(zs), axis=0)
        trace.record("kl", kl, "kl = 1/K sum_k [ln q_0(z_0) - sum_l logdet_l - ln p(z_L)]   "
                               "(Monte Carlo)")
        return z

    def sample_terms(self, trace):
        """Record ln p(z_L) and ln q_L(z_L|x) = ln q_0(z_0) - sum_l logdet_l per sample (K, B)."""
        v, L = trace.values, self.length
        zs = [v[f"z_{l}"] for l in range(L)] + [v["z"]]
        trace.record("log_pz", self._log_prior(zs), "ln p(z) = -1/2 |z_L|^2 - Z/2 ln 2 pi")
        trace.record("log_q", log_q_flow(v["log_q0"], [v[f"logdet_{l}"] for l in range(1, L + 1)]),
                     "ln q(z|x) = ln q_0(z_0) - sum_l logdet_l")

    def backward(self, trace, need_dh=True):
        """From d z and d kl (and d ln p(z), d ln q if recorded) to every d<name> of the module
        docstring, the heads' parameters and d h."""
        d, caches, v = trace.grads, trace.caches, trace.values
        if "dz_weight" in d or "log_q_path" in d:
            raise ValueError(f"estimator='dreg' is not supported with a flow posterior: "
                             f"{self.refused_estimators['dreg']}")
        K, B, Z = v["z"].shape
        P, L = self.raw_size, self.length
        # kl = 1/K sum_k [ln q0 - sum logdet - ln p(z)]; the objective may also read ln p, ln q
        d_log_p = -d["kl"] / K + d.get("log_pz", 0.0)      # d loss / d ln p(z), (K, B)
        d_log_q = np.broadcast_to(d["kl"] / K + d.get("log_q", 0.0), (K, B))   # d / d ln q_L
        d["z"] = d["z"] + d_log_p[..., None] * -v["z"]      # d ln p(z)/dz = -z (the prior at z_L)
        d[f"z_{L}"] = d["z"]                                # z = z_L
        d["log_q0"] = d_log_q * 1                           # d ln q_L / d ln q0 = 1
        draws = np.empty((K, B, L * P), dtype=v["z"].dtype)
        for l in range(L, 0, -1):
            d[f"logdet_{l}"] = -d_log_q                     # d ln q_L / d logdet_l = -1
            # step l's chain rule (incl. its invertibility reparameterization): dz_{l-1}, draw_l
            dz_prev, (draw,) = flow_chain.chain_backward(
                d[f"z_{l}"].reshape(K * B, Z), d[f"logdet_{l}"].reshape(K * B), caches[f"z_{l}"])
            d[f"z_{l - 1}"] = dz_prev.reshape(K, B, Z)
            draws[:, :, (l - 1) * P:l * P] = draw.reshape(K, B, P)
        if L:
            d["flow"] = draws.sum(axis=0)                   # raw parameters repeated over K
        # z_0 = mu + sigma * eps:  dz_0/dmu = 1, dz_0/dsigma = eps  (summed over K)
        d["mu"], dsigma_z = ops.reparameterize_backward(d["z_0"], caches["z_0"])
        # ln q0 = -1/2 |eps|^2 - sum ln sigma - const:  d ln q0 / d sigma = -1/sigma at fixed eps
        d["sigma"] = dsigma_z + np.sum(d["log_q0"], axis=0)[..., None] * -(1 / v["sigma"])
        d["s"] = self.sigma_head.backward(d["sigma"], caches["sigma"])     # ds = dsigma dsigma/ds
        # the heads mu, s, flow = h W + b:  dW = h^T d(head), db = sum_b d(head)
        dh, d["encoder.mu.W"], d["encoder.mu.b"] = self.mu_head.backward(
            d["mu"], caches["mu"], need_dx=need_dh)
        dh_s, d["encoder.sigma.W"], d["encoder.sigma.b"] = self.s_head.backward(
            d["s"], caches["s"], need_dx=need_dh)
        if need_dh:
            dh += dh_s                                      # h fans out to the heads
        if L:
            dh_f, d["encoder.flow.W"], d["encoder.flow.b"] = self.flow_head.backward(
                d["flow"], caches["flow"], need_dx=need_dh)
            if need_dh:
                dh += dh_f
        return dh
