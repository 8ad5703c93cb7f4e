"""Evaluation of a trained VAE: test negative ELBO, the IWAE estimate of -ln p(x), active units.

Noise: the eps of an example is drawn from its own stream
``np.random.default_rng([seed, EVAL_STREAM, row])``, k values at a time, where ``row`` is the
example's row in the full split (``rows[i]`` when the caller passes the rows of a subset, else
its row i in X). A result therefore does not depend on how the work is cut into chunks of
examples and samples, only on ``seed``; every epoch's test loss of a run uses the same noise; and
the per-example values of a subset are exactly those rows of an evaluation of the whole split.

Subsets: :func:`evaluation_subset` takes ``limit`` rows of a split as a seeded uniform random
subset (:func:`vae_np.data.subset_rows`), never the first ``limit``: several splits are ordered
(the binarized-MNIST test split by digit). Every mean comes with its standard error,
:func:`standard_error`, over the examples evaluated.

Memory: a forward pass over ``n_pairs`` (sample, example) pairs needs about
``n_pairs * itemsize * (6 D + 3 sum(hidden) + 6 Z)`` bytes of work arrays; chunks are sized so this
stays below ``max_bytes`` (64 MiB by default) whatever k and the number of examples.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ._validate import check_array, check_int, check_positive
from .core.model import VAE
from .data import Dataset
from .data.subset import describe_subset, subset_rows

EVAL_STREAM = 2          # keeps evaluation noise apart from training's default_rng([seed, 1])
BINARIZATION_SEED = 20160101
MAX_BYTES = 64 * 2 ** 20

ElboResult = namedtuple("ElboResult", "loss recon kl per_example per_example_recon "
                                       "per_example_kl")
ElboResult.__doc__ = """Means over the examples (nats per example) of the -ELBO and of its two
terms, and the (N,) per-example values of each (per_example = per_example_recon +
per_example_kl)."""


def standard_error(values):
    """The standard error of the mean of ``values``: std(values, ddof=1) / sqrt(n); None when
    n < 2 (no spread to estimate). The examples are a sample from the split (or the split from
    the population of images), so this is the sampling error of the mean, not of the noise."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if len(values) < 2:
        return None
    return float(values.std(ddof=1) / np.sqrt(len(values)))


class ExampleNoise:
    """eps for a block of examples; example i draws from ``default_rng([seed, EVAL_STREAM, i])``.

    Parameters
    ----------
    seed : int;  indices : the examples' row numbers in the full data set
    noise_dim : int, the model's ``noise_dim`` (z_dim, and a prior's own noise after it: the
        two-layer model's z2 noise)
    dtype : the model's dtype (eps is drawn directly in it)
    """

    def __init__(self, seed, indices, noise_dim, dtype):
        self.streams = [np.random.default_rng([seed, EVAL_STREAM, int(i)]) for i in indices]
        self.noise_dim, self.dtype = noise_dim, dtype

    def draw(self, k):
        """The next k draws of every stream: eps of shape (k, B, noise_dim)."""
        return np.stack([s.standard_normal((k, self.noise_dim), dtype=self.dtype)
                         for s in self.streams], axis=1)


def pair_bytes(model) -> int:
    """Approximate bytes of work arrays per (sample, example) pair of one forward pass."""
    width = 6 * model.x_dim + 3 * sum(model.hidden) + 6 * model.z_dim
    width += model.posterior.work_per_sample + model.prior.work_per_sample   # e.g. a flow's steps
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


def _check_rows(rows, n):
    """The rows keying each example's noise: ``rows`` as (n,) int64, or 0..n-1 when None."""
    if rows is None:
        return np.arange(n, dtype=np.int64)
    a = np.asarray(rows)
    if a.shape != (n,) or not np.issubdtype(a.dtype, np.integer) or (n and a.min() < 0):
        raise ValueError(f"rows must be None or ({n},) integers >= 0, one per row of X (its row "
                         f"in the full split), got {a.dtype} {a.shape}")
    return a.astype(np.int64)


