"""Bad values for the model, ``fit`` and the optimizers: one row per call with one bad argument
(see ``tests/cli/entry_points.py``)."""
from __future__ import annotations

import numpy as np

from table_common import B, EPS, HUGE, M, M32, X, X_DIM, Z_DIM, nan_at, rows
from vae_np import SGD, VAE, Adagrad, Adam, Momentum, fit

CASES: list = []
case = rows(CASES)


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
    (dict(flow="planer", flow_length=2), "unknown name", "flow", "'planer' (a typo)"),
    (dict(flow="", flow_length=2), "empty", "flow", "''"),
    (dict(flow=3, flow_length=2), "type", "flow", "3"),
    (dict(flow_length=None, flow="planar"), "type", "flow_length", "None (with flow='planar')"),
    (dict(flow_length=3), "type", "flow_length", "3 (with flow=None)"),
    (dict(flow_length=-1, flow="radial"), "int range", "flow_length", "-1"),
    (dict(flow_length=2.5, flow="radial"), "type", "flow_length", "2.5"),
    (dict(flow_length=True, flow="radial"), "type", "flow_length", "True"),
]:
    case("VAE(...)", _kind, _word, f"{next(iter(_kw))}={_what}", vae(**_kw))

# ------------------------------------------------------------------------------ VAE methods
BATCH_METHODS = {
    "VAE.loss_and_grads": lambda m, x, **kw: m.loss_and_grads(x, **kw),
    "VAE.loss": lambda m, x, **kw: m.loss(x, **kw),
    "VAE.elbo_terms": lambda m, x, **kw: m.elbo_terms(x, **kw),
    "VAE.log_weights": lambda m, x, **kw: m.log_weights(x, **kw),
    "VAE.trace": lambda m, x, **kw: m.trace(x, **kw),
}
for _entry, _method in BATCH_METHODS.items():
    for _kind, _word, _what, _call in [
        ("range", "x", "x = 1e39 (finite float64) for a float32 model",
         lambda tmp, f=_method: f(M32, HUGE)),
        ("shape", "x", "x 0-d array", lambda tmp, f=_method: f(M, np.array(0.5))),
        ("range", "eps", "eps = 1e39 for a float32 model",
         lambda tmp, f=_method: f(M32, X, eps=np.full((B, Z_DIM), 1e39))),
        ("shape", "eps", "eps list of the wrong length",
         lambda tmp, f=_method: f(M, X, eps=[[0, 0]])),
        ("int range", "k", "k = np.int64(-2)", lambda tmp, f=_method: f(M, X, k=np.int64(-2))),
        ("type", "rng", "rng = np.random.default_rng (the function)",
         lambda tmp, f=_method: f(M, X, rng=np.random.default_rng)),
    ]:
        case(_entry, _kind, _word, _what, _call)

# forward takes a batch already in the model's dtype (fit's fast path): it checks shapes only
for _kind, _word, _what, _call in [
    ("shape", f"x (B, {X_DIM})", "x 1-D", lambda tmp: M.forward(np.zeros(X_DIM), EPS[None])),
    ("shape", f"eps (K, B, {Z_DIM})", "eps (B, z_dim) without the K axis",
     lambda tmp: M.forward(X, EPS)),
    ("shape", f"eps (K, B, {Z_DIM})", "eps for another batch size",
     lambda tmp: M.forward(X, np.zeros((1, B + 1, Z_DIM)))),
]:
    case("VAE.forward", _kind, _word, _what, _call)

for _kind, _word, _what, _call in [
    ("type", "the Trace that forward(x, eps) returned", "backward(None)",
     lambda tmp: M.backward(None)),
    ("type", "the Trace that forward(x, eps) returned", "a trace already through backward",
     lambda tmp: M.backward(M.trace(X, eps=EPS))),
]:
    case("VAE.backward", _kind, _word, _what, _call)

for _kind, _word, _what, _call in [
    ("shape", "x", "x 1-D", lambda tmp: M.encode(np.zeros(X_DIM))),
    ("shape", "x", "x list of rows of width 3", lambda tmp: M.encode([[0.5] * 3] * 2)),
    ("range", "x", "x = 1e39 for a float32 model", lambda tmp: M32.encode(HUGE)),
    ("range", "x", "x = 2 for a Bernoulli model", lambda tmp: M.encode(np.full((1, X_DIM), 2.0))),
    ("nan/inf", "x", "x with -inf", lambda tmp: M.encode(nan_at(X, -np.inf))),
]:
    case("VAE.encode", _kind, _word, _what, _call)

for _kind, _word, _what, _call in [
    ("range", "z", "z = 1e39 for a float32 model",
     lambda tmp: M32.decode(np.full((2, Z_DIM), 1e39))),
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
        ("dtype", "flat", "flat int64",
         lambda tmp, c=_cls: c(0.1).step(np.zeros(3, int), np.ones(3))),
        ("dtype", "flat", "flat complex",
         lambda tmp, c=_cls: c(0.1).step(np.zeros(3, complex), np.ones(3, complex))),
        ("shape", "flat", "flat 2-D",
         lambda tmp, c=_cls: c(0.1).step(np.zeros((2, 2)), np.ones((2, 2)))),
        ("shape", "grad_flat", "grad_flat of another length",
         lambda tmp, c=_cls: c(0.1).step(np.zeros(3), np.ones(4))),
        ("dtype", "grad_flat", "grad_flat float32 for a float64 flat",
         lambda tmp, c=_cls: c(0.1).step(np.zeros(3), np.ones(3, np.float32))),
        ("range", "flat", "flat read-only",
         lambda tmp, c=_cls: c(0.1).step(_readonly(3), np.ones(3))),
        ("empty", "flat", "flat of size 0",
         lambda tmp, c=_cls: c(0.1).step(np.zeros(0), np.zeros(0))),
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

