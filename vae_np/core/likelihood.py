"""The decoder's likelihood p(x|z) as a component: from the decoder's output g to -ln p(x|z).

A likelihood component owns the decoder's output heads and has one forward/backward pair:

    forward(trace, g, x, k)  records its output heads (logits, or the mean x~ and perhaps r)
                             and nll (K, B) = -ln p(x | z) per sample
    backward(trace)          reads d nll from trace.grads, fills d<name> for its heads and their
                             parameters, and returns d g
    mean(g)                  the mean of p(x|z) (for decode), without a trace
    heads                    the prefixes of its dense heads' parameters, in layout order
    unit_interval            whether x must lie in [0, 1]
    grad_equations()         d<name> -> equation, for its heads and their parameters

Components are registered in ``LIKELIHOOD_COMPONENTS`` (``register_likelihood``, one line) and
chosen once, at construction, by ``VAE(likelihood=NAME)``; each is built as
``cls(store, g_name, DecoderSettings)`` and uses the settings it needs (the model's keywords
decoder_sigma, decoder_sigma_min, decoder_mean: a likelihood with a setting of another kind
would need a keyword of the model, unlike a posterior family or a prior, which bring their own). A Gaussian's mean goes
through a mean link (identity, or a sigmoid that keeps it in (0, 1)), itself a small component.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import ops
from .layers import Dense
from .registry import Registry


@dataclass(frozen=True)
class DecoderSettings:
    """sigma: a fixed Gaussian's sigma; sigma_min: a learned sigma's lower bound; mean: the
    Gaussian mean's link, "identity" or "sigmoid"."""
    sigma: float = 1.0
    sigma_min: float = 0.0
    mean: str = "identity"


class IdentityMean:
    """x~ is the head itself: x~ = g W + b."""
    head = "x~"
    grad_equations = {}

    def forward(self, trace, m, cache, g_name):
        return trace.record("x~", m, f"x~ = {g_name} W + b   (decoder.out)", cache)

    def backward(self, trace):
        return trace.grads["x~"]

    def apply(self, m):
        return m


class SigmoidMean:
    """x~ = sigmoid(m) with m = g W + b, so that the mean stays in (0, 1); dx~/dm = x~ (1 - x~)."""
    head = "m"
    grad_equations = {"m": "dm = dx~ * x~ (1 - x~)"}

    def forward(self, trace, m, cache, g_name):
        m = trace.record("m", m, f"m = {g_name} W + b   (decoder.out)", cache)
        mean, cache = ops.sigmoid_forward(m)
        return trace.record("x~", mean, "x~ = sigmoid(m)", cache)

    def backward(self, trace):
        d = trace.grads
        d["m"] = ops.sigmoid_backward(d["x~"], trace.caches["x~"])           # dx~/dm = x~(1 - x~)
        return d["m"]

    def apply(self, m):
        return ops.sigmoid(m)


MEAN_LINKS = {"identity": IdentityMean, "sigmoid": SigmoidMean}


