"""Part of a split is a seeded uniform random subset (``vae_np.data.subset_rows``), never the
first N, and its numbers are those rows of the whole split.

The subset function itself: uniform (each index's inclusion frequency, and every pair of a small
split equally often), without replacement, seeded, its own draw per split, nested. The
evaluation: a subset's per-example -ELBO and IWAE values are exactly those rows of an evaluation
of the whole split (the noise is keyed by the row in the split), and its dynamic binarization is
that of the whole split. The real data sets' ordering, which makes this matter, is in
``tests/data/test_data_order.py``; the commands that take ``--limit`` in
``tests/cli/test_subsets_cli.py``.
"""
from itertools import combinations

import numpy as np
import pytest
from scipy import stats

from vae_np import VAE, evaluate
from vae_np.data import Dataset, choose_rows, describe_subset, subset_rows
from vae_np.evaluate import elbo, evaluation_subset, iwae_nll


def test_each_row_is_chosen_equally_often():
    """Over 2000 seeds, each of 50 rows is in the subset of 10 with frequency 10/50. Tolerance:
    the count of one row is Binomial(2000, 0.2), sd 17.9; 4.5 sd (a false alarm of 7e-6 per
    row; the seeds are fixed, so the test is deterministic). The first 10 rows, or never the
    last row, are 90 and 400 counts (22 sd) off."""
    n, limit, draws = 50, 10, 2000
    counts = np.zeros(n, dtype=np.int64)
    for seed in range(draws):
        rows = subset_rows(n, limit, seed, "test")
        assert len(rows) == limit and len(np.unique(rows)) == limit          # no repeats
        assert (np.diff(rows) > 0).all() and rows.min() >= 0 and rows.max() < n
        counts[rows] += 1
    p = limit / n
    sd = np.sqrt(draws * p * (1 - p))
    assert np.abs(counts - draws * p).max() < 4.5 * sd, counts


def test_every_subset_is_equally_likely():
    """Uniform over subsets, not only over rows: the 15 pairs of 6 rows, 3000 seeds, 200 expected
    of each. Pearson's chi-square (14 degrees of freedom) must stay below its 1 - 1e-4 quantile
    (42.6); a draw that favoured neighbouring rows would pass the row frequencies, not this."""
    pairs = {pair: 0 for pair in combinations(range(6), 2)}
    for seed in range(3000):
        pairs[tuple(int(r) for r in subset_rows(6, 2, seed, "train"))] += 1
    observed = np.array(list(pairs.values()))
    chi2 = ((observed - 200) ** 2 / 200).sum()
    assert chi2 < stats.chi2.ppf(1 - 1e-4, df=14), pairs


def test_seeded_per_split_and_nested():
    """The same (seed, split) gives the same rows; other seeds and other splits give other rows;
    a smaller subset of one seed is part of a larger one; no limit (or one >= n) is the whole
    split; seed None (runs made before random subsets) is the first rows."""
    a = subset_rows(10000, 1000, 0, "test")
    np.testing.assert_array_equal(a, subset_rows(10000, 1000, 0, "test"))
    others = [subset_rows(10000, 1000, seed, "test") for seed in range(1, 8)]
    others += [subset_rows(10000, 1000, 0, split) for split in ("train", "valid")]
    for other in others:
        assert len(np.intersect1d(a, other)) < 200        # 100 shared expected by chance
    assert not np.array_equal(a, np.arange(1000))
    for seed in range(5):
        small, large = subset_rows(60, 25, seed, "train"), subset_rows(60, 40, seed, "train")
        assert set(small) <= set(large)
    np.testing.assert_array_equal(subset_rows(7, None, 3), np.arange(7))
    np.testing.assert_array_equal(subset_rows(7, 7, 3), np.arange(7))
    np.testing.assert_array_equal(subset_rows(7, 100, 3), np.arange(7))
    np.testing.assert_array_equal(subset_rows(7, 3, None), np.arange(3))


def test_choose_rows_draws_from_the_generator_it_is_given():
    rows = choose_rows(30, 6, np.random.default_rng(4))
    np.testing.assert_array_equal(rows, choose_rows(30, 6, np.random.default_rng(4)))
    assert len(set(rows)) == 6 and (np.diff(rows) > 0).all()
    assert not np.array_equal(rows, choose_rows(30, 6, np.random.default_rng(5)))
    np.testing.assert_array_equal(choose_rows(4, 6, np.random.default_rng(0)), np.arange(4))


