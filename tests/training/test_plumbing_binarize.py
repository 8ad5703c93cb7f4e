"""Dynamic binarization as the model receives it: a fresh Bernoulli draw x ~ Bern(g / 255) of
every example in every epoch, through ``fit(..., binarize=True)`` and ``vae-np train`` on
dynamically binarized MNIST.

Drawing one binary image per example once (static binarization), or thresholding at g = 127.5,
trains without an error and gives plausible losses; only what ``forward`` receives shows it. The
tests identify each example in the batches by pixels of grey level 0 and 255, which every correct
draw keeps (u < 0 never holds, u < 1 always does for u in [0, 1)).
"""
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from vae_np import SGD, VAE, cli, fit
from vae_np.cli import train as cli_train
from vae_np.vq.train import fit_vq
from vae_np.vq.model import VQVAE

N_BITS = 5
LEVELS = np.array([1, 64, 128, 191, 254])       # grey levels strictly between 0 and 255
COLUMNS = 16                                    # pixels per level in every image


def recording(model):
    """Make ``model.forward`` append a copy of every x it receives to the returned list."""
    seen, forward = [], model.forward

    def record(x, eps, *args, **kwargs):
        seen.append(np.array(x, dtype=np.float64))
        return forward(x, eps, *args, **kwargs)
    model.forward = record
    return seen


def labelled_data(n):
    """(n, D) uint8: N_BITS columns of 0/255 spelling the row's index, then the grey levels 0 and
    255 and LEVELS, COLUMNS pixels each. Returns the data and the grey level of each column (NaN
    for the index columns, whose level differs by row)."""
    bits = (np.arange(n)[:, None] >> np.arange(N_BITS)) & 1
    grey = np.repeat(np.concatenate([[0, 255], LEVELS]), COLUMNS)
    X = np.concatenate([255 * bits, np.broadcast_to(grey, (n, grey.size))], axis=1)
    return X.astype(np.uint8), np.concatenate([np.full(N_BITS, np.nan), grey])


def index_of(draws):
    """The example index spelled by the first N_BITS columns of binary draws (R, D)."""
    return (draws[:, :N_BITS].astype(int) << np.arange(N_BITS)).sum(axis=1)


