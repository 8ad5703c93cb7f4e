"""The doubly-reparameterized (DReG) estimator of the IWAE encoder gradient, tested as an estimator.

It is not the gradient of the batch's loss, so it cannot be checked against central differences;
instead: the value and the decoder's gradient are the IWAE ones exactly, its mean over eps equals
the IWAE encoder gradient's mean (paired draws, within standard errors), and its signal-to-noise
ratio does not fall with K the way the plain IWAE encoder gradient's does (Rainforth et al. 2018).
"""
import numpy as np
import pytest

from vae_np import VAE, Adam, fit
from vae_np.objective import NegativeIWAEDReG
from vae_np.testing.strategies import make_data


def model_and_data(seed=1):
    model = VAE(4, (3,), 2, "tanh", "bernoulli", seed=seed)
    x, _ = make_data(model, 1, 1, 0)
    return model, x


def encoder_gradients(model, x, k, draws, estimator, seed=0):
    """(draws, n_encoder) encoder gradients, one per fresh eps (same seed for both estimators)."""
    rng = np.random.default_rng(seed)
    out = np.empty((draws, model.n_encoder))
    for i in range(draws):
        eps = rng.standard_normal((k, x.shape[0], model.z_dim))
        model.loss_and_grads(x, k=k, eps=eps, objective="iwae", estimator=estimator)
        out[i] = model.grad_flat[:model.n_encoder]
    return out


def test_value_and_decoder_gradient_are_the_iwae_ones():
    model, x = model_and_data()
    eps = np.random.default_rng(3).standard_normal((6, 1, 2))
    loss, _ = model.loss_and_grads(x, k=6, eps=eps, objective="iwae")
    iwae = model.grad_flat.copy()
    assert model.loss_and_grads(x, k=6, eps=eps, objective="iwae", estimator="dreg")[0] == loss
    e = model.n_encoder
    np.testing.assert_array_equal(model.grad_flat[e:], iwae[e:])
    assert np.abs(model.grad_flat[:e] - iwae[:e]).max() > 1e-3      # a different estimator


def unbiased_t(model, x, k=5, draws=3000):
    """Largest |t| of the paired difference DReG - IWAE over the encoder's coordinates."""
    diff = (encoder_gradients(model, x, k, draws, "dreg")
            - encoder_gradients(model, x, k, draws, "standard"))
    return np.max(np.abs(diff.mean(axis=0)) / (diff.std(axis=0, ddof=1) / np.sqrt(draws)))


def test_dreg_has_the_iwae_encoder_gradient_as_its_mean():
    """Paired draws: the mean difference is within 4.5 standard errors on every coordinate (the
    largest of ~20 |t| values of a true mean zero exceeds 4.5 with probability below 1e-4)."""
    model, x = model_and_data()
    assert unbiased_t(model, x) < 4.5


def test_the_mean_check_catches_weights_that_are_not_squared(monkeypatch):
    """Weighting the encoder's path by w~ instead of w~^2 is biased: the same check fails."""
    backward = NegativeIWAEDReG.backward

    def w_not_squared(self, trace):
        backward(self, trace)
        d = trace.grads
        w = -d["log_w"].shape[1] * d["log_w"]
        d["dz_weight"] = np.ones_like(w)
        d["log_pz"], d["log_q_path"] = -w / w.shape[1], w / w.shape[1]
    monkeypatch.setattr(NegativeIWAEDReG, "backward", w_not_squared)
    model, x = model_and_data()
    assert unbiased_t(model, x) > 6


def median_snr(gradients):
    """Median over coordinates of |mean| / std: the signal-to-noise ratio of an estimator."""
    return float(np.median(np.abs(gradients.mean(axis=0)) / gradients.std(axis=0, ddof=1)))


def test_dreg_keeps_its_signal_as_k_grows():
    """The IWAE encoder gradient's SNR falls as K grows (its signal shrinks like 1/K, its noise
    like 1/sqrt(K)); DReG's does not, and at K = 100 it is several times higher."""
    model, x = model_and_data()
    snr = {(est, k): median_snr(encoder_gradients(model, x, k, 400, est, seed=k))
           for est in ("standard", "dreg") for k in (1, 10, 100)}
    assert snr["standard", 1] > snr["standard", 10] > snr["standard", 100]
    assert snr["dreg", 100] > 3 * snr["standard", 100]
    assert snr["dreg", 100] > 0.5 * snr["dreg", 1]


def test_fit_and_bad_combinations():
    X = (np.random.default_rng(0).random((100, 4)) < 0.4).astype(float)
    model = VAE(4, (3,), 2, "tanh", "bernoulli", seed=0)
    history = fit(model, X, Adam(1e-2), epochs=3, batch_size=25, k=5, objective="iwae",
                  estimator="dreg", rng=np.random.default_rng(0))
    assert history["loss"][-1] < history["loss"][0]
    with pytest.raises(ValueError, match="estimator='dreg' applies to objective"):
        model.loss_and_grads(X[:2], estimator="dreg")
    with pytest.raises(ValueError, match="estimator must be one of"):
        fit(model, X, Adam(), objective="iwae", estimator="DReG")
