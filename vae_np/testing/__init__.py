"""Tools for testing hand-written gradients, for the library's own tests and for its users.

* ``assert_backward(forward, backward, *inputs)``: a forward/backward pair of the ops convention
  against central differences and the complex step in float64, with a message that says which
  input and coordinate are wrong and how ("your gradient is 2.000 x the true one", "the
  transpose of the true one"), or which input got no gradient; ``constants=["x"]`` names the
  inputs (data, noise) that get none; ``measure_noise=True`` and ``exposure=`` widen the central
  bound by rounding that the output does not show (see ``vae_np.testing.backward``).
* ``central_difference(f, x, h_rel=1e-5, *, terms=0.0, rows=False) -> (grad, bound)``: the
  finite-difference helper (the package's one implementation, ``vae_np.numerics``). Step rule:
  coordinate i moves by h = h_rel * max(1, |x_i|) either way and the quotient divides by the
  displacement represented, n_i = (f(x + h e_i) - f(x - h e_i)) / (x_i+ - x_i-). Error bound per
  entry: |n(2h) - n(h)| (truncation) + 8 eps (max |f| + terms) / (x_i+ - x_i-) (rounding of f,
  and of the terms it sums). f may return a number (the gradient, x's shape), an array (the
  Jacobian, f.shape + x.shape) or, with ``rows=True``, rows that depend on x's rows alone (one
  Jacobian per row, coordinate j of every row moved at once).
* ``complex_step(f, x, h=1e-20)``: Im f(x + i h e_i) / h, the derivative exact to rounding for
  a complex-analytic f, of shape f.shape + x.shape.
* ``vae_np.testing.strategies``: hypothesis strategies for arrays, dense-layer shapes and whole
  VAE architectures (importing it needs hypothesis, the ``test`` extra; this package does not).
* ``vae_np.testing.numerical``: the closeness assertions built on those derivatives
  (``assert_fd_close``, ``assert_complex_close``) and ``snapshot`` / ``assert_unchanged`` to show
  that a call mutated nothing.

Example::

    import numpy as np
    from vae_np import ops
    from vae_np.testing import assert_backward, central_difference

    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    assert_backward(ops.tanh_forward, ops.tanh_backward, x)     # passes silently
    grad, bound = central_difference(lambda v: float(np.sum(ops.tanh_forward(v)[0])), x)
    assert np.all(np.abs(grad - (1 - np.tanh(x) ** 2)) <= bound)
"""
from .backward import BackwardMismatch, assert_backward
from .numerical import assert_unchanged, central_difference, complex_step, snapshot

__all__ = ["assert_backward", "BackwardMismatch", "central_difference", "complex_step",
           "snapshot", "assert_unchanged"]