def elbo(model, X, k=1, seed=0, max_bytes=MAX_BYTES, rows=None) -> ElboResult:
    """Negative ELBO of every row of X, -L = 1/k sum_k -ln p(x | z_k) + KL(q(z|x) || p(z)).

    Parameters
    ----------
    model : VAE;  X : (N, x_dim) uint8 grey levels or floats in the model's range
    k : int, Monte Carlo samples per example (k > 1 averages the reconstruction term)
    seed : int, selects the noise (see the module docstring)
    max_bytes : bound on the work arrays of one forward pass
    rows : (N,) ints or None, each row's number in the full split (keys its noise); None: 0..N-1

    Returns
    -------
    ElboResult: the means over the rows of the -ELBO, its reconstruction term and its KL, and the
    (N,) per-example values of each
    """
    X, k, max_bytes = _check(model, X, k, max_bytes, seed)
    n = X.shape[0]
    rows = _check_rows(rows, n)
    examples, samples = plan_chunks(model, n, k, max_bytes)
    recon, kl = np.zeros(n), np.zeros(n)
    for start in range(0, n, examples):
        stop = min(n, start + examples)
        noise = ExampleNoise(seed, rows[start:stop], model.noise_dim, model.dtype)
        for first in range(0, k, samples):
            count = min(samples, k - first)
            r, kl_b = model.elbo_terms(X[start:stop], count, eps=noise.draw(count))
            recon[start:stop] += r * (count / k)
            kl[start:stop] += kl_b * (count / k)    # a flow's Monte Carlo KL differs per chunk
    per_example = recon + kl
    return ElboResult(float(per_example.mean()), float(recon.mean()), float(kl.mean()), per_example,
                      recon, kl)


