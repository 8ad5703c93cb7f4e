"""Bad values and damaged files for the data loaders (see ``tests/cli/entry_points.py``). Calls get
a fresh directory ``tmp``; the data cache and the MNIST mirrors point where nothing is found."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from table_common import CLOSED_PORT, OK_SHA, rows, write
from vae_np import data as vdata

CASES: list = []
case = rows(CASES)


# ------------------------------------------------------------------------------ data
for _kind, _word, _what, _call, _exp in [
    ("unknown name", "name", "name = 'cifar'", lambda tmp: vdata.load_dataset("cifar"), ValueError),
    ("type", "name", "name = None", lambda tmp: vdata.load_dataset(None), ValueError),
    ("empty", "name", "name = ''", lambda tmp: vdata.load_dataset(""), ValueError),
    ("type", "data_dir", "data_dir = 5 ('mnist')",
     lambda tmp: vdata.load_dataset("mnist", 5, download=False), ValueError),
    ("file", "MNIST", "'mnist', download=False, no files",
     lambda tmp: vdata.load_dataset("mnist", tmp, download=False), FileNotFoundError),
    ("file", "binarized", "'binarized-mnist', no files",
     lambda tmp: vdata.load_dataset("binarized-mnist", tmp), FileNotFoundError),
    ("file", "Frey", "'frey', no files", lambda tmp: vdata.load_dataset("frey", tmp),
     FileNotFoundError),
    ("empty", "mirrors", "'mnist', mirrors = []",
     lambda tmp: vdata.load_dataset("mnist", tmp, mirrors=[]), ValueError),
    ("int range", "seed", "'sprites', seed = -1",
     lambda tmp: vdata.load_dataset("sprites", seed=-1),
     ValueError),
    ("int range", "seed", "'frey', seed = -1", lambda tmp: vdata.load_dataset("frey", tmp, seed=-1),
     ValueError),
]:
    case("data.load_dataset", _kind, _word, _what, _call, _exp)

for _kind, _word, _what, _call in [
    ("int range", "n_train", "n_train = 0", lambda tmp: vdata.make_sprites(0, 10)),
    ("int range", "n_train", "n_train = -5", lambda tmp: vdata.make_sprites(-5, 10)),
    ("type", "n_train", "n_train = 1.5", lambda tmp: vdata.make_sprites(1.5, 10)),
    ("int range", "n_test", "n_test = 0", lambda tmp: vdata.make_sprites(10, 0)),
    ("type", "n_test", "n_test = None", lambda tmp: vdata.make_sprites(10, None)),
    ("int range", "seed", "seed = -1", lambda tmp: vdata.make_sprites(10, 10, seed=-1)),
    ("type", "seed", "seed = 'a'", lambda tmp: vdata.make_sprites(10, 10, seed="a")),
    ("type", "seed", "seed = 1.5", lambda tmp: vdata.make_sprites(10, 10, seed=1.5)),
]:
    case("data.make_sprites", _kind, _word, _what, _call)

IDX_HEADER = bytes([0, 0, 0x08, 1]) + (3).to_bytes(4, "big")
for _kind, _word, _what, _call, _exp in [
    ("file", "missing.idx", "a missing file", lambda tmp: vdata.read_idx(Path(tmp) / "missing.idx"),
     FileNotFoundError),
    ("type", "path", "path = None", lambda tmp: vdata.read_idx(None), ValueError),
    ("file", "path", "a directory", lambda tmp: vdata.read_idx(tmp), ValueError),
    ("empty", "empty.idx", "an empty file",
     lambda tmp: vdata.read_idx(write(tmp, "empty.idx", b"")),
     ValueError),
    ("file", "magic.idx", "a bad magic number",
     lambda tmp: vdata.read_idx(write(tmp, "magic.idx", b"\x00\x01\x08\x01" + bytes(8))),
     ValueError),
    ("shape", "short.idx", "a payload shorter than the header's shape",
     lambda tmp: vdata.read_idx(write(tmp, "short.idx", IDX_HEADER + b"\x01\x02")), ValueError),
    ("shape", "long.idx", "a payload longer than the header's shape",
     lambda tmp: vdata.read_idx(write(tmp, "long.idx", IDX_HEADER + bytes(5))), ValueError),
    ("file", "bad.idx.gz", "a truncated gzip stream",
     lambda tmp: vdata.read_idx(write(tmp, "bad.idx.gz",
                                      gzip.compress(IDX_HEADER + bytes(3))[:-6])),
     ValueError),
]:
    case("data.read_idx", _kind, _word, _what, _call, _exp)

for _kind, _word, _what, _call, _exp in [
    ("type", "data_dir", "data_dir = 5", lambda tmp: vdata.load_mnist(5, download=False),
     ValueError),
    ("file", "MNIST", "download=False and no files",
     lambda tmp: vdata.load_mnist(tmp, download=False), FileNotFoundError),
    ("empty", "mirrors", "mirrors = []", lambda tmp: vdata.load_mnist(tmp, mirrors=[]), ValueError),
    ("type", "mirrors", "mirrors = 5", lambda tmp: vdata.load_mnist(tmp, mirrors=5), ValueError),
    ("range", "mirrors", "mirrors = ['not a url']",
     lambda tmp: vdata.load_mnist(tmp, mirrors=["not a url"]), ValueError),
    ("type", "mirrors", "mirrors = [None]", lambda tmp: vdata.load_mnist(tmp, mirrors=[None]),
     ValueError),
]:
    case("data.load_mnist", _kind, _word, _what, _call, _exp)

for _kind, _word, _what, _call, _exp in [
    ("type", "data_dir", "data_dir = 5", lambda tmp: vdata.load_binarized_mnist(5), ValueError),
    ("file", "binarized", "no files", lambda tmp: vdata.load_binarized_mnist(tmp),
     FileNotFoundError),
    ("file", "binarized_mnist.npz", "a corrupt .npz",
     lambda tmp: vdata.load_binarized_mnist(write(tmp, "bm/binarized_mnist.npz", b"PK\x03\x04junk")
                                            .parent), ValueError),
    ("file", "binarized_mnist_train.amat", "three malformed .amat files",
     lambda tmp: vdata.load_binarized_mnist(
         [write(tmp, f"am/binarized_mnist_{s}.amat", b"0 1\n") for s in ("train", "valid", "test")]
         [0].parent, verify=False), ValueError),
]:
    case("data.load_binarized_mnist", _kind, _word, _what, _call, _exp)

for _kind, _word, _what, _call, _exp in [
    ("range", "test_fraction", "test_fraction = 0", lambda tmp: vdata.load_frey(tmp, 0),
     ValueError),
    ("range", "test_fraction", "test_fraction = 1", lambda tmp: vdata.load_frey(tmp, 1),
     ValueError),
    ("nan/inf", "test_fraction", "test_fraction = NaN", lambda tmp: vdata.load_frey(tmp, np.nan),
     ValueError),
    ("type", "test_fraction", "test_fraction = '0.1'", lambda tmp: vdata.load_frey(tmp, "0.1"),
     ValueError),
    ("int range", "seed", "seed = -1", lambda tmp: vdata.load_frey(tmp, seed=-1), ValueError),
    ("type", "data_dir", "data_dir = 5", lambda tmp: vdata.load_frey(5), ValueError),
    ("file", "Frey", "no files", lambda tmp: vdata.load_frey(tmp), FileNotFoundError),
    ("file", "frey_rawface.npy", "a .npy of the wrong shape",
     lambda tmp: vdata.load_frey(_npy(tmp, np.zeros((3, 28, 28), np.uint8))), ValueError),
    ("dtype", "frey_rawface.npy", "a .npy of float images",
     lambda tmp: vdata.load_frey(_npy(tmp, np.zeros((3, 28, 20)))), ValueError),
]:
    case("data.load_frey", _kind, _word, _what, _call, _exp)


def _npy(tmp, array):
    d = Path(tmp) / "frey"
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / "frey_rawface.npy", array)
    return d


for _kind, _word, _what, _call, _exp in [
    ("file", "nope.npy", "a missing file", lambda tmp: vdata.read_frey(Path(tmp) / "nope.npy"),
     FileNotFoundError),
    ("type", "path", "path = None", lambda tmp: vdata.read_frey(None), ValueError),
    ("file", "faces.txt", "a .txt file", lambda tmp: vdata.read_frey(write(tmp, "faces.txt", b"1")),
     ValueError),
    ("file", "frey_rawface.mat", "a corrupt .mat",
     lambda tmp: vdata.read_frey(write(tmp, "frey_rawface.mat", b"MATLAB junk")), ValueError),
]:
    case("data.read_frey", _kind, _word, _what, _call, _exp)


def dl(**kw):
    def call(tmp):
        args = dict(url_list=[CLOSED_PORT + "f"], dest=Path(tmp) / "out" / "f", sha256=OK_SHA,
                    progress=False)
        args.update(kw)
        return vdata.download_file(**args)
    return call


for _kind, _word, _what, _call in [
    ("empty", "url_list", "url_list = []", dl(url_list=[])),
    ("type", "url_list", "url_list = None", dl(url_list=None)),
    ("type", "url_list", "url_list = [5]", dl(url_list=[5])),
    ("range", "sha256", "sha256 = 'abc'", dl(sha256="abc")),
    ("range", "sha256", "sha256 of 64 non-hex characters", dl(sha256="z" * 64)),
    ("type", "sha256", "sha256 = None", dl(sha256=None)),
    ("type", "dest", "dest = None", lambda tmp: dl(dest=None)(tmp)),
    ("range", "timeout", "timeout = 0", dl(timeout=0)),
    ("range", "timeout", "timeout = -1", dl(timeout=-1)),
    ("nan/inf", "timeout", "timeout = NaN", dl(timeout=np.nan)),
    ("nan/inf", "timeout", "timeout = inf", dl(timeout=np.inf)),
]:
    case("data.download_file", _kind, _word, _what, _call)

for _kind, _word, _what, _call in [
    ("dtype", "x_train", "x_train float64",
     lambda tmp: vdata.Dataset("d", np.zeros((2, 4)), np.zeros((1, 4), np.uint8), None, None,
                               (2, 2))),
    ("shape", "x_test", "x_test with 5 columns for image_shape (2, 2)",
     lambda tmp: vdata.Dataset("d", np.zeros((2, 4), np.uint8), np.zeros((1, 5), np.uint8), None,
                               None, (2, 2))),
    ("int range", "image_shape", "image_shape = (0, 4)",
     lambda tmp: vdata.Dataset("d", np.zeros((2, 0), np.uint8), np.zeros((1, 0), np.uint8), None,
                               None, (0, 4))),
    ("shape", "y_train", "y_train of the wrong length",
     lambda tmp: vdata.Dataset("d", np.zeros((2, 4), np.uint8), np.zeros((1, 4), np.uint8),
                               np.zeros(3, int), None, (2, 2))),
]:
    case("data.Dataset(...)", _kind, _word, _what, _call)

for _kind, _word, _what, _call in [
    ("dtype", "array", "a complex array", lambda tmp: vdata.write_idx(Path(tmp) / "c.idx",
                                                                        np.zeros(2, complex))),
    ("shape", "array", "a 0-d array", lambda tmp: vdata.write_idx(Path(tmp) / "c.idx",
                                                                    np.array(3, np.uint8))),
]:
    case("data.write_idx", _kind, _word, _what, _call)
for _kind, _word, _what, _call, _exp in [
    ("file", "x.amat", "a missing file", lambda tmp: vdata.read_amat(Path(tmp) / "x.amat"),
     FileNotFoundError),
    ("file", "bad.amat", "a line of the wrong length",
     lambda tmp: vdata.read_amat(write(tmp, "bad.amat", b"0 1 0\n")), ValueError),
    ("range", "bits", "write_amat of values 0..2",
     lambda tmp: vdata.write_amat(Path(tmp) / "o.amat", np.full((1, 784), 2)), ValueError),
]:
    case("data.read_amat / write_amat", _kind, _word, _what, _call, _exp)

