"""How the real data sets are ordered, and that a random subset (``vae_np.data.subset_rows``, what
``--limit`` takes) is representative of its split where a first-N slice is not.

Two statistics, each with a stated tolerance:

* class mix (labels: MNIST; binarized MNIST through the label of each image's nearest MNIST test
  image): Pearson's chi-square of the subset's class counts against the split's proportions,
  scaled by (N - 1) / (N - n) for drawing n of N without replacement, approximately chi-square
  with 9 degrees of freedom; a subset passes below its 1 - 1e-4 quantile (33.7);
* mean ink (every split, no labels needed): the subset's mean grey level per pixel, in standard
  errors of a mean of n of N drawn without replacement; a subset passes within 4.5 (a false alarm
  of 7e-6 per comparison).

The seeds are fixed, so each test is deterministic; the tolerances say how unlikely a failure of a
truly random subset would be. The first 1000 binarized-MNIST test images fail both (chi-square in
the thousands: 980 zeros and 20 ones; ink 28 standard errors high), so these tests can fail.
"""
import numpy as np
import pytest
from scipy import stats

from vae_np.data import load_dataset, make_sprites, subset_rows
from vae_np.data.frey import read_frey

CHI2_9 = stats.chi2.ppf(1 - 1e-4, df=9)          # 33.7
INK_Z = 4.5


@pytest.fixture(scope="module")
def mnist(shared_data):
    return load_dataset("mnist", shared_data, download=False, progress=False)


@pytest.fixture(scope="module")
def binarized(shared_data):
    return load_dataset("binarized-mnist", shared_data)


def class_chi2(labels, split_labels):
    """Pearson's chi-square of the class counts of ``labels`` (n drawn without replacement from
    ``split_labels``, N) against the split's proportions, times (N - 1) / (N - n)."""
    n, N = len(labels), len(split_labels)
    expected = np.bincount(split_labels, minlength=10) / N * n
    observed = np.bincount(labels, minlength=10)
    return float(((observed - expected) ** 2 / expected).sum() * (N - 1) / (N - n))


def ink_z(x, rows):
    """(mean ink of x[rows] - mean ink of x) / its standard error (n of N without replacement)."""
    ink = x.astype(np.float64).mean(axis=1)
    n, N = len(rows), len(ink)
    se = ink.std(ddof=1) / np.sqrt(n) * np.sqrt((N - n) / (N - 1))
    return float((ink[rows].mean() - ink.mean()) / se)


def nearest_labels(x_binary, mnist):
    """The label of the MNIST test image under which each binary image is most likely (pixels
    independent Bernoulli(grey / 255), clipped to [0.001, 0.999]), and the matched rows."""
    p = np.clip(mnist.x_test.astype(np.float32) / 255, 1e-3, 1 - 1e-3)
    b = x_binary.astype(np.float32) / 255
    match = (b @ np.log(p).T + (1 - b) @ np.log1p(-p).T).argmax(axis=1)
    return mnist.y_test[match], match


@pytest.mark.parametrize("split", ["train", "test"])
def test_a_random_subset_of_mnist_has_the_splits_class_mix_and_ink(split, mnist):
    """MNIST's classes are mixed in both splits; random subsets of 1000 (five seeds) have the
    split's class mix and mean ink within the tolerances above."""
    x, y = getattr(mnist, f"x_{split}"), getattr(mnist, f"y_{split}")
    for seed in range(5):
        rows = subset_rows(len(x), 1000, seed, split)
        assert class_chi2(y[rows], y) < CHI2_9, (split, seed)
        assert abs(ink_z(x, rows)) < INK_Z, (split, seed)


def test_mnist_test_halves_come_from_different_writers(mnist):
    """The first 5000 MNIST test images are cleaner (less ink) than the last 5000: a first-N
    slice of the test split is not a sample of it, although its class mix is."""
    x, y = mnist.x_test, mnist.y_test
    first = np.arange(1000)
    assert class_chi2(y[first], y) < CHI2_9
    assert ink_z(x, first) < -INK_Z and ink_z(x, np.arange(5000, 10000)) > INK_Z


def test_binarized_mnist_test_is_sorted_by_digit_and_a_random_subset_is_not(binarized, mnist):
    """Each binarized test image labelled by its nearest MNIST test image: a random subset of 1000
    has the class mix of the MNIST test split and the split's mean ink, and its labels never
    decrease along the rows (the split is sorted by digit); the first 1000 rows fail both."""
    x = binarized.x_test
    rows = subset_rows(len(x), 1000, 0, "test")
    labels, match = nearest_labels(x[rows], mnist)
    assert len(np.unique(match)) >= 990             # a different MNIST image for (almost) each
    assert (np.diff(labels) >= 0).all()             # sorted by digit
    assert class_chi2(labels, mnist.y_test) < CHI2_9
    assert abs(ink_z(x, rows)) < INK_Z
    first, _ = nearest_labels(x[:1000], mnist)
    assert class_chi2(first, mnist.y_test) > 100 * CHI2_9
    assert np.bincount(first, minlength=10)[0] > 900
    assert ink_z(x, np.arange(1000)) > 5 * INK_Z


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_random_subsets_of_binarized_mnist_have_the_splits_ink(split, binarized):
    x = getattr(binarized, f"x_{split}")
    for seed in range(5):
        assert abs(ink_z(x, subset_rows(len(x), 1000, seed, split))) < INK_Z, (split, seed)


def test_frey_is_a_video_and_its_splits_keep_the_frames_in_order(shared_data):
    """Consecutive Frey frames are much closer than random pairs; the train/test split is a seeded
    random assignment of frames, and each split keeps them in video order, so its first rows are
    the start of the video while a random subset spans all of it."""
    frames = read_frey(shared_data / "frey_face" / "frey_rawface.mat").astype(np.float64)
    near = np.abs(np.diff(frames, axis=0)).mean()
    far = np.abs(frames - frames[np.random.default_rng(0).permutation(len(frames))]).mean()
    assert near < 0.6 * far                         # 12.1 against 27.1 grey levels
    data = load_dataset("frey", shared_data)
    index = {frame.tobytes(): i for i, frame in enumerate(read_frey(
        shared_data / "frey_face" / "frey_rawface.mat"))}
    where = {split: np.array([index[row.tobytes()] for row in getattr(data, f"x_{split}")])
             for split in ("train", "test")}
    assert sorted(np.concatenate(list(where.values()))) == list(range(len(frames)))
    assert all((np.diff(w) > 0).all() for w in where.values())      # in video order
    test = where["test"]
    assert test.min() < 50 and test.max() > len(frames) - 50        # spread over the video
    assert test[:20].max() < len(frames) / 4                        # the first rows: its start
    rows = subset_rows(len(test), 20, 0, "test")
    assert test[rows].min() < len(frames) / 4 and test[rows].max() > 3 * len(frames) / 4


def test_sprites_are_drawn_independently_so_no_order_shows():
    """Each sprite's factors are independent draws: the first 1000 test sprites have the split's
    shape mix, like a random subset (chi-square with 2 degrees of freedom, 1 - 1e-4 quantile)."""
    data = make_sprites()
    y = data.y_test
    limit = stats.chi2.ppf(1 - 1e-4, df=2)
    for rows in (np.arange(1000), subset_rows(len(y), 1000, 0, "test")):
        n, N = len(rows), len(y)
        expected = np.bincount(y, minlength=3) / N * n
        chi2 = ((np.bincount(y[rows], minlength=3) - expected) ** 2 / expected).sum()
        assert chi2 * (N - 1) / (N - n) < limit
