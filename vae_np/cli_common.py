"""What the run-directory commands (train, evaluate, sample, reconstruct) share: loading the run's
data set, the ``RUN_DIR`` arguments, drawing a figure, and the seeds' stream numbers."""
from __future__ import annotations

import os
import sys

from . import figures
from .cli_args import INT0

# default_rng([seed, stream]): training and figure drawing use separate streams of one seed, so
# drawing figures never changes the training draws (and a resume stays bit-exact)
TRAIN_STREAM, SAMPLE_STREAM = 1, 3


def run_dir_args(p, data=True):
    """Add the positional RUN_DIR, ``--seed`` and (``data``) ``--data-dir`` to parser ``p``."""
    p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by 'vae-np train'")
    p.add_argument("--seed", type=INT0, default=0, help="seed of the noise (default 0)")
    if data:
        p.add_argument("--data-dir", help="override the run's data directory")


def load_data(config, args):
    """The data set named in ``config``, from ``--data-dir`` or the run's own data directory.

    A failed download is a ValueError and a missing file a FileNotFoundError, each on one line
    (the CLI prints it as ``vae-np: error: ...``)."""
    from .data import DownloadError, load_dataset

    data_dir = getattr(args, "data_dir", None) or config.get("data_dir")
    try:
        return load_dataset(config["dataset"], data_dir, download=not config.get("no_download"),
                            progress=not getattr(args, "quiet", False))
    except DownloadError as exc:
        raise ValueError(f"could not download {config['dataset']!r}: {exc}") from None
    except FileNotFoundError as exc:
        raise FileNotFoundError(" ".join(str(exc).split())) from None


def absolute_data_dir(path):
    """``--data-dir`` as an absolute path (None stays None), for a run's config.json: a path
    relative to the directory train ran in would not be found by evaluate run elsewhere."""
    return None if path is None else os.path.abspath(path)


def draw(make_figure) -> int:
    """Call ``make_figure()`` (which returns the written path) and print the path: status 0, or
    status 1 with the install hint when matplotlib is missing."""
    try:
        print(f"wrote {make_figure()}")
    except figures.PlotUnavailable as exc:
        print(f"vae-np: {exc}", file=sys.stderr)
        return 1
    return 0
