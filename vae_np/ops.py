"""Pure operations of the VAE, each a ``name_forward`` / ``name_backward`` pair.

``name_forward(...) -> (out, cache)`` computes one step of the derivation;
``name_backward(dout, cache) -> grads`` applies that step's chain rule, where ``dout`` is the
gradient of the scalar loss with respect to ``out``. Gradients are named ``d<var>``. No function
here keeps state or mutates its inputs; the optional ``out_*`` arguments let a caller supply the
arrays the gradients are written into (the model passes views of its flat gradient vector), which
avoids copies without changing any result.

Shapes: ``B`` batch, ``D`` data dimension, ``Z`` latent dimension, ``K`` Monte Carlo samples.

Complex inputs follow an analytic formula (no ``abs``/``maximum``) so that complex-step
derivative checks can pass through tanh, sigmoid, softplus, exp and log.
"""
from __future__ import annotations

import numpy as np

from ._validate import check_op_scalar as _check_scalar
from ._validate import check_op_shape as _check_shape

LN_2PI = float(np.log(2.0 * np.pi))


# --------------------------------------------------------------------------- scalar helpers
def softplus(x: np.ndarray) -> np.ndarray:
    """softplus(x) = ln(1 + e^x), computed as max(x, 0) + ln(1 + e^-|x|) so it never overflows."""
    if np.iscomplexobj(x):
        return np.log1p(np.exp(x))
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """sigmoid(x) = 1 / (1 + e^-x), with full relative precision for any x.

    For x below about -88 (float32) or -709 (float64) e^-x overflows to inf and the result is 0,
    which is also the correctly rounded value of sigmoid(x) there; that overflow is silenced.
    """
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


# --------------------------------------------------------------------------- dense layer
def dense_forward(x, W, b):
    """Affine map y = x @ W + b.

    Parameters
    ----------
    x : (B, n_in)  W : (n_in, n_out)  b : (n_out,)

    Returns
    -------
    y : (B, n_out);  cache : (x, W)
    """
    if x.ndim != 2 or W.ndim != 2 or x.shape[1] != W.shape[0] or b.shape != (W.shape[1],):
        raise ValueError(f"dense_forward: expected x (B, n_in), W (n_in, n_out), b (n_out,); "
                         f"got x {x.shape}, W {W.shape}, b {b.shape}")
    y = x @ W
    y = y + b if np.iscomplexobj(b) else np.add(y, b, out=y)  # complex b: complex-step checks
    return y, (x, W)


def dense_backward(dy, cache, out_dW=None, out_db=None, need_dx=True):
    """Chain rule of y = x @ W + b.

    dx = dy @ W^T,   dW = x^T @ dy,   db = sum_b dy  (b fans out to every row of the batch).

    Parameters
    ----------
    dy : (B, n_out);  cache : from dense_forward
    out_dW, out_db : optional arrays of W's / b's shape to write dW, db into
    need_dx : skip dx (returned as None) for the first layer, whose input is data

    Returns
    -------
    dx : (B, n_in) or None;  dW : (n_in, n_out);  db : (n_out,)
    """
    x, W = cache
    _check_shape("dense_backward", "dy", dy, (x.shape[0], W.shape[1]))
    dW = np.matmul(x.T, dy, out=out_dW)
    db = np.sum(dy, axis=0, out=out_db)
    dx = dy @ W.T if need_dx else None
    return dx, dW, db


# --------------------------------------------------------------------------- activations
def relu_forward(x):
    """y = max(x, 0). The derivative at exactly 0 is taken as 0."""
    return np.maximum(x, 0.0), x        # 0.0: NumPy's float-with-float loop, faster than int 0


def relu_backward(dy, x):
    """dx = dy * [x > 0]."""
    _check_shape("relu_backward", "dy", dy, x.shape)
    return dy * (x > 0)


LEAKY_SLOPE = 0.01


def leaky_relu_forward(x):
    """y = x for x > 0, 0.01 x otherwise."""
    return np.where(x > 0, x, LEAKY_SLOPE * x), x


