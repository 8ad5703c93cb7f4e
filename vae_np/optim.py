"""Optimizers that update a flat parameter vector in place from a flat gradient vector.

The updates, with g the gradient, t the number of the step (1 for the first) and every operation
elementwise:

    SGD        theta <- theta - lr g
    Momentum   v <- beta v + g;         theta <- theta - lr v
    Adagrad    G <- G + g^2;            theta <- theta - lr g / (sqrt(G) + eps)
    Adam       m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
               theta <- theta - lr m_hat / (sqrt(v_hat) + eps),
               m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t)

Each is written out as a plain function at the top of this module, before the classes
(``sgd_reference``, ``momentum_reference``, ``adagrad_reference``, ``adam_reference``): the new
values from the old, nothing mutated, for a reader to hold against the maths. The classes are
tested against them: SGD, Momentum and Adagrad bit for bit, Adam's moments bit for bit and its
parameters to a few roundings per step, since its step folds the bias corrections into two
scalars. Training uses the classes only.

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
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ._validate import check_int, check_op_shape, check_positive


# --------------------------------------------------------------------------- the formulas
# Each update as the maths writes it: new values from old, nothing mutated. The classes below
# compute the same in place and in blocks; training uses the classes only.
def sgd_reference(theta, g, lr):
    """SGD's update as a formula: returns theta - lr g (nothing is mutated).

    Parameters
    ----------
    theta, g : (P,) arrays
    lr : float

    Returns
    -------
    theta_new : (P,)
    """
    _check_like("sgd_reference", theta, g=g)
    return theta - lr * g


def momentum_reference(theta, g, v, lr, beta):
    """Heavy-ball momentum's update as a formula (nothing is mutated).

        v_new = beta v + g;   theta_new = theta - lr v_new

    Parameters
    ----------
    theta, g, v : (P,) arrays (v starts at 0)
    lr, beta : float

    Returns
    -------
    theta_new, v_new : (P,)
    """
    _check_like("momentum_reference", theta, g=g, v=v)
    v = beta * v + g
    return theta - lr * v, v


def adagrad_reference(theta, g, G, lr, eps):
    """Adagrad's update as a formula (nothing is mutated).

        G_new = G + g^2;   theta_new = theta - lr (g / (sqrt(G_new) + eps))

    (the parentheses are the order in which ``Adagrad`` rounds, so the two agree bit for bit)

    Parameters
    ----------
    theta, g, G : (P,) arrays (G starts at 0)
    lr, eps : float

    Returns
    -------
    theta_new, G_new : (P,)
    """
    _check_like("adagrad_reference", theta, g=g, G=G)
    G = G + g ** 2
    return theta - lr * (g / (np.sqrt(G) + eps)), G


def adam_reference(theta, g, m, v, t, lr, betas, eps):
    """Adam's update as a formula, step number t = 1, 2, ... (nothing is mutated).

        m_new = b1 m + (1 - b1) g;   v_new = b2 v + (1 - b2) g^2
        theta_new = theta - lr m_hat / (sqrt(v_hat) + eps),
        m_hat = m_new / (1 - b1^t),  v_hat = v_new / (1 - b2^t)

    Parameters
    ----------
    theta, g, m, v : (P,) arrays (m and v start at 0)
    t : int >= 1
    lr : float
    betas : (b1, b2)
    eps : float

    Returns
    -------
    theta_new, m_new, v_new : (P,)
    """
    _check_like("adam_reference", theta, g=g, m=m, v=v)
    t = check_int("adam_reference: t", t, minimum=1)
    b1, b2 = betas
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g ** 2
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def _check_like(where, theta, **arrays):
    """ValueError unless every array has theta's shape (a reference's elementwise formula would
    broadcast a wrong shape silently)."""
    for name, a in arrays.items():
        check_op_shape(where, name, a, np.shape(theta))


# --------------------------------------------------------------------------- the optimizers
BLOCK_ELEMENTS = 1 << 16
"""A step updates the parameters in blocks of this many numbers (256 KB in float32)."""


def parts(size, n):
    """[(start, stop)] of ``n`` contiguous parts that cover range(size) once, without overlap,
    in order, their lengths differing by at most one: the parts of a vector that ``n`` threads
    update (``Optimizer.step(workers=...)``)."""
    return [(i * size // n, (i + 1) * size // n) for i in range(n)]


class Optimizer:
    """Base class: hyperparameters, lazily allocated buffers, state save and restore."""

    hyperparameters: tuple = ("lr",)
    buffers: tuple = ()

    def __init__(self, lr):
        self.lr = check_positive("lr", lr)
        self.t = 0          # number of steps taken
        self.state = {}     # buffer name -> array of the flat vector's shape

    def _check(self, flat, grad_flat):
        if not (isinstance(flat, np.ndarray) and isinstance(grad_flat, np.ndarray)):
            raise ValueError("flat and grad_flat must be NumPy arrays")
        if flat.shape != grad_flat.shape or flat.ndim != 1:
            raise ValueError(f"flat and grad_flat must be 1-D of one shape, got {flat.shape} "
                             f"and {grad_flat.shape}")
        if flat.size == 0:
            raise ValueError("flat must not be empty (a vector of at least one parameter)")
        if flat.dtype.type not in (np.float32, np.float64) or not flat.flags.writeable:
            raise ValueError(f"flat must be a writeable float32 or float64 vector (it is updated "
                             f"in place), got dtype {flat.dtype}")
        if grad_flat.dtype != flat.dtype:
            raise ValueError(f"grad_flat must have flat's dtype {flat.dtype}, got {grad_flat.dtype}")
        if not self.state:
            self.state = {name: np.zeros_like(flat) for name in self.buffers + ("work",)}
        elif self.state["work"].shape != flat.shape or self.state["work"].dtype != flat.dtype:
            raise ValueError(f"this optimizer holds state for {self.state['work'].size} "
                             f"{self.state['work'].dtype} parameters, got flat of {flat.size} "
                             f"{flat.dtype}")

    def step(self, flat, grad_flat, workers=None, before=None):
        """Update ``flat`` in place from ``grad_flat`` (both 1-D, one shape) by the subclass's
        formula (its ``*_reference`` function), and its buffers with it.

        Computed in blocks of ``BLOCK_ELEMENTS`` numbers, each block through all of the update's
        passes before the next, because a vector of the model's size does not fit in the core's
        cache and each pass would otherwise go to memory.

        Parameters
        ----------
        flat, grad_flat : (P,) float32 or float64 vectors of one dtype
        workers : None (this thread, block after block), or a pool with ``n`` threads and
            ``map(tasks)`` (``vae_np.training.threads.Workers``): the vector is cut into ``n``
            contiguous parts of P / n numbers (``parts``) and each worker updates one part,
            block by block. Every element goes through the same arithmetic either way (the
            update is elementwise and its scalars are computed once, here), so the result is
            bit for bit the one-thread step's.
        before : None, or f(block) called with each block (a slice of ``flat``) just before that
            block is updated, on the thread that updates it (``fit`` sums the threads' shares of
            the gradient into ``grad_flat[block]`` there, while the block is in that core's
            cache).
        """
        self._check(flat, grad_flat)
        self.t += 1
        if workers is None:
            self._update_range(flat, grad_flat, 0, flat.size, before)
            return
        bounds = parts(flat.size, workers.n)
        workers.map([lambda start=start, stop=stop: self._update_range(flat, grad_flat, start,
                                                                       stop, before)
                     for start, stop in bounds])

    def _update_range(self, flat, grad_flat, start, stop, before=None):
        """Update flat[start:stop] block by block (one thread's part of a step)."""
        # An update is a dozen passes over vectors of the model's size (1.7 MB each for 424k
        # float32 parameters). Done block by block, each block stays in the core's cache from its
        # first pass to its last; the arithmetic, element by element, is the same.
        for first in range(start, stop, BLOCK_ELEMENTS):
            block = slice(first, min(first + BLOCK_ELEMENTS, stop))
            if before is not None:
                before(block)
            self._update(flat[block], grad_flat[block],
                         {name: buffer[block] for name, buffer in self.state.items()})

    def _update(self, flat, g, buf):
        """Update ``flat`` from ``g`` with the buffers in ``buf``; ``buf["work"]`` is scratch
        space."""
        raise NotImplementedError

    def spawn(self):
        """A fresh optimizer with the same hyperparameters and no state."""
        return type(self)(**{name: getattr(self, name) for name in self.hyperparameters})

    def state_dict(self) -> dict:
        """Hyperparameters, step count and copies of the moment buffers (arrays and numbers)."""
        state = {name: getattr(self, name) for name in self.hyperparameters}
        state["t"] = self.t
        state.update({name: self.state[name].copy() for name in self.buffers if name in self.state})
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned (buffers are copied)."""
        if not isinstance(state, Mapping):
            raise ValueError(f"state must be a dict as returned by state_dict(), got "
                             f"{type(state).__name__}")
        missing = [n for n in self.hyperparameters + ("t",) if n not in state]
        if missing:
            raise ValueError(f"optimizer state is missing {missing}")
        hyper = {}
        for name in self.hyperparameters:
            try:
                value = np.asarray(state[name], dtype=float)
            except (TypeError, ValueError):
                raise ValueError(f"optimizer state {name} must be numeric, got "
                                 f"{state[name]!r}") from None
            hyper[name] = tuple(value.tolist()) if value.ndim else float(value)
        type(self)(**hyper)     # the constructor's checks: a stored lr = -1 or beta = 2 is refused
        t = np.asarray(state["t"])
        if t.ndim or not np.issubdtype(t.dtype, np.integer) or t < 0:
            raise ValueError(f"optimizer state t must be a step count >= 0, got {state['t']!r}")
        buffers = {}
        if int(t) > 0 and self.buffers:
            present = [n for n in self.buffers if n in state]
            if len(present) != len(self.buffers):
                raise ValueError(f"optimizer state is missing buffers "
                                 f"{sorted(set(self.buffers) - set(present))}")
            buffers = {n: np.array(state[n]) for n in self.buffers}
            first = buffers[self.buffers[0]]
            for n, buffer in buffers.items():
                # a step slices every buffer alike: mismatched ones would fail deep in NumPy
                if (buffer.ndim != 1 or buffer.shape != first.shape or buffer.dtype != first.dtype
                        or buffer.dtype.type not in (np.float32, np.float64)):
                    raise ValueError(f"optimizer state buffer {n} must be a float32 or float64 "
                                     f"vector like {self.buffers[0]} ({first.shape}, "
                                     f"{first.dtype}), got {buffer.shape}, {buffer.dtype}")
            buffers["work"] = np.zeros_like(first)
        # checked: only now does the optimizer change
        for name, value in hyper.items():
            setattr(self, name, value)
        self.t = int(t)
        self.state = buffers

    def __repr__(self):
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.hyperparameters)
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """theta <- theta - lr g (the update of the derivation; ``sgd_reference``).

    Computed in place, in blocks of ``BLOCK_ELEMENTS`` numbers (``Optimizer.step``): g lr, then
    theta minus that, per element the reference's arithmetic.
    """

    def _update(self, flat, g, buf):
        work = buf["work"]
        np.multiply(g, self.lr, out=work)
        flat -= work


class Momentum(Optimizer):
    """Heavy-ball momentum: v <- beta v + g;  theta <- theta - lr v  (``momentum_reference``).

    Computed in place, in blocks of ``BLOCK_ELEMENTS`` numbers (``Optimizer.step``), per element
    the reference's arithmetic.
    """

    hyperparameters = ("lr", "beta")
    buffers = ("v",)

    def __init__(self, lr, beta=0.9):
        super().__init__(lr)
        self.beta = _check_beta("beta", beta)

    def _update(self, flat, g, buf):
        v, work = buf["v"], buf["work"]
        v *= self.beta
        v += g
        np.multiply(v, self.lr, out=work)
        flat -= work


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011), as used by Kingma & Welling 2013  (``adagrad_reference``).

    G <- G + g^2;  theta <- theta - lr g / (sqrt(G) + eps)

    Computed in place, in blocks of ``BLOCK_ELEMENTS`` numbers (``Optimizer.step``), per element
    the reference's arithmetic.
    """

    hyperparameters = ("lr", "eps")
    buffers = ("G",)

    def __init__(self, lr=0.01, eps=1e-8):
        super().__init__(lr)
        self.eps = check_positive("eps", eps)

    def _update(self, flat, g, buf):
        G, work = buf["G"], buf["work"]
        np.multiply(g, g, out=work)
        G += work
        np.sqrt(G, out=work)
        work += self.eps
        np.divide(g, work, out=work)
        work *= self.lr
        flat -= work


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015)  (``adam_reference``).

    m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
    theta <- theta - lr m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)

    Computed in place, in blocks of ``BLOCK_ELEMENTS`` numbers (``Optimizer.step``). The moments
    are the reference's arithmetic per element; the bias corrections are folded into two scalars
    (below), which moves a few roundings of the parameter update.
    """

    hyperparameters = ("lr", "betas", "eps")
    buffers = ("m", "v")

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_check_beta("betas[0]", betas[0]), _check_beta("betas[1]", betas[1]))
        self.eps = check_positive("eps", eps)

    def _update(self, flat, g, buf):
        b1, b2 = self.betas
        m, v, work = buf["m"], buf["v"], buf["work"]
        # m <- b1 m + (1 - b1) g as written, in place. (The shorter m += (1 - b1)(g - m) cancels
        # when the new average is much smaller than the old, i.e. for small betas: with b2 = 0 it
        # left v with the rounding error of the previous g^2, 1e-5 of the step for g: 1 -> 1e-6.)
        m *= b1
        np.multiply(g, 1 - b1, out=work)
        m += work
        v *= b2
        np.multiply(g, g, out=work)
        work *= 1 - b2
        v += work
        # The bias corrections are scalars: fold sqrt(1 - b2^t) into eps and the step size,
        # theta -= lr sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps sqrt(1-b2^t)), the same update.
        # math.sqrt, not np.sqrt: a NumPy float64 scalar would make the float32 in-place ops below
        # compute in float64 and cast back, about 7x slower than with a Python float.
        c2 = math.sqrt(1 - b2 ** self.t)
        step = self.lr * c2 / (1 - b1 ** self.t)
        np.sqrt(v, out=work)
        work += self.eps * c2
        np.divide(m, work, out=work)
        work *= step
        flat -= work


def _check_beta(name, beta):
    beta = check_positive(name, beta, allow_zero=True)
    if beta >= 1:
        raise ValueError(f"{name} must be in [0, 1), got {beta}")
    return beta


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adagrad": Adagrad, "adam": Adam}
