"""The two ops of the MADE prior (vae_np.vq.made): a masked affine map and the categorical -ln p.

* ``masked_dense_forward(x, W, b, mask=M)``: y = x (W * M) + b, where the 0/1 mask M cuts the
  connections that would let an output see inputs it must not depend on. The loss depends on W
  only through W * M, so the gradient of a masked-out weight is exactly 0: dW = (x^T dy) * M.
* ``categorical_nll_forward(logits, codes=c)``: -ln p(c) = -sum_m log_softmax(logits_m)[c_m] for
  M independent categorical positions of K values each; d logits = softmax(logits) - onehot(c).
"""
from __future__ import annotations

import numpy as np

from .._validate import check_op_shape as _check_shape


# --------------------------------------------------------------------------- masked dense
def masked_dense_forward(x, W, b, mask):
    """Masked affine map y = x @ (W * mask) + b.

    Parameters
    ----------
    x : (B, n_in)  W : (n_in, n_out)  b : (n_out,)  mask : (n_in, n_out) of 0 and 1

    Returns
    -------
    y : (B, n_out)
    cache : (x, W * mask, mask)
    """
    if x.ndim != 2 or W.ndim != 2 or x.shape[1] != W.shape[0] or b.shape != (W.shape[1],):
        raise ValueError(f"masked_dense_forward: expected x (B, n_in), W (n_in, n_out), b (n_out,);"
                         f" got x {x.shape}, W {W.shape}, b {b.shape}")
    _check_shape("masked_dense_forward", "mask", mask, W.shape)
    W_masked = W * mask                         # the weights actually used
    y = x @ W_masked + b
    return y, (x, W_masked, mask)


def masked_dense_backward(dy, cache, out_dW=None, out_db=None, need_dx=True):
    """Chain rule of y = x @ (W * mask) + b.

    dx = dy @ (W * mask)^T,   dW = (x^T @ dy) * mask  (d(W * mask)/dW = mask, elementwise),
    db = sum_b dy  (b fans out to every row of the batch).

    Parameters
    ----------
    dy : (B, n_out)
    cache : from masked_dense_forward
    out_dW, out_db : optional arrays of W's / b's shape to write dW, db into
    need_dx : skip dx (returned as None) for the first layer, whose input is data

    Returns
    -------
    dx : (B, n_in) or None
    dW : (n_in, n_out)
    db : (n_out,)
    """
    x, W_masked, mask = cache
    _check_shape("masked_dense_backward", "dy", dy, (x.shape[0], W_masked.shape[1]))
    dW_masked = x.T @ dy                                     # dL/d(W * mask) = x^T dy
    dW = np.multiply(dW_masked, mask, out=out_dW)            # * d(W * mask)/dW = mask
    db = np.sum(dy, axis=0, out=out_db)                      # dL/db = sum_b dy
    dx = dy @ W_masked.T if need_dx else None                # dL/dx = dy (W * mask)^T
    return dx, dW, db


# --------------------------------------------------------------------------- categorical -ln p
def log_softmax(logits):
    """log_softmax over the last axis, shifted by the max so that nothing overflows."""
    shifted = logits - np.max(np.real(logits), axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def categorical_nll_forward(logits, codes):
    """-ln p(codes) of M independent categoricals over K values, per example.

    nll_b = -sum_m log_softmax(logits_bm)[codes_bm] = sum_m (logsumexp_k logits_bmk
    - logits_bm,codes_bm).

    Parameters
    ----------
    logits : (B, M, K)  codes : (B, M) integers in [0, K)

    Returns
    -------
    nll : (B,)
    cache : (softmax probabilities (B, M, K), onehot(codes) (B, M, K))
    """
    if logits.ndim != 3 or np.shape(codes) != logits.shape[:2]:
        raise ValueError(f"categorical_nll_forward: expected logits (B, M, K) and codes (B, M); "
                         f"got logits {logits.shape}, codes {np.shape(codes)}")
    codes = np.asarray(codes)
    K = logits.shape[2]
    if codes.size and (not np.issubdtype(codes.dtype, np.integer) or codes.min() < 0
                       or codes.max() >= K):       # a negative index would wrap silently
        raise ValueError(f"categorical_nll_forward: codes must be integers in [0, {K}), got "
                         f"dtype {codes.dtype}" + (f", values {codes.min()}..{codes.max()}"
                                                   if codes.dtype.kind in "iub" else ""))
    log_p = log_softmax(logits)
    onehot = np.zeros(logits.shape, dtype=np.real(logits).dtype)
    np.put_along_axis(onehot, codes[..., None], 1.0, axis=-1)
    nll = -np.sum(log_p * onehot, axis=(1, 2))
    return nll, (np.exp(log_p), onehot)


def categorical_nll_backward(dnll, cache):
    """d logits of nll = -sum_m log_softmax(logits_m)[c_m].

    d nll_b / d logits_bmk = softmax(logits_bm)_k - [k = c_bm]  (d logsumexp = softmax, d of the
    picked logit = onehot), times the upstream dnll_b.

    Parameters
    ----------
    dnll : (B,)
    cache : from categorical_nll_forward

    Returns
    -------
    dlogits : (B, M, K)
    """
    probs, onehot = cache
    _check_shape("categorical_nll_backward", "dnll", dnll, probs.shape[:1])
    dnll_dlogits = probs - onehot                            # d nll_b / d logits = softmax - onehot
    return dnll[:, None, None] * dnll_dlogits                # * upstream dnll_b
