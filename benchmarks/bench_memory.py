"""Peak resident memory of MNIST training (the pytorch/examples model, float32, Adam), measured in
a fresh child process so nothing else counts: the data set stays uint8 (47 MB for 60k images) and
each batch is converted on its own.

    python benchmarks/bench_memory.py [--epochs 1] [--n 60000] [--json]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _common import positive_int

CHILD = r"""
import resource, sys, json, time
sys.path.insert(0, {repo!r}); sys.path.insert(0, {bench!r})
import numpy as np
from _common import mnist_like
import vae_np
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
X, source = mnist_like({n})
loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
model = vae_np.VAE(784, (400,), 20, dtype=np.float32)
start = time.perf_counter()
vae_np.fit(model, X, vae_np.Adam(1e-3), epochs={epochs}, batch_size=128)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(source=source, n=len(X), data_mb=X.nbytes / 2**20,
                      after_imports_mb=base / 1024, after_data_mb=loaded / 1024,
                      peak_mb=peak / 1024, train_s=time.perf_counter() - start)))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=positive_int, default=1)
    parser.add_argument("--n", type=positive_int, default=60000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parent
    code = CHILD.format(repo=str(here.parent), bench=str(here), n=args.n, epochs=args.epochs)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"data: {result['source']}, {result['n']} examples ({result['data_mb']:.0f} MB as uint8)")
    print(f"peak RSS after imports {result['after_imports_mb']:.0f} MB, after loading "
          f"{result['after_data_mb']:.0f} MB, during training {result['peak_mb']:.0f} MB "
          f"(target < 400 MB); {args.epochs} epoch(s) in {result['train_s']:.1f} s")


if __name__ == "__main__":
    main()
