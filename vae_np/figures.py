"""PNG figures of a run: reconstructions, prior samples, loss curves, and for z_dim = 2 the latent
manifold and the test-set latent means.

matplotlib (the ``plot`` extra) is imported lazily, inside the functions that draw, and through its
object-oriented API with the Agg canvas (no pyplot, no global backend switch), so importing this
module never needs it. Without it every drawing function raises :class:`PlotUnavailable`, whose
message says what to install.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ._validate import check_array, check_int

HINT = "install the plot extra: pip install 'vae_np[plot]'"


class PlotUnavailable(ImportError):
    """matplotlib is not installed."""


def _figure(width, height):
    """A matplotlib Figure on an Agg canvas."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise PlotUnavailable(f"figures need matplotlib: {HINT}") from exc
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def tile(images, image_shape, ncols=None, pad=1, pad_value=0.5):
    """Arrange flattened images on a grid (pure NumPy).

    Parameters
    ----------
    images : (N, H*W) values in [0, 1] (clipped);  image_shape : (H, W)
    ncols : images per row (default ceil(sqrt(N)));  pad : pixels between images

    Returns
    -------
    (rows*(H+pad)-pad, ncols*(W+pad)-pad) float64 array; unused cells are ``pad_value``
    """
    images = check_array("images", images, ndim=2)
    h, w = (check_int("image_shape", s) for s in image_shape)
    if images.shape[1] != h * w:
        raise ValueError(f"images must have {h * w} columns for image_shape {image_shape}, "
                         f"got {images.shape[1]}")
    n = images.shape[0]
    ncols = check_int("ncols", ncols) if ncols is not None else int(np.ceil(np.sqrt(n)))
    nrows = -(-n // ncols)
    grid = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad), pad_value, dtype=float)
    for i, img in enumerate(np.clip(images.astype(np.float64), 0, 1)):
        r, c = divmod(i, ncols)
        grid[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = img.reshape(h, w)
    return grid


def _show(ax, grid, title):
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()


def image_grid(path, images, image_shape, title="", ncols=None) -> Path:
    """Save one grid of images (e.g. samples from the prior) as a PNG."""
    grid = tile(images, image_shape, ncols)
    scale = max(6 / max(grid.shape), 0.015)       # inches per image pixel (>= 1.5 px at 100 dpi)
    fig = _figure(grid.shape[1] * scale + 0.4, grid.shape[0] * scale + 0.6)
    _show(fig.add_subplot(1, 1, 1), grid, title)
    fig.tight_layout()
    return _save(fig, path)


def reconstructions(path, x, x_rec, image_shape, title="inputs | reconstructions",
                    ncols=8) -> Path:
    """Inputs and their reconstructions side by side: two grids with the same layout."""
    left, right = tile(x, image_shape, ncols), tile(x_rec, image_shape, ncols)
    scale = max(4 / max(left.shape), 0.015)
    fig = _figure(2 * left.shape[1] * scale + 0.6, left.shape[0] * scale + 0.8)
    _show(fig.add_subplot(1, 2, 1), left, "inputs")
    _show(fig.add_subplot(1, 2, 2), right, "reconstructions")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def loss_curves(path, history, title="") -> Path:
    """Train and test negative ELBO per epoch (left); train reconstruction and KL (right)."""
    epochs = np.asarray(history["epoch"])
    marker = "." if len(epochs) <= 30 else None
    fig = _figure(10, 4)
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(epochs, history["train_loss"], marker=marker, label="train")
    ax.plot(epochs, history["test_loss"], marker=marker, label="test")
    ax.set(xlabel="epoch", ylabel="-ELBO (nats per example)", title=title or "negative ELBO")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend()
    ax = fig.add_subplot(1, 2, 2)
    ax.plot(epochs, history["train_recon"], marker=marker, label="reconstruction -E[ln p(x|z)]")
    ax.plot(epochs, history["train_kl"], marker=marker, label="KL(q(z|x) || p(z))")
    ax.set(xlabel="epoch", ylabel="nats per example", title="train terms")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def latent_grid(path, model, image_shape, n=20, title="") -> Path:
    """Decoder means on an n x n grid of z (z_dim = 2) at the N(0, 1) quantiles 0.05..0.95, the
    manifold figure of Kingma & Welling (2013, Fig. 4)."""
    from scipy.special import ndtri

    if model.z_dim != 2:
        raise ValueError(f"the latent grid needs z_dim = 2, got {model.z_dim}")
    n = check_int("n", n)
    values = ndtri(np.linspace(0.05, 0.95, n))
    z1, z2 = np.meshgrid(values, values[::-1])          # z2 grows upwards
    images = model.decode(np.stack([z1.ravel(), z2.ravel()], axis=1))
    return image_grid(path, images, image_shape, title or "decoder mean on a grid of z", ncols=n)


def latent_means(path, mu, labels=None, label_names=None, title="") -> Path:
    """Scatter of the 2-D latent means of the test set, coloured by label if given."""
    mu = check_array("mu", mu, ndim=2)
    fig = _figure(6.5, 5.5)
    ax = fig.add_subplot(1, 1, 1)
    if labels is None:
        ax.scatter(mu[:, 0], mu[:, 1], s=3, alpha=0.6)
    else:
        labels = np.asarray(labels)
        classes = np.unique(labels)
        colors = _colormap(len(classes))
        for color, c in zip(colors, classes):
            pick = labels == c
            name = label_names[int(c)] if label_names is not None else str(c)
            ax.scatter(mu[pick, 0], mu[pick, 1], s=3, alpha=0.6, color=color, label=name)
        ax.legend(markerscale=4, fontsize=8, loc="best")
    ax.set(xlabel="mu_1(x)", ylabel="mu_2(x)", title=title or "test-set latent means E_q[z|x]")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _colormap(n):
    from matplotlib import colormaps

    return colormaps["tab10" if n <= 10 else "tab20"](np.arange(n) % 20)


def run_figures(out_dir, model, dataset, x_test, history, rng, n_samples=64, n_inputs=32):
    """The figures of a training run, written into ``out_dir``.

    reconstructions.png (the first test images beside their reconstructions), samples.png (decoder
    means at z ~ N(0, I)), loss.png (per-epoch history) and, when z_dim = 2, latent_grid.png and
    latent_means.png (test-set means coloured by label; sprites by shape).

    Parameters
    ----------
    out_dir : directory;  model : VAE;  dataset : vae_np.data.Dataset
    x_test : (M, D) uint8 test images as evaluated (binarized for dynamically binarized data)
    history : dict of per-epoch lists (runs.HISTORY_COLUMNS);  rng : Generator for the samples

    Returns
    -------
    list of Path written
    """
    out_dir, shape = Path(out_dir), dataset.image_shape
    title = f"{dataset.name}, epoch {history['epoch'][-1]}"
    x = x_test[:n_inputs]
    written = [reconstructions(out_dir / "reconstructions.png", x / 255.0, model.reconstruct(x),
                               shape, title=title),
               image_grid(out_dir / "samples.png", model.sample(n_samples, rng=rng), shape,
                          title=f"samples from the prior ({title})", ncols=8),
               loss_curves(out_dir / "loss.png", history, title=f"-ELBO ({dataset.name})")]
    if model.z_dim == 2:
        labels = dataset.y_test[:len(x_test)] if dataset.y_test is not None else None
        names = None
        if dataset.name == "sprites":
            from .data import SHAPES as names
        written += [latent_grid(out_dir / "latent_grid.png", model, shape, title=title),
                    latent_means(out_dir / "latent_means.png", model.encode(x_test)[0], labels,
                                 names, title=f"test-set latent means ({title})")]
    return written
