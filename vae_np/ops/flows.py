"""Normalizing-flow steps (Rezende & Mohamed 2015): planar and radial maps and their log-dets.

Every array is a stack of rows: ``N`` rows of ``D`` dimensions. Every parameter is given per row (a
caller with one global parameter broadcasts it to N rows and sums the returned gradients over rows).

Planar step, with the invertibility reparameterization of u:

    u_hat = u + (m(w.u) - w.u) w / |w|^2,   m(x) = -1 + softplus(x)   =>   w.u_hat = m(w.u) > -1
    a = w.z + b,   f = z + u_hat tanh(a),
    logdet = ln det(df/dz) = ln(1 + tanh'(a) w.u_hat),   tanh' = 1 - tanh^2 = sech^2

Since w.u_hat > -1 and 0 < tanh' <= 1, 1 + tanh'(a) w.u_hat = tanh(a)^2 + tanh'(a)(1 + w.u_hat) > 0:
the map is monotone along w, hence invertible, and its determinant is positive, so logdet is
ln(.) of a positive number, not ln|.|. (The forward keeps ln(.) so that a complex step can pass; on
real input it raises SingularStepError if the argument is not > 0.)

In floating point the dot product w.u_hat loses 1 + w.u_hat = softplus(w.u) once that is below the
rounding of 1 (w.u < -17 in float32, -37 in float64): at a = 0 the det 1 + w.u_hat came out 0,
negative, or 1e-6 where it is 1e-13. So planar_u_hat_forward also keeps softplus(w.u) itself
(planar_one_plus_wuh reads it from its cache), and planar_forward(z, u_hat, w, b, one_plus_wuh)
takes det = tanh(a)^2 + tanh'(a) softplus(w.u): two terms >= 0, positive unless both underflow
(|a| < 4e-23 and w.u < -104 in float32). Its logdet is log1p(tanh'(a) (softplus(w.u) - 1)) where
that argument is within 0.5 of 0 and ln(det) elsewhere; the gradient of softplus(w.u) goes back
through planar_u_hat_backward's sigmoid(w.u). flow_chain uses this form; without one_plus_wuh,
planar_forward keeps the dot-product form.

The radial step lives in vae_np.ops.radial and is re-exported here.

Each op is a ``name_forward -> (..., cache)`` / ``name_backward(d..., cache) -> grads`` pair; the
backward passes write one chain-rule factor per line. Complex input follows the same analytic
formulas (no abs, no maximum), so complex-step checks pass through every op.
"""
from __future__ import annotations

import numpy as np

from .._validate import check_op_shape as _check_shape
from ._flow_common import (
    SingularStepError, _check_cache, _check_positive_argument, _check_rows, _positive_side,
    _sigmoid, _softplus)
from .radial import radial_backward, radial_forward, radial_params_backward, radial_params_forward

__all__ = ["SingularStepError", "planar_backward", "planar_forward", "planar_one_plus_wuh",
           "planar_u_hat_backward", "planar_u_hat_forward", "radial_backward", "radial_forward",
           "radial_params_backward", "radial_params_forward"]


# --------------------------------------------------------------------------- helpers
def _sech2(a):
    """tanh'(a) = 1 - tanh(a)^2 = sech(a)^2 with full relative precision (1 - tanh^2 loses it once
    tanh is near 1): 4 e / (1 + e)^2 with e = e^{-2|a|} (real input) or e^{-2 a sign(Re a)}
    (complex input; the sign is constant near a, so the formula stays analytic)."""
    e = np.exp(-2 * _positive_side(a) * a)      # |e| <= 1: no overflow
    return 4 * e / (1 + e) ** 2


# --------------------------------------------------------------------------- planar
def planar_u_hat_forward(u, w):
    """u_hat = u + (m(w.u) - w.u) w / |w|^2, m(x) = -1 + softplus(x): then w.u_hat = m(w.u) > -1.

    m(x) - x = -1 + softplus(-x) (softplus(x) - x = softplus(-x)), which is how the coefficient
    c = (m - w.u) / |w|^2 is computed: no cancellation for large w.u. The cache also holds
    1 + w.u_hat = softplus(w.u), computed from w.u directly (read it with planar_one_plus_wuh):
    the dot product w.u_hat rounds it away once softplus(w.u) < eps (w.u < -17 in float32).

    Parameters
    ----------
    u, w : (N, D), w with no zero row

    Returns
    -------
    u_hat : (N, D)
    cache : (u, w, wu, ww, c, softplus(wu))
    """
    _check_rows("planar_u_hat_forward", "u", u)
    _check_shape("planar_u_hat_forward", "w", w, np.shape(u))
    wu = np.sum(w * u, axis=-1)                 # w.u          (N,)
    ww = np.sum(w * w, axis=-1)                 # |w|^2        (N,)
    if not np.iscomplexobj(ww) and np.any(ww == 0):
        raise SingularStepError("planar_u_hat_forward: w must have no zero row (u_hat divides by "
                                "|w|^2)")
    c = (_softplus(-wu) - 1) / ww               # (m(w.u) - w.u) / |w|^2
    u_hat = u + c[:, None] * w
    return u_hat, (u, w, wu, ww, c, _softplus(wu))


