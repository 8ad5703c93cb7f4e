"""The VampPrior (Tomczak & Welling 2018): p(z) = 1/M sum_m q(z | u_m), M learned pseudo-inputs.

The prior is the mixture of the variational posteriors at M pseudo-inputs u_m, which are
parameters of the generative model (``prior.u``, (M, x_dim)). With the diagonal Gaussian posterior
each component is N(z; mu(u_m), diag sigma(u_m)^2), computed by the encoder's own layers and heads,
so the prior shares the encoder's weights:

    ln p(z) = logsumexp_m ln N(z; mu_m, sigma_m^2) - ln M
    ln N(z; mu_m, sigma_m^2) = -1/2 sum_j (z_j - mu_mj)^2 / sigma_mj^2 - sum_j ln sigma_mj - Z/2 ln 2 pi

Its backward, with r_m = softmax_m ln N(z; mu_m, sigma_m^2) (the responsibilities) and
g = d ln p(z) per sample:

    d z        = g sum_m r_m (mu_m - z) / sigma_m^2
    d mu_m     = sum_samples g r_m (z - mu_m) / sigma_m^2
    d sigma_m  = sum_samples g r_m [(z - mu_m)^2 / sigma_m^3 - 1 / sigma_m]

and d mu_m, d sigma_m go back through the heads and the encoder's layers applied to u_m, to
d u_m and, added to what the posterior's path wrote, to the shared weights (``backward_shared``).

There is no closed-form KL(q || p): the model's KL is the Monte Carlo 1/K sum_k [ln q - ln p].
The components are q(z|u) itself, so the posterior must be the diagonal Gaussian (a flow's
density at an arbitrary z needs its inverse): any other posterior is a ValueError.

The mixture is used twice: by ``VampPrior`` over the model's latent (pseudo-inputs in x's space,
the encoder's layers), and by the two-layer prior as the prior of its top layer
(``vae_np.priors.two_layer``: pseudo-inputs in z1's space, the q(z2|z1) network's layers).
``VampMixture`` is that shared part.

Trace names (prefix "u"; the two-layer top uses "v"): u (M, D) the pseudo-inputs, u_a1, u_h1, ...
the encoder's layers on them, u_mu, u_s, u_sigma (M, Z) the components, and log_pz (K, B).

Numerics: the M x (K B) component log-densities are formed from matrix products,
-1/2 z^2 (1/sigma^2)^T + z (mu/sigma^2)^T - 1/2 sum mu^2/sigma^2, whose terms cancel; they are
computed in float64 whatever the model's dtype (``mixture_log_density_forward``), beside the
direct formula (``mixture_log_density_reference``) that the tests hold them to.
"""
from __future__ import annotations

import re

import numpy as np

from .. import ops
from .._validate import check_int
from ..core.layers import Dense
from ..core.posterior import LOG_Q_PATH, SIGMA_HEADS
from ..core.prior import MonteCarloKL
from ..core.registry import Family
from ..numerics import LN_2PI

def rename(equation, **names):
    """``equation`` with whole words renamed (sigma -> u_sigma, s -> u_s, dsigma -> du_sigma):
    a sigma head's equations written for the names of another Gaussian."""
    for old, new in names.items():
        equation = re.sub(rf"\b{old}\b", new, equation)
    return equation


REFUSED_DREG = ("this prior's ln p(z) depends on parameters directly (its components come from "
                "the encoder), which the DReG gradient, weighting d ln p(z) by w~^2, does not "
                "estimate")


# --------------------------------------------------------------------------- the mixture, by formula
def mixture_log_density_reference(z, mu, sigma):
    """ln (1/M sum_m N(z; mu_m, diag sigma_m^2)) straight from the formula.

    Parameters
    ----------
    z : (N, Z);  mu, sigma : (M, Z)

    Returns
    -------
    (N,) float64
    """
    z, mu, sigma = (np.asarray(a, dtype=np.float64) for a in (z, mu, sigma))
    diff = (z[:, None, :] - mu[None]) / sigma[None]                        # (N, M, Z)
    comp = (-0.5 * np.sum(diff * diff, axis=-1) - np.sum(np.log(sigma), axis=-1)
            - 0.5 * z.shape[1] * LN_2PI)                                   # (N, M)
    peak = comp.max(axis=1, keepdims=True)
    return peak[:, 0] + np.log(np.mean(np.exp(comp - peak), axis=1))


