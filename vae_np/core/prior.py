"""The prior p(z) as a component, and the KL term of the ELBO for a (posterior, prior) pair.

The prior protocol
------------------
A prior is a class registered in ``PRIORS`` (``register_prior``) and chosen by its ``VAE``
keywords (``Family.options``, ``check_options``; see ``vae_np.core.registry``). The model lays out
the parameters ``cls.param_spec(model, **options)`` returns (after every other parameter: they are
the generative model's, updated with the decoder's) and then builds ``cls(model, store,
**options)``; ``model`` is the VAE under construction, whose sizes (x_dim, hidden, z_dim, dtype),
encoder and posterior already exist (a VampPrior reuses them). An instance offers:

    noise_dim              standard normal numbers it draws per (sample, example): the model
                           appends them to the posterior's in eps (K, B, noise_dim), so that
                           frozen eps freezes them too
    work_per_sample        work-array numbers per (sample, example), for evaluation chunks
    label                  text for the model's repr ("" for the standard normal)
    forward(trace, eps)    record what does not depend on z (its own noise (K, B, noise_dim),
                           quantities of its parameters); called once per step after the posterior
    log_density(trace)     ln p(z) at the posterior's sample z, recorded once as ``log_pz`` (K, B)
    kl_term(posterior)     the component that records the ELBO's ``kl`` (B,) for this pair: a
                           closed form when the pair has one, else ``MonteCarloKL``
    backward(trace)        d log_pz (when it arrived) -> d z and the prior's own parameters
    backward_shared(trace) called after the encoder's backward: gradients into parameters it
                           shares with the encoder (a VampPrior's path through q(z|u_k)) are
                           added here, where the encoder's own have been written
    sample(n, rng)         n draws z ~ p(z), (n, Z), in the model's dtype
    grad_equations(eq, terms)  add its equations (see ``VAE.grad_equations``)

Optional (absent means the default in brackets):

    unavailable            capability -> why this prior cannot support an objective needing it
                           ({}); the VampPrior and the two-layer prior refuse DReG's path-only
                           gradient, because their ln p(z) depends on parameters directly
    capabilities           what its backward offers beyond the protocol (frozenset()): a prior
                           with parameters of its own lists ``PRIOR_PARAMETER_GRADIENT`` when
                           its backward takes its parameters' gradient from d log_pz_theta (when
                           an objective sent it) and z's from d log_pz (below)
    decoder_input          (a class attribute) the trace name under which the decoder reads z
                           ("z"): a prior that reads z itself records an alias of it in
                           ``forward`` so that the decoder's share of d z is a line of its own
    upper_means(z)         for a prior with stochastic layers of its own: the means of each
                           layer above z given z, [(B, Z_l)] (evaluate's active units per layer)

A parameter entry of ``param_spec`` is ``(prefix, (n_in, n_out))`` for a dense layer (W, b drawn
like every layer's) or ``(name, shape, init)`` with ``init(rng, shape) -> values`` drawn from the
model's initialisation generator after the layers.

The prior's parameters under DReG
---------------------------------
ln p(z) reaches the loss along two paths: through z (to the encoder) and through the prior's
own parameters theta (a learned mean, pseudo-inputs). An estimator may weight them differently:
DReG gives the encoder's path d ln p(z) = -w~^2 / B but the generative parameters, theta among
them, the IWAE gradient -w~ / B. It therefore records both, d log_pz (z's path) and
d log_pz_theta (``LOG_PZ_THETA``, theta's), and asks (``Objective.prior_requires``) that a prior
with parameters read the second for them: such a prior lists ``PRIOR_PARAMETER_GRADIENT`` in
``capabilities`` and in its backward uses ``d.get(LOG_PZ_THETA, d["log_pz"])`` for theta. A
prior with parameters that does not list it is refused by the model (its backward would give
theta the weight w~^2, a biased gradient); a prior without parameters is never asked.

The KL term
-----------
``kl`` is what the ELBO subtracts: KL(q(z|x) || p(z)) per example. A prior offers its closed
form for the posteriors it has one for (``StandardNormal``: any posterior whose ``gaussian`` names
mu and sigma); otherwise ``MonteCarloKL`` records 1/K sum_k [ln q(z_k|x) - ln p(z_k)] from the
posterior's and the prior's ``log_density``. The choice is made once, at construction, from what
the two components offer.

A KL component also offers ``record_groups(trace)``: ``kl`` split into groups, recorded once as
``kl_groups`` (B, G) with ``kl = sum_g kl_groups``, for an objective that treats the groups apart
(free bits). A group is a latent unit where the KL has a closed form per unit (the diagonal
Gaussian against N(0, I): G = Z), else the whole stochastic layer (a Monte Carlo KL: G = 1).
Its backward reads d kl_groups, when it arrived, beside d kl.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..numerics import LN_2PI
from .registry import Family, FamilyRegistry


LOG_PZ_THETA = "log_pz_theta"
"""The trace name of d ln p(z) along the prior's own parameters, when an objective sends it apart
from d log_pz (DReG: the IWAE weight -w~ / B there, -w~^2 / B on z's path)."""
PRIOR_PARAMETER_GRADIENT = "prior_parameter_gradient"
"""The capability of a prior whose backward reads d log_pz_theta for its own parameters."""


def log_standard_normal(z):
    """ln N(z; 0, I) over the last axis: -1/2 |z|^2 - Z/2 ln 2 pi.  (..., Z) -> (...)."""
    return -0.5 * np.sum(z * z, axis=-1) - 0.5 * z.shape[-1] * LN_2PI


class StandardNormal(Family):
    """p(z) = N(0, I): no parameters, no noise, the closed-form KL to a diagonal Gaussian q.

    The keywords are for its use as the top prior of a hierarchy (``vae_np.priors.two_layer``):
    z_dim (default the model's), the trace names of its argument and of ln p at it."""
    noise_dim = 0
    work_per_sample = 0
    label = ""

    def __init__(self, model, store, *, z_dim=None, z_name="z", log_p_name="log_pz"):
        self.z_dim = model.z_dim if z_dim is None else z_dim
        self.dtype = model.dtype
        self.z_name, self.log_p_name = z_name, log_p_name

    closed_form_top_kl = True
    """As the top prior of the two-layer model, its KL to the Gaussian q(z2|z1) has a closed form."""

    @staticmethod
    def param_spec(model):
        """No parameters."""
        return []

    @staticmethod
    def top_param_spec(in_dim):
        """No parameters as a top prior either."""
        return []

    @classmethod
    def as_top(cls, model, store, network, z_dim):
        """N(0, I) over the top layer z2 of ``vae_np.priors.two_layer`` (``network`` unused)."""
        return cls(model, store, z_dim=z_dim, z_name="z2", log_p_name="log_pz2")

    def forward(self, trace, eps):
        """Nothing to record: N(0, I) has no noise and no parameters."""

    def log_density(self, trace):
        """ln p(z) = -1/2 |z|^2 - Z/2 ln 2 pi at the sample z, (K, B), recorded once as log_pz."""
        z, log_p = self.z_name, self.log_p_name
        if log_p not in trace.values:
            trace.record(log_p, log_standard_normal(trace.values[z]),
                         f"ln p({z}) = -1/2 |{z}|^2 - {z.upper()}/2 ln 2 pi")
        return trace.values[log_p]

    def kl_term(self, posterior):
        """The closed form KL(N(mu, sigma^2) || N(0, I)) when q is a diagonal Gaussian, else the
        Monte Carlo estimate."""
        if posterior.gaussian is None:
            return MonteCarloKL(posterior, self)
        return StandardNormalKL(*posterior.gaussian)

    def backward(self, trace):
        """d ln p(z)/dz = -z: d z += d log_pz * (-z) when ln p(z) received a gradient."""
        d, z, log_p = trace.grads, self.z_name, self.log_p_name
        if log_p in d:
            d[z] = d[z] + d[log_p][..., None] * -trace.values[z]

    def backward_shared(self, trace):
        """Nothing: N(0, I) shares no parameter with the encoder."""

    def sample(self, n, rng):
        """n draws of N(0, I): (n, Z)."""
        return rng.standard_normal((n, self.z_dim), dtype=self.dtype)

    def grad_equations(self, eq, terms):
        """d z gains the prior's term when ln p(z) received a gradient."""
        z = self.z_name
        if self.log_p_name in eq:
            eq[z] += f" - dln p({z}) * {z}"


class StandardNormalKL:
    """kl = KL(N(mu, diag sigma^2) || N(0, I)) = 1/2 sum_j (mu^2 + sigma^2 - 1 - ln sigma^2), (B,).

    Reads the posterior's mu and sigma (trace names given); its backward sends
    d mu = dkl * mu and d sigma = dkl * (sigma - 1/sigma) to them.
    """
    reads = ("mu", "sigma")
    group = "unit"

    def __init__(self, mu_name, sigma_name):
        self.mu_name, self.sigma_name = mu_name, sigma_name

    def forward(self, trace):
        v = trace.values
        kl, cache = ops.kl_forward(v[self.mu_name], v[self.sigma_name])
        trace.record("kl", kl, "kl = 1/2 sum_j (mu^2 + sigma^2 - 1 - ln sigma^2)", cache)

    def record_groups(self, trace):
        """The KL of each latent unit, kl_j = 1/2 (mu_j^2 + sigma_j^2 - 1 - ln sigma_j^2), (B, Z),
        recorded once as kl_groups (its sum over j is kl)."""
        v = trace.values
        if "kl_groups" not in v:
            mu, sigma = v[self.mu_name], v[self.sigma_name]
            trace.record("kl_groups", 0.5 * (mu * mu + sigma * sigma - 1 - 2 * np.log(sigma)),
                         "kl_j = 1/2 (mu_j^2 + sigma_j^2 - 1 - ln sigma_j^2)   (per unit)")
        return v["kl_groups"]

    def backward(self, trace):
        d, v = trace.grads, trace.values
        if "kl" in d:
            # dKL/dmu = mu, dKL/dsigma = sigma - 1/sigma
            d[self.mu_name], d[self.sigma_name] = ops.kl_backward(d["kl"], trace.caches["kl"])
        if "kl_groups" in d:      # per unit: dkl_j/dmu_j = mu_j, dkl_j/dsigma_j = sigma_j - 1/sigma_j
            mu, sigma, g = v[self.mu_name], v[self.sigma_name], d["kl_groups"]
            d[self.mu_name] = d[self.mu_name] + g * mu
            d[self.sigma_name] = d[self.sigma_name] + g * (sigma - 1 / sigma)

    def grad_equations(self, eq, terms):
        if "kl" in eq:
            terms.setdefault(self.mu_name, []).append("dkl * mu")
            terms.setdefault(self.sigma_name, []).append("dkl * (sigma - 1/sigma)")
        if "kl_groups" in eq:
            terms.setdefault(self.mu_name, []).append("dkl_j * mu")
            terms.setdefault(self.sigma_name, []).append("dkl_j * (sigma - 1/sigma)")


class MonteCarloKL:
    """kl = 1/K sum_k [ln q(z_k|x) - ln p(z_k)], (B,): the KL of any (posterior, prior) pair,
    unbiased over eps. Its backward sends d ln q = dkl / K and d ln p(z) = -dkl / K, added to what
    an objective sent them."""

    group = "layer"

    def __init__(self, posterior, prior):
        self.posterior, self.prior = posterior, prior

    def forward(self, trace):
        log_q = self.posterior.log_density(trace)
        log_p = self.prior.log_density(trace)
        trace.record("kl", np.mean(log_q - log_p, axis=0),
                     "kl = 1/K sum_k [ln q(z|x) - ln p(z)]   (Monte Carlo)")

    def record_groups(self, trace):
        """One group, the whole latent (ln q - ln p does not split into units in general):
        kl_groups = kl as (B, 1), recorded once."""
        v = trace.values
        if "kl_groups" not in v:
            trace.record("kl_groups", v["kl"][:, None], "kl_1 = kl   (one group: the layer)")
        return v["kl_groups"]

    def backward(self, trace):
        d = trace.grads
        if "kl" not in d and "kl_groups" not in d:
            return
        dkl = d["kl"] if "kl" in d else 0
        if "kl_groups" in d:                                   # kl_groups = kl[:, None]
            dkl = dkl + d["kl_groups"][:, 0]
        K = trace.values["log_q"].shape[0]
        share = np.broadcast_to(dkl / K, trace.values["log_q"].shape)     # (K, B)
        d["log_q"] = d["log_q"] + share if "log_q" in d else share
        d["log_pz"] = d["log_pz"] + -share if "log_pz" in d else -share

    def grad_equations(self, eq, terms):
        if "kl" in eq:
            dkl = "(dkl + dkl_1)" if "kl_groups" in eq else "dkl"
            for name, sign, symbol in (("log_q", "+", "dln q"), ("log_pz", "-", "dln p(z)")):
                eq[name] = (f"{eq[name]} {sign} {dkl} / K" if name in eq else
                            f"{symbol} = {sign.strip('+')}{dkl} / K   "
                            f"(kl = 1/K sum_k [ln q - ln p])")


PRIORS = FamilyRegistry("prior", default="normal", selector="prior")
"""prior name -> class."""


def register_prior(name, cls):
    """Add a prior (the one line a new prior needs, in its package's __init__)."""
    return PRIORS.register(name, cls)


register_prior("normal", StandardNormal)
