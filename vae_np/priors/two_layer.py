"""A second stochastic layer (Burda, Grosse & Salakhutdinov 2016, section 5): z2 above z1.

The generative model is p(z2) p(z1|z2) p(x|z1) and the inference model q(z1|x) q(z2|z1): the
model's posterior gives z1 (the trace's ``z``), and this prior adds the rest:

    q(z2|z1) = N(mu2, diag sigma2^2)       mu2, s2 from an MLP on z1  (q_z2.*: 100-100 tanh)
    p(z1|z2) = N(mu1p, diag sigma1p^2)     mu1p, s1p from an MLP on z2  (p_z1.*)
    p(z2)    = the top prior: N(0, I), or a VampPrior over z2 (pseudo-inputs in z1's space,
               components q(z2|v_m) through the q_z2 network: ``vae_np.priors.vamp``)

With z2 = mu2(z1) + sigma2(z1) * eps2 drawn at the sampled z1 (eps2 is the prior's own noise,
``noise_dim = z2_dim``, the last columns of the model's eps: frozen with it), the prior's
log-density at z1 is estimated by

    ln p(z) := ln p(z1|z2) + ln p(z2) - ln q(z2|z1)                          (log_pz, (K, B))

and with the objective's -ln q(z1|x) the log weight is exactly Burda's
ln w = ln p(x|z1) + ln p(z1|z2) + ln p(z2) - ln q(z1|x) - ln q(z2|z1). The ELBO (k samples, with
the Monte Carlo KL 1/K sum_k [ln q(z1|x) - ln p(z)]) and the IWAE bound therefore need nothing
new. The ELBO can instead take the top layer's KL in closed form given z1 (``top_kl="analytic"``,
the default with the N(0, I) top; ``vae_np.priors.two_layer_kl``): kl = 1/K sum_k [ln q(z1|x) - ln p(z1|z2) + KL(q(z2|z1) ||
N(0, I))], whose expectation over eps2 is the same (``verify --claim two_layer_kl``).

The gradient reaching z1 has three sources, each a line of its own: the decoder reads z1 as
``z1_x``, p(z1|z2) as ``z1_p`` and the q(z2|z1) network as ``z1_q`` (aliases recorded here), and

    dz = dz1_x + dz1_p + dz1_q.

The backward, one factor per line (g1 = d ln p(z1|z2), r = (z1 - mu1p) / sigma1p):

    ln p(z1|z2):  dz1_p = -g1 r / sigma1p,  dmu1p = g1 r / sigma1p,  dsigma1p = g1 (r^2 - 1) / sigma1p
    p(z1|z2) MLP: d s1p by its sigma head, d(last h) = dmu1p W^T + ds1p W^T, ... -> dz2
    ln p(z2):     dz2 += the top prior's d ln p(z2)/dz2 (-z2 for N(0, I))
    z2:           dmu2 = dz2 (+ dkl2 mu2),  dsigma2 = dz2 eps2 (+ dkl2 (sigma2 - 1/sigma2))
                  - d ln q(z2|z1) / sigma2    (ln q(z2|z1) = -|eps2|^2/2 - sum ln sigma2 - ..)
    q(z2|z1) MLP: d s2, d(last h) = dmu2 W^T + ds2 W^T, ... -> dz1_q

Shapes: K samples, B examples, N = K B rows (sample-major, as the decoder's); z1 is Z1 = z_dim.
Trace names: z1_q (K, B, Z1), qa1, qh1, ... (N, H), mu2, s2, sigma2 (N, Z2), eps2, z2 (K, B, Z2),
[the top prior's: v, v_a1, ..., v_mu, v_s, v_sigma], pc1, pg1, ... (N, H), mu1p, s1p, sigma1p
(N, Z1), z1_p (K, B, Z1), log_pz1 (K, B), z1_x (K, B, Z1); when asked: log_q2, log_pz2, log_pz
(K, B); with the closed-form top KL: kl2 (K, B).

Parameters (after all others, in this order): q_z2.{i}.W/b, q_z2.mu, q_z2.sigma, p_z1.{i}.W/b,
p_z1.mu, p_z1.sigma, and the top prior's (prior.v for a VampPrior). They sit in the flat vector's
"decoder" part (``model.n_encoder`` splits encoder and the rest), so under the alternating
schedule q(z2|z1) is updated with the generative model.

Chosen by ``VAE(..., z2_dim=50, hidden2=(100, 100))``; the top prior is the one ``prior=`` names
(``VAE(..., z2_dim=50, prior="vamp", pseudo_inputs=500)``). A prior family can be a top when it
offers ``top_param_spec(in_dim, **options)`` and ``as_top(model, store, network, z_dim,
**options)`` (``StandardNormal``, ``VampPrior``).
"""
from __future__ import annotations

