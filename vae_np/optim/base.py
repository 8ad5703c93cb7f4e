"""What every optimizer shares: its hyperparameters, the moment buffers allocated on the first
step, the step run block by block (``BLOCK_ELEMENTS`` numbers at a time, or split over workers'
parts of the vector), and ``state_dict`` / ``load_state_dict``. The update rules themselves are
``vae_np.optim.rules``.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .._validate import check_positive


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
            raise ValueError(f"grad_flat must have flat's dtype {flat.dtype}, got "
                             f"{grad_flat.dtype}")
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