@pytest.mark.parametrize("call, name", [
    (lambda: subset_rows(-1, 3), "n"),
    (lambda: subset_rows(10, 0), "limit"),
    (lambda: subset_rows(10, 2.5), "limit"),
    (lambda: subset_rows(10, 3, -1), "seed"),
    (lambda: subset_rows(10, 3, 0, "validation"), "split"),
    (lambda: choose_rows(10, 0, np.random.default_rng(0)), "size"),
    (lambda: choose_rows(10, 3, 0), "rng"),
    (lambda: evaluate.elbo(VAE(4, (3,), 2), np.zeros((3, 4)), rows=[0, 1]), "rows"),
    (lambda: evaluate.iwae_nll(VAE(4, (3,), 2), np.zeros((2, 4)), k=2, rows=[0, -1]), "rows"),
])
def test_bad_arguments_name_themselves(call, name):
    with pytest.raises(ValueError, match=f"^{name} must"):
        call()


def test_describe_says_how_many_of_how_many_and_how_chosen():
    assert describe_subset(1000, 10000, 0, "test images") == \
        "1000 of 10000 test images, random subset, seed 0"
    assert describe_subset(10000, 10000, 0, "test images") == "all 10000 test images"
    assert describe_subset(5, 200, None, "train images") == "the first 5 of 200 train images"


def _model_and_split(n=40):
    rng = np.random.default_rng(0)
    model = VAE(6, (5,), 3, dtype=np.float64, seed=2)
    return model, (rng.random((n, 6)) < 0.5).astype(np.float64)


@pytest.mark.parametrize("max_bytes", [2 ** 26, 3000])
def test_a_subsets_numbers_are_those_rows_of_the_whole_split(max_bytes):
    """elbo and iwae_nll of rows r of a split, given rows=r, equal those rows of an evaluation of
    the whole split, bit for bit (each example's noise is keyed by its row in the split), in one
    chunk or in many. Without rows, the subset's examples would draw row 0, 1, ...'s noise: other
    values (checked, so that the comparison can fail)."""
    model, X = _model_and_split()
    whole_elbo = elbo(model, X, k=3, seed=5, max_bytes=max_bytes)
    whole_iwae = iwae_nll(model, X, k=7, seed=5, max_bytes=max_bytes)[1]
    rows = subset_rows(len(X), 11, seed=1)
    part = elbo(model, X[rows], k=3, seed=5, max_bytes=max_bytes, rows=rows)
    for name in ("per_example", "per_example_recon", "per_example_kl"):
        np.testing.assert_array_equal(getattr(part, name), getattr(whole_elbo, name)[rows])
    assert part.loss == pytest.approx(whole_elbo.per_example[rows].mean(), rel=1e-15)
    np.testing.assert_array_equal(
        iwae_nll(model, X[rows], k=7, seed=5, max_bytes=max_bytes, rows=rows)[1], whole_iwae[rows])
    unkeyed = elbo(model, X[rows], k=3, seed=5, max_bytes=max_bytes).per_example
    assert not np.allclose(unkeyed, whole_elbo.per_example[rows])


def test_a_subset_of_dynamic_data_is_binarized_as_in_the_whole_split(monkeypatch):
    """The binary images of a subset are those rows of the binarized whole split, also when the
    split's uniforms are drawn in several blocks (block of 7 rows here, the whole at once)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(160, 4), dtype=np.uint8)
    data = Dataset("tiny", x[:60], x[60:], None, None, (2, 2), dynamic_binarization=True)
    whole = evaluation_subset(data, "test")
    assert whole.x.shape == (100, 4) and set(np.unique(whole.x)) == {0, 255}
    monkeypatch.setattr(evaluate, "_BINARIZE_BLOCK", 7)
    for limit, seed in ((13, 0), (13, 1), (60, 2), (100, 0)):
        part = evaluation_subset(data, "test", limit, seed)
        np.testing.assert_array_equal(part.x, whole.x[part.rows])
        np.testing.assert_array_equal(part.rows, subset_rows(100, limit, seed, "test"))
    np.testing.assert_array_equal(evaluation_subset(data, "test").x, whole.x)
    static = evaluation_subset(Dataset("tiny", x[:60], x[60:], None, None, (2, 2)), "test", 9, 4)
    np.testing.assert_array_equal(static.x, x[60:][static.rows])
