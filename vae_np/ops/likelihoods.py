"""Decoder likelihoods -ln p(x|z): Bernoulli and continuous Bernoulli on logits, Gaussian with fixed
or learned sigma."""
from __future__ import annotations

import math

import numpy as np

from .._validate import check_op_scalar as _check_scalar
from .._validate import check_op_shape as _check_shape

from ..numerics import LN_2PI
from .activations import sigmoid, softplus


# --------------------------------------------------------------------------- likelihoods
# The Bernoulli term is written twice: first as the formula, one NumPy line each way (the
# reference), then as the cache-blocked kernels the model runs. The two agree bit for bit.
def bernoulli_nll_reference(logits, x):
    """-ln p(x | z) for a Bernoulli decoder on logits l, per example: the formula in one line.

        -ln p = sum_d [softplus(l_d) - x_d l_d],   softplus(l) = ln(1 + e^l)

    This is the binary cross-entropy -[x ln s + (1 - x) ln(1 - s)] of x with s = sigmoid(l),
    rewritten on the logits (ln s = l - softplus(l), ln(1 - s) = -softplus(l)), so that log(0) is
    never formed. It holds for any real l and for grey levels x in [0, 1], not only binary x.
    softplus is ``vae_np.ops.softplus``, max(l, 0) + ln(1 + e^-|l|), which never overflows.

    ``bernoulli_nll_forward`` computes the same thing in cache-sized blocks and is tested against
    this line; it also falls back to it for inputs its blocks do not take (complex, integer).

    Parameters
    ----------
    logits : (..., B, D)
    x : (B, D) (broadcast over leading sample axes)

    Returns
    -------
    nll : (..., B), in NumPy's promoted dtype of logits and x
    """
    _check_logits("bernoulli_nll_reference", logits)
    _check_shape("bernoulli_nll_reference", "x", x, logits.shape[-2:])
    return np.sum(softplus(logits) - x * logits, axis=-1)


def bernoulli_nll_backward_reference(dnll, logits, x):
    """The gradient of ``bernoulli_nll_reference``, in one line.

        dlogits = dnll (sigmoid(l) - x),   sigmoid(l) = 1 / (1 + e^-l)

    since d softplus(l) / dl = sigmoid(l); each sample's dnll multiplies its D pixels. sigmoid is
    ``vae_np.ops.sigmoid`` (e^-l overflowing to inf gives the correct 0, silently).

    Parameters
    ----------
    dnll : (..., B)
    logits : (..., B, D)
    x : (B, D)

    Returns
    -------
    dlogits : (..., B, D), in NumPy's promoted dtype of dnll, logits and x
    """
    _check_logits("bernoulli_nll_backward_reference", logits)
    _check_shape("bernoulli_nll_backward_reference", "x", x, logits.shape[-2:])
    _check_shape("bernoulli_nll_backward_reference", "dnll", dnll, logits.shape[:-1])
    return dnll[..., None] * (sigmoid(logits) - x)


# The Bernoulli term is the largest elementwise job of an IWAE step: K x B x D logits (3 MB at
# K = 50, B = 20, D = 784), each pass of a ufunc over them memory-bound. Cut along the sample axis
# into blocks that stay in the core's cache, the passes over a block (nine in the forward, six in
# the backward) after the first cost little more than in-cache arithmetic, and the work arrays are
# allocated once per call, not once per pass.
BLOCK_ELEMENTS = 1 << 16
"""The elementwise Bernoulli ops work on blocks of about this many numbers (256 KB in float32)."""


