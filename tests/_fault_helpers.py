"""Child-process side of tests/test_faults.py: run ``vae_np.cli.main`` and SIGKILL ourselves at an
exact point, or record the checkpoint of every epoch of a reference run.

Usage (the test builds this command line)::

    python tests/_fault_helpers.py SPEC_JSON -- train --dataset sprites ... --out RUN

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
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


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
    from vae_np import runs, train

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


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