def mixture_log_density_forward(z, mu, sigma):
    """The same as the reference, by three matrix products in float64 (fast for large N, M).

    ln N(z; mu_m, sigma_m^2) = -1/2 z^2 w_m^T + z (mu_m w_m)^T - 1/2 sum mu_m^2 w_m
                               - sum ln sigma_m - Z/2 ln 2 pi,     w_m = 1 / sigma_m^2

    Returns
    -------
    log_p : (N,) float64;  cache for the backward (z, mu, sigma, w, r: the responsibilities)
    """
    z, mu, sigma = (np.asarray(a, dtype=np.float64) for a in (z, mu, sigma))
    w = 1 / (sigma * sigma)                                                # (M, Z)
    const = (-0.5 * np.sum(mu * mu * w, axis=1) - np.sum(np.log(sigma), axis=1)
             - 0.5 * z.shape[1] * LN_2PI)                                  # (M,)
    comp = -0.5 * ((z * z) @ w.T) + z @ (mu * w).T + const                 # (N, M)
    peak = comp.max(axis=1, keepdims=True)
    e = np.exp(comp - peak)
    total = e.sum(axis=1, keepdims=True)
    log_p = peak[:, 0] + np.log(total[:, 0]) - np.log(mu.shape[0])
    return log_p, (z, mu, sigma, w, e / total)


def mixture_log_density_backward(dlog_p, cache):
    """Gradients of ln p(z) (per row) for the upstream gradient dlog_p (N,):

        d z       = g (r (mu w) - z (r w)),                 r = responsibilities, g = dlog_p
        d mu_m    = w_m (sum_n g_n r_nm z_n - mu_m s_m),    s_m = sum_n g_n r_nm
        d sigma_m = (sum_n g_n r_nm (z_n - mu_m)^2) / sigma_m^3 - s_m / sigma_m

    Returns dz (N, Z), dmu (M, Z), dsigma (M, Z), float64.
    """
    z, mu, sigma, w, r = cache
    gr = np.asarray(dlog_p, dtype=np.float64)[:, None] * r                # (N, M)
    dz = gr @ (mu * w) - z * (gr @ w)
    s = gr.sum(axis=0)[:, None]                                            # (M, 1)
    gz = gr.T @ z                                                          # (M, Z)
    dmu = w * (gz - mu * s)
    squares = gr.T @ (z * z) - 2 * mu * gz + mu * mu * s                   # sum g r (z - mu)^2
    dsigma = squares * w / sigma - s / sigma
    return dz, dmu, dsigma


