"""Both cores for every step: a batch split into one shard per thread (``fit(threads=N)``).

Parallelism at the level of the step, not of the operation. With N threads, one step of ``fit``
on a batch of B examples is:

    inputs = kind.draw(x, rng)              x and every random draw of the step (eps, ...),
                                            on the calling thread, in the one-thread order
    rows_s = shard_rows(B, N)               N contiguous shards of B_s = B/N examples (+-1)
    in parallel, worker s (s = 0 on the calling thread, on the model; s >= 1 on replicas that
    share the model's parameters and own their gradient vector):
        terms_s, outputs_s = kind.run(model_s, inputs[rows_s])      forward and backward of the
                                                                    shard, BLAS on one thread
        n2_s = |g_s|^2                                              the guard's share
    guard: the combined loss and every n2_s finite
    terms = sum_s (B_s / B) terms_s         (in shard order)
    in parallel, worker s on its part of the parameter vector, block by block:
        g = sum_s (B_s / B) g_s             (in shard order: g_0 first, then g_1, ...)
        the optimizer's update of the block

The terms and the gradient the kinds return are means over their examples, so the batch's are
the shards' means weighted by B_s / B. The shards and the weights depend on B and N only, and
each sum runs in shard order whatever thread finishes first, so a step is deterministic for a
given thread count; it equals the one-thread step up to the order in which the terms of the
sums over examples are added (float rounding). The kind's hooks see the whole batch:
``kind.outputs`` is each output concatenated over the shards, in order (a VQ-VAE's z_e and
codes for its EMA step and code counts).

Why the step and not the operation: NumPy runs every ufunc on one core, and OpenBLAS's own
threads spin on the other cores after each matrix product, so an operation split over threads
waits on them. Each worker here runs a whole forward and backward on one core, with BLAS
limited to one thread by threadpoolctl while the epoch runs; NumPy releases the GIL in its
ufuncs and in BLAS, so the shards' elementwise work runs at the same time.
"""
from __future__ import annotations

import os
import queue
import threading

import numpy as np

from .._validate import check_int

MAX_DEFAULT_THREADS = 2
"""The default thread count is the number of usable cores, at most this (module docstring of
``vae_np.training.threads``; docs/benchmarks.md)."""

MIN_SHARDED_ROWS = 128
"""The default splits a step over threads only when it has at least this many rows (examples
times samples per example, the rows of its matrix products). Measured with
benchmarks/bench_fit.py on a quiet 2-core machine (results/benchmarks/bench_fit*.json), two
shards against one thread with BLAS on both cores: steps of 100 rows (IWAE k = 5 and the
two-layer model at batch 20, the planar flow L = 10 at batch 100) took 6-43% longer, the
per-shard Python work and the hand-over costing more than the second core gains; steps of 128
rows and more (the MNIST VAE and the VQ-VAE at batch 128, IWAE k = 50 at batch 20) 3-12% less
(their time over the same PyTorch loop's: 1.045 -> 1.010, 1.044 -> 0.992, 1.045 -> 0.918)."""


def default_threads(rows=None) -> int:
    """The default thread count of a step with ``rows`` rows (None: a large step): the number of
    cores this process may run on, at most ``MAX_DEFAULT_THREADS``; 1 when rows <
    ``MIN_SHARDED_ROWS``."""
    if rows is not None and rows < MIN_SHARDED_ROWS:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:          # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_THREADS))


def check_threads(threads, rows=None) -> int:
    """``threads`` as an int >= 1; None is ``default_threads(rows)``."""
    return default_threads(rows) if threads is None else check_int("threads", threads)


def shard_rows(n, shards):
    """[slice] of ``shards`` contiguous shards covering range(n) in order, each of n // shards
    or n // shards + 1 rows (the longer ones first); fewer shards when n < shards (one row
    each)."""
    shards = max(1, min(shards, n))
    size, extra = divmod(n, shards)
    bounds = np.cumsum([0] + [size + (s < extra) for s in range(shards)])
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def take(inputs, axes, rows):
    """The shard ``rows`` of each array of ``inputs``, along its batch axis (views, no copy)."""
    return tuple(a[(slice(None),) * axis + (rows,)] for a, axis in zip(inputs, axes))


