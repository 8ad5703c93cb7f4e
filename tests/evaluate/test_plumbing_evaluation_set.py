"""The test images of a dynamically binarized data set, as ``evaluate`` and ``train`` measure them
(``vae_np.evaluate.evaluation_set``): one Bernoulli draw per pixel, x = 1 with probability g/255,
made once with a fixed seed so that every evaluation of every run sees the same binary images.

Thresholding at g = 127.5 instead of sampling gives binary images too, and numbers that look
plausible; only the frequencies per grey level tell the two apart.
"""
import numpy as np

from vae_np.data import Dataset
from vae_np.evaluate import evaluation_set

BINS = np.arange(0, 257, 32)            # grey levels 0-31, 32-63, ..., 224-255


def assert_bernoulli(x, grey):
    """x (binary uint8 0/255) is a Bernoulli(grey / 255) draw: exact at 0 and 255, and in every
    band of 32 grey levels the fraction of ones is the band's mean g/255 within 5 binomial
    standard deviations (the count of ones over m independent pixels has variance
    sum p (1 - p)); thresholding misses the bands 96-127 and 128-159 by dozens of them."""
    assert x.dtype == np.uint8 and set(np.unique(x)) <= {0, 255}
    ones, p = (x == 255).ravel(), grey.ravel() / 255
    assert not ones[p == 0].any() and ones[p == 1].all()
    for low, high in zip(BINS[:-1], BINS[1:]):
        band = (grey.ravel() >= low) & (grey.ravel() < high) & (p > 0) & (p < 1)
        excess = ones[band].sum() - p[band].sum()
        assert abs(excess) < 5 * np.sqrt(np.sum(p[band] * (1 - p[band]))), (low, excess)


def toy(n=400, seed=0):
    """A dynamically binarized data set whose test rows hold every grey level 0..255 once, in a
    shuffled order per row."""
    rng = np.random.default_rng(seed)
    x = np.stack([rng.permutation(256) for _ in range(n)]).astype(np.uint8)
    return Dataset(name="toy", x_train=x[:10], x_test=x, y_train=None, y_test=None,
                   image_shape=(16, 16), dynamic_binarization=True)


def test_each_pixel_is_one_with_probability_its_grey_level():
    data = toy()
    x = evaluation_set(data, "test")
    assert x.shape == data.x_test.shape
    assert_bernoulli(x, data.x_test)
    assert len(np.unique(x, axis=0)) == len(x)          # rows are drawn independently


def test_the_draw_is_the_same_at_every_call():
    """Every evaluation sees the same images: a second call, and a second Dataset holding the same
    grey levels (another run's), give the same binary images bit for bit."""
    data = toy()
    first = evaluation_set(data, "test")
    np.testing.assert_array_equal(evaluation_set(data, "test"), first)
    np.testing.assert_array_equal(evaluation_set(toy(), "test"), first)
    assert not np.array_equal(evaluation_set(toy(seed=1), "test"), first)   # not a fixed image


def test_dynamic_mnist_test_images_are_sampled_not_thresholded(shared_data):
    """The 10,000 test images of dynamic-mnist (7.8 million pixels, 1.5 million of them between 0
    and 255) as every run measures them."""
    from vae_np.data.registry import load_dataset

    data = load_dataset("dynamic-mnist", shared_data, download=False, progress=False)
    x = evaluation_set(data, "test")
    assert x.shape == data.x_test.shape
    assert_bernoulli(x, data.x_test)
    np.testing.assert_array_equal(evaluation_set(data, "test"), x)
