"""The table of vae_np's public entry points and the bad values tried on each.

Every row is one call with exactly one bad argument. ``tests/test_entry_points.py`` walks the
table: the call must raise ``expect`` (ValueError, or FileNotFoundError for a missing file), never
a NumPy TypeError/IndexError/AttributeError from deep inside, and the message must contain
``word`` (the argument's name, or for file contents the file's name). ``CLI_CASES`` does the same
for ``python -m vae_np``: exit status 2, one line on stderr, no traceback.

``docs/robustness.md`` is generated from this module (``python tests/entry_points.py >
docs/robustness.md``) and a test keeps the two identical.

The bad-x / k / eps / rng / constructor cases of ``tests/test_bad_input.py`` are not repeated here;
``PRIOR_CASES`` counts them for the document.

Calls take one argument, ``tmp``: a fresh directory (``VAE_NP_DATA`` points into it, so no loader
ever sees a real cache, and the MNIST mirrors point at a closed local port, so nothing reaches the
network).
"""
from __future__ import annotations

import gzip
import sys
from collections import Counter
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

if __name__ == "__main__":      # run as a script from anywhere: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae_np import SGD, VAE, Adagrad, Adam, Momentum, fit, ops
from vae_np import data as vdata
from vae_np import estimators
from vae_np.derivations import check_claim_names, run_claims
from vae_np.explain import build_model, explain
from vae_np.gradcheck import check_gradients, check_model


class Case(NamedTuple):
    entry: str          # entry point, e.g. "VAE.decode"
    kind: str           # a key of KINDS
    word: str           # must appear in the error message
    what: str           # the bad value, in words (for the document)
    call: Callable      # call(tmp) invokes the entry point with that one bad value
    expect: type = ValueError


KINDS = {
    "shape": "wrong shape (including shapes NumPy would broadcast silently)",
    "dtype": "wrong dtype (int/complex/str/object arrays, values beyond float32)",
    "range": "value out of its range (<= 0, >= 1, outside [0, 1], beyond float32, ...)",
    "nan/inf": "NaN or infinity",
    "empty": "empty array, list or string",
    "unknown name": "a name that is not one of the accepted ones",
    "int range": "an integer out of range (0, negative, too large for memory)",
    "type": "wrong type (None, str for a number, float for an int, bool, class for instance)",
    "file": "missing, unreadable or malformed file / path",
}

# ------------------------------------------------------------------------------------ fixtures
X_DIM, Z_DIM, B = 4, 2, 3
M = VAE(X_DIM, (3,), Z_DIM, "tanh", "bernoulli", seed=0)                 # float64, Bernoulli
M32 = VAE(X_DIM, (3,), Z_DIM, "tanh", "gaussian", dtype=np.float32, seed=0)
X = np.full((B, X_DIM), 0.5)
EPS = np.zeros((B, Z_DIM))
HUGE = np.full((B, X_DIM), 1e39)            # finite in float64, inf once cast to float32
OK_SHA = "0" * 64
CLOSED_PORT = "http://127.0.0.1:9/"         # the discard port: nothing listens, refused at once

CASES: list[Case] = []


def case(entry, kind, word, what, call, expect=ValueError):
    CASES.append(Case(entry, kind, word, what, call, expect))


def nan_at(a, value=np.nan):
    a = np.array(a, dtype=float)
    a.flat[0] = value
    return a


def write(tmp, name, content: bytes) -> Path:
    path = Path(tmp) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


# ------------------------------------------------------------------------------ VAE(...)
def vae(**kw):
    args = dict(x_dim=X_DIM, hidden=(3,), z_dim=Z_DIM)
    args.update(kw)
    return lambda tmp: VAE(**args)


for _kw, _kind, _word, _what in [
    (dict(x_dim=-3), "int range", "x_dim", "-3"),
    (dict(x_dim=True), "type", "x_dim", "True"),
    (dict(x_dim=4.0), "type", "x_dim", "4.0 (a float)"),
    (dict(x_dim=np.int64(0)), "int range", "x_dim", "np.int64(0)"),
    (dict(z_dim=-1), "int range", "z_dim", "-1"),
    (dict(z_dim=None), "type", "z_dim", "None"),
    (dict(hidden="3"), "type", "hidden", "the string '3'"),
    (dict(hidden=[[3]]), "shape", "hidden", "[[3]] (nested)"),
    (dict(hidden=-2), "int range", "hidden", "-2"),
    (dict(activation="RELU"), "unknown name", "activation", "'RELU' (names are lower case)"),
    (dict(activation=""), "empty", "activation", "''"),
    (dict(likelihood=None), "type", "likelihood", "None"),
    (dict(sigma_param="softplus "), "unknown name", "sigma_param", "'softplus ' (trailing space)"),
    (dict(decoder_mean=None), "type", "decoder_mean", "None"),
    (dict(sigma_min=np.inf), "nan/inf", "sigma_min", "inf"),
    (dict(sigma_min=True), "type", "sigma_min", "True"),
    (dict(decoder_sigma=-1.0), "range", "decoder_sigma", "-1.0"),
    (dict(decoder_sigma=np.inf), "nan/inf", "decoder_sigma", "inf"),
    (dict(decoder_sigma=np.nan), "nan/inf", "decoder_sigma", "NaN"),
    (dict(decoder_sigma_min=np.inf), "nan/inf", "decoder_sigma_min", "inf"),
    (dict(decoder_sigma_min=np.nan), "nan/inf", "decoder_sigma_min", "NaN"),
    (dict(decoder_sigma_min="0"), "type", "decoder_sigma_min", "'0'"),
    (dict(init_std=np.inf), "nan/inf", "init_std", "inf"),
    (dict(init_std=np.nan), "nan/inf", "init_std", "NaN"),
    (dict(init_std="1"), "type", "init_std", "'1'"),
    (dict(dtype=np.longdouble), "dtype", "dtype", "np.longdouble"),
    (dict(dtype=object), "dtype", "dtype", "object"),
    (dict(dtype="f2"), "dtype", "dtype", "'f2' (float16)"),
    (dict(seed=-5), "int range", "seed", "-5"),
    (dict(seed=1.0), "type", "seed", "1.0"),
    (dict(seed=None), "type", "seed", "None"),
]:
    case("VAE(...)", _kind, _word, f"{next(iter(_kw))}={_what}", vae(**_kw))

# ------------------------------------------------------------------------------ VAE methods
BATCH_METHODS = {
    "VAE.loss_and_grads": lambda m, x, **kw: m.loss_and_grads(x, **kw),
    "VAE.loss": lambda m, x, **kw: m.loss(x, **kw),
    "VAE.elbo_terms": lambda m, x, **kw: m.elbo_terms(x, **kw),
    "VAE.log_weights": lambda m, x, **kw: m.log_weights(x, **kw),
}
for _entry, _method in BATCH_METHODS.items():
    for _kind, _word, _what, _call in [
        ("range", "x", "x = 1e39 (finite float64) for a float32 model",
         lambda tmp, f=_method: f(M32, HUGE)),
        ("shape", "x", "x 0-d array", lambda tmp, f=_method: f(M, np.array(0.5))),
        ("range", "eps", "eps = 1e39 for a float32 model",
         lambda tmp, f=_method: f(M32, X, eps=np.full((B, Z_DIM), 1e39))),
        ("shape", "eps", "eps list of the wrong length", lambda tmp, f=_method: f(M, X, eps=[[0, 0]])),
        ("int range", "k", "k = np.int64(-2)", lambda tmp, f=_method: f(M, X, k=np.int64(-2))),
        ("type", "rng", "rng = np.random.default_rng (the function)",
         lambda tmp, f=_method: f(M, X, rng=np.random.default_rng)),
    ]:
        case(_entry, _kind, _word, _what, _call)

