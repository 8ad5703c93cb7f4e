"""The VQ-VAE's bound with a learned prior (vae_np.vq.prior), on models small enough to enumerate.

With M = 2 positions of K = 3 codes there are 9 code vectors, so
ln p(x) = logsumexp_c [ln p(x | c) + ln prior(c)] is exact, and the bound must satisfy

    bound(x) >= -ln p(x),      bound(x) - (-ln p(x)) = -ln p(c(x) | x)   (the posterior's mass),

where p(c | x) is the softmax of the enumerated table: the second is the ELBO identity for the
one-hot q. The planted bugs (the prior term dropped, its sign flipped) fail the identity.
"""
import itertools

import numpy as np
import pytest

from vae_np import Adam, VQVAE
from vae_np.vq.made import MADEPrior
from vae_np.vq.prior import (
    VQBound, code_usage, encode_all, fit_prior, load_prior, save_prior, vq_bound)

M, K = 2, 3


def tiny(seed=0):
    model = VQVAE(6, hidden=(5,), n_latents=M, code_dim=2, codebook_size=K, seed=seed)
    model.codebook[...] = np.random.default_rng(seed).normal(0, 0.3, (K, 2))   # spread codes
    prior = MADEPrior(M, K, hidden=(4,), activation="tanh", seed=seed)
    prior.flat *= 3.0                                       # a prior far from uniform
    X = (np.random.default_rng(seed + 1).random((8, 6)) < 0.5).astype(np.float64)
    return model, prior, X


def enumerated(model, prior, X):
    """table (N, K^M) of ln p(x | c) + ln prior(c) over every code vector, and the codes."""
    codes = np.array(list(itertools.product(range(K), repeat=M)), dtype=np.int64)
    table = np.stack([-model.nll_given_codes(X, np.tile(c, (len(X), 1))) for c in codes], axis=1)
    return table + prior.log_prob(codes)[None, :], codes


def bound_errors(model, prior, X, result=None):
    """(worst violation of bound >= -ln p(x), worst error of the gap identity), both in nats, of
    ``result`` (default: vq_bound's)."""
    result = vq_bound(model, prior, X) if result is None else result
    table, codes = enumerated(model, prior, X)
    log_px = np.logaddexp.reduce(table, axis=1)
    index = result.codes @ (K ** np.arange(M - 1, -1, -1))
    log_posterior = table[np.arange(len(X)), index] - log_px           # ln p(c(x) | x)
    violation = float(np.max(-log_px - result.bound))
    identity = float(np.max(np.abs((result.bound + log_px) - (-log_posterior))))
    return violation, identity


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bound_is_above_the_enumerated_nll_with_the_posterior_gap(seed):
    model, prior, X = tiny(seed)
    violation, identity = bound_errors(model, prior, X)
    assert violation <= 0
    assert identity < 1e-12


def test_bound_parts_add_up_and_use_the_nearest_codes():
    model, prior, X = tiny()
    result = vq_bound(model, prior, X, batch_size=3)             # batches must not matter
    np.testing.assert_array_equal(result.codes, model.encode_codes(X))
    np.testing.assert_allclose(result.recon, model.nll_given_codes(X, result.codes), rtol=1e-14)
    np.testing.assert_allclose(result.prior_nll, -prior.log_prob(result.codes), rtol=1e-14)
    np.testing.assert_array_equal(result.bound, result.recon + result.prior_nll)


def test_code_usage_and_perplexity_by_hand():
    codes = np.array([[0, 0], [0, 2], [2, 0]])                  # frequencies 4/6, 0, 2/6
    used, perplexity, counts = code_usage(codes, 4)
    assert used == 0.5 and counts.tolist() == [4, 0, 2, 0]
    np.testing.assert_allclose(perplexity, np.exp(-(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3))))


