"""q(z|x) with a normalizing flow: a diagonal Gaussian q_0 followed by L amortized flow steps.

Rezende & Mohamed (2015): z_0 = mu + sigma * eps, z_l = f_l(z_{l-1}) for l = 1..L, and

    ln q_L(z_L | x) = ln q_0(z_0 | x) - sum_l ln |det d f_l / d z_{l-1}|.

q_0 is the design card's ``DiagonalGaussian`` itself (its heads encoder.mu and encoder.sigma, its
reparameterization, its ln q_0 and their backward), with its sample named z_0. The parameters of
every step are produced per example by one more encoder head, ``encoder.flow``: a Dense layer from
h to L * P raw numbers (P = ``flow_chain.raw_size``), step l reading columns [(l-1) P, l P).
``flow_chain`` maps raw numbers to an invertible step (planar: w.u_hat > -1; radial: alpha > 0,
beta >= -alpha).

The family is chosen by the keywords ``flow`` (a ``flow_chain.FLOW_KINDS`` name) and
``flow_length`` (L >= 0) of ``VAE``, which it declares in ``options`` (``vae_np.core.registry``);
``vae_np.flows`` registers it.

Shapes: B examples, K samples each, Z latent units, N = K B rows through the chain (sample-major,
each example's raw parameters repeated over its K samples).

Trace names, in forward order:

    mu, s, sigma, eps      as for DiagonalGaussian                        (B, Z), (K, B, Z)
    z_0                    mu + sigma * eps                               (K, B, Z)
    flow                   the raw flow parameters, h W + b               (B, L P)
    z_1, logdet_1, ...     each step's output and ln |det|                (K, B, Z), (K, B)
    z                      z_L: what the decoder and the prior read       (K, B, Z)
    log_q0                 ln q_0(z_0) = -|eps|^2/2 - sum ln sigma - Z/2 ln 2 pi      (K, B)
    log_q                  ln q_L(z_L|x) = ln q_0(z_0) - sum_l logdet_l, when asked   (K, B)

A flow has no closed-form KL (``gaussian`` is None), so the prior's ``kl_term`` is the Monte Carlo
1/K sum_k [ln q_L(z_L) - ln p(z_L)], which asks for log_q. ln q_0 is written as a function of eps
(as the reparameterized estimator uses it): d ln q_0 / d mu = 0, d ln q_0 / d sigma = -1 / sigma,
and nothing reaches z_0 from it.
"""
from __future__ import annotations

import numpy as np

from .._validate import check_choice, check_int
from ..core.layers import Dense
from ..core.posterior import LOG_Q_PATH, DiagonalGaussian
from ..core.registry import Family
from . import chain as flow_chain


def log_q_flow(log_q0, logdets):
    """ln q_L(z_L) = ln q_0(z_0) - sum_l logdet_l (the change of variables), (K, B)."""
    total = log_q0
    for logdet in logdets:
        total = total - logdet
    return total


