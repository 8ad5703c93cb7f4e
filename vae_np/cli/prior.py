"""``vae-np fit-prior RUN_DIR``: fit a learned prior to the codes of a run whose model kind has one
(a VQ-VAE: a MADE prior over its codes, written to RUN_DIR/prior.npz and prior.json; see
vae_np.cli.vq). ``evaluate``, ``sample`` and ``reconstruct`` then use it through the same kind.
"""
from __future__ import annotations

from .args import INT, POSITIVE, WIDTHS
from .common import run_dir_args
from .kinds import for_run


def register(subparsers):
    p = subparsers.add_parser(
        "fit-prior", help="fit a MADE prior to a VQ-VAE run's codes (for its bound and samples)",
        description="Encode the training set of a VQ-VAE run (train --model vqvae) into its code "
                    "indices and fit an autoregressive MADE prior over the M code positions by "
                    "maximum likelihood (Adam). Writes RUN_DIR/prior.npz and prior.json; then "
                    "'evaluate RUN_DIR' reports the bound -ln p(x|c(x)) - ln prior(c(x)) >= "
                    "-ln p(x) and 'sample RUN_DIR' decodes prior samples.")
    run_dir_args(p)
    p.add_argument("--epochs", type=INT, default=20, help="passes over the codes (default 20)")
    p.add_argument("--hidden", type=WIDTHS, nargs="*", help="masked hidden widths (default 512)")
    p.add_argument("--batch-size", type=INT, default=128, help="default 128")
    p.add_argument("--lr", type=POSITIVE, default=1e-3, help="Adam's learning rate (1e-3)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--limit", type=INT,
                   help="use N training, validation and test images, random subsets chosen by "
                        "the run's seed (default: the run's --limit, the images it trained on)")
    p.add_argument("--no-early-stopping", action="store_true",
                   help="keep the last epoch (default: the epoch of lowest -ln prior on the "
                        "validation split, when the data set has one)")
    p.add_argument("--no-figures", action="store_true", help="do not draw figures/*.png")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run_fit_prior)


def run_fit_prior(args) -> int:
    """Hand the run to its model kind (vae_np.cli.kinds); a kind without a learned prior
    refuses in one line."""
    return for_run(args.run_dir).fit_prior(args)
