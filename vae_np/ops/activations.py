"""Elementwise activations and the two stable scalar helpers (softplus, sigmoid) every op uses.

Each activation is a ``name_forward(x) -> (y, cache)`` / ``name_backward(dy, cache) -> dx`` pair.
"""
from __future__ import annotations

import numpy as np

from .._validate import check_op_scalar as _check_scalar
from .._validate import check_op_shape as _check_shape


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
    if not (isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.ndim):   # 0-d: scalars
        with np.errstate(over="ignore"):
            return 1 / (1 + np.exp(-x))
    # The same arithmetic in one work array: on the K x B x D logits of an IWAE step each fresh
    # temporary costs as much as the arithmetic itself.
    y = np.negative(x)
    with np.errstate(over="ignore"):
        np.exp(y, out=y)
    y += 1
    return np.reciprocal(y, out=y)


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
    if not np.ndim(y) or np.result_type(y, dy) != np.result_type(y):
        return dy * (1 - y * y)    # 0-d, or a dy (complex, wider) the product cannot be kept in
    dx = y * y
    np.subtract(1, dx, out=dx)
    dx *= dy                       # in place: one temporary instead of three
    return dx


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
