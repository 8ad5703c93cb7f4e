"""Data sets for vae_np, all returned as a :class:`Dataset` of flattened uint8 images.

Convention: pixels are uint8 grey levels in [0, 255] (binary data as 0/255); the trainer turns a
batch into [0, 1] with ``x / 255``.

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
from .cache import default_cache_dir
from .dataset import Dataset
from .download import DownloadError, download_file, sha256_file
from .frey import load_frey, read_frey
from .idx import read_idx, write_idx
from .mnist import DEFAULT_MIRRORS, MNIST_FILES, load_mnist
from .registry import DATASET_NAMES, load_dataset
from .sprites import SHAPES, make_sprites, render_sprites

__all__ = ["DATASET_NAMES", "DEFAULT_MIRRORS", "MNIST_FILES", "SHAPES", "Dataset", "DownloadError",
           "default_cache_dir", "download_file", "load_binarized_mnist", "load_dataset",
           "load_frey", "load_mnist", "make_sprites", "read_amat", "read_frey", "read_idx",
           "render_sprites", "sha256_file", "write_amat", "write_idx"]
