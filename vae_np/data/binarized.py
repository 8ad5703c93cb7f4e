"""Statically binarized MNIST (Larochelle & Murray 2011): 50000 / 10000 / 10000, no labels.

Accepted forms, looked for in ``data_dir`` (and ``data_dir/binarized_mnist``), then in the cache
(and ``cache/binarized_mnist``); within one directory the ``.npz`` is preferred:

* ``binarized_mnist.npz``: arrays ``train`` (50000, 98), ``valid`` (10000, 98), ``test``
  (10000, 98), uint8, each row ``np.packbits`` of 784 bits (bit order 'big');
* the original distribution files ``binarized_mnist_{train,valid,test}.amat``: one image per line,
  784 characters ``0``/``1`` separated by single spaces, ending in ``\\n`` (1568 bytes per line).

There is no download: the original host is not reliably reachable.

Order, as stored (``tests/data/test_data_order.py``): the test split is sorted by digit. Labelled by
the nearest MNIST test image (each binary image is a binarization of one), its labels never decrease
along the rows: the first 1000 are 980 zeros and 20 ones, the last 1000 all nines, and the mean
ink of its tenths lies up to 42 standard errors from the split's. The training and validation
splits are shuffled (the tenths' mean ink within 1.3 standard errors of the split's). A first-N
slice of the test split therefore measures a few digits; :func:`vae_np.data.subset_rows` takes a
random subset instead.
"""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from .cache import DataNotFoundError, candidate_dirs, find_file
from .dataset import Dataset

SUBDIR = "binarized_mnist"
NPZ_NAME = "binarized_mnist.npz"
SPLITS = ("train", "valid", "test")
SPLIT_SIZES = {"train": 50000, "valid": 10000, "test": 10000}
AMAT_NAMES = {s: f"binarized_mnist_{s}.amat" for s in SPLITS}
AMAT_SHA256 = {"train": "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
               "valid": "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
               "test": "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c"}
"""SHA-256 of the original .amat files (as recorded by TensorFlow Datasets)."""
BITS_SHA256 = {"train": "43490d4d6ac9002727af4426d8748609fdb7e4094fa65ad8d681ea60082a7a5a",
               "valid": "069b4f0beb389b776478c3e872b4df71c95ac4be64d7cbe6d32e24ebac8e6d5e",
               "test": "ca0294c3b8d984c7a1dc891015a8eea6f37bae59a34e35ea0fc8c47110a8dd86"}
"""SHA-256 of ``bits.tobytes()`` for the (N, 784) uint8 0/1 array of each split."""

D = 784
LINE_BYTES = 2 * D  # 784 digits, 783 spaces, 1 newline


def read_amat(path) -> np.ndarray:
    """Parse one binarized-MNIST ``.amat`` file: lines of 784 ``0``/``1`` characters separated by
    single spaces, each ending in ``\\n`` (a missing final newline is tolerated).

    Returns (N, 784) uint8 of 0 and 1. Raises ValueError naming the file (and the first bad line)
    when the size is not a whole number of 1568-byte lines or a character is out of place.
    """
    return parse_amat(Path(path).read_bytes(), str(path))


def parse_amat(data: bytes, source="<bytes>") -> np.ndarray:
    """Parse the bytes of an ``.amat`` file (see :func:`read_amat`); ``source`` names it."""
    if data and not data.endswith(b"\n"):
        data += b"\n"
    if len(data) == 0 or len(data) % LINE_BYTES:
        raise ValueError(f"{source}: not a binarized-MNIST .amat file: {len(data)} bytes is not "
                         f"a positive multiple of {LINE_BYTES} (each line: {D} '0'/'1' separated "
                         f"by single spaces, then a newline)")
    lines = np.frombuffer(data, np.uint8).reshape(-1, LINE_BYTES)
    digits = lines[:, 0::2]     # (N, 784): characters at even positions
    gaps = lines[:, 1::2]       # (N, 784): 783 spaces, then the newline
    bad = ((digits != ord("0")) & (digits != ord("1"))).any(axis=1)
    bad |= (gaps[:, :-1] != ord(" ")).any(axis=1) | (gaps[:, -1] != ord("\n"))
    if bad.any():
        line = int(np.argmax(bad)) + 1
        raise ValueError(f"{source}: line {line} is not {D} '0'/'1' characters separated by "
                         f"single spaces and ending in a newline ({LINE_BYTES} bytes)")
    return digits - np.uint8(ord("0"))


