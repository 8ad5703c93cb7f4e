"""Layers: dense maps and MLP stacks whose parameters are views into one flat vector.

The model lays every parameter end to end in one contiguous vector ``flat`` and every gradient in
``grad_flat`` of the same layout. A layer holds views (``W``, ``b``, ``dW``, ``db``) into those two
vectors, so an optimizer can update all parameters with a few in-place vector operations, and a
layer's backward pass writes its gradients straight into place. Layers keep no activations between
calls: forward returns a cache, backward takes it back.
"""
from __future__ import annotations

import numpy as np

from . import ops


class FlatParameters:
    """Named parameter and gradient arrays that are views into two contiguous vectors.

    Parameters
    ----------
    spec : list of (name, shape), in forward order
    dtype : float32 or float64

    Attributes
    ----------
    flat, grad_flat : (P,) contiguous vectors
    params, grads : dict name -> view of shape ``shape`` into ``flat`` / ``grad_flat``
    slices : dict name -> slice of that parameter in the flat vectors
    """

    def __init__(self, spec, dtype):
        sizes = [int(np.prod(shape)) for _, shape in spec]
        self.flat = np.zeros(sum(sizes), dtype=dtype)
        self.grad_flat = np.zeros(sum(sizes), dtype=dtype)
        self.params, self.grads, self.slices = {}, {}, {}
        start = 0
        for (name, shape), size in zip(spec, sizes):
            sl = slice(start, start + size)
            self.slices[name] = sl
            self.params[name] = self.flat[sl].reshape(shape)
            self.grads[name] = self.grad_flat[sl].reshape(shape)
            start += size


class Dense:
    """y = x @ W + b with W (n_in, n_out) and b (n_out,) viewed from a FlatParameters."""

    def __init__(self, store: FlatParameters, prefix: str):
        self.name = prefix
        self.W, self.b = store.params[prefix + ".W"], store.params[prefix + ".b"]
        self.dW, self.db = store.grads[prefix + ".W"], store.grads[prefix + ".b"]

    def forward(self, x):
        return ops.dense_forward(x, self.W, self.b)

    def backward(self, dy, cache, need_dx=True):
        """Write dW, db into the gradient vector; return dx (or None if not needed)."""
        dx, _, _ = ops.dense_backward(dy, cache, out_dW=self.dW, out_db=self.db, need_dx=need_dx)
        return dx


class MLP:
    """A stack of Dense layers, each followed by the same activation (possibly no layers at all)."""

    def __init__(self, layers: list[Dense], activation: str):
        self.layers = layers
        self.activation = activation
        self._act_forward, self._act_backward = ops.ACTIVATIONS[activation]

    def forward(self, x):
        """Return (h, caches): h is the last hidden activation (x itself if there are no layers)."""
        caches = []
        h = x
        for layer in self.layers:
            a, dense_cache = layer.forward(h)
            h, act_cache = self._act_forward(a)
            caches.append((dense_cache, act_cache))
        return h, caches

    def backward(self, dh, caches, need_dx=True):
        """Back through the stack in reverse; returns dx (None when not needed)."""
        for i in reversed(range(len(self.layers))):
            dense_cache, act_cache = caches[i]
            da = self._act_backward(dh, act_cache)
            dh = self.layers[i].backward(da, dense_cache, need_dx=need_dx or i > 0)
        return dh