for _kind, _word, _what, _call in [
    ("shape", "x", "x 1-D", lambda tmp: M.encode(np.zeros(X_DIM))),
    ("shape", "x", "x list of rows of width 3", lambda tmp: M.encode([[0.5] * 3] * 2)),
    ("range", "x", "x = 1e39 for a float32 model", lambda tmp: M32.encode(HUGE)),
    ("range", "x", "x = 2 for a Bernoulli model", lambda tmp: M.encode(np.full((1, X_DIM), 2.0))),
    ("nan/inf", "x", "x with -inf", lambda tmp: M.encode(nan_at(X, -np.inf))),
]:
    case("VAE.encode", _kind, _word, _what, _call)

for _kind, _word, _what, _call in [
    ("range", "z", "z = 1e39 for a float32 model", lambda tmp: M32.decode(np.full((2, Z_DIM), 1e39))),
    ("shape", "z", "z 3-D", lambda tmp: M.decode(np.zeros((1, 2, Z_DIM)))),
    ("dtype", "z", "z complex", lambda tmp: M.decode(np.zeros((2, Z_DIM), complex))),
    ("nan/inf", "z", "z with inf", lambda tmp: M.decode(nan_at(np.zeros((2, Z_DIM)), np.inf))),
    ("type", "z", "z = None", lambda tmp: M.decode(None)),
    ("empty", "z", "z of shape (2, 0)", lambda tmp: M.decode(np.zeros((2, 0)))),
]:
    case("VAE.decode", _kind, _word, _what, _call)

for _kind, _word, _what, _call in [
    ("int range", "n", "n = -1", lambda tmp: M.sample(-1)),
    ("int range", "n", "n = np.int64(0)", lambda tmp: M.sample(np.int64(0))),
    ("type", "n", "n = None", lambda tmp: M.sample(None)),
    ("type", "n", "n = True", lambda tmp: M.sample(True)),
    ("type", "rng", "rng = RandomState(0)", lambda tmp: M.sample(2, rng=np.random.RandomState(0))),
]:
    case("VAE.sample", _kind, _word, _what, _call)

for _kind, _word, _what, _call in [
    ("shape", "x", "x 1-D", lambda tmp: M.reconstruct(np.zeros(X_DIM))),
    ("range", "x", "x = 1e39 for a float32 model", lambda tmp: M32.reconstruct(HUGE)),
    ("nan/inf", "x", "x with NaN", lambda tmp: M.reconstruct(nan_at(X))),
    ("range", "x", "x = -0.1 for a Bernoulli model", lambda tmp: M.reconstruct(X - 0.6)),
]:
    case("VAE.reconstruct", _kind, _word, _what, _call)


# ------------------------------------------------------------------------------ fit
def fit_call(model=None, X_=None, **kw):
    def call(tmp):
        m = VAE(X_DIM, (3,), Z_DIM, "tanh", "bernoulli", seed=1) if model is None else model
        args = dict(optimizer=SGD(0.1), rng=np.random.default_rng(0))
        args.update(kw)
        return fit(m, X if X_ is None else X_, **args)
    return call


for _kind, _word, _what, _call in [
    ("int range", "epochs", "epochs = -1", fit_call(epochs=-1)),
    ("type", "epochs", "epochs = 1.5", fit_call(epochs=1.5)),
    ("type", "epochs", "epochs = None", fit_call(epochs=None)),
    ("int range", "batch_size", "batch_size = -1", fit_call(batch_size=-1)),
    ("type", "batch_size", "batch_size = '8'", fit_call(batch_size="8")),
    ("int range", "k", "k = -1", fit_call(k=-1)),
    ("type", "k", "k = 1.5", fit_call(k=1.5)),
    ("unknown name", "schedule", "schedule = 'Joint'", fit_call(schedule="Joint")),
    ("type", "schedule", "schedule = None", fit_call(schedule=None)),
    ("type", "binarize", "binarize = 'yes'", fit_call(binarize="yes")),
    ("type", "optimizer", "optimizer = SGD (the class)", fit_call(optimizer=SGD)),
    ("shape", "optimizer", "three optimizers for schedule='alternating'",
     fit_call(optimizer=(SGD(0.1),) * 3, schedule="alternating")),
    ("type", "rng", "rng = RandomState(0)", fit_call(rng=np.random.RandomState(0))),
    ("type", "callback", "callback = 1", fit_call(callback=1)),
    ("type", "model", "model = None", lambda tmp: fit(None, X, SGD(0.1))),
    ("dtype", "X", "X int32", fit_call(X_=np.zeros((B, X_DIM), np.int32))),
    ("dtype", "X", "X bool", fit_call(X_=np.zeros((B, X_DIM), bool))),
    ("range", "X", "X = 1e39 for a float32 model", fit_call(model=M32, X_=HUGE)),
    ("range", "X", "X = 1.5 for a Bernoulli model", fit_call(X_=X + 1)),
    ("nan/inf", "X", "X with inf", fit_call(X_=nan_at(X, np.inf))),
    ("shape", "X", "X 1-D", fit_call(X_=np.zeros(X_DIM))),
]:
    case("fit", _kind, _word, _what, _call)

# ------------------------------------------------------------------------------ optimizers
for _kind, _word, _what, _call in [
    ("nan/inf", "lr", "lr = inf", lambda tmp: SGD(np.inf)),
    ("type", "lr", "lr = True", lambda tmp: SGD(True)),
    ("type", "lr", "lr = [0.1]", lambda tmp: SGD([0.1])),
]:
    case("SGD(...)", _kind, _word, _what, _call)
for _kind, _word, _what, _call in [
    ("range", "beta", "beta = 1.0", lambda tmp: Momentum(0.1, beta=1.0)),
    ("range", "beta", "beta = -0.1", lambda tmp: Momentum(0.1, beta=-0.1)),
    ("nan/inf", "beta", "beta = NaN", lambda tmp: Momentum(0.1, beta=np.nan)),
    ("type", "beta", "beta = '0.9'", lambda tmp: Momentum(0.1, beta="0.9")),
    ("range", "lr", "lr = 0", lambda tmp: Momentum(0)),
]:
    case("Momentum(...)", _kind, _word, _what, _call)
for _kind, _word, _what, _call in [
    ("range", "eps", "eps = 0", lambda tmp: Adagrad(0.1, eps=0)),
    ("range", "eps", "eps = -1e-8", lambda tmp: Adagrad(0.1, eps=-1e-8)),
    ("nan/inf", "eps", "eps = inf", lambda tmp: Adagrad(0.1, eps=np.inf)),
    ("nan/inf", "lr", "lr = NaN", lambda tmp: Adagrad(np.nan)),
]:
    case("Adagrad(...)", _kind, _word, _what, _call)