def iwae_nll(model, X, k=5000, seed=0, max_bytes=MAX_BYTES, progress=None, rows=None):
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
    rows : (N,) ints or None, each row's number in the full split (keys its noise); None: 0..N-1

    Returns
    -------
    nll : float, the mean over the rows;  per_example : (N,) float64
    """
    X, k, max_bytes = _check(model, X, k, max_bytes, seed)
    n = X.shape[0]
    rows = _check_rows(rows, n)
    examples, samples = plan_chunks(model, n, k, max_bytes)
    per_example = np.empty(n)
    for start in range(0, n, examples):
        stop = min(n, start + examples)
        noise = ExampleNoise(seed, rows[start:stop], model.noise_dim, model.dtype)
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


def layer_means(model, X, batch_size=1000):
    """The means of every stochastic layer for every row of X: [(N, Z_l)], z1 = mu(x) first.

    A layer above z1 (the two-layer model's z2) is read at the mean of the layer below, layer by
    layer: mu2(mu1(x)), the mean of q(z2|z1) at z1 = E_q[z1|x] (the prior's ``upper_means``).
    """
    _check_model(model)
    X = check_array("X", X, ndim=2)
    batch_size = check_int("batch_size", batch_size)
    upper = getattr(model.prior, "upper_means", None)
    chunks = []
    for i in range(0, X.shape[0], batch_size):
        mu = model.encode(X[i:i + batch_size])[0]
        chunks.append([mu] + (list(upper(mu)) if upper is not None else []))
    return [np.concatenate(layer) for layer in zip(*chunks)]


def active_units_per_layer(model, X, threshold=0.01, batch_size=1000):
    """Active units of every stochastic layer (Burda et al. 2016, Sec. 5.2), z1 first.

    Unit j of layer l is active when Var over the rows of X of its mean (``layer_means``)
    exceeds ``threshold``.

    Returns
    -------
    [(count, variances (Z_l,) float64)], one per layer (one for a one-layer model, equal to
    ``active_units``)
    """
    threshold = check_positive("threshold", threshold, allow_zero=True)
    out = []
    for means in layer_means(model, X, batch_size):
        variances = means.astype(np.float64).var(axis=0)
        out.append((int(np.sum(variances > threshold)), variances))
    return out


EvaluationSet = namedtuple("EvaluationSet", "x rows n_split seed split")
EvaluationSet.__doc__ = """The rows a command evaluates on: ``x`` (n, D) uint8, ``rows`` (n,) their
numbers in the split, ``n_split`` the split's size, ``seed`` the subset's seed (None: the first
rows, for runs made before random subsets) and the ``split``'s name."""


def describe(subset: EvaluationSet, noun="images") -> str:
    """How a subset was chosen, e.g. ``"1000 of 10000 test images, random subset, seed 0"`` or
    ``"all 10000 test images"``."""
    return describe_subset(len(subset.rows), subset.n_split, subset.seed,
                           f"{subset.split} {noun}")


def subset_record(subset: EvaluationSet) -> dict:
    """What a JSON report records of a subset: ``n_examples``, ``n_split``, ``subset`` ("all",
    "random" or "first") and ``subset_seed`` (null unless random)."""
    whole = len(subset.rows) >= subset.n_split
    kind = "all" if whole else ("first" if subset.seed is None else "random")
    return dict(n_examples=len(subset.rows), n_split=subset.n_split, subset=kind,
                subset_seed=subset.seed if kind == "random" else None)


def evaluation_subset(dataset, split="test", limit=None, seed=0) -> EvaluationSet:
    """``limit`` rows of a split as a seeded uniform random subset (all rows when ``limit`` is
    None), binarized once (fixed seed) if the data set is binarized dynamically, so every
    evaluation of every run sees the same binary images.

    Parameters
    ----------
    dataset : vae_np.data.Dataset;  split : "train", "test" or "valid"
    limit : int >= 1 or None;  seed : int >= 0 (the subset's seed, see
        :func:`vae_np.data.subset_rows`), or None for the first ``limit`` rows

    The binarization of row r is the same whether it is drawn for the whole split or for a
    subset: the split's (N, D) uniforms u are drawn from
    ``default_rng([BINARIZATION_SEED, split code])`` in row order (in blocks of rows, up to the
    last row used), and pixel d of row r is 255 where u[r, d] * 255 < x[r, d], else 0.
    """
    if not isinstance(dataset, Dataset):
        raise ValueError(f"dataset must be a vae_np.data.Dataset, got {type(dataset).__name__}")
    X = getattr(dataset, f"x_{split}", None) if isinstance(split, str) else None
    if X is None:
        raise ValueError(f"data set {dataset.name!r} has no {split} split")
    rows = subset_rows(len(X), limit, seed, split)
    whole = len(rows) == len(X)
    if dataset.dynamic_binarization:
        x = _binarize_rows(X, rows, ("train", "test", "valid").index(split))
    else:
        x = X if whole else X[rows]
    return EvaluationSet(x, rows, len(X), None if whole or limit is None else seed, split)


def evaluation_set(dataset, split="test", limit=None, seed=0):
    """The (n, D) uint8 rows of :func:`evaluation_subset` (same arguments)."""
    return evaluation_subset(dataset, split, limit, seed).x


_BINARIZE_BLOCK = 4096     # rows of uniforms drawn at once: 4096 x 784 float64 = 26 MB


def _binarize_rows(X, rows, code):
    """``X[rows]`` binarized with the split's fixed uniforms (see :func:`evaluation_subset`)."""
    rng = np.random.default_rng([BINARIZATION_SEED, code])
    out = np.empty((len(rows), X.shape[1]), dtype=np.uint8)
    stop = int(rows[-1]) + 1 if len(rows) else 0
    for start in range(0, stop, _BINARIZE_BLOCK):
        u = rng.random((min(_BINARIZE_BLOCK, stop - start), X.shape[1]))
        pick = np.flatnonzero((rows >= start) & (rows < start + len(u)))
        local = rows[pick] - start
        out[pick] = np.where(u[local] * 255 < X[rows[pick]], 255, 0)
    return out