def write_amat(path, bits) -> None:
    """Write an (N, 784) 0/1 array in the ``.amat`` text layout (inverse of :func:`read_amat`)."""
    bits = np.asarray(bits)
    if bits.ndim != 2 or bits.shape[1] != D or not np.isin(bits, (0, 1)).all():
        raise ValueError(f"bits must be an (N, {D}) array of 0/1, got {bits.shape}")
    lines = np.full((len(bits), LINE_BYTES), ord(" "), dtype=np.uint8)
    lines[:, 0::2] = bits.astype(np.uint8) + np.uint8(ord("0"))
    lines[:, -1] = ord("\n")
    Path(path).write_bytes(lines.tobytes())


def read_binarized_npz(path) -> dict:
    """Read the bit-packed ``binarized_mnist.npz``: ``{"train", "valid", "test"}`` -> (N, 784)
    uint8 of 0 and 1. Raises ValueError naming the file when it is not a readable .npz or an
    array is missing or malformed."""
    path = Path(path)
    try:
        # Open the file ourselves: np.load leaks its handle when the zip is corrupt.
        with open(path, "rb") as f:
            npz = np.load(f, allow_pickle=False)
            if isinstance(npz, np.ndarray):
                raise ValueError("it holds a single .npy array, not an .npz archive")
            with npz:
                out = {split: _unpack_split(npz, split) for split in SPLITS}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a valid binarized-MNIST .npz file: {exc}") from None
    return out


def _unpack_split(npz, split) -> np.ndarray:
    """One split of the archive: (N, 98) packed uint8 -> (N, 784) uint8 bits."""
    if split not in npz.files:
        raise ValueError(f"array {split!r} missing (has {npz.files})")
    packed = npz[split]
    if packed.dtype != np.uint8 or packed.ndim != 2 or packed.shape[1] != D // 8:
        raise ValueError(f"array {split!r} must be uint8 of shape (N, {D // 8}), got "
                         f"{packed.dtype} {packed.shape}")
    return np.unpackbits(packed, axis=1, count=D)


def load_binarized_mnist(data_dir=None, *, verify=True) -> Dataset:
    """Statically binarized MNIST from the ``.npz`` or the three ``.amat`` files.

    Parameters
    ----------
    data_dir : str, path-like or None: searched first (itself, then its ``binarized_mnist``
        subfolder), then the cache
    verify : check the split sizes (50000 / 10000 / 10000) and the published SHA-256 values (of
        the ``.amat`` files, or of the unpacked bits for the ``.npz``); False accepts any size

    Returns
    -------
    Dataset: ``x_train`` (50000, 784), ``x_valid`` (10000, 784), ``x_test`` (10000, 784) uint8 in
    {0, 255}; no labels; ``image_shape`` (28, 28)

    Raises
    ------
    FileNotFoundError if neither form is found (naming the files and the directories searched);
    ValueError if a file is malformed or (``verify``) a size or checksum differs from the
    published one.
    """
    dirs = candidate_dirs(data_dir, SUBDIR)
    bits = None
    for d in dirs:
        if (d / NPZ_NAME).is_file():
            bits = read_binarized_npz(d / NPZ_NAME)
            if verify:
                for split in SPLITS:
                    _check_hash(f"{d / NPZ_NAME}[{split!r}] bits", bits[split].tobytes(),
                                BITS_SHA256[split])
            break
        if all((d / name).is_file() for name in AMAT_NAMES.values()):
            bits = {}
            for split, name in AMAT_NAMES.items():
                data = (d / name).read_bytes()
                if verify:
                    _check_hash(str(d / name), data, AMAT_SHA256[split])
                bits[split] = parse_amat(data, str(d / name))
            break
    if bits is None:
        partial = find_file(list(AMAT_NAMES.values()), dirs)
        hint = f" (found only some .amat files, e.g. {partial})" if partial else ""
        raise DataNotFoundError(f"binarized MNIST not found{hint}",
                                f"{NPZ_NAME} (or binarized_mnist_train.amat, _valid.amat "
                                f"and _test.amat)", dirs)
    if verify:
        for split in SPLITS:
            if len(bits[split]) != SPLIT_SIZES[split]:
                raise ValueError(f"binarized MNIST {split} split has {len(bits[split])} "
                                 f"images, expected {SPLIT_SIZES[split]} (pass verify=False to "
                                 f"accept other sizes)")
    x = {split: bits[split] * np.uint8(255) for split in SPLITS}
    return Dataset("binarized-mnist", x["train"], x["test"], None, None, image_shape=(28, 28),
                   x_valid=x["valid"])


def _check_hash(what, data: bytes, expected) -> None:
    """ValueError naming ``what`` unless ``data`` has the SHA-256 ``expected``."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ValueError(f"{what}: SHA-256 mismatch: expected {expected}, got {actual} (pass "
                         f"verify=False to load it anyway)")
