"""IDX reader: round trips on small files, and a ValueError naming the file for every bad input."""
import gzip

import numpy as np
import pytest
from hypothesis import given
from hypothesis.extra import numpy as hnp

from vae_np.data import read_idx, write_idx

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@pytest.mark.parametrize("dtype", IDX_DTYPES)
@pytest.mark.parametrize("suffix", [".gz", ""])
def test_round_trip(tmp_path, dtype, suffix):
    array = (np.arange(2 * 3 * 4) - 7).astype(dtype).reshape(2, 3, 4)
    path = tmp_path / f"a.idx{suffix}"
    write_idx(path, array)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype).newbyteorder("=") and out.dtype.isnative
    assert out.flags.writeable
    np.testing.assert_array_equal(out, array)


@given(hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5)))
def test_round_trip_any_uint8_shape(tmp_path_factory, array):
    path = tmp_path_factory.mktemp("idx") / "x.gz"
    write_idx(path, array)
    out = read_idx(path)
    assert out.shape == array.shape
    np.testing.assert_array_equal(out, array)


def test_mnist_style_header_is_big_endian(tmp_path):
    labels = np.array([7, 2, 1], np.uint8)
    path = tmp_path / "labels-idx1-ubyte"
    write_idx(path, labels)
    assert path.read_bytes()[:8] == bytes.fromhex("00000801 00000003")
    images = np.zeros((2, 28, 28), np.uint8)
    write_idx(tmp_path / "images", images)
    header = bytes.fromhex("00000803 00000002 0000001c 0000001c")
    assert (tmp_path / "images").read_bytes()[:16] == header


def _idx_bytes(array):
    """Uncompressed IDX bytes of a uint8 array, written by hand (independent of write_idx)."""
    shape = np.asarray(array.shape, ">u4").tobytes()
    return bytes([0, 0, 0x08, array.ndim]) + shape + array.tobytes()


GOOD = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)


@pytest.mark.parametrize(
    "content, fragment",
    [
        (_idx_bytes(GOOD)[:-1], "truncated"),
        (_idx_bytes(GOOD) + b"\x00", "too long"),
        (_idx_bytes(GOOD)[:10], "truncated IDX header"),
        (b"", "not an IDX file"),
        (b"\x00\x00", "not an IDX file"),
        (b"\x01\x00\x08\x01" + b"\x00" * 8, "not an IDX file"),  # first byte must be 0
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "not an IDX file"),  # unknown type code
        (b"\x00\x00\x08\x00", "not an IDX file"),  # zero dimensions
        (b"PK\x03\x04 a zip file, not idx", "not an IDX file"),
    ],
)
@pytest.mark.parametrize("compress", [False, True])
def test_bad_files_raise_value_error_naming_the_file(tmp_path, content, fragment, compress):
    path = tmp_path / ("bad.gz" if compress else "bad")
    path.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(ValueError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def _gz(tmp_path):
    path = tmp_path / "x.gz"
    write_idx(path, np.arange(5000, dtype=np.int32) % 251)
    return path, bytearray(path.read_bytes())


def test_truncated_gzip(tmp_path):
    path, data = _gz(tmp_path)
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ValueError, match="corrupted or truncated gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_gzip_crc_mismatch(tmp_path):
    path, data = _gz(tmp_path)
    data[-8] ^= 0xFF  # first byte of the CRC32 trailer
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupted or truncated gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("position", [0.3, 0.5, 0.8])
def test_corrupted_deflate_stream(tmp_path, position):
    path, data = _gz(tmp_path)
    i = int(position * len(data))
    data[i:i + 4] = bytes(b ^ 0x5A for b in data[i:i + 4])
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.gz")


@pytest.mark.parametrize("bad", [np.zeros(3, np.uint64), np.zeros(3, bool), np.array(5, np.uint8),
                                 np.zeros(3, np.complex64)])
def test_write_idx_rejects_unsupported_arrays(tmp_path, bad):
    with pytest.raises(ValueError, match="array must have 1..255 dimensions"):
        write_idx(tmp_path / "x", bad)