for _kind, _word, _what, _call in [
    ("shape", "betas", "betas = (0.9,)", lambda tmp: Adam(betas=(0.9,))),
    ("shape", "betas", "betas = (0.9, 0.999, 0.9)", lambda tmp: Adam(betas=(0.9, 0.999, 0.9))),
    ("type", "betas", "betas = 0.9", lambda tmp: Adam(betas=0.9)),
    ("range", "betas[1]", "betas = (0.9, 1.0)", lambda tmp: Adam(betas=(0.9, 1.0))),
    ("nan/inf", "betas[0]", "betas = (NaN, 0.999)", lambda tmp: Adam(betas=(np.nan, 0.999))),
    ("range", "eps", "eps = 0", lambda tmp: Adam(eps=0)),
    ("nan/inf", "eps", "eps = inf", lambda tmp: Adam(eps=np.inf)),
    ("range", "lr", "lr = -1e-3", lambda tmp: Adam(-1e-3)),
]:
    case("Adam(...)", _kind, _word, _what, _call)


def _readonly(n):
    a = np.zeros(n)
    a.flags.writeable = False
    return a


def stepped(cls):
    opt = cls(0.1)
    opt.step(np.zeros(5), np.ones(5))
    return opt


for _name, _cls in [("SGD", SGD), ("Momentum", Momentum), ("Adagrad", Adagrad), ("Adam", Adam)]:
    _entry = f"{_name}.step"
    for _kind, _word, _what, _call in [
        ("type", "flat", "flat a list", lambda tmp, c=_cls: c(0.1).step([0.0, 1.0], np.ones(2))),
        ("dtype", "flat", "flat int64", lambda tmp, c=_cls: c(0.1).step(np.zeros(3, int), np.ones(3))),
        ("dtype", "flat", "flat complex",
         lambda tmp, c=_cls: c(0.1).step(np.zeros(3, complex), np.ones(3, complex))),
        ("shape", "flat", "flat 2-D", lambda tmp, c=_cls: c(0.1).step(np.zeros((2, 2)), np.ones((2, 2)))),
        ("shape", "grad_flat", "grad_flat of another length",
         lambda tmp, c=_cls: c(0.1).step(np.zeros(3), np.ones(4))),
        ("dtype", "grad_flat", "grad_flat float32 for a float64 flat",
         lambda tmp, c=_cls: c(0.1).step(np.zeros(3), np.ones(3, np.float32))),
        ("range", "flat", "flat read-only",
         lambda tmp, c=_cls: c(0.1).step(_readonly(3), np.ones(3))),
        ("empty", "flat", "flat of size 0", lambda tmp, c=_cls: c(0.1).step(np.zeros(0), np.zeros(0))),
        ("shape", "flat", "a vector of another size after the first step",
         lambda tmp, c=_cls: stepped(c).step(np.zeros(6), np.ones(6))),
        ("dtype", "flat", "a float32 vector after float64 steps",
         lambda tmp, c=_cls: stepped(c).step(np.zeros(5, np.float32), np.ones(5, np.float32))),
    ]:
        case(_entry, _kind, _word, _what, _call)
    for _kind, _word, _what, _call in [
        ("type", "state", "state = None", lambda tmp, c=_cls: c(0.1).load_state_dict(None)),
        ("range", "lr", "state with lr = -1",
         lambda tmp, c=_cls: c(0.1).load_state_dict({**c(0.1).state_dict(), "lr": -1.0})),
        ("int range", "t", "state with t = -1",
         lambda tmp, c=_cls: c(0.1).load_state_dict({**c(0.1).state_dict(), "t": -1})),
        ("type", "lr", "state with lr = 'fast'",
         lambda tmp, c=_cls: c(0.1).load_state_dict({**c(0.1).state_dict(), "lr": "fast"})),
    ]:
        case(f"{_name}.load_state_dict", _kind, _word, _what, _call)


# ------------------------------------------------------------------------------ gradcheck
P = {"a": np.array([0.5, -1.0]), "b": np.array([[2.0]])}
G = {"a": 2 * P["a"], "b": 2 * P["b"]}


def square(p):
    return float(sum(np.sum(v * v) for v in p.values()))


def cg(**kw):
    args = dict(f=square, params={k: v.copy() for k, v in P.items()}, grads=G)
    args.update(kw)
    return lambda tmp: check_gradients(**args)


for _kind, _word, _what, _call in [
    ("type", "f", "f = 'square'", cg(f="square")),
    ("shape", "f", "f returns an array", cg(f=lambda p: p["a"])),
    ("type", "f", "f returns a string", cg(f=lambda p: "1.0")),
    ("dtype", "f", "f returns a complex number", cg(f=lambda p: 1j)),
    ("dtype", "params", "params int64 (a step would round away)",
     cg(params={"a": np.array([1, 2]), "b": np.array([[2]])})),
    ("type", "params", "params holds a list", cg(params={"a": [0.5, -1.0], "b": P["b"].copy()})),
    ("nan/inf", "params", "params with NaN", cg(params={"a": nan_at(P["a"]), "b": P["b"].copy()})),
    ("nan/inf", "grads", "grads with inf", cg(grads={"a": nan_at(G["a"], np.inf), "b": G["b"]})),
    ("shape", "grads", "grads['b'] of another shape", cg(grads={"a": G["a"], "b": G["b"][0]})),
    ("unknown name", "grads", "grads with other keys", cg(grads={"a": G["a"], "c": G["b"]})),
    ("type", "params", "params = 3.0", cg(params=3.0)),
    ("unknown name", "method", "method = 'forward'", cg(method="forward")),
    ("nan/inf", "tol", "tol = NaN", cg(tol=np.nan)),
    ("range", "h_rel", "h_rel = 0", cg(h_rel=0)),
    ("nan/inf", "h_rel", "h_rel = inf", cg(h_rel=np.inf)),
    ("int range", "directions", "directions = -1", cg(method="directional", directions=-1)),
    ("int range", "coords", "coords = -2", cg(coords=-2)),
    ("type", "coords", "coords = 1.5", cg(coords=1.5)),
    ("type", "rng", "rng = RandomState(0)", cg(rng=np.random.RandomState(0))),
]:
    case("gradcheck.check_gradients", _kind, _word, _what, _call)

for _kind, _word, _what, _call in [
    ("type", "model", "model = 'vae'", lambda tmp: check_model("vae", X)),
    ("nan/inf", "x", "x with NaN", lambda tmp: check_model(M, nan_at(X))),
    ("shape", "x", "x of width 5", lambda tmp: check_model(M, np.zeros((B, 5)))),
    ("type", "x", "x = None", lambda tmp: check_model(M, None)),
    ("int range", "k", "k = -1", lambda tmp: check_model(M, X, k=-1)),
    ("type", "k", "k = 1.5 (was truncated to 1)", lambda tmp: check_model(M, X, k=1.5)),
    ("type", "k", "k = 'a'", lambda tmp: check_model(M, X, k="a")),
    ("unknown name", "method", "method = 'complex' (cannot run through a real model)",
     lambda tmp: check_model(M, X, method="complex")),
    ("shape", "eps", "eps of shape (3, 3)", lambda tmp: check_model(M, X, eps=np.zeros((3, 3)))),
    ("int range", "coords", "coords = 0", lambda tmp: check_model(M, X, method="coordinates", coords=0)),
    ("range", "tol", "tol = 0", lambda tmp: check_model(M, X, tol=0)),
    ("type", "rng", "rng = 3", lambda tmp: check_model(M, X, rng=3)),
]:
    case("gradcheck.check_model", _kind, _word, _what, _call)


