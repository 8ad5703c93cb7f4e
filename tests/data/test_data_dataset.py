"""Dataset container checks, cache-directory rules, load_dataset's names (no real data needed)."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from vae_np.data import DATASET_NAMES, Dataset, default_cache_dir, load_dataset


def _dataset(**overrides):
    fields = dict(
        name="toy",
        x_train=np.zeros((5, 6), np.uint8),
        x_test=np.zeros((3, 6), np.uint8),
        y_train=np.arange(5),
        y_test=np.arange(3),
        image_shape=(2, 3),
    )
    fields.update(overrides)
    return Dataset(**fields)


def test_valid_dataset_is_built_and_frozen():
    ds = _dataset()
    assert ds.n_features == 6
    assert ds.image_shape == (2, 3)
    assert not ds.dynamic_binarization and ds.x_valid is None and ds.factors_train is None
    assert "toy" in repr(ds) and "(5, 6)" in repr(ds)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.name = "other"


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"x_train": np.zeros((5, 6), np.float32)}, "x_train"),
        ({"x_test": np.zeros((3, 2, 3), np.uint8)}, "x_test"),
        ({"x_train": np.zeros((5, 7), np.uint8)}, "image_shape"),
        ({"image_shape": (2, 0)}, "image_shape"),
        ({"image_shape": (6,)}, "image_shape"),
        ({"y_train": np.arange(4)}, "y_train"),
        ({"y_test": np.zeros(3, np.float64)}, "y_test"),
        ({"x_valid": np.zeros((2, 5), np.uint8)}, "x_valid"),
        ({"factors_train": {"scale": np.zeros(4)}}, "factors_train['scale']"),
        ({"x_train": [[0] * 6] * 5}, "x_train"),
    ],
)
def test_malformed_dataset_raises_value_error_naming_the_field(overrides, fragment):
    with pytest.raises(ValueError) as info:
        _dataset(**overrides)
    assert fragment in str(info.value)


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("VAE_NP_DATA", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("VAE_NP_DATA")
    assert default_cache_dir() == tmp_path / "xdg" / "vae_np"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "vae_np"
    monkeypatch.setenv("VAE_NP_DATA", "")  # empty counts as unset
    assert default_cache_dir() == Path.home() / ".cache" / "vae_np"


@pytest.mark.parametrize("name", ["mnits", "", "cifar10", 3, None])
def test_unknown_name_lists_the_accepted_names(name):
    with pytest.raises(ValueError) as info:
        load_dataset(name)
    message = str(info.value)
    assert repr(name) in message
    for accepted in DATASET_NAMES:
        assert accepted in message


def test_sprites_by_name_uses_the_seed():
    a = load_dataset("sprites", seed=3)
    b = load_dataset("Sprites", seed=3)
    assert a.name == "sprites"
    np.testing.assert_array_equal(a.x_train, b.x_train)


def test_missing_files_name_the_file_and_directories(monkeypatch, tmp_path):
    monkeypatch.setenv("VAE_NP_DATA", str(tmp_path / "cache"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("binarized-mnist", empty)
    assert "binarized_mnist.npz" in str(info.value)
    assert "binarized_mnist_train.amat" in str(info.value)
    assert str(empty) in str(info.value) and str(tmp_path / "cache") in str(info.value)
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("frey", empty)
    assert "frey_rawface.mat" in str(info.value) and str(empty) in str(info.value)
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("mnist", empty, download=False)
    assert "-ubyte.gz" in str(info.value) and "download=True" in str(info.value)


@pytest.mark.parametrize("name", ["mnist", "binarized-mnist", "frey"])
def test_data_dir_must_be_a_path(name):
    with pytest.raises(ValueError, match="data_dir"):
        load_dataset(name, 42, download=False)
