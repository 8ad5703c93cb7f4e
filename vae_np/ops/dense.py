"""The affine map y = x W + b and its chain rule."""
from __future__ import annotations

import numpy as np

from .._validate import check_op_scalar as _check_scalar
from .._validate import check_op_shape as _check_shape


# --------------------------------------------------------------------------- dense layer
def dense_forward(x, W, b):
    """Affine map y = x @ W + b.

    Parameters
    ----------
    x : (B, n_in)  W : (n_in, n_out)  b : (n_out,)

    Returns
    -------
    y : (B, n_out)
    cache : (x, W)
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
    dy : (B, n_out)
    cache : from dense_forward
    out_dW, out_db : optional arrays of W's / b's shape to write dW, db into
    need_dx : skip dx (returned as None) for the first layer, whose input is data

    Returns
    -------
    dx : (B, n_in) or None
    dW : (n_in, n_out)
    db : (n_out,)
    """
    x, W = cache
    _check_shape("dense_backward", "dy", dy, (x.shape[0], W.shape[1]))
    dW = np.matmul(x.T, dy, out=out_dW)
    db = np.sum(dy, axis=0, out=out_db)
    dx = dy @ W.T if need_dx else None
    return dx, dW, db
