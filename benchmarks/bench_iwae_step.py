"""One IWAE training step of Burda et al.'s one-stochastic-layer model (784-200-200-50, tanh,
Bernoulli, Adam, batch 20) at K = 5 and K = 50 samples per example, vae_np beside the same model
in PyTorch when torch is installed.

    python benchmarks/bench_iwae_step.py [--steps 200] [--rounds 5] [--threads N] [--json]

The K samples of a batch go through each layer as one matrix product over K x B rows, and the
log-sum-exp over K is one vectorised reduction: a step should cost about what K x B rows cost.
The two libraries alternate in rounds of ``--steps`` steps (after a warm-up round each); the
figure to quote is the median over rounds of the ratio vae_np / PyTorch. On a loaded machine run
it with OPENBLAS_NUM_THREADS=1 and --threads 1: two libraries each spinning two BLAS threads on
two busy cores measure the scheduler, not the step.
"""
from __future__ import annotations

import argparse
import math
import os

import numpy as np

from _common import (blas_info, emit, paired_rounds, positive_int, print_step_rows, seeded_torch,
                     torch_step_loop)

import vae_np

D, H, Z, B = 784, 200, 50, 20


def numpy_steps(X, k):
    model = vae_np.VAE(D, (H, H), Z, "tanh", "bernoulli", dtype=np.float32, seed=0)
    opt, rng = vae_np.Adam(1e-3, eps=1e-4), np.random.default_rng(0)

    def run(steps):
        for i in range(steps):
            x = X[(i * B) % len(X):(i * B) % len(X) + B]
            eps = rng.standard_normal((k, B, Z), dtype=np.float32)
            trace = model.backward(model.forward(x, eps, objective="iwae"))
            opt.step(model.flat, model.grad_flat)
        return trace.loss
    return run


def torch_steps(X, k, threads, loop=torch_step_loop):
    """The same model and IWAE loss in PyTorch (autograd) as ``loop(X_torch, B, loss, opt)``
    (default: the step loop), or None without torch."""
    torch = seeded_torch(threads)
    if torch is None:
        return None
    nn = torch.nn
    enc = nn.Sequential(nn.Linear(D, H), nn.Tanh(), nn.Linear(H, H), nn.Tanh())
    mu_head, logvar_head = nn.Linear(H, Z), nn.Linear(H, Z)
    dec = nn.Sequential(nn.Linear(Z, H), nn.Tanh(), nn.Linear(H, H), nn.Tanh(), nn.Linear(H, D))
    params = [p for m in (enc, mu_head, logvar_head, dec) for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3, eps=1e-4)
    Xt = torch.from_numpy(X)
    half_ln_2pi = 0.5 * math.log(2 * math.pi)

    def loss(x):
        h = enc(x)
        mu, logvar = mu_head(h), logvar_head(h)
        sigma = torch.exp(0.5 * logvar)
        eps = torch.randn(k, *mu.shape)
        z = mu + sigma * eps
        logits = dec(z)
        log_px = -nn.functional.binary_cross_entropy_with_logits(
            logits, x.expand(k, -1, -1), reduction="none").sum(-1)
        log_pz = (-0.5 * z * z - half_ln_2pi).sum(-1)
        log_q = (-0.5 * eps * eps - torch.log(sigma) - half_ln_2pi).sum(-1)
        log_w = log_px + log_pz - log_q
        return -(torch.logsumexp(log_w, 0) - math.log(k)).mean()

    return loop(Xt, B, loss, opt)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=positive_int, default=200, help="steps per round")
    parser.add_argument("--rounds", type=positive_int, default=5)
    parser.add_argument("--threads", type=positive_int, default=os.cpu_count() or 1,
                        help="PyTorch threads (set OPENBLAS_NUM_THREADS to match for NumPy)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    X = (rng.random((2000, D)) < 0.2).astype(np.float32)      # binary, MNIST-shaped
    results = {}
    for k in (5, 50):
        runners = {"vae_np": numpy_steps(X, k), "pytorch": torch_steps(X, k, args.threads)}
        row = paired_rounds(runners, args.steps, args.rounds)
        results[f"K={k}"] = row
    if args.json:
        emit(dict(blas=blas_info(), pytorch_threads=args.threads, **results), True)
        return
    title = (f"IWAE step, 784-200-200-50 tanh, batch {B}, float32; {blas_info()}; "
             f"PyTorch threads {args.threads}")
    print_step_rows(title, results)


if __name__ == "__main__":
    main()
