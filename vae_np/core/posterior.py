"""The approximate posterior q(z|x) as a component: from the encoder's output h to the sample z.

The posterior-family protocol
-----------------------------
A family is a class registered in ``POSTERIOR_FAMILIES`` (``register_posterior``) and chosen by its
``VAE`` keywords (``Family.options``, ``check_options``; see ``vae_np.core.registry``). The model
builds it as ``cls(store, sigma_head, h_name, z_dim, **options)`` after laying out the parameters
``cls.param_spec(width, z_dim, **options)`` returns (dense heads on h: ``[(prefix, (in, out))]``).
An instance offers:

    noise_dim              standard normal numbers it reads per (sample, example)
    work_per_sample        work-array numbers per (sample, example) beyond the plain model's
                           (``vae_np.evaluate`` sizes its chunks with it)
    gaussian               (mean name, std name) of q(z|x) = N(mu, diag sigma^2) in the trace, so
                           that a prior can offer the closed-form KL of the pair; None otherwise
    capabilities           frozenset of the optional outputs it takes a gradient on (below)
    unavailable            capability -> why this posterior cannot offer it (an objective that
                           needs it is refused with that reason)
    label                  text for the model's repr ("" for the design-card posterior)
    forward(trace, h, eps) record its quantities and the sample z (K, B, Z); return z
    log_density(trace)     record ln q(z|x) at the sample as ``log_q`` (K, B), once per trace
    backward(trace, need_dh)   read the gradients that arrived on its outputs, fill d<name> for
                           its quantities and parameters, return d h (None unless need_dh)
    encode(h)              (mu, sigma) of q(z|x), without a trace
    grad_equations(eq, terms)  add the equations of its d<name> to ``eq``

Its outputs, and the gradients its backward reads (an output nobody read has no gradient):

    z            (K, B, Z)  always (the decoder reads it; the prior may too)
    log_q        (K, B)     when an objective or a Monte Carlo KL read ln q(z|x)
    mu, sigma    (B, Z)     when a component read q's parameters (the closed-form KL)
    log_q_path   (K, B)     capability "log_q_path": ln q(z|x) at the sample with q's parameters
                            held fixed, so only the path derivative d ln q / dz reaches z (the
                            doubly-reparameterized IWAE gradient sends it)

The posterior does not know which objective or prior produced these gradients.

``DiagonalGaussian`` is q(z|x) = N(mu, diag sigma^2) with the reparameterization
z = mu + sigma * eps. How sigma is read from its head s is a small component of its own
(``SIGMA_HEADS``), chosen once at construction.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..numerics import LN_2PI
from .layers import Dense
from .registry import Family, FamilyRegistry

LOG_Q_PATH = "log_q_path"
"""The optional output (and capability) ln q(z|x) with q's parameters held fixed."""


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