def planar_one_plus_wuh(cache):
    """1 + w.u_hat = softplus(w.u) > 0, (N,), from planar_u_hat_forward's cache: the argument
    ``one_plus_wuh`` of planar_forward (its gradient goes back through planar_u_hat_backward)."""
    _check_cache("planar_one_plus_wuh", cache, 6, "planar_u_hat_forward")
    return cache[5]


def planar_u_hat_backward(du_hat, cache, done_plus_wuh=None):
    """Gradients of u_hat = u + c w, c = (softplus(-w.u) - 1) / |w|^2, and (if done_plus_wuh, the
    gradient with respect to planar_one_plus_wuh(cache) = softplus(w.u), is given) of that too.

    dc/d(w.u)   = -sigmoid(-w.u) / |w|^2        (= (m'(w.u) - 1) / |w|^2, m' = sigmoid)
    dc/d|w|^2   = -c / |w|^2
    d softplus(w.u) / d(w.u) = sigmoid(w.u)
    d(w.u)/du = w,  d(w.u)/dw = u,  d|w|^2/dw = 2 w

    Parameters
    ----------
    du_hat : (N, D)
    cache : planar_u_hat_forward's
    done_plus_wuh : (N,) or None (taken as 0)

    Returns
    -------
    du, dw : (N, D)
    """
    _check_cache("planar_u_hat_backward", cache, 6, "planar_u_hat_forward")
    u, w, wu, ww, c, _ = cache
    _check_shape("planar_u_hat_backward", "du_hat", du_hat, np.shape(u))
    du = du_hat * 1                             # du_hat/du = I (direct term)
    dw = du_hat * c[:, None]                    # du_hat/dw = c I (direct term)
    dc = np.sum(du_hat * w, axis=-1)            # du_hat/dc = w
    dwu = dc * (-_sigmoid(-wu) / ww)            # dc/d(w.u)
    dww = dc * (-c / ww)                        # dc/d|w|^2
    if done_plus_wuh is not None:
        _check_shape("planar_u_hat_backward", "done_plus_wuh", done_plus_wuh, np.shape(wu))
        dwu = dwu + done_plus_wuh * _sigmoid(wu)    # d softplus(w.u) / d(w.u) = sigmoid(w.u)
    du = du + dwu[:, None] * w                  # d(w.u)/du = w
    dw = dw + dwu[:, None] * u                  # d(w.u)/dw = u
    dw = dw + dww[:, None] * (2 * w)            # d|w|^2/dw = 2 w
    return du, dw


def planar_forward(z, u_hat, w, b, one_plus_wuh=None):
    """One planar step f = z + u_hat tanh(a), a = w.z + b, and logdet = ln det(df/dz).

    det = 1 + h'(a) w.u_hat (determinant lemma; h = tanh, h' = 1 - tanh^2 = sech^2).

    * ``one_plus_wuh`` given (what flow_chain does; planar_one_plus_wuh(cache) = softplus(w.u)):
      det = tanh(a)^2 + h'(a) one_plus_wuh, the same number since tanh^2 + h' = 1, but a sum of
      two terms >= 0, so it stays positive where the dot product w.u_hat has rounded to -1.
      logdet = log1p(h'(a) (one_plus_wuh - 1)) where that argument is within 0.5 of 0 (full
      accuracy when the step is near the identity), ln(det) elsewhere (full accuracy when det is
      tiny). f still uses u_hat; 1 + w.u_hat = one_plus_wuh is the caller's promise.
    * not given (the form before one_plus_wuh): det = 1 + h'(a) w.u_hat from the dot product,
      logdet = log1p(h'(a) w.u_hat).

    Parameters
    ----------
    z, u_hat, w : (N, D)
    b : (N,). u_hat should come from planar_u_hat_forward (w.u_hat > -1).
    one_plus_wuh : (N,) >= 0, or None

    Returns
    -------
    f : (N, D)
    logdet : (N,)
    cache : 7 entries, or 8 with one_plus_wuh
    """
    n = _check_rows("planar_forward", "z", z)
    _check_shape("planar_forward", "u_hat", u_hat, np.shape(z))
    _check_shape("planar_forward", "w", w, np.shape(z))
    _check_shape("planar_forward", "b", b, (n,))
    a = np.sum(w * z, axis=-1) + b              # (N,)
    t = np.tanh(a)                              # h(a)
    s = _sech2(a)                               # h'(a) = 1 - tanh(a)^2
    f = z + u_hat * t[:, None]
    if one_plus_wuh is None:
        wuh = np.sum(w * u_hat, axis=-1)        # w.u_hat (N,)
        det = 1 + s * wuh                       # det(I + u_hat h'(a) w^T), determinant lemma
        _check_positive_argument("planar_forward", "1 + (1 - tanh(w.z + b)^2) w.u_hat (use u_hat "
                                 "from planar_u_hat_forward, which keeps w.u_hat > -1)", det)
        logdet = np.log1p(s * wuh)              # ln(det), accurate also when s w.u_hat is tiny
        return f, logdet, (z, u_hat, w, t, s, wuh, det)
    p = np.asarray(one_plus_wuh)                # a list too, like b
    _check_shape("planar_forward", "one_plus_wuh", p, (n,))
    if not np.iscomplexobj(p) and np.any(p < 0):
        raise ValueError("planar_forward: one_plus_wuh must be >= 0, softplus(w.u) from "
                         f"planar_one_plus_wuh (not w.u_hat itself), got min {np.nanmin(p):.3g}")
    wuh = p - 1                                 # w.u_hat = m(w.u), as the logdet sees it
    det = t * t + s * p                         # = 1 + h'(a) w.u_hat, as a sum of terms >= 0
    _check_positive_argument("planar_forward", "tanh(w.z + b)^2 + (1 - tanh(w.z + b)^2) "
                             "one_plus_wuh (zero only if both terms underflow)", det)
    x = s * wuh                                 # det - 1
    near = np.abs(np.real(x)) < 0.5             # per row: log1p near det = 1, ln where det is far
    with np.errstate(divide="ignore"):
        logdet = np.where(near, np.log1p(np.where(near, x, 0)), np.log(np.where(near, 1, det)))
    return f, logdet, (z, u_hat, w, t, s, wuh, det, p)