# ------------------------------------------------------------------------------ estimators
def sf(**kw):
    args = dict(f=np.square, mu=0.5, sigma=1.0, n=10, rng=np.random.default_rng(0))
    args.update(kw)
    return lambda tmp: estimators.score_function_gradient(**args)


def rp(**kw):
    args = dict(f=np.square, df=lambda z: 2 * z, mu=0.5, sigma=1.0, n=10,
                rng=np.random.default_rng(0))
    args.update(kw)
    return lambda tmp: estimators.reparameterization_gradient(**args)


for _kind, _word, _what, _call in [
    ("type", "f", "f = None", sf(f=None)),
    ("dtype", "f", "f returns strings", sf(f=lambda z: np.full(z.shape, "a"))),
    ("shape", "f", "f returns one number", sf(f=lambda z: 1.0)),
    ("nan/inf", "f", "f returns NaN (log of a negative sample)", sf(f=np.log)),
    ("type", "mu", "mu = 'a'", sf(mu="a")),
    ("dtype", "mu", "mu = 1j", sf(mu=1j)),
    ("nan/inf", "mu", "mu = NaN", sf(mu=np.nan)),
    ("nan/inf", "mu", "mu = -inf", sf(mu=-np.inf)),
    ("shape", "mu", "mu = [0.5]", sf(mu=[0.5])),
    ("range", "sigma", "sigma = 0", sf(sigma=0)),
    ("range", "sigma", "sigma = -1", sf(sigma=-1.0)),
    ("nan/inf", "sigma", "sigma = NaN", sf(sigma=np.nan)),
    ("int range", "n", "n = 1 (no variance)", sf(n=1)),
    ("type", "n", "n = 2.5", sf(n=2.5)),
    ("type", "rng", "rng = None", sf(rng=None)),
    ("type", "rng", "rng = 42", sf(rng=42)),
]:
    case("estimators.score_function_gradient", _kind, _word, _what, _call)
for _kind, _word, _what, _call in [
    ("type", "df", "df = None", rp(df=None)),
    ("shape", "df", "df returns a (n, 2) array", rp(df=lambda z: np.stack([z, z], 1))),
    ("nan/inf", "df", "df returns inf", rp(df=lambda z: np.full(z.shape, np.inf))),
    ("type", "mu", "mu = None", rp(mu=None)),
    ("nan/inf", "sigma", "sigma = inf", rp(sigma=np.inf)),
    ("int range", "n", "n = -3", rp(n=-3)),
    ("type", "rng", "rng = RandomState(0)", rp(rng=np.random.RandomState(0))),
]:
    case("estimators.reparameterization_gradient", _kind, _word, _what, _call)

# ------------------------------------------------------------------------------ derivations
for _kind, _word, _what, _call in [
    ("unknown name", "claim", "names = 'nope'", lambda tmp: run_claims("nope")),
    ("unknown name", "kl_gradient.library", "names = ['kl_gradient.typo'] (lists the records)",
     lambda tmp: run_claims(["kl_gradient.typo"])),
    ("type", "names", "names = 5", lambda tmp: run_claims(5)),
    ("empty", "names", "names = []", lambda tmp: run_claims([])),
    ("type", "claim", "names = [None]", lambda tmp: run_claims([None])),
    ("int range", "seed", "seed = -1", lambda tmp: run_claims("kl_gradient", seed=-1)),
    ("type", "seed", "seed = 1.5", lambda tmp: run_claims("kl_gradient", seed=1.5)),
    ("type", "seed", "seed = '0'", lambda tmp: run_claims("kl_gradient", seed="0")),
    ("type", "seed", "seed = True", lambda tmp: run_claims("kl_gradient", seed=True)),
]:
    case("derivations.run_claims", _kind, _word, _what, _call)
for _kind, _word, _what, _call in [
    ("unknown name", "claim", "['nope']", lambda tmp: check_claim_names(["nope"])),
    ("type", "names", "5", lambda tmp: check_claim_names(5)),
    ("empty", "names", "[]", lambda tmp: check_claim_names([])),
]:
    case("derivations.check_claim_names", _kind, _word, _what, _call)

# ------------------------------------------------------------------------------ explain
for _kind, _word, _what, _call in [
    ("int range", "seed", "seed = -1", lambda tmp: explain(seed=-1)),
    ("type", "seed", "seed = 1.5", lambda tmp: explain(seed=1.5)),
    ("range", "lr", "lr = 0", lambda tmp: explain(lr=0)),
    ("range", "lr", "lr = -0.1", lambda tmp: explain(lr=-0.1)),
    ("nan/inf", "lr", "lr = NaN", lambda tmp: explain(lr=np.nan)),
    ("type", "lr", "lr = '0.1'", lambda tmp: explain(lr="0.1")),
]:
    case("explain.explain", _kind, _word, _what, _call)
for _kind, _word, _what, _call in [
    ("int range", "seed", "seed = -1", lambda tmp: build_model(seed=-1)),
    ("type", "seed", "seed = None", lambda tmp: build_model(seed=None)),
]:
    case("explain.build_model", _kind, _word, _what, _call)

# ------------------------------------------------------------------------------ data
for _kind, _word, _what, _call, _exp in [
    ("unknown name", "name", "name = 'cifar'", lambda tmp: vdata.load_dataset("cifar"), ValueError),
    ("type", "name", "name = None", lambda tmp: vdata.load_dataset(None), ValueError),
    ("empty", "name", "name = ''", lambda tmp: vdata.load_dataset(""), ValueError),
    ("type", "data_dir", "data_dir = 5 ('mnist')",
     lambda tmp: vdata.load_dataset("mnist", 5, download=False), ValueError),
    ("file", "MNIST", "'mnist', download=False, no files",
     lambda tmp: vdata.load_dataset("mnist", tmp, download=False), FileNotFoundError),
    ("file", "binarized", "'binarized-mnist', no files",
     lambda tmp: vdata.load_dataset("binarized-mnist", tmp), FileNotFoundError),
    ("file", "Frey", "'frey', no files", lambda tmp: vdata.load_dataset("frey", tmp),
     FileNotFoundError),
    ("empty", "mirrors", "'mnist', mirrors = []",
     lambda tmp: vdata.load_dataset("mnist", tmp, mirrors=[]), ValueError),
    ("int range", "seed", "'sprites', seed = -1", lambda tmp: vdata.load_dataset("sprites", seed=-1),
     ValueError),
    ("int range", "seed", "'frey', seed = -1", lambda tmp: vdata.load_dataset("frey", tmp, seed=-1),
     ValueError),
]:
    case("data.load_dataset", _kind, _word, _what, _call, _exp)

