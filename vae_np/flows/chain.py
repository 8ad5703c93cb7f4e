"""A chain of L flow steps of one kind, from raw (unconstrained) parameters:
z_L = f_L o ... o f_1(z_0).

Each step l reads its raw parameters, one row per row of z, from an array raws[l] of shape (N, P):

    planar (P = 2D + 1):  raw = [u (D) | w (D) | b (1)]
                          u_hat = u + (m(w.u) - w.u) w / |w|^2, then f = z + u_hat tanh(w.z + b),
                          logdet = ln(tanh(a)^2 + tanh'(a) softplus(w.u)), a = w.z + b
    radial (P = D + 2):   raw = [z_ref (D) | alpha_raw (1) | beta_raw (1)]
                          alpha = softplus(alpha_raw), beta = -alpha + softplus(beta_raw), then
                          f = z + beta (z - z_ref) / (alpha + |z - z_ref|)

so every raw value gives an invertible step (vae_np.ops.flows). The chain returns every z_l and
every step's logdet_l = ln det(dz_l / dz_{l-1}); the caller forms
ln q_L(z_L) = ln q_0(z_0) - sum_l logdet_l.

The backward takes dz_L and the gradient with respect to sum_l logdet_l (each logdet_l enters the
sum with weight 1, so each step receives the same dlogdet) and walks the steps in reverse: each
step's dz_{l-1} is its op's dz, and its raw gradient chains the op's parameter gradients through
the reparameterization.
"""
from __future__ import annotations

import numpy as np

from .._validate import check_choice, check_int
from .._validate import check_op_shape as _check_shape
from ..ops.flows import (
    planar_backward, planar_forward, planar_one_plus_wuh, planar_u_hat_backward,
    planar_u_hat_forward, radial_backward, radial_forward, radial_params_backward,
    radial_params_forward)

FLOW_KINDS = {
    "planar": "f(z) = z + u_hat tanh(w.z + b), u_hat = u + (m(w.u) - w.u) w / |w|^2; "
              "raw = [u, w, b]",
    "radial": "f(z) = z + beta (z - z_ref) / (alpha + |z - z_ref|), alpha = softplus(alpha_raw), "
              "beta = -alpha + softplus(beta_raw); raw = [z_ref, alpha_raw, beta_raw]",
}
"""Flow kind -> a one-line description of its step and raw layout."""


def raw_size(kind, D):
    """Raw parameters per step per row: planar 2D + 1 (u, w, b), radial D + 2
    (z_ref, alpha_raw, beta_raw)."""
    check_choice("kind", kind, FLOW_KINDS)
    D = check_int("D", D, minimum=1)
    return 2 * D + 1 if kind == "planar" else D + 2


def split_raw(kind, raw, D):
    """Views into one step's raw (N, P) array, by name.

    planar: {"u": (N, D), "w": (N, D), "b": (N,)}
    radial: {"z_ref": (N, D), "alpha_raw": (N,), "beta_raw": (N,)}
    """
    P = raw_size(kind, D)
    if np.ndim(raw) != 2 or np.shape(raw)[1] != P:
        raise ValueError(f"raw must have shape (N, {P}) for a {kind} step in D = {D}, got shape "
                         f"{np.shape(raw)}")
    if kind == "planar":
        return {"u": raw[:, :D], "w": raw[:, D:2 * D], "b": raw[:, 2 * D]}
    return {"z_ref": raw[:, :D], "alpha_raw": raw[:, D], "beta_raw": raw[:, D + 1]}


def _check_chain_input(kind, z0, raws):
    check_choice("kind", kind, FLOW_KINDS)
    if np.ndim(z0) != 2 or 0 in np.shape(z0):
        raise ValueError(f"z0 must be a non-empty (N, D) array, got shape {np.shape(z0)}")
    if not isinstance(raws, (list, tuple)):
        raise ValueError(f"raws must be a list of (N, P) arrays, one per step, got "
                         f"{type(raws).__name__}")
    N, D = np.shape(z0)
    P = raw_size(kind, D)
    for l, raw in enumerate(raws):
        if np.shape(raw) != (N, P):
            raise ValueError(f"raws[{l}] must have shape (N, P) = ({N}, {P}) for a {kind} step "
                             f"on z0 of shape {np.shape(z0)}, got {np.shape(raw)}")
    return D


def chain_forward(kind, z0, raws):
    """Push z0 through L = len(raws) steps of one kind.

    Parameters
    ----------
    kind : "planar" or "radial"
    z0 : (N, D)
    raws : list of L arrays (N, P), P = raw_size(kind, D)

    Returns
    -------
    zs : list of L + 1 arrays (N, D), [z0, z1, ..., zL]
    logdets : list of L arrays (N,)
    caches : list of L step caches for chain_backward
    """
    D = _check_chain_input(kind, z0, raws)
    shape = np.shape(z0)
    zs, logdets, caches = [z0], [], []
    for raw in raws:
        p = split_raw(kind, raw, D)
        if kind == "planar":
            u_hat, param_cache = planar_u_hat_forward(p["u"], p["w"])
            # det from softplus(w.u) itself, not from w.u_hat rounded to -1 (passed positionally,
            # like the other arguments, so a wrapped op taking *args still receives it)
            z, logdet, op_cache = planar_forward(zs[-1], u_hat, p["w"], p["b"],
                                                 planar_one_plus_wuh(param_cache))
        else:
            alpha, beta, param_cache = radial_params_forward(p["alpha_raw"], p["beta_raw"])
            z, logdet, op_cache = radial_forward(zs[-1], p["z_ref"], alpha, beta)
        zs.append(z)
        logdets.append(logdet)
        caches.append((kind, shape, param_cache, op_cache))
    return zs, logdets, caches


def chain_backward(dzL, dlogdet_sum, caches):
    """Gradients of a loss that reads z_L and sum_l logdet_l.

    Parameters
    ----------
    dzL : (N, D), dloss/dz_L
    dlogdet_sum : (N,), dloss/d(sum_l logdet_l)
    caches : the list chain_forward returned

    Returns
    -------
    dz0 : (N, D)
    draws : list of L arrays (N, P), dloss/d raws[l]
    """
    if not isinstance(caches, list):
        raise ValueError("caches must be the list chain_forward returned")
    if caches:
        shape = caches[0][1]
        _check_shape("chain_backward", "dzL", dzL, shape)
        _check_shape("chain_backward", "dlogdet_sum", dlogdet_sum, shape[:1])
    dz = dzL
    draws = [None] * len(caches)
    for l in reversed(range(len(caches))):
        kind, _, param_cache, op_cache = caches[l]
        # d(sum logdet)/d logdet_l = 1: every step receives dlogdet_sum itself
        if kind == "planar":
            dz, du_hat, dw_op, db, dp = planar_backward(dz, dlogdet_sum, op_cache)
            # u_hat and 1 + w.u_hat = softplus(w.u) both come from (u, w): one backward for both
            du, dw_param = planar_u_hat_backward(du_hat, param_cache, dp)
            dw = dw_op + dw_param               # w feeds the step and the u_hat correction: +=
            draws[l] = np.concatenate([du, dw, db[:, None]], axis=1)
        else:
            dz, dz_ref, dalpha, dbeta = radial_backward(dz, dlogdet_sum, op_cache)
            dalpha_raw, dbeta_raw = radial_params_backward(dalpha, dbeta, param_cache)
            draws[l] = np.concatenate([dz_ref, dalpha_raw[:, None], dbeta_raw[:, None]], axis=1)
    return dz, draws