# --------------------------------------------------------------------------- the mixture in a model
class VampMixture:
    """p(z) = 1/M sum_m N(z; mu(u_m), sigma(u_m)^2) with mu, sigma from a network whose weights
    the model holds for another use (the encoder, or the two-layer prior's q(z2|z1)).

    Parameters
    ----------
    store : the model's FlatParameters
    layer_prefixes : the network's dense layers' parameter prefixes ("encoder.0", ...)
    activation : (name, forward, backward) of the network
    mu_prefix, s_prefix : the Gaussian heads' prefixes ("encoder.mu", "encoder.sigma")
    sigma_head : a ``SIGMA_HEADS`` component (the network's own rule)
    u_param : the pseudo-inputs' parameter name ("prior.u")
    prefix : the trace names' prefix ("u")
    z_name, log_p_name : the trace names of the prior's argument and of ln p at it
    """

    def __init__(self, store, layer_prefixes, activation, mu_prefix, s_prefix, sigma_head,
                 u_param, prefix, z_name="z", log_p_name="log_pz"):
        self.layers = [Dense(store, name) for name in layer_prefixes]
        self.mu_head, self.s_head = Dense(store, mu_prefix), Dense(store, s_prefix)
        self.act_name, self.act_forward, self.act_backward = activation
        self.sigma_head = sigma_head
        self.u, self.du = store.params[u_param], store.grads[u_param]
        self.u_param, self.p = u_param, prefix
        self.z_name, self.log_p_name = z_name, log_p_name
        n = len(self.layers)
        self.names = [(f"{prefix}_a{i}", f"{prefix}_h{i}") for i in range(1, n + 1)]
        self.inputs = [prefix] + [h for _, h in self.names[:-1]]
        self.last = self.names[-1][1] if n else prefix
        self._sigma_equation = rename(sigma_head.equation, sigma=f"{prefix}_sigma", s=f"{prefix}_s")

    @property
    def size(self):
        """M, the number of pseudo-inputs."""
        return self.u.shape[0]

    def forward(self, trace):
        """Record the pseudo-inputs and the network on them: u, u_a1, u_h1, ..., u_mu, u_s,
        u_sigma. Nothing here depends on z."""
        p = self.p
        h = trace.record(p, self.u, f"{p} = {self.u_param}   (the {self.size} pseudo-inputs)")
        for layer, (a_name, h_name), x in zip(self.layers, self.names, self.inputs):
            a, cache = layer.forward(h)
            a = trace.record(a_name, a, f"{a_name} = {x} W + b   ({layer.name}, shared)", cache)
            h, cache = self.act_forward(a)
            h = trace.record(h_name, h, f"{h_name} = {self.act_name}({a_name})", cache)
        mu, cache = self.mu_head.forward(h)
        mu = trace.record(f"{p}_mu", mu, f"{p}_mu = {self.last} W + b   ({self.mu_head.name})",
                          cache)
        s, cache = self.s_head.forward(h)
        s = trace.record(f"{p}_s", s, f"{p}_s = {self.last} W + b   ({self.s_head.name})", cache)
        sigma, cache = self.sigma_head.forward(s)
        trace.record(f"{p}_sigma", sigma, self._sigma_equation, cache)

    def log_density(self, trace):
        """ln p(z) at the samples (K, B), recorded once: logsumexp_m ln N(z; u_mu_m, u_sigma_m)
        - ln M, in float64 and stored in the model's dtype."""
        v, z_, p = trace.values, self.z_name, self.p
        if self.log_p_name not in v:
            z = v[z_]
            rows = z.reshape(-1, z.shape[-1])
            log_p, cache = mixture_log_density_forward(rows, v[f"{p}_mu"], v[f"{p}_sigma"])
            trace.record(self.log_p_name, log_p.reshape(z.shape[:-1]).astype(z.dtype),
                         f"ln p({z_}) = logsumexp_m ln N({z_}; {p}_mu_m, {p}_sigma_m^2) - ln M",
                         cache)
        return v[self.log_p_name]

    def backward(self, trace):
        """d ln p(z) -> d z (added) and d u_mu, d u_sigma (zero when no gradient arrived)."""
        d, v, p = trace.grads, trace.values, self.p
        mu = v[f"{p}_mu"]
        if self.log_p_name in d:
            z = v[self.z_name]
            dz, dmu, dsigma = mixture_log_density_backward(
                d[self.log_p_name].reshape(-1), trace.caches[self.log_p_name])
            d[self.z_name] = d[self.z_name] + dz.reshape(z.shape).astype(z.dtype)
            d[f"{p}_mu"], d[f"{p}_sigma"] = dmu.astype(mu.dtype), dsigma.astype(mu.dtype)
        else:
            d[f"{p}_mu"], d[f"{p}_sigma"] = np.zeros_like(mu), np.zeros_like(mu)

    def backward_shared(self, trace):
        """From d u_mu, d u_sigma back through the heads and the layers on u: their weight
        gradients are *added* to the shared ones already written (``ops.dense_backward`` without
        out=), and d u is written to the pseudo-inputs' gradient."""
        d, caches, p = trace.grads, trace.caches, self.p
        d[f"{p}_s"] = self.sigma_head.backward(d[f"{p}_sigma"], caches[f"{p}_sigma"])
        dh = None
        for head, name in ((self.mu_head, f"{p}_mu"), (self.s_head, f"{p}_s")):
            dx, dW, db = ops.dense_backward(d[name], caches[name])
            head.dW += dW                                  # shared: the posterior's share is in
            head.db += db
            dh = dx if dh is None else dh + dx             # the last h feeds both heads
        for i in reversed(range(len(self.layers))):
            layer, (a, h) = self.layers[i], self.names[i]
            d[h] = dh
            d[a] = self.act_backward(dh, caches[h])
            dh, dW, db = ops.dense_backward(d[a], caches[a])
            layer.dW += dW
            layer.db += db
        d[p] = dh                                          # d u: the pseudo-inputs' gradient
        self.du[...] = dh
        d[self.u_param] = self.du

    def grad_equations(self, eq, terms):
        """The equations of the mixture's d<name> and of d u (see the module docstring)."""
        p, z = self.p, self.z_name
        if self.log_p_name in eq:
            eq[z] += f" + dln p({z}) sum_m r_m ({p}_mu_m - {z}) / {p}_sigma_m^2"
        eq[f"{p}_mu"] = f"d{p}_mu = sum_k dln p({z}) r_m ({z} - {p}_mu) / {p}_sigma^2"
        eq[f"{p}_sigma"] = (f"d{p}_sigma = sum_k dln p({z}) r_m [({z} - {p}_mu)^2 / "
                            f"{p}_sigma^3 - 1/{p}_sigma]")
        eq[f"{p}_s"] = rename(self.sigma_head.grad_equation, sigma=f"{p}_sigma", s=f"{p}_s",
                              dsigma=f"d{p}_sigma", ds=f"d{p}_s")
        eq[self.last] = (f"d{self.last} = d{p}_mu W_mu^T + d{p}_s W_s^T   (shared heads)")
        for (a, h), x, layer in zip(self.names, self.inputs, self.layers):
            eq[a] = f"d{a} = d{h} * {self.act_name}'({a})"
            if x != p:
                eq[x] = f"d{x} = d{a} W^T   ({layer.name}, shared)"
        first = self.names[0][0] if self.names else f"{p}_mu"
        eq[p] = (f"d{p} = d{first} W^T" if self.names else
                 f"d{p} = d{p}_mu W_mu^T + d{p}_s W_s^T")
        eq[self.u_param] = f"d{self.u_param} = d{p}   (the pseudo-inputs are parameters)"
        shares = [(layer, x, a) for layer, x, (a, _) in zip(self.layers, self.inputs, self.names)]
        shares += [(self.mu_head, self.last, f"{p}_mu"), (self.s_head, self.last, f"{p}_s")]
        for layer, x, dy in shares:          # the same weights on the pseudo-inputs: added
            eq[layer.name + ".W"] += f" + {x}^T d{dy}"
            eq[layer.name + ".b"] += f" + sum_m d{dy}"

    def sample(self, n, rng, dtype):
        """n draws: a component m uniformly, then z = u_mu_m + u_sigma_m * eps, (n, Z)."""
        from ..core.trace import Trace
        t = Trace()
        self.forward(t)
        mu, sigma = t.values[f"{self.p}_mu"], t.values[f"{self.p}_sigma"]
        m = rng.integers(0, self.size, size=n)
        return (mu[m] + sigma[m] * rng.standard_normal((n, mu.shape[1]), dtype=dtype)).astype(
            dtype, copy=False)