def leaky_relu_backward(dy, x):
    """dx = dy * (1 if x > 0 else 0.01)."""
    _check_shape("leaky_relu_backward", "dy", dy, x.shape)
    return dy * np.where(x > 0, 1.0, LEAKY_SLOPE).astype(dy.dtype, copy=False)


def tanh_forward(x):
    """y = tanh(x); the cache is y itself, since dy/dx = 1 - y^2."""
    y = np.tanh(x)
    return y, y


def tanh_backward(dy, y):
    """dx = dy * (1 - y^2)."""
    _check_shape("tanh_backward", "dy", dy, y.shape)
    return dy * (1 - y * y)


def sigmoid_forward(x):
    """y = sigmoid(x); the cache is y, since dy/dx = y (1 - y)."""
    y = sigmoid(x)
    return y, y


def sigmoid_backward(dy, y):
    """dx = dy * y * (1 - y)."""
    _check_shape("sigmoid_backward", "dy", dy, y.shape)
    return dy * y * (1 - y)


def softplus_forward(x):
    """y = ln(1 + e^x); the cache is x, since dy/dx = sigmoid(x)."""
    return softplus(x), x


def softplus_backward(dy, x):
    """dx = dy * sigmoid(x)."""
    _check_shape("softplus_backward", "dy", dy, x.shape)
    return dy * sigmoid(x)


def identity_forward(x):
    """y = x (an affine head has no activation, so no derivative factor either)."""
    return x, None


def identity_backward(dy, cache):
    """dx = dy."""
    return dy


ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
    "tanh": (tanh_forward, tanh_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "softplus": (softplus_forward, softplus_backward),
    "identity": (identity_forward, identity_backward),
}
"""Activation name -> (forward, backward). ReLU and leaky ReLU have a kink at 0."""


# --------------------------------------------------------------------------- sigma of q(z|x)
def sigma_logvar_forward(s):
    """The encoder's head s is the log-variance: sigma = exp(s / 2), so ln sigma^2 = s."""
    sigma = np.exp(0.5 * s)
    return sigma, sigma


def sigma_logvar_backward(dsigma, sigma):
    """ds = dsigma * dsigma/ds = dsigma * sigma / 2."""
    _check_shape("sigma_logvar_backward", "dsigma", dsigma, sigma.shape)
    return dsigma * (0.5 * sigma)


def sigma_softplus_forward(s, sigma_min=1e-4):
    """sigma = softplus(s) + sigma_min, bounded below by sigma_min > 0."""
    _check_scalar("sigma_softplus_forward", "sigma_min", sigma_min)
    return softplus(s) + sigma_min, s


def sigma_softplus_backward(dsigma, s):
    """ds = dsigma * dsigma/ds = dsigma * sigmoid(s)."""
    _check_shape("sigma_softplus_backward", "dsigma", dsigma, s.shape)
    return dsigma * sigmoid(s)


SIGMA_PARAMETERIZATIONS = {
    "logvar": (sigma_logvar_forward, sigma_logvar_backward),
    "softplus": (sigma_softplus_forward, sigma_softplus_backward),
}


# --------------------------------------------------------------------------- reparameterization
def reparameterize_forward(mu, sigma, eps):
    """z = mu + sigma * eps with eps ~ N(0, I) drawn by the caller (so it can be frozen).

    Parameters
    ----------
    mu, sigma : (B, Z)
    eps : (B, Z) or (K, B, Z); K samples per example share mu and sigma

    Returns
    -------
    z : eps's shape;  cache : (sigma, eps)
    """
    if mu.shape != sigma.shape or eps.shape[-2:] != mu.shape or eps.ndim not in (2, 3):
        raise ValueError(f"reparameterize: expected mu, sigma (B, Z) and eps (B, Z) or (K, B, Z); "
                         f"got mu {mu.shape}, sigma {sigma.shape}, eps {eps.shape}")
    z = sigma * eps
    z = z + mu if np.iscomplexobj(mu) else np.add(z, mu, out=z)  # complex mu: complex step
    return z, (sigma, eps)


