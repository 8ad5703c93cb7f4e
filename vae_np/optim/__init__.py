"""Optimizers that update a flat parameter vector in place from a flat gradient vector.

The updates, with g the gradient, t the number of the step (1 for the first) and every operation
elementwise:

    SGD        theta <- theta - lr g
    Momentum   v <- beta v + g;         theta <- theta - lr v
    Adagrad    G <- G + g^2;            theta <- theta - lr g / (sqrt(G) + eps)
    Adam       m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
               theta <- theta - lr m_hat / (sqrt(v_hat) + eps),
               m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t)

Each is written out as a plain function in ``vae_np.optim.reference``, the first page of this
package (``sgd_reference``, ``momentum_reference``, ``adagrad_reference``,
``adam_reference``): the new values from the old, nothing mutated, for a reader to hold against the maths. The classes are
tested against them: SGD, Momentum and Adagrad bit for bit, Adam's moments bit for bit and its
parameters to a few roundings per step, since its step folds the bias corrections into two
scalars. Training uses the classes only: the step's blocks and state are
``vae_np.optim.base``, the four update rules ``vae_np.optim.rules``.

Every optimizer has ``step(flat, grad_flat)``, ``state_dict()`` (a dict of NumPy arrays and numbers,
storable with ``np.savez`` and loadable without pickle) and ``load_state_dict(state)``. Moment
buffers are allocated on the first step, with the vector's size and dtype, and all arithmetic is
done in place on them (``out=``), so a step makes no temporaries the size of the model.

A step runs its ufuncs on the calling thread, block by block (``BLOCK_ELEMENTS`` numbers at a
time), so that each block stays in cache through its dozen passes: the IWAE step of
benchmarks/bench_iwae_step.py took 1-8% less time than with whole-vector passes, with bit for bit
the same parameters. Splitting the step across threads halves it in isolation but gained nothing
inside training, where OpenBLAS's worker threads spin on the other cores after each matrix
product: the epoch was 1-4% slower with the split. With the spin cut short by
OPENBLAS_THREAD_TIMEOUT=4 the split Adam took 0.68 instead of 1.1 ms, but waking the workers for
every matrix product cost nearly as much: 2-3% gained on the epoch.
Scalars that enter the in-place arithmetic are Python floats: a NumPy float64 scalar would turn
each float32 pass into a float64 loop with a cast back, several times slower.
"""
from .base import BLOCK_ELEMENTS, Optimizer, parts
from .reference import adagrad_reference, adam_reference, momentum_reference, sgd_reference
from .rules import OPTIMIZERS, SGD, Adagrad, Adam, Momentum

__all__ = ["SGD", "Momentum", "Adagrad", "Adam", "OPTIMIZERS", "Optimizer", "BLOCK_ELEMENTS",
           "parts", "sgd_reference", "momentum_reference", "adagrad_reference", "adam_reference"]
