"""Where one training step's time goes: the pytorch/examples VAE (784-400-20, ReLU, Bernoulli,
Adam 1e-3, batch 128, float32) in vae_np, phase by phase inside the training loop, beside PyTorch's
phases when torch is installed, the step's GEMM floor, and the time a target ratio leaves for
everything that is not a matrix product.

    python benchmarks/bench_step.py [--epochs 3] [--n 60000] [--target 0.7] [--json]

The vae_np phases run the same calls as ``vae_np.fit``'s inner loop (batch conversion and noise,
``model.forward``, ``model.backward``, the divergence guard, ``optimizer.step``), timed one by
one; each figure is the median over epochs of the per-step mean.
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

from _common import (blas_info, emit, median_time, mnist_like, positive_float, positive_int,
                     print_table)
from bench_epoch import BATCH, D, H, Z, gemm_floor, torch_vae

import vae_np
from vae_np.training.fit import _finite_step, to_batch


def _phase_clock():
    """(tick, totals): tick(name, t0) adds the time since t0 to totals[name], returns now."""
    totals = {}

    def tick(name, start):
        now = time.perf_counter()
        totals[name] = totals.get(name, 0.0) + now - start
        return now
    return tick, totals


def numpy_phases(X, epochs):
    """Per-step milliseconds of each phase of vae_np's training step, medians over epochs."""
    model = vae_np.VAE(D, (H,), Z, "relu", "bernoulli", dtype=np.float32, seed=0)
    opt = vae_np.Adam(1e-3)
    rng = np.random.default_rng(0)
    steps = -(-len(X) // BATCH)
    per_epoch = []
    for _ in range(epochs):
        tick, totals = _phase_clock()
        order = rng.permutation(len(X))
        for step in range(steps):
            t = time.perf_counter()
            x = to_batch(X, order[step * BATCH:(step + 1) * BATCH], model.dtype)
            eps = rng.standard_normal((1, len(x), Z), dtype=model.dtype)
            t = tick("batch and noise", t)
            trace = model.forward(x, eps)
            t = tick("forward", t)
            model.backward(trace)
            t = tick("backward", t)
            _finite_step(float(trace.values["nll"].mean()) + float(trace.values["kl"].mean()),
                         model.grad_flat)
            t = tick("divergence guard", t)
            opt.step(model.flat, model.grad_flat)
            tick("optimizer (Adam)", t)
        per_epoch.append({k: 1e3 * v / steps for k, v in totals.items()})
    return {k: statistics.median(e[k] for e in per_epoch) for k in per_epoch[0]}, model, opt


def torch_phases(X, epochs):
    """Per-step milliseconds of PyTorch's batch, forward, backward and optimizer phases."""
    import torch
    model, opt = torch_vae()
    Xt = torch.from_numpy(X)
    rng = np.random.default_rng(0)
    steps = -(-len(X) // BATCH)
    per_epoch = []
    for _ in range(epochs):
        tick, totals = _phase_clock()
        order = torch.from_numpy(rng.permutation(len(X)))
        for i in range(0, len(X), BATCH):
            t = time.perf_counter()
            x = Xt[order[i:i + BATCH]].float().div_(255)
            t = tick("batch and noise", t)
            loss = model.loss(x) / len(x)
            t = tick("forward", t)
            opt.zero_grad()
            loss.backward()
            t = tick("backward", t)
            opt.step()
            loss.item()
            tick("optimizer (Adam)", t)
        per_epoch.append({k: 1e3 * v / steps for k, v in totals.items()})
    return ({k: statistics.median(e[k] for e in per_epoch) for k in per_epoch[0]},
            torch.__version__)


def optimizer_floors(model, opt):
    """Milliseconds of one Adam step timed alone (no matrix products between steps), and of the
    one pass in it that is bound by arithmetic rather than memory, the square root."""
    t_adam, _ = median_time(lambda: opt.step(model.flat, model.grad_flat), repeats=200, warmup=5)
    v, work = opt.state["v"], opt.state["work"]
    t_sqrt, _ = median_time(lambda: np.sqrt(v, out=work), repeats=200, warmup=5)
    return 1e3 * t_adam, 1e3 * t_sqrt


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=positive_int, default=3, help="epochs timed per framework")
    parser.add_argument("--n", type=positive_int, default=60000, help="training examples (default 60000)")
    parser.add_argument("--target", type=positive_float, default=0.7, help="target vae_np / PyTorch ratio")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    X, source = mnist_like(args.n)
    steps, last = divmod(len(X), BATCH)
    floor_s, _ = gemm_floor(steps, last)
    floor_ms = 1e3 * floor_s / math.ceil(len(X) / BATCH)
    np_ms, model, opt = numpy_phases(X, args.epochs)
    adam_alone, sqrt_alone = optimizer_floors(model, opt)
    result = dict(data=source, n=len(X), blas=blas_info(), gemm_floor_ms_per_step=floor_ms,
                  numpy_ms=np_ms, numpy_step_ms=sum(np_ms.values()),
                  adam_alone_ms=adam_alone, sqrt_pass_ms=sqrt_alone)
    try:
        time.sleep(0.5)         # let OpenBLAS's spinning workers go idle (see bench_epoch.interleaved)
        pt_ms, version = torch_phases(X, args.epochs)
        result.update(torch_version=version, torch_ms=pt_ms, torch_step_ms=sum(pt_ms.values()))
    except ImportError:
        result["torch"] = "not installed (pip install 'vae_np[bench]'): NumPy figures only"
    if "torch_ms" in result:
        budget = args.target * result["torch_step_ms"]
        result.update(target=args.target, target_step_ms=budget,
                      target_non_gemm_ms=budget - floor_ms,
                      numpy_non_gemm_ms=result["numpy_step_ms"] - floor_ms)
    if args.json:
        emit(result, True)
        return
    print(f"data: {source}, {len(X)} examples, batch {BATCH}; BLAS: {result['blas']}")
    rows = [dict(phase=k, vae_np_ms=v, pytorch_ms=result.get("torch_ms", {}).get(k))
            for k, v in np_ms.items()]
    rows.append(dict(phase="whole step", vae_np_ms=result["numpy_step_ms"],
                     pytorch_ms=result.get("torch_step_ms")))
    print_table(f"ms per training step, median over {args.epochs} epochs", rows,
                ["phase", "vae_np_ms", "pytorch_ms"])
    print(f"GEMM floor of one step (its matrix products back to back): {floor_ms:.3f} ms")
    print(f"Adam step alone, no matrix products between steps: {adam_alone:.3f} ms, of which the "
          f"square-root pass {sqrt_alone:.3f} ms")
    if "torch_ms" in result:
        print(f"vae_np / PyTorch per step: {result['numpy_step_ms'] / result['torch_step_ms']:.3f}")
        print(f"target {args.target} x PyTorch = {result['target_step_ms']:.3f} ms per step, which "
              f"leaves {result['target_non_gemm_ms']:.3f} ms beside the GEMM floor for everything "
              f"else; vae_np spends {result['numpy_non_gemm_ms']:.3f} ms there now")
    else:
        print(result["torch"])


if __name__ == "__main__":
    main()
