"""``vae-np evaluate RUN_DIR``: a run's test -ELBO, IWAE estimate of -ln p(x) and active units."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..evaluate import (
    active_units, describe, elbo, evaluation_subset, iwae_nll, standard_error, subset_record)
from ..runs import directory as runs
from .args import FLOAT, INT, fit_lines
from .common import SE_NOTE, load_data, mean_se, run_dir_args, save_per_example
from .prior import is_vq_run, run_evaluate_vq


def register(subparsers):
    p = subparsers.add_parser(
        "evaluate", help="test -ELBO, IWAE estimate of -ln p(x), active units of a run",
        description="Evaluate a run's checkpoint on its test set (in float64 by default): the "
                    "negative ELBO with k = 1 and averaged over --elbo-k samples, the importance-"
                    "weighted estimate of -ln p(x) with --iwae-k samples (chunked to bounded "
                    "memory), and the active units, Cov_x(E_q[z_j]) > --threshold. Each mean "
                    "comes with its standard error over the test images, std / sqrt(n).")
    run_dir_args(p)
    p.add_argument("--iwae-k", type=INT, default=5000, help="importance samples (default 5000)")
    p.add_argument("--elbo-k", type=INT, default=100, help="samples of the averaged -ELBO")
    p.add_argument("--threshold", type=FLOAT, default=0.01, help="active-unit threshold")
    p.add_argument("--limit", type=INT,
                   help="evaluate N test examples only: a uniform random subset chosen by --seed "
                        "(never the first N: some test splits are sorted by class)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    p.add_argument("--max-mb", type=FLOAT, default=64, help="work memory bound (default 64 MB)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--per-example", metavar="FILE",
                   help="also write every image's values to FILE (.npz: rows, and one array per "
                        "reported mean), e.g. for paired differences between runs")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.add_argument("--no-bound", action="store_true",
                   help="VQ-VAE runs: report without a learned prior (no bound)")
    p.set_defaults(func=run_evaluate)


def run_evaluate(args) -> int:
    if is_vq_run(args.run_dir):          # a VQ-VAE run: its bound with the learned prior
        return run_evaluate_vq(args)
    config, model, epoch, _ = runs.load_run(args.run_dir, dtype=args.dtype)
    runs.check_config(config, Path(args.run_dir) / runs.CONFIG_NAME, ("dataset",))
    dataset = load_data(config, args)
    subset = evaluation_subset(dataset, "test", args.limit, args.seed)
    x, rows = subset.x, subset.rows
    max_bytes = args.max_mb * 2 ** 20
    start = time.perf_counter()
    result = dict(run=str(args.run_dir), epoch=epoch, dataset=dataset.name,
                  **subset_record(subset), dtype=args.dtype)
    first = elbo(model, x, k=1, seed=args.seed, max_bytes=max_bytes, rows=rows)
    avg = elbo(model, x, k=args.elbo_k, seed=args.seed, max_bytes=max_bytes, rows=rows)
    result.update(test_loss=first.loss, test_loss_se=standard_error(first.per_example),
                  test_recon=first.recon, test_recon_se=standard_error(first.per_example_recon),
                  test_kl=first.kl, test_kl_se=standard_error(first.per_example_kl),
                  elbo_k=args.elbo_k, test_loss_avg=avg.loss,
                  test_loss_avg_se=standard_error(avg.per_example), test_recon_avg=avg.recon,
                  test_recon_avg_se=standard_error(avg.per_example_recon))
    nll, per_example = _iwae_with_progress(model, x, rows, args, max_bytes)
    result.update(iwae_nll=nll, iwae_nll_se=standard_error(per_example))
    if args.per_example:
        save_per_example(args.per_example, rows=rows, test_loss=first.per_example,
                         test_recon=first.per_example_recon, test_kl=first.per_example_kl,
                         test_loss_avg=avg.per_example, iwae_nll=per_example)
    count, variances = active_units(model, x, threshold=args.threshold)
    result.update(iwae_k=args.iwae_k, active_units=count, z_dim=model.z_dim,
                  threshold=args.threshold, unit_variances=variances.round(6).tolist(),
                  seconds=round(time.perf_counter() - start, 3))
    if args.json:
        print(json.dumps(result))
        return 0
    rows_out = [("-ELBO (k = 1)", mean_se(result, "test_loss")),
                ("  reconstruction -ln p(x|z)", mean_se(result, "test_recon")),
                ("  KL(q(z|x) || p(z))", mean_se(result, "test_kl")),
                (f"-ELBO (mean of {args.elbo_k} samples)", mean_se(result, "test_loss_avg")),
                (f"-ln p(x), IWAE k = {args.iwae_k}", mean_se(result, "iwae_nll")),
                ("active units", f"{count} / {model.z_dim}  (Cov_x(E_q[z_j]) > "
                                 f"{args.threshold:g})")]
    print(fit_lines(f"{args.run_dir}: after epoch {epoch}\n  {dataset.name}, {describe(subset)}\n"
                    f"  {model}\n  nats per image{SE_NOTE if len(x) > 1 else ''}:"))
    print("\n".join(f"  {name:<32}{value}" for name, value in rows_out))
    print(f"  {result['seconds']:.1f} s")
    return 0


def _iwae_with_progress(model, x, rows, args, max_bytes):
    """The IWAE estimate and its per-example values, with a '\\r' progress line on a terminal
    (it is the slow part)."""
    show = not args.quiet and sys.stderr.isatty()
    start = time.perf_counter()

    def progress(done, total):
        elapsed = time.perf_counter() - start
        if show:
            sys.stderr.write(f"\rIWAE k={args.iwae_k}: {done}/{total} examples, "
                             f"ETA {elapsed / done * (total - done):.0f} s   ")
            sys.stderr.flush()

    value, per_example = iwae_nll(model, x, k=args.iwae_k, seed=args.seed, max_bytes=max_bytes,
                                  progress=progress, rows=rows)
    if show:
        sys.stderr.write("\r" + " " * 60 + "\r")
    return value, per_example
