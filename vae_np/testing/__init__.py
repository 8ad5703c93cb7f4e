"""Tools for testing hand-written gradients, for the library's own tests and for its users.

* ``assert_backward(forward, backward, *inputs)``: a forward/backward pair of the ops convention
  against central differences and the complex step in float64, with a message that says which
  input and coordinate are wrong and how ("your gradient is 2.000 x the true one", "the
  transpose of the true one"), or which input got no gradient; ``constants=["x"]`` names the
  inputs (data, noise) that get none.
* ``vae_np.testing.strategies``: hypothesis strategies for arrays, dense-layer shapes and whole
  VAE architectures (importing it needs hypothesis, the ``test`` extra; this package does not).
* ``vae_np.testing.numerical``: central differences, complex steps and the closeness assertions
  built on them; ``snapshot`` / ``assert_unchanged`` to show that a call mutated nothing.

Example::

    import numpy as np
    from vae_np import ops
    from vae_np.testing import assert_backward

    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    assert_backward(ops.tanh_forward, ops.tanh_backward, x)     # passes silently
"""
from .backward import BackwardMismatch, assert_backward
from .numerical import assert_unchanged, snapshot

__all__ = ["assert_backward", "BackwardMismatch", "snapshot", "assert_unchanged"]
