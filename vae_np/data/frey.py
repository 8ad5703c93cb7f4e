"""Frey Face: 1965 grey-level 28x20 video frames of Brendan Frey's face (Kingma & Welling 2013).

Accepted files, looked for in ``data_dir`` (and ``data_dir/frey_face``), then in the cache (and
``cache/frey_face``); within one directory the original ``.mat`` is preferred:

* ``frey_rawface.mat``: MATLAB file, variable ``ff``, uint8 (560, 1965), one column per image;
  image ``i`` is ``ff[:, i].reshape(28, 20)`` (row-major, 28 rows by 20 columns);
* ``frey_rawface.npy``: uint8 (1965, 28, 20), the same images, ``np.save`` format.

Order: the images are the frames of one video, in time order; consecutive frames are close (mean
absolute difference 12 grey levels, against 27 between random frames). :func:`load_frey` assigns
frames to the splits by a seeded random permutation and keeps each split in video order, so the
test frames are spread over the whole video (each has close neighbours in the training split), and
the first N rows of a split are the start of the video, not a sample of it
(``tests/data/test_data_order.py``).
"""
from __future__ import annotations

import numpy as np

from .._validate import check_int
from .cache import DataNotFoundError, as_path, candidate_dirs, find_file
from .dataset import Dataset

SUBDIR = "frey_face"
FILE_NAMES = ("frey_rawface.mat", "frey_rawface.npy")
IMAGE_SHAPE = (28, 20)
N_IMAGES = 1965


def read_frey(path) -> np.ndarray:
    """The Frey Face images of ``frey_rawface.mat`` (variable ``ff``, (560, N)) or
    ``frey_rawface.npy`` ((N, 28, 20)), chosen by suffix, as (N, 560) uint8: one flattened 28x20
    image per row.

    Raises FileNotFoundError if ``path`` does not exist; ValueError naming the file when it
    cannot be parsed or does not hold uint8 28x20 images.
    """
    path = as_path("path", path)
    if not path.is_file():
        raise FileNotFoundError(f"Frey Face file not found: {path}")
    if path.suffix == ".mat":
        images = _read_mat(path)
    elif path.suffix == ".npy":
        images = _read_npy(path)
    else:
        raise ValueError(f"{path}: expected a .mat or .npy Frey Face file")
    return np.ascontiguousarray(images.reshape(len(images), IMAGE_SHAPE[0] * IMAGE_SHAPE[1]))


def _read_mat(path) -> np.ndarray:
    """``ff`` (560, N) -> (N, 28, 20)."""
    from scipy.io import loadmat  # scipy is only needed for this one format

    try:
        ff = loadmat(path, variable_names=["ff"]).get("ff")
    except Exception as exc:  # noqa: BLE001 - scipy raises many types for a damaged file
        raise ValueError(f"{path}: not a readable MATLAB file ({type(exc).__name__}: "
                         f"{exc})") from None
    if ff is None:
        raise ValueError(f"{path}: MATLAB file has no variable 'ff' (the Frey Face images)")
    n_pixels = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
    if ff.dtype != np.uint8 or ff.ndim != 2 or ff.shape[0] != n_pixels:
        raise ValueError(f"{path}: variable 'ff' must be uint8 of shape ({n_pixels}, N), got "
                         f"{ff.dtype} {ff.shape}")
    return ff.T.reshape(-1, *IMAGE_SHAPE)


def _read_npy(path) -> np.ndarray:
    """(N, 28, 20) uint8 from a pickle-free .npy file."""
    try:
        with open(path, "rb") as f:  # opened here: np.load leaks its handle on a corrupt zip
            images = np.load(f, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npy array ({type(exc).__name__}: "
                         f"{exc})") from None
    if not isinstance(images, np.ndarray):  # np.load returns an NpzFile for zip content
        raise ValueError(f"{path}: expected a single .npy array, found an .npz archive")
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{path}: expected a uint8 array of shape (N, 28, 20), got "
                         f"{images.dtype} {images.shape}")
    return images


def load_frey(data_dir=None, test_fraction=0.1, seed=0) -> Dataset:
    """Frey Face with a seeded random train/test split.

    Parameters
    ----------
    data_dir : str, path-like or None: searched first (itself, then its ``frey_face`` subfolder),
        then the cache
    test_fraction : number in (0, 1), the share of the test split, rounded to a whole number of
        images with at least one in each split (0.1 gives 1769 train / 196 test)
    seed : int >= 0, seed of the permutation that assigns frames to splits. Consecutive video
        frames are nearly identical, so most test frames have a close neighbour in the training
        split (the usual practice for this data set).

    Returns
    -------
    Dataset: ``x_train`` (N, 560), ``x_test`` (M, 560) uint8 grey levels; no labels;
    ``image_shape`` (28, 20)

    Raises
    ------
    FileNotFoundError if neither file is found (naming the files and the directories searched);
    ValueError if ``test_fraction`` or ``seed`` is out of range, or the file is corrupt.
    """
    is_number = (isinstance(test_fraction, (int, float, np.floating))
                 and not isinstance(test_fraction, bool))
    if not is_number or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")
    seed = check_int("seed", seed, 0)
    dirs = candidate_dirs(data_dir, SUBDIR)
    path = find_file(FILE_NAMES, dirs)
    if path is None:
        raise DataNotFoundError("Frey Face not found", f"{FILE_NAMES[0]} (or {FILE_NAMES[1]})",
                                dirs)
    images = read_frey(path)
    n = len(images)
    n_test = min(max(int(round(test_fraction * n)), 1), n - 1)
    if n_test < 1:
        raise ValueError(f"{path}: holds {n} image(s); a train/test split needs at least 2")
    order = np.random.default_rng(seed).permutation(n)
    test_idx, train_idx = np.sort(order[:n_test]), np.sort(order[n_test:])
    return Dataset("frey", images[train_idx], images[test_idx], None, None, IMAGE_SHAPE)
