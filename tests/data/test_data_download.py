"""download_file and load_mnist's download path, against a loopback HTTP server on 127.0.0.1.

The server serves a synthetic 300 kB file (``payload.bin``, always available) and, for the tests
that need them, copies of the real MNIST files, under several mirror prefixes:

    /good/       exact copies
    /corrupt/    one byte flipped (right length, wrong SHA-256)
    /truncated/  first half only (served with its own, shorter Content-Length)
    /missing/    nothing: 404
    /drop/       announces the full Content-Length, sends half, closes the connection
    /slow/       sends nothing for 1 s (longer than the client timeout used in the test)

No test touches any other host.
"""
import functools
import hashlib
import shutil
import socket
import threading
import time
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from vae_np.data import MNIST_FILES, DownloadError, download_file, load_mnist
from vae_np.data import download as download_module

PAYLOAD = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
NAME = "payload.bin"


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        if self.path.startswith("/drop/"):
            data = (self.server.root / "good" / self.path[len("/drop/"):]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif self.path.startswith("/slow/"):
            time.sleep(1.0)
            try:
                self.send_error(503)
            except OSError:  # the client gave up long ago
                pass
        else:
            super().do_GET()


def _publish(root, name, data):
    """Put ``data`` under every mirror prefix: exact, one byte flipped, first half only."""
    (root / "good" / name).write_bytes(data)
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0x01
    (root / "corrupt" / name).write_bytes(bytes(flipped))
    (root / "truncated" / name).write_bytes(data[: len(data) // 2])


@pytest.fixture(scope="module")
def mirror_root(tmp_path_factory):
    """The directory the server serves."""
    return tmp_path_factory.mktemp("mirrors")


@pytest.fixture(scope="module")
def server(mirror_root):
    """Base URL of a loopback server; shut down when the module's tests are done."""
    root = mirror_root
    for sub in ("good", "corrupt", "truncated", "missing"):
        (root / sub).mkdir()
    _publish(root, NAME, PAYLOAD)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    httpd.root = root
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def mnist_server(server, mirror_root, shared_data):
    """The same server, now also serving copies of the four real MNIST files."""
    for name in MNIST_FILES:
        _publish(mirror_root, name, (shared_data / "mnist" / name).read_bytes())
    return server


@pytest.fixture
def refused_url():
    """A loopback URL on a port nobody listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def isolated_cache(monkeypatch, tmp_path):
    """Every test gets its own empty cache and no mirror override from the environment."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("VAE_NP_DATA", str(cache))
    monkeypatch.delenv("VAE_NP_MNIST_MIRRORS", raising=False)
    return cache


def _files(directory):
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_download_verifies_and_reports_progress(server, tmp_path, capsys):
    dest = tmp_path / "out" / NAME
    assert download_file(f"{server}/good/{NAME}", dest, PAYLOAD_SHA) == dest
    assert dest.read_bytes() == PAYLOAD
    assert _files(dest.parent) == [NAME]  # no temporary file left behind
    assert "300,000 / 300,000 bytes (100%)" in capsys.readouterr().err


def test_no_output_without_progress(server, tmp_path, capsys):
    download_file([f"{server}/good/{NAME}"], tmp_path / NAME, PAYLOAD_SHA.upper(), progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("bad", ["missing", "corrupt", "truncated", "drop", "refused"])
def test_falls_back_to_the_next_mirror(server, refused_url, tmp_path, bad):
    bad_url = f"{refused_url}/{NAME}" if bad == "refused" else f"{server}/{bad}/{NAME}"
    dest = tmp_path / NAME
    download_file([bad_url, f"{server}/good/{NAME}"], dest, PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert _files(tmp_path) == [NAME]


def test_all_mirrors_bad_lists_each_failure_and_leaves_nothing(server, refused_url, tmp_path):
    urls = [f"{server}/{bad}/{NAME}" for bad in ("missing", "corrupt", "truncated", "drop")]
    urls.append(f"{refused_url}/{NAME}")
    dest_dir = tmp_path / "cache"
    with pytest.raises(DownloadError) as info:
        download_file(urls, dest_dir / NAME, PAYLOAD_SHA, progress=False)
    message = str(info.value)
    for url in urls:
        assert url in message
    assert "404" in message
    assert "SHA-256 mismatch" in message and PAYLOAD_SHA in message
    assert "connection dropped" in message
    assert _files(dest_dir) == []  # no partial file, no temporary file


def test_existing_destination_is_untouched_by_a_failed_download(server, tmp_path):
    dest = tmp_path / NAME
    dest.write_bytes(b"old content")
    with pytest.raises(DownloadError):
        download_file(f"{server}/corrupt/{NAME}", dest, PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == b"old content" and _files(tmp_path) == [NAME]


def test_connection_drop_mid_transfer_leaves_no_partial_file(server, tmp_path):
    with pytest.raises(DownloadError, match="transfer ended after 150000 of 300000 bytes"):
        download_file(f"{server}/drop/{NAME}", tmp_path / NAME, PAYLOAD_SHA, progress=False)
    assert _files(tmp_path) == []


def test_timeout_moves_on(server, tmp_path):
    dest = tmp_path / NAME
    start = time.monotonic()
    download_file([f"{server}/slow/{NAME}", f"{server}/good/{NAME}"], dest, PAYLOAD_SHA,
                  progress=False, timeout=0.2)
    assert time.monotonic() - start < 1.0  # the slow server answers only after 1 s
    assert _files(tmp_path) == [NAME]


def test_keyboard_interrupt_removes_the_temporary_file(server, tmp_path, monkeypatch):
    real_urlopen = urllib.request.urlopen

    def interrupted_urlopen(*args, **kwargs):
        response = real_urlopen(*args, **kwargs)
        blocks = iter([response.read(1000)])

        def read(n):  # one block, then Ctrl-C
            for block in blocks:
                return block
            raise KeyboardInterrupt

        response.read = read
        return response

    monkeypatch.setattr(urllib.request, "urlopen", interrupted_urlopen)
    with pytest.raises(KeyboardInterrupt):
        download_file([f"{server}/good/{NAME}"] * 2, tmp_path / NAME, PAYLOAD_SHA, progress=False)
    assert _files(tmp_path) == []


def test_full_disk_is_reported_and_cleaned_up(server, tmp_path, monkeypatch):
    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(download_module.os, "fsync", no_space)
    with pytest.raises(DownloadError, match="No space left on device"):
        download_file(f"{server}/good/{NAME}", tmp_path / NAME, PAYLOAD_SHA, progress=False)
    assert _files(tmp_path) == []


@pytest.mark.parametrize("urls, sha, fragment", [([], "0" * 64, "url_list"),
                                                  ("http://127.0.0.1:9/x", "abc", "sha256"),
                                                  ("http://127.0.0.1:9/x", "z" * 64, "sha256")])
def test_bad_arguments(tmp_path, urls, sha, fragment):
    with pytest.raises(ValueError, match=fragment):
        download_file(urls, tmp_path / "x", sha)
    assert _files(tmp_path) == []


# --- load_mnist's download path, on the real files ----------------------------------------------

def test_load_mnist_downloads_into_the_cache_then_reuses_it(mnist_server, isolated_cache):
    server = mnist_server
    ds = load_mnist(mirrors=[f"{server}/missing", f"{server}/corrupt/", f"{server}/good"],
                    progress=False)
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert _files(isolated_cache / "mnist") == sorted(MNIST_FILES)
    # Second call: everything comes from the cache, even with downloads disabled.
    again = load_mnist(download=False)
    np.testing.assert_array_equal(again.x_test, ds.x_test)


def test_mirrors_from_the_environment(mnist_server, isolated_cache, monkeypatch, refused_url):
    monkeypatch.setenv("VAE_NP_MNIST_MIRRORS", f"{refused_url}, {mnist_server}/good/")
    ds = load_mnist(progress=False)
    test_counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    np.testing.assert_array_equal(np.bincount(ds.y_test), test_counts)


def test_real_file_dropped_mid_transfer(mnist_server, isolated_cache):
    name = "train-images-idx3-ubyte.gz"  # 9.9 MB: the drop happens well inside the body
    with pytest.raises(DownloadError, match="transfer ended after 4956211 of 9912422 bytes"):
        download_file(f"{mnist_server}/drop/{name}", isolated_cache / name, MNIST_FILES[name],
                      progress=False)
    assert _files(isolated_cache) == []


def test_load_mnist_all_mirrors_bad_leaves_the_cache_clean(mnist_server, isolated_cache):
    with pytest.raises(DownloadError) as info:
        load_mnist(mirrors=[f"{mnist_server}/truncated", f"{mnist_server}/drop"], progress=False)
    assert f"{mnist_server}/truncated/" in str(info.value)
    assert f"{mnist_server}/drop/" in str(info.value)
    assert _files(isolated_cache / "mnist") == []


def test_load_mnist_data_dir_is_searched_first(mnist_server, shared_data, tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    for name in MNIST_FILES:
        shutil.copy(shared_data / "mnist" / name, local / name)
    ds = load_mnist(local, mirrors=[f"{mnist_server}/missing"], progress=False)
    assert ds.x_train.shape == (60000, 784)


@pytest.mark.parametrize("mirrors", [[], 5, [b"http://127.0.0.1:9/"]])
def test_load_mnist_bad_mirrors_argument(mirrors, tmp_path):
    with pytest.raises(ValueError, match="mirrors"):
        load_mnist(tmp_path, mirrors=mirrors, progress=False)