def test_fit_draws_a_fresh_bernoulli_image_of_every_example_every_epoch():
    """Through fit: every epoch each example comes once, as a binary image that keeps its 0 and
    255 pixels, with a draw different from the last epoch's; over the epochs each pixel's mean
    approaches its grey level as a binomial mean does, the pixels of one draw are independent, and
    so are the draws of two examples in one batch.

    Tolerances are the binomial's: with E epochs each pixel's mean has variance g(1 - g)/E, so the
    mean over the intermediate pixels of (mean - g)^2 / (g(1 - g)/E) is 1 up to about 0.03 (its
    standard deviation over 24 x 80 pixels, computed from the fourth binomial moment); [0.8, 1.2]
    is seven of those either side. A draw made once per example gives E = 150, thresholding
    thousands. The other statistics are checked the same way (variance of a count of ones, the
    fraction of agreeing pixels), each within about eight of its standard deviations."""
    n, epochs, batch = 24, 150, 5
    X, grey = labelled_data(n)
    g = grey / 255
    model = VAE(X.shape[1], (3,), 1, "tanh", "bernoulli", seed=0)
    seen = recording(model)     # threads=1: the batches whole, on this model's own forward
    fit(model, X, SGD(1e-3), epochs=epochs, batch_size=batch, binarize=True,
        rng=np.random.default_rng(11), threads=1)
    steps = -(-n // batch)
    assert len(seen) == epochs * steps
    draws = np.full((epochs, n, X.shape[1]), np.nan)
    for step, x in enumerate(seen):
        assert set(np.unique(x)) <= {0.0, 1.0}
        rows = index_of(x)
        assert np.isnan(draws[step // steps, rows, 0]).all()        # once per epoch
        draws[step // steps, rows] = x
    assert not np.isnan(draws).any()                                # every example every epoch
    np.testing.assert_array_equal(draws[..., g == 0], 0)
    np.testing.assert_array_equal(draws[..., g == 1], 1)

    middle = (g > 0) & (g < 1)
    d, p = draws[..., middle], g[middle]
    # a fresh draw every epoch: no example repeats its previous image (16 pixels at g = 1/2 alone
    # agree with probability 2^-16)
    assert np.all(np.any(d[1:] != d[:-1], axis=2))
    # each pixel's mean over the epochs approaches its grey level
    ratio = np.mean((d.mean(axis=0) - p) ** 2 / (p * (1 - p) / epochs))
    assert 0.8 < ratio < 1.2, ratio
    # over every draw, each grey level comes out 1 with frequency g (5 binomial sd)
    for level in LEVELS:
        ones = draws[..., grey == level]
        q = level / 255
        assert abs(ones.mean() - q) < 5 * np.sqrt(q * (1 - q) / ones.size), level
    # the pixels of one draw are independent: the count of ones among one level's 16 pixels has
    # the binomial variance 16 q (1 - q), not up to 16^2 q (1 - q) (one uniform per image)
    for level in (64, 128, 191):
        q = level / 255
        count = draws[..., grey == level].sum(axis=2)
        assert 0.8 < count.var() / (COLUMNS * q * (1 - q)) < 1.2, level
    # two examples of one batch are drawn independently: their pixels at g = 128 agree with
    # probability q^2 + (1 - q)^2 (not always, as with one uniform row shared by the batch)
    q = 128 / 255
    agree = [np.mean(x[i, grey == 128] == x[j, grey == 128])
             for x in seen for i in range(len(x)) for j in range(i)]
    expected = q * q + (1 - q) ** 2
    assert abs(np.mean(agree) - expected) < 8 * np.sqrt(expected * (1 - expected)
                                                        / (COLUMNS * len(agree)))


def test_train_on_dynamic_mnist_draws_afresh_every_epoch(shared_data, tmp_path, monkeypatch):
    """Through ``vae-np train --dataset dynamic-mnist``: what reaches the model in training is
    binary, the draws of an epoch match the training images given to fit one to one (0 where the
    grey level is 0, 1 where it is 255), every image comes with a new draw each epoch, and over all
    draws the ones on the intermediate pixels add up to sum g / 255 within 5 binomial standard
    deviations (thresholding would be off by hundreds of them)."""
    given, seen = [], []
    original_fit = cli_train.fit

    def recording_fit(model, X, *args, **kwargs):
        given.append(np.asarray(X))
        model_seen = recording(model)
        try:
            return original_fit(model, X, *args, **kwargs)
        finally:
            del model.forward                  # back to the class's method
            seen.append(model_seen)
    monkeypatch.setattr(cli_train, "fit", recording_fit)
    epochs = 3
    assert cli.main(["train", "--dataset", "dynamic-mnist", "--data-dir", str(shared_data),
                     "--no-download", "--limit", "30", "--epochs", str(epochs), "--batch-size",
                     "8", "--hidden", "4", "--z-dim", "2", "--no-figures", "-q",
                     "--threads", "1", "--out", str(tmp_path / "run")]) == 0
    assert len(given) == epochs and all(np.array_equal(X, given[0]) for X in given)
    X = given[0].astype(np.float64) / 255
    n = len(X)
    draws = np.empty((epochs, n, X.shape[1]))
    p = np.clip(X, 1e-3, 1 - 1e-3)
    for epoch, batches in enumerate(seen):
        x = np.concatenate(batches)
        assert x.shape == X.shape and set(np.unique(x)) <= {0.0, 1.0}
        # match the epoch's draws one to one with the training images (two similar digits can
        # both fit one draw): the assignment of highest Bernoulli likelihood; then every draw
        # must fit its image exactly (0 where the grey level is 0, 1 where it is 255)
        cost = -(x @ np.log(p).T + (1 - x) @ np.log(1 - p).T)                   # (draw, image)
        draw, image = linear_sum_assignment(cost)
        draws[epoch, image] = x[draw]
        assert np.all(draws[epoch][X == 0] == 0) and np.all(draws[epoch][X == 1] == 1)
    middle = (X > 0) & (X < 1)
    assert np.all([np.any(draws[e, i, middle[i]] != draws[e - 1, i, middle[i]])
                   for e in range(1, epochs) for i in range(n)])
    p = np.broadcast_to(X, draws.shape)[np.broadcast_to(middle, draws.shape)]     # grey / 255
    ones = draws[np.broadcast_to(middle, draws.shape)].sum()
    assert abs(ones - p.sum()) < 5 * np.sqrt(np.sum(p * (1 - p)))


@pytest.mark.parametrize("model, train", [
    (VAE(4, (3,), 1, "tanh", "gaussian"), fit),
    (VQVAE(4, (3,), n_latents=1, code_dim=1, codebook_size=2, likelihood="gaussian"), fit_vq)])
def test_binarizing_data_that_are_not_probabilities_is_refused(model, train):
    """A Gaussian-likelihood model accepts any real data, but x ~ Bernoulli(x) needs x in
    [0, 1]: values of 3 or -2 were binarized to 1 and 0 without a word."""
    X = np.random.default_rng(0).normal(0.5, 3.0, (10, 4))
    with pytest.raises(ValueError, match=r"X must lie in \[0, 1\] for binarize=True"):
        train(model, X, SGD(1e-3), binarize=True)
    train(model, np.clip(X, 0, 1), SGD(1e-3), binarize=True)        # probabilities: accepted
    train(model, X, SGD(1e-3))                                       # no binarization: accepted
