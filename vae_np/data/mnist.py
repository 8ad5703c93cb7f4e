"""MNIST from the four original IDX files, SHA-256-checked, downloaded into the cache if missing.

Each file is looked for in ``data_dir`` (and ``data_dir/mnist``), then in the cache (and
``cache/mnist``); see :mod:`vae_np.data.cache`. A missing file is downloaded into
``cache/mnist`` from the first mirror that works. Mirrors, in order of precedence: the
``mirrors`` argument, the ``VAE_NP_MNIST_MIRRORS`` environment variable (comma-separated base
URLs), :data:`DEFAULT_MIRRORS`. A file's URL is ``<mirror base>/<file name>``.

Order, as stored (measured on the original files; ``tests/data/test_data_order.py``): the classes
are mixed through both splits (every tenth of either holds every digit in about the split's
proportions). The writers are not: the first 5000 test images are cleaner than the last 5000
(mean grey level per pixel 31 against 36; the tenths' means lie 7 to 12 standard errors from the
split's), and the tenths of the training split differ by up to 6 standard errors. So the first N
images of a split are no sample of it; a command that uses part of a split takes a random subset
(:func:`vae_np.data.subset_rows`).
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from .cache import DataNotFoundError, candidate_dirs, default_cache_dir, find_file
from .dataset import Dataset
from .download import download_file, sha256_file
from .idx import read_idx

DEFAULT_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                   "https://storage.googleapis.com/cvdf-datasets/mnist/")
"""The mirror base URLs tried, in order, when neither ``mirrors`` nor the environment names any."""
MIRRORS_ENV = "VAE_NP_MNIST_MIRRORS"

MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
"""File name -> published SHA-256 (the values TensorFlow Datasets records for these files)."""

SUBDIR = "mnist"


def mnist_mirrors(mirrors=None) -> list[str]:
    """The mirror base URLs to try, in order: ``mirrors`` (a str or a list of them) if given,
    else ``$VAE_NP_MNIST_MIRRORS`` (comma-separated) if set, else :data:`DEFAULT_MIRRORS`.

    Raises ValueError naming ``mirrors`` when it is empty or not a list of http(s), ftp or file
    URLs."""
    if mirrors is None:
        env = os.environ.get(MIRRORS_ENV, "")
        mirrors = [m.strip() for m in env.split(",") if m.strip()] or list(DEFAULT_MIRRORS)
    elif isinstance(mirrors, str):
        mirrors = [mirrors]
    if not isinstance(mirrors, (list, tuple)) or not all(isinstance(m, str) for m in mirrors):
        raise ValueError(f"mirrors must be None or a list of base URL strings, got {mirrors!r}")
    if not mirrors:
        raise ValueError("mirrors is empty; give at least one base URL, or None")
    for m in mirrors:
        if urlsplit(m).scheme not in ("http", "https", "ftp", "file"):
            raise ValueError(f"mirrors must be base URLs (http://, https://, ftp:// or file://), "
                             f"got {m!r}")
    return list(mirrors)


def verify_sha256(path: Path, expected: str) -> None:
    """Raise ValueError naming ``path``, the expected and the actual hash when they differ."""
    actual = sha256_file(path)
    if actual != expected:
        raise ValueError(f"{path}: SHA-256 mismatch: expected {expected}, got {actual}. The file "
                         f"is corrupted or not the original MNIST file; delete it (it is "
                         f"downloaded again when missing).")


def mnist_file(name, data_dir=None, download=True, mirrors=None, progress=True) -> Path:
    """Locate (or download) the MNIST file ``name`` (a key of :data:`MNIST_FILES`) and check its
    SHA-256; the other arguments as in :func:`load_mnist`."""
    dirs = candidate_dirs(data_dir, SUBDIR)
    path = find_file([name], dirs)
    if path is None:
        if not download:
            raise DataNotFoundError(f"MNIST file {name} not found",
                                    "the four original MNIST .gz files", dirs, downloadable=True)
        urls = [m.rstrip("/") + "/" + name for m in mnist_mirrors(mirrors)]
        path = download_file(urls, default_cache_dir() / SUBDIR / name, MNIST_FILES[name], progress)
    verify_sha256(path, MNIST_FILES[name])
    return path


def load_mnist(data_dir=None, download=True, mirrors=None, progress=True) -> Dataset:
    """Grey-level MNIST: 60000 train / 10000 test 28x28 images, labels 0..9.

    Parameters
    ----------
    data_dir : str, path-like or None: holds the four ``.gz`` files (itself or its ``mnist``
        subfolder); searched before the cache
    download : download missing files into ``cache/mnist``; when False a missing file raises
    mirrors : base URLs to download from (see :func:`mnist_mirrors`)
    progress : print download progress to stderr

    Returns
    -------
    Dataset: ``x_train`` (60000, 784) and ``x_test`` (10000, 784) uint8 in 0..255, ``y_train``,
    ``y_test`` int64, ``image_shape`` (28, 28)

    Raises
    ------
    FileNotFoundError if a file is missing and ``download`` is False; ValueError if a file's
    SHA-256 differs from the published value (naming the file, the expected and the actual hash)
    or its content is not the expected IDX array; DownloadError if every mirror failed.
    """
    if download:
        mirrors = mnist_mirrors(mirrors)  # resolved (and checked) once, before any file is read
    arrays = {name: read_idx(mnist_file(name, data_dir, download, mirrors, progress))
              for name in MNIST_FILES}
    x_train = _images(arrays["train-images-idx3-ubyte.gz"], "train-images-idx3-ubyte.gz")
    x_test = _images(arrays["t10k-images-idx3-ubyte.gz"], "t10k-images-idx3-ubyte.gz")
    y_train = _labels(arrays["train-labels-idx1-ubyte.gz"], len(x_train), "train-labels")
    y_test = _labels(arrays["t10k-labels-idx1-ubyte.gz"], len(x_test), "t10k-labels")
    return Dataset("mnist", x_train, x_test, y_train, y_test, image_shape=(28, 28))


def _images(array, name) -> np.ndarray:
    """(N, 28, 28) uint8 -> (N, 784), or ValueError naming the file."""
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[1:] != (28, 28):
        raise ValueError(f"{name}: expected uint8 images of shape (N, 28, 28), got "
                         f"{array.dtype} {array.shape}")
    return array.reshape(len(array), 28 * 28)


def _labels(array, n, name) -> np.ndarray:
    """(N,) uint8 labels -> int64, or ValueError naming the file."""
    if array.dtype != np.uint8 or array.shape != (n,) or (n and array.max() > 9):
        raise ValueError(f"{name}: expected {n} uint8 labels in 0..9, got {array.dtype} "
                         f"{array.shape}")
    return array.astype(np.int64)
