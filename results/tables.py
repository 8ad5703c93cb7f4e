"""The README's results tables, rendered from the files in results/ that regenerate.sh writes.

    python results/tables.py                      print every table
    python results/tables.py --write README.md    replace each table block in README.md
    python results/tables.py --check README.md    exit 1 if a block differs from its files
    python results/tables.py pair A.npz B.npz KEY the paired difference B - A of KEY (JSON)

A table block in a Markdown file is everything between ``<!-- results: NAME -->`` and
``<!-- /results: NAME -->``; nothing in it is typed by hand. Every number comes from an
``evaluate --json`` report, a run's history.csv, or the KL table of ``vae-np flows``; the only
constants here are the published figures the tables are compared with, with their sources.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# Burda, Grosse & Salakhutdinov (2016), Table 1, MNIST, one stochastic layer: test -ln p(x)
BURDA_PAPER = {"vae_k1": 86.76, "vae_k5": 86.47, "iwae_k5": 85.54, "iwae_k50": 84.78}
BURDA_ROWS = (("vae_k1", "VAE, k = 1"), ("vae_k5", "VAE, k = 5"), ("iwae_k5", "IWAE, k = 5"),
              ("iwae_k50", "IWAE, k = 50"))
# Rezende & Mohamed (2015), Table 2, MNIST: -ln p(x) of the diagonal model and planar flows
FLOWS_PAPER = {"diagonal": 89.9, "planar10": 87.5, "planar40": 85.7}
FLOWS_ROWS = (("diagonal", "diagonal Gaussian"), ("planar10", "planar, L = 10"),
              ("planar40", "planar, L = 40"))
FLOWS_PASSES = (5, 10, 30)
# Burda et al. (2016), Table 1, two stochastic layers; Tomczak & Welling (2018), Table 2, the
# VampPrior with one layer (their own architecture and schedule); test -ln p(x)
TWO_LAYER_ROWS = (
    ("burda/vae_k1", "1 layer, VAE k = 1", None, "86.76"),
    ("burda/iwae_k5", "1 layer, IWAE k = 5", None, "85.54"),
    ("two_layer/vae2_k1@40", "2 layers, VAE k = 1", "burda/vae_k1", "85.33"),
    ("two_layer/iwae2_k5@40", "2 layers, IWAE k = 5", "burda/iwae_k5", "83.89"),
    ("two_layer/vamp1_k1@40", "1 layer, VampPrior (500 pseudo-inputs), VAE k = 1, KL warm-up "
     "over 10 passes", "burda/vae_k1", "85.57"),
    ("two_layer/vae2_k1_warmup@40", "2 layers, VAE k = 1, KL warm-up over 10 passes",
     "two_layer/vae2_k1@40", ""),
)
TWO_LAYER_STAGES = ((40, "burda/iwae_k5", "two_layer/iwae2_k5@40"),
                    (121, "two_layer/iwae1_k5@121", "two_layer/iwae2_k5@121"))


def load(name) -> dict:
    return json.loads((HERE / name).read_text())


def pm(mean, se, digits=2) -> str:
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def paired(name) -> str:
    """A paired difference written by ``tables.py pair``, signed: '-0.41 ± 0.05'."""
    d = load(name)
    return f"{d['mean']:+.2f} ± {d['se']:.2f}"


def images(report) -> str:
    """What a report was measured on, from its own record, e.g. 'all 10000 test images'."""
    n, total = report["n_examples"], report["n_split"]
    if n >= total:
        return f"all {total} test images"
    return f"{n} of {total} test images ({report['subset']} subset, seed {report['subset_seed']})"


def same_images(reports) -> str:
    described = {images(r) for r in reports}
    if len(described) != 1:
        raise ValueError(f"the rows of one table were measured on different images: {described}")
    return described.pop()


def table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def burda() -> str:
    reports = {key: load(f"burda/{key}.json") for key, _ in BURDA_ROWS}
    rows = []
    for key, label in BURDA_ROWS:
        r = reports[key]
        diff = "" if key == "vae_k1" else paired(f"burda/{key}-vs-vae_k1.json")
        rows.append((label, r["epoch"], pm(r["iwae_nll"], r["iwae_nll_se"]), diff,
                     pm(r["test_loss"], r["test_loss_se"]), f"{r['active_units']} / {r['z_dim']}",
                     BURDA_PAPER[key]))
    k = {r["iwae_k"] for r in reports.values()}.pop()
    head = ("model", "passes", f"test -ln p(x), IWAE k = {k}", "- VAE k = 1 (paired)",
            "test -ELBO, k = 1", "active units", "paper (3280 passes)")
    return f"Measured on {same_images(reports.values())}, nats, ± one standard error.\n\n" + \
        table(head, rows)


def flows_mnist() -> str:
    rows, reports = [], []
    for passes in FLOWS_PASSES:
        for key, label in FLOWS_ROWS:
            r = load(f"flows_mnist/{key}@{passes}.json")
            reports.append(r)
            diff = ("" if key == "diagonal" else
                    paired(f"flows_mnist/{key}@{passes}-vs-diagonal.json"))
            rows.append((label, r["epoch"], pm(r["iwae_nll"], r["iwae_nll_se"]), diff,
                         pm(r["test_loss"], r["test_loss_se"]), FLOWS_PAPER[key]))
    head = ("posterior", "passes", "test -ln p(x), IWAE k = 5000", "- diagonal (paired)",
            "test -ELBO, k = 1", "paper")
    return f"Measured on {same_images(reports)}, nats, ± one standard error.\n\n" + \
        table(head, rows)


def units(report) -> str:
    """Active units per stochastic layer, z1 first: '16 / 50' or '45 / 100, 3 / 50'."""
    if "active_units_per_layer" in report:
        return ", ".join(f"{c} / {d}" for c, d in zip(report["active_units_per_layer"],
                                                      report["layer_dims"]))
    return f"{report['active_units']} / {report['z_dim']}"


def pair_name(a, b) -> str:
    """The file of the paired difference b - a of two reports named as in TWO_LAYER_ROWS."""
    return f"two_layer/{b.split('/')[1]}-vs-{a.replace('/', '_')}.json"


def two_layer() -> str:
    reports = {key: load(f"{key}.json") for key, *_ in TWO_LAYER_ROWS}
    rows = []
    for key, label, base, paper in TWO_LAYER_ROWS:
        r = reports[key]
        rows.append((label, r["epoch"], pm(r["iwae_nll"], r["iwae_nll_se"]),
                     paired(pair_name(base, key)) if base else "",
                     pm(r["test_loss"], r["test_loss_se"]), units(r), paper))
    head = ("model", "passes", "test -ln p(x), IWAE k = 5000", "- the row it extends (paired)",
            "test -ELBO, k = 1", "active units", "paper")
    return f"Measured on {same_images(reports.values())}, nats, ± one standard error.\n\n" + \
        table(head, rows)


def two_layer_stages() -> str:
    rows, reports = [], []
    for passes, one, two in TWO_LAYER_STAGES:
        a, b = load(f"{one}.json"), load(f"{two}.json")
        reports += [a, b]
        rows.append((passes, pm(a["iwae_nll"], a["iwae_nll_se"]), units(a),
                     pm(b["iwae_nll"], b["iwae_nll_se"]), units(b),
                     paired(pair_name(one, two))))
    head = ("passes", "1 layer: -ln p(x)", "active units", "2 layers: -ln p(x)",
            "active units", "2 - 1 layers (paired)")
    return (f"IWAE k = 5, measured on {same_images(reports)}, nats, ± one standard error.\n\n"
            + table(head, rows))


def vq_epochs() -> str:
    with open(HERE / "vq/vqvae_history.csv", newline="") as f:
        history = list(csv.DictReader(f))
    rows = [(h["epoch"], f"{float(h['usage']):.1%}", f"{float(h['perplexity']):.1f}",
             f"{float(h['test_usage']):.1%}", f"{float(h['test_perplexity']):.1f}",
             f"{float(h['test_recon']):.2f}") for h in (history[0], history[-1])]
    head = ("epoch", "codes used (train)", "perplexity (train)", "codes used (test)",
            "perplexity (test)", "test -ln p(x \\| z_q)")
    return table(head, rows)


def vq_bound() -> str:
    vq, vae, prior = load("vq/vqvae.json"), load("vq/vae16.json"), load("vq/prior.json")
    m, k = prior["prior"]["n_latents"], prior["prior"]["codebook_size"]
    uniform = m * math.log(k)
    rows = [("Gaussian VAE, -ELBO (k = 1)", pm(vae["test_loss"], vae["test_loss_se"]),
             f"recon {vae['test_recon']:.2f} + KL {vae['test_kl']:.2f}"),
            (f"Gaussian VAE, IWAE k = {vae['iwae_k']}", pm(vae["iwae_nll"], vae["iwae_nll_se"]),
             ""),
            ("VQ-VAE, learned prior: bound", pm(vq["bound"], vq["bound_se"]),
             f"-ln p(x\\|c(x)) {vq['recon']:.2f} + -ln prior(c(x)) {vq['prior_nll']:.2f}"),
            ("VQ-VAE, uniform prior: bound", pm(vq["recon"] + uniform, vq["recon_se"]),
             f"{vq['recon']:.2f} + M ln K = {m} ln {k} = {uniform:.2f}")]
    return (f"Measured on {same_images((vq, vae))}, nats per image, ± one standard error.\n\n"
            + table(("model", "-ln p(x) or its bound", "parts"), rows))


def flows2d() -> str:
    report = load("flows2d/kl_table.json")
    lengths = sorted({int(r["length"]) for r in report["results"]})
    cells = {}
    for r in report["results"]:
        cells.setdefault((r["target"], r["kind"]), {})[int(r["length"])] = pm(r["kl"], r["se"], 3)
    ln_z = {r["target"]: r["log_z"] for r in report["results"]}
    rows = [(f"U{t}", f"{ln_z[t]:.4f}", kind) + tuple(cells[t, kind][n] for n in lengths)
            for t, kind in sorted(cells)]
    return table(("target", "ln Z", "kind") + tuple(f"L = {n}" for n in lengths), rows)


BENCH_CASES = {"mnist": "pytorch-example VAE, 784-400-20 (batch 128)",
               "iwae5": "IWAE K = 5, 784-200-200-50 (batch 20)",
               "iwae50": "IWAE K = 50, 784-200-200-50 (batch 20)",
               "flow10": "planar flow L = 10, 784-400-40 (batch 100)",
               "vq": "VQ-VAE, 784-400-(16 x 8, K = 128) (batch 128)",
               "two_layer": "two-layer IWAE K = 5 (batch 20)"}
BENCH_MODES = {1: "threads=1", 2: "threads=2", "serial": "threads=1, BLAS on the cores",
               "default": "default (chose {chosen})"}


def bench_fit() -> str:
    """benchmarks/bench_fit.py's rows (results/benchmarks/bench_fit.json, and the one-thread
    loop with BLAS on both cores from bench_fit_serial.json), by model."""
    runs = [load("benchmarks/bench_fit.json"), load("benchmarks/bench_fit_serial.json")]
    by_case = {}
    for run in runs:
        for row in run["rows"]:
            by_case.setdefault(row["case"], []).append(row)
    order = list(BENCH_MODES)
    rows = []
    for case, label in BENCH_CASES.items():
        for i, r in enumerate(sorted(by_case[case], key=lambda r: order.index(r["threads"]))):
            torch_threads = r["threads"] if isinstance(r["threads"], int) else "cores"
            rows.append(("" if i else label, BENCH_MODES[r["threads"]].format(chosen=r["chosen"]),
                         torch_threads, f"{r['vae_np_ms']:.2f}", f"{r['pytorch_ms']:.2f}",
                         f"{r['ratio']:.3f} ({r['ratio_max']:.3f})"))
    memory = {(m["side"], str(m["threads"])): m["training_mb"] for m in runs[0]["memory"]}
    note = (f"Peak memory of one IWAE K = 50 epoch above the process's size before it (a fresh "
            f"process each): vae_np {memory['vae_np', '1']:.1f} MB on one thread, "
            f"{memory['vae_np', '2']:.1f} MB on two; PyTorch {memory['pytorch', '1']:.1f} / "
            f"{memory['pytorch', '2']:.1f} MB.")
    head = ("model", "vae_np's fit", "PyTorch threads", "vae_np ms/step", "PyTorch ms/step",
            "ratio (max)")
    return (f"Median of {runs[0]['repeats']} paired epochs; {runs[0]['blas']}; 2 cores.\n\n"
            + table(head, rows) + "\n\n" + note)


def bench_fit_default() -> str:
    """The rows of bench_fit() that a user gets without choosing threads, one a model."""
    run = load("benchmarks/bench_fit.json")
    rows = [(BENCH_CASES[r["case"]], r["chosen"], f"{r['vae_np_ms']:.2f}", f"{r['pytorch_ms']:.2f}",
             f"{r['ratio']:.2f}") for r in run["rows"] if r["threads"] == "default"]
    return table(("model", "vae_np threads", "vae_np ms/step", "PyTorch ms/step",
                  "vae_np / PyTorch"), rows)


TABLES = {"burda": burda, "two_layer": two_layer, "two_layer_stages": two_layer_stages,
          "flows_mnist": flows_mnist, "vq_epochs": vq_epochs,
          "vq_bound": vq_bound, "flows2d": flows2d, "bench_fit": bench_fit,
          "bench_fit_default": bench_fit_default}
BLOCK = re.compile(r"(<!-- results: (\w+) -->\n)(.*?)(<!-- /results: \2 -->)", re.S)


def fill(text: str) -> str:
    """``text`` with every results block replaced by its table rendered from the files."""
    def render(match):
        name = match.group(2)
        if name not in TABLES:
            raise ValueError(f"unknown results block {name!r}; known: {sorted(TABLES)}")
        return f"{match.group(1)}{TABLES[name]()}\n{match.group(4)}"
    return BLOCK.sub(render, text)


def pair(a_path, b_path, key) -> dict:
    """The mean and standard error of b[key] - a[key] over the images both files share (the
    same rows of the split, in the same order)."""
    a, b = np.load(a_path, allow_pickle=False), np.load(b_path, allow_pickle=False)
    if not np.array_equal(a["rows"], b["rows"]):
        raise ValueError(f"{a_path} and {b_path} hold different images")
    diff = b[key] - a[key]
    return dict(key=key, n=int(diff.size), mean=float(diff.mean()),
                se=float(diff.std(ddof=1) / math.sqrt(diff.size)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", metavar="FILE", nargs="+", default=[])
    parser.add_argument("--check", metavar="FILE", nargs="+", default=[])
    args, rest = parser.parse_known_args(argv)
    if rest[:1] == ["pair"] and len(rest) == 4:
        print(json.dumps(pair(*rest[1:])))
        return 0
    if rest:
        parser.error(f"unexpected arguments {rest}")
    for path in args.write:
        Path(path).write_text(fill(Path(path).read_text()))
    stale = [p for p in args.check if fill(Path(p).read_text()) != Path(p).read_text()]
    for path in stale:
        print(f"{path}: a results table differs from the files in results/ (run "
              f"python results/tables.py --write {path})", file=sys.stderr)
    if not (args.write or args.check):
        for name, render in TABLES.items():
            try:
                print(f"{name}:\n{render()}\n")
            except FileNotFoundError as exc:
                print(f"{name}: not rendered, a file is missing: {exc.filename}\n")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
