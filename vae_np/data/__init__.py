"""Data sets for vae_np, all returned as a :class:`Dataset` of flattened uint8 images.

Convention: pixels are uint8 grey levels in [0, 255] (binary data as 0/255); the trainer turns a
batch into [0, 1] with ``x / 255``.

Order: some splits are stored in an order that a first-N slice would betray (the binarized-MNIST
test split is sorted by digit; see each loader). A command that uses part of a split takes a
seeded uniform random subset, :func:`subset_rows`.

=================  ==========================================  ==================================
name               source                                      loader
=================  ==========================================  ==================================
sprites            generated (dSprites-style, with factors)    :func:`make_sprites`
mnist              4 original IDX files, downloaded + cached   :func:`load_mnist`
dynamic-mnist      mnist, ``dynamic_binarization=True``        ``load_dataset("dynamic-mnist")``
binarized-mnist    Larochelle .amat files or packed .npz       :func:`load_binarized_mnist`
frey               frey_rawface.mat / .npy                     :func:`load_frey`
=================  ==========================================  ==================================
"""
from __future__ import annotations

from .binarized import load_binarized_mnist, read_amat, write_amat
from .cache import DataNotFoundError, default_cache_dir
from .dataset import Dataset
from .download import DownloadError, download_file, sha256_file
from .frey import load_frey, read_frey
from .idx import read_idx, write_idx
from .mnist import DEFAULT_MIRRORS, MNIST_FILES, load_mnist
from .registry import DATASET_NAMES, load_dataset
from .sprites import SHAPES, make_sprites, render_sprites
from .subset import choose_rows, describe_subset, subset_rows

__all__ = ["DATASET_NAMES", "DEFAULT_MIRRORS", "MNIST_FILES", "SHAPES", "DataNotFoundError",
           "Dataset", "DownloadError", "choose_rows", "default_cache_dir", "describe_subset",
           "download_file", "load_binarized_mnist", "load_dataset", "load_frey", "load_mnist",
           "make_sprites", "read_amat", "read_frey", "read_idx", "render_sprites", "sha256_file",
           "subset_rows", "write_amat", "write_idx"]
