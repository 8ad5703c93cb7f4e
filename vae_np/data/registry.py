"""``load_dataset(name)``: one entry point for every data set."""
from __future__ import annotations

import dataclasses
from typing import Sequence

from .binarized import load_binarized_mnist
from .cache import PathLike
from .dataset import Dataset
from .frey import load_frey
from .mnist import load_mnist
from .sprites import make_sprites

DATASET_NAMES = ("sprites", "mnist", "binarized-mnist", "dynamic-mnist", "frey")
"""Accepted ``name`` values of :func:`load_dataset` (``_`` may be written for ``-``)."""


def load_dataset(
    name: str,
    data_dir: PathLike | None = None,
    *,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Dataset:
    """Load a data set by name.

    Parameters
    ----------
    name : str
        ``"sprites"`` (generated, no files), ``"mnist"`` (grey levels), ``"binarized-mnist"``
        (static Larochelle binarization, with ``x_valid``), ``"dynamic-mnist"`` (grey MNIST with
        ``dynamic_binarization=True``: the trainer resamples ``x ~ Bernoulli(x / 255)`` per batch)
        or ``"frey"`` (Frey Face, 28x20). Case-insensitive; ``_`` is accepted for ``-``.
    data_dir : str or path-like or None
        Directory searched before the cache (ignored by ``"sprites"``).
    download : bool
        MNIST only: download missing files into the cache.
    mirrors : sequence of str or None
        MNIST only: base URLs to download from.
    seed : int
        Seed of the generator (``"sprites"``) or of the train/test split (``"frey"``).
    progress : bool
        MNIST only: print download progress to stderr.

    Returns
    -------
    Dataset
        See the individual loaders for shapes.

    Raises
    ------
    ValueError
        For an unknown ``name`` (the message lists the accepted names), and as raised by the
        loaders.
    """
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else None
    if key not in DATASET_NAMES:
        raise ValueError(
            f"load_dataset: unknown data set name {name!r}; expected one of "
            f"{', '.join(repr(n) for n in DATASET_NAMES)}"
        )
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