def _pseudo_input_init(unit_interval):
    """U(0, 1) pseudo-inputs for data in [0, 1], else N(0, 1) (the encoder's input range)."""
    if unit_interval:
        return lambda rng, shape: rng.uniform(0.0, 1.0, size=shape)
    return lambda rng, shape: rng.standard_normal(shape)


class VampPrior(Family):
    """p(z) = 1/M sum_m q(z | u_m): the VampPrior over the model's latent, through its encoder.

    Chosen by ``VAE(..., prior="vamp", pseudo_inputs=M)`` (or ``pseudo_inputs=M`` alone).
    Parameters: ``prior.u`` (M, x_dim), the pseudo-inputs, drawn U(0, 1) for data in [0, 1]
    (N(0, 1) otherwise). Trace names: see the module docstring.
    """
    options = {"pseudo_inputs": None}
    noise_dim = 0
    unavailable = {LOG_Q_PATH: REFUSED_DREG}

    @classmethod
    def check_options(cls, pseudo_inputs=None):
        """None when pseudo_inputs is None (not asked for); else an integer >= 1."""
        if pseudo_inputs is None:
            return None
        return {"pseudo_inputs": check_int("pseudo_inputs", pseudo_inputs)}

    @classmethod
    def named_options(cls, pseudo_inputs=None):
        """prior="vamp" needs the number of pseudo-inputs."""
        if pseudo_inputs is None:
            raise ValueError("pseudo_inputs must be an integer >= 1 (the number M of "
                             "pseudo-inputs) with prior='vamp', got None")
        return cls.check_options(pseudo_inputs)

    @staticmethod
    def param_spec(model, pseudo_inputs):
        """[("prior.u", (M, x_dim), init)]."""
        from ..core.likelihood import LIKELIHOOD_COMPONENTS
        unit = LIKELIHOOD_COMPONENTS[model.likelihood].unit_interval
        return [("prior.u", (pseudo_inputs, model.x_dim), _pseudo_input_init(unit))]

    def __init__(self, model, store, pseudo_inputs):
        if model.posterior.gaussian is None:
            raise ValueError(f"prior='vamp' needs the diagonal Gaussian posterior (its "
                             f"components are q(z|u_m), whose density at any z a flow does not "
                             f"give); got {model.posterior.label}")
        from ..core.model import _activation
        self.mixture = VampMixture(
            store, [layer.name for layer in model.encoder.layers], _activation(model.activation),
            "encoder.mu", "encoder.sigma", SIGMA_HEADS[model.sigma_param](model.sigma_min),
            "prior.u", "u")
        self.z_dim, self.dtype = model.z_dim, model.dtype
        self.label = f"VampPrior ({pseudo_inputs} pseudo-inputs)"
        self.work_per_sample = 4 * pseudo_inputs

    @staticmethod
    def top_param_spec(in_dim, pseudo_inputs):
        """As the top prior of the two-layer model: [("prior.v", (M, Z1), N(0, 1))], the
        pseudo-inputs in the space of z1, which q(z2|z1) reads."""
        return [("prior.v", (pseudo_inputs, in_dim), _pseudo_input_init(False))]

    @classmethod
    def as_top(cls, model, store, network, z_dim, pseudo_inputs):
        """The VampPrior over z2: 1/M sum_m q(z2 | v_m) through the q(z2|z1) ``network`` (a dict
        of its layers' prefixes, activation, heads and sigma head)."""
        top = cls.__new__(cls)
        top.mixture = VampMixture(store, network["layers"], network["activation"],
                                  network["mu"], network["s"], network["sigma_head"], "prior.v",
                                  "v", z_name="z2", log_p_name="log_pz2")
        top.z_dim, top.dtype = z_dim, model.dtype
        top.label = f"VampPrior ({pseudo_inputs} pseudo-inputs)"
        top.work_per_sample = 4 * pseudo_inputs
        return top

    def forward(self, trace, eps):
        """The encoder on the pseudo-inputs (the prior has no noise of its own)."""
        self.mixture.forward(trace)

    def log_density(self, trace):
        return self.mixture.log_density(trace)

    def kl_term(self, posterior):
        """No closed form: the Monte Carlo KL."""
        return MonteCarloKL(posterior, self)

    def backward(self, trace):
        self.mixture.backward(trace)

    def backward_shared(self, trace):
        self.mixture.backward_shared(trace)

    def sample(self, n, rng):
        return self.mixture.sample(n, rng, self.dtype)

    def grad_equations(self, eq, terms):
        self.mixture.grad_equations(eq, terms)
