"""Procedural sprites: determinism, dtype/value conventions, factors, geometry of the rendering."""
import numpy as np
import pytest

from vae_np.data import SHAPES, make_sprites, render_sprites
from vae_np.data.sprites import POSITIONS, ROTATIONS, SCALES

N_TRAIN, N_TEST = 600, 200  # small: these tests check properties, not the default size


@pytest.fixture(scope="module")
def sprites():
    return make_sprites(N_TRAIN, N_TEST, seed=0)


def test_shapes_dtype_and_values(sprites):
    assert sprites.name == "sprites"
    assert sprites.image_shape == (28, 28)
    assert sprites.x_train.shape == (N_TRAIN, 784) and sprites.x_test.shape == (N_TEST, 784)
    for x in (sprites.x_train, sprites.x_test):
        assert x.dtype == np.uint8
        assert set(np.unique(x)) == {0, 255}
    assert not sprites.dynamic_binarization


def test_default_size():
    ds = make_sprites()
    assert ds.x_train.shape == (20000, 784) and ds.x_test.shape == (2000, 784)


def test_same_seed_same_arrays_different_seed_different():
    a, b = make_sprites(50, 10, seed=7), make_sprites(50, 10, seed=7)
    c = make_sprites(50, 10, seed=8)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    for key in a.factors_train:
        np.testing.assert_array_equal(a.factors_train[key], b.factors_train[key])
    assert not np.array_equal(a.x_train, c.x_train)


def test_every_image_has_ink_and_clears_the_border(sprites):
    for x in (sprites.x_train, sprites.x_test):
        images = x.reshape(-1, 28, 28)
        assert (images > 0).sum(axis=(1, 2)).min() >= 10
        border = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], 1)
        assert not border.any()


def test_factors_lie_on_their_grids_and_labels_are_shapes(sprites):
    grids = {"scale": SCALES, "rotation": ROTATIONS, "pos_x": POSITIONS, "pos_y": POSITIONS}
    for factors, y, n in ((sprites.factors_train, sprites.y_train, N_TRAIN),
                          (sprites.factors_test, sprites.y_test, N_TEST)):
        assert set(factors) == {"shape", "scale", "rotation", "pos_x", "pos_y"}
        assert all(v.shape == (n,) for v in factors.values())
        assert set(np.unique(factors["shape"])) <= set(range(len(SHAPES)))
        for key, grid in grids.items():
            assert np.isin(factors[key], grid).all(), key
        np.testing.assert_array_equal(y, factors["shape"])
    assert set(np.unique(sprites.factors_train["shape"])) == {0, 1, 2}


def test_extreme_factors_stay_inside_the_canvas():
    """Every shape at the smallest and largest scale, in every corner, at many rotations."""
    grid = np.array(np.meshgrid(range(len(SHAPES)), SCALES[[0, -1]], ROTATIONS[::3], [0.0, 1.0],
                                [0.0, 1.0], indexing="ij")).reshape(5, -1)
    images = render_sprites(grid[0].astype(int), *grid[1:]).reshape(-1, 28, 28)
    assert (images > 0).sum(axis=(1, 2)).min() >= 10
    border = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], 1)
    assert not border.any()


@pytest.mark.parametrize("shape", range(len(SHAPES)))
def test_rotation_by_quarter_turn_rotates_the_image(shape):
    """A centred sprite turned by +90 degrees is the image turned by np.rot90 (counter-clockwise).

    Centre (14, 14) is a pixel corner, so a quarter turn maps pixel centres onto pixel centres;
    a tolerance of 2 pixels (of 784) absorbs float32 rounding on the outline.
    """
    n = len(ROTATIONS)
    k = np.arange(n)
    rot = render_sprites(np.full(n, shape), np.ones(n), ROTATIONS, np.full(n, 0.5), np.full(n, 0.5))
    quarter = render_sprites(np.full(n, shape), np.ones(n), ROTATIONS + np.pi / 2,
                             np.full(n, 0.5), np.full(n, 0.5))
    expected = np.rot90(rot.reshape(n, 28, 28), axes=(1, 2))
    mismatches = (quarter.reshape(n, 28, 28) != expected).sum(axis=(1, 2))
    assert mismatches.max() <= 2, dict(zip(k[mismatches > 2], mismatches[mismatches > 2]))


def test_shapes_differ_and_scale_grows_the_ink():
    ones = np.ones(3)
    images = render_sprites(np.arange(3), ones, 0 * ones, 0.5 * ones, 0.5 * ones)
    assert len({im.tobytes() for im in images}) == 3
    small = render_sprites(np.arange(3), 0.5 * ones, 0 * ones, 0.5 * ones, 0.5 * ones)
    assert ((small > 0).sum(1) < (images > 0).sum(1)).all()


def test_heart_points_up():
    """Upright heart (rotation 0): the two lobes are at the top, the tip at the bottom."""
    image = render_sprites(np.array([2]), np.ones(1), np.zeros(1), [0.5], [0.5]).reshape(28, 28)
    rows = np.flatnonzero(image.any(axis=1))
    top, bottom = image[rows[0]] > 0, image[rows[-1]] > 0
    assert top.sum() > bottom.sum()
    assert np.abs(np.diff(top.astype(int))).sum() == 4  # two separate lobes: two ink runs


@pytest.mark.parametrize("kwargs", [{"n_train": 0}, {"n_test": -1}, {"n_train": 2.5},
                                    {"n_train": True}, {"n_test": "10"}])
def test_bad_sizes_raise(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make_sprites(**kwargs)