def planar_backward(df, dlogdet, cache):
    """Gradients of f = z + u_hat h(a) and logdet = ln det, a = w.z + b, h = tanh.

    Through f:       dz += df;  du_hat += df h(a);  da += (df . u_hat) h'(a)
    Through logdet:  ddet = dlogdet / det (both forms are ln det: log1p(det - 1) = ln det)
      det = 1 + h'(a) w.u_hat (no one_plus_wuh):
                     d(w.u_hat) = ddet h'(a)  ->  du_hat += . w,  dw += . u_hat
                     dh'        = ddet w.u_hat  ->  da += . h''(a)
      det = h(a)^2 + h'(a) p (p = one_plus_wuh given):
                     dp = ddet h'(a)   (returned; u_hat does not enter logdet)
                     dh = ddet 2 h(a)  ->  da += . h'(a)
                     dh' = ddet p      ->  da += . h''(a)
                     h''(a) = -2 tanh(a) (1 - tanh(a)^2)
    Through a:       dz += da w;  dw += da z;  db = da

    Returns
    -------
    dz, du_hat, dw : (N, D)
    db : (N,)
    done_plus_wuh : (N,), only if the forward had one_plus_wuh
    """
    if not (isinstance(cache, tuple) and len(cache) == 8):
        _check_cache("planar_backward", cache, 7, "planar_forward")
    z, u_hat, w, t, s, wuh, det = cache[:7]
    _check_shape("planar_backward", "df", df, np.shape(z))
    _check_shape("planar_backward", "dlogdet", dlogdet, np.shape(t))
    # f = z + u_hat h(a)
    dz = df * 1                                 # df/dz (direct) = I
    du_hat = df * t[:, None]                    # df/du_hat = h(a)
    dh = np.sum(df * u_hat, axis=-1)            # df/dh = u_hat
    da = dh * s                                 # dh/da = h'(a)
    ddet = dlogdet / det                        # d ln(det) / d det = 1 / det
    if len(cache) == 7:
        # logdet = ln det, det = 1 + h'(a) w.u_hat
        dwuh = ddet * s                         # d det / d(w.u_hat) = h'(a)
        dhp = ddet * wuh                        # d det / d h'(a) = w.u_hat
        da = da + dhp * (-2 * t * s)            # d h'(a) / da = h''(a) = -2 tanh (1 - tanh^2)
        du_hat = du_hat + dwuh[:, None] * w     # d(w.u_hat)/du_hat = w
        dw = dwuh[:, None] * u_hat              # d(w.u_hat)/dw = u_hat
        done_plus_wuh = None
    else:
        # logdet = ln det, det = h(a)^2 + h'(a) p
        p = cache[7]
        done_plus_wuh = ddet * s                # d det / dp = h'(a)
        dtanh = ddet * (2 * t)                  # d det / d h(a) = 2 h(a)
        dhp = ddet * p                          # d det / d h'(a) = p
        da = da + dtanh * s                     # d h(a) / da = h'(a)
        da = da + dhp * (-2 * t * s)            # d h'(a) / da = h''(a) = -2 tanh (1 - tanh^2)
        dw = np.zeros_like(du_hat)              # w enters det only through a
    # a = w.z + b
    dz = dz + da[:, None] * w                   # da/dz = w
    dw = dw + da[:, None] * z                   # da/dw = z
    db = da * 1                                 # da/db = 1
    if done_plus_wuh is None:
        return dz, du_hat, dw, db
    return dz, du_hat, dw, db, done_plus_wuh
