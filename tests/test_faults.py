"""Faults: SIGKILL at any moment (including inside a checkpoint write) and exact resume; corrupted,
truncated or foreign checkpoints, configs and data files; pickle-free loading; divergence.

Kill tests use real processes. ``tests/_fault_helpers.py`` runs ``vae_np.cli.main`` in a child and
SIGKILLs it at an exact point (after the N-th update, after B bytes of the N-th checkpoint's
temporary file, just before / after the N-th rename); other children are plain
``python -m vae_np train`` processes SIGKILLed by this process after a delay drawn from a seeded
Generator. After every kill the run directory must hold a checkpoint that loads (the one of the
last completed epoch, bit-identical to the reference run's checkpoint of that epoch) or none yet,
and ``python -m vae_np train --resume`` must finish the run with exactly the reference's arrays:
parameters, optimizer state, rng state and history (all but the ``seconds`` column).

``python -m pytest tests/test_faults.py -s`` prints the tally:
"kill points: N (M inside a checkpoint write); bit-identical resumes: K of N".
``VAE_NP_KILL_POINTS=40`` draws more random kill times (default 10).
"""
import ast
import csv
import functools
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vae_np import cli, runs
from vae_np import data as vdata

REPO = Path(__file__).resolve().parents[1]
HELPER = Path(__file__).resolve().parent / "_fault_helpers.py"
EPOCHS, STEPS_PER_EPOCH = 6, 8                  # --limit 512 / --batch-size 64
ARGV = ["train", "--dataset", "sprites", "--limit", "512", "--hidden", "32", "--z-dim", "4",
        "--epochs", str(EPOCHS), "--batch-size", "64", "--no-figures", "-q"]
RANDOM_KILLS = int(os.environ.get("VAE_NP_KILL_POINTS", "10"))
KILLED = -signal.SIGKILL
TALLY = dict(kills=0, in_write=0, identical=0, random_landed={})


