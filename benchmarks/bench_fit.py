"""Epochs of ``vae_np.fit`` (what users run) beside the same training loop in PyTorch, at one and
two threads each, for every model kind: the pytorch/examples VAE, Burda's IWAE at K = 5 and 50,
the planar-flow VAE, the VQ-VAE and Burda's two-layer IWAE.

    python benchmarks/bench_fit.py [--cases mnist iwae5 ...] [--threads 1 2 default] [--n N]
                                   [--repeats 7] [--memory-cases iwae50] [--json]

vae_np's side is ``vae_np.fit(model, X, Adam, epochs=1, batch_size=B, threads=T, ...)`` on
uint8 images: each epoch shuffles, scales each batch by 1/255, draws a fresh binarization
x ~ Bernoulli(x) per batch where the case uses it, steps Adam and keeps its history. PyTorch's
side is the same model (the twins of the step benchmarks, bench_*_step.py and bench_epoch.py)
in a loop doing the same work per step: a shuffled batch of the same size, scaled, binarized
the same way, autograd, Adam, the loss read back. Threads: T = 1 is fit(threads=1) with NumPy's
BLAS on one thread (threadpoolctl, as fit's workers use it) beside torch.set_num_threads(1);
T = 2 is fit(threads=2) (two shards a batch, BLAS on one thread a worker) beside
torch.set_num_threads(2). T = default is what a user gets without choosing: fit(threads=None),
whose count depends on the step's rows (vae_np.training.threads.MIN_SHARDED_ROWS; the row says
which it chose), BLAS as the process has it, beside PyTorch's default (one thread a core).
T = serial is fit(threads=1) with BLAS as the process has it (both cores: the loop before
threads existed) beside PyTorch's default: what the default's choice is measured against.

For each case and thread count the two sides' epochs alternate (vae_np, PyTorch, vae_np, ...)
after one untimed warm-up epoch each, so that the machine's changing load falls on both; the
ratio reported is the median over the pairs of vae_np / PyTorch epoch time, with the largest
pair. N is rounded down to a multiple of the batch size (every step a full batch). Peak memory:
each --memory-cases case trains one epoch in a fresh child process per side and thread count,
which reports its peak resident set size (ru_maxrss) and the part of it above what the data
and model took before training.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from _common import blas_info, emit, mnist_like, positive_int

import bench_epoch
import bench_flow_step
import bench_iwae_step
import bench_two_layer_step
import bench_vq_step

import vae_np
from vae_np.training.threads import blas_single_thread, default_threads

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Case:
    """One benchmark case: the vae_np model and its fit keywords, and its PyTorch twin."""
    title: str
    batch: int
    n: int                      # default number of training images
    binarize: bool
    model: object               # model(dtype) -> a vae_np model
    twin: object                # twin(x0, threads, loop) -> loop(X_torch, B, loss, opt), or None
    adam: dict = field(default_factory=lambda: dict(lr=1e-3))
    fit: dict = field(default_factory=dict)     # fit's keywords for the model (k, objective)


def _vae(x_dim, hidden, z_dim, activation, **options):
    return lambda dtype: vae_np.VAE(x_dim, hidden, z_dim, activation, "bernoulli", dtype=dtype,
                                    seed=0, **options)


def _mnist_twin(x0, threads, loop):
    """The pytorch/examples VAE (bench_epoch.py) with its per-example mean loss."""
    try:
        import torch
        model, opt = bench_epoch.torch_vae()
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return loop(torch.from_numpy(x0), bench_epoch.BATCH, lambda x: model.loss(x) / len(x), opt)


def _iwae(k):
    return Case(f"IWAE K={k}, 784-200-200-50 tanh, dynamic binarization", bench_iwae_step.B,
                4000, True, _vae(bench_iwae_step.D, (bench_iwae_step.H,) * 2, bench_iwae_step.Z,
                                 "tanh"),
                lambda x0, threads, loop: bench_iwae_step.torch_steps(x0, k, threads, loop),
                adam=dict(lr=1e-3, eps=1e-4), fit=dict(k=k, objective="iwae"))


_two = bench_two_layer_step
CASES = {
    "mnist": Case("pytorch-example VAE, 784-400-20 relu, ELBO, grey levels", bench_epoch.BATCH,
                  12000, False, _vae(bench_epoch.D, (bench_epoch.H,), bench_epoch.Z, "relu"),
                  _mnist_twin),
    "iwae5": _iwae(5),
    "iwae50": _iwae(50),
    "flow10": Case("planar flow L=10, 784-400-40 relu, ELBO, dynamic binarization",
                   bench_flow_step.B, 12000, True,
                   _vae(bench_flow_step.D, (bench_flow_step.H,), bench_flow_step.Z, "relu",
                        flow="planar", flow_length=10),
                   lambda x0, threads, loop: bench_flow_step.torch_steps(x0, 10, threads, loop)),
    "vq": Case("VQ-VAE, 784-400-(16 x 8, K=128)-400-784 relu, grey levels", bench_vq_step.B,
               12000, False,
               lambda dtype: vae_np.VQVAE(bench_vq_step.X_DIM, (bench_vq_step.H,),
                                          n_latents=bench_vq_step.M, code_dim=bench_vq_step.D,
                                          codebook_size=bench_vq_step.K, beta=bench_vq_step.BETA,
                                          dtype=dtype, seed=0),
               bench_vq_step.torch_steps),
    "two_layer": Case("two-layer IWAE K=5 (Burda), dynamic binarization", _two.B, 4000, True,
                      _vae(_two.D, (_two.H1,) * 2, _two.Z1, "tanh", z2_dim=_two.Z2,
                           hidden2=(_two.H2,) * 2),
                      _two.torch_steps, adam=dict(lr=1e-3, eps=1e-4),
                      fit=dict(k=_two.K, objective="iwae")),
}


def first_batch(X, case):
    """The first B images as float32 grey levels in [0, 1] (the PyTorch VQ-VAE's codebook
    starts from their codes, as vae_np's starts from a batch's)."""
    return X[:case.batch].astype(np.float32) / 255


def numpy_epoch(case, X, threads):
    """One ``vae_np.fit`` epoch per call (numbered on, so that a VQ-VAE initialises its codebook
    once), with BLAS on one thread at threads=1; returns the epoch's mean loss."""
    model = case.model(np.float32)
    opt, rng = vae_np.Adam(**case.adam), np.random.default_rng(0)
    epoch = [0]

    def run():
        epoch[0] += 1
        limit = blas_single_thread() if threads == 1 else _Nothing()
        with limit:
            history = vae_np.fit(model, X, opt, epochs=1, batch_size=case.batch, rng=rng,
                                 binarize=case.binarize, first_epoch=epoch[0],
                                 threads=THREADS_ARG.get(threads, threads),
                                 **case.fit)
        return history["loss"][0]
    return run


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def torch_epoch(case, X, threads):
    """One epoch of the PyTorch twin per call, the loop of fit's work (shuffle, 1/255, the
    binarization, Adam, the loss read back), or None without torch."""
    def loop(_x0, batch, loss, opt):
        import torch
        Xt, rng, n = torch.from_numpy(X), np.random.default_rng(0), len(X)

        def run():
            order = torch.from_numpy(rng.permutation(n))
            total = 0.0
            for i in range(0, n, batch):
                x = Xt[order[i:i + batch]].float().div_(255)
                if case.binarize:
                    x = torch.bernoulli(x)
                opt.zero_grad()
                value = loss(x)
                value.backward()
                opt.step()
                total += value.item() * len(x)
            return total / n
        return run

    threads = torch_threads(threads)
    run = case.twin(first_batch(X, case), threads, loop)
    if run is not None:
        import torch
        torch.set_num_threads(threads)
    return run