for _kind, _word, _what, _call in [
    ("int range", "n_train", "n_train = 0", lambda tmp: vdata.make_sprites(0, 10)),
    ("int range", "n_train", "n_train = -5", lambda tmp: vdata.make_sprites(-5, 10)),
    ("type", "n_train", "n_train = 1.5", lambda tmp: vdata.make_sprites(1.5, 10)),
    ("int range", "n_test", "n_test = 0", lambda tmp: vdata.make_sprites(10, 0)),
    ("type", "n_test", "n_test = None", lambda tmp: vdata.make_sprites(10, None)),
    ("int range", "seed", "seed = -1", lambda tmp: vdata.make_sprites(10, 10, seed=-1)),
    ("type", "seed", "seed = 'a'", lambda tmp: vdata.make_sprites(10, 10, seed="a")),
    ("type", "seed", "seed = 1.5", lambda tmp: vdata.make_sprites(10, 10, seed=1.5)),
]:
    case("data.make_sprites", _kind, _word, _what, _call)

IDX_HEADER = bytes([0, 0, 0x08, 1]) + (3).to_bytes(4, "big")
for _kind, _word, _what, _call, _exp in [
    ("file", "missing.idx", "a missing file", lambda tmp: vdata.read_idx(Path(tmp) / "missing.idx"),
     FileNotFoundError),
    ("type", "path", "path = None", lambda tmp: vdata.read_idx(None), ValueError),
    ("file", "path", "a directory", lambda tmp: vdata.read_idx(tmp), ValueError),
    ("empty", "empty.idx", "an empty file", lambda tmp: vdata.read_idx(write(tmp, "empty.idx", b"")),
     ValueError),
    ("file", "magic.idx", "a bad magic number",
     lambda tmp: vdata.read_idx(write(tmp, "magic.idx", b"\x00\x01\x08\x01" + bytes(8))), ValueError),
    ("shape", "short.idx", "a payload shorter than the header's shape",
     lambda tmp: vdata.read_idx(write(tmp, "short.idx", IDX_HEADER + b"\x01\x02")), ValueError),
    ("shape", "long.idx", "a payload longer than the header's shape",
     lambda tmp: vdata.read_idx(write(tmp, "long.idx", IDX_HEADER + bytes(5))), ValueError),
    ("file", "bad.idx.gz", "a truncated gzip stream",
     lambda tmp: vdata.read_idx(write(tmp, "bad.idx.gz", gzip.compress(IDX_HEADER + bytes(3))[:-6])),
     ValueError),
]:
    case("data.read_idx", _kind, _word, _what, _call, _exp)

for _kind, _word, _what, _call, _exp in [
    ("type", "data_dir", "data_dir = 5", lambda tmp: vdata.load_mnist(5, download=False), ValueError),
    ("file", "MNIST", "download=False and no files",
     lambda tmp: vdata.load_mnist(tmp, download=False), FileNotFoundError),
    ("empty", "mirrors", "mirrors = []", lambda tmp: vdata.load_mnist(tmp, mirrors=[]), ValueError),
    ("type", "mirrors", "mirrors = 5", lambda tmp: vdata.load_mnist(tmp, mirrors=5), ValueError),
    ("range", "mirrors", "mirrors = ['not a url']",
     lambda tmp: vdata.load_mnist(tmp, mirrors=["not a url"]), ValueError),
    ("type", "mirrors", "mirrors = [None]", lambda tmp: vdata.load_mnist(tmp, mirrors=[None]),
     ValueError),
]:
    case("data.load_mnist", _kind, _word, _what, _call, _exp)

for _kind, _word, _what, _call, _exp in [
    ("type", "data_dir", "data_dir = 5", lambda tmp: vdata.load_binarized_mnist(5), ValueError),
    ("file", "binarized", "no files", lambda tmp: vdata.load_binarized_mnist(tmp),
     FileNotFoundError),
    ("file", "binarized_mnist.npz", "a corrupt .npz",
     lambda tmp: vdata.load_binarized_mnist(write(tmp, "bm/binarized_mnist.npz", b"PK\x03\x04junk")
                                            .parent), ValueError),
    ("file", "binarized_mnist_train.amat", "three malformed .amat files",
     lambda tmp: vdata.load_binarized_mnist(
         [write(tmp, f"am/binarized_mnist_{s}.amat", b"0 1\n") for s in ("train", "valid", "test")]
         [0].parent, verify=False), ValueError),
]:
    case("data.load_binarized_mnist", _kind, _word, _what, _call, _exp)

for _kind, _word, _what, _call, _exp in [
    ("range", "test_fraction", "test_fraction = 0", lambda tmp: vdata.load_frey(tmp, 0), ValueError),
    ("range", "test_fraction", "test_fraction = 1", lambda tmp: vdata.load_frey(tmp, 1), ValueError),
    ("nan/inf", "test_fraction", "test_fraction = NaN", lambda tmp: vdata.load_frey(tmp, np.nan),
     ValueError),
    ("type", "test_fraction", "test_fraction = '0.1'", lambda tmp: vdata.load_frey(tmp, "0.1"),
     ValueError),
    ("int range", "seed", "seed = -1", lambda tmp: vdata.load_frey(tmp, seed=-1), ValueError),
    ("type", "data_dir", "data_dir = 5", lambda tmp: vdata.load_frey(5), ValueError),
    ("file", "Frey", "no files", lambda tmp: vdata.load_frey(tmp), FileNotFoundError),
    ("file", "frey_rawface.npy", "a .npy of the wrong shape",
     lambda tmp: vdata.load_frey(_npy(tmp, np.zeros((3, 28, 28), np.uint8))), ValueError),
    ("dtype", "frey_rawface.npy", "a .npy of float images",
     lambda tmp: vdata.load_frey(_npy(tmp, np.zeros((3, 28, 20)))), ValueError),
]:
    case("data.load_frey", _kind, _word, _what, _call, _exp)


def _npy(tmp, array):
    d = Path(tmp) / "frey"
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / "frey_rawface.npy", array)
    return d


for _kind, _word, _what, _call, _exp in [
    ("file", "nope.npy", "a missing file", lambda tmp: vdata.read_frey(Path(tmp) / "nope.npy"),
     FileNotFoundError),
    ("type", "path", "path = None", lambda tmp: vdata.read_frey(None), ValueError),
    ("file", "faces.txt", "a .txt file", lambda tmp: vdata.read_frey(write(tmp, "faces.txt", b"1")),
     ValueError),
    ("file", "frey_rawface.mat", "a corrupt .mat",
     lambda tmp: vdata.read_frey(write(tmp, "frey_rawface.mat", b"MATLAB junk")), ValueError),
]:
    case("data.read_frey", _kind, _word, _what, _call, _exp)


def dl(**kw):
    def call(tmp):
        args = dict(url_list=[CLOSED_PORT + "f"], dest=Path(tmp) / "out" / "f", sha256=OK_SHA,
                    progress=False)
        args.update(kw)
        return vdata.download_file(**args)
    return call


