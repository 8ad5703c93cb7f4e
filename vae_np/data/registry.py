"""``load_dataset(name)``: one entry point for every data set, and the one list of their names."""
from __future__ import annotations

import dataclasses

from .binarized import load_binarized_mnist
from .dataset import Dataset
from .frey import load_frey
from .mnist import load_mnist
from .sprites import make_sprites

DATASET_NAMES = ("sprites", "mnist", "binarized-mnist", "dynamic-mnist", "frey")
"""Accepted ``name`` values of :func:`load_dataset` (``_`` may be written for ``-``)."""


def load_dataset(name, data_dir=None, *, download=True, mirrors=None, seed=0,
                 progress=True) -> Dataset:
    """Load a data set by name.

    Parameters
    ----------
    name : ``"sprites"`` (generated, no files), ``"mnist"`` (grey levels), ``"binarized-mnist"``
        (static Larochelle binarization, with ``x_valid``), ``"dynamic-mnist"`` (grey MNIST with
        ``dynamic_binarization=True``: the trainer resamples ``x ~ Bernoulli(x / 255)`` per
        batch) or ``"frey"`` (Frey Face, 28x20); case-insensitive, ``_`` accepted for ``-``
    data_dir : str, path-like or None: searched before the cache (ignored by ``"sprites"``)
    download, mirrors, progress : MNIST only: download missing files into the cache, from these
        base URLs, printing progress to stderr
    seed : seed of the generator (``"sprites"``) or of the train/test split (``"frey"``)

    Returns the :class:`Dataset` (see the individual loaders for shapes). Raises ValueError for
    an unknown ``name`` (listing the accepted names), and as the loaders raise.
    """
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else None
    if key not in DATASET_NAMES:
        raise ValueError(f"name must be one of {', '.join(repr(n) for n in DATASET_NAMES)}, "
                         f"got {name!r}")
    if key == "sprites":
        return make_sprites(seed=seed)
    if key == "binarized-mnist":
        return load_binarized_mnist(data_dir)
    if key == "frey":
        return load_frey(data_dir, seed=seed)
    mnist = load_mnist(data_dir, download=download, mirrors=mirrors, progress=progress)
    if key == "dynamic-mnist":
        return dataclasses.replace(mnist, name="dynamic-mnist", dynamic_binarization=True)
    return mnist
