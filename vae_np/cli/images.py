"""``vae-np sample RUN_DIR`` and ``vae-np reconstruct RUN_DIR``: image grids from a trained run."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.batch import to_float
from ..evaluate import evaluation_set
from ..figures import runs as figures
from ..runs import directory as runs
from .args import INT, OUT_FILE
from .common import SAMPLE_STREAM, draw, load_data, run_dir_args
from .prior import is_vq_run, run_reconstruct_vq, run_sample_vq


def register(subparsers):
    p = subparsers.add_parser("sample", help="decode samples from the prior into an image grid")
    run_dir_args(p, data=False)
    p.add_argument("--n", type=INT, default=64, help="number of samples (default 64)")
    p.add_argument("--out", type=OUT_FILE, help="PNG path (default RUN_DIR/figures/samples.png)")
    p.set_defaults(func=run_sample)

    p = subparsers.add_parser("reconstruct", help="test images beside their reconstructions")
    run_dir_args(p)
    p.add_argument("--n", type=INT, default=32,
                   help="number of test images, a random subset chosen by --seed (default 32)")
    p.add_argument("--out", type=OUT_FILE,
                   help="PNG path (default RUN_DIR/figures/reconstructions.png)")
    p.set_defaults(func=run_reconstruct)


def run_sample(args) -> int:
    if is_vq_run(args.run_dir):          # a VQ-VAE run: decoded samples of its learned prior
        return run_sample_vq(args)
    config, model, epoch, _ = runs.load_run(args.run_dir)
    path = Path(args.run_dir) / runs.CONFIG_NAME
    runs.check_config(config, path, ("image_shape",))
    shape = config["image_shape"]
    if int(np.prod(shape)) != model.x_dim:
        raise ValueError(f"{path}: image_shape {shape} does not hold the model's {model.x_dim} "
                         f"features")
    images = model.sample(args.n, rng=np.random.default_rng([args.seed, SAMPLE_STREAM]))
    out = Path(args.out or Path(args.run_dir) / runs.FIGURES_DIR / "samples.png")
    return draw(lambda: figures.image_grid(out, images, shape, ncols=min(args.n, 8),
                title=f"samples from the prior ({config.get('dataset', '?')}, epoch {epoch})"))


def run_reconstruct(args) -> int:
    if is_vq_run(args.run_dir):
        return run_reconstruct_vq(args)
    config, model, epoch, _ = runs.load_run(args.run_dir)
    runs.check_config(config, Path(args.run_dir) / runs.CONFIG_NAME, ("dataset",))
    dataset = load_data(config, args)
    x = evaluation_set(dataset, "test", args.n, args.seed)
    out = Path(args.out or Path(args.run_dir) / runs.FIGURES_DIR / "reconstructions.png")
    inputs = to_float(x, np.dtype(np.float64))      # grey levels in [0, 1], as the decoder's mean
    return draw(lambda: figures.reconstructions(out, inputs, model.reconstruct(x),
                dataset.image_shape, title=f"{dataset.name}, epoch {epoch}"))
