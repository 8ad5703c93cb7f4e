"""PNG figures of a run: inputs beside their reconstructions, prior samples, loss curves, latent
traversals, and the latent manifold and latent means (in ``vae_np.figures.latent``, re-exported
here).

matplotlib (the ``plot`` extra) is imported lazily, inside the functions that draw, and through its
object-oriented API with the Agg canvas (no pyplot, no global backend switch), so importing this
module never needs it. Without it every drawing function raises :class:`PlotUnavailable`, whose
message says what to install.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .._validate import check_array, check_int
from ..data.subset import choose_rows
from .canvas import HINT, PlotUnavailable, _figure, _save, _show, fit_titles, tile  # noqa: F401
from .latent import latent_grid, latent_means, latent_means_by_factor, latent_traversals

def image_grid(path, images, image_shape, title="", ncols=None) -> Path:
    """Save one grid of images (e.g. samples from the prior) as a PNG."""
    grid = tile(images, image_shape, ncols)
    scale = max(6 / max(grid.shape), 0.015)       # inches per image pixel (>= 1.5 px at 100 dpi)
    fig = _figure(grid.shape[1] * scale + 0.4, grid.shape[0] * scale + 0.6)
    ax = fig.add_subplot(1, 1, 1)
    _show(ax, grid, title)
    fig.tight_layout()
    fit_titles(fig, ax.title)
    return _save(fig, path)


def tile_pairs(x, x_rec, image_shape, ncols=4, gap=1, pad=4, pad_value=0.5):
    """Each input beside its reconstruction, one (H, 2W + gap) image per pair, tiled (pure NumPy).

    Parameters
    ----------
    x, x_rec : (N, H*W) values in [0, 1]
    image_shape : (H, W)
    ncols : pairs per row
    gap : pixels between an input and its reconstruction
    pad : pixels between pairs (wider than ``gap``, so the pairs read as pairs)

    Returns
    -------
    the grid, as :func:`tile` returns it; pair i holds x[i] on the left and x_rec[i] on the right
    """
    x = check_array("x", x, ndim=2)
    x_rec = check_array("x_rec", x_rec, ndim=2)
    if x.shape != x_rec.shape:
        raise ValueError(f"x_rec must have the shape of x, {x.shape}, got {x_rec.shape}")
    h, w = (check_int("image_shape", s) for s in image_shape)
    if x.shape[1] != h * w:
        raise ValueError(f"x must have {h * w} columns for image_shape {image_shape}, "
                         f"got {x.shape[1]}")
    n = x.shape[0]
    pairs = np.full((n, h, 2 * w + gap), float(pad_value))
    pairs[:, :, :w] = np.clip(x, 0, 1).reshape(n, h, w)
    pairs[:, :, w + gap:] = np.clip(x_rec, 0, 1).reshape(n, h, w)
    return tile(pairs.reshape(n, -1), (h, 2 * w + gap), ncols=min(check_int("ncols", ncols), n),
                pad=pad, pad_value=1.0)


VAE_SUBTITLE = "each pair: input (left), reconstruction at z = mu(x) (right)"
VQ_SUBTITLE = "each pair: input (left), reconstruction at z_q(x), the nearest codes (right)"
"""The subtitles of :func:`reconstructions`: a VAE decodes the posterior mean mu(x), a VQ-VAE its
codes z_q(x), the codebook vectors nearest to the encoder's outputs."""


def reconstructions(path, x, x_rec, image_shape, title="inputs | reconstructions",
                    ncols=8, subtitle=VAE_SUBTITLE) -> Path:
    """Inputs and their reconstructions side by side in pairs: in every pair the input is on the
    left and its reconstruction on the right (a VAE's decoder mean at z = mu(x); pass
    ``subtitle=VQ_SUBTITLE`` for a VQ-VAE's, at z_q(x)); white space separates the pairs.
    ``ncols`` counts pairs per row."""
    grid = tile_pairs(x, x_rec, image_shape, ncols)
    scale = max(7 / max(grid.shape), 0.015)
    fig = _figure(grid.shape[1] * scale + 0.4, grid.shape[0] * scale + 0.9)
    ax = fig.add_subplot(1, 1, 1)
    _show(ax, grid, subtitle)
    suptitle = fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fit_titles(fig, suptitle, ax.title)
    return _save(fig, path)


EPOCH1_NOTE = ("test below train in epoch 1: the train loss is averaged over the epoch while the "
               "model is still learning,\nthe test loss is measured after the epoch's last step")


def epoch1_note(history):
    """EPOCH1_NOTE when the first epoch's test loss is below its train loss, else None."""
    if len(history["epoch"]) and history["test_loss"][0] < history["train_loss"][0]:
        return EPOCH1_NOTE
    return None


