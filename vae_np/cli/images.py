"""``vae-np sample RUN_DIR`` and ``vae-np reconstruct RUN_DIR``: image grids from a trained run of
any model kind (each kind draws its own: vae_np.cli.kinds)."""
from __future__ import annotations

from .args import INT, OUT_FILE
from .common import run_dir_args
from .kinds import for_run


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
    """Hand the run to its model kind (vae_np.cli.kinds): decoded samples of its prior."""
    return for_run(args.run_dir).sample(args)


def run_reconstruct(args) -> int:
    """Hand the run to its model kind: test images (a random subset chosen by --seed) beside
    their reconstructions."""
    return for_run(args.run_dir).reconstruct(args)
