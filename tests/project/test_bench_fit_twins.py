"""benchmarks/bench_fit.py times vae_np's fit beside a PyTorch loop on "the same model": this
checks that claim. For every case, the PyTorch twin the benchmark builds, given vae_np's
parameters and the same noise, computes vae_np's loss and gradient on one batch (float64).

A twin that differs in any term (a head read as log sigma instead of log sigma^2, a KL left out,
the flow's parameters laid out in another order, a layer swapped) changes the loss or gradient
by far more than float64 rounding, so this fails on it; the timing figures are then not a
comparison of like with like.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="the PyTorch twins need torch (the bench extra: pip install -e '.[bench]')")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_fit  # noqa: E402

# vae_np's layers in the order of the twin's parameters (each a weight then a bias, except the
# codebook), from the twins' constructors in the step benchmarks and bench_epoch.py
IWAE = ["encoder.0", "encoder.1", "encoder.mu", "encoder.sigma", "decoder.0", "decoder.1",
        "decoder.out"]
LAYERS = {
    "mnist": ["encoder.0", "encoder.mu", "encoder.sigma", "decoder.0", "decoder.out"],
    "iwae5": IWAE,
    "iwae50": IWAE,
    "flow10": ["encoder.0", "encoder.mu", "encoder.sigma", "encoder.flow", "decoder.0",
               "decoder.out"],
    "vq": ["encoder.0", "encoder.out", "codebook", "decoder.0", "decoder.out"],
    "two_layer": ["encoder.0", "encoder.1", "q_z2.0", "q_z2.1", "p_z1.0", "p_z1.1", "decoder.0",
                  "decoder.1", "decoder.out", "encoder.mu", "encoder.sigma", "q_z2.mu",
                  "q_z2.sigma", "p_z1.mu", "p_z1.sigma"],
}


def noise_shapes(name, b):
    """The shapes of the twin's torch.randn draws, in the order it draws them."""
    k = bench_fit.CASES[name].fit.get("k", 1)
    if name == "vq":
        return []
    if name == "two_layer":
        two = bench_fit.bench_two_layer_step
        return [(k, b, two.Z1), (k, b, two.Z2)]      # eps1, then eps2 (q(z2|z1) per sample)
    z = bench_fit.CASES[name].model(np.float64).z_dim
    return [(k, b, z)] if "k" in bench_fit.CASES[name].fit else [(b, z)]


@pytest.fixture
def float64_torch():
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", list(bench_fit.CASES))
def test_twin_computes_vae_np_loss_and_gradient(name, float64_torch):
    case = bench_fit.CASES[name]
    b = case.batch
    rng = np.random.default_rng(0)
    x = rng.random((b, 784))
    if case.binarize:
        x = (rng.random(x.shape) < x).astype(np.float64)
    model = case.model(np.float64)
    loss, opt = case.twin(x, 1, lambda _xt, _b, loss, opt: (loss, opt))
    params = opt.param_groups[0]["params"]
    names = [f"{layer}.{p}" for layer in LAYERS[name]
             for p in (("",) if layer == "codebook" else ("W", "b"))]
    names = [n.rstrip(".") for n in names]
    assert len(params) == len(names) == len(model.params)
    with torch.no_grad():
        for p, key in zip(params, names):
            value = model.params[key]
            p.copy_(torch.from_numpy(value.T.copy() if key.endswith(".W") else value))

    torch.manual_seed(7)
    eps = [torch.randn(shape).numpy() for shape in noise_shapes(name, b)]
    torch.manual_seed(7)                # the twin draws the same noise inside its loss
    value = loss(torch.from_numpy(x))
    value.backward()

    if name == "vq":
        trace = model.backward(model.forward(x))
    else:
        eps = np.concatenate([e.reshape(-1, b, e.shape[-1]) for e in eps], axis=-1)
        trace = model.backward(model.forward(x, eps, objective=case.fit.get("objective",
                                                                             "elbo")))
    # float64: both sides add the same ~1e5 terms in other orders (relative rounding ~1e-12);
    # any difference in the model is orders of magnitude larger
    assert value.item() == pytest.approx(float(trace.loss), rel=1e-10)
    for p, key in zip(params, names):
        grad = p.grad.numpy().T if key.endswith(".W") else p.grad.numpy()
        np.testing.assert_allclose(model.grads[key], grad, rtol=1e-7,
                                   atol=1e-9 * np.abs(grad).max(), err_msg=f"{name}: {key}")
