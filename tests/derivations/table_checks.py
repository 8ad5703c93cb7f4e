"""Bad values for the checkers and the lessons: ``gradcheck``, ``estimators``, ``derivations`` and
``explain`` (see ``tests/cli/entry_points.py``)."""
from __future__ import annotations

import numpy as np

from table_common import B, M, X, nan_at, rows
from vae_np.derivations import score_reparam as estimators
from vae_np.derivations import check_claim_names, run_claims
from vae_np.teaching.explain import build_model, explain
from vae_np.gradcheck import check_gradients, check_model

CASES: list = []
case = rows(CASES)


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
    ("int range", "coords", "coords = 0",
     lambda tmp: check_model(M, X, method="coordinates", coords=0)),
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
