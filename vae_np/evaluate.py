"""Evaluation of a trained VAE: test negative ELBO, the IWAE estimate of -ln p(x), active units.

Noise: the eps of example i (row i of X) is drawn from its own stream
``np.random.default_rng([seed, EVAL_STREAM, i])``, k values at a time. A result therefore does not
depend on how the work is cut into chunks of examples and samples, only on ``seed``, and every
epoch's test loss of a run uses the same noise.

Memory: a forward pass over ``n_pairs`` (sample, example) pairs needs about
``n_pairs * itemsize * (6 D + 3 sum(hidden) + 6 Z)`` bytes of work arrays; chunks are sized so this
stays below ``max_bytes`` (64 MiB by default) whatever k and the number of examples.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ._validate import check_array, check_int, check_positive
from .data import Dataset
from .model import VAE

EVAL_STREAM = 2          # keeps evaluation noise apart from training's default_rng([seed, 1])
BINARIZATION_SEED = 20160101
MAX_BYTES = 64 * 2 ** 20

ElboResult = namedtuple("ElboResult", "loss recon kl per_example")
ElboResult.__doc__ = """Means over the examples (nats per example) and the per-example -ELBO."""


class ExampleNoise:
    """eps for a block of examples; example i draws from ``default_rng([seed, EVAL_STREAM, i])``.

    Parameters
    ----------
    seed : int;  indices : the examples' row numbers in the full data set;  z_dim : int
    dtype : the model's dtype (eps is drawn directly in it)
    """

    def __init__(self, seed, indices, z_dim, dtype):
        self.streams = [np.random.default_rng([seed, EVAL_STREAM, int(i)]) for i in indices]
        self.z_dim, self.dtype = z_dim, dtype

    def draw(self, k):
        """The next k draws of every stream: eps of shape (k, B, z_dim)."""
        return np.stack([s.standard_normal((k, self.z_dim), dtype=self.dtype)
                         for s in self.streams], axis=1)


def pair_bytes(model) -> int:
    """Approximate bytes of work arrays per (sample, example) pair of one forward pass."""
    width = 6 * model.x_dim + 3 * sum(model.hidden) + 6 * model.z_dim
    width += getattr(model.posterior, "work_per_sample", 0)    # a flow's steps and parameters
    return int(width * model.dtype.itemsize)


def plan_chunks(model, n, k, max_bytes=MAX_BYTES):
    """Examples per chunk and samples per chunk so one forward pass stays within ``max_bytes``.

    Returns
    -------
    examples, samples : ints >= 1 (samples < k only when one example's k samples do not fit)
    """
    pairs = max(1, int(max_bytes) // pair_bytes(model))
    if k >= pairs:
        return 1, pairs
    return max(1, min(n, pairs // k)), k


def _check_model(model):
    if not isinstance(model, VAE):
        raise ValueError(f"model must be a vae_np.VAE, got {type(model).__name__}")


def _check(model, X, k, max_bytes, seed=0):
    _check_model(model)
    check_int("seed", seed, minimum=0)
    X = check_array("X", X, ndim=2)
    if X.shape[1] != model.x_dim:
        raise ValueError(f"X must have shape (n, {model.x_dim}) for this model, got {X.shape}")
    return X, check_int("k", k), check_positive("max_bytes", max_bytes)


def elbo(model, X, k=1, seed=0, max_bytes=MAX_BYTES) -> ElboResult:
    """Negative ELBO of every row of X, -L = 1/k sum_k -ln p(x | z_k) + KL(q(z|x) || p(z)).

    Parameters
    ----------
    model : VAE;  X : (N, x_dim) uint8 grey levels or floats in the model's range
    k : int, Monte Carlo samples per example (k > 1 averages the reconstruction term)
    seed : int, selects the noise (see the module docstring)
    max_bytes : bound on the work arrays of one forward pass

    Returns
    -------
    ElboResult(loss, recon, kl, per_example): means over the rows, and the (N,) -ELBO values
    """
    X, k, max_bytes = _check(model, X, k, max_bytes, seed)
    n = X.shape[0]
    examples, samples = plan_chunks(model, n, k, max_bytes)
    recon, kl = np.zeros(n), np.zeros(n)
    for start in range(0, n, examples):
        stop = min(n, start + examples)
        noise = ExampleNoise(seed, range(start, stop), model.z_dim, model.dtype)
        for first in range(0, k, samples):
            count = min(samples, k - first)
            r, kl_b = model.elbo_terms(X[start:stop], count, eps=noise.draw(count))
            recon[start:stop] += r * (count / k)
            kl[start:stop] += kl_b * (count / k)    # a flow's Monte Carlo KL differs per chunk
    per_example = recon + kl
    return ElboResult(float(per_example.mean()), float(recon.mean()), float(kl.mean()), per_example)


def iwae_nll(model, X, k=5000, seed=0, max_bytes=MAX_BYTES, progress=None):
    """The importance-weighted estimate of -ln p(x) (Burda et al. 2016) for every row of X.

    -ln p(x) ~= -ln (1/k sum_k w_k),  w_k = p(x, z_k) / q(z_k | x),  z_k ~ q(z | x)

    Its expectation is an upper bound on -ln p(x) that decreases in k (k = 1 is the -ELBO) and
    tends to -ln p(x). The k log-weights are combined chunk by chunk with a streaming log-sum-exp
    (running maximum m and running sum s of exp(ln w - m)), so memory is bounded for any k.

    Parameters
    ----------
    model : VAE;  X : (N, x_dim);  k : int >= 1;  seed : int (see the module docstring)
    max_bytes : bound on the work arrays of one forward pass
    progress : callable(done_examples, total_examples) or None

    Returns
    -------
    nll : float, the mean over the rows;  per_example : (N,) float64
    """
    X, k, max_bytes = _check(model, X, k, max_bytes, seed)
    n = X.shape[0]
    examples, samples = plan_chunks(model, n, k, max_bytes)
    per_example = np.empty(n)
    for start in range(0, n, examples):
        stop = min(n, start + examples)
        noise = ExampleNoise(seed, range(start, stop), model.z_dim, model.dtype)
        m = np.full(stop - start, -np.inf)
        s = np.zeros(stop - start)
        for first in range(0, k, samples):
            count = min(samples, k - first)
            log_w = model.log_weights(X[start:stop], count, eps=noise.draw(count))
            log_w = log_w.astype(np.float64, copy=False)                     # (count, B)
            m_new = np.maximum(m, log_w.max(axis=0))
            s = s * np.exp(m - m_new) + np.exp(log_w - m_new).sum(axis=0)
            m = m_new
        per_example[start:stop] = -(m + np.log(s) - np.log(k))
        if progress is not None:
            progress(stop, n)
    return float(per_example.mean()), per_example


def latent_means(model, X, batch_size=1000):
    """mu(x) = E_q[z | x] for every row of X, in chunks: (N, z_dim)."""
    _check_model(model)
    X = check_array("X", X, ndim=2)
    batch_size = check_int("batch_size", batch_size)
    return np.concatenate([model.encode(X[i:i + batch_size])[0]
                           for i in range(0, X.shape[0], batch_size)])


def active_units(model, X, threshold=0.01, batch_size=1000):
    """Number of active latent units (Burda et al. 2016, Sec. 5.2).

    Unit j is active when A_j = Cov_x(E_{q(z|x)}[z_j]) = Var over the rows of X of mu_j(x)
    exceeds ``threshold``.

    Returns
    -------
    count : int;  variances : (z_dim,) float64, A_j for every unit
    """
    threshold = check_positive("threshold", threshold, allow_zero=True)
    variances = latent_means(model, X, batch_size).astype(np.float64).var(axis=0)
    return int(np.sum(variances > threshold)), variances


def evaluation_set(dataset, split="test", limit=None):
    """The uint8 rows of a split, binarized once (fixed seed) if the data set is binarized
    dynamically, so every evaluation of every run sees the same binary images.

    Parameters
    ----------
    dataset : vae_np.data.Dataset;  split : "train", "test" or "valid";  limit : int or None
    """
    if not isinstance(dataset, Dataset):
        raise ValueError(f"dataset must be a vae_np.data.Dataset, got {type(dataset).__name__}")
    X = getattr(dataset, f"x_{split}", None)
    if X is None:
        raise ValueError(f"data set {dataset.name!r} has no {split} split")
    if limit is not None:
        X = X[:check_int("limit", limit)]
    if dataset.dynamic_binarization:
        rng = np.random.default_rng([BINARIZATION_SEED, ("train", "test", "valid").index(split)])
        X = np.where(rng.random(X.shape) * 255 < X, 255, 0).astype(np.uint8)
    return X
