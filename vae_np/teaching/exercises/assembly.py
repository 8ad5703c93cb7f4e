"""The last exercise: the whole VAE backward, assembled from the student's pieces.

The exercise's model is the one-page lecture, ``vae_np.teaching.lecture``, with one tanh hidden layer each
way, the log-variance sigma head and a Bernoulli decoder. ``vae_forward`` runs the lecture's
forward pass and hands every value to the student with the cache the ``vae_np.ops`` convention
gives it. ``check_assembly`` compares the student's ``vae_backward(params, trace)`` with the
lecture's backward pass at the same parameters, data and frozen noise;
tests/teaching/test_lecture.py shows that the lecture's gradient is the library's
(``VAE.trace``) to 1e-12.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ...gradcheck.report import constant_ratio, describe_ratio
from .. import lecture

NAMES = ("encoder.0.W", "encoder.0.b", "encoder.mu.W", "encoder.mu.b", "encoder.sigma.W",
         "encoder.sigma.b", "decoder.0.W", "decoder.0.b", "decoder.out.W", "decoder.out.b")
# Two analytic computations of one gradient, summed in different orders: they agree to rounding,
# a few eps relative to the largest gradient entry of the tensor (1e-10 leaves a wide margin and
# is still far below any wrong formula).
RTOL = 1e-10


MODEL = dict(activation="tanh", likelihood="bernoulli")
"""The lecture's options for the exercise's model (and sigma = exp(s / 2), the lecture's head)."""


def vae_forward(params, x, eps):
    """Forward pass of the exercise's VAE (``vae_np.teaching.lecture.forward``): a namespace of every
    output and its cache in the ``vae_np.ops`` convention (see the ``vae_backward`` stub's
    docstring for the field names), and ``values``, the lecture's dict. eps is (K, B, Z)."""
    v = lecture.forward(params, x, eps, **MODEL)
    K, B, Z = eps.shape
    t = SimpleNamespace(x=x, eps=eps, values=v, loss=float(v["loss"]))
    t.a, t.a_cache = v["a1"], (x, params["encoder.0.W"])
    t.h, t.h_cache = v["h1"], v["h1"]                     # tanh keeps its output
    t.mu, t.mu_cache = v["mu"], (v["h1"], params["encoder.mu.W"])
    t.s, t.s_cache = v["s"], (v["h1"], params["encoder.sigma.W"])
    t.sigma, t.sigma_cache = v["sigma"], v["sigma"]       # so does sigma = exp(s / 2)
    t.z, t.z_cache = v["z"], (v["sigma"], eps)
    t.kl, t.kl_cache = v["kl"], (v["mu"], v["sigma"])
    t.c, t.c_cache = v["c1"], (v["z"].reshape(K * B, Z), params["decoder.0.W"])
    t.g, t.g_cache = v["g1"], v["g1"]
    t.logits, t.logits_cache = v["logits"].reshape(K * B, -1), (v["g1"], params["decoder.out.W"])
    t.nll, t.nll_cache = v["nll"], (v["logits"], x)
    return t


def initial_params(x_dim, hidden, z_dim, seed):
    """The parameters of the library's VAE with the exercise's architecture, as it initializes
    them (a dict name -> array, copies)."""
    from ...core.model import VAE
    model = VAE(x_dim, (hidden,), z_dim, MODEL["activation"], MODEL["likelihood"], "logvar",
                seed=seed)
    return {n: p.copy() for n, p in model.params.items()}


def assembly_gradients(vae_backward, x_dim, hidden, z_dim, k, batch, seed):
    """(the student's result, the lecture's gradients by name) at one point of the exercise."""
    params = initial_params(x_dim, hidden, z_dim, seed)
    rng = np.random.default_rng(seed)
    x = rng.random((batch, x_dim))
    eps = rng.standard_normal((k, batch, z_dim))
    trace = vae_forward(params, x, eps)
    grads = lecture.backward(params, trace.values, **MODEL)
    return vae_backward(params, trace), grads


def check_assembly(vae_backward, x_dim, hidden, z_dim, k, batch, seed):
    """None if ``vae_backward`` gives the lecture's gradient at this point, else a one-line
    description of the first wrong tensor (its worst entry, and the constant factor if any)."""
    got, grads = assembly_gradients(vae_backward, x_dim, hidden, z_dim, k, batch, seed)
    if not isinstance(got, dict):
        return f"vae_backward must return a dict name -> gradient, got {type(got).__name__}"
    missing = [n for n in NAMES if n not in got]
    if missing:
        return f"vae_backward returned no gradient for {', '.join(missing)}"
    for name in NAMES:
        mine, true = np.asarray(got[name], dtype=float), grads[name]
        if mine.shape != true.shape:
            if mine.T.shape == true.shape and _close(mine.T, true):
                return f"{name}: your gradient is the transpose of the true one"
            return f"{name}: shape {mine.shape}, expected {true.shape}"
        if not _close(mine, true):
            i = np.unravel_index(int(np.argmax(np.abs(mine - true))), true.shape)
            ratio = constant_ratio(mine, true, RTOL, _slack(true))
            if ratio is None and np.count_nonzero(true) < 2 and true[i] != 0:
                ratio = float(mine[i] / true[i])     # one entry: its own ratio is the factor
            return (f"{name}: entry {tuple(int(j) for j in i)} is {mine[i]:.10g}, the lecture's "
                    f"{true[i]:.10g}; {describe_ratio(ratio)}")
    return None


def batch_factor(vae_backward, case, batches):
    """The tensors whose gradient is B or 1/B times the lecture's at every batch size B of
    ``batches`` (> 1) with the rest of ``case`` fixed: {"B": names, "1/B": names}, each in the
    order of NAMES; tensors that are right or follow neither law are left out."""
    x_dim, hidden, z_dim, k, _, seed = case
    pairs = {name: ([], [], []) for name in NAMES}
    for B in batches:
        got, grads = assembly_gradients(vae_backward, x_dim, hidden, z_dim, k, B, seed)
        for name in NAMES:
            mine = np.asarray(got[name], dtype=float)
            if mine.shape != grads[name].shape:
                return {"B": [], "1/B": []}
            pairs[name][0].append(np.ravel(mine))
            pairs[name][1].append(np.ravel(grads[name]))
            pairs[name][2].append(np.full(mine.size, float(B)))
    found = {"B": [], "1/B": []}
    for name, (mine, true, size) in pairs.items():
        mine, true, size = (np.concatenate(v) for v in (mine, true, size))
        if _close(mine, true):
            continue
        for law, scaled in (("B", true * size), ("1/B", true / size)):
            ratio = constant_ratio(mine, scaled, RTOL, _slack(scaled))
            if ratio is not None and abs(ratio - 1) < 1e-6:
                found[law].append(name)
    return found


def _slack(true):
    return 64 * np.finfo(np.float64).eps * max(1.0, float(np.max(np.abs(true))))


def _close(mine, true):
    return bool(np.all(np.abs(mine - true) <= RTOL * (np.abs(mine) + np.abs(true))
                       + _slack(true)))
