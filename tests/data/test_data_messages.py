"""What a user is told when a data set's files are missing or cannot be downloaded.

The command line speaks in its own options: one line naming the files and the directories
searched, and ``--data-dir DIR`` (and ``--no-download`` where it applies), never the library's
``data_dir=...`` or ``download=True``. The library keeps its own words (its arguments).
"""
import json

import pytest

from _fault_helpers import one_line_error
from vae_np import cli
from vae_np.data import DataNotFoundError, load_dataset

LIBRARY_WORDS = ("data_dir=", "download=True")


@pytest.fixture
def empty(tmp_path, monkeypatch):
    """An empty data directory and cache; downloads go to a port nothing listens on."""
    monkeypatch.setenv("VAE_NP_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("VAE_NP_MNIST_MIRRORS", "http://127.0.0.1:9")
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


def train_argv(dataset, data_dir, tmp_path, *extra):
    return ["train", "--dataset", dataset, "--data-dir", str(data_dir), "--epochs", "1", "-q",
            "--no-figures", "--out", str(tmp_path / "run"), *extra]


@pytest.mark.parametrize("dataset, files", [
    ("mnist", "the four original MNIST .gz files"),
    ("binarized-mnist", "binarized_mnist.npz"),
    ("frey", "frey_rawface.mat"),
])
def test_missing_files_tell_a_cli_user_to_pass_data_dir(dataset, files, empty, tmp_path, capsys):
    extra = ["--no-download"] if dataset == "mnist" else []
    line = one_line_error(train_argv(dataset, empty, tmp_path, *extra), capsys)
    assert files in line and str(empty) in line and str(tmp_path / "cache") in line, line
    assert "or pass --data-dir DIR" in line, line
    assert not any(word in line for word in LIBRARY_WORDS), line
    assert ("leave out --no-download" in line) == (dataset == "mnist"), line


def test_a_failed_download_tells_a_cli_user_to_pass_data_dir(empty, tmp_path, capsys):
    line = one_line_error(train_argv("mnist", empty, tmp_path), capsys)
    assert "could not download 'mnist'" in line and "127.0.0.1:9" in line, line
    assert "If the files are on disk, pass --data-dir DIR" in line, line
    assert not any(word in line for word in LIBRARY_WORDS), line


def test_evaluate_of_a_no_download_run_says_why_it_does_not_download(empty, tmp_path, capsys,
                                                                     fast_sprites):
    """A run made with --no-download whose data has gone: evaluate (which has no such option)
    says the run does not download, and how to point it at the files."""
    run = tmp_path / "run"
    assert cli.main(["train", "--limit", "20", "--hidden", "4", "--z-dim", "2", "--epochs", "1",
                     "-q", "--no-figures", "--no-download", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    config.update(dataset="mnist", data_dir=str(empty))      # 784 pixels, as the sprites
    (run / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    line = one_line_error(["evaluate", str(run)], capsys)
    assert "pass --data-dir DIR" in line and "made with --no-download" in line, line
    assert not any(word in line for word in LIBRARY_WORDS), line


def test_the_library_speaks_in_its_own_arguments(empty):
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("mnist", empty, download=False)
    message = str(info.value)
    assert "pass data_dir=DIR" in message and "download=True" in message
    assert info.value.dirs[0] == empty and info.value.downloadable
    with pytest.raises(FileNotFoundError, match="pass data_dir=DIR") as info:
        load_dataset("frey", empty)
    assert "download=True" not in str(info.value)