def _env(tmp):
    """Every child runs OpenBLAS single-threaded: fast on a busy machine, and the same in every
    child. (The float32 products differ in their last bits between thread counts, so a resume is
    bit-identical only under the BLAS threading of the run it continues.)"""
    env = dict(os.environ, VAE_NP_DATA=str(tmp / "cache"), PYTHONPATH=str(REPO),
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("PYTHONWARNINGS", None)
    return env


def child(spec, argv, tmp):
    """Run ``argv`` through the helper with kill ``spec``; return (returncode, stdout, stderr)."""
    r = subprocess.run([sys.executable, str(HELPER), json.dumps(spec), "--", *map(str, argv)],
                       cwd=REPO, env=_env(tmp), capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


def vae_np(argv, tmp):
    """``python -m vae_np ARGV`` in a fresh process."""
    r = subprocess.run([sys.executable, "-m", "vae_np", *map(str, argv)], cwd=REPO, env=_env(tmp),
                       capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


def npz(path):
    with np.load(path, allow_pickle=False) as z:
        return {key: z[key] for key in z.files}


def differences(a, b):
    """Keys whose arrays differ (bit for bit, dtype included); the config's 'created' time and
    the wall-clock 'history.seconds' are the only entries allowed to differ."""
    bad = sorted(set(a) ^ set(b))
    for key in set(a) & set(b):
        if key == "history.seconds":
            continue
        if key == "config":
            ca, cb = (json.loads(str(x["config"])) for x in (a, b))
            ca.pop("created", None), cb.pop("created", None)
            if ca != cb:
                bad.append(key)
        elif a[key].dtype != b[key].dtype or not np.array_equal(a[key], b[key]):
            bad.append(key)
    return bad


def history_rows(path):
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def temp_files(run):
    return sorted(p.name for p in run.glob(".*.tmp")) if run.is_dir() else []


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    """The uninterrupted reference run and the checkpoint of each of its epochs."""
    tmp = tmp_path_factory.mktemp("reference")
    proc = subprocess.Popen([sys.executable, str(HELPER),
                             json.dumps({"kind": "record", "dir": str(tmp / "epochs")}), "--",
                             *ARGV, "--out", str(tmp / "run")],
                            cwd=REPO, env=_env(tmp), stdout=subprocess.PIPE, text=True)
    proc.stdout.read()
    assert proc.wait() == 0
    run = tmp / "run"
    epochs = {k: npz(tmp / "epochs" / f"epoch-{k}.npz") for k in range(1, EPOCHS + 1)}
    assert not differences(epochs[EPOCHS], npz(run / "checkpoint.npz"))
    return dict(run=run, epochs=epochs, final=epochs[EPOCHS],
                history=history_rows(run / "history.csv"),
                config=json.loads((run / "config.json").read_text()))


@pytest.fixture(scope="module", autouse=True)
def tally():
    yield
    if TALLY["kills"]:
        print(f"\nkill points: {TALLY['kills']} ({TALLY['in_write']} inside a checkpoint write); "
              f"bit-identical resumes: {TALLY['identical']} of {TALLY['kills']}; random kills "
              f"landed at: {TALLY['random_landed']}")


# ---------------------------------------------------------------------- after a kill
def check_killed_run(run, ref, printed):
    """The state a kill left: returns the epoch of the checkpoint on disk (0: none yet)."""
    if not (run / "config.json").exists():
        assert not (run / "checkpoint.npz").exists()
        return None
    config = json.loads((run / "config.json").read_text())          # atomic: whole or absent
    ref_config = dict(ref["config"])
    config.pop("created"), ref_config.pop("created")
    assert config == ref_config
    epoch = 0
    if (run / "checkpoint.npz").exists():
        arrays = npz(run / "checkpoint.npz")                          # loads, without pickle
        assert not differences(arrays, runs.load_checkpoint(run / "checkpoint.npz"))
        epoch = int(arrays["epoch"])
        assert printed <= epoch <= printed + 1, (printed, epoch)    # the print follows the save
        assert not differences(arrays, ref["epochs"][epoch]), f"checkpoint of epoch {epoch}"
    if (run / "history.csv").exists():                                # lags by at most one epoch
        rows = history_rows(run / "history.csv")
        assert epoch - 1 <= len(rows) <= epoch and rows == ref["history"][:len(rows)]
    return epoch


def resume_and_compare(run, ref, tmp):
    """Resume in a fresh ``python -m vae_np`` and compare with the reference; True if identical."""
    status, out, err = vae_np(["train", "--resume", run, "-q", "--no-figures"], tmp)
    assert status == 0, err
    assert not temp_files(run), "stale temporary files survive the resume"
    same = (not differences(npz(run / "checkpoint.npz"), ref["final"])
            and history_rows(run / "history.csv") == ref["history"])
    return same, out


def finish(run, ref, tmp, printed, in_write):
    """After one kill: check the directory, resume (or restart), count, assert identical."""
    TALLY["kills"] += 1
    TALLY["in_write"] += bool(in_write)
    epoch = check_killed_run(run, ref, printed)
    if epoch is None:          # killed before config.json existed: nothing to resume, restart
        status, _, err = vae_np(["train", "--resume", run, "-q"], tmp)
        assert status == 2 and err.strip() in (
            f"vae-np: error: {run} is not a run directory: config.json is missing",
            f"vae-np: error: run directory not found: {run}")        # killed before mkdir
        assert vae_np([*ARGV, "--out", run], tmp)[0] == 0
        same = not differences(npz(run / "checkpoint.npz"), ref["final"])
        out = ""
    else:
        same, out = resume_and_compare(run, ref, tmp)
        if epoch == 0:
            assert out.startswith("training VAE(")            # nothing lost: from scratch
        elif epoch == EPOCHS:
            assert f"already completed {EPOCHS} epochs" in out
        else:
            assert f"after epoch {epoch}" in out
    TALLY["identical"] += same
    assert same, f"resume of {run} differs from the uninterrupted run"
    return epoch


def printed_epochs(out):
    return sum(line.startswith("epoch ") for line in out.splitlines())


CKPT = "checkpoint.npz"
# (name, spec, True if the kill lands inside a checkpoint write, epoch left on disk or None)
EXACT_KILLS = [
    ("before-config", dict(kind="replace", file="config.json", n=1, when="before"), False, None),
    ("epoch1-step3", dict(kind="step", n=3), False, 0),
    ("ckpt1-0-bytes", dict(kind="write", file=CKPT, n=1, bytes=0), True, 0),
    ("ckpt2-1000-bytes", dict(kind="write", file=CKPT, n=2, bytes=1000), True, 1),
    ("ckpt3-300000-bytes", dict(kind="write", file=CKPT, n=3, bytes=300_000), True, 2),
    ("ckpt4-written-not-renamed", dict(kind="write", file=CKPT, n=4, bytes=None), True, 3),
    ("ckpt5-before-rename", dict(kind="replace", file=CKPT, n=5, when="before"), True, 4),
    ("ckpt3-after-rename", dict(kind="replace", file=CKPT, n=3, when="after"), False, 3),
    ("ckpt6-after-rename", dict(kind="replace", file=CKPT, n=6, when="after"), False, 6),
    ("history2-50-bytes", dict(kind="write", file="history.csv", n=2, bytes=50), False, 2),
    ("epoch4-step29", dict(kind="step", n=29), False, 3),
]


@pytest.mark.parametrize("name, spec, in_write, expect", EXACT_KILLS,
                         ids=[k[0] for k in EXACT_KILLS])
def test_kill_at_an_exact_point_then_resume_bit_for_bit(name, spec, in_write, expect, ref,
                                                        tmp_path):
    run = tmp_path / "run"
    status, out, _ = child(spec, [*ARGV, "--out", run], tmp_path)
    assert status == KILLED, f"the kill point {name} was never reached"
    if in_write or spec["kind"] == "write":      # the half-written file is left, never read
        assert temp_files(run)
    assert check_killed_run(run, ref, printed_epochs(out)) == expect
    finish(run, ref, tmp_path, printed_epochs(out), in_write)


def test_kill_during_a_resume_then_resume_again(ref, tmp_path):
    run = tmp_path / "run"
    status, out, _ = child(dict(kind="step", n=20), [*ARGV, "--out", run], tmp_path)
    assert status == KILLED and check_killed_run(run, ref, printed_epochs(out)) == 2
    # the resume's second checkpoint (epoch 4) is cut after 4096 bytes
    status, out, _ = child(dict(kind="write", file=CKPT, n=2, bytes=4096),
                           ["train", "--resume", run, "-q", "--no-figures"], tmp_path)
    assert status == KILLED and temp_files(run)
    finish(run, ref, tmp_path, 2 + printed_epochs(out), True)


def _timed_run(run, tmp):
    """An uninstrumented ``python -m vae_np train``: seconds from its start and from its
    "training ..." line to its last epoch line."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "vae_np", *ARGV, "--out", str(run)], cwd=REPO,
                            env=_env(tmp), stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("training "):
            training = time.perf_counter()
        if line.startswith(f"epoch {EPOCHS}/{EPOCHS}"):
            end = time.perf_counter()
    assert proc.wait() == 0
    return end - start, end - training


def test_sigkill_at_random_moments_then_resume_bit_for_bit(ref, tmp_path):
    """Plain ``python -m vae_np train`` processes, SIGKILLed from outside after a delay drawn
    from a seeded Generator: three quarters over the training phase (from the "training ..."
    line to the last epoch's line), a quarter over the whole run (start-up included), as timed
    on an uninterrupted run here (which also must match the reference bit for bit)."""
    wall, training = _timed_run(tmp_path / "timed", tmp_path)
    assert not differences(npz(tmp_path / "timed" / CKPT), ref["final"])
    rng = np.random.default_rng(20240611)
    n_whole = RANDOM_KILLS // 4
    delays = [("wall", d) for d in rng.uniform(0, wall, n_whole)]
    delays += [("training", d) for d in rng.uniform(0, training, RANDOM_KILLS - n_whole)]
    landed = TALLY["random_landed"]
    finished_first = 0
    for i, (phase, delay) in enumerate(delays):
        run = tmp_path / f"run{i}"
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "vae_np", *ARGV, "--out", str(run)],
                                cwd=REPO, env=_env(tmp_path), stdout=subprocess.PIPE, text=True)
        first = ""
        if phase == "training":
            first = proc.stdout.readline()
            start = time.perf_counter()
        time.sleep(max(0.0, delay - (time.perf_counter() - start)))
        proc.send_signal(signal.SIGKILL)
        out = first + proc.stdout.read()
        if proc.wait() != KILLED:                  # the run ended before the signal came
            finished_first += 1
            landed["finished before the signal"] = finished_first
            continue
        in_write = any(name.startswith(f".{CKPT}.") for name in temp_files(run))
        epoch = finish(run, ref, tmp_path, printed_epochs(out), in_write)
        where = ("before config.json" if epoch is None else
                 "no checkpoint yet" if epoch == 0 else f"epoch {epoch} on disk")
        where += " + checkpoint temp file" if in_write else ""
        landed[where] = landed.get(where, 0) + 1
    assert finished_first <= len(delays) // 2, "most kills came too late: the run is too short"


# ---------------------------------------------------------------------- damaged run directories
@pytest.fixture
def fast_sprites(monkeypatch):
    """The in-process commands below load sprites many times: generate it once (same data)."""
    monkeypatch.setattr(vdata, "load_dataset", _cached_load_dataset)


@functools.lru_cache(maxsize=None)
def _sprites():
    return vdata.registry.load_dataset("sprites", None, download=False, progress=False)


def _cached_load_dataset(name, data_dir=None, **kwargs):
    if name == "sprites":
        return _sprites()
    return vdata.registry.load_dataset(name, data_dir, **kwargs)


def commands(run):
    return {"train": ["train", "--resume", str(run), "--epochs", str(EPOCHS + 1), "-q",
                      "--no-figures"],
            "evaluate": ["evaluate", str(run), "--iwae-k", "4", "--elbo-k", "2", "--limit", "16",
                         "-q"],
            "sample": ["sample", str(run), "--n", "4", "--out", str(run / "s.png")],
            "reconstruct": ["reconstruct", str(run), "--n", "4", "--out", str(run / "r.png")]}


def one_line_error(argv, capsys):
    """Run a command that must fail: status 2, exactly one line on stderr; return the line."""
    status = cli.main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "Traceback" not in captured.err, (argv, captured)
    assert lines[0].startswith("vae-np: error: ")
    return lines[0]


def copy_run(ref, tmp_path, name="run"):
    run = tmp_path / name
    run.mkdir()
    for file in ("config.json", "checkpoint.npz", "history.csv"):
        (run / file).write_bytes((ref["run"] / file).read_bytes())
    return run


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


CONFIG_DAMAGE = [
    # (what, edit of the config dict or raw bytes, commands that must refuse, words in the line)
    ("invalid JSON", b"{oops", "all", "not valid JSON"),
    ("empty file", b"", "all", "not valid JSON"),
    ("not UTF-8", b"\xff\xfe{}", "all", "not valid JSON"),
    ("a JSON list", b"[1, 2]", "all", "expected a JSON object with a 'model' entry"),
    ("no model", lambda c: c.pop("model"), "all", "expected a JSON object with a 'model' entry"),
    ("no dataset", lambda c: c.pop("dataset"), ("train", "evaluate", "reconstruct"),
     "entry 'dataset' is missing"),
    ("no epochs", lambda c: c.pop("epochs"), ("train",), "entry 'epochs' is missing"),
    ("no seed", lambda c: c.pop("seed"), ("train",), "entry 'seed' is missing"),
    ("no optimizer", lambda c: c.pop("optimizer"), ("train",), "entry 'optimizer' is missing"),
    ("no image_shape", lambda c: c.pop("image_shape"), ("sample",),
     "entry 'image_shape' is missing"),
    ("epochs a string", lambda c: c.update(epochs="six"), "all",
     "entry 'epochs' must be an integer >= 1, got 'six'"),
    ("batch_size 0", lambda c: c.update(batch_size=0), "all", "entry 'batch_size' must be"),
    ("lr a string", lambda c: c.update(lr="x"), "all", "entry 'lr' must be a finite number > 0"),
    ("lr negative", lambda c: c.update(lr=-1e-3), "all", "entry 'lr' must be"),
    ("seed negative", lambda c: c.update(seed=-1), "all", "entry 'seed' must be"),
    ("limit a string", lambda c: c.update(limit="x"), "all", "entry 'limit' must be"),
    ("unknown optimizer", lambda c: c.update(optimizer="lbfgs"), "all", "entry 'optimizer'"),
    ("unknown schedule", lambda c: c.update(schedule="x"), "all", "entry 'schedule'"),
    ("unknown lr_schedule", lambda c: c.update(lr_schedule="x"), "all", "entry 'lr_schedule'"),
    ("optimizer_options a list", lambda c: c.update(optimizer_options=[1]), "all",
     "entry 'optimizer_options' must be null or a JSON object"),
    ("unknown dataset", lambda c: c.update(dataset="cifar"), "all", "entry 'dataset' must be"),
    ("dataset a number", lambda c: c.update(dataset=3), "all", "entry 'dataset' must be"),
    ("image_shape a string", lambda c: c.update(image_shape="28x28"), "all",
     "entry 'image_shape' must be"),
    ("image_shape too small", lambda c: c.update(image_shape=[28, 29]), ("sample",),
     "image_shape [28, 29] does not hold the model's 784 features"),
    ("model hidden a string", lambda c: c["model"].update(hidden="abc"), "all",
     "'model' entry: hidden must be"),
    ("model z_dim a string", lambda c: c["model"].update(z_dim="4"), "all",
     "'model' entry: z_dim must be"),
    ("model without x_dim", lambda c: c["model"].pop("x_dim"), "all",
     "'model' entry does not describe a VAE"),
    ("model of another size", lambda c: c["model"].update(x_dim=100), "all", " 100 "),
    ("model dtype unknown", lambda c: c["model"].update(dtype="banana"), "all", "dtype"),
]


@pytest.mark.parametrize("what, edit, refusing, words", CONFIG_DAMAGE,
                         ids=[c[0] for c in CONFIG_DAMAGE])
def test_damaged_config_is_one_line_naming_it(what, edit, refusing, words, ref, tmp_path, capsys,
                                              fast_sprites):
    run = copy_run(ref, tmp_path)
    if isinstance(edit, bytes):
        (run / "config.json").write_bytes(edit)
    else:
        config = json.loads((run / "config.json").read_text())
        edit(config)
        (run / "config.json").write_text(json.dumps(config))
    refusing = commands(run) if refusing == "all" else refusing
    for command, argv in commands(run).items():
        if command in refusing:
            line = one_line_error(argv, capsys)
            assert str(run / "config.json") in line and words in line, (command, line)
    assert not temp_files(run)


def test_config_json_that_is_a_directory(ref, tmp_path, capsys, fast_sprites):
    run = copy_run(ref, tmp_path)
    (run / "config.json").unlink()
    (run / "config.json").mkdir()
    for argv in commands(run).values():
        assert "config.json is missing" in one_line_error(argv, capsys)


def test_missing_or_damaged_history_csv_is_rebuilt_from_the_checkpoint(ref, tmp_path, capsys,
                                                                        fast_sprites):
    """history.csv is an output: the checkpoint holds the history, so a resume rewrites it."""
    for damage in ("missing", "garbage"):
        run = copy_run(ref, tmp_path, damage)
        if damage == "missing":
            (run / "history.csv").unlink()
        else:
            (run / "history.csv").write_bytes(b"\xff\x00 not csv")
        assert cli.main(commands(run)["evaluate"]) == 0
        assert cli.main(["train", "--resume", str(run), "-q", "--no-figures"]) == 0
        assert "already completed 6 epochs" in capsys.readouterr().out
        assert history_rows(run / "history.csv") == ref["history"]


def test_no_checkpoint_yet(ref, tmp_path, capsys, fast_sprites):
    """Killed before the first epoch ended: evaluate says so; resume starts from scratch."""
    run = copy_run(ref, tmp_path)
    (run / CKPT).unlink()
    (run / "history.csv").unlink()
    line = one_line_error(commands(run)["evaluate"], capsys)
    assert f"checkpoint not found: {run / CKPT} (no epoch of this run has completed" in line
    assert vae_np(["train", "--resume", run, "-q", "--no-figures"], tmp_path)[0] == 0
    assert not differences(npz(run / CKPT), ref["final"])


# ---------------------------------------------------------------------- damaged data files
@pytest.fixture
def no_network(monkeypatch, tmp_path):
    monkeypatch.setenv("VAE_NP_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("VAE_NP_MNIST_MIRRORS", "http://127.0.0.1:9")


def _frey_npy(n=40):
    import io
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


# ---------------------------------------------------------------------- divergence
def test_divergence_in_the_first_epoch_leaves_no_checkpoint(tmp_path, capsys, fast_sprites):
    run = tmp_path / "run"
    status = cli.main([*ARGV, "--epochs", "2", "--optimizer", "sgd", "--lr", "1e30",
                       "--out", str(run)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1
    assert "training diverged: non-finite loss or gradient at epoch 1, step " in err[0]
    assert "(loss = " in err[0] and "Try a lower learning rate" in err[0]
    assert f"No epoch completed, so {run} holds no checkpoint" in err[0]
    assert sorted(os.listdir(run)) == ["config.json"]


def test_divergence_in_a_later_epoch_keeps_the_last_good_checkpoint(ref, tmp_path, capsys,
                                                                     fast_sprites):
    """Two good epochs, then the learning rate in config.json is raised to 1e30 (the only way to
    change it for a --resume): epoch 3 diverges, the error names epoch 3 (not the 1 that fit
    counts internally), its step and loss, and the checkpoint of epoch 2 stays as it was."""
    run = tmp_path / "run"
    assert cli.main([*ARGV, "--epochs", "2", "--optimizer", "sgd", "--lr", "0.01",
                     "--out", str(run)]) == 0
    before = (run / CKPT).read_bytes(), (run / "history.csv").read_bytes()
    config = json.loads((run / "config.json").read_text())
    config["lr"] = 1e30
    (run / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(run), "--epochs", "4", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert ("training diverged: non-finite loss or gradient at epoch 3, step " in err[0]
            and "(loss = " in err[0] and "Try a lower learning rate" in err[0]
            and f"The checkpoint of epoch 2 is kept in {run}" in err[0]), err[0]
    assert ((run / CKPT).read_bytes(), (run / "history.csv").read_bytes()) == before
    assert int(runs.load_checkpoint(run / CKPT)["epoch"]) == 2
    assert cli.main(commands(run)["sample"]) == 0                 # and it is usable