class FlowPosterior(Family):
    """q_L(z|x): a DiagonalGaussian q_0, then ``flow_length`` steps of flow ``flow``.

    Parameters
    ----------
    store : the model's FlatParameters, holding encoder.mu, encoder.sigma, encoder.flow (W, b)
    sigma_head : a posterior.SIGMA_HEADS component
    h_name : the trace name of the heads' input
    z_dim : Z
    flow : a key of ``flow_chain.FLOW_KINDS``
    flow_length : L >= 0
    """
    options = {"flow": None, "flow_length": None}
    gaussian = None                  # q_L is not Gaussian: no closed-form KL
    capabilities = frozenset()
    unavailable = {
        LOG_Q_PATH: "for a flow, d ln q_L(z_L) / d z_L at fixed parameters goes through the "
                    "inverse of the flow (a planar or radial step has no closed-form inverse)"}
    """capability -> why this posterior cannot give it (``VAE`` refuses an objective needing it)."""

    @classmethod
    def check_options(cls, flow=None, flow_length=None):
        """None for (None, None); else (a FLOW_KINDS name, an int >= 0), checked."""
        if flow is None:
            if flow_length is not None:
                raise ValueError(f"flow_length applies to a flow posterior: pass flow as one of "
                                 f"{sorted(flow_chain.FLOW_KINDS)} with it, or flow_length=None; "
                                 f"got flow_length={flow_length!r} with flow=None")
            return None
        check_choice("flow", flow, flow_chain.FLOW_KINDS)
        if flow_length is None:
            raise ValueError(f"flow_length must be an integer >= 0 (the number of flow steps) "
                             f"with flow={flow!r}, got None")
        return {"flow": flow, "flow_length": check_int("flow_length", flow_length, minimum=0)}

    def __init__(self, store, sigma_head, h_name, z_dim, *, flow, flow_length):
        self.base = DiagonalGaussian(store, sigma_head, h_name, z_dim, z_name="z_0",
                                     log_q_name="log_q0", density="q_0(z_0)")
        self.flow_head = Dense(store, "encoder.flow") if flow_length else None
        self.sigma_head = sigma_head
        self.h_name = h_name
        self.kind, self.length, self.z_dim = flow, flow_length, z_dim
        self.noise_dim = z_dim
        self.raw_size = flow_chain.raw_size(flow, z_dim)
        self.label = f"{flow} flow x {flow_length}"
        self.work_per_sample = flow_length * (3 * self.raw_size + 4 * z_dim + 4)
        """Approximate work-array numbers per (sample, example) pair, for evaluation chunks."""

    @staticmethod
    def param_spec(width, z_dim, *, flow, flow_length):
        """[(prefix, (in, out))] of the heads: q_0's mu and sigma (Z each) and, for L >= 1, flow
        (L P raw numbers; a zero-length flow has no flow head)."""
        spec = DiagonalGaussian.param_spec(width, z_dim)
        if flow_length:
            spec.append(("encoder.flow", (width, flow_length * flow_chain.raw_size(flow, z_dim))))
        return spec

    def grad_equations(self, eq, terms):
        """Add d<name> -> the backward equation that computes it (see ``backward``)."""
        h, L = self.h_name, self.length
        eq["log_q0"] = "dln q_0 = dln q   (ln q_L = ln q_0 - sum_l logdet_l)"
        eq[f"z_{L}"] = f"dz_{L} = dz   (z = z_{L})"
        eq["z_0"] = ("dz_0 = step 1's chain rule applied to dz_1 and dlogdet_1" if L else
                     "dz_0 = dz   (no flow step)")
        if L:
            eq["flow"] = "dflow = sum_k (each step's draw_l, in its columns)   (repeated over K)"
        for l in range(1, L + 1):
            eq[f"logdet_{l}"] = "dlogdet = -dln q   (ln q_L = ln q_0 - sum_l logdet_l)"
            if l < L:
                eq[f"z_{l}"] = f"dz_{l} = step {l + 1}'s chain rule (dz_{l + 1}, dlogdet_{l + 1})"
        self.base.grad_equations(eq, terms)
        if L:
            eq[h] = f"d{h} = dmu W_mu^T + ds W_s^T + dflow W_flow^T   ({h} feeds three heads)"
            eq["encoder.flow.W"], eq["encoder.flow.b"] = f"dW = {h}^T dflow", "db = sum_b dflow"

    def encode(self, h):
        """mu and sigma of q_0(z|x) from the encoder's output h, without a trace."""
        return self.base.encode(h)

    def forward(self, trace, h, eps):
        """Record the names listed in the module docstring; return z = z_L (K, B, Z)."""
        h_, P, L = self.h_name, self.raw_size, self.length
        z = self.base.forward(trace, h, eps)                # mu, s, sigma, eps, z_0
        K, B, Z = z.shape
        if L:
            raw, cache = self.flow_head.forward(h)
            raw = trace.record("flow", raw, f"flow = {h_} W + b   (encoder.flow: {L} x {P} raw)",
                               cache)
            rows = np.broadcast_to(raw, (K,) + raw.shape).reshape(K * B, L * P)  # repeat over K
        for l in range(1, L + 1):
            (_, z_next), (logdet,), step_caches = flow_chain.chain_forward(
                self.kind, z.reshape(K * B, Z), [rows[:, (l - 1) * P:l * P]])
            z = trace.record(f"z_{l}", z_next.reshape(K, B, Z),
                             f"z_{l} = f_{l}(z_{l - 1})   ({self.kind})", step_caches)
            trace.record(f"logdet_{l}", logdet.reshape(K, B),
                         f"logdet_{l} = ln |det df_{l}/dz_{l - 1}|")
        z = trace.record("z", z, f"z = z_{L}   (the decoder's input and the prior's argument)")
        self.base.log_density(trace)                        # log_q0
        return z

    def log_density(self, trace):
        """ln q_L(z_L|x) = ln q_0(z_0) - sum_l logdet_l per sample (K, B), recorded once as log_q."""
        v = trace.values
        if "log_q" not in v:
            trace.record("log_q", log_q_flow(v["log_q0"], [v[f"logdet_{l}"]
                                                           for l in range(1, self.length + 1)]),
                         "ln q(z|x) = ln q_0(z_0) - sum_l logdet_l")
        return v["log_q"]

    def backward(self, trace, need_dh=True):
        """From d z and d log_q to every d<name> of the module docstring, the heads' parameters
        and d h (q_0's part by the DiagonalGaussian's backward)."""
        d, caches, v = trace.grads, trace.caches, trace.values
        K, B, Z = v["z"].shape
        P, L = self.raw_size, self.length
        d_log_q = d["log_q"] if "log_q" in d else np.zeros((K, B), dtype=v["z"].dtype)
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
        # q_0: z_0 = mu + sigma * eps and ln q0 (d ln q0 / d sigma = -1/sigma at fixed eps)
        dh = self.base.backward(trace, need_dh)
        if L:   # the flow head flow = h W + b:  dW = h^T dflow, db = sum_b dflow
            dh_f, d["encoder.flow.W"], d["encoder.flow.b"] = self.flow_head.backward(
                d["flow"], caches["flow"], need_dx=need_dh)
            if need_dh:
                dh += dh_f                                  # h feeds three heads
        return dh
