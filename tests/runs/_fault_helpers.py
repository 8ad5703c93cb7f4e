"""What the fault tests share (``tests/runs/test_faults_*.py``), and the child-process side of the
kill tests: run ``vae_np.cli.main`` and SIGKILL ourselves at an exact point, or record the
checkpoint of every epoch of a reference run.

Usage of the child side (the kill tests build this command line)::

    python tests/runs/_fault_helpers.py SPEC_JSON -- train --dataset sprites ... --out RUN

SPEC_JSON is one of

    {"kind": "none"}                                       just run the command
    {"kind": "record", "dir": D}                           copy checkpoint.npz to D/epoch-<k>.npz
                                                           after each epoch's write
    {"kind": "step", "n": N}                               SIGKILL right after the N-th update
    {"kind": "write", "file": F, "n": N, "bytes": B}       SIGKILL during the N-th atomic write of
                                                           F once B bytes of the temporary file
                                                           are written (B = null: after the last
                                                           byte, before flush, fsync and rename)
    {"kind": "replace", "file": F, "n": N, "when": W}      SIGKILL just "before" or "after" the
                                                           N-th os.replace onto F

Nothing here is imported by the library; the hooks are installed by monkeypatching in the child.
The test side (after ``main``) holds no state: every helper takes what it works on as arguments.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).resolve()
EPOCHS, STEPS_PER_EPOCH = 6, 8                  # --limit 512 / --batch-size 64
ARGV = ["train", "--dataset", "sprites", "--limit", "512", "--hidden", "32", "--z-dim", "4",
        "--epochs", str(EPOCHS), "--batch-size", "64", "--no-figures", "-q"]
KILLED = -signal.SIGKILL
CKPT = "checkpoint.npz"


def die():
    """SIGKILL this process: no cleanup handler, no finally block, no atexit runs."""
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class _KillAfter:
    """A file proxy that lets ``limit`` bytes (characters, in text mode) through, then kills the
    process."""

    def __init__(self, f, limit):
        self._f, self._limit, self._written = f, limit, 0

    def write(self, data):
        if not isinstance(data, str):
            data = memoryview(data).cast("B")
        room = self._limit - self._written
        if len(data) >= room:
            self._f.write(data[:room])
            self._f.flush()          # the bytes reach the OS, as a real crash would leave them
            die()
        self._written += len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)


def install(spec):
    from vae_np.runs import directory as runs
    from vae_np.training import fit as train

    kind = spec["kind"]
    count = [0]
    if kind == "record":
        out = Path(spec["dir"])
        out.mkdir(parents=True, exist_ok=True)
        real_save = runs.save_checkpoint

        def save_and_record(run_dir, model, optimizers, rng, epoch, *args, **kwargs):
            path = real_save(run_dir, model, optimizers, rng, epoch, *args, **kwargs)
            shutil.copyfile(path, out / f"epoch-{epoch}.npz")
            return path

        runs.save_checkpoint = save_and_record
    elif kind == "step":
        real_update = train._update

        def update_then_die(*args, **kwargs):
            result = real_update(*args, **kwargs)
            count[0] += 1
            if count[0] == spec["n"]:
                die()
            return result

        train._update = update_then_die
    elif kind == "write":
        real_open = runs.atomic_open

        @contextmanager
        def atomic_open(path, mode="wb"):
            with real_open(path, mode) as f:
                if Path(path).name != spec["file"]:
                    yield f
                    return
                count[0] += 1
                if count[0] != spec["n"]:
                    yield f
                    return
                if spec["bytes"] is None:
                    yield f
                    die()             # temporary file complete, not yet fsync'ed nor renamed
                yield _KillAfter(f, spec["bytes"])

        runs.atomic_open = atomic_open
    elif kind == "replace":
        real_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            if Path(dst).name == spec["file"]:
                count[0] += 1
                if count[0] == spec["n"] and spec["when"] == "before":
                    die()
                real_replace(src, dst, *args, **kwargs)
                if count[0] == spec["n"]:
                    die()
                return None
            return real_replace(src, dst, *args, **kwargs)

        os.replace = replace
    elif kind != "none":
        raise SystemExit(f"unknown spec {spec!r}")


def main(argv):
    spec = json.loads(argv[0])
    if argv[1] != "--":
        raise SystemExit("usage: _fault_helpers.py SPEC_JSON -- ARGV...")
    sys.path.insert(0, str(REPO))
    install(spec)
    from vae_np import cli
    return cli.main(argv[2:])



# ---------------------------------------------------------------------- the test side
def child_env(tmp):
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
                       cwd=REPO, env=child_env(tmp), capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


def vae_np(argv, tmp):
    """``python -m vae_np ARGV`` in a fresh process."""
    r = subprocess.run([sys.executable, "-m", "vae_np", *map(str, argv)], cwd=REPO,
                       env=child_env(tmp), capture_output=True, text=True, timeout=120)
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


def reference_run(tmp):
    """The uninterrupted reference run in ``tmp`` and the checkpoint of each of its epochs."""
    proc = subprocess.Popen([sys.executable, str(HELPER),
                             json.dumps({"kind": "record", "dir": str(tmp / "epochs")}), "--",
                             *ARGV, "--out", str(tmp / "run")],
                            cwd=REPO, env=child_env(tmp), stdout=subprocess.PIPE, text=True)
    proc.stdout.read()
    assert proc.wait() == 0
    run = tmp / "run"
    epochs = {k: npz(tmp / "epochs" / f"epoch-{k}.npz") for k in range(1, EPOCHS + 1)}
    assert not differences(epochs[EPOCHS], npz(run / CKPT))
    return dict(run=run, epochs=epochs, final=epochs[EPOCHS],
                history=history_rows(run / "history.csv"),
                config=json.loads((run / "config.json").read_text()))


def commands(run):
    """One invocation of each command that reads the run directory ``run``."""
    return {"train": ["train", "--resume", str(run), "--epochs", str(EPOCHS + 1), "-q",
                      "--no-figures"],
            "evaluate": ["evaluate", str(run), "--iwae-k", "4", "--elbo-k", "2", "--limit", "16",
                         "-q"],
            "sample": ["sample", str(run), "--n", "4", "--out", str(run / "s.png")],
            "reconstruct": ["reconstruct", str(run), "--n", "4", "--out", str(run / "r.png")]}


def one_line_error(argv, capsys):
    """Run a command that must fail: status 2, exactly one line on stderr; return the line."""
    from vae_np import cli

    status = cli.main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "Traceback" not in captured.err, (argv, captured)
    assert lines[0].startswith("vae-np: error: ")
    return lines[0]


def copy_run(ref, tmp_path, name="run"):
    """A copy of the reference run's files in ``tmp_path / name``, to damage."""
    run = tmp_path / name
    run.mkdir()
    for file in ("config.json", "checkpoint.npz", "history.csv"):
        (run / file).write_bytes((ref["run"] / file).read_bytes())
    return run


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
