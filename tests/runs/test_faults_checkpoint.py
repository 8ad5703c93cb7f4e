"""Faults, part two: truncated, garbage, flipped, foreign and pickled checkpoints are refused with
one line naming the file (or, for a harmless flipped byte, read intact); nothing in the package
loads a pickle."""
import ast
import os
import pickle

import numpy as np

from _fault_helpers import (ARGV, CKPT, REPO, commands, copy_run, differences, npz,
                            one_line_error)
from vae_np import cli
from vae_np.runs import directory as runs


def _truncations(size):
    return [0, 1, 4, 30, 100, 1000, size // 3, size // 2, size - 1000, size - 100, size - 22,
            size - 1]


def test_truncated_empty_garbage_and_directory_checkpoints(ref, tmp_path, capsys, fast_sprites):
    whole = (ref["run"] / CKPT).read_bytes()
    damaged = {f"cut at {n} bytes": whole[:n] for n in _truncations(len(whole))}
    damaged["text"] = b"not a checkpoint at all\n"
    damaged[".npy, not .npz"] = b"\x93NUMPY" + whole[6:200]
    run = copy_run(ref, tmp_path)
    path = run / CKPT
    examples = {}
    for what, content in [*damaged.items(), ("directory", None)]:
        if path.is_dir():
            path.rmdir()
        if content is None:
            path.unlink()
            path.mkdir()
        else:
            path.write_bytes(content)
        for command, argv in commands(run).items():
            line = one_line_error(argv, capsys)
            assert str(path) in line, (what, command, line)
            examples[what] = line
    assert "not a regular file" in examples["directory"]
    assert "corrupt or truncated" in examples["cut at 0 bytes"]
    for what in damaged:
        assert "corrupt or truncated" in examples[what] or what == ".npy, not .npz", what


def test_flipped_bytes_are_refused_or_harmless(ref, tmp_path, capsys, fast_sprites):
    """A flipped byte either makes the checkpoint refused (one line naming it) or lands where it
    changes nothing that is read (zip timestamps, attributes): then every array is intact."""
    whole = (ref["run"] / CKPT).read_bytes()
    original = npz(ref["run"] / CKPT)
    run = copy_run(ref, tmp_path)
    rng = np.random.default_rng(7)
    positions = sorted(set(rng.integers(0, len(whole), 24).tolist())
                       | {40, 200, len(whole) // 2, len(whole) - 30})
    refused = 0
    for pos in positions:
        data = bytearray(whole)
        data[pos] ^= 0xFF
        (run / CKPT).write_bytes(bytes(data))
        try:
            arrays = runs.load_checkpoint(run / CKPT)
        except ValueError as exc:
            assert str(run / CKPT) in str(exc)
            refused += 1
            line = one_line_error(commands(run)["evaluate"], capsys)
            assert str(run / CKPT) in line
        else:
            assert not differences(arrays, original), f"byte {pos} changed the arrays silently"
    assert refused >= len(positions) - 4       # almost every byte is covered by a CRC or header


def _foreign_checkpoint(tmp_path, name, *extra, capsys):
    """The checkpoint of a one-epoch run with other settings."""
    out = tmp_path / name
    argv = [*ARGV, "--out", str(out), "--epochs", "1", *extra]
    assert cli.main(argv) == 0
    capsys.readouterr()
    return npz(out / CKPT)


def test_checkpoint_of_another_architecture_or_dtype_is_refused(ref, tmp_path, capsys,
                                                                 fast_sprites):
    run = copy_run(ref, tmp_path)
    config = run / "config.json"
    cases = {
        "hidden": (_foreign_checkpoint(tmp_path, "h16", "--hidden", "16", capsys=capsys),
                   "hidden [16] in the checkpoint vs [32] in " + str(config)),
        "dtype": (_foreign_checkpoint(tmp_path, "f64", "--dtype", "float64", capsys=capsys),
                  "dtype 'float64' in the checkpoint vs 'float32' in " + str(config)),
        "activation": (_foreign_checkpoint(tmp_path, "tanh", "--activation", "tanh",
                                           capsys=capsys),
                       "activation 'tanh' in the checkpoint vs 'relu' in " + str(config)),
    }
    # without the stored config, the arrays themselves give the difference away
    bare = {k: v for k, v in cases["hidden"][0].items() if k != "config"}
    cases["hidden, no stored config"] = (
        bare, "parameter encoder.0.W has shape (784, 16) in the checkpoint but (784, 32) in the "
              "model of config.json")
    bare = {k: v for k, v in cases["dtype"][0].items() if k != "config"}
    cases["dtype, no stored config"] = (
        bare, f"parameter encoder.0.W is float64 in the checkpoint but {config} gives dtype "
              f"float32 (dtype float64 vs float32)")
    for what, (arrays, message) in cases.items():
        np.savez(run / CKPT, **arrays)
        for command, argv in commands(run).items():
            line = one_line_error(argv, capsys)
            assert str(run / CKPT) in line and message in line, (what, command, line)


class _Trap:
    """Unpickling this creates a marker directory: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_a_pickled_checkpoint_is_refused_without_running_it(ref, tmp_path, capsys, fast_sprites):
    run = copy_run(ref, tmp_path)
    marker = tmp_path / "code-ran"
    evil = np.empty(1, dtype=object)
    evil[0] = _Trap(marker)
    np.savez(run / CKPT, **npz(ref["run"] / CKPT), evil=evil)     # numpy pickles object arrays
    for argv in commands(run).values():
        line = one_line_error(argv, capsys)
        assert (f"{run / CKPT}: array 'evil' is a pickled object array; checkpoints are read "
                f"without pickle (allow_pickle=False), so it is refused") in line
    (run / CKPT).write_bytes(pickle.dumps(_Trap(marker)))            # a bare pickle file
    for argv in commands(run).values():
        line = one_line_error(argv, capsys)
        assert str(run / CKPT) in line and "pickled data is never loaded" in line
    assert not marker.exists()


def test_every_np_load_in_the_package_refuses_pickles():
    """Source scan: each np.load / numpy.load call in vae_np passes allow_pickle=False, and
    nothing imports pickle or passes allow_pickle=True."""
    calls = []
    for path in sorted((REPO / "vae_np").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] in ("pickle", "cPickle", "dill", "joblib")
                               for n in names), f"{path}: imports a pickle module"
            if isinstance(node, ast.Call):
                func = node.func
                name = (func.attr if isinstance(func, ast.Attribute) else
                        func.id if isinstance(func, ast.Name) else "")
                for kw in node.keywords:
                    if kw.arg == "allow_pickle":
                        assert isinstance(kw.value, ast.Constant) and kw.value.value is False, (
                            f"{path}:{node.lineno}: allow_pickle must be the constant False")
                if name == "load" and isinstance(func, ast.Attribute) and \
                        ast.unparse(func.value) in ("np", "numpy"):
                    calls.append(f"{path.name}:{node.lineno}")
                    assert any(kw.arg == "allow_pickle" for kw in node.keywords), (
                        f"{path}:{node.lineno}: np.load without allow_pickle=False")
    assert len(calls) >= 3, calls          # runs.load_checkpoint, binarized, frey
