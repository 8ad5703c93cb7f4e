"""Procedural dSprites-style sprites: binary 28x28 images with known generative factors.

Every image shows one shape, drawn from five independent factors, each uniform on a grid:

========  ===========================================  ======
factor    values                                       levels
========  ===========================================  ======
shape     0 square, 1 ellipse, 2 heart                 3
scale     0.5 .. 1.0 (times ``MAX_RADIUS_PX`` pixels)  6
rotation  0 .. 2 pi (radians, counter-clockwise)       40
pos_x     0 .. 1 (left .. right of the free range)     16
pos_y     0 .. 1 (top .. bottom of the free range)     16
========  ===========================================  ======

Rasterisation: each shape is an implicit function ``f(u, v) <= 0`` in a unit frame where the whole
shape lies inside the unit disc. A pixel with centre ``(x, y)`` is ink when its coordinates,
moved to the sprite's centre ``(cx, cy)``, rotated by ``-rotation`` and divided by the radius
``r = scale * MAX_RADIUS_PX``, fall inside the shape::

    dx, dy = x - cx, cy - y                       (dy points up)
    u = ( cos(t) dx + sin(t) dy) / r
    v = (-sin(t) dx + cos(t) dy) / r

The centre moves over ``[r + 1, W - r - 1]``, so the shape never touches the border row or column
(it always stays inside the canvas); the smallest shape still covers several pixels.

Order: every image's five factors are independent draws, and the test split is the images after
the training split, so neither split is ordered by any factor: the first N images are as good a
sample as any N (``tests/data/test_data_order.py``). Commands still take random subsets
(:func:`vae_np.data.subset_rows`) for every data set alike.
"""
from __future__ import annotations

import numpy as np

from .._validate import check_int
from .dataset import Dataset

IMAGE_SIZE = 28
SHAPES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ROTATIONS = np.linspace(0.0, 2.0 * np.pi, 40, endpoint=False)
POSITIONS = np.linspace(0.0, 1.0, 16)
MAX_RADIUS_PX = 6.5
"""Radius in pixels of the disc that holds a sprite of scale 1."""

_CHUNK = 2048  # images rasterised at once: bounds the float32 work arrays to ~6 MB each


def _square(u, v):
    """Inside of a square of half-side 0.7 (corner radius 0.99 < 1)."""
    return np.maximum(np.abs(u), np.abs(v)) <= 0.7


def _ellipse(u, v):
    """Inside of an ellipse with semi-axes 1 (along u) and 0.5 (along v)."""
    return u * u + 4.0 * v * v <= 1.0


def _heart(u, v):
    """Inside of the heart curve ``(p^2 + q^2 - 1)^3 - p^2 q^3 <= 0``, lobes up.

    The curve spans p in [-1.14, 1.14], q in [-1, 1.24]; every point lies within 1.25 of (0, 0.25),
    so ``p = 1.26 u``, ``q = 1.26 v + 0.25`` fits it into the unit disc.
    """
    p = 1.26 * u
    q = 1.26 * v + 0.25
    p2 = p * p
    s = p2 + q * q - 1.0
    return s * s * s - p2 * q * q * q <= 0.0


_SHAPE_FUNCTIONS = (_square, _ellipse, _heart)


def render_sprites(shape, scale, rotation, pos_x, pos_y, size=IMAGE_SIZE) -> np.ndarray:
    """Rasterise sprites from their factors.

    Parameters
    ----------
    shape : (N,) int, index into ``SHAPES``
    scale : (N,) relative size in (0, 1]; the sprite's radius is
        ``scale * MAX_RADIUS_PX * size / 28``
    rotation : (N,) counter-clockwise rotation in radians
    pos_x, pos_y : (N,) position in [0, 1] within the range of centres that keeps the sprite
        inside the canvas
    size : canvas height and width in pixels

    Returns
    -------
    (N, size * size) uint8 flattened images, 0 (background) or 255 (ink)
    """
    shape = np.asarray(shape)
    n = len(shape)
    radius = np.asarray(scale, dtype=np.float64) * (MAX_RADIUS_PX * size / IMAGE_SIZE)
    free = size - 2.0 * (radius + 1.0)      # length of the interval the centre moves over
    cx = radius + 1.0 + np.asarray(pos_x, dtype=np.float64) * free
    cy = radius + 1.0 + np.asarray(pos_y, dtype=np.float64) * free
    cos_r = np.cos(rotation) / radius
    sin_r = np.sin(rotation) / radius
    centres = np.arange(size, dtype=np.float32) + 0.5      # pixel centres
    out = np.zeros((n, size, size), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        sl = slice(start, min(start + _CHUNK, n))
        c, s, x0, y0 = (a[sl, None, None].astype(np.float32) for a in (cos_r, sin_r, cx, cy))
        dx = centres[None, None, :] - x0    # (n, 1, size): varies along columns
        dy = y0 - centres[None, :, None]    # (n, size, 1): varies along rows, points up
        u = c * dx + s * dy                 # (n, size, size)
        v = c * dy - s * dx
        kind = shape[sl]
        chunk = out[sl]
        for k, inside in enumerate(_SHAPE_FUNCTIONS):
            pick = kind == k
            if pick.any():
                chunk[pick] = inside(u[pick], v[pick]).view(np.uint8) * np.uint8(255)
    return out.reshape(n, size * size)


def make_sprites(n_train=20000, n_test=2000, seed=0) -> Dataset:
    """Generate the sprites data set (binary 28x28, five ground-truth factors).

    Parameters
    ----------
    n_train, n_test : ints >= 1, the numbers of training and test images
    seed : int >= 0, seed of ``np.random.default_rng``; the same seed gives identical arrays

    Returns
    -------
    Dataset: ``x_train`` (n_train, 784) and ``x_test`` (n_test, 784) uint8 in {0, 255}; ``y_*``
    the shape index (int64); ``factors_*`` a dict of ``shape`` (int64), ``scale``, ``rotation``
    (radians), ``pos_x``, ``pos_y`` (float64), each of shape (n,); ``image_shape`` (28, 28)

    Raises ValueError naming the argument if ``n_train``, ``n_test`` or ``seed`` is out of range.
    """
    n_train, n_test = check_int("n_train", n_train), check_int("n_test", n_test)
    rng = np.random.default_rng(check_int("seed", seed, 0))
    n = n_train + n_test
    factors = {"shape": rng.integers(len(SHAPES), size=n).astype(np.int64),
               "scale": rng.choice(SCALES, size=n), "rotation": rng.choice(ROTATIONS, size=n),
               "pos_x": rng.choice(POSITIONS, size=n), "pos_y": rng.choice(POSITIONS, size=n)}
    x = render_sprites(**factors)
    train = {k: v[:n_train] for k, v in factors.items()}
    test = {k: v[n_train:] for k, v in factors.items()}
    return Dataset("sprites", x[:n_train], x[n_train:], train["shape"], test["shape"],
                   (IMAGE_SIZE, IMAGE_SIZE), factors_train=train, factors_test=test)
