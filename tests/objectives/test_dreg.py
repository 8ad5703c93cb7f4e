"""The doubly-reparameterized (DReG) estimator of the IWAE encoder gradient, tested as an estimator.

It is not the gradient of the batch's loss, so it cannot be checked against central differences;
instead: the value and the decoder's gradient are the IWAE ones exactly, its mean over eps equals
the IWAE encoder gradient's mean (paired draws, within standard errors), and its signal-to-noise
ratio does not fall with K the way the plain IWAE encoder gradient's does (Rainforth et al. 2018);
and at batch B > 1 it is the mean of the B single-example estimators with the same eps.
"""
import numpy as np
import pytest

from vae_np import VAE, Adam, fit
from vae_np.objectives.dreg import NegativeIWAEDReG
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
    """Weighting the encoder's path by w~ instead of w~^2 is biased: the same check fails (the
    decoder's path left unweighted by the objective's hook, the prior's and ln q's path terms
    weighted by w~ / B)."""
    backward = NegativeIWAEDReG.backward

    def w_not_squared(self, trace):
        backward(self, trace)
        d = trace.grads
        w = -d["log_w"].shape[1] * d["log_w"]
        d["log_pz"], d["log_q_path"] = -w / w.shape[1], w / w.shape[1]
    monkeypatch.setattr(NegativeIWAEDReG, "backward", w_not_squared)
    monkeypatch.setattr(NegativeIWAEDReG, "backward_z", lambda self, trace: None)
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


def dreg_gradient(model, x, eps, estimator="dreg"):
    model.loss_and_grads(x, k=eps.shape[0], eps=eps, objective="iwae", estimator=estimator)
    return model.grad_flat.copy()


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_dreg_of_a_batch_is_the_mean_of_its_examples(likelihood):
    """At batch B > 1, with eps frozen, the batch's DReG gradient is the mean of the B
    single-example DReG gradients (each example's with its own column of eps): the estimator of
    the mean loss's gradient is the mean of the per-example estimators. The tests above use
    B = 1, where a missing (or doubled) division by B cannot show.

    Tolerance: both sides are the same float64 sums of the same terms in another order (the batch
    sums over b inside the matrix products, the test sums B whole gradients), a few ulps of the
    largest term; 1e-10 relative to the gradient's largest entry is far above that and far below
    a factor B = 5 (0.8 of every entry)."""
    model = VAE(6, (5,), 3, "tanh", likelihood, seed=4)
    x, eps = make_data(model, 5, 7, 2)
    batch = dreg_gradient(model, x, eps)
    singles = np.mean([dreg_gradient(model, x[b:b + 1], eps[:, b:b + 1]) for b in range(5)],
                      axis=0)
    scale = np.abs(singles).max()
    np.testing.assert_allclose(batch, singles, rtol=0, atol=1e-10 * scale)
    e = model.n_encoder
    assert np.abs(singles[:e]).max() > 1e-3 * scale          # the encoder part is not all zero
    # the decoder's part is the IWAE gradient's, at B > 1 too (bit for bit: the same backward)
    np.testing.assert_array_equal(batch[e:], dreg_gradient(model, x, eps, "standard")[e:])
