"""Faults, part four: a damaged data file (Frey Face, binarized MNIST, MNIST) is one line naming
it, with no download attempted."""
import io

import numpy as np
import pytest

from _fault_helpers import one_line_error
from vae_np import data as vdata


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    monkeypatch.setenv("VAE_NP_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("VAE_NP_MNIST_MIRRORS", "http://127.0.0.1:9")


def _frey_npy(n=40):
    buffer = io.BytesIO()
    np.save(buffer, np.random.default_rng(0).integers(0, 256, (n, 28, 20), dtype=np.uint8))
    return buffer.getvalue()


DATA_DAMAGE = [
    # (dataset, file name, content or None for a directory, words in the line)
    ("frey", "frey_rawface.npy", lambda good: good[:len(good) // 2], "not a readable .npy"),
    ("frey", "frey_rawface.npy", lambda good: good[:60], "not a readable .npy"),
    ("frey", "frey_rawface.npy", lambda good: b"", "not a readable .npy"),
    ("frey", "frey_rawface.npy", lambda good: b"\x00" * 10 + good[10:], "not a readable .npy"),
    ("frey", "frey_rawface.mat", lambda good: b"MATLAB 5.0 MAT-file" + b"\x00" * 50, ""),
    ("frey", "frey_rawface.mat", lambda good: b"", ""),
    ("binarized-mnist", "binarized_mnist.npz", lambda good: b"PK\x03\x04 cut short", ""),
    ("binarized-mnist", "binarized_mnist.npz", lambda good: b"", ""),
    ("mnist", "train-images-idx3-ubyte.gz", lambda good: b"\x1f\x8b cut short", "SHA-256"),
    ("mnist", "train-images-idx3-ubyte.gz", lambda good: b"", "SHA-256"),
]


@pytest.mark.parametrize("dataset, name, damage, words", DATA_DAMAGE,
                         ids=[f"{d[1]}-{i}" for i, d in enumerate(DATA_DAMAGE)])
def test_damaged_data_file_is_one_line_naming_it(dataset, name, damage, words, tmp_path, capsys,
                                                 no_network):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    path = data_dir / name
    path.write_bytes(damage(_frey_npy()))
    if dataset == "mnist":                    # the other three files present and also damaged
        for other in vdata.MNIST_FILES:
            if other != name:
                (data_dir / other).write_bytes(b"")
    line = one_line_error(["train", "--dataset", dataset, "--data-dir", str(data_dir),
                           "--no-download", "--limit", "8", "--epochs", "1", "-q",
                           "--no-figures", "--out", str(tmp_path / "run")], capsys)
    assert str(path) in line and words in line, line
