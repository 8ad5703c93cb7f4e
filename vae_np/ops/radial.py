"""The radial normalizing-flow step (Rezende & Mohamed 2015) and its log-det; the planar step and
the conventions shared by both (rows of N x D, per-row parameters, forward/backward pairs, complex
input) are in vae_np.ops.flows, which re-exports these ops.

Radial step, with alpha > 0 and beta >= -alpha by reparameterization:

    alpha = softplus(alpha_raw),   beta = -alpha + softplus(beta_raw)
    r = |z - z_ref|,   h = 1 / (alpha + r),   f = z + beta h (z - z_ref),
    logdet = (D - 1) ln(1 + beta h) + ln(1 + beta h - beta r h^2)

(dh/dr = -h^2, so the last factor is 1 + beta h + beta r dh/dr; it equals 1 + alpha beta h^2.)
With beta >= -alpha both factors are >= r / (alpha + r) > 0 for r > 0.
"""
from __future__ import annotations

import numpy as np

from .._validate import check_op_shape as _check_shape
from ._flow_common import _check_cache, _check_positive_argument, _check_rows, _sigmoid, _softplus


def radial_params_forward(alpha_raw, beta_raw):
    """alpha = softplus(alpha_raw) > 0, beta = -alpha + softplus(beta_raw) >= -alpha.

    Parameters
    ----------
    alpha_raw, beta_raw : (N,)

    Returns
    -------
    alpha, beta : (N,)
    cache : (alpha_raw, beta_raw)
    """
    if np.ndim(alpha_raw) != 1:
        raise ValueError(f"radial_params_forward: alpha_raw must be an (N,) array, got shape "
                         f"{np.shape(alpha_raw)}")
    _check_shape("radial_params_forward", "beta_raw", beta_raw, np.shape(alpha_raw))
    alpha = _softplus(alpha_raw)
    beta = -alpha + _softplus(beta_raw)
    return alpha, beta, (alpha_raw, beta_raw)


def radial_params_backward(dalpha, dbeta, cache):
    """dalpha/dalpha_raw = sigmoid(alpha_raw), dbeta/dalpha_raw = -sigmoid(alpha_raw),
    dbeta/dbeta_raw = sigmoid(beta_raw).

    Returns
    -------
    dalpha_raw, dbeta_raw : (N,)
    """
    _check_cache("radial_params_backward", cache, 2, "radial_params_forward")
    alpha_raw, beta_raw = cache
    _check_shape("radial_params_backward", "dalpha", dalpha, np.shape(alpha_raw))
    _check_shape("radial_params_backward", "dbeta", dbeta, np.shape(alpha_raw))
    sa = _sigmoid(alpha_raw)                    # softplus' = sigmoid
    dalpha_raw = dalpha * sa                    # dalpha/dalpha_raw
    dalpha_raw = dalpha_raw + dbeta * (-sa)     # dbeta/dalpha_raw (beta = -alpha + ...)
    dbeta_raw = dbeta * _sigmoid(beta_raw)      # dbeta/dbeta_raw
    return dalpha_raw, dbeta_raw


