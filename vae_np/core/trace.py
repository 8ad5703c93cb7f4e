"""The trace of one training step: every intermediate of the derivation under its own name.

``VAE.forward`` fills ``trace.values`` in the order the derivation computes them, and
``VAE.backward`` fills ``trace.grads`` with d loss / d <name> for the same names (and for every
parameter, under its name in ``model.params``). The names follow the derivation:

    name      shape        meaning
    x         (B, D)       the data batch
    a1, h1    (B, H1)      encoder layer 1: a1 = x W + b, h1 = act(a1); then a2, h2, ...
    mu, s     (B, Z)       the encoder's two heads; s parameterizes sigma
    sigma     (B, Z)       the posterior's standard deviation, sigma = g(s)
    eps       (K, B, Z)    the standard normal noise (frozen or drawn)
    z         (K, B, Z)    z = mu + sigma * eps
    kl        (B,)         KL(q(z|x) || N(0, I)), closed form (the prior's, for this posterior)
    With a flow posterior (``VAE(flow=..., flow_length=L)``, ``vae_np.flows.posterior``), z is z_L:
    z_0       (K, B, Z)    z_0 = mu + sigma * eps
    flow      (B, L P)     the raw step parameters, h W + b (P per step)
    z_l       (K, B, Z)    z_l = f_l(z_{l-1}), l = 1..L
    logdet_l  (K, B)       ln |det df_l / dz_{l-1}|
    log_q0    (K, B)       ln q_0(z_0)
    kl        (B,)         1/K sum_k [ln q(z|x) - ln p(z)], Monte Carlo (no closed form)
    When an objective or a Monte Carlo KL reads the densities at the samples (IWAE, a flow):
    log_q     (K, B)       ln q(z|x) at z, the posterior's (``log_density``)
    log_pz    (K, B)       ln p(z) at z, the prior's (``log_density``)
    log_w     (K, B)       ln w = -nll + ln p(z) - ln q(z|x), the IWAE log-weights
    c1, g1    (K*B, H)     decoder layer 1 (rows are the K x B samples, sample-major): c1 = z W + b,
                           g1 = act(c1); then c2, g2, ...
    logits    (K, B, D)    Bernoulli decoder output
    m, x~     (K, B, D)    Gaussian decoder: x~ is the mean (m is the head before a sigmoid mean)
    r         (K, B, D)    learned Gaussian decoder: the log-sigma head
    nll       (K, B)       -ln p(x | z) per sample
    loss      ()           the objective, nats per example

``trace.equations`` holds the equation that produced each value, ``trace.caches`` what each
backward step needs. A trace may be built with *nudges* ``{name: delta}``: the value recorded
under ``name`` is shifted by ``delta`` right where it is computed, so every later step sees the
shifted value. A central difference of the loss under +-delta is then the derivative of the loss
with respect to that intermediate: that is how ``explain`` checks each d<name> on its own.
"""
from __future__ import annotations

import numpy as np


class Trace:
    """Values, gradients, equations and caches of one forward/backward pass, keyed by name.

    Attributes
    ----------
    values : dict name -> array, in the order the forward pass computed them
    grads : dict name -> array, d loss / d name (filled by the backward pass); parameter gradients
        are views of the model's ``grad_flat`` and are overwritten by its next backward pass
    equations : dict name -> str, the equation that produced ``values[name]``
    caches : dict name -> what the backward step of ``name`` needs (model internals)
    """

    def __init__(self, nudges=None):
        self.values, self.grads, self.equations, self.caches = {}, {}, {}, {}
        self._nudges = nudges or {}

    def record(self, name, value, equation, cache=None):
        """Store ``value`` under ``name`` (shifted by its nudge, if any) and return what is stored.

        The forward pass must go on with the returned value, so that a nudge reaches every later
        step.
        """
        if name in self._nudges:
            delta = self._nudges[name]
            if np.broadcast_shapes(np.shape(value), np.shape(delta)) != np.shape(value):
                raise ValueError(f"the nudge of {name!r} must have the shape of {name}, "
                                 f"{np.shape(value)}, got {np.shape(delta)}")
            value = value + delta
        self.values[name] = value
        self.equations[name] = equation
        self.caches[name] = cache
        return value

    @property
    def loss(self) -> float:
        return float(self.values["loss"])

    def check_nudges(self):
        """Refuse nudges that named no recorded quantity (a typo would silently nudge nothing)."""
        unknown = sorted(set(self._nudges) - set(self.values))
        if unknown:
            raise ValueError(f"nudges must name quantities of the trace {self.names()}, "
                             f"got {unknown}")

    def names(self):
        """The recorded quantities, in forward order."""
        return list(self.values)

    def summary(self) -> str:
        """One line per quantity: name, shape, equation (for a quick look at a trace)."""
        lines = []
        for name, value in self.values.items():
            shape = "x".join(map(str, np.shape(value))) or "scalar"
            has = "  d" + name if name in self.grads else ""
            lines.append(f"{name:>7}  {shape:<10} {self.equations[name]}{has}")
        return "\n".join(lines)

    def __repr__(self):
        return f"Trace({', '.join(self.values)})"