def reparameterize_backward(dz, cache):
    """The two chain-rule terms of z = mu + sigma * eps, kept separate.

    dz/dmu = 1     ->  dmu    = dz
    dz/dsigma = eps -> dsigma = dz * eps
    With K samples, mu and sigma fan out to K copies of z, so both are summed over K.

    Returns
    -------
    dmu, dsigma : (B, Z)
    """
    sigma, eps = cache
    _check_shape("reparameterize_backward", "dz", dz, eps.shape)
    dmu = dz * 1
    dsigma = dz * eps
    if eps.ndim == 3:
        dmu = dmu.sum(axis=0)
        dsigma = dsigma.sum(axis=0)
    return dmu, dsigma


# --------------------------------------------------------------------------- KL to the prior
def kl_forward(mu, sigma):
    """Closed-form KL(N(mu, diag sigma^2) || N(0, I)) per example.

    KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - ln sigma_j^2)

    Parameters
    ----------
    mu, sigma : (B, Z), sigma > 0

    Returns
    -------
    kl : (B,);  cache : (mu, sigma)
    """
    if mu.shape != sigma.shape:
        raise ValueError(f"kl: mu and sigma must have one shape, got {mu.shape} and {sigma.shape}")
    kl = 0.5 * np.sum(mu * mu + sigma * sigma - 1 - 2 * np.log(sigma), axis=-1)
    return kl, (mu, sigma)


def kl_backward(dkl, cache):
    """Gradient of the closed-form KL, with its factor 1/2 kept (see DESIGN.md).

    dKL/dmu    = 1/2 * 2 mu                = mu
    dKL/dsigma = 1/2 * 2 (sigma - 1/sigma) = sigma - 1/sigma

    (The often-quoted 2(1/sigma - sigma), -2 mu is the gradient of the bracket without the 1/2,
    i.e. twice the truth; tests/test_kl_gradient.py shows it numerically.)

    Parameters
    ----------
    dkl : (B,);  cache : from kl_forward

    Returns
    -------
    dmu, dsigma : (B, Z)
    """
    mu, sigma = cache
    _check_shape("kl_backward", "dkl", dkl, mu.shape[:-1])
    dkl = dkl[..., None]
    dmu = dkl * mu
    dsigma = dkl * (sigma - 1 / sigma)
    return dmu, dsigma


# --------------------------------------------------------------------------- likelihoods
def bernoulli_nll_forward(logits, x):
    """-ln p(x | z) for a Bernoulli decoder on logits l, per example, summed over pixels.

    -ln p = sum_d [softplus(l_d) - x_d l_d]
    which equals binary cross-entropy of x with sigmoid(l) without ever forming log(0); valid for
    any real l and for grey levels x in [0, 1] (not only binary x).

    Parameters
    ----------
    logits : (..., B, D);  x : (B, D) (broadcast over leading sample axes)

    Returns
    -------
    nll : (..., B);  cache : (logits, x)
    """
    _check_shape("bernoulli_nll_forward", "x", x, logits.shape[-2:])
    if np.iscomplexobj(logits):     # complex-step checks: the analytic form, no abs or max
        return np.sum(softplus(logits) - x * logits, axis=-1), (logits, x)
    # softplus(l) - x l = ln(1 + e^-|l|) + max(l, 0) - x l, in place in two work arrays: this is
    # the largest elementwise job of a training step.
    t = -np.abs(logits)
    np.exp(t, out=t)
    np.log1p(t, out=t)                      # ln(1 + e^-|l|): never log(0), never overflows
    u = np.maximum(logits, 0.0)
    t += u
    np.multiply(logits, x, out=u)           # x (B, D) broadcasts over the sample axis
    t -= u
    return np.sum(t, axis=-1), (logits, x)