THREADS_ARG = {"default": None, "serial": 1}
"""fit's threads for the named modes of --threads (module docstring)."""


def torch_threads(threads):
    """PyTorch's thread count for a vae_np thread count (a named mode: one a core, its default)."""
    return (os.cpu_count() or 1) if threads in THREADS_ARG else threads


def thread_count(text):
    """--threads' values: a positive int, "default" or "serial"."""
    return text if text in THREADS_ARG else positive_int(text)


def time_case(name, X, threads, repeats):
    """The paired epochs of one case at one thread count: a row of figures."""
    case = CASES[name]
    steps = len(X) // case.batch
    epochs = {"vae_np": numpy_epoch(case, X, threads)}
    run = torch_epoch(case, X, threads)
    if run is not None:
        epochs["pytorch"] = run
    times, last = bench_epoch.interleaved(epochs, repeats)
    chosen = {"default": default_threads(case.batch * case.fit.get("k", 1)),
              "serial": 1}.get(threads, threads)
    row = dict(case=name, threads=threads, chosen=chosen, n=len(X), batch=case.batch,
               steps=steps,
               vae_np_ms=1e3 * statistics.median(times["vae_np"]) / steps,
               vae_np_times=times["vae_np"], vae_np_loss=last["vae_np"])
    if run is not None:
        ratios = [a / b for a, b in zip(times["vae_np"], times["pytorch"])]
        row.update(pytorch_ms=1e3 * statistics.median(times["pytorch"]) / steps,
                   pytorch_times=times["pytorch"], pytorch_loss=last["pytorch"],
                   ratios=ratios, ratio=statistics.median(ratios), ratio_max=max(ratios))
    return row


def data(name, n):
    """The case's training images (uint8, MNIST-like), n rounded down to a multiple of B."""
    case = CASES[name]
    n = case.n if n is None else n
    X, source = mnist_like(max(case.batch, n - n % case.batch))
    return X[:len(X) - len(X) % case.batch], source


