"""Evaluation: the IWAE estimate against an exactly computable ln p(x), bound ordering, chunking
invariance, bounded work memory, active units and the fixed binarization of evaluation data.

The exact reference is a linear Gaussian VAE (no hidden layer, identity activation, Gaussian
decoder with fixed sigma): x = z W + b + sigma * noise, so p(x) = N(b, W^T W + sigma^2 I) exactly.
When the rows of W are orthogonal the true posterior is the diagonal Gaussian
N((x - b) W^T S / sigma^2, S) with S = diag(1 / (1 + |w_j|^2 / sigma^2)), which the encoder can
represent exactly; then every importance weight equals p(x).
"""
import dataclasses

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from vae_np import VAE
from vae_np.data import Dataset
from vae_np import evaluate
from vae_np.evaluate import (
    ExampleNoise, active_units, elbo, evaluation_set, evaluation_subset, iwae_nll, latent_means,
    pair_bytes, plan_chunks)

D, Z, SIGMA = 6, 2, 0.5


def linear_gaussian(exact_posterior=True, seed=0):
    """The linear Gaussian VAE above and the function x -> exact -ln p(x)."""
    rng = np.random.default_rng(seed)
    model = VAE(D, (), Z, activation="identity", likelihood="gaussian", sigma_param="logvar",
                dtype=np.float64, decoder_sigma=SIGMA)
    q, _ = np.linalg.qr(rng.standard_normal((D, D)))
    W = np.diag([1.5, 0.8]) @ q[:Z]                     # (Z, D), orthogonal rows
    b = rng.standard_normal(D)
    S = 1 / (1 + np.sum(W * W, axis=1) / SIGMA ** 2)    # posterior variances
    model.params["decoder.out.W"][...] = W
    model.params["decoder.out.b"][...] = b
    model.params["encoder.mu.W"][...] = W.T * S / SIGMA ** 2
    model.params["encoder.mu.b"][...] = -b @ (W.T * S / SIGMA ** 2)
    model.params["encoder.sigma.W"][...] = 0
    model.params["encoder.sigma.b"][...] = np.log(S)   # logvar head: sigma = exp(s / 2)
    if not exact_posterior:
        model.params["encoder.mu.W"][...] += 0.15 * rng.standard_normal((D, Z))
        model.params["encoder.sigma.b"][...] += 0.5
    marginal = multivariate_normal(b, W.T @ W + SIGMA ** 2 * np.eye(D))
    x = marginal.rvs(size=200, random_state=rng)
    return model, x, -marginal.logpdf(x)


def test_exact_posterior_every_importance_weight_is_p_x():
    model, x, exact = linear_gaussian(exact_posterior=True)
    for k in (1, 7):
        nll, per_example = iwae_nll(model, x, k=k, seed=3)
        np.testing.assert_allclose(per_example, exact, rtol=0, atol=1e-9)
        assert nll == pytest.approx(exact.mean(), abs=1e-9)


def test_exact_posterior_elbo_is_unbiased_for_ln_p():
    # With q = p(z|x) the KL gap is 0, so the MC -ELBO equals -ln p(x) in expectation;
    # 4000 samples per example leave a Monte Carlo error of about 0.01 nats here.
    model, x, exact = linear_gaussian(exact_posterior=True)
    result = elbo(model, x, k=4000, seed=1)
    assert result.loss == pytest.approx(exact.mean(), abs=0.02)
    assert result.loss == pytest.approx(result.recon + result.kl, rel=1e-12)


def test_bound_ordering_and_convergence_with_k():
    model, x, exact = linear_gaussian(exact_posterior=False)
    loss = elbo(model, x, k=2000, seed=0).loss
    estimates = [iwae_nll(model, x, k=k, seed=0)[0] for k in (1, 10, 100, 3000)]
    gap = loss - exact.mean()
    assert gap > 0.3                                   # a poor q: the -ELBO is above -ln p
    # k = 1 is a one-sample -ELBO: equal in expectation (one log-weight has a std of about
    # 1.4 nats here, so the mean over 200 examples has a standard error of about 0.1)
    assert estimates[0] == pytest.approx(loss, abs=0.4)
    assert estimates[0] > estimates[1] > estimates[2]  # decreasing in k
    assert abs(estimates[3] - exact.mean()) < 0.1 * gap   # close to -ln p for large k
    assert min(estimates) > exact.mean() - 0.02        # never clearly below -ln p


def test_iwae_with_k_1_is_minus_the_log_weight():
    model, x, _ = linear_gaussian(exact_posterior=False)
    log_w = model.log_weights(x, 1, eps=ExampleNoise(4, range(len(x)), Z, np.float64).draw(1))
    np.testing.assert_allclose(iwae_nll(model, x, k=1, seed=4)[1], -log_w[0], rtol=1e-12)