class Workers:
    """A pool of ``n`` threads for the steps of one ``fit``: the calling thread and n - 1
    workers that wait for tasks (blocked, not spinning).

    ``map(tasks)`` runs ``tasks[0]()`` on the calling thread and ``tasks[i]()`` on worker i,
    waits for all of them and returns their results in the order of ``tasks`` (not the order in
    which they finish); the first exception, in that order, is raised once all have ended.
    Use as a context manager (``with Workers(n) as workers:``) so that the threads end.
    """

    def __init__(self, n):
        self.n = check_int("threads", n)
        self._tasks = [queue.SimpleQueue() for _ in range(self.n - 1)]
        self._done = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._serve, args=(q,), daemon=True,
                                          name=f"vae_np-worker-{i + 1}")
                         for i, q in enumerate(self._tasks)]
        for thread in self._threads:
            thread.start()

    def _serve(self, tasks):
        while True:
            item = tasks.get()
            if item is None:
                return
            index, task = item
            try:
                self._done.put((index, task(), None))
            except BaseException as exc:        # handed to the caller of map
                self._done.put((index, None, exc))

    def map(self, tasks):
        """[task() for task in tasks], the tasks run at the same time (at most ``n``)."""
        if not 1 <= len(tasks) <= self.n:
            raise ValueError(f"tasks must be 1 to {self.n} callables, got {len(tasks)}")
        for index, task in enumerate(tasks[1:], 1):
            self._tasks[index - 1].put((index, task))
        results, errors = [None] * len(tasks), [None] * len(tasks)
        try:
            results[0] = tasks[0]()
        except BaseException as exc:
            errors[0] = exc
        for _ in range(len(tasks) - 1):
            index, result, error = self._done.get()
            results[index], errors[index] = result, error
        for error in errors:
            if error is not None:
                raise error
        return results

    def close(self):
        for tasks in self._tasks:
            tasks.put(None)
        for thread in self._threads:
            thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def blas_single_thread():
    """A context manager under which BLAS runs on one thread (threadpoolctl): each worker's
    matrix products stay on its own core."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=1, user_api="blas")


class SerialSteps:
    """One thread: the kind's own ``gradient`` and the optimizer's own step (the code path of
    ``fit`` before threads, call for call)."""
    threads = 1

    def __init__(self, kind):
        self.kind = kind

    def gradient(self, x, rng):
        return self.kind.gradient(x, rng)

    def finite(self, terms):
        """The divergence guard: the loss and |g|^2 are finite (one BLAS dot product)."""
        grad_flat = self.kind.grad_flat
        return bool(np.isfinite(terms[0]) and np.isfinite(np.dot(grad_flat, grad_flat)))

    def step(self, optimizer, part):
        kind = self.kind
        if part is None:
            optimizer.step(kind.flat, kind.grad_flat)
        else:
            optimizer.step(kind.flat[part], kind.grad_flat[part])

    def blas(self):
        """The BLAS setting of the epoch's steps: as the process has it."""
        return _Unchanged()


class _Unchanged:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class ShardedSteps:
    """``threads`` threads: each batch split into shards by the kind (module docstring).

    The calling thread's shard runs on the kind's model, the others on replicas
    (``kind.replica()``), one per worker, made once here. ``step`` sums the shards' gradients
    into the model's ``grad_flat`` (part by part, as each worker reaches a block) just before
    the optimizer updates that block.
    """

    def __init__(self, kind, workers):
        self.kind, self.workers, self.threads = kind, workers, workers.n
        self.models = [kind.model] + [kind.replica() for _ in range(workers.n - 1)]
        self.weights = ()

    def gradient(self, x, rng):
        kind = self.kind
        inputs = kind.draw(x, rng)
        n = inputs[0].shape[kind.batch_axes[0]]
        rows = shard_rows(n, self.threads)
        self.weights = [(r.stop - r.start) / n for r in rows]
        results = self.workers.map([
            lambda model=model, shard=take(inputs, kind.batch_axes, r): self._run(model, shard)
            for model, r in zip(self.models, rows)])
        terms = tuple(sum(w * float(result[0][i]) for w, result in zip(self.weights, results))
                      for i in range(len(results[0][0])))
        outputs = [result[1] for result in results]
        kind.outputs = {key: (outputs[0][key] if len(outputs) == 1 else
                              np.concatenate([out[key] for out in outputs]))
                        for key in outputs[0]}
        self.norms = [result[2] for result in results]
        return terms

    def _run(self, model, inputs):
        """One shard's forward and backward on ``model``, and |g_s|^2 (on the worker's thread,
        whose NumPy error state is its own: the guard, not a warning, reports overflow)."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            terms, outputs = self.kind.run(model, inputs)
            grad = model.grad_flat
            return terms, outputs, np.dot(grad, grad)

    def finite(self, terms):
        """The divergence guard: the batch's loss and every shard's |g_s|^2 finite. (The
        batch's gradient is a convex combination of the shards', so |g| <= max_s |g_s|.)"""
        return bool(np.isfinite(terms[0]) and all(np.isfinite(n2) for n2 in self.norms))

    def step(self, optimizer, part):
        flat, grad = self.kind.flat, self.kind.grad_flat
        part = slice(None) if part is None else part
        shares = [(w, model.grad_flat[part]) for w, model in zip(self.weights, self.models)]
        total = grad[part]

        def combine(block):
            # g = w_0 g_0 + w_1 g_1 + ..., in shard order; g_0 is the model's own grad_flat.
            # Each replica's share is scaled in its own vector (rewritten by its next shard):
            # no temporary array
            g = total[block]
            g *= shares[0][0]
            for w, g_s in shares[1:]:
                share = g_s[block]
                share *= w
                g += share
        optimizer.step(flat[part], total, workers=self.workers, before=combine)

    def blas(self):
        """The BLAS setting of the epoch's steps: one thread per worker."""
        return blas_single_thread()


def steps_for(kind, threads, workers_factory=Workers):
    """(the steps of ``fit`` for ``threads`` threads, the pool or None): ``SerialSteps`` for one
    thread or a kind that cannot split its batch (``kind.can_shard()``), else ``ShardedSteps``
    on a new pool (close it when training ends)."""
    if threads == 1 or not kind.can_shard():
        return SerialSteps(kind), None
    workers = workers_factory(threads)
    try:
        return ShardedSteps(kind, workers), workers
    except BaseException:
        workers.close()
        raise