def test_fit_prior_learns_dependent_codes():
    """Codes where position 2 copies position 1: the fitted prior must learn the copy, so its NLL
    drops from about 2 ln 4 toward ln 4 (which a prior of independent positions cannot beat)."""
    rng = np.random.default_rng(0)
    first = rng.integers(0, 4, 2000)
    codes = np.stack([first, first], axis=1)
    prior = MADEPrior(2, 4, hidden=(16,), seed=0)
    history = fit_prior(prior, codes, Adam(lr=1e-2), epochs=8, batch_size=100,
                        rng=np.random.default_rng(1), codes_test=codes[:200])
    assert [row["epoch"] for row in history] == list(range(1, 9))
    assert history[-1]["train_nll"] < np.log(4) + 0.05 < 2 * np.log(4) - 1.0
    assert abs(history[-1]["test_nll"] - (-np.mean(prior.log_prob(codes[:200])))) < 1e-12


def test_save_and_load_round_trip(tmp_path):
    _, prior, _ = tiny()
    save_prior(tmp_path, prior, dict(fit=dict(epochs=3)))
    again, info = load_prior(tmp_path)
    codes = np.array(list(itertools.product(range(K), repeat=M)))
    np.testing.assert_array_equal(again.log_prob(codes), prior.log_prob(codes))
    assert info["fit"] == dict(epochs=3)


def test_missing_prior_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="fit-prior"):
        load_prior(tmp_path)


def test_mismatched_prior_and_bad_input():
    model, _, X = tiny()
    with pytest.raises(ValueError, match="prior must be over the model's codes"):
        vq_bound(model, MADEPrior(M, K + 1, hidden=(3,)), X)
    with pytest.raises(ValueError, match="prior must be a MADEPrior"):
        vq_bound(model, object(), X)
    with pytest.raises(ValueError, match="codes"):
        fit_prior(MADEPrior(M, K), np.full((4, M), K), Adam(lr=1e-3), 1, 2,
                  np.random.default_rng(0))
    with pytest.raises(ValueError, match="rng"):
        fit_prior(MADEPrior(M, K), np.zeros((4, M), int), Adam(lr=1e-3), 1, 2, 0)
    with pytest.raises(ValueError, match="batch_size"):
        encode_all(model, X, batch_size=0)


# --------------------------------------------------------------------------- planted bugs
@pytest.mark.parametrize("bug", ["prior term dropped", "prior sign flipped"])
def test_wrong_bound_fails_the_identity(monkeypatch, bug):
    model, prior, X = tiny()
    right = MADEPrior.log_prob

    def wrong(self, codes):
        lp = right(self, codes)
        return 0 * lp if bug == "prior term dropped" else -lp

    monkeypatch.setattr(MADEPrior, "log_prob", wrong)
    result = vq_bound(model, prior, X)                  # the bound computed with the bug
    monkeypatch.setattr(MADEPrior, "log_prob", right)   # the enumeration with the right prior
    violation, identity = bound_errors(model, prior, X, result)
    assert identity > 1e-3


def test_bound_at_other_codes_fails_the_identity():
    """The bound's parts evaluated at codes other than c(x) (here c(x) + 1 mod K)."""
    model, prior, X = tiny()
    codes = model.encode_codes(X)
    shifted = (codes + 1) % K
    recon, prior_nll = model.nll_given_codes(X, shifted), -prior.log_prob(shifted)
    result = VQBound(recon + prior_nll, recon, prior_nll, codes)
    assert bound_errors(model, prior, X, result)[1] > 1e-3


def test_early_stopping_keeps_the_epoch_of_lowest_validation_nll():
    """40 uniform code vectors and a 64-unit MADE: it memorises them, the held-out -ln prior
    rises after epoch 1, and the prior must end with epoch 1's parameters (not the last)."""
    rng = np.random.default_rng(0)
    train, valid = rng.integers(0, 4, (40, 3)), rng.integers(0, 4, (200, 3))
    prior = MADEPrior(3, 4, hidden=(64,), seed=0)
    history = fit_prior(prior, train, Adam(lr=1e-2), epochs=6, batch_size=10,
                        rng=np.random.default_rng(1), codes_valid=valid)
    valid_nll = [row["valid_nll"] for row in history]
    assert valid_nll[-1] > min(valid_nll) + 0.1                # it did overfit
    np.testing.assert_allclose(-np.mean(prior.log_prob(valid)), min(valid_nll), rtol=1e-12)
    assert [row["best"] for row in history] == [v == min(valid_nll[:i + 1])
                                                for i, v in enumerate(valid_nll)]
