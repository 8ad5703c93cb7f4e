"""Download a file from a list of mirrors, verify its SHA-256, and move it into place atomically.

The bytes go to a temporary file in the destination's own directory (so the final
``os.replace`` is an atomic rename on the same file system). Whatever goes wrong (connection
refused or dropped, HTTP error, timeout, wrong checksum, full disk, Ctrl-C) the temporary file is
removed: the destination either holds the complete, verified file or is untouched.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from .cache import as_path

CHUNK_BYTES = 1 << 16
DEFAULT_TIMEOUT = 30.0
"""Seconds ``urlopen`` waits for the connection and for each read."""


class DownloadError(RuntimeError):
    """Every mirror failed; the message lists each URL and why it failed."""


def sha256_file(path) -> str:
    """The SHA-256 of the file at ``path`` (read in chunks), as 64 lowercase hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(url_list, dest, sha256, progress=True, *, timeout=DEFAULT_TIMEOUT) -> Path:
    """Download the first mirror that delivers the right bytes to ``dest``; returns ``dest``.

    Parameters
    ----------
    url_list : str or list of str, full URLs of the same file, tried in order
    dest : str or path-like; its directory is created if needed, and it is replaced only by a
        verified file
    sha256 : the file's expected SHA-256 (64 hex digits, case-insensitive)
    progress : print a progress line (bytes received / total, percent) to stderr
    timeout : seconds to wait for the connection and for each read before giving up on a mirror

    Raises
    ------
    ValueError if ``url_list`` is empty, ``timeout`` is not a finite number > 0 or ``sha256`` is
    not 64 hex digits; DownloadError if every mirror failed (naming each URL and its failure:
    HTTP status, connection error, short transfer, checksum mismatch, local OSError);
    KeyboardInterrupt re-raised after the temporary file is removed.
    """
    try:
        urls = [url_list] if isinstance(url_list, str) else list(url_list)
    except TypeError:
        urls = None
    if urls is None or not all(isinstance(u, str) for u in urls):
        raise ValueError(f"url_list must be a URL string or a list of them, got {url_list!r}")
    if not urls:
        raise ValueError("url_list is empty; give at least one URL")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0 \
            or timeout == float("inf"):
        raise ValueError(f"timeout must be a finite number of seconds > 0, got {timeout!r}")
    expected = str(sha256).strip().lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    dest = as_path("dest", dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        try:
            _fetch_one(url, dest, expected, progress, timeout)
            return dest
        except Exception as exc:  # noqa: BLE001 - record every failure, try the next mirror
            failures.append(f"  {url}: {type(exc).__name__}: {exc}")
            if progress:
                print(f"  failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    raise DownloadError(f"could not download {dest.name} to {dest.parent}; every mirror "
                        f"failed:\n" + "\n".join(failures))


def _fetch_one(url, dest: Path, expected, progress, timeout) -> None:
    """Download ``url`` to a temporary file beside ``dest``, verify, then rename over ``dest``."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            if progress:
                print(f"downloading {url}", file=sys.stderr)
            request = urllib.request.Request(url, headers={"User-Agent": "vae_np"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                digest = hashlib.sha256()
                received = 0
                meter = _Progress(dest.name, total) if progress else None
                while True:
                    block = response.read(CHUNK_BYTES)
                    if not block:
                        break
                    out.write(block)
                    digest.update(block)
                    received += len(block)
                    if meter is not None:
                        meter.update(received)
                if meter is not None:
                    meter.finish(received)
            if total is not None and received != total:
                raise ConnectionError(f"transfer ended after {received} of {total} bytes "
                                      f"(connection dropped)")
            actual = digest.hexdigest()
            if actual != expected:
                raise ValueError(f"SHA-256 mismatch after {received} bytes: expected "
                                 f"{expected}, got {actual}")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp makes it private (0o600); a cache file is not secret
        os.replace(tmp_name, dest)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


class _Progress:
    """A single stderr line, rewritten in place at most every 0.1 s."""

    def __init__(self, name, total):
        self.name, self.total, self.last = name, total, 0.0

    def _line(self, received) -> str:
        if self.total:
            pct = 100.0 * received / self.total
            return f"\r  {self.name}: {received:,} / {self.total:,} bytes ({pct:3.0f}%)"
        return f"\r  {self.name}: {received:,} bytes"

    def update(self, received):
        now = time.monotonic()
        if now - self.last >= 0.1:
            self.last = now
            print(self._line(received), end="", file=sys.stderr, flush=True)

    def finish(self, received):
        print(self._line(received), file=sys.stderr, flush=True)
