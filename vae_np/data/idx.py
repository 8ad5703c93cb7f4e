"""Read and write IDX files (the MNIST container), gzip-compressed or raw, with NumPy only.

IDX layout (all integers big-endian)::

    byte 0-1   0x00 0x00
    byte 2     type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte 3     ndim
    then       ndim uint32 sizes
    then       prod(sizes) items of the type, row-major

So the MNIST magic number 0x00000801 (2049) is "uint8, 1-D" (labels) and 0x00000803 (2051) is
"uint8, 3-D" (images).
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .cache import as_path

IDX_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
"""IDX type code -> big-endian dtype of the payload."""

_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path) -> np.ndarray:
    """Read an IDX file, gzip-compressed (detected from its first bytes) or raw.

    Parameters
    ----------
    path : str or path-like, e.g. ``train-images-idx3-ubyte.gz``

    Returns
    -------
    array of the header's shape, native-endian and writeable (MNIST images: uint8 (N, 28, 28);
    labels: uint8 (N,))

    Raises
    ------
    FileNotFoundError if ``path`` does not exist; ValueError naming the file when the gzip stream
    is truncated or corrupted (bad CRC), the magic number is not an IDX magic, or the payload
    length differs from the product of the sizes.
    """
    path = as_path("path", path)
    if not path.exists():
        raise FileNotFoundError(f"IDX file not found: {path}")
    if not path.is_file():
        raise ValueError(f"path must be a file, {path} is a directory or special file")
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: corrupted or truncated gzip data "
                             f"({type(exc).__name__}: {exc})") from None
    return parse_idx(raw, str(path))


def parse_idx(data: bytes, source="<bytes>") -> np.ndarray:
    """Decode the bytes of a whole uncompressed IDX file (see :func:`read_idx`); ``source`` names
    it in the error messages. Returns a native-endian, writeable copy of the payload."""
    if len(data) < 4:
        raise ValueError(f"{source}: not an IDX file: only {len(data)} bytes, the header needs 4")
    zero0, zero1, code, ndim = data[:4]
    if zero0 != 0 or zero1 != 0 or code not in IDX_TYPES or ndim == 0:
        raise ValueError(
            f"{source}: not an IDX file: magic number 0x{int.from_bytes(data[:4], 'big'):08X}; "
            f"expected 0x0000TTNN with type TT in {{{', '.join(f'{c:02X}' for c in IDX_TYPES)}}} "
            f"and ndim NN >= 1 (MNIST: 0x00000803 images, 0x00000801 labels)")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ValueError(f"{source}: truncated IDX header: {len(data)} bytes, but {ndim} "
                         f"dimensions need {header_len}")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_len
    if actual != expected:
        what = "truncated" if actual < expected else "too long"
        raise ValueError(f"{source}: IDX payload {what}: header says shape {shape} of "
                         f"{dtype.name} ({expected} bytes) but {actual} bytes follow the header")
    array = np.frombuffer(data, dtype, offset=header_len).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # astype copies: native order, writeable


def write_idx(path, array) -> None:
    """Write ``array`` (1 to 255 dimensions; uint8, int8, int16, int32, float32 or float64) as an
    IDX file at ``path``, gzip-compressed when ``path`` ends in ``.gz``.

    Raises ValueError if the dtype has no IDX type code or the number of dimensions is not 1..255.
    """
    array = np.asarray(array)
    codes = {(dt.kind, dt.itemsize): code for code, dt in IDX_TYPES.items()}
    code = codes.get((array.dtype.kind, array.dtype.itemsize))
    if code is None or array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"array must have 1..255 dimensions and dtype uint8, int8, int16, "
                         f"int32, float32 or float64, got dtype {array.dtype} with {array.ndim} "
                         f"dimensions")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    data = header + np.ascontiguousarray(array, IDX_TYPES[code]).tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