class DiagonalGaussian(Family):
    """q(z|x) = N(mu, diag sigma^2): two dense heads on h and the reparameterization.

    Parameters
    ----------
    store : the model's FlatParameters, holding ``encoder.mu.W/b`` and ``encoder.sigma.W/b``
    sigma_head : a SIGMA_HEADS component
    h_name : the trace name of the heads' input (the last encoder layer's output, or x)
    z_dim : Z
    z_name, log_q_name, density : the trace names of its sample and of ln q at it, and how the
        equations write the density ("z", "log_q", "q(z|x)"; a flow that starts from this
        Gaussian passes "z_0", "log_q0", "q_0(z_0)")

    Trace names: mu, s, sigma (B, Z); eps, z (K, B, Z); log_q (K, B) when asked for.
    """
    work_per_sample = 0
    capabilities = frozenset({LOG_Q_PATH})
    unavailable = {}
    label = ""

    def __init__(self, store, sigma_head, h_name, z_dim, *, z_name="z", log_q_name="log_q",
                 density="q(z|x)"):
        self.mu_head = Dense(store, "encoder.mu")
        self.s_head = Dense(store, "encoder.sigma")
        self.sigma_head = sigma_head
        self.h_name = h_name
        self.noise_dim = z_dim
        self.z_name, self.log_q_name, self.density = z_name, log_q_name, density
        self.gaussian = ("mu", "sigma")

    @staticmethod
    def param_spec(width, z_dim):
        """The parameters this component owns: [(prefix, (in, out))] of its dense heads."""
        return [("encoder.mu", (width, z_dim)), ("encoder.sigma", (width, z_dim))]

    def grad_equations(self, eq, terms):
        """Add d<name> -> its backward equation (see ``backward``) to ``eq``. ``terms`` maps mu and
        sigma to the gradient terms other components send them (the closed-form KL's); ln q's
        term appears when ``eq`` has an equation for d log_q (someone read ln q)."""
        h, z = self.h_name, self.z_name
        extra = {name: "".join(f" + {t}" for t in terms.get(name, ())) for name in ("mu", "sigma")}
        ln_q = "ln " + self.density.split("(")[0]          # ln q, or ln q_0 for a flow's base
        sigma = f"dsigma = sum_k d{z} * eps{extra['sigma']}"
        sigma += (f" - sum_k d{ln_q} / sigma" if self.log_q_name in eq    # d ln q/dsigma = -1/sigma
                  else f"   (d{z}/dsigma = eps)")
        eq.update({
            "sigma": sigma,
            "mu": f"dmu = sum_k d{z}{extra['mu']}   (d{z}/dmu = 1)",
            "s": self.sigma_head.grad_equation,
            h: f"d{h} = dmu W_mu^T + ds W_s^T   ({h} fans out to both heads)"})
        for head, d in (("encoder.mu", "dmu"), ("encoder.sigma", "ds")):
            eq[head + ".W"], eq[head + ".b"] = f"dW = {h}^T {d}", f"db = sum_b {d}"

    def encode(self, h):
        """mu and sigma of q(z|x) from the encoder's output h, without a trace."""
        return self.mu_head.forward(h)[0], self.sigma_head.forward(self.s_head.forward(h)[0])[0]

    def forward(self, trace, h, eps):
        """Record mu, s, sigma (B, Z), eps and z (K, B, Z); return z."""
        h_, z_ = self.h_name, self.z_name
        mu, cache = self.mu_head.forward(h)
        mu = trace.record("mu", mu, f"mu = {h_} W + b   (encoder.mu)", cache)
        s, cache = self.s_head.forward(h)
        s = trace.record("s", s, f"s = {h_} W + b   (encoder.sigma)", cache)
        sigma, cache = self.sigma_head.forward(s)
        sigma = trace.record("sigma", sigma, self.sigma_head.equation, cache)
        eps = trace.record("eps", eps, "eps ~ N(0, I)   (K samples per example)")
        z, cache = ops.reparameterize_forward(mu, sigma, eps)
        return trace.record(z_, z, f"{z_} = mu + sigma * eps", cache)

    def log_density(self, trace):
        """ln q(z|x) at the sample, (K, B), recorded once per trace under ``log_q_name``:

        ln q(z|x) = -1/2 |eps|^2 - sum_j ln sigma_j - Z/2 ln 2 pi   (since (z - mu) / sigma = eps),
        the density at the sample as a function of eps: d ln q/dmu = 0, d ln q/dsigma = -1/sigma.
        """
        v, name = trace.values, self.log_q_name
        if name not in trace.values:
            Z = v["eps"].shape[-1]
            trace.record(name, -0.5 * np.sum(v["eps"] * v["eps"], axis=-1)
                         - np.sum(np.log(v["sigma"]), axis=-1) - 0.5 * Z * LN_2PI,
                         f"ln {self.density} = -1/2 |eps|^2 - sum ln sigma - Z/2 ln 2 pi")
        return trace.values[name]

    def backward(self, trace, need_dh=True):
        """From the gradients on its outputs (z; and log_q, log_q_path, mu, sigma when they
        arrived) to d mu, d sigma, d s, the heads' parameters and d h."""
        d, caches, v = trace.grads, trace.caches, trace.values
        z = self.z_name
        if LOG_Q_PATH in d:        # ln q at fixed (mu, sigma): d ln q/dz = -(z - mu)/sigma^2
            d[z] = d[z] + d[LOG_Q_PATH][..., None] * -(v["eps"] / v["sigma"])
        # z = mu + sigma * eps:  dz/dmu = 1, dz/dsigma = eps  (each summed over the K samples)
        dmu, dsigma = ops.reparameterize_backward(d[z], caches[z])
        d["mu"] = dmu + d["mu"] if "mu" in d else dmu               # mu fans out to z and to
        d["sigma"] = dsigma + d["sigma"] if "sigma" in d else dsigma  # whoever read it (the KL)
        if self.log_q_name in d:   # d ln q / d sigma = -1/sigma at fixed eps; d ln q / d mu = 0
            d["sigma"] = d["sigma"] + (np.sum(d[self.log_q_name], axis=0)[..., None]
                                       * -(1 / v["sigma"]))
        d["s"] = self.sigma_head.backward(d["sigma"], caches["sigma"])     # ds = dsigma dsigma/ds
        # the heads mu = h W + b and s = h W + b:  dW = h^T d(head), db = sum_b d(head)
        dh, d["encoder.mu.W"], d["encoder.mu.b"] = self.mu_head.backward(
            d["mu"], caches["mu"], need_dx=need_dh)
        dh_s, d["encoder.sigma.W"], d["encoder.sigma.b"] = self.s_head.backward(
            d["s"], caches["s"], need_dx=need_dh)
        if need_dh:
            dh += dh_s                            # h fans out to both heads
        return dh


POSTERIOR_FAMILIES = FamilyRegistry("posterior family", default="gaussian")
"""family name -> class; the flow family registers itself in ``vae_np.flows``."""


def register_posterior(name, cls):
    """Add a posterior family (the one line a new family needs, in its package's __init__)."""
    return POSTERIOR_FAMILIES.register(name, cls)


register_posterior("gaussian", DiagonalGaussian)
