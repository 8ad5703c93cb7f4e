"""The last exercise: the whole VAE backward, assembled from the student's pieces.

``vae_forward`` runs the exercise's model (one tanh hidden layer each way, log-variance sigma,
Bernoulli decoder) with the library's forward ops and keeps every output and cache by name.
``check_assembly`` compares the student's ``vae_backward(params, trace)`` with the library's own
gradient, ``VAE.loss_and_grads`` at the same parameters, data and frozen noise.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .. import ops
from ..gradcheck_report import constant_ratio, describe_ratio

NAMES = ("encoder.0.W", "encoder.0.b", "encoder.mu.W", "encoder.mu.b", "encoder.sigma.W",
         "encoder.sigma.b", "decoder.0.W", "decoder.0.b", "decoder.out.W", "decoder.out.b")
# Two analytic computations of one gradient, summed in different orders: they agree to rounding,
# a few eps relative to the largest gradient entry of the tensor (1e-10 leaves a wide margin and
# is still far below any wrong formula).
RTOL = 1e-10


def vae_forward(params, x, eps):
    """Forward pass of the exercise's VAE: a namespace of every output and cache (see the
    ``vae_backward`` stub's docstring for the field names). eps has shape (K, B, Z)."""
    t = SimpleNamespace(x=x, eps=eps)
    t.a, t.a_cache = ops.dense_forward(x, params["encoder.0.W"], params["encoder.0.b"])
    t.h, t.h_cache = ops.tanh_forward(t.a)
    t.mu, t.mu_cache = ops.dense_forward(t.h, params["encoder.mu.W"], params["encoder.mu.b"])
    t.s, t.s_cache = ops.dense_forward(t.h, params["encoder.sigma.W"], params["encoder.sigma.b"])
    t.sigma, t.sigma_cache = ops.sigma_logvar_forward(t.s)
    t.z, t.z_cache = ops.reparameterize_forward(t.mu, t.sigma, eps)
    t.kl, t.kl_cache = ops.kl_forward(t.mu, t.sigma)
    K, B, Z = eps.shape
    t.c, t.c_cache = ops.dense_forward(t.z.reshape(K * B, Z), params["decoder.0.W"],
                                       params["decoder.0.b"])
    t.g, t.g_cache = ops.tanh_forward(t.c)
    t.logits, t.logits_cache = ops.dense_forward(t.g, params["decoder.out.W"],
                                                 params["decoder.out.b"])
    t.nll, t.nll_cache = ops.bernoulli_nll_forward(t.logits.reshape(K, B, -1), x)
    t.loss = float(np.mean(t.nll.mean(axis=0) + t.kl))
    return t


def library_model(x_dim, hidden, z_dim, seed):
    """The library's VAE with the exercise's architecture."""
    from ..model import VAE
    return VAE(x_dim, (hidden,), z_dim, "tanh", "bernoulli", "logvar", seed=seed)


def assembly_gradients(vae_backward, x_dim, hidden, z_dim, k, batch, seed):
    """(the student's result, the library's gradients by name) at one point of the exercise."""
    model = library_model(x_dim, hidden, z_dim, seed)
    rng = np.random.default_rng(seed)
    x = rng.random((batch, x_dim))
    eps = rng.standard_normal((k, batch, z_dim))
    loss, grads = model.loss_and_grads(x, k=k, eps=eps)
    params = {n: p.copy() for n, p in model.params.items()}
    trace = vae_forward(params, x, eps)
    if abs(trace.loss - loss) > 1e-12 * max(1.0, abs(loss)):     # the exercise's own model
        raise RuntimeError(f"vae_forward's loss {trace.loss} differs from the model's {loss}")
    return vae_backward(params, trace), grads


def check_assembly(vae_backward, x_dim, hidden, z_dim, k, batch, seed):
    """None if ``vae_backward`` gives the library's gradient at this point, else a one-line
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
            return (f"{name}: entry {tuple(int(j) for j in i)} is {mine[i]:.10g}, the library's "
                    f"{true[i]:.10g}; {describe_ratio(ratio)}")
    return None


def batch_factor(vae_backward, case, batches):
    """The tensors whose gradient is B or 1/B times the library's at every batch size B of
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
