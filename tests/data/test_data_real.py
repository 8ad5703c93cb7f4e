"""Loaders on the real files in ../shared/data (MNIST, binarized MNIST, Frey Face)."""
import shutil

import numpy as np
import pytest

from vae_np.data import (
    MNIST_FILES, load_binarized_mnist, load_dataset, load_frey, load_mnist, read_amat, read_frey,
    read_idx, write_amat)
from vae_np.data.binarized import AMAT_NAMES, SPLITS, read_binarized_npz

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def isolated_cache(monkeypatch, tmp_path):
    """An empty cache, so that nothing on this machine's real cache is picked up."""
    monkeypatch.setenv("VAE_NP_DATA", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def mnist(shared_data):
    return load_mnist(shared_data / "mnist", download=False)


@pytest.fixture(scope="module")
def packed_bits(shared_data):
    return read_binarized_npz(shared_data / "binarized_mnist" / "binarized_mnist.npz")


@pytest.fixture(scope="module")
def amat_dir(packed_bits, tmp_path_factory):
    """The three original .amat files, rebuilt from the .npz (verified against published hashes
    when loaded with verify=True)."""
    directory = tmp_path_factory.mktemp("amat")
    for split in SPLITS:
        write_amat(directory / AMAT_NAMES[split], packed_bits[split])
    return directory


# --- MNIST -------------------------------------------------------------------------------------

def test_mnist_shapes_and_label_counts(mnist):
    assert mnist.name == "mnist" and mnist.image_shape == (28, 28)
    assert mnist.x_train.shape == (60000, 784) and mnist.x_test.shape == (10000, 784)
    assert mnist.x_train.dtype == np.uint8 and mnist.x_test.dtype == np.uint8
    assert mnist.x_train.min() == 0 and mnist.x_train.max() == 255
    np.testing.assert_array_equal(np.bincount(mnist.y_train), TRAIN_COUNTS)
    np.testing.assert_array_equal(np.bincount(mnist.y_test), TEST_COUNTS)
    assert not mnist.dynamic_binarization


def test_idx_headers_of_the_real_files(shared_data):
    images = read_idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels[:5].tolist() == [7, 2, 1, 0, 4]


def test_mnist_data_root_with_subfolder_is_found(shared_data, mnist):
    ds = load_mnist(shared_data, download=False)
    np.testing.assert_array_equal(ds.x_test, mnist.x_test)


def test_mnist_checksum_mismatch_names_file_and_hashes(shared_data, tmp_path):
    for name in MNIST_FILES:
        shutil.copy(shared_data / "mnist" / name, tmp_path / name)
    bad = tmp_path / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(bad.read_bytes())
    data[100] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError) as info:
        load_mnist(tmp_path, download=False)
    message = str(info.value)
    assert str(bad) in message and MNIST_FILES[bad.name] in message
    assert "got " in message and len(message.split("got ")[1].split(".")[0]) == 64


# --- binarized MNIST ---------------------------------------------------------------------------

def _check_binarized(ds):
    assert ds.name == "binarized-mnist" and ds.image_shape == (28, 28)
    assert ds.x_train.shape == (50000, 784)
    assert ds.x_valid.shape == (10000, 784) and ds.x_test.shape == (10000, 784)
    for x in (ds.x_train, ds.x_valid, ds.x_test):
        assert x.dtype == np.uint8 and set(np.unique(x)) == {0, 255}
    assert ds.y_train is None and ds.y_test is None


def test_binarized_from_npz(shared_data, packed_bits):
    ds = load_binarized_mnist(shared_data)  # finds binarized_mnist/binarized_mnist.npz
    _check_binarized(ds)
    np.testing.assert_array_equal(ds.x_valid, packed_bits["valid"] * 255)


def test_binarized_from_amat_matches_npz(amat_dir, packed_bits):
    ds = load_binarized_mnist(amat_dir)  # verify=True: the rebuilt files carry the published hashes
    _check_binarized(ds)
    for split, x in (("train", ds.x_train), ("valid", ds.x_valid), ("test", ds.x_test)):
        np.testing.assert_array_equal(x, packed_bits[split] * 255)


def test_binarized_dispatch_by_name(amat_dir):
    ds = load_dataset("binarized_mnist", amat_dir)
    assert ds.name == "binarized-mnist" and ds.x_valid is not None


def test_binarized_subset_needs_verify_false(amat_dir, packed_bits, tmp_path):
    for split in ("valid", "test"):
        shutil.copy(amat_dir / AMAT_NAMES[split], tmp_path / AMAT_NAMES[split])
    write_amat(tmp_path / AMAT_NAMES["train"], packed_bits["train"][:300])
    with pytest.raises(ValueError, match="SHA-256 mismatch") as info:
        load_binarized_mnist(tmp_path)
    assert AMAT_NAMES["train"] in str(info.value) and "verify=False" in str(info.value)
    ds = load_binarized_mnist(tmp_path, verify=False)
    assert ds.x_train.shape == (300, 784)
    np.testing.assert_array_equal(ds.x_train, packed_bits["train"][:300] * 255)


