"""A float32 loss that is a small difference of larger terms: the plain checker must not fail a
correct gradient there, and must still fail a wrong one.

The model below (drawn once by hypothesis in test_extremes' float32 architectures) has a loss of
0.0157 nats made of terms near 1 (a continuous Bernoulli NLL, which can be negative, plus a KL):
its float32 rounding is relative to the terms, not to the loss, so the checker's noise estimate
(relative to |f|) is too small. Along one direction of decoder.1.b the central differences at the
steps H and 2H were off the analytic derivative by -1.24e-5 and -8.4e-6 (rounding, shrinking like
1/H), which the checker once took for a persisting error: FAIL for a correct gradient. A real error
is the same at every step; the check now asks for that at H, 2H and 4H.
"""
import numpy as np

from strategies import make_data
from vae_np import VAE
from vae_np.gradcheck import check_model

ARCH = dict(x_dim=6, hidden=(2, 3, 2), z_dim=2, activation="identity",
            likelihood="continuous-bernoulli", sigma_param="softplus", seed=3,
            decoder_mean="identity", init_std=None, sigma_min=1e-4)


class WrongBias:
    """The model with decoder.1.b's gradient doubled (a planted bug), through check_model's
    interface: params, z_dim, loss_and_grads."""

    def __init__(self, model):
        self.model, self.params, self.z_dim = model, model.params, model.z_dim

    def loss_and_grads(self, x, k, eps):
        loss, grads = self.model.loss_and_grads(x, k=k, eps=eps)
        return loss, {**grads, "decoder.1.b": 2 * grads["decoder.1.b"]}


def test_float32_loss_of_cancelling_terms_is_no_false_failure():
    model = VAE(**ARCH, dtype=np.float32)
    x, eps = make_data(model, 3, 2, 241)
    assert abs(model.loss_and_grads(x, k=2, eps=eps)[0]) < 0.02       # the premise: a small f
    report = check_model(model, x, k=2, eps=eps, method="directional")
    assert not any(row.failed for row in report.rows), str(report)
    assert report.verdict == "INCONCLUSIVE"


def test_float32_loss_of_cancelling_terms_still_fails_a_doubled_gradient():
    model = VAE(**ARCH, dtype=np.float32)
    x, eps = make_data(model, 3, 2, 241)
    report = check_model(WrongBias(model), x, k=2, eps=eps, method="directional")
    failed = {row.name for row in report.rows if row.failed}
    assert "decoder.1.b" in failed and report.verdict == "FAILED", str(report)
