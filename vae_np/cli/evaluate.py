"""``vae-np evaluate RUN_DIR``: a run's test numbers, as its model kind reports them (a VAE's test
-ELBO, IWAE estimate of -ln p(x) and active units: vae_np.cli.vae; a VQ-VAE's bound with its
learned prior, codebook usage and perplexity: vae_np.cli.vq)."""
from __future__ import annotations

from .args import FLOAT, INT
from .common import run_dir_args
from .kinds import for_run


def register(subparsers):
    p = subparsers.add_parser(
        "evaluate", help="test -ELBO, IWAE estimate of -ln p(x), active units of a run",
        description="Evaluate a run's checkpoint on its test set (in float64 by default): the "
                    "negative ELBO with k = 1 and averaged over --elbo-k samples, the importance-"
                    "weighted estimate of -ln p(x) with --iwae-k samples (chunked to bounded "
                    "memory), and the active units, Cov_x(E_q[z_j]) > --threshold. Each mean "
                    "comes with its standard error over the test images, std / sqrt(n).")
    run_dir_args(p)
    p.add_argument("--iwae-k", type=INT, default=5000,
                   help="VAE runs: importance samples (default 5000)")
    p.add_argument("--elbo-k", type=INT, default=100,
                   help="VAE runs: samples of the averaged -ELBO")
    p.add_argument("--threshold", type=FLOAT, default=0.01, help="VAE runs: active-unit threshold")
    p.add_argument("--limit", type=INT,
                   help="evaluate N test examples only: a uniform random subset chosen by --seed "
                        "(never the first N: some test splits are sorted by class)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    p.add_argument("--max-mb", type=FLOAT, default=64,
                   help="VAE runs: work memory bound (default 64 MB)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--per-example", metavar="FILE",
                   help="also write every image's values to FILE (.npz: rows, and one array per "
                        "reported mean), e.g. for paired differences between runs")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.add_argument("--no-bound", action="store_true",
                   help="VQ-VAE runs: report without a learned prior (no bound)")
    p.set_defaults(func=run_evaluate)


def run_evaluate(args) -> int:
    """Hand the run to its model kind (vae_np.cli.kinds): a VAE's test -ELBO, IWAE estimate and
    active units, a VQ-VAE's bound with its learned prior, ..."""
    return for_run(args.run_dir).evaluate(args)