for _kind, _word, _what, _call in [
    ("empty", "url_list", "url_list = []", dl(url_list=[])),
    ("type", "url_list", "url_list = None", dl(url_list=None)),
    ("type", "url_list", "url_list = [5]", dl(url_list=[5])),
    ("range", "sha256", "sha256 = 'abc'", dl(sha256="abc")),
    ("range", "sha256", "sha256 of 64 non-hex characters", dl(sha256="z" * 64)),
    ("type", "sha256", "sha256 = None", dl(sha256=None)),
    ("type", "dest", "dest = None", lambda tmp: dl(dest=None)(tmp)),
    ("range", "timeout", "timeout = 0", dl(timeout=0)),
    ("range", "timeout", "timeout = -1", dl(timeout=-1)),
    ("nan/inf", "timeout", "timeout = NaN", dl(timeout=np.nan)),
    ("nan/inf", "timeout", "timeout = inf", dl(timeout=np.inf)),
]:
    case("data.download_file", _kind, _word, _what, _call)

for _kind, _word, _what, _call in [
    ("dtype", "x_train", "x_train float64",
     lambda tmp: vdata.Dataset("d", np.zeros((2, 4)), np.zeros((1, 4), np.uint8), None, None, (2, 2))),
    ("shape", "x_test", "x_test with 5 columns for image_shape (2, 2)",
     lambda tmp: vdata.Dataset("d", np.zeros((2, 4), np.uint8), np.zeros((1, 5), np.uint8), None,
                               None, (2, 2))),
    ("int range", "image_shape", "image_shape = (0, 4)",
     lambda tmp: vdata.Dataset("d", np.zeros((2, 0), np.uint8), np.zeros((1, 0), np.uint8), None,
                               None, (0, 4))),
    ("shape", "y_train", "y_train of the wrong length",
     lambda tmp: vdata.Dataset("d", np.zeros((2, 4), np.uint8), np.zeros((1, 4), np.uint8),
                               np.zeros(3, int), None, (2, 2))),
]:
    case("data.Dataset(...)", _kind, _word, _what, _call)

for _kind, _word, _what, _call in [
    ("dtype", "write_idx", "a complex array", lambda tmp: vdata.write_idx(Path(tmp) / "c.idx",
                                                                        np.zeros(2, complex))),
    ("shape", "write_idx", "a 0-d array", lambda tmp: vdata.write_idx(Path(tmp) / "c.idx",
                                                                    np.array(3, np.uint8))),
]:
    case("data.write_idx", _kind, _word, _what, _call)
for _kind, _word, _what, _call, _exp in [
    ("file", "x.amat", "a missing file", lambda tmp: vdata.read_amat(Path(tmp) / "x.amat"),
     FileNotFoundError),
    ("file", "bad.amat", "a line of the wrong length",
     lambda tmp: vdata.read_amat(write(tmp, "bad.amat", b"0 1 0\n")), ValueError),
    ("range", "bits", "write_amat of values 0..2",
     lambda tmp: vdata.write_amat(Path(tmp) / "o.amat", np.full((1, 784), 2)), ValueError),
]:
    case("data.read_amat / write_amat", _kind, _word, _what, _call, _exp)


# ------------------------------------------------------------------------------ ops
# Only where a wrong shape (or a scalar out of range) would otherwise broadcast into a silently
# wrong number. Elementwise one-input ops (relu_forward, ..., sigmoid, softplus) have no such
# argument: NaN in gives NaN out, which is the mathematics.
A23, A13, A21 = np.ones((2, 3)), np.ones((1, 3)), np.ones((2, 1))
for _entry, _word, _what, _call in [
    ("ops.dense_forward", "b (n_out,)", "b of shape (1,) for W (3, 2)",
     lambda tmp: ops.dense_forward(A23, np.ones((3, 2)), np.ones(1))),
    ("ops.dense_backward", "dy", "dy (2, 1) for y (2, 2)",
     lambda tmp: ops.dense_backward(A21, ops.dense_forward(A23, np.ones((3, 2)), np.ones(2))[1])),
    ("ops.relu_backward", "dy", "dy (2, 1) for x (2, 3)", lambda tmp: ops.relu_backward(A21, A23)),
    ("ops.leaky_relu_backward", "dy", "dy (1, 3) for x (2, 3)",
     lambda tmp: ops.leaky_relu_backward(A13, A23)),
    ("ops.tanh_backward", "dy", "dy (2, 1) for y (2, 3)", lambda tmp: ops.tanh_backward(A21, A23)),
    ("ops.sigmoid_backward", "dy", "dy (1, 3) for y (2, 3)",
     lambda tmp: ops.sigmoid_backward(A13, A23)),
    ("ops.softplus_backward", "dy", "dy () for x (2, 3)",
     lambda tmp: ops.softplus_backward(np.float64(1.0), A23)),
    ("ops.sigma_logvar_backward", "dsigma", "dsigma (1, 3) for sigma (2, 3)",
     lambda tmp: ops.sigma_logvar_backward(A13, A23)),
    ("ops.sigma_softplus_backward", "dsigma", "dsigma (2, 1) for s (2, 3)",
     lambda tmp: ops.sigma_softplus_backward(A21, A23)),
    ("ops.reparameterize_forward", "sigma", "sigma (1, 3) for mu (2, 3)",
     lambda tmp: ops.reparameterize_forward(A23, A13, A23)),
    ("ops.reparameterize_backward", "dz", "dz (1, 3) for eps (2, 3)",
     lambda tmp: ops.reparameterize_backward(A13, ops.reparameterize_forward(A23, A23, A23)[1])),
    ("ops.kl_forward", "sigma", "sigma (1, 3) for mu (2, 3)", lambda tmp: ops.kl_forward(A23, A13)),
    ("ops.kl_backward", "dkl", "dkl (1,) for B = 2",
     lambda tmp: ops.kl_backward(np.ones(1), ops.kl_forward(A23, A23)[1])),
    ("ops.bernoulli_nll_forward", "x", "x (2, 1) for logits (2, 3)",
     lambda tmp: ops.bernoulli_nll_forward(A23, A21 * 0.5)),
    ("ops.bernoulli_nll_forward", "x", "x (3,) for logits (2, 3)",
     lambda tmp: ops.bernoulli_nll_forward(A23, np.full(3, 0.5))),
    ("ops.bernoulli_nll_backward", "dnll", "dnll (1,) for B = 2",
     lambda tmp: ops.bernoulli_nll_backward(np.ones(1), ops.bernoulli_nll_forward(A23, A23)[1])),
    ("ops.gaussian_nll_forward", "x", "x (1, 3) for mean (2, 3)",
     lambda tmp: ops.gaussian_nll_forward(A23, A13)),
    ("ops.gaussian_nll_backward", "dnll", "dnll (2, 1) for B = 2",
     lambda tmp: ops.gaussian_nll_backward(A21, ops.gaussian_nll_forward(A23, A23)[1])),
    ("ops.gaussian_learned_nll_forward", "r", "r (2, 1) for mean (2, 3)",
     lambda tmp: ops.gaussian_learned_nll_forward(A23, A21, A23)),
    ("ops.gaussian_learned_nll_forward", "x", "x (1, 3) for mean (2, 3)",
     lambda tmp: ops.gaussian_learned_nll_forward(A23, A23, A13)),
    ("ops.gaussian_learned_nll_backward", "dnll", "dnll (1,) for B = 2",
     lambda tmp: ops.gaussian_learned_nll_backward(
         np.ones(1), ops.gaussian_learned_nll_forward(A23, A23, A23)[1])),
]:
    case(_entry, "shape", _word, _what, _call)
