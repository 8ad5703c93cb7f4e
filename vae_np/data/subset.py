"""Which rows of a split a command uses when it uses only part of it: a seeded uniform random
subset, never the first N.

Why not the first N: several stored splits are ordered. The binarized-MNIST test split is sorted
by digit (its first 1000 images are zeros and a few ones), the second half of the MNIST test
split comes from other writers than the first (more ink), and Frey Face is a video whose splits
keep the frames in time order. The first N rows of such a split describe one digit, one group of
writers or one stretch of the video, not the split (each loader's docstring says how its data is
ordered).

The draw
--------
``rows = sort(permutation(n)[:limit])`` with the permutation drawn from
``np.random.default_rng([seed, SUBSET_STREAM, SPLIT_CODES[split]])``. So:

* every subset of ``limit`` distinct rows is equally likely (a uniform permutation's first
  ``limit`` entries), and the same (seed, split, n, limit) gives the same rows;
* the stream is its own: choosing a subset draws nothing from the training stream
  ``default_rng([seed, 1])``, the evaluation noise ``[seed, 2, row]``, the figures' ``[seed, 3]``
  or the prior's ``[seed, 5]``, so it changes none of their draws (and a resumed run stays bit for
  bit the uninterrupted one);
* each split has its own draw, so the train and test subsets of one seed are independent;
* subsets are nested: for one (seed, split, n), the rows of ``limit = m`` are among the rows of
  any ``limit >= m`` (both are prefixes of the same permutation), so a prior fitted with
  ``--limit 25`` on a run trained with ``--limit 60`` sees 25 of the run's own 60 images;
* the rows come back sorted, so a subset keeps the split's order.

``seed=None`` selects the first ``limit`` rows instead. It exists only for run directories made
before random subsets (a config.json with ``"limit"`` and no ``"subset_seed"``): such a run was
trained on its first N images, and resuming it must continue on the same images.
"""
from __future__ import annotations

import numpy as np

from .._validate import check_int

SUBSET_STREAM = 4
"""``default_rng([seed, SUBSET_STREAM, split code])`` draws a subset (see the module docstring)."""
SPLIT_CODES = {"train": 0, "test": 1, "valid": 2}


def choose_rows(n, size, rng) -> np.ndarray:
    """``min(size, n)`` distinct rows of ``range(n)``, uniformly at random, sorted.

    Parameters
    ----------
    n : int >= 0, the number of rows to choose from
    size : int >= 1
    rng : numpy.random.Generator; one permutation of n is drawn from it

    Returns
    -------
    (min(size, n),) int64, increasing
    """
    n, size = check_int("n", n, minimum=0), check_int("size", size)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return np.sort(rng.permutation(n)[:size]).astype(np.int64)


def subset_rows(n, limit=None, seed=0, split="test") -> np.ndarray:
    """The rows of a split that ``--limit limit`` selects: a seeded uniform random subset.

    Parameters
    ----------
    n : int >= 0, the number of rows in the split
    limit : int >= 1 or None (None: every row; a limit >= n also gives every row)
    seed : int >= 0, or None for the first ``limit`` rows (runs made before random subsets)
    split : "train", "test" or "valid"; each split draws its own subset

    Returns
    -------
    (min(limit, n),) int64 rows, increasing: ``sort(permutation(n)[:limit])``, the permutation
    drawn from ``default_rng([seed, SUBSET_STREAM, SPLIT_CODES[split]])``
    """
    n = check_int("n", n, minimum=0)
    if split not in SPLIT_CODES:
        raise ValueError(f"split must be one of {', '.join(map(repr, SPLIT_CODES))}, "
                         f"got {split!r}")
    if limit is None:
        return np.arange(n, dtype=np.int64)
    limit = check_int("limit", limit)
    if seed is None:
        return np.arange(min(limit, n), dtype=np.int64)
    seed = check_int("seed", seed, minimum=0)
    rng = np.random.default_rng([seed, SUBSET_STREAM, SPLIT_CODES[split]])
    return choose_rows(n, limit, rng)


def describe_subset(n_rows, n_split, seed, noun) -> str:
    """How many rows of a split were used and how they were chosen, for reports, e.g.
    ``"1000 of 10000 test images, random subset, seed 0"`` or ``"all 10000 test images"``.

    Parameters
    ----------
    n_rows : rows used
    n_split : rows in the split
    seed : the subset's seed (None: the first
    rows);  noun : what a row is, e.g. "test images"
    """
    if n_rows >= n_split:
        return f"all {n_split} {noun}"
    if seed is None:
        return f"the first {n_rows} of {n_split} {noun}"
    return f"{n_rows} of {n_split} {noun}, random subset, seed {seed}"
