"""The pytorch-example protocol in vae_np and in PyTorch side by side: grey-level MNIST / 255,
784-400-20 ReLU, Bernoulli on logits, Adam 1e-3, batch 128, 10 epochs; the test loss (negative
ELBO with one sample, nats per example) after every epoch. Needs the MNIST files (--data-dir, or
../shared/data/mnist beside the repository) and torch (the ``bench`` extra).

    python benchmarks/compare_pytorch_example.py [--epochs 10] [--data-dir DIR] [--json]
"""
from __future__ import annotations

import argparse

import numpy as np

from _common import REPO, emit, positive_int, print_table
from bench_epoch import BATCH, D, H, Z, torch_model

import vae_np
from vae_np.data import load_mnist
from vae_np.evaluate import elbo


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=positive_int, default=10)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    data = load_mnist(data_dir=args.data_dir, download=False)
    model = vae_np.VAE(D, (H,), Z, "relu", "bernoulli", dtype=np.float32, seed=0)
    opt = vae_np.Adam(1e-3)
    torch_epoch, torch_test, version = torch_model()
    rng_np, rng_pt = np.random.default_rng(0), np.random.default_rng(0)
    rows = []
    for epoch in range(1, args.epochs + 1):
        vae_np.fit(model, data.x_train, opt, epochs=1, batch_size=BATCH, rng=rng_np)
        torch_epoch(data.x_train, rng_pt)
        ours, theirs = elbo(model, data.x_test, k=1, seed=0).loss, torch_test(data.x_test)
        rows.append(dict(epoch=epoch, vae_np_test=ours, pytorch_test=theirs,
                         difference=ours - theirs))
        if not args.json:
            print(f"epoch {epoch}: vae_np {ours:.2f}  PyTorch {theirs:.2f}", flush=True)
    if args.json:
        emit(dict(torch=version, rows=rows), True)
        return
    print_table(f"test loss per epoch (PyTorch {version}; published: about 105.6 after epoch 10)",
                rows, ["epoch", "vae_np_test", "pytorch_test", "difference"])


if __name__ == "__main__":
    main()