def radial_forward(z, z_ref, alpha, beta):
    """One radial step f = z + beta h (z - z_ref), h = 1 / (alpha + r), r = |z - z_ref|.

    logdet = (D - 1) ln(1 + beta h) + ln(1 + beta h - beta r h^2)   (each argument > 0 for
    alpha > 0, beta >= -alpha, r > 0; checked on real input). r is sqrt(sum (z - z_ref)^2), the
    analytic form, so complex input works; its gradient needs r > 0.

    Parameters
    ----------
    z, z_ref : (N, D)
    alpha, beta : (N,) with alpha > 0 and beta >= -alpha

    Returns
    -------
    f : (N, D)
    logdet : (N,)
    cache
    """
    n = _check_rows("radial_forward", "z", z)
    _check_shape("radial_forward", "z_ref", z_ref, np.shape(z))
    _check_shape("radial_forward", "alpha", alpha, (n,))
    _check_shape("radial_forward", "beta", beta, (n,))
    if not np.iscomplexobj(alpha) and np.any(alpha <= 0):
        raise ValueError("radial_forward: alpha must be > 0 (use radial_params_forward)")
    if not np.iscomplexobj(beta) and np.any(beta < -alpha):
        raise ValueError("radial_forward: beta must be >= -alpha (use radial_params_forward)")
    dim = np.shape(z)[1]
    d = z - z_ref                               # (N, D)
    r = np.sqrt(np.sum(d * d, axis=-1))         # (N,)
    h = 1 / (alpha + r)
    bh = beta * h
    p_1 = bh                                    # p - 1
    q_1 = bh - beta * r * h * h                 # q - 1
    p = 1 + p_1                                 # the D - 1 directions orthogonal to z - z_ref
    q = 1 + q_1                                 # the radial direction: 1 + beta (h + r h')
    _check_positive_argument("radial_forward", "1 + beta h (need beta >= -alpha and r > 0)", p)
    _check_positive_argument("radial_forward", "1 + beta h - beta r h^2 (need beta >= -alpha)", q)
    f = z + bh[:, None] * d
    logdet = (dim - 1) * np.log1p(p_1) + np.log1p(q_1)     # ln p, ln q accurate near p, q = 1
    return f, logdet, (d, r, h, alpha, beta, p, q)


def radial_backward(df, dlogdet, cache):
    """Gradients of f = z + beta h d and logdet = (D - 1) ln p + ln q, with d = z - z_ref,
    r = |d|, h = 1 / (alpha + r), p = 1 + beta h, q = 1 + beta h - beta r h^2.

    Through f:        dd = df beta h;  d(beta h) = df . d
    Through logdet:   dp = dlogdet (D - 1) / p;  dq = dlogdet / q
      p:  d(beta h) += dp
      q:  d(beta h) += dq;  dbeta = -dq r h^2;  dr = -dq beta h^2;  dh = -dq 2 beta r h
    beta h:           dbeta += d(beta h) h;  dh += d(beta h) beta
    h = 1/(alpha+r):  dalpha = -dh h^2;  dr += -dh h^2
    r = |d|:          dd += dr d / r
    d = z - z_ref:    dz = df + dd;  dz_ref = -dd

    Returns
    -------
    dz, dz_ref : (N, D)
    dalpha, dbeta : (N,)
    """
    _check_cache("radial_backward", cache, 7, "radial_forward")
    d, r, h, alpha, beta, p, q = cache
    _check_shape("radial_backward", "df", df, np.shape(d))
    _check_shape("radial_backward", "dlogdet", dlogdet, np.shape(r))
    dim = np.shape(d)[1]
    # f = z + (beta h) d
    dd = df * (beta * h)[:, None]               # df/dd = beta h
    dbh = np.sum(df * d, axis=-1)               # df/d(beta h) = d
    # logdet = (D - 1) ln p + ln q
    dp = dlogdet * (dim - 1) / p                # d logdet / dp
    dq = dlogdet / q                            # d logdet / dq
    dbh = dbh + dp                              # dp/d(beta h) = 1
    dbh = dbh + dq                              # dq/d(beta h) = 1
    dbeta = dq * (-r * h * h)                   # dq/dbeta (the -beta r h^2 term) = -r h^2
    dr = dq * (-beta * h * h)                   # dq/dr (same term) = -beta h^2
    dh = dq * (-2 * beta * r * h)               # dq/dh (same term) = -2 beta r h
    # beta h
    dbeta = dbeta + dbh * h                     # d(beta h)/dbeta = h
    dh = dh + dbh * beta                        # d(beta h)/dh = beta
    # h = 1 / (alpha + r)
    dalpha = dh * (-h * h)                      # dh/dalpha = -h^2
    dr = dr + dh * (-h * h)                     # dh/dr = -h^2
    # r = sqrt(d.d)
    dd = dd + (dr / r)[:, None] * d             # dr/dd = d / r
    # d = z - z_ref
    dz = df + dd                                # f's direct z, and dd/dz = I
    dz_ref = -dd                                # dd/dz_ref = -I
    return dz, dz_ref, dalpha, dbeta