def _samples(a, k):
    """(K*B, D) rows of the decoder, sample-major, as (K, B, D)."""
    return a.reshape(k, a.shape[0] // k, a.shape[1])


def _rows(a):
    """(K, B, D) back to the decoder's (K*B, D) rows."""
    return a.reshape(-1, a.shape[-1])


class Bernoulli:
    """p(x|z) = prod_d Bernoulli(x_d; sigmoid(logits_d)), for x in [0, 1]."""
    heads = ("decoder.out",)
    unit_interval = True       # x must lie in [0, 1]
    equation = "nll = sum_d softplus(logits) - x logits"
    grad_equation = "dlogits = dnll * (sigmoid(logits) - x)"

    def __init__(self, store, g_name, settings):
        self.out = Dense(store, "decoder.out")
        self.g_name = g_name

    @staticmethod
    def nll_forward(logits, x):
        return ops.bernoulli_nll_forward(logits, x)

    @staticmethod
    def nll_backward(dnll, cache):
        return ops.bernoulli_nll_backward(dnll, cache)             # dnll (sigmoid(logits) - x)

    def forward(self, trace, g, x, k):
        logits, cache = self.out.forward(g)
        logits = trace.record("logits", _samples(logits, k),
                              f"logits = {self.g_name} W + b   (decoder.out)", cache)
        nll, cache = self.nll_forward(logits, x)
        trace.record("nll", nll, self.equation, cache)

    def backward(self, trace):
        d, caches = trace.grads, trace.caches
        d["logits"] = self.nll_backward(d["nll"], caches["nll"])
        dg, d["decoder.out.W"], d["decoder.out.b"] = self.out.backward(
            _rows(d["logits"]), caches["logits"])  # dW = g^T dlogits, db = sum, dg = dlogits W^T
        return dg

    def grad_equations(self):
        g = self.g_name
        return {"logits": self.grad_equation,
                "decoder.out.W": f"dW = {g}^T dlogits", "decoder.out.b": "db = sum_b dlogits",
                g: f"d{g} = dlogits W^T   (decoder.out)"}

    def mean(self, g):
        return ops.sigmoid(self.out.forward(g)[0])


class Gaussian:
    """p(x|z) = N(x; x~, sigma^2 I) with a fixed sigma."""
    heads = ("decoder.out",)
    unit_interval = False

    def __init__(self, store, g_name, settings):
        self.out = Dense(store, "decoder.out")
        self.link = MEAN_LINKS[settings.mean]()
        self.sigma = settings.sigma
        self.g_name = g_name

    def forward(self, trace, g, x, k):
        m, cache = self.out.forward(g)
        mean = self.link.forward(trace, _samples(m, k), cache, self.g_name)
        nll, cache = ops.gaussian_nll_forward(mean, x, self.sigma)
        trace.record("nll", nll, "nll = 1/2 |x - x~|^2 / sigma^2 + D ln sigma + D/2 ln 2 pi",
                     cache)

    def backward(self, trace):
        d, caches = trace.grads, trace.caches
        d["x~"] = ops.gaussian_nll_backward(d["nll"], caches["nll"])      # (x~ - x) / sigma^2
        dm = self.link.backward(trace)
        dg, d["decoder.out.W"], d["decoder.out.b"] = self.out.backward(
            _rows(dm), caches[self.link.head])       # dW = g^T dm, db = sum_b dm, dg = dm W^T
        return dg

    def grad_equations(self):
        g, m = self.g_name, self.link.head
        return {"x~": "dx~ = dnll * (x~ - x) / sigma^2", **self.link.grad_equations,
                "decoder.out.W": f"dW = {g}^T d{m}", "decoder.out.b": f"db = sum_b d{m}",
                g: f"d{g} = d{m} W^T   (decoder.out)"}

    def mean(self, g):
        return self.link.apply(self.out.forward(g)[0])


class GaussianLearned:
    """p(x|z) = N(x; x~, diag sigma^2) with sigma = sigma_min + e^r from a second head r."""
    heads = ("decoder.out", "decoder.logsigma")
    unit_interval = False

    def __init__(self, store, g_name, settings):
        self.out = Dense(store, "decoder.out")
        self.r_head = Dense(store, "decoder.logsigma")
        self.link = MEAN_LINKS[settings.mean]()
        self.sigma_min = settings.sigma_min
        self.g_name = g_name

    def forward(self, trace, g, x, k):
        m, cache = self.out.forward(g)
        mean = self.link.forward(trace, _samples(m, k), cache, self.g_name)
        r, cache = self.r_head.forward(g)
        r = trace.record("r", _samples(r, k), f"r = {self.g_name} W + b   (decoder.logsigma)",
                         cache)
        nll, cache = ops.gaussian_learned_nll_forward(mean, r, x, self.sigma_min)
        trace.record("nll", nll, "nll = sum_d (x - x~)^2 / 2 sigma^2 + ln sigma + 1/2 ln 2 pi,"
                     " sigma = sigma_min + e^r", cache)

    def backward(self, trace):
        d, caches = trace.grads, trace.caches
        d["x~"], d["r"] = ops.gaussian_learned_nll_backward(d["nll"], caches["nll"])
        dm = self.link.backward(trace)
        dg, d["decoder.out.W"], d["decoder.out.b"] = self.out.backward(
            _rows(dm), caches[self.link.head])
        dg_r, d["decoder.logsigma.W"], d["decoder.logsigma.b"] = self.r_head.backward(
            _rows(d["r"]), caches["r"])
        dg += dg_r                                   # g fans out to both heads
        return dg

    def grad_equations(self):
        g, m = self.g_name, self.link.head
        return {"x~": "dx~ = dnll * (x~ - x) / sigma^2", **self.link.grad_equations,
                "r": "dr = dnll * (1 - (x - x~)^2 / sigma^2) * e^r / sigma",
                "decoder.out.W": f"dW = {g}^T d{m}", "decoder.out.b": f"db = sum_b d{m}",
                "decoder.logsigma.W": f"dW = {g}^T dr", "decoder.logsigma.b": "db = sum_b dr",
                g: f"d{g} = d{m} W_out^T + dr W_r^T   ({g} fans out to both heads)"}

    def mean(self, g):
        return self.link.apply(self.out.forward(g)[0])


class ContinuousBernoulli(Bernoulli):
    """p(x|z) = prod_d C(l_d) lambda_d^x_d (1 - lambda_d)^(1 - x_d), lambda = sigmoid(logits): the
    Bernoulli cross-entropy made a density on [0, 1] by its normaliser C (Loaiza-Ganem &
    Cunningham 2019), for grey levels x in [0, 1]."""
    equation = "nll = sum_d softplus(logits) - x logits - ln C(logits)"
    grad_equation = "dlogits = dnll * (sigmoid(logits) - x - (1/logits - 1/sinh(logits)))"

    @staticmethod
    def nll_forward(logits, x):
        return ops.continuous_bernoulli_nll_forward(logits, x)

    @staticmethod
    def nll_backward(dnll, cache):
        # dnll (sigmoid(l) - x - d ln C/dl),  d ln C/dl = 1/l - 1/sinh(l)
        return ops.continuous_bernoulli_nll_backward(dnll, cache)

    def mean(self, g):
        """E[x] = sigmoid(l) - (1/l - 1/sinh l), the continuous Bernoulli's mean (not lambda)."""
        logits = self.out.forward(g)[0]
        return ops.sigmoid(logits) - ops.continuous_bernoulli_log_normaliser_grad(logits)


LIKELIHOOD_COMPONENTS = Registry("likelihood")
"""likelihood name -> component class, constructed as cls(store, g_name, DecoderSettings)."""


def register_likelihood(name, cls):
    """Add a likelihood (the one line a new likelihood needs)."""
    return LIKELIHOOD_COMPONENTS.register(name, cls)


register_likelihood("bernoulli", Bernoulli)
register_likelihood("gaussian", Gaussian)
register_likelihood("gaussian-learned", GaussianLearned)
register_likelihood("continuous-bernoulli", ContinuousBernoulli)
