"""Where data files are looked for, and where downloads go.

Search order for a file of data set ``<sub>`` (``mnist``, ``binarized_mnist`` or ``frey_face``):

1. ``data_dir`` and ``data_dir/<sub>``, when the caller passes ``data_dir``;
2. the cache directory and ``cache/<sub>``.

So both ``data_dir="shared/data"`` and ``data_dir="shared/data/mnist"`` work. Downloads are
written to ``cache/<sub>``.

The cache directory is ``$VAE_NP_DATA`` when that variable is set, else ``$XDG_CACHE_HOME/vae_np``,
else ``~/.cache/vae_np``.
"""
from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """The cache directory (not created here): ``$VAE_NP_DATA`` if set and non-empty, else
    ``$XDG_CACHE_HOME/vae_np`` if that is set, else ``~/.cache/vae_np``."""
    explicit = os.environ.get("VAE_NP_DATA", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg:
        return Path(xdg).expanduser() / "vae_np"
    return Path.home() / ".cache" / "vae_np"


def as_path(name, path) -> Path:
    """``Path(path)``, or ValueError naming the argument when it is not a str or os.PathLike."""
    if not isinstance(path, (str, os.PathLike)) or (isinstance(path, str) and not path.strip()):
        raise ValueError(f"{name} must be a file path (str or os.PathLike), got {path!r}")
    return Path(path)


def candidate_dirs(data_dir, subdir) -> list[Path]:
    """The directories searched, in order and without duplicates, for the files of one data set.

    Parameters
    ----------
    data_dir : str, path-like or None: searched first (itself, then ``data_dir/subdir``)
    subdir : the data set's folder name inside a data root, e.g. ``"mnist"``

    Raises ValueError if ``data_dir`` is neither None nor a path.
    """
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise ValueError(f"data_dir must be None or a path (str or os.PathLike), got {data_dir!r}")
    roots = [] if data_dir is None else [Path(data_dir).expanduser()]
    roots.append(default_cache_dir())
    dirs = []
    for root in roots:
        for d in (root, root / subdir):
            if d not in dirs:
                dirs.append(d)
    return dirs


def find_file(names, dirs):
    """The first existing file ``dir / name`` (directories outermost, then ``names`` in order of
    preference), or None when no directory holds any of the names."""
    for d in dirs:
        for name in names:
            if (d / name).is_file():
                return d / name
    return None


def format_dirs(dirs) -> str:
    """One indented line per directory, for 'file not found' messages."""
    return "\n".join(f"  {d}" for d in dirs)


class DataNotFoundError(FileNotFoundError):
    """A data set's files are in none of the directories searched.

    Attributes
    ----------
    what : what is missing, e.g. ``"MNIST file t10k-labels-idx1-ubyte.gz not found"``
    put : the files that would do, e.g. ``"the four original MNIST .gz files"``
    dirs : list of Path, the directories searched, in order
    downloadable : whether the loader could download the files (it was told not to)

    The message speaks to a library caller (``data_dir=...``, ``download=True``); the command
    line re-words the advice for its own options from these attributes.
    """

    def __init__(self, what, put, dirs, downloadable=False):
        self.what, self.put, self.dirs, self.downloadable = what, put, list(dirs), downloadable
        advice = "pass data_dir=DIR naming the directory that holds them"
        if downloadable:
            advice += ", or download=True to download them into the cache"
        super().__init__(f"{what}. Put {put} in one of:\n{format_dirs(self.dirs)}\n({advice}; "
                         f"set VAE_NP_DATA to choose the cache directory)")
