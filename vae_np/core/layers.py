"""Layers: dense maps and MLP stacks whose parameters are views into one flat vector.

The model lays every parameter end to end in one contiguous vector ``flat`` and every gradient in
``grad_flat`` of the same layout. A layer holds views (``W``, ``b``, ``dW``, ``db``) into those two
vectors, so an optimizer can update all parameters with a few in-place vector operations, and a
layer's backward pass writes its gradients straight into place. Layers keep no activations between
calls: their intermediates and caches go into the step's trace (``vae_np.core.trace``).
"""
from __future__ import annotations

import numpy as np

from .. import ops


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

    def replica(self) -> "FlatParameters":
        """A store over the same parameters with a gradient vector of its own.

        The replica's ``flat`` and ``params`` are this store's (the same memory: an update of
        one is an update of the other); its ``grad_flat`` is a new zero vector of the same
        layout, and its ``grads`` views into it. Layers built on the replica read the shared
        parameters and write their gradients apart, so several threads can each run a model
        built on a replica (``fit(threads=N)``) without writing into one another's gradients.
        """
        twin = object.__new__(FlatParameters)
        twin.flat, twin.params, twin.slices = self.flat, self.params, self.slices
        twin.grad_flat = np.zeros_like(self.grad_flat)
        twin.grads = {name: twin.grad_flat[sl].reshape(self.grads[name].shape)
                      for name, sl in self.slices.items()}
        return twin


class Dense:
    """y = x @ W + b with W (n_in, n_out) and b (n_out,) viewed from a FlatParameters."""

    def __init__(self, store: FlatParameters, prefix: str):
        self.name = prefix
        self.W, self.b = store.params[prefix + ".W"], store.params[prefix + ".b"]
        self.dW, self.db = store.grads[prefix + ".W"], store.grads[prefix + ".b"]

    def forward(self, x):
        """(y, cache) = (x W + b, (x, W))."""
        return ops.dense_forward(x, self.W, self.b)

    def backward(self, dy, cache, need_dx=True):
        """(dx, dW, db) = (dy W^T, x^T dy, sum_b dy); dx is None when ``need_dx`` is False.

        dW and db are written in place into the model's flat gradient vector (the returned arrays
        are those views), so the optimizer finds every gradient in one contiguous vector.
        """
        return ops.dense_backward(dy, cache, out_dW=self.dW, out_db=self.db, need_dx=need_dx)


class MLP:
    """A stack of Dense layers, each followed by the same activation (possibly no layers at all).

    In a trace, layer l records its pre-activation under ``pre + str(l)`` and its output under
    ``post + str(l)`` (the encoder: a1, h1, a2, h2, ...; the decoder: c1, g1, ...).

    Parameters
    ----------
    layers : list of Dense
    activation : (name, forward, backward), forward(a) -> (h, cache), backward(dh, cache) -> da
    pre, post : the trace's letters for pre-activations and outputs
    input_name : the trace name of the stack's input (x or z)
    """

    def __init__(self, layers, activation, pre, post, input_name):
        self.layers = layers
        self._act_name, self._act_forward, self._act_backward = activation
        self.names = [(f"{pre}{i}", f"{post}{i}") for i in range(1, len(layers) + 1)]
        self.inputs = [input_name] + [h for _, h in self.names[:-1]]
        self.equations = [(f"{a} = {x} W + b   ({layer.name})", f"{h} = {self._act_name}({a})")
                          for layer, (a, h), x in zip(layers, self.names, self.inputs)]

    @property
    def output_name(self):
        """The trace name of the stack's output (its input when there are no layers)."""
        return self.names[-1][1] if self.names else self.inputs[0]

    def grad_equations(self):
        """d<name> -> the backward equation that computes it, for this stack's quantities and
        parameters (the stack's output gets its equation from whoever reads it)."""
        eq = {}
        for i, (layer, (a, h), x) in enumerate(zip(self.layers, self.names, self.inputs)):
            eq[a] = f"d{a} = d{h} * {self._act_name}'({a})"
            eq[layer.name + ".W"] = f"dW = {x}^T d{a}"
            eq[layer.name + ".b"] = f"db = sum_b d{a}"
            if i > 0 or x != "x":
                eq[x] = f"d{x} = d{a} W^T   ({layer.name})"
        return eq

    def forward(self, trace, x):
        """Record every layer's a and h in ``trace``; return the last h (x itself if no layers)."""
        h = x
        for layer, (a_name, h_name), (a_eq, h_eq) in zip(self.layers, self.names, self.equations):
            a, dense_cache = layer.forward(h)
            a = trace.record(a_name, a, a_eq, dense_cache)
            h, act_cache = self._act_forward(a)
            h = trace.record(h_name, h, h_eq, act_cache)
        return h

    def backward(self, trace, dh, need_dx=True):
        """Back through the stack from d(output) = ``dh``; returns d(input) (None if not needed).

        Fills trace.grads for every a, h and parameter of the stack.
        """
        d, caches = trace.grads, trace.caches
        for i in reversed(range(len(self.layers))):
            layer, (a, h) = self.layers[i], self.names[i]
            d[h] = dh
            d[a] = self._act_backward(d[h], caches[h])                  # da = dh * act'(a)
            # dW = x^T da, db = sum_b da (in place, into grad_flat); dx = da W^T goes down a layer
            dx, d[layer.name + ".W"], d[layer.name + ".b"] = layer.backward(
                d[a], caches[a], need_dx=need_dx or i > 0)
            dh = dx
        return dh