def test_chunking_does_not_change_results():
    model, x, _ = linear_gaussian(exact_posterior=False)
    big = iwae_nll(model, x, k=50, seed=5, max_bytes=2 ** 30)[1]
    small_bytes = 3 * pair_bytes(model)                # 3 pairs: 1 example, 3 samples per pass
    assert plan_chunks(model, len(x), 50, small_bytes) == (1, 3)
    small = iwae_nll(model, x, k=50, seed=5, max_bytes=small_bytes)[1]
    np.testing.assert_allclose(small, big, rtol=0, atol=1e-10)
    e_big = elbo(model, x, k=20, seed=5, max_bytes=2 ** 30).per_example
    e_small = elbo(model, x, k=20, seed=5, max_bytes=7 * pair_bytes(model)).per_example
    np.testing.assert_allclose(e_small, e_big, rtol=0, atol=1e-10)
    # row i's noise does not depend on how many rows follow it
    np.testing.assert_allclose(iwae_nll(model, x[:4], k=50, seed=5)[1], big[:4], rtol=0, atol=0)


def test_different_seed_different_noise():
    model, x, _ = linear_gaussian(exact_posterior=False)
    assert iwae_nll(model, x, k=5, seed=0)[0] != iwae_nll(model, x, k=5, seed=1)[0]


@pytest.mark.parametrize("n, k, max_bytes", [(10000, 5000, 64 * 2 ** 20), (10000, 1, 2 ** 26),
                                             (3, 100, 2 ** 30), (50, 7, 1)])
def test_plan_chunks_respects_the_memory_bound(n, k, max_bytes):
    model = VAE(784, (400,), 20, dtype=np.float64)
    examples, samples = plan_chunks(model, n, k, max_bytes)
    assert 1 <= examples <= n and 1 <= samples <= k
    if max_bytes >= pair_bytes(model):
        assert examples * samples * pair_bytes(model) <= max_bytes
    assert samples == k or examples == 1


def test_example_noise_is_per_example_stream():
    a = ExampleNoise(0, [3, 4], 2, np.float64).draw(5)
    b = ExampleNoise(0, [4], 2, np.float64)
    np.testing.assert_array_equal(a[:, 1], np.concatenate([b.draw(2), b.draw(3)])[:, 0])


def test_active_units_is_the_variance_of_the_posterior_mean():
    model, x, _ = linear_gaussian(exact_posterior=True)
    model.params["encoder.mu.W"][:, 1] = 0             # unit 1: mu constant over the data
    count, variances = active_units(model, x, threshold=0.01)
    mu = x @ model.params["encoder.mu.W"] + model.params["encoder.mu.b"]
    np.testing.assert_allclose(variances, mu.var(axis=0), rtol=1e-12, atol=1e-15)
    assert variances[1] < 1e-20 and variances[0] > 0.01 and count == 1
    assert active_units(model, x, threshold=variances[0] * 2)[0] == 0
    np.testing.assert_allclose(latent_means(model, x, batch_size=7), mu, atol=1e-12)


def test_bad_arguments_name_themselves():
    model, x, _ = linear_gaussian()
    with pytest.raises(ValueError, match="k must"):
        iwae_nll(model, x, k=0)
    with pytest.raises(ValueError, match=r"X must have shape \(n, 6\)"):
        elbo(model, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="threshold"):
        active_units(model, x, threshold=-1)


def _tiny_dataset(dynamic):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(400, 4), dtype=np.uint8)
    return Dataset("tiny", x[:300], x[300:], None, None, (2, 2), dynamic_binarization=dynamic)


def test_evaluation_set_binarizes_dynamic_data_once_and_reproducibly():
    data = _tiny_dataset(dynamic=True)
    a, b = evaluation_set(data), evaluation_set(data)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.uint8 and set(np.unique(a)) <= {0, 255}
    assert abs((a == 255).mean() - data.x_test.mean() / 255) < 0.1
    # a subset's rows are binarized as in the whole split (the split's uniforms, row by row)
    for limit, seed in ((10, 0), (10, 3), (99, 1), (1, 2)):
        part = evaluation_subset(data, "test", limit, seed)
        assert len(part.rows) == len(part.x) == limit and part.n_split == 100
        np.testing.assert_array_equal(part.x, a[part.rows])
    np.testing.assert_array_equal(evaluation_set(data, limit=10, seed=None), a[:10])
    static = dataclasses.replace(data, dynamic_binarization=False)
    assert evaluation_set(static) is static.x_test
    with pytest.raises(ValueError, match="no valid split"):
        evaluation_set(data, "valid")


@pytest.mark.parametrize("call, name", [
    (lambda m, X: evaluate.elbo("not a model", X), "model"),
    (lambda m, X: evaluate.iwae_nll(None, X, k=2), "model"),
    (lambda m, X: evaluate.active_units([], X), "model"),
    (lambda m, X: evaluate.elbo(m, X, seed=-1), "seed"),
    (lambda m, X: evaluate.iwae_nll(m, X, k=2, seed="a"), "seed"),
    (lambda m, X: evaluate.evaluation_set("mnist"), "dataset"),
])
def test_bad_model_seed_and_dataset_name_the_argument(call, name):
    model = VAE(6, (4,), 2, dtype=np.float64)
    X = np.random.default_rng(0).random((5, 6))
    with pytest.raises(ValueError, match=name):
        call(model, X)