def _sample_blocks(shape):
    """Slices of the leading axis of a (S, B, D) array, each about BLOCK_ELEMENTS numbers (at
    least one sample), so that x (B, D) lines up with every block; and the block's length."""
    step = max(1, BLOCK_ELEMENTS // max(shape[1] * shape[2], 1))
    return [slice(i, i + step) for i in range(0, shape[0], step)], min(step, shape[0])


def _check_logits(where, logits):
    """ValueError unless logits is an array of shape (..., B, D): the blocks cut its leading
    axes."""
    if not isinstance(logits, np.ndarray) or logits.ndim < 2:
        raise ValueError(f"{where}: logits must be an array of shape (..., B, D), got "
                         f"{type(logits).__name__} of shape {np.shape(logits)}")


def _as_samples(a):
    """(..., B, D) as (S, B, D), S the product of the leading axes (1 for a plain (B, D))."""
    return a.reshape((int(np.prod(a.shape[:-2])),) + a.shape[-2:])


def bernoulli_nll_forward(logits, x):
    """-ln p(x | z) for a Bernoulli decoder on logits l, per example, summed over pixels.

        -ln p = sum_d [softplus(l_d) - x_d l_d]          (``bernoulli_nll_reference``)

    which equals binary cross-entropy of x with sigmoid(l) without ever forming log(0); valid for
    any real l and for grey levels x in [0, 1] (not only binary x).

    Computed in blocks of about ``BLOCK_ELEMENTS`` numbers along the sample axes, because the
    K x B x D logits of an IWAE step do not fit in the core's cache and each of the nine passes
    of a ufunc over them would otherwise go to memory. Within a block softplus is
    ln(1 + e^-|l|) + max(l, 0), in two work arrays of one block: per element the arithmetic of
    the reference, so the values are the reference's bit for bit when x has the logits' dtype
    or is bool or uint8. The result keeps the logits' float dtype (a float64 x does not promote
    float32 logits). Complex input (the complex step) and integer logits take the reference line
    itself.

    Parameters
    ----------
    logits : (..., B, D)
    x : (B, D) (broadcast over leading sample axes)

    Returns
    -------
    nll : (..., B)
    cache : (logits, x)
    """
    _check_logits("bernoulli_nll_forward", logits)
    _check_shape("bernoulli_nll_forward", "x", x, logits.shape[-2:])
    x = np.asarray(x)
    if logits.dtype.kind != "f" or np.iscomplexobj(x):
        # complex-step checks (the analytic form, no abs or max), integer logits, complex x
        return bernoulli_nll_reference(logits, x), (logits, x)
    samples = _as_samples(logits)
    nll = np.empty(samples.shape[:-1], dtype=logits.dtype)
    blocks, block_len = _sample_blocks(samples.shape)
    t = np.empty_like(samples[:block_len])         # two work arrays of one block, reused
    u = np.empty_like(t)
    for rows in blocks:
        l = samples[rows]
        t_, u_ = t[:len(l)], u[:len(l)]
        # softplus(l) - x l = ln(1 + e^-|l|) + max(l, 0) - x l
        np.abs(l, out=t_)
        np.negative(t_, out=t_)
        np.exp(t_, out=t_)
        np.log1p(t_, out=t_)                # ln(1 + e^-|l|): never log(0), never overflows
        np.maximum(l, 0.0, out=u_)
        t_ += u_
        np.multiply(l, x, out=u_)           # x (B, D) broadcasts over the block's samples
        t_ -= u_
        np.sum(t_, axis=-1, out=nll[rows])
    return nll.reshape(logits.shape[:-1]), (logits, x)


def bernoulli_nll_backward(dnll, cache):
    """dlogits = dnll (sigmoid(l) - x)          (``bernoulli_nll_backward_reference``)

    Computed in blocks of about ``BLOCK_ELEMENTS`` numbers along the sample axes, for the reason
    given in ``bernoulli_nll_forward``, in place in the output array: sigmoid(l) as 1 / (1 + e^-l),
    then - x, then * dnll, per element the reference's arithmetic, so the values are its bit for
    bit. Complex or integer logits, and an x or dnll whose dtype would promote the logits', take
    the reference line itself (and its promoted dtype).

    Parameters
    ----------
    dnll : (..., B)
    cache : from ``bernoulli_nll_forward``

    Returns
    -------
    dlogits : (..., B, D)
    """
    logits, x = cache
    _check_shape("bernoulli_nll_backward", "dnll", dnll, logits.shape[:-1])
    if logits.dtype.kind != "f" or np.result_type(logits, x, dnll) != logits.dtype:
        # complex or integer logits, or x or dnll promoting them: the formula, NumPy's promotion
        return bernoulli_nll_backward_reference(dnll, logits, x)
    # C order for the blocks of a strided view too (no copy for the model's C-ordered logits):
    # NumPy 2.4's np.negative reads its input as if contiguous when input and output are both
    # strided by 4 float32 (8 float64) elements, as the blocks of an empty_like of a transposed
    # view of logits can be.
    samples = np.ascontiguousarray(_as_samples(logits))
    dnll_samples = dnll.reshape(samples.shape[:-1])
    dlogits = np.empty_like(samples)
    for rows in _sample_blocks(samples.shape)[0]:
        d = dlogits[rows]
        # sigmoid(l) = 1 / (1 + e^-l), in place; e^-l overflowing to inf gives the correct 0
        np.negative(samples[rows], out=d)
        with np.errstate(over="ignore"):
            np.exp(d, out=d)
        d += 1
        np.reciprocal(d, out=d)
        d -= x
        d *= dnll_samples[rows, :, None]
    return dlogits.reshape(logits.shape)


def gaussian_nll_forward(mean, x, sigma=1.0):
    """-ln N(x; mean, sigma^2 I) per example, with a fixed scalar sigma > 0.

    -ln p = 1/2 sum_d (x_d - mean_d)^2 / sigma^2 + D ln sigma + D/2 ln 2 pi
    (the constant is kept so that the ELBO is a true bound on ln p(x)).

    Parameters
    ----------
    mean : (..., B, D)
    x : (B, D)
    sigma : float

    Returns
    -------
    nll : (..., B)
    cache : (mean, x, sigma)
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
    mean, r : (..., B, D)
    x : (B, D)
    sigma_min : float >= 0

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


# --------------------------------------------------------------------------- continuous Bernoulli
def _series_t(y, terms=9):
    """T(y) = sum_{k=1}^{terms} y^(k-1) / (2k+1)!, so that sinh(l) = l (1 + l^2 T(l^2)).

    For |y| <= 1 the first omitted term is below 1/21! = 2e-20 of T(0) = 1/6."""
    out = np.zeros_like(y)
    fact = [1.0 / math.factorial(2 * k + 1) for k in range(1, terms + 1)]   # Python floats
    for c in fact[::-1]:                      # Horner
        out = out * y + c
    return out


def continuous_bernoulli_log_normaliser(logits):
    """ln C(l) of the continuous Bernoulli with logits l (lambda = sigmoid(l)), elementwise.

    C(lambda) = 2 artanh(1 - 2 lambda) / (1 - 2 lambda) = l / tanh(l/2)  (C = 2 at l = 0), the
    constant that makes C lambda^x (1 - lambda)^(1-x) a density on [0, 1]. It is even in l; with
    s = l or -l, whichever has a non-negative real part (|l| for real l):

        |l| <  1:  ln C = ln 2 + ln cosh(l/2) - ln(sinh(l/2) / (l/2))
                        = ln 2 + log1p(2 sinh(l/4)^2) - log1p(u^2 T(u^2)),  u = l/2
                   (no 0/0 at l = 0 and no cancellation near it; T is the series of ``_series_t``)
        |l| >= 1:  ln C = ln s + log1p(e^-s) - log1p(-e^-s)

    Both forms are analytic, so a complex step passes through them.
    """
    logits = np.asarray(logits)
    s = np.where(logits.real < 0, -logits, logits)
    small = np.abs(logits.real) < 1.0
    u = np.where(small, s, 1.0) / 2             # only small values reach the series
    q = np.sinh(u / 2)
    near = math.log(2.0) + np.log1p(2 * q * q) - np.log1p(u * u * _series_t(u * u))
    big = np.where(small, 2.0, s)
    e = np.exp(-big)
    far = np.log(big) + np.log1p(e) - np.log1p(-e)
    return np.where(small, near, far)


def continuous_bernoulli_log_normaliser_grad(logits):
    """d ln C / dl = 1/l - 1/sinh(l) (odd, 0 at l = 0), elementwise.

        |l| <  1:  l T(l^2) / (1 + l^2 T(l^2))     (from sinh l = l (1 + l^2 T(l^2)))
        |l| >= 1:  (1/s - 2 e^-s / (1 - e^-2s)) * sign,  s as in the log-normaliser
    """
    logits = np.asarray(logits)
    negative = logits.real < 0
    s = np.where(negative, -logits, logits)
    small = np.abs(logits.real) < 1.0
    l_small = np.where(small, logits, 0.0)
    t = _series_t(l_small * l_small)
    near = l_small * t / (1 + l_small * l_small * t)
    big = np.where(small, 2.0, s)
    e = np.exp(-big)
    far = 1 / big - 2 * e / (1 - e * e)
    far = np.where(negative, -far, far)
    return np.where(small, near, far)


def continuous_bernoulli_nll_forward(logits, x):
    """-ln p(x | z) for a continuous Bernoulli decoder on logits l, per example, summed over pixels.

    -ln p = sum_d [softplus(l_d) - x_d l_d - ln C(l_d)]
    the Bernoulli cross-entropy minus the log-normaliser: a proper density on [0, 1]^D for grey
    levels x (Loaiza-Ganem & Cunningham 2019). Since C >= 2, it is at least D ln 2 below the
    Bernoulli NLL of the same logits.

    Parameters
    ----------
    logits : (..., B, D)
    x : (B, D) (broadcast over leading sample axes)

    Returns
    -------
    nll : (..., B)
    cache : (logits, x)
    """
    _check_logits("continuous_bernoulli_nll_forward", logits)
    _check_shape("continuous_bernoulli_nll_forward", "x", x, logits.shape[-2:])
    bernoulli, _ = bernoulli_nll_forward(logits, x)
    log_c = continuous_bernoulli_log_normaliser(logits)
    return bernoulli - np.sum(log_c, axis=-1), (logits, x)


def continuous_bernoulli_nll_backward(dnll, cache):
    """dlogits = dnll * (sigmoid(l) - x - (1/l - 1/sinh l))."""
    logits, x = cache
    _check_shape("continuous_bernoulli_nll_backward", "dnll", dnll, logits.shape[:-1])
    dlog_c = continuous_bernoulli_log_normaliser_grad(logits)          # 1/l - 1/sinh l
    return dnll[..., None] * (sigmoid(logits) - x - dlog_c)
