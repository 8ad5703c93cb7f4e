"""``vae-np flows``: fit planar and radial flows of several lengths to the 2-D targets U1..U4 (the
paper's Figure 3) and write the table of KL(q || p) and the figure grid.

Writes into ``--out``:

    kl_table.md, kl_table.json   KL(q_L || p) in nats with its Monte Carlo standard error, for each
                                 target x kind x length (ln Z of each target by 2-D quadrature)
    flows_grid.png               rows = targets; columns = the target density, then the fitted
                                 densities (histograms of samples of q_L) for each kind and length
                                 (needs the plot extra; without it the figure is skipped, and
                                 the command says so)

Every fit has its own random stream, default_rng([seed, target, kind, length]), so a fit's result
does not depend on which other fits the command runs.
"""
from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from ..flows import fit2d as flows2d, targets2d as flows2d_targets
from ..flows.chain import FLOW_KINDS
from .args import FLOAT, INT, INT0, OUT_DIR, POSITIVE, WIDTH

DEFAULT_ITERATIONS = 2000
"""Adam steps per fit: the 24 default fits take about 190 s of CPU (one core). At 1000 the KL of
U2 with planar flows rose from L = 8 to 32 (0.188 -> 0.245: a fold left in the 32-step map, gone
at 2000 steps, 0.029); at 2000 it falls with L for every target and kind."""
PLOT_HALF_WIDTH, PLOT_BINS = 5.0, 100
"""The pictures show [-5, 5]^2 (the paper's [-4, 4]^2 plus the wall's edge of U2..U4)."""