def child_peak(name, side, threads, n):
    """(In a fresh process) one epoch of a case on one side; its peak RSS as a dict (MB)."""
    X, _ = data(name, n)
    case = CASES[name]
    run = numpy_epoch(case, X, threads) if side == "vae_np" else torch_epoch(case, X, threads)
    if run is None:
        return dict(case=name, side=side, threads=threads, error="torch is not installed")
    reset = _reset_peak()               # loading the data set's peak does not count
    before = _memory_kb("VmRSS")
    run()
    peak = _memory_kb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(case=name, side=side, threads=threads, n=len(X), before_mb=before / 1024,
                peak_mb=peak / 1024, training_mb=(peak - before) / 1024,
                peak_since="training" if reset else "process start")


def _reset_peak():
    """Reset the process's peak RSS to its current RSS (Linux: /proc/self/clear_refs, 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _memory_kb(key):
    """A line of /proc/self/status in kB (VmRSS: now, VmHWM: the peak), else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_memory(name, threads, n):
    """child_peak in a child process per side (nothing else in the process counts)."""
    rows = []
    for side in ("vae_np", "pytorch"):
        argv = [sys.executable, str(Path(__file__).resolve()), "--child-peak", name, side,
                str(threads)] + ([] if n is None else ["--n", str(n)])
        out = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=HERE)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def print_rows(rows, memory, source, repeats):
    wrap = dict(width=100, subsequent_indent="  ")
    print(textwrap.fill(f"fit epochs beside the same PyTorch loop; data: {source}; median of "
                        f"{repeats} paired epochs; BLAS: {blas_info()}", **wrap))
    names = list(dict.fromkeys(row["case"] for row in rows))
    for name in names:
        print(f"  {name:9} {CASES[name].title}")
    if not any("pytorch_ms" in row for row in rows):
        print("torch is not installed (pip install -e '.[bench]'): vae_np figures alone")
    print("ratio: the median over the pairs of vae_np / PyTorch epoch time; max: the largest")
    print(f"{'case':9} {'threads':>7} {'n':>6} {'batch':>5} {'vae_np ms/step':>15} "
          f"{'PyTorch ms/step':>15} {'ratio':>7} {'max':>7}")
    for row in rows:
        threads = {"default": f"def={row['chosen']}", "serial": "1 (BLAS)"}.get(row["threads"],
                                                                                row["threads"])
        line = (f"{row['case']:9} {threads:>7} {row['n']:>6} {row['batch']:>5} "
                f"{row['vae_np_ms']:>15.2f}")
        if "pytorch_ms" in row:
            line += f" {row['pytorch_ms']:>15.2f} {row['ratio']:>7.3f} {row['ratio_max']:>7.3f}"
        print(line)
    if memory:
        print("peak memory of one epoch in a fresh process (MB): peak RSS in the epoch, and "
              "above the RSS before")
        for m in memory:
            if "error" in m:
                print(f"  {m['case']:9} {m['side']:8} threads {m['threads']}: {m['error']}")
            else:
                print(f"  {m['case']:9} {m['side']:8} threads {m['threads']}: peak "
                      f"{m['peak_mb']:7.1f}, training {m['training_mb']:7.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES),
                        metavar="CASE", help=f"of {', '.join(CASES)} (default: all)")
    parser.add_argument("--threads", nargs="+", type=thread_count, default=[1, 2, "default"],
                        help="thread counts, each for both libraries, 'default' (fit's own "
                             "choice beside PyTorch's) or 'serial' (fit on one thread, BLAS on "
                             "the cores; default: 1 2 default)")
    parser.add_argument("--n", type=positive_int, default=None,
                        help="training images for every case (default: per case, 4000 to "
                             "12000)")
    parser.add_argument("--repeats", type=positive_int, default=7,
                        help="timed epochs per library, alternating (default 7)")
    parser.add_argument("--memory-cases", nargs="*", choices=list(CASES), default=["iwae50"],
                        metavar="CASE", help="cases whose peak memory to measure at each thread "
                                             "count (default: iwae50; none: no argument)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child-peak", nargs=3, metavar=("CASE", "SIDE", "THREADS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_peak:
        name, side, threads = args.child_peak
        print(json.dumps(child_peak(name, side, thread_count(threads), args.n)))
        return
    rows, source = [], None
    for name in args.cases:
        X, source = data(name, args.n)
        for threads in args.threads:
            rows.append(time_case(name, X, threads, args.repeats))
    memory = [m for name in args.memory_cases for threads in args.threads
              for m in peak_memory(name, threads, args.n)]
    if args.json:
        emit(dict(data=source, blas=blas_info(), repeats=args.repeats, rows=rows,
                  memory=memory), True)
        return
    print_rows(rows, memory, source, args.repeats)


if __name__ == "__main__":
    main()
