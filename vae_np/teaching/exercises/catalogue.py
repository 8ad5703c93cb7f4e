"""What each exercise checks: the library forward, how its inputs are drawn, and the known
mistakes with their hints. Needs hypothesis (the ``test`` extra).

Inputs stay where the numerical derivatives are well conditioned: ReLU inputs at least 1e-3 away
from the kink, sigma and the KL's sigma at least 0.05 and 0.1, logits within +-8. Every
``mistake`` is (output index, the wrong formula, the hint): a student whose output at that index
equals the wrong formula at the failing example and at the probes has made that mistake.

Batch sizes are drawn from ``BATCH_SIZES`` = 1, 3, 4, never 2: a gradient off by a factor B (a
loss summed over the batch instead of averaged, or divided by B twice) then never reads as the
factor 2 of the KL erratum, and the grader confirms such a factor at ``PROBE_BATCHES`` = 3 and 5
(each exercise's ``cases_at(batch)`` draws its inputs at a given batch size).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from ... import ops
from ...testing.strategies import arrays, away_from_zero, floats

BATCH_SIZES = (1, 3, 4)
PROBE_BATCHES = (3, 5)
DIMS = st.integers(1, 5)


@dataclass
class Exercise:
    """One backward to write.

    ``names``: the forward's inputs, then the name of dout; the first ``n_grads`` inputs get a
    gradient, the others are data. ``cases_at(batch)``: a strategy of (inputs tuple, kwargs dict,
    dout) whose batch size B is drawn from the strategy ``batch``; ``batch_of(case)`` reads B
    back. ``mistakes``: (output index, wrong formula (inputs, kwargs, dout) -> array, hint).
    """
    name: str
    forward: object
    names: tuple
    n_grads: int
    cases_at: object
    batch_of: object = lambda case: np.shape(case[0][0])[0]
    mistakes: list = field(default_factory=list)

    @property
    def cases(self):
        """The strategy the grade draws from: batch sizes BATCH_SIZES."""
        return self.cases_at(st.sampled_from(BATCH_SIZES))


def _sig(v):
    return 1 / (1 + np.exp(-v))


def _dense(batch):
    @st.composite
    def cases(draw):
        B, n_in, n_out = draw(batch), draw(DIMS), draw(DIMS)
        return ((draw(arrays((B, n_in))), draw(arrays((n_in, n_out))), draw(arrays((n_out,)))),
                {}, draw(arrays((B, n_out), -2, 2)))
    return cases()


def _elementwise(values):
    def at(batch):
        @st.composite
        def cases(draw):
            shape = (draw(batch), draw(DIMS))
            return (draw(arrays(shape, elements=values)),), {}, draw(arrays(shape, -2, 2))
        return cases()
    return at


def _softplus_sigma(batch):
    @st.composite
    def cases(draw):
        shape = (draw(batch), draw(DIMS))
        return (draw(arrays(shape, -4, 4)),), {"sigma_min": 1e-4}, draw(arrays(shape, -2, 2))
    return cases()


def _reparameterize(batch):
    @st.composite
    def cases(draw):
        B, Z, K = draw(batch), draw(DIMS), draw(st.integers(1, 3))
        return ((draw(arrays((B, Z))), draw(arrays((B, Z), 0.05, 3)), draw(arrays((K, B, Z)))),
                {}, draw(arrays((K, B, Z), -2, 2)))
    return cases()


def _kl(batch):
    @st.composite
    def cases(draw):
        B, Z = draw(batch), draw(DIMS)
        return ((draw(arrays((B, Z))), draw(arrays((B, Z), 0.1, 3))), {},
                draw(arrays((B,), -2, 2)))
    return cases()


def _likelihood(gaussian):
    def at(batch):
        @st.composite
        def cases(draw):
            B, D, K = draw(batch), draw(DIMS), draw(st.integers(1, 3))
            first = draw(arrays((K, B, D), -3, 3) if gaussian else arrays((K, B, D), -8, 8))
            x = draw(arrays((B, D), -3, 3) if gaussian else arrays((B, D), 0, 1))
            kwargs = {"sigma": draw(floats(0.2, 3))} if gaussian else {}
            return (first, x), kwargs, draw(arrays((K, B), -2, 2))
        return cases()
    return at


def _likelihood_batch(case):
    return np.shape(case[0][1])[0]                    # x is (B, D)


SIGMOID_ON_OUTPUT = ("the cache is the output y = sigmoid(x), not x: dx = dy y (1 - y); "
                     "applying sigmoid to y again takes the derivative at the wrong point")
SIGMOID_OF_LOGITS = ("a sigmoid derivative s (1 - s) taken with s = the logits l: it needs "
                     "s = sigmoid(l)")

EXERCISES = [
    Exercise("dense_backward", ops.dense_forward, ("x", "W", "b", "dy"), 3, _dense, mistakes=[
        (1, lambda i, k, d: d.T @ i[0], "dW = x^T dy has W's shape (n_in, n_out); "
                                        "dy^T x is its transpose"),
        (2, lambda i, k, d: d.mean(axis=0), "b is added to every row of the batch, so db sums "
                                            "dy over the batch; a mean divides by B"),
        (0, lambda i, k, d: d @ i[1], "dx = dy W^T (W transposed)")]),
    Exercise("relu_backward", ops.relu_forward, ("x", "dy"), 1, _elementwise(away_from_zero()),
             mistakes=[
        (0, lambda i, k, d: d * i[0], "the derivative of max(x, 0) is 1 or 0, not x")]),
    Exercise("tanh_backward", ops.tanh_forward, ("x", "dy"), 1, _elementwise(floats(-4, 4)),
             mistakes=[
        (0, lambda i, k, d: d * (1 - np.tanh(np.tanh(i[0])) ** 2),
         "the cache is the output y = tanh(x), not x: dx = dy (1 - y^2)")]),
    Exercise("sigmoid_backward", ops.sigmoid_forward, ("x", "dy"), 1,
             _elementwise(floats(-4, 4)), mistakes=[
        (0, lambda i, k, d: d * _sig(_sig(i[0])) * (1 - _sig(_sig(i[0]))), SIGMOID_ON_OUTPUT)]),
    Exercise("softplus_backward", ops.softplus_forward, ("x", "dy"), 1,
             _elementwise(floats(-4, 4)), mistakes=[
        (0, lambda i, k, d: d * _sig(i[0]) * (1 - _sig(i[0])),
         "that is the derivative of sigmoid; d softplus(x) / dx = sigmoid(x)")]),
    Exercise("sigma_logvar_backward", ops.sigma_logvar_forward, ("s", "dsigma"), 1,
             _elementwise(floats(-4, 4)), mistakes=[
        (0, lambda i, k, d: d * np.exp(i[0] / 2),
         "sigma = exp(s / 2): dsigma/ds = sigma / 2, the 1/2 of the exponent is missing")]),
    Exercise("sigma_softplus_backward", ops.sigma_softplus_forward, ("s", "dsigma"), 1,
             _softplus_sigma, mistakes=[
        (0, lambda i, k, d: d * (np.log1p(np.exp(i[0])) + k["sigma_min"]),
         "dsigma/ds is the derivative of softplus, sigmoid(s), not sigma itself")]),
    Exercise("reparameterize_backward", ops.reparameterize_forward, ("mu", "sigma", "eps", "dz"),
             2, _reparameterize, mistakes=[
        (1, lambda i, k, d: d.sum(axis=0), "missing eps in dsigma: dz/dsigma = eps, so "
                                           "dsigma = sum_k dz_k * eps_k"),
        (0, lambda i, k, d: d.mean(axis=0), "a sum over k written as a mean: mu feeds all K "
                                            "samples, so dmu = sum_k dz_k"),
        (1, lambda i, k, d: (d * i[2]).mean(axis=0), "a sum over k written as a mean: sigma "
                                                     "feeds all K samples, so dsigma = "
                                                     "sum_k dz_k eps_k")]),
    Exercise("kl_backward", ops.kl_forward, ("mu", "sigma", "dkl"), 2, _kl, mistakes=[
        (1, lambda i, k, d: 2 * d[:, None] * (i[1] - 1 / i[1]),
         "the 1/2 of KL = 1/2 sum(mu^2 + sigma^2 - 1 - ln sigma^2) was dropped"),
        (0, lambda i, k, d: 2 * d[:, None] * i[0],
         "the 1/2 of KL = 1/2 sum(mu^2 + sigma^2 - 1 - ln sigma^2) was dropped"),
        (1, lambda i, k, d: d[:, None] * i[1],
         "d/dsigma of -1/2 ln sigma^2 = -1/sigma is missing")]),
    Exercise("bernoulli_nll_backward", ops.bernoulli_nll_forward, ("logits", "x", "dnll"), 1,
             _likelihood(gaussian=False), _likelihood_batch, mistakes=[
        (0, lambda i, k, d: d[..., None] * (_sig(i[0]) - i[1]) * _sig(i[0]) * (1 - _sig(i[0])),
         "a sigmoid derivative multiplied in once too often: d/dl [softplus(l) - x l] = "
         "sigmoid(l) - x already contains it"),
        (0, lambda i, k, d: d[..., None] * (_sig(i[0]) - i[1]) * i[0] * (1 - i[0]),
         SIGMOID_OF_LOGITS + ", and d/dl [softplus(l) - x l] = sigmoid(l) - x already "
         "contains it"),
        (0, lambda i, k, d: (d[..., None] * (_sig(i[0]) - i[1])
                             / (_sig(i[0]) * (1 - _sig(i[0]))) * i[0] * (1 - i[0])),
         SIGMOID_OF_LOGITS + " (dnll/dp = (p - x) / (p (1 - p)), times dp/dl = p (1 - p), "
         "p = sigmoid(l))"),
        (0, lambda i, k, d: d[..., None] * (i[1] - _sig(i[0])),
         "this is the gradient of +ln p; the loss is -ln p")]),
    Exercise("gaussian_nll_backward", ops.gaussian_nll_forward, ("mean", "x", "dnll"), 1,
             _likelihood(gaussian=True), _likelihood_batch, mistakes=[
        (0, lambda i, k, d: d[..., None] * (i[0] - i[1]),
         "divide by sigma^2: d/dmean 1/2 (x - mean)^2 / sigma^2 = (mean - x) / sigma^2"),
        (0, lambda i, k, d: d[..., None] * (i[1] - i[0]) / k["sigma"] ** 2,
         "the sign: d/dmean (x - mean)^2 = 2 (mean - x)")]),
]


@st.composite
def assembly_cases(draw):
    """Architectures and runs of the last exercise: (x_dim, hidden, z_dim, k, batch, seed)."""
    return (draw(st.integers(1, 5)), draw(st.integers(1, 4)), draw(st.integers(1, 3)),
            draw(st.integers(1, 3)), draw(st.sampled_from(BATCH_SIZES)),
            draw(st.integers(0, 1000)))
