"""The tables that ``tests/core/test_bad_input.py`` walks: bad batches x, k, eps and rng for every
method that takes a batch, bad constructor arguments and learning rates, bad decode / sample / fit /
gradcheck arguments.

Each table is expanded here into the exact list of cases a test runs, every case starting with its
entry point, so that ``entry_counts()`` counts what the tests run (for ``docs/robustness.md``)
without reading the test module.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from vae_np import SGD, VAE, Adagrad, Adam, Momentum, fit
from vae_np.gradcheck import check_gradients, check_model

X_DIM, Z_DIM, B = 4, 2, 3
GOOD_X = np.full((B, X_DIM), 0.5)
GOOD_EPS = np.zeros((B, Z_DIM))


def model(**kw):
    args = dict(x_dim=X_DIM, hidden=(3,), z_dim=Z_DIM, activation="tanh", likelihood="bernoulli")
    args.update(kw)
    return VAE(**args)


def with_nan(a, value=np.nan):
    a = np.array(a, dtype=float)
    a.flat[1] = value
    return a


BERNOULLI, GAUSSIAN = model(), model(likelihood="gaussian")

# every public entry point that takes a batch x (and, where it has them, k and eps)
X_METHODS = {
    "loss_and_grads": lambda m, x, **kw: m.loss_and_grads(x, **kw),
    "loss": lambda m, x, **kw: m.loss(x, **kw),
    "elbo_terms": lambda m, x, **kw: m.elbo_terms(x, **kw),
    "log_weights": lambda m, x, **kw: m.log_weights(x, **kw),
}
X_ONLY = {
    "encode": lambda m, x: m.encode(x),
    "reconstruct": lambda m, x: m.reconstruct(x),
    "fit": lambda m, x: fit(m, x, SGD(0.1), rng=np.random.default_rng(0)),
}


def entry(method):
    return "fit" if method == "fit" else f"VAE.{method}"


BAD_X = [
    ("1-D", np.zeros(X_DIM), ["x", "2-dimensional"]),
    ("3-D", np.zeros((1, B, X_DIM)), ["x", "2-dimensional"]),
    ("wrong width", np.zeros((B, X_DIM + 1)), ["x", f"{X_DIM}"]),
    ("empty batch", np.zeros((0, X_DIM)), ["x", "empty"]),
    ("strings", np.full((B, X_DIM), "a"), ["x", "numeric"]),
    ("object", np.full((B, X_DIM), None, dtype=object), ["x", "numeric"]),
    ("complex", np.zeros((B, X_DIM), complex), ["x", "real"]),
    ("NaN", with_nan(GOOD_X), ["x", "finite"]),
    ("inf", with_nan(GOOD_X, np.inf), ["x", "finite"]),
    ("-inf", with_nan(GOOD_X, -np.inf), ["x", "finite"]),
    ("ragged list", [[0.5] * X_DIM, [0.5]], ["x", "array"]),
    ("None", None, ["x"]),
]
BAD_X_BERNOULLI = [
    ("above 1", np.full((B, X_DIM), 1.5), ["x", "[0, 1]", "Bernoulli"]),
    ("below 0", np.full((B, X_DIM), -0.25), ["x", "[0, 1]", "Bernoulli"]),
    ("ints 0..255", np.full((B, X_DIM), 200, dtype=np.int64), ["x", "[0, 1]"]),
]
X_CASES = [(entry(method), method, row) for method in sorted(X_METHODS) + sorted(X_ONLY)
           for row in BAD_X + BAD_X_BERNOULLI]

BAD_K = [0, -1, 1.5, "2", None, True]
K_CASES = [(entry(method), method, k) for method in sorted(X_METHODS) for k in BAD_K]

BAD_EPS = [
    ("wrong Z", dict(eps=np.zeros((B, Z_DIM + 1))), ["eps", "shape"]),
    ("wrong B", dict(eps=np.zeros((B + 1, Z_DIM))), ["eps", "shape"]),
    ("2-D with k=2", dict(k=2, eps=np.zeros((B, Z_DIM))), ["eps", "shape", "k=2"]),
    ("wrong K", dict(k=2, eps=np.zeros((3, B, Z_DIM))), ["eps", "shape"]),
    ("NaN", dict(eps=with_nan(GOOD_EPS)), ["eps", "finite"]),
    ("inf", dict(eps=with_nan(GOOD_EPS, np.inf)), ["eps", "finite"]),
    ("strings", dict(eps=np.full((B, Z_DIM), "e")), ["eps", "numeric"]),
    ("complex", dict(eps=np.zeros((B, Z_DIM), complex)), ["eps", "real"]),
    ("object", dict(eps=np.full((B, Z_DIM), None, dtype=object)), ["eps", "numeric"]),
    ("empty", dict(eps=np.zeros((0, Z_DIM))), ["eps"]),
    ("rng not a Generator", dict(rng=42), ["rng", "Generator"]),
    ("legacy RandomState", dict(rng=np.random.RandomState(0)), ["rng", "Generator"]),
]
EPS_CASES = [(entry(method), method, row) for method in sorted(X_METHODS) for row in BAD_EPS]

CONSTRUCTOR_CASES = [("VAE(...)", kwargs, words) for kwargs, words in [
    (dict(activation="swish"), ["activation", "relu", "tanh"]),
    (dict(activation=None), ["activation"]),
    (dict(likelihood="poisson"), ["likelihood", "bernoulli"]),
    (dict(likelihood="Bernoulli"), ["likelihood"]),
    (dict(sigma_param="exp"), ["sigma_param", "logvar", "softplus"]),
    (dict(decoder_mean="tanh"), ["decoder_mean", "identity", "sigmoid"]),
    (dict(sigma_min=0), ["sigma_min", "> 0"]),
    (dict(sigma_min=-1e-3), ["sigma_min", "> 0"]),
    (dict(sigma_min=float("nan")), ["sigma_min", "finite"]),
    (dict(sigma_min="0.1"), ["sigma_min"]),
    (dict(decoder_sigma_min=-0.1), ["decoder_sigma_min", ">= 0"]),
    (dict(decoder_sigma=0.0), ["decoder_sigma", "> 0"]),
    (dict(init_std=0), ["init_std", "> 0"]),
    (dict(init_std=-1), ["init_std"]),
    (dict(dtype=np.int32), ["dtype", "float32 or float64"]),
    (dict(dtype=np.float16), ["dtype", "float32 or float64"]),
    (dict(dtype=np.complex128), ["dtype", "float32 or float64"]),
    (dict(dtype="float17"), ["dtype", "float32 or float64"]),
    (dict(x_dim=0), ["x_dim", ">= 1"]),
    (dict(x_dim=2.5), ["x_dim", "integer"]),
    (dict(z_dim=0), ["z_dim", ">= 1"]),
    (dict(z_dim="2"), ["z_dim", "integer"]),
    (dict(hidden=(0,)), ["hidden"]),
    (dict(hidden=(3, -1)), ["hidden"]),
    (dict(hidden=(2.5,)), ["hidden"]),
    (dict(hidden=None), ["hidden"]),
    (dict(seed=-1), ["seed"]),
    (dict(seed="a"), ["seed"]),
]]

LR_CASES = [(f"{cls.__name__}(...)", cls, lr) for cls in (SGD, Momentum, Adagrad, Adam)
            for lr in (0, -0.1, float("nan"), float("-inf"), "0.1", None)]

DECODE_CASES = [
    ("VAE.decode", lambda m: m.decode(np.zeros((2, Z_DIM + 1))), ["z", "shape"]),
    ("VAE.decode", lambda m: m.decode(np.zeros(Z_DIM)), ["z", "2-dimensional"]),
    ("VAE.decode", lambda m: m.decode(with_nan(np.zeros((2, Z_DIM)))), ["z", "finite"]),
    ("VAE.decode", lambda m: m.decode(np.zeros((0, Z_DIM))), ["z", "empty"]),
    ("VAE.decode", lambda m: m.decode(np.full((2, Z_DIM), "z")), ["z", "numeric"]),
    ("VAE.sample", lambda m: m.sample(0), ["n", ">= 1"]),
    ("VAE.sample", lambda m: m.sample(2.0), ["n", "integer"]),
    ("VAE.sample", lambda m: m.sample(2, rng=7), ["rng", "Generator"]),
]

FIT_CASES = [("fit", kwargs, words) for kwargs, words in [
    (dict(epochs=0), ["epochs"]),
    (dict(batch_size=0), ["batch_size"]),
    (dict(batch_size=2.5), ["batch_size"]),
    (dict(k=0), ["k"]),
    (dict(schedule="interleaved"), ["schedule", "alternating", "joint"]),
    (dict(optimizer=0.1), ["optimizer"]),
    (dict(optimizer=(SGD(0.1),), schedule="alternating"), ["optimizer"]),
    (dict(rng=3), ["rng", "Generator"]),
    (dict(callback="print"), ["callback"]),
]]

# (entry, call, regular expression the message must match)
CALL_CASES = [
    ("fit", lambda: fit("vae", GOOD_X, SGD(0.1)), "model"),
    ("gradcheck.check_model", lambda: check_model(BERNOULLI, GOOD_X, method="backward"),
     "method"),
    ("gradcheck.check_gradients",
     lambda: check_gradients(lambda p: 0.0, np.zeros(2), np.zeros(2), tol=-1), "tol"),
    ("gradcheck.check_gradients",
     lambda: check_gradients(lambda p: 0.0, np.zeros(2), np.zeros(2), method="directional",
                             directions=0), "directions"),
    ("gradcheck.check_model", lambda: check_model(BERNOULLI, GOOD_X, k=0), r"\bk\b"),
]

ALL_CASES = (X_CASES, K_CASES, EPS_CASES, CONSTRUCTOR_CASES, LR_CASES, DECODE_CASES, FIT_CASES,
             CALL_CASES)


def entry_counts() -> Counter:
    """The number of cases the tests of ``tests/core/test_bad_input.py`` run, per entry point."""
    return Counter(case[0] for table in ALL_CASES for case in table)