for _entry, _kind, _word, _what, _call in [
    ("ops.sigma_softplus_forward", "range", "sigma_min", "sigma_min = -1 (sigma could be <= 0)",
     lambda tmp: ops.sigma_softplus_forward(A23, -1.0)),
    ("ops.sigma_softplus_forward", "shape", "sigma_min", "sigma_min an array (3,)",
     lambda tmp: ops.sigma_softplus_forward(A23, np.ones(3))),
    ("ops.gaussian_nll_forward", "range", "sigma", "sigma = 0",
     lambda tmp: ops.gaussian_nll_forward(A23, A23, 0.0)),
    ("ops.gaussian_nll_forward", "range", "sigma", "sigma = -1 (ln of a negative)",
     lambda tmp: ops.gaussian_nll_forward(A23, A23, -1.0)),
    ("ops.gaussian_nll_forward", "nan/inf", "sigma", "sigma = NaN",
     lambda tmp: ops.gaussian_nll_forward(A23, A23, np.nan)),
    ("ops.gaussian_nll_forward", "shape", "sigma", "sigma an array (3,)",
     lambda tmp: ops.gaussian_nll_forward(A23, A23, np.ones(3))),
    ("ops.gaussian_learned_nll_forward", "range", "sigma_min", "sigma_min = -0.1",
     lambda tmp: ops.gaussian_learned_nll_forward(A23, A23, A23, -0.1)),
    ("ops.gaussian_learned_nll_forward", "nan/inf", "sigma_min", "sigma_min = NaN",
     lambda tmp: ops.gaussian_learned_nll_forward(A23, A23, A23, np.nan)),
]:
    case(_entry, _kind, _word, _what, _call)


# ------------------------------------------------------------------------------ command line
class CliCase(NamedTuple):
    command: str
    kind: str
    argv: tuple         # "{tmp}" is replaced by a fresh directory
    word: str           # must appear in the one stderr line


CLI_CASES: list[CliCase] = []


def cli(command, kind, word, *argv):
    CLI_CASES.append(CliCase(command, kind, (command,) + argv, word))


SMALL = ("--x-dim", "3", "--hidden", "2", "--z-dim", "1")
for _kind, _word, _argv in [
    ("type", "--x-dim", ("--x-dim", "ten")),
    ("int range", "x_dim", ("--x-dim", "-1")),
    ("int range", "x_dim", ("--x-dim", "0")),
    ("int range", "hidden", ("--hidden", "-3")),
    ("int range", "z_dim", ("--z-dim", "-1")),
    ("unknown name", "--activation", ("--activation", "swish")),
    ("unknown name", "--likelihood", ("--likelihood", "poisson")),
    ("unknown name", "--sigma-param", ("--sigma-param", "exp")),
    ("int range", "batch", SMALL + ("--batch", "0")),
    ("int range", "batch", SMALL + ("--batch", "-2")),
    ("int range", "k", SMALL + ("--k", "0")),
    ("type", "--k", ("--k", "two")),
    ("int range", "coords", SMALL + ("--coords", "0")),
    ("int range", "directions", SMALL + ("--directions", "0")),
    ("range", "tol", SMALL + ("--tol", "-1")),
    ("nan/inf", "tol", SMALL + ("--tol", "nan")),
    ("type", "--tol", ("--tol", "abc")),
    ("int range", "seed", SMALL + ("--seed", "-1")),
    ("int range", "memory", ("--x-dim", "100000000", "--hidden", "100000000")),
    ("int range", "too big", ("--x-dim", "1000000000", "--hidden", "1000000000")),
    ("unknown name", "unrecognized", ("--bogus",)),
]:
    cli("gradcheck", _kind, _word, *_argv)
for _kind, _word, _argv in [
    ("unknown name", "nope", ("--claim", "nope")),
    ("unknown name", "kl_gradient.library", ("--claim", "kl_gradient.typo")),
    ("int range", "seed", ("--claim", "kl_gradient", "--seed", "-1")),
    ("type", "--seed", ("--seed", "x")),
    ("file", "--json", ("--claim", "kl_gradient", "--json", "{tmp}/no/such/dir/out.json")),
    ("file", "--markdown", ("--claim", "kl_gradient", "--markdown", "{tmp}")),
]:
    cli("verify", _kind, _word, *_argv)
for _kind, _word, _argv in [
    ("int range", "seed", ("--seed", "-1")),
    ("type", "--seed", ("--seed", "1.5")),
    ("unknown name", "unrecognized", ("--bogus",)),
]:
    cli("explain", _kind, _word, *_argv)
for _kind, _word, _argv in [
    ("int range", "--epochs", ("--epochs", "0")),
    ("int range", "--epochs", ("--epochs", "-3")),
    ("type", "--batch-size", ("--batch-size", "x")),
    ("int range", "--batch-size", ("--batch-size", "0")),
    ("unknown name", "--dataset", ("--dataset", "cifar")),
    ("unknown name", "--activation", ("--activation", "swish")),
    ("unknown name", "--optimizer", ("--optimizer", "lbfgs")),
    ("unknown name", "--preset", ("--preset", "nope")),
    ("unknown name", "--schedule", ("--schedule", "nope")),
    ("unknown name", "--dtype", ("--dtype", "float16")),
    ("range", "--lr", ("--lr", "-1")),
    ("nan/inf", "--lr", ("--lr", "nan")),
    ("nan/inf", "--lr", ("--lr", "inf")),
    ("int range", "--k", ("--k", "0")),
    ("int range", "--z-dim", ("--z-dim", "0")),
    ("int range", "--hidden", ("--hidden", "0")),
    ("int range", "--limit", ("--limit", "-5")),
    ("int range", "--seed", ("--seed", "-1")),
    ("range", "--init-std", ("--init-std", "-1")),
    ("range", "--optim-eps", ("--optim-eps", "-1")),
    ("file", "Frey", ("--dataset", "frey", "--data-dir", "{tmp}/nowhere", "--out", "{tmp}/run")),
    ("file", "run directory", ("--resume", "{tmp}/no-run")),
    ("type", "--lr", ("--resume", "{tmp}/no-run", "--lr", "0.1")),
]:
    cli("train", _kind, _word, *_argv)
for _kind, _word, _argv in [
    ("file", "run directory", ("{tmp}/no-run",)),
    ("int range", "--iwae-k", ("{tmp}", "--iwae-k", "0")),
    ("int range", "--elbo-k", ("{tmp}", "--elbo-k", "-1")),
    ("range", "--threshold", ("{tmp}", "--threshold", "-1")),
    ("type", "--max-mb", ("{tmp}", "--max-mb", "abc")),
    ("unknown name", "--dtype", ("{tmp}", "--dtype", "float16")),
    ("int range", "--seed", ("{tmp}", "--seed", "-1")),
    ("file", "config.json", ("{tmp}",)),
]:
    cli("evaluate", _kind, _word, *_argv)
for _kind, _word, _argv in [
    ("file", "run directory", ("{tmp}/no-run",)),
    ("int range", "--n", ("{tmp}", "--n", "0")),
    ("type", "--n", ("{tmp}", "--n", "x")),
    ("int range", "--seed", ("{tmp}", "--seed", "-1")),
]:
    cli("sample", _kind, _word, *_argv)
