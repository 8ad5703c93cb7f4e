"""The drawing surface every figure shares: matplotlib without pyplot, and images on a grid.

matplotlib (the ``plot`` extra) is imported lazily, inside ``_figure``, and through its
object-oriented API with the Agg canvas (no pyplot, no global backend switch), so importing any
figure module never needs it. Without it ``_figure`` raises :class:`PlotUnavailable`, whose
message says what to install.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .._validate import check_array, check_int

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


def fit_titles(fig, *texts, layout=True):
    """Wrap each title (a matplotlib ``Text``: ``ax.title``, a suptitle) onto more lines until it
    lies within the figure's width; with ``layout``, make the figure taller by the added lines
    and lay it out again (``tight_layout``), so that they do not squeeze the plot. A centred
    title may be twice as wide as its centre's distance to the nearer edge of the figure.

    ``tight_layout`` places the axes from the layout it finds, so after a title has grown by
    several lines one call can leave its top above the figure (an image grid's 5-line title, by
    3 pixels); it is called again, up to 4 times, until every title lies within the height."""
    import textwrap

    for _ in range(4):
        renderer, taller = fig.canvas.get_renderer(), None
        for text in texts:
            box = text.get_window_extent(renderer)
            if not text.get_text() or (fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1):
                continue
            centre = (box.x0 + box.x1) / 2
            room = 0.96 * 2 * min(centre - fig.bbox.x0, fig.bbox.x1 - centre)
            lines = text.get_text().split("\n")
            chars = max(8, int(max(map(len, lines)) * room / box.width))
            text.set_text("\n".join(textwrap.fill(line, chars) for line in lines))
            taller = (taller or 0) + text.get_window_extent(renderer).height - box.height
        if taller is None:
            break
        if layout:
            fig.set_figheight(fig.get_figheight() + taller / fig.dpi)
            fig.tight_layout()
    for _ in range(4 if layout else 0):
        renderer = fig.canvas.get_renderer()
        boxes = [text.get_window_extent(renderer) for text in texts if text.get_text()]
        if all(fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1 for box in boxes):
            return
        fig.tight_layout()


def tile(images, image_shape, ncols=None, pad=1, pad_value=0.5):
    """Arrange flattened images on a grid (pure NumPy).

    Parameters
    ----------
    images : (N, H*W) values in [0, 1] (clipped)
    image_shape : (H, W)
    ncols : images per row (default ceil(sqrt(N)))
    pad : pixels between images

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
