"""The IWAE bound with the doubly-reparameterized gradient estimator (Tucker et al. 2019).

The value is the IWAE loss and the decoder's gradient is the IWAE gradient. The encoder's gradient
is the DReG estimator, which is not the gradient of this batch's loss but has the same expectation
over eps, with a variance that does not blow up as K grows:

    grad_phi = -1/B sum_b sum_k w~_bk^2  d ln w_bk / d z_bk  d z_bk / d phi

where d ln w / dz is the path derivative only: q's parameters are held fixed in ln q, so for the
diagonal Gaussian d ln q / dz = -(z - mu) / sigma^2 = -eps / sigma, and there is no
d ln q / d sigma term.

How it reaches the model, without the posterior knowing about it:

- ``backward`` sends dnll = w~ / B as for IWAE (the decoder's parameters get the IWAE gradient),
  d ln p(z) = -w~^2 / B, nothing to ln q itself, and w~^2 / B to the posterior's optional output
  ``log_q_path`` (ln q at the sample with q's parameters held fixed: only its path derivative
  reaches z). A posterior without that capability (a flow, whose path derivative would go through
  the inverse of the flow) makes the model refuse this estimator, from ``requires``.
- ``backward_z``, the hook after the decoder's backward, weights the decoder's path to z by w~
  once more (w~^2 in all), before the prior's and the posterior's terms join it.
- A prior with parameters of its own (theta: a learned mean) is part of the generative model,
  whose gradient is the IWAE one: ln p(z) reaches theta with d ln p(z) = -w~ / B, not the
  encoder path's -w~^2 / B. ``backward`` records that weight apart, as d log_pz_theta
  (``vae_np.core.prior.LOG_PZ_THETA``), and ``prior_requires`` makes the model refuse a prior
  with parameters whose backward does not read it (it would send theta the w~^2 weight: a biased
  gradient). The VampPrior and the two-layer prior are refused before that, for their own
  reasons (``unavailable``).
"""
from __future__ import annotations

from ..core.posterior import LOG_Q_PATH
from ..core.prior import LOG_PZ_THETA, PRIOR_PARAMETER_GRADIENT
from .iwae import NegativeIWAE


class NegativeIWAEDReG(NegativeIWAE):
    """The IWAE loss; the DReG estimator of its encoder gradient."""
    equation = "loss = -mean_b [ logsumexp_k ln w - ln K ]   (DReG encoder gradient)"
    grad_equations = {**NegativeIWAE.grad_equations,
                      "log_pz": "dln p(z) = -w~^2 / B   (DReG: for the encoder's path)",
                      LOG_PZ_THETA: "dln p(z) = -w~ / B   (for the prior's own parameters: "
                                    "IWAE's)",
                      "log_q": "(DReG: ln q's path term w~^2 / B * (-eps / sigma) reaches dz)"}
    requires = {LOG_Q_PATH: "the DReG estimator needs the path derivative d ln q(z|x) / dz with "
                            "q's parameters held fixed"}
    prior_requires = {PRIOR_PARAMETER_GRADIENT: "the DReG estimator sends a prior's own parameters "
                                                "the IWAE gradient (d log_pz_theta = -w~ / B) "
                                                "apart from z's path (d log_pz = -w~^2 / B)"}

    def backward(self, trace):
        super().backward(trace)
        d = trace.grads
        B = d["log_w"].shape[1]
        w_tilde = -B * d["log_w"]                    # the normalised weights again
        d[LOG_PZ_THETA] = d["log_pz"]                # IWAE's -w~ / B, for the prior's parameters
        d["log_pz"] = -w_tilde * w_tilde / B
        d[LOG_Q_PATH] = w_tilde * w_tilde / B        # ln q's path term only
        del d["log_q"]                               # no score term: q's parameters held fixed

    def backward_z(self, trace):
        """The decoder's path to z: d z = w~ (w~ / B) dnll/dz, its weight squared."""
        d = trace.grads
        B = d["log_w"].shape[1]
        d["z"] = d["z"] * (-B * d["log_w"])[..., None]