for _kind, _word, _argv in [
    ("file", "run directory", ("{tmp}/no-run",)),
    ("int range", "--n", ("{tmp}", "--n", "-1")),
    ("type", "--seed", ("{tmp}", "--seed", "x")),
]:
    cli("reconstruct", _kind, _word, *_argv)


# ------------------------------------------------------------------------------ the document
def prior_case_counts() -> Counter:
    """Cases of tests/test_bad_input.py, per entry point (they are not repeated in CASES)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import test_bad_input as t
    counts = Counter()
    n_x = len(t.BAD_X) + len(t.BAD_X_BERNOULLI)
    for method in list(t.X_METHODS) + list(t.X_ONLY):
        entry = "fit" if method == "fit" else f"VAE.{method}"
        counts[entry] += n_x
    for method in t.X_METHODS:
        counts[f"VAE.{method}"] += len(t.BAD_K) + len(t.BAD_EPS)
    counts["VAE(...)"] += len(t.BAD_CONSTRUCTOR)
    lr_values = next(m.args[1] for m in t.test_non_positive_or_non_numeric_learning_rate.pytestmark
                     if m.args[0] == "lr")
    for name in ("SGD(...)", "Momentum(...)", "Adagrad(...)", "Adam(...)"):
        counts[name] += len(lr_values)
    counts["VAE.decode"] += sum(words[0] == "z" for _, words in t.BAD_DECODE)
    counts["VAE.sample"] += sum(words[0] != "z" for _, words in t.BAD_DECODE)
    counts["fit"] += len(t.BAD_FIT) + 1                 # + test_fit_rejects_a_non_model
    counts["gradcheck.check_gradients"] += 2            # test_bad_gradcheck_arguments: tol,
    counts["gradcheck.check_model"] += 2                # directions; method, k
    return counts


def markdown() -> str:
    """docs/robustness.md, generated from CASES and CLI_CASES."""
    prior = prior_case_counts()
    entries = list(dict.fromkeys(c.entry for c in CASES))
    lines = [
        "# Robustness: extreme inputs and bad input",
        "",
        "Generated by `python tests/entry_points.py > docs/robustness.md` from the tables in",
        "`tests/entry_points.py`; `tests/test_entry_points.py` walks those tables and checks that",
        "this file is up to date.",
        "",
        "## Extreme inputs (`tests/test_extremes.py`)",
        "",
        "Hypothesis property tests, float32 and float64, assert that the loss and every gradient",
        "are finite wherever the mathematics is finite:",
        "",
        "- ops: `bernoulli_nll` with logits in [-1e4, 1e4] and x exactly 0, exactly 1 or in [0, 1]",
        "  (value checked against an independent stable form); `sigma_logvar` / `sigma_softplus`",
        "  with s in [-50, 50], the KL and its gradient at those sigmas; `gaussian_learned_nll`",
        "  with r in [-1e4, 1e4] and `sigma_min` > 0; sigmoid / softplus / tanh and their",
        "  derivatives at +-1e4; outputs keep the input dtype (float32 stays float32).",
        "- model: the encoder's sigma head forced to s in [-50, 50] (its weights 0, its bias s),",
        "  decoder logits pushed to +-1e4, x exactly 0 and 1, batches of 1 to 2048, k up to 64,",
        "  every likelihood (`gaussian-learned` with `decoder_sigma_min` > 0: without a lower",
        "  bound sigma = e^r underflows to 0 for r < -745, which is the model overflowing, not a",
        "  numerical fault), both sigma parameterizations, every activation, float32 and float64.",
        "- divergence: `fit` with SGD / Adam at lr = 1e30 raises `TrainingDivergedError` naming",
        "  the step and the loss and saying to lower the learning rate, with the parameters of",
        "  before the failing step.",
        "- gradient checker: a ReLU kink within h is skipped (float64) or inconclusive, never",
        "  passed or failed; a float32 model's check is INCONCLUSIVE (its quotient noise, ~|f|/|x|",
        "  at h = 1e-6, cannot resolve 1e-6) instead of the false PASS it gave before, and never a",
        "  false FAIL (a discrepancy fails only if it exceeds sqrt(eps) relative and persists at",
        "  the step eps^(1/3) scale); a gross error beyond the noise still FAILS, and with a step",
        "  that resolves the tolerance a float32 check passes or fails honestly. Float64 verdicts",
        "  are unchanged.",
        "",
        "`python -m pytest tests/test_extremes.py` prints the number of examples run and of",
        "non-finite results (zero): about 650 examples on the default profile, about 10700 with",
        "`VAE_NP_HYPOTHESIS_PROFILE=thorough`.",
        "",
        "## Bad input at every public entry point (`tests/test_entry_points.py`)",
        "",
        "Each case calls one entry point with one bad value; it must raise `ValueError` (or",
        "`FileNotFoundError` for a missing file) whose message names the argument (for a",
        "file's content: the file), never a NumPy `TypeError` / `IndexError` / `AttributeError`.",
        "Cases of `tests/test_bad_input.py` (bad x, k, eps, rng, constructor arguments, learning",
        "rates) are counted in the last column but not repeated.",
        "",
        f"{len(CASES)} cases here + {sum(prior.values())} in `tests/test_bad_input.py` = "
        f"{len(CASES) + sum(prior.values())} library cases; {len(CLI_CASES)} command-line cases.",
        "",
        "| entry point | cases | kinds | bad values tried | + test_bad_input.py |",
        "|---|---:|---|---|---:|",
    ]
    for entry in entries:
        rows = [c for c in CASES if c.entry == entry]
        kinds = ", ".join(sorted({c.kind for c in rows}))
        whats = "; ".join(c.what.replace("|", "\\|") for c in rows)
        lines.append(f"| `{entry}` | {len(rows)} | {kinds} | {whats} | {prior.get(entry, 0)} |")
    lines += [
        "",
        "Expected error: `ValueError` naming the argument and the accepted form, e.g.",
        "`x must have shape (batch, 4), got (3, 5)`, `k must be an integer >= 1, got -2`,",
        "`activation must be one of ['identity', 'leaky_relu', 'relu', 'sigmoid', 'softplus',",
        "'tanh'], got 'RELU'`; `FileNotFoundError` naming the file and the directories searched.",
        "",
        "Kinds of bad value:",
        "",
    ]
    counts = Counter(c.kind for c in CASES)
    lines += [f"- {kind} ({counts.get(kind, 0)}): {text}" for kind, text in KINDS.items()]
    lines += [
        "",
        "## The command line",
        "",
        "`python -m vae_np COMMAND` with a bad option prints exactly one line on stderr,",
        "`vae-np COMMAND: error: ...` (argparse's own errors are shortened to that one line,",
        "without the usage block; `-h` shows it) or `vae-np: error: ...` (the library's",
        "ValueError / OSError / MemoryError), exits with status 2 and never shows a traceback.",
        "",
        "| command | cases | bad options tried |",
        "|---|---:|---|",
    ]
    for command in dict.fromkeys(c.command for c in CLI_CASES):
        rows = [c for c in CLI_CASES if c.command == command]
        tried = "; ".join("`" + " ".join(a.replace("{tmp}", "DIR") for a in c.argv[1:]) + "`"
                          for c in rows)
        lines.append(f"| `{command}` | {len(rows)} | {tried} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
