"""Faults, part one: SIGKILL at any moment (including inside a checkpoint write), then an exact
resume.

Kill tests use real processes. ``tests/runs/_fault_helpers.py`` runs ``vae_np.cli.main`` in a child
and SIGKILLs it at an exact point (after the N-th update, after B bytes of the N-th checkpoint's
temporary file, just before / after the N-th rename); other children are plain
``python -m vae_np train`` processes SIGKILLed by this process after a delay drawn from a seeded
Generator. After every kill the run directory must hold a checkpoint that loads (the one of the
last completed epoch, bit-identical to the reference run's checkpoint of that epoch) or none yet,
and ``python -m vae_np train --resume`` must finish the run with exactly the reference's arrays:
parameters, optimizer state, rng state and history (all but the ``seconds`` column).

``python -m pytest tests/runs/test_faults_kill.py -s`` prints where each kill landed.
``VAE_NP_KILL_POINTS=40`` draws more random kill times (default 10).
"""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from _fault_helpers import (ARGV, CKPT, EPOCHS, KILLED, REPO, child, child_env, differences,
                            history_rows, npz, temp_files, vae_np)
from vae_np.runs import directory as runs

RANDOM_KILLS = int(os.environ.get("VAE_NP_KILL_POINTS", "10"))


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


def finish(run, ref, tmp, printed):
    """After one kill: check the directory, resume (or restart), assert the result identical to
    the reference; returns the epoch the kill left on disk (None: before config.json)."""
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
    assert same, f"resume of {run} differs from the uninterrupted run"
    return epoch


def printed_epochs(out):
    return sum(line.startswith("epoch ") for line in out.splitlines())


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
    finish(run, ref, tmp_path, printed_epochs(out))
    print(f"\nkill {name}{' inside a checkpoint write' if in_write else ''}: epoch {expect} on "
          f"disk, resumed bit for bit")


def test_kill_during_a_resume_then_resume_again(ref, tmp_path):
    run = tmp_path / "run"
    status, out, _ = child(dict(kind="step", n=20), [*ARGV, "--out", run], tmp_path)
    assert status == KILLED and check_killed_run(run, ref, printed_epochs(out)) == 2
    # the resume's second checkpoint (epoch 4) is cut after 4096 bytes
    status, out, _ = child(dict(kind="write", file=CKPT, n=2, bytes=4096),
                           ["train", "--resume", run, "-q", "--no-figures"], tmp_path)
    assert status == KILLED and temp_files(run)
    finish(run, ref, tmp_path, 2 + printed_epochs(out))


def _timed_run(run, tmp):
    """An uninstrumented ``python -m vae_np train``: seconds from its start and from its
    "training ..." line to its last epoch line."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "vae_np", *ARGV, "--out", str(run)], cwd=REPO,
                            env=child_env(tmp), stdout=subprocess.PIPE, text=True)
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
    landed = {}
    finished_first = 0
    for i, (phase, delay) in enumerate(delays):
        run = tmp_path / f"run{i}"
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "vae_np", *ARGV, "--out", str(run)],
                                cwd=REPO, env=child_env(tmp_path), stdout=subprocess.PIPE,
                                text=True)
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
        epoch = finish(run, ref, tmp_path, printed_epochs(out))
        where = ("before config.json" if epoch is None else
                 "no checkpoint yet" if epoch == 0 else f"epoch {epoch} on disk")
        where += " + checkpoint temp file" if in_write else ""
        landed[where] = landed.get(where, 0) + 1
    print(f"\n{len(delays) - finished_first} random kills, each resumed bit for bit, landed at: "
          f"{landed}")
    assert finished_first <= len(delays) // 2, "most kills came too late: the run is too short"


# --------------------------------------------------------------------------- other model kinds
VQ_ARGV = ["train", "--model", "vqvae", "--dataset", "sprites", "--limit", "160", "--hidden", "16",
           "--n-latents", "3", "--code-dim", "2", "--codebook-size", "8", "--codebook-update",
           "ema", "--epochs", "3", "--batch-size", "40", "--no-figures", "-q"]


@pytest.fixture(scope="module")
def vq_ref(tmp_path_factory):
    """An uninterrupted VQ-VAE run (EMA codebook: its state is in the checkpoint too)."""
    tmp = tmp_path_factory.mktemp("vq-reference")
    assert vae_np([*VQ_ARGV, "--out", tmp / "run"], tmp)[0] == 0
    return tmp / "run"


@pytest.mark.parametrize("spec, expect", [
    (dict(kind="step", n=6), 1),                                # mid epoch 2 (4 steps an epoch)
    (dict(kind="write", file=CKPT, n=2, bytes=1000), 1),        # inside epoch 2's checkpoint
    (dict(kind="replace", file=CKPT, n=3, when="before"), 2),   # epoch 3's, written, not renamed
], ids=["epoch2-step2", "ckpt2-1000-bytes", "ckpt3-before-rename"])
def test_a_vq_run_killed_at_an_exact_point_resumes_bit_for_bit(spec, expect, vq_ref, tmp_path):
    """The one resume path serves every model kind: a VQ-VAE run killed mid-epoch or inside a
    checkpoint write keeps the checkpoint of its last completed epoch, and --resume ends with
    exactly the uninterrupted run's arrays (parameters, EMA state, Adam, rng, history)."""
    run = tmp_path / "run"
    status, _, _ = child(spec, [*VQ_ARGV, "--out", run], tmp_path)
    assert status == KILLED
    assert int(npz(run / CKPT)["epoch"]) == expect
    status, out, err = vae_np(["train", "--resume", run, "-q", "--no-figures"], tmp_path)
    assert status == 0 and f"after epoch {expect}" in out, err
    assert not temp_files(run)
    assert not differences(npz(run / CKPT), npz(vq_ref / CKPT))
    assert history_rows(run / "history.csv") == history_rows(vq_ref / "history.csv")