import numpy as np

from .. import ops
from .._validate import check_choice, check_int, check_widths
from ..core.layers import MLP, Dense
from ..core.posterior import LOG_Q_PATH, SIGMA_HEADS
from ..core.prior import PRIORS, MonteCarloKL
from ..core.registry import Family
from ..core.trace import Trace
from ..numerics import LN_2PI
from .two_layer_kl import TwoLayerKL
from .vamp import rename

TOP_KL = ("analytic", "sampled")
DEFAULT_HIDDEN2 = (100, 100)


def _widths(hidden2):
    return DEFAULT_HIDDEN2 if hidden2 is None else check_widths("hidden2", hidden2, "(100, 100)")


def log_gaussian_rows(z, mu, sigma):
    """ln N(z; mu, diag sigma^2) per row and its cache r = (z - mu) / sigma: (N,), (N, Z)."""
    r = (z - mu) / sigma
    return (-0.5 * np.sum(r * r, axis=-1) - np.sum(np.log(sigma), axis=-1)
            - 0.5 * z.shape[-1] * LN_2PI), r


class TwoLayerPrior(Family):
    """p(z1) through a second stochastic layer z2 (module docstring).

    Options: z2_dim (int >= 1; asks for this prior), hidden2 (the widths of both MLPs, default
    (100, 100)), top_kl ("analytic": the ELBO's top-layer KL in closed form given z1, the
    default with the N(0, I) top; "sampled": the Monte Carlo ln q(z2|z1) - ln p(z2), the only
    choice with a VampPrior top); the top prior is named by ``prior`` with its own options.
    """
    options = {"z2_dim": None, "hidden2": None, "top_kl": None}
    wraps = True
    decoder_input = "z1_x"
    unavailable = {LOG_Q_PATH: "the two-layer log weight holds ln q(z2|z1), whose path-only "
                               "derivative (and the prior's direct dependence on q(z2|z1)'s "
                               "parameters) the DReG gradient does not send"}

    @classmethod
    def check_options(cls, z2_dim=None, hidden2=None, top_kl=None):
        """None when z2_dim is None (and the others too); else the checked options."""
        if z2_dim is None:
            given = {k: v for k, v in (("hidden2", hidden2), ("top_kl", top_kl)) if v is not None}
            if given:
                raise ValueError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} "
                                 f"to a second stochastic layer: pass z2_dim (an integer >= 1) "
                                 f"with it, got {given} with z2_dim=None")
            return None
        if top_kl is not None:
            check_choice("top_kl", top_kl, TOP_KL)
        return {"z2_dim": check_int("z2_dim", z2_dim), "hidden2": list(_widths(hidden2)),
                "top_kl": top_kl}

    @staticmethod
    def _top(prior, top_kl):
        """The top family, and top_kl resolved (ValueError for a top that cannot be one)."""
        cls = PRIORS[prior]
        if not hasattr(cls, "as_top"):
            raise ValueError(f"prior={prior!r} cannot be the top prior of a two-layer model")
        analytic = getattr(cls, "closed_form_top_kl", False)
        if top_kl is None:
            top_kl = "analytic" if analytic else "sampled"
        if top_kl == "analytic" and not analytic:
            raise ValueError(f"top_kl='analytic' needs a top prior with a closed-form KL to the "
                             f"Gaussian q(z2|z1) (prior='normal'); prior={prior!r} has none: use "
                             f"top_kl='sampled'")
        return cls, top_kl

    @classmethod
    def param_spec(cls, model, z2_dim, hidden2, top_kl, prior, **top_options):
        """The two MLPs and their heads, then the top prior's parameters (module docstring)."""
        top, _ = cls._top(prior, top_kl)
        hidden2 = tuple(hidden2)
        q_dims = (model.z_dim,) + hidden2
        p_dims = (z2_dim,) + hidden2[::-1]
        spec = [(f"q_z2.{i}", (q_dims[i], q_dims[i + 1])) for i in range(len(hidden2))]
        spec += [("q_z2.mu", (q_dims[-1], z2_dim)), ("q_z2.sigma", (q_dims[-1], z2_dim))]
        spec += [(f"p_z1.{i}", (p_dims[i], p_dims[i + 1])) for i in range(len(hidden2))]
        spec += [("p_z1.mu", (p_dims[-1], model.z_dim)), ("p_z1.sigma", (p_dims[-1], model.z_dim))]
        return spec + list(top.top_param_spec(model.z_dim, **top_options))

    def __init__(self, model, store, z2_dim, hidden2, top_kl, prior, **top_options):
        from ..core.model import _activation
        top_cls, self.top_kl = self._top(prior, top_kl)
        hidden2 = tuple(hidden2)
        act = _activation(model.activation)
        n = len(hidden2)
        self.z1_dim, self.z2_dim, self.dtype = model.z_dim, z2_dim, model.dtype
        self.noise_dim = z2_dim
        self.q_net = MLP([Dense(store, f"q_z2.{i}") for i in range(n)], act, "qa", "qh", "z1_q")
        self.q_mu, self.q_s = Dense(store, "q_z2.mu"), Dense(store, "q_z2.sigma")
        self.p_net = MLP([Dense(store, f"p_z1.{i}") for i in range(n)], act, "pc", "pg", "z2")
        self.p_mu, self.p_s = Dense(store, "p_z1.mu"), Dense(store, "p_z1.sigma")
        self.sigma_head = SIGMA_HEADS[model.sigma_param](model.sigma_min)
        self._sigma_equations = {sigma: rename(self.sigma_head.equation, sigma=sigma, s=s)
                                 for sigma, s in (("sigma2", "s2"), ("sigma1p", "s1p"))}
        network = dict(layers=[f"q_z2.{i}" for i in range(n)], activation=act, mu="q_z2.mu",
                       s="q_z2.sigma", sigma_head=self.sigma_head)
        self.top = top_cls.as_top(model, store, network, z2_dim, **top_options)
        self.top_name = prior
        top_label = self.top.label or "N(0, I)"
        widths = "-".join(map(str, hidden2)) or "no hidden layer"
        self.label = (f"two stochastic layers (z2 {z2_dim}, {widths}, "
                      f"p(z2) {top_label}, {self.top_kl} top KL)")
        self.work_per_sample = (6 * sum(hidden2) + 8 * z2_dim + 8 * model.z_dim
                                + self.top.work_per_sample)

    # ------------------------------------------------------------------ forward
    def _heads(self, trace, h, mu_head, s_head, names, h_name):
        mu_name, s_name, sigma_name = names
        mu, cache = mu_head.forward(h)
        mu = trace.record(mu_name, mu, f"{mu_name} = {h_name} W + b   ({mu_head.name})", cache)
        s, cache = s_head.forward(h)
        s = trace.record(s_name, s, f"{s_name} = {h_name} W + b   ({s_head.name})", cache)
        sigma, cache = self.sigma_head.forward(s)
        return mu, trace.record(sigma_name, sigma, self._sigma_equations[sigma_name], cache)

    def forward(self, trace, eps):
        """Record z1_q, the q(z2|z1) network, z2, the top prior's forward, the p(z1|z2) network,
        z1_p, ln p(z1|z2) and z1_x (module docstring)."""
        z = trace.values["z"]
        K, B, Z1 = z.shape
        N = K * B
        z1_q = trace.record("z1_q", z, "z1_q = z   (q(z2|z1) reads z1)")
        h = self.q_net.forward(trace, z1_q.reshape(N, Z1))
        mu2, sigma2 = self._heads(trace, h, self.q_mu, self.q_s, ("mu2", "s2", "sigma2"),
                                  self.q_net.output_name)
        eps2 = trace.record("eps2", eps, "eps2 ~ N(0, I)   (the prior's own noise)")
        z2, cache = ops.reparameterize_forward(mu2, sigma2, eps2.reshape(N, self.z2_dim))
        z2 = trace.record("z2", z2.reshape(K, B, self.z2_dim), "z2 = mu2 + sigma2 * eps2", cache)
        self.top.forward(trace, None)
        g = self.p_net.forward(trace, z2.reshape(N, self.z2_dim))
        mu1p, sigma1p = self._heads(trace, g, self.p_mu, self.p_s, ("mu1p", "s1p", "sigma1p"),
                                    self.p_net.output_name)
        z1_p = trace.record("z1_p", z, "z1_p = z   (p(z1|z2) is evaluated at z1)")
        log_p, r = log_gaussian_rows(z1_p.reshape(N, Z1), mu1p, sigma1p)
        trace.record("log_pz1", log_p.reshape(K, B),
                     "ln p(z1|z2) = -1/2 |(z1_p - mu1p) / sigma1p|^2 - sum ln sigma1p - Z1/2 ln 2 pi",
                     r)
        trace.record("z1_x", z, "z1_x = z   (p(x|z1) reads z1)")

    def log_q2(self, trace):
        """ln q(z2|z1) at the sample, (K, B), recorded once: -1/2 |eps2|^2 - sum ln sigma2 -
        Z2/2 ln 2 pi (a function of eps2: d/dmu2 = 0, d/dsigma2 = -1/sigma2)."""
        v = trace.values
        if "log_q2" not in v:
            eps2 = v["eps2"]
            K, B, Z2 = eps2.shape
            log_sigma = np.sum(np.log(v["sigma2"]), axis=-1).reshape(K, B)
            trace.record("log_q2", -0.5 * np.sum(eps2 * eps2, axis=-1) - log_sigma
                         - 0.5 * Z2 * LN_2PI,
                         "ln q(z2|z1) = -1/2 |eps2|^2 - sum ln sigma2 - Z2/2 ln 2 pi")
        return v["log_q2"]

    def log_density(self, trace):
        """ln p(z) := ln p(z1|z2) + ln p(z2) - ln q(z2|z1), (K, B), recorded once as log_pz."""
        v = trace.values
        if "log_pz" not in v:
            log_q2 = self.log_q2(trace)
            log_pz2 = self.top.log_density(trace)
            trace.record("log_pz", v["log_pz1"] + log_pz2 - log_q2,
                         "ln p(z) = ln p(z1|z2) + ln p(z2) - ln q(z2|z1)   (z2 ~ q(z2|z1))")
        return v["log_pz"]

    def kl_term(self, posterior):
        """The closed-form top KL given z1 (top_kl="analytic"), else the Monte Carlo KL."""
        if self.top_kl == "analytic":
            return TwoLayerKL(posterior)
        return MonteCarloKL(posterior, self)

    # ------------------------------------------------------------------ backward
    def backward(self, trace):
        """Every d<name> of the module docstring, the two networks' parameters, and
        dz = dz1_x + dz1_p + dz1_q."""
        d, v, caches = trace.grads, trace.values, trace.caches
        K, B, Z1 = v["z"].shape
        N = K * B
        if "log_pz" in d:          # ln p(z) = ln p(z1|z2) + ln p(z2) - ln q(z2|z1)
            g = d["log_pz"]
            for name, sign in (("log_pz1", 1), ("log_pz2", 1), ("log_q2", -1)):
                d[name] = d[name] + sign * g if name in d else sign * g
        d["z2"] = np.zeros_like(v["z2"])
        self.top.backward(trace)                          # d ln p(z2) -> dz2 (and the top's own)
        # ln p(z1|z2) = ln N(z1_p; mu1p, sigma1p^2), r = (z1_p - mu1p) / sigma1p
        g1 = (d["log_pz1"] if "log_pz1" in d else np.zeros((K, B), v["z"].dtype)).reshape(N, 1)
        d["log_pz1"] = g1.reshape(K, B)
        r, sigma1p = caches["log_pz1"], v["sigma1p"]
        d["z1_p"] = (-g1 * r / sigma1p).reshape(K, B, Z1)
        d["mu1p"] = g1 * r / sigma1p
        d["sigma1p"] = g1 * (r * r - 1) / sigma1p
        dg = self._heads_backward(trace, self.p_mu, self.p_s, ("mu1p", "s1p", "sigma1p"))
        dz2 = self.p_net.backward(trace, dg, need_dx=True)
        d["z2"] = d["z2"] + dz2.reshape(K, B, self.z2_dim)
        # z2 = mu2 + sigma2 * eps2 (rows), and ln q(z2|z1) through sigma2
        dmu2, dsigma2 = ops.reparameterize_backward(d["z2"].reshape(N, self.z2_dim), caches["z2"])
        d["mu2"] = dmu2 + d["mu2"] if "mu2" in d else dmu2            # (+ the closed-form KL's)
        d["sigma2"] = dsigma2 + d["sigma2"] if "sigma2" in d else dsigma2
        if "log_q2" in d:
            d["sigma2"] = d["sigma2"] + d["log_q2"].reshape(N, 1) * -(1 / v["sigma2"])
        dh = self._heads_backward(trace, self.q_mu, self.q_s, ("mu2", "s2", "sigma2"))
        d["z1_q"] = self.q_net.backward(trace, dh, need_dx=True).reshape(K, B, Z1)
        self.top.backward_shared(trace)                   # a VampPrior top: through q_z2 on v
        d["z"] = d["z1_x"] + d["z1_p"] + d["z1_q"]         # z1's three consumers

    def _heads_backward(self, trace, mu_head, s_head, names):
        """d sigma -> d s (sigma head), then the two heads (dW, db written in place) -> d h."""
        d, caches = trace.grads, trace.caches
        mu_name, s_name, sigma_name = names
        d[s_name] = self.sigma_head.backward(d[sigma_name], caches[sigma_name])
        dh, d[mu_head.name + ".W"], d[mu_head.name + ".b"] = mu_head.backward(
            d[mu_name], caches[mu_name])
        dh_s, d[s_head.name + ".W"], d[s_head.name + ".b"] = s_head.backward(
            d[s_name], caches[s_name])
        return dh + dh_s

    def backward_shared(self, trace):
        """Nothing: this prior shares no parameter with the encoder (its top's sharing with
        q(z2|z1) is done in ``backward``)."""

    # ------------------------------------------------------------------ the rest
    def sample(self, n, rng):
        """z2 ~ p(z2), then z1 = mu1p(z2) + sigma1p(z2) * eps: (n, Z1)."""
        z2 = self.top.sample(n, rng)
        t = Trace()
        g = self.p_net.forward(t, z2.astype(self.dtype, copy=False))
        mu1p = self.p_mu.forward(g)[0]
        sigma1p = self.sigma_head.forward(self.p_s.forward(g)[0])[0]
        return mu1p + sigma1p * rng.standard_normal(mu1p.shape, dtype=self.dtype)

    def upper_means(self, z):
        """[mu2(z)]: the mean of q(z2|z1) at z1 = z, (B, Z2) (for active units per layer)."""
        h = self.q_net.forward(Trace(), np.asarray(z, dtype=self.dtype))
        return [self.q_mu.forward(h)[0]]

    def grad_equations(self, eq, terms):
        """The equations of every d<name> this prior fills (see ``backward``)."""
        extra = {name: "".join(f" + {t}" for t in terms.get(name, ())) for name in ("mu2", "sigma2")}
        eq["z"] = "dz = dz1_x + dz1_p + dz1_q   (z1 feeds p(x|z1), p(z1|z2) and q(z2|z1))"
        if "log_pz" in eq:
            for name, sign, what in (("log_pz1", "", "p(z1|z2)"), ("log_pz2", "", "p(z2)"),
                                     ("log_q2", "-", "q(z2|z1)")):
                eq[name] = (f"{eq[name]} {sign or '+'} dln p(z)" if name in eq
                            else f"dln {what} = {sign}dln p(z)   (ln p(z) = ln p(z1|z2) + ln p(z2)"
                                 f" - ln q(z2|z1))")
        eq.setdefault("log_pz1", "dln p(z1|z2) = 0   (nothing read it)")
        eq["z1_p"] = "dz1_p = -dln p(z1|z2) (z1_p - mu1p) / sigma1p^2"
        eq["mu1p"] = "dmu1p = dln p(z1|z2) (z1_p - mu1p) / sigma1p^2"
        eq["sigma1p"] = "dsigma1p = dln p(z1|z2) [(z1_p - mu1p)^2 / sigma1p^2 - 1] / sigma1p"
        eq.update(self.p_net.grad_equations())
        eq.update(self.q_net.grad_equations())
        sigma2 = f"dsigma2 = dz2 * eps2{extra['sigma2']}"
        if "log_q2" in eq:
            sigma2 += " - dln q2 / sigma2"
        eq["z2"] = eq.get("z2", "dz2 = dmu1p W^T + ds1p W^T   (p_z1 heads)")
        eq["mu2"] = f"dmu2 = dz2{extra['mu2']}   (dz2/dmu2 = 1)"
        eq["sigma2"] = sigma2
        for (mu, s, sigma, head, h) in (("mu1p", "s1p", "sigma1p", "p_z1", self.p_net.output_name),
                                        ("mu2", "s2", "sigma2", "q_z2", self.q_net.output_name)):
            eq[s] = rename(self.sigma_head.grad_equation, sigma=sigma, s=s, dsigma=f"d{sigma}",
                           ds=f"d{s}")
            eq[h] = f"d{h} = d{mu} W_mu^T + d{s} W_s^T   ({head} heads)"
            for part, dname in ((".mu", mu), (".sigma", s)):
                eq[head + part + ".W"], eq[head + part + ".b"] = (f"dW = {h}^T d{dname}",
                                                                  f"db = sum_b d{dname}")
        if not self.q_net.layers:
            eq["z1_q"] = "dz1_q = dmu2 W_mu^T + ds2 W_s^T   (q_z2 heads)"
        self.top.grad_equations(eq, terms)
