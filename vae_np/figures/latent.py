"""Figures of the latent space: the decoded grid (z_dim = 2), the latent means coloured by label or
by every ground-truth factor, and latent traversals for any z_dim. Re-exported by
``vae_np.figures.runs``; matplotlib is imported lazily, as there.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .._validate import check_array, check_int, check_positive
from .canvas import _figure, _save, fit_titles, tile

FACTOR_ORDER = ("pos_x", "pos_y", "scale", "rotation", "shape")
"""Panel order of :func:`latent_means_by_factor` (further factors follow in their own order)."""

FACTOR_UNITS = {"pos_x": "pos_x (0 left .. 1 right)", "pos_y": "pos_y (0 top .. 1 bottom)",
                "scale": "scale (x 6.5 px radius)", "rotation": "rotation (radians)"}


def _centres(count, size, pad):
    """Pixel coordinate of the centre of each of ``count`` cells of ``size`` pixels on a grid."""
    return np.arange(count) * (size + pad) + (size - 1) / 2


def _image_axes(ax, grid):
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def latent_grid(path, model, image_shape, n=20, title="") -> Path:
    """Decoder means on an n x n grid of z (z_dim = 2) at the N(0, 1) quantiles 0.05..0.95, the
    manifold figure of Kingma & Welling (2013, Fig. 4), with the z values on both axes."""
    from scipy.special import ndtri

    if model.z_dim != 2:
        raise ValueError(f"the latent grid needs z_dim = 2, got {model.z_dim}")
    n = check_int("n", n, minimum=2)
    h, w = image_shape
    values = ndtri(np.linspace(0.05, 0.95, n))
    z1, z2 = np.meshgrid(values, values[::-1])          # z2 grows upwards
    images = model.decode(np.stack([z1.ravel(), z2.ravel()], axis=1))
    grid = tile(images, image_shape, ncols=n)
    fig = _figure(7.2, 7.2)
    ax = fig.add_subplot(1, 1, 1)
    _image_axes(ax, grid)
    every = max(1, n // 10)                             # at most about 10 labels per axis
    ax.set_xticks(_centres(n, w, 1)[::every], [f"{v:.2f}" for v in values[::every]], fontsize=8,
                  rotation=90)
    ax.set_yticks(_centres(n, h, 1)[::every], [f"{v:.2f}" for v in values[::-1][::every]],
                  fontsize=8)
    ax.set(xlabel="z_1 (N(0, 1) quantiles 0.05 .. 0.95)", ylabel="z_2",
           title=title or "decoder mean on a grid of z")
    fig.tight_layout()
    fit_titles(fig, ax.title)
    return _save(fig, path)


def two_units(mu):
    """The two latent units to plot: (0, 1) for z_dim = 2, else the two of largest variance of mu
    over the rows (the most active units), in increasing index order."""
    mu = check_array("mu", mu, ndim=2)
    if mu.shape[1] < 2:
        raise ValueError(f"mu must have at least 2 columns (latent units), got {mu.shape[1]}")
    if mu.shape[1] == 2:
        return 0, 1
    a, b = sorted(int(i) for i in np.argsort(mu.var(axis=0))[::-1][:2])
    return a, b


def _scatter_axes(ax, mu, units):
    a, b = units
    ax.set(xlabel=f"mu_{a + 1}(x)", ylabel=f"mu_{b + 1}(x)")
    ax.grid(alpha=0.3)
    return mu[:, a], mu[:, b]


def _categorical(ax, u, v, labels, names, size):
    """One scatter in data order (no class painted over the others), legend by proxy markers."""
    from matplotlib.lines import Line2D

    classes, index = np.unique(labels, return_inverse=True)
    colors = _colormap(len(classes))
    ax.scatter(u, v, s=size, alpha=0.6, c=colors[index], linewidths=0)
    handles = [Line2D([], [], ls="", marker="o", color=colors[i],
                      label=names[int(c)] if names is not None else str(c))
               for i, c in enumerate(classes)]
    ax.legend(handles=handles, fontsize=8, loc="best")


def latent_means(path, mu, labels=None, label_names=None, title="") -> Path:
    """Scatter of the test-set latent means, coloured by label if given. For z_dim > 2 the two
    units of largest variance are shown (their indices label the axes)."""
    mu = check_array("mu", mu, ndim=2)
    units = two_units(mu)
    fig = _figure(6.5, 5.5)
    ax = fig.add_subplot(1, 1, 1)
    u, v = _scatter_axes(ax, mu, units)
    if labels is None:
        ax.scatter(u, v, s=3, alpha=0.6)
    else:
        _categorical(ax, u, v, np.asarray(labels), label_names, 3)
    ax.set_title(title or "test-set latent means E_q[z|x]", fontsize=10)
    fig.tight_layout()
    fit_titles(fig, ax.title)
    return _save(fig, path)


def _colormap(n):
    from matplotlib import colormaps

    return colormaps["tab10" if n <= 10 else "tab20"](np.arange(n) % 20)


def _is_categorical(values):
    return np.issubdtype(values.dtype, np.integer) and len(np.unique(values)) <= 20


def factor_r2(mu, values, name=""):
    """R^2 of the least-squares linear read-out of a factor from the latent means (with intercept):
    1 - sum of squared residuals / total sum of squares, over the columns of the target. The target
    is one-hot for an integer factor with at most 20 levels, (cos, sin) for ``rotation`` (an angle),
    else the values themselves. 1 means the factor is a linear function of mu, 0 that mu says
    nothing linear about it."""
    mu = check_array("mu", mu, ndim=2)
    values = np.asarray(values)
    if values.shape != (mu.shape[0],):
        raise ValueError(f"values of factor {name!r} must have shape ({mu.shape[0]},), "
                         f"got {values.shape}")
    if _is_categorical(values):
        target = (values[:, None] == np.unique(values)[None, :]).astype(float)
    elif name == "rotation":
        target = np.stack([np.cos(values), np.sin(values)], axis=1)
    else:
        target = values.astype(float)[:, None]
    design = np.hstack([mu.astype(float), np.ones((mu.shape[0], 1))])
    coef = np.linalg.lstsq(design, target, rcond=None)[0]
    total = np.sum((target - target.mean(axis=0)) ** 2)
    if total == 0:
        return 0.0
    return float(1 - np.sum((target - design @ coef) ** 2) / total)


def latent_means_by_factor(path, mu, factors, title="", names=None) -> Path:
    """The latent means once per ground-truth factor, each panel coloured by that factor (position,
    scale and rotation on colour scales, a categorical factor such as shape by class), and a last
    panel with the R^2 of a linear read-out of each factor from mu (:func:`factor_r2`): which
    factors the latent space encodes, and which it ignores.

    Parameters
    ----------
    mu : (N, z_dim >= 2) latent means
    factors : dict name -> (N,) values (``Dataset.factors_test``)
    names : class names of a categorical factor (default: the sprite shapes for ``shape``)
    """
    mu = check_array("mu", mu, ndim=2)
    if not isinstance(factors, dict) or not factors:
        raise ValueError(f"factors must be a non-empty dict of name -> (N,) array, got {factors!r}")
    keys = [k for k in FACTOR_ORDER if k in factors] + [k for k in factors if k not in FACTOR_ORDER]
    r2 = {k: factor_r2(mu, factors[k], k) for k in keys}
    units = two_units(mu)
    ncols = 3
    nrows = -(-(len(keys) + 1) // ncols)
    fig = _figure(4.2 * ncols, 3.6 * nrows)
    for i, key in enumerate(keys):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        u, v = _scatter_axes(ax, mu, units)
        values = np.asarray(factors[key])
        if _is_categorical(values):
            if names is None and key == "shape":
                from ..data import SHAPES as labels
            else:
                labels = names
            _categorical(ax, u, v, values, labels, 4)
        else:
            cmap = "twilight" if key == "rotation" else "viridis"
            points = ax.scatter(u, v, s=4, c=values, cmap=cmap, alpha=0.8, linewidths=0)
            bar = fig.colorbar(points, ax=ax, fraction=0.05, pad=0.02)
            bar.set_label(FACTOR_UNITS.get(key, key), fontsize=8)
        ax.set_title(f"coloured by {key} (linear R^2 = {r2[key]:.2f})", fontsize=9)
    ax = fig.add_subplot(nrows, ncols, len(keys) + 1)
    ax.barh(range(len(keys)), [r2[k] for k in keys], color="0.4")
    ax.set_yticks(range(len(keys)), keys)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="R^2 of a linear read-out from mu",
           title="what the latent means encode")
    ax.grid(alpha=0.3, axis="x")
    suptitle = fig.suptitle(title or "latent means coloured by each ground-truth factor",
                            fontsize=11)
    fig.tight_layout()
    fit_titles(fig, suptitle, *(a.title for a in fig.axes))
    return _save(fig, path)


def traversal_codes(mu, values):
    """The latent codes of a traversal: row block j sweeps unit j over ``values`` with every other
    unit at ``mu``. Returns (z_dim * len(values), z_dim)."""
    mu = np.asarray(mu, dtype=float).ravel()
    values = np.asarray(values, dtype=float).ravel()
    z = np.tile(mu, (mu.size * values.size, 1))
    for j in range(mu.size):
        z[j * values.size:(j + 1) * values.size, j] = values
    return z


def latent_traversals(path, model, x, image_shape, n_steps=9, span=3.0, title="") -> Path:
    """Latent traversals for any z_dim: row j decodes z with unit j swept over -span..span and every
    other unit at the posterior mean mu(x) of the example ``x``. The row label gives mu_j and
    sigma_j of q(z|x) (sigma_j near 1 with mu_j near 0: the unit is unused, its row does not
    change), the red mark the position of mu_j on the sweep, and the columns the swept values.

    Parameters
    ----------
    model : VAE
    x : (x_dim,) one example (uint8 grey levels or floats in the model's range)
    n_steps : values per row (>= 2)
    span : the sweep covers [-span, span]
    """
    n_steps = check_int("n_steps", n_steps, minimum=2)
    span = check_positive("span", span)
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"x must be one example of shape (x_dim,), got shape {x.shape}")
    mu, sigma = (a[0] for a in model.encode(x[None]))
    values = np.linspace(-span, span, n_steps)
    images = model.decode(traversal_codes(mu, values))
    h, w = image_shape
    grid = tile(images, image_shape, ncols=n_steps)
    z_dim = model.z_dim
    inches = min(0.75, 30 / z_dim) / (h + 1)              # per grid pixel: rows of at most 0.75"
    grid_w, grid_h = grid.shape[1] * inches, (grid.shape[0] + 3) * inches
    left, bottom, top, right = 2.4, 0.75, 0.45, 0.2        # margins in inches, for the labels
    width, height = left + grid_w + right, bottom + grid_h + top
    fig = _figure(width, height)
    ax = fig.add_axes((left / width, bottom / height, grid_w / width, grid_h / height))
    _image_axes(ax, grid)
    ax.set_xticks(_centres(n_steps, w, 1), [f"{v:.2g}" for v in values], fontsize=8)
    rows = _centres(z_dim, h, 1)
    ax.set_yticks(rows, [f"z_{j + 1}  mu={mu[j]:.2f} sigma={sigma[j]:.2f}" for j in range(z_dim)],
                  fontsize=8)
    step = (w + 1) * (n_steps - 1) / (2 * span)          # pixels per unit of z along a row
    marks = (w - 1) / 2 + (np.clip(mu, -span, span) + span) * step
    ax.plot(marks, rows - h / 2 - 0.5, ls="", marker="v", color="red", markersize=4)
    ax.set_ylim(grid.shape[0] - 0.5, -3)
    ax.set(xlabel="value of the swept unit (red mark: its posterior mean)")
    ax.set_title(title or "latent traversals around mu(x)", fontsize=10)
    fit_titles(fig, ax.title, layout=False)         # the margins are fixed: wrap, keep them
    return _save(fig, path)