def register(subparsers):
    p = subparsers.add_parser(
        "flows",
        help="fit normalizing flows to the 2-D densities U1-U4 (Rezende & Mohamed, Fig. 3)",
        description="Fit a flow q_L (learned diagonal Gaussian q_0, then L planar or radial steps "
                    "with global parameters) to each unnormalised target exp(-U(z)) by minimising "
                    "the reparameterized KL(q_L || p) with Adam; write KL(q_L || p) with its "
                    "standard error (ln Z by 2-D quadrature) to kl_table.md and .json, and the "
                    "figure grid flows_grid.png.")
    p.add_argument("--out", type=OUT_DIR, default="runs/flows2d",
                   help="output directory (default runs/flows2d)")
    p.add_argument("--targets", nargs="+", choices=flows2d_targets.TARGETS,
                   default=list(flows2d_targets.TARGETS), help="targets U1..U4 (default 1 2 3 4)")
    p.add_argument("--kinds", nargs="+", choices=sorted(FLOW_KINDS), default=["planar", "radial"],
                   help="flow kinds (default planar radial)")
    p.add_argument("--lengths", nargs="+", type=INT, default=[2, 8, 32],
                   help="flow lengths L >= 1 (default 2 8 32)")
    p.add_argument("--iterations", type=INT, default=DEFAULT_ITERATIONS,
                   help=f"Adam steps per fit (default {DEFAULT_ITERATIONS}: the whole default "
                        "command in a few minutes on 2 cores)")
    p.add_argument("--batch", type=INT, default=256, help="samples per step (default 256)")
    p.add_argument("--lr", type=POSITIVE, default=0.01, help="Adam's step size (default 0.01)")
    p.add_argument("--anneal", type=FLOAT, default=flows2d.ANNEAL,
                   help=f"fraction of the iterations over which U is annealed from 0.01 U to U "
                        f"(default {flows2d.ANNEAL}; 0: none)")
    p.add_argument("--samples", type=INT, default=100_000,
                   help="Monte Carlo samples of the final KL and of each picture (default 100000)")
    p.add_argument("--seed", type=INT0, default=0, help="seed of every draw (default 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run_flows)


class _FitProgress:
    """A stderr line per tenth of a fit (at most one a second, and always the last): which fit,
    the iteration, the batch KL, the ETA."""

    def __init__(self, label, quiet, stream=None):
        self.label, self.quiet = label, quiet
        self.stream = sys.stderr if stream is None else stream
        self.start = self.last = time.perf_counter()

    def __call__(self, step, steps, kl):
        now = time.perf_counter()
        if self.quiet or (step != steps and (10 * step // steps == 10 * (step - 1) // steps
                                             or now - self.last < 1.0)):
            return
        self.last = now
        seconds = now - self.start
        self.stream.write(f"flows {self.label}  iteration {step}/{steps}  batch KL {kl:.3f}"
                          f"  ETA {seconds / step * (steps - step):.0f} s\n")
        self.stream.flush()


def fit_all(args):
    """Run every fit; returns (results: list of dicts, images: {(target, kind, length): (n, n)})."""
    results, images = [], {}
    plan = [(t, k, L) for t in args.targets for k in args.kinds for L in args.lengths]
    for i, (target, kind, length) in enumerate(plan):
        label = f"U{target} {kind} L={length} ({i + 1}/{len(plan)})"
        stream = [args.seed, int(target), sorted(FLOW_KINDS).index(kind), length]
        fit = flows2d.fit_flow_2d(target, kind, length, args.iterations,
                                  np.random.default_rng(stream + [0]), batch=args.batch,
                                  lr=args.lr, anneal=args.anneal,
                                  progress=_FitProgress(label, args.quiet))
        z, f = flows2d.sample(fit, args.samples, np.random.default_rng(stream + [1]))
        kl = float(np.mean(f) + fit.log_z)
        se = float(np.std(f, ddof=1) / np.sqrt(f.size))
        images[target, kind, length] = flows2d.histogram_density(z, PLOT_HALF_WIDTH, PLOT_BINS)
        results.append({"target": target, "kind": kind, "length": length, "kl": kl, "se": se,
                        "log_z": fit.log_z, "final_batch_kl": float(fit.history[-1]),
                        "seconds": round(fit.seconds, 2)})
        print(f"U{target} {kind} L={length}: KL(q || p) = {kl:.4f} +- {se:.4f} nats "
              f"({args.iterations} iterations, {fit.seconds:.1f} s)", flush=True)
    return results, images


def not_falling(results):
    """(target, kind, L_short, L_long) wherever the KL at the longer flow is not below the KL at
    the next shorter one."""
    out = []
    by = {(r["target"], r["kind"], r["length"]): r["kl"] for r in results}
    for (t, k, L), kl in sorted(by.items()):
        longer = sorted(L2 for (t2, k2, L2) in by if (t2, k2) == (t, k) and L2 > L)
        if longer and by[t, k, longer[0]] >= kl:
            out.append((t, k, L, longer[0]))
    return out


def format_table(results, args) -> str:
    lengths = sorted(set(args.lengths))
    lines = ["# KL(q || p) of flows fitted to the 2-D densities U1-U4", "",
             _paragraph(
                 f"`python -m vae_np flows --targets {' '.join(args.targets)} --kinds "
                 f"{' '.join(args.kinds)} --lengths {' '.join(map(str, lengths))} --iterations "
                 f"{args.iterations} --batch {args.batch} --lr {args.lr} --anneal {args.anneal} "
                 f"--samples {args.samples} --seed {args.seed}`: Adam, learned "
                 "q_0 = N(mu0, diag sigma0^2), U annealed over that fraction of the iterations, "
                 f"KL in nats by Monte Carlo with {args.samples} samples (+- one standard "
                 "error), ln Z by 2-D quadrature."), "",
             "| target | ln Z | kind | " + " | ".join(f"L = {L}" for L in lengths) + " |",
             "|---|---:|---|" + "---:|" * len(lengths)]
    by = {(r["target"], r["kind"], r["length"]): r for r in results}
    for t in args.targets:
        for k in args.kinds:
            cells = [f"{by[t, k, L]['kl']:.3f} ± {by[t, k, L]['se']:.3f}" for L in lengths]
            log_z = by[t, k, lengths[0]]["log_z"]
            lines.append(f"| U{t} | {log_z:.4f} | {k} | " + " | ".join(cells) + " |")
    bad = not_falling(results)
    lines.append("")
    if len(lengths) > 1:
        lines.append("The KL falls as L grows for every target and kind." if not bad else
                     _paragraph("The KL does NOT fall from the shorter to the longer flow for: "
                                + ", ".join(f"U{t} {k} L = {a} -> {b}" for t, k, a, b in bad)
                                + "."))
    return "\n".join(lines) + "\n"


def _paragraph(text) -> str:
    """A paragraph wrapped to ``WIDTH`` columns, in print and in kl_table.md alike (Markdown joins
    the lines of a paragraph, and of a code span, with spaces)."""
    return textwrap.fill(text, WIDTH, break_long_words=False, break_on_hyphens=False)


def terminal_table(table) -> str:
    """``table`` (kl_table.md's text) for the terminal: as it is if every line fits ``WIDTH``
    columns, else without the table's rows, which many lengths make too wide (the KL of every
    fit is printed above as it finishes)."""
    lines = table.splitlines()
    if max(map(len, lines)) <= WIDTH:
        return table
    kept = [line for line in lines if not line.startswith("|")]
    at = next(i for i, line in enumerate(lines) if line.startswith("|"))
    kept.insert(at, f"(the table is {max(map(len, lines))} columns wide: see kl_table.md, or "
                    f"the fits above)")
    return "\n".join(kept) + "\n"


def draw_grid(path, images, args):
    """rows = targets; columns = target density, then each kind x length (needs matplotlib)."""
    from ..figures.runs import _figure, _save
    cols = [(k, L) for k in args.kinds for L in sorted(set(args.lengths))]
    fig = _figure(1.6 * (len(cols) + 1), 1.6 * len(args.targets) + 0.3)
    grid = fig.subplots(len(args.targets), len(cols) + 1, squeeze=False)
    centres = PLOT_HALF_WIDTH * (2 * np.arange(PLOT_BINS) + 1 - PLOT_BINS) / PLOT_BINS
    z1, z2 = np.meshgrid(centres, centres)
    extent = (-PLOT_HALF_WIDTH, PLOT_HALF_WIDTH, -PLOT_HALF_WIDTH, PLOT_HALF_WIDTH)
    for i, t in enumerate(args.targets):
        u, _ = flows2d_targets.energy(t, np.stack([z1.ravel(), z2.ravel()], 1))
        panels = [(np.exp(-u).reshape(PLOT_BINS, PLOT_BINS), f"U{t}: target")]
        panels += [(images[t, k, L], f"{k} L={L}") for k, L in cols]
        for ax, (img, title) in zip(grid[i], panels):
            ax.imshow(img, origin="lower", extent=extent, cmap="viridis", vmin=0,
                      interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return _save(fig, path)


def _unique(values):
    return list(dict.fromkeys(values))


def run_flows(args) -> int:
    args.targets, args.kinds = _unique(args.targets), _unique(args.kinds)
    args.lengths = sorted(set(args.lengths))
    if args.anneal > 1:
        raise ValueError(f"--anneal must be a fraction in [0, 1], got {args.anneal}")
    if args.samples < 2:
        raise ValueError(f"--samples must be >= 2 (the standard error of the KL needs two), got "
                         f"{args.samples}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results, images = fit_all(args)
    table = format_table(results, args)
    (out / "kl_table.md").write_text(table)
    settings = {k: getattr(args, k) for k in ("targets", "kinds", "lengths", "iterations",
                                               "batch", "lr", "anneal", "samples", "seed")}
    (out / "kl_table.json").write_text(json.dumps(
        {"settings": settings, "results": results,
         "not_falling": [list(x) for x in not_falling(results)]}, indent=1) + "\n")
    print("\n" + terminal_table(table) + f"wrote {out / 'kl_table.md'} and "
          f"{out / 'kl_table.json'}")
    from ..figures.runs import PlotUnavailable
    try:
        print(f"wrote {draw_grid(out / 'flows_grid.png', images, args)}")
    except PlotUnavailable as exc:
        print(f"vae-np: figure skipped: {exc}", file=sys.stderr)
    return 0