def bernoulli_nll_backward(dnll, cache):
    """dlogits = dnll * (sigmoid(l) - x)."""
    logits, x = cache
    _check_shape("bernoulli_nll_backward", "dnll", dnll, logits.shape[:-1])
    return dnll[..., None] * (sigmoid(logits) - x)


def gaussian_nll_forward(mean, x, sigma=1.0):
    """-ln N(x; mean, sigma^2 I) per example, with a fixed scalar sigma > 0.

    -ln p = 1/2 sum_d (x_d - mean_d)^2 / sigma^2 + D ln sigma + D/2 ln 2 pi
    (the constant is kept so that the ELBO is a true bound on ln p(x)).

    Parameters
    ----------
    mean : (..., B, D);  x : (B, D);  sigma : float

    Returns
    -------
    nll : (..., B);  cache : (mean, x, sigma)
    """
    _check_shape("gaussian_nll_forward", "x", x, mean.shape[-2:])
    _check_scalar("gaussian_nll_forward", "sigma", sigma)
    D = mean.shape[-1]
    r = x - mean
    # float(): a NumPy float64 scalar would promote a float32 nll to float64
    nll = 0.5 * np.sum(r * r, axis=-1) / sigma ** 2 + D * (float(np.log(sigma)) + 0.5 * LN_2PI)
    return nll, (mean, x, sigma)


def gaussian_nll_backward(dnll, cache):
    """dmean = dnll * (mean - x) / sigma^2."""
    mean, x, sigma = cache
    _check_shape("gaussian_nll_backward", "dnll", dnll, mean.shape[:-1])
    return dnll[..., None] * (mean - x) / sigma ** 2


def gaussian_learned_nll_forward(mean, r, x, sigma_min=0.0):
    """-ln N(x; mean, diag sigma^2) with a per-pixel sigma from the decoder's log-sigma head r.

    sigma = sigma_min + e^r   (sigma_min = 0: ln sigma = r exactly; sigma_min > 0 keeps sigma away
    from 0, where the likelihood of a reproduced pixel would grow without bound)

    -ln p = sum_d [ (x_d - mean_d)^2 / (2 sigma_d^2) + ln sigma_d + 1/2 ln 2 pi ]

    Parameters
    ----------
    mean, r : (..., B, D);  x : (B, D);  sigma_min : float >= 0

    Returns
    -------
    nll : (..., B);  cache
    """
    _check_shape("gaussian_learned_nll_forward", "r", r, mean.shape)
    _check_shape("gaussian_learned_nll_forward", "x", x, mean.shape[-2:])
    _check_scalar("gaussian_learned_nll_forward", "sigma_min", sigma_min, allow_equal=True)
    # ln sigma = ln(sigma_min + e^r) = logaddexp(ln sigma_min, r), stable for any r.
    log_sigma = r if sigma_min == 0 else np.logaddexp(float(np.log(sigma_min)), r)
    inv_var = np.exp(-2 * log_sigma)
    resid = x - mean
    nll = np.sum(0.5 * resid * resid * inv_var + log_sigma, axis=-1) + 0.5 * mean.shape[-1] * LN_2PI
    return nll, (resid, r, log_sigma, inv_var)


def gaussian_learned_nll_backward(dnll, cache):
    """Gradients for the mean and the log-sigma head.

    dmean      = dnll * (mean - x) / sigma^2
    dln_sigma  = dnll * (1 - (x - mean)^2 / sigma^2)
    dr         = dln_sigma * d ln sigma / dr = dln_sigma * e^r / sigma

    Returns
    -------
    dmean, dr : (..., B, D)
    """
    resid, r, log_sigma, inv_var = cache
    _check_shape("gaussian_learned_nll_backward", "dnll", dnll, resid.shape[:-1])
    dnll = dnll[..., None]
    dmean = dnll * (-resid) * inv_var
    dlog_sigma = dnll * (1 - resid * resid * inv_var)
    dr = dlog_sigma * np.exp(r - log_sigma)
    return dmean, dr