def loss_curves(path, history, title="", loss_name="-ELBO") -> Path:
    """The run's objective per epoch, train and test (left), and the two terms of the train -ELBO
    (right). When the test loss of the first epoch is below its train loss, a note under the
    figure says why (the train loss is an average over the epoch's steps, the test loss is taken
    at its end).

    Parameters
    ----------
    path : the PNG to write
    history : dict of per-epoch lists with epoch, train_loss, test_loss, train_recon, train_kl
        (``runs.HISTORY_COLUMNS``; test_recon and test_kl are drawn when present)
    title : the left panel's title (default: ``loss_name`` per epoch)
    loss_name : what train_loss and test_loss are, as ``runs.loss_name`` gives it: "-ELBO", or
        "-L_k" for a run trained on the importance-weighted bound. For a bound other than the
        ELBO the left panel also draws the -ELBO, train_recon + train_kl (and test_recon +
        test_kl), dashed, so that -L_k <= -ELBO shows; the KL is always the ELBO's.
    """
    epochs = np.asarray(history["epoch"])
    marker = "." if len(epochs) <= 30 else None
    note = epoch1_note(history)
    fig = _figure(10, 4.6 if note else 4)
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(epochs, history["train_loss"], marker=marker,
            label=f"train {loss_name} (mean over the epoch)")
    ax.plot(epochs, history["test_loss"], marker=marker,
            label=f"test {loss_name} (after the epoch)")
    if loss_name != "-ELBO":
        ax.plot(epochs, np.add(history["train_recon"], history["train_kl"]), marker=marker,
                color="C0", linestyle="--", label="train -ELBO = recon + KL")
        if "test_recon" in history and "test_kl" in history:
            ax.plot(epochs, np.add(history["test_recon"], history["test_kl"]), marker=marker,
                    color="C1", linestyle="--", label="test -ELBO")
    ax.set(xlabel="epoch", ylabel=f"{loss_name} (nats per example)",
           title=title or f"{loss_name} per epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend()
    ax = fig.add_subplot(1, 2, 2)
    ax.plot(epochs, history["train_recon"], marker=marker, label="reconstruction -E[ln p(x|z)]")
    ax.plot(epochs, history["train_kl"], marker=marker, label="KL(q(z|x) || p(z))")
    ax.set(xlabel="epoch", ylabel="nats per example", title="train terms of the -ELBO")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend()
    if note:
        fig.text(0.5, 0.02, note, ha="center", va="bottom", fontsize=9, style="italic")
        fig.tight_layout(rect=(0, 0.1, 1, 1))
    else:
        fig.tight_layout()
    return _save(fig, path)



def run_figures(out_dir, model, dataset, x_test, history, rng, n_samples=64, n_inputs=32,
                rows=None, loss_name="-ELBO"):
    """The figures of a training run, written into ``out_dir``.

    reconstructions.png (``n_inputs`` test images, a uniform random subset drawn from ``rng``
    after the samples, each beside its reconstruction), samples.png (decoder means at
    z ~ N(0, I)), loss.png (per-epoch history), traversals.png (each latent swept over -3..3 with
    the others at the posterior mean of the first of those test images; any z_dim), and for
    z_dim >= 2 latent_means.png (test-set means coloured by label; for z_dim > 2 the two units of
    largest variance), plus for z_dim = 2 latent_grid.png. For data with ground-truth factors (the
    sprites) latent_factors.png colours the latent means by every factor.

    Parameters
    ----------
    out_dir : directory
    model : VAE
    dataset : vae_np.data.Dataset
    x_test : (M, D) uint8 test images as evaluated (binarized for dynamically binarized data)
    history : dict of per-epoch lists (runs.HISTORY_COLUMNS)
    rng : Generator for the samples and the choice of the inputs
    rows : (M,) the rows of x_test in the data set's test split, to find their labels and
        factors (None: x_test is the whole split, or its first M rows)
    loss_name : the run's objective, ``runs.loss_name(config)`` (see :func:`loss_curves`)

    Returns
    -------
    list of Path written
    """
    out_dir, shape = Path(out_dir), dataset.image_shape
    title = f"{dataset.name}, epoch {history['epoch'][-1]}"
    rows = np.arange(len(x_test)) if rows is None else np.asarray(rows)
    samples = model.sample(n_samples, rng=rng)
    x = x_test[choose_rows(len(x_test), n_inputs, rng)]   # drawn after the samples: unchanged
    written = [reconstructions(out_dir / "reconstructions.png", x / 255.0, model.reconstruct(x),
                               shape, title=title),
               image_grid(out_dir / "samples.png", samples, shape,
                          title=f"samples from the prior ({title})", ncols=8),
               loss_curves(out_dir / "loss.png", history, title=f"{loss_name} ({dataset.name})",
                           loss_name=loss_name),
               latent_traversals(out_dir / "traversals.png", model, x[0], shape,
                                 title=f"latent traversals ({title})")]
    if model.z_dim >= 2:
        mu = model.encode(x_test)[0]
        labels = dataset.y_test[rows] if dataset.y_test is not None else None
        names = None
        if dataset.name == "sprites":
            from ..data import SHAPES as names
        if model.z_dim == 2:
            written.append(latent_grid(out_dir / "latent_grid.png", model, shape, title=title))
        factors = getattr(dataset, "factors_test", None)
        note = "\nlatent_factors.png colours them by every factor" if factors else ""
        written.append(latent_means(out_dir / "latent_means.png", mu, labels, names,
                                    title=f"test-set latent means ({title}){note}"))
        if factors:
            factors = {k: np.asarray(v)[rows] for k, v in factors.items()}
            written.append(latent_means_by_factor(out_dir / "latent_factors.png", mu, factors,
                                                  title=f"latent means by factor ({title})"))
    return written