def test_amat_round_trip_and_missing_final_newline(tmp_path, packed_bits):
    bits = packed_bits["test"][:5]
    path = tmp_path / "x.amat"
    write_amat(path, bits)
    assert path.stat().st_size == 5 * 1568
    np.testing.assert_array_equal(read_amat(path), bits)
    path.write_bytes(path.read_bytes()[:-1])
    np.testing.assert_array_equal(read_amat(path), bits)


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda b: b[:-10], "not a positive multiple of 1568"),
        (lambda b: b"", "not a positive multiple of 1568"),
        (lambda b: b[:1568 + 4] + b"2" + b[1568 + 5:], "line 2 "),
        (lambda b: b[:2 * 1568 + 3] + b"," + b[2 * 1568 + 4:], "line 3 "),
        (lambda b: b.replace(b"\n", b" ", 1), "line 1 "),
        (lambda b: b[1:] + b"\n", "line 1 "),  # misaligned: same length, digits in the gaps
    ],
)
def test_malformed_amat_names_file_and_line(tmp_path, packed_bits, edit, fragment):
    path = tmp_path / "bad.amat"
    write_amat(path, packed_bits["valid"][:3])
    path.write_bytes(edit(path.read_bytes()))
    with pytest.raises(ValueError) as info:
        read_amat(path)
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_corrupt_npz_is_a_value_error(tmp_path):
    path = tmp_path / "binarized_mnist.npz"
    path.write_bytes(b"PK\x03\x04 definitely not a zip archive")
    with pytest.raises(ValueError, match="binarized_mnist.npz"):
        load_binarized_mnist(tmp_path)
    np.savez(path, train=np.zeros((2, 98), np.uint8), valid=np.zeros((2, 98), np.uint8))
    with pytest.raises(ValueError, match="'test' missing"):
        load_binarized_mnist(tmp_path)
    splits = {"train": np.zeros((2, 98), np.uint8), "valid": np.zeros((2, 98), np.uint8)}
    np.savez(path, test=np.zeros((2, 784), np.uint8), **splits)
    with pytest.raises(ValueError, match=r"'test' must be uint8 of shape \(N, 98\)"):
        load_binarized_mnist(tmp_path)
    with open(path, "wb") as f:
        np.save(f, np.zeros((2, 98), np.uint8))
    with pytest.raises(ValueError, match="not an .npz archive"):
        load_binarized_mnist(tmp_path)


# --- Frey Face ---------------------------------------------------------------------------------

def test_frey_mat_and_npy_agree(shared_data):
    from_mat = read_frey(shared_data / "frey_face" / "frey_rawface.mat")
    from_npy = read_frey(shared_data / "frey_face" / "frey_rawface.npy")
    assert from_mat.shape == (1965, 560) and from_mat.dtype == np.uint8
    np.testing.assert_array_equal(from_mat, from_npy)
    assert from_mat.min() == 8 and from_mat.max() == 238


def test_frey_split(shared_data):
    ds = load_frey(shared_data)
    assert ds.name == "frey" and ds.image_shape == (28, 20)
    assert ds.x_train.shape == (1769, 560) and ds.x_test.shape == (196, 560)
    assert ds.y_train is None
    everything = read_frey(shared_data / "frey_face" / "frey_rawface.npy")
    combined = np.concatenate([ds.x_train, ds.x_test])
    assert sorted(map(bytes, combined)) == sorted(map(bytes, everything))  # a partition
    again, other = load_frey(shared_data, seed=0), load_frey(shared_data, seed=1)
    np.testing.assert_array_equal(again.x_test, ds.x_test)
    assert not np.array_equal(other.x_test, ds.x_test)
    assert load_frey(shared_data, test_fraction=0.5).x_test.shape == (982, 560)


def test_frey_npy_alone_is_found(shared_data, tmp_path):
    shutil.copy(shared_data / "frey_face" / "frey_rawface.npy", tmp_path)
    ds = load_frey(tmp_path)
    np.testing.assert_array_equal(ds.x_test, load_frey(shared_data).x_test)


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5, "0.1", None, True])
def test_frey_bad_test_fraction(shared_data, fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        load_frey(shared_data, test_fraction=fraction)


@pytest.mark.parametrize("name", ["frey_rawface.mat", "frey_rawface.npy"])
@pytest.mark.parametrize("content", [b"", b"garbage" * 100])
def test_frey_corrupt_file_names_the_file(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError) as info:
        load_frey(tmp_path)
    assert str(tmp_path / name) in str(info.value)


def test_frey_npy_that_is_a_zip(tmp_path):
    with open(tmp_path / "frey_rawface.npy", "wb") as f:
        np.savez(f, ff=np.zeros((3, 28, 20), np.uint8))
    with pytest.raises(ValueError, match="found an .npz archive"):
        load_frey(tmp_path)


def test_frey_wrong_array_shape(tmp_path):
    np.save(tmp_path / "frey_rawface.npy", np.zeros((10, 20, 28), np.uint8))
    with pytest.raises(ValueError, match=r"\(N, 28, 20\)"):
        load_frey(tmp_path)
    from scipy.io import savemat

    savemat(tmp_path / "frey_rawface.mat", {"faces": np.zeros((560, 4), np.uint8)})
    with pytest.raises(ValueError, match="no variable 'ff'"):
        load_frey(tmp_path)


# --- load_dataset ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name, shape, image_shape",
    [("mnist", (60000, 784), (28, 28)), ("dynamic-mnist", (60000, 784), (28, 28)),
     ("binarized-mnist", (50000, 784), (28, 28)), ("frey", (1769, 560), (28, 20))],
)
def test_load_dataset_dispatch(shared_data, name, shape, image_shape):
    ds = load_dataset(name, shared_data, download=False)
    assert ds.name == name and ds.x_train.shape == shape and ds.image_shape == image_shape
    assert ds.dynamic_binarization == (name == "dynamic-mnist")
