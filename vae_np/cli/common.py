"""What the run-directory commands (train, evaluate, sample, reconstruct) share: loading the run's
data set, the ``RUN_DIR`` arguments, drawing a figure, and the seeds' stream numbers."""
from __future__ import annotations

import os
import sys

import numpy as np

from ..figures import runs as figures
from ..runs import directory as runs
from .args import INT0

# default_rng([seed, stream]): training and figure drawing use separate streams of one seed, so
# drawing figures never changes the training draws (and a resume stays bit-exact). The other
# streams: 2 the evaluation noise (vae_np.evaluate), 4 the choice of a --limit subset
# (vae_np.data.subset), 5 the prior's shuffles (fit-prior).
TRAIN_STREAM, SAMPLE_STREAM, PRIOR_STREAM = 1, 3, 5


def run_dir_args(p, data=True):
    """Add the positional RUN_DIR, ``--seed`` and (``data``) ``--data-dir`` to parser ``p``."""
    p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by 'vae-np train'")
    p.add_argument("--seed", type=INT0, default=0, help="seed of the noise (default 0)")
    if data:
        p.add_argument("--data-dir", help="override the run's data directory")


def load_data(config, args):
    """The data set named in ``config``, from ``--data-dir`` or the run's own data directory.

    A failed download is a ValueError and a missing file a FileNotFoundError, each on one line
    (the CLI prints it as ``vae-np: error: ...``), in the command line's words: where the files
    were looked for and that ``--data-dir DIR`` names the directory that holds them."""
    from ..data import DataNotFoundError, DownloadError, load_dataset

    data_dir = getattr(args, "data_dir", None) or config.get("data_dir")
    download = not config.get("no_download")
    try:
        return load_dataset(config["dataset"], data_dir, download=download,
                            progress=not getattr(args, "quiet", False))
    except DownloadError as exc:
        raise ValueError(f"could not download {config['dataset']!r}: {exc}. If the files are "
                         f"on disk, pass --data-dir DIR naming the directory that holds "
                         f"them") from None
    except DataNotFoundError as exc:
        message = (f"{exc.what} in {_short_dirs(exc.dirs)}: put {exc.put} there, or pass "
                   f"--data-dir DIR")
        if exc.downloadable and not download:
            message += (" (or leave out --no-download)" if getattr(args, "no_download", False)
                        else " (this run was made with --no-download)")
        raise FileNotFoundError(message) from None
    except FileNotFoundError as exc:
        raise FileNotFoundError(" ".join(str(exc).split())) from None


def _short_dirs(dirs) -> str:
    """The directories searched, short enough for one line: ``D[/sub]`` where a directory is
    followed by its own subfolder, and the home directory as ``~``."""
    home, parts, i = os.path.expanduser("~"), [], 0
    while i < len(dirs):
        text = str(dirs[i])
        if i + 1 < len(dirs) and os.path.dirname(str(dirs[i + 1])) == text:
            text += f"[/{os.path.basename(str(dirs[i + 1]))}]"
            i += 1
        parts.append("~" + text[len(home):] if home != "/" and text.startswith(home + "/")
                     else text)
        i += 1
    return " or ".join(parts)


def run_subset_seed(config):
    """The seed of a run's ``--limit`` subsets: its config's ``"subset_seed"`` (train writes the
    run's ``--seed``), or None, the first N rows, for a run made before random subsets with a
    limit (a config.json with ``"limit"`` and no ``"subset_seed"``): it was trained on its first
    N images, and a resume, or fit-prior on its codes, must use the same images. A run made before
    random subsets without a limit saw every image: a part of them (``fit-prior --limit``) is the
    random subset of the run's ``"seed"``, as for a run made now."""
    if "subset_seed" in config:
        return config["subset_seed"]
    return None if config.get("limit") is not None else config.get("seed", 0)


def limited_data(config, dataset):
    """The training images and the test subset of a run: every row of each split, or with
    ``config["limit"]`` = N a seeded uniform random subset of N rows of each
    (:func:`vae_np.data.subset_rows`, seed :func:`run_subset_seed`; the training stream is not
    drawn from, so a resume stays bit-exact).

    Returns
    -------
    x_train : (N, D) uint8 as stored (a dynamically binarized set is binarized per batch)
    test : vae_np.evaluate.EvaluationSet (binarized once for dynamic data; ``test.rows`` key
        the evaluation noise)
    what : e.g. ``"1000 of 60000 train / 1000 of 10000 test images, random subsets, seed 0"``
    """
    from ..data import subset_rows
    from ..evaluate import evaluation_subset

    limit, seed = config.get("limit"), run_subset_seed(config)
    rows = subset_rows(len(dataset.x_train), limit, seed, "train")
    whole = len(rows) == len(dataset.x_train)
    x_train = dataset.x_train if whole else dataset.x_train[rows]
    test = evaluation_subset(dataset, "test", limit, seed)

    def part(n, n_split):
        return f"{n}" if n >= n_split else f"{n} of {n_split}"

    what = (f"{part(len(rows), len(dataset.x_train))} train / "
            f"{part(len(test.rows), test.n_split)} test images")
    if not whole or len(test.rows) < test.n_split:
        what += (f", random subsets, seed {seed}" if seed is not None else
                 ", the first rows of each split (a run made before random subsets)")
    return x_train, test, what


SE_NOTE = ", mean +- standard error over the images"
"""What evaluate's header adds when its numbers carry standard errors (more than one image)."""


def mean_se(result, key) -> str:
    """``"111.783 +- 0.570"``: the mean ``result[key]`` and its standard error
    ``result[key + "_se"]``, the error left out when there is none (a single image)."""
    se = result[f"{key}_se"]
    return f"{result[key]:.3f}" + ("" if se is None else f" +- {se:.3f}")


def save_per_example(path, **arrays):
    """``evaluate --per-example FILE``: every image's values as an .npz (``rows``, the images'
    rows in the split, and one (n,) array per reported mean), written whole or not at all, so
    that runs evaluated on the same images can be compared image by image (a paired
    difference has a far smaller standard error than either mean)."""
    with runs.atomic_open(path) as handle:
        np.savez(handle, **{name: np.asarray(a) for name, a in arrays.items()})


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
