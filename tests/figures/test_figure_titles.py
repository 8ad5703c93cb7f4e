"""Figure titles say what is drawn and lie inside their figure.

Read back from the matplotlib Figure each command saves (``Figure.savefig`` is wrapped to keep
it): the titles' text, and their bounding boxes once drawn. Found before: latent_means.png's title
ran past the right edge of its figure (to pixel 671 of 650: "...colours them by every fact"), and
a VQ-VAE's reconstructions from ``reconstruct`` said "reconstruction at z = mu(x)", a VAE's words
(a VQ-VAE decodes z_q(x), the codebook vectors nearest to the encoder's outputs).
"""
from pathlib import Path

import numpy as np
import pytest

from vae_np import VAE, cli
from vae_np.figures import runs as figures


def _titles(fig):
    """Every title of ``fig``: figure-level texts (the suptitle) and each axes' titles."""
    texts = list(fig.texts)
    for ax in fig.axes:
        texts += [t for t in (ax.title, ax._left_title, ax._right_title) if t.get_text()]
    return texts


def _outside(fig):
    """The titles whose drawn bounding box leaves the figure (half a pixel of slack for the
    rounding of the box's corners), with their boxes."""
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    out = []
    for text in _titles(fig):
        box = text.get_window_extent(renderer)
        if box.x0 < -0.5 or box.y0 < -0.5 or box.x1 > fig.bbox.x1 + 0.5 \
                or box.y1 > fig.bbox.y1 + 0.5:
            out.append((text.get_text(), [round(v) for v in box.extents],
                        [round(fig.bbox.x1), round(fig.bbox.y1)]))
    return out


def _words(fig):
    return " ".join(" ".join(t.get_text().split()) for t in _titles(fig))


def _keep_figures(monkeypatch):
    from matplotlib.figure import Figure

    kept, savefig = {}, Figure.savefig

    def keep(self, path, *args, **kwargs):
        kept[Path(path).as_posix()] = self
        return savefig(self, path, *args, **kwargs)
    monkeypatch.setattr(Figure, "savefig", keep)
    return kept


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """{relative path: Figure} of a VAE run (sprites, z_dim 8: latent_means.png and
    latent_factors.png), a VQ-VAE run with its prior, and sample / reconstruct of both."""
    pytest.importorskip("matplotlib", reason="the plot extra: pip install -e '.[test,plot]'")
    base = tmp_path_factory.mktemp("titles")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)
        kept = _keep_figures(mp)
        for argv in (["train", "--epochs", "1", "--limit", "200", "--out", "vae", "-q"],
                     ["train", "--model", "vqvae", "--epochs", "1", "--limit", "200", "--out",
                      "vq", "-q"],
                     ["fit-prior", "vq", "--epochs", "1", "-q"],
                     ["reconstruct", "vae", "--out", "vae_reconstruct.png"],
                     ["reconstruct", "vq", "--out", "vq_reconstruct.png"],
                     ["sample", "vae", "--out", "vae_sample.png"],
                     ["sample", "vq", "--out", "vq_sample.png"]):
            assert cli.main(argv) == 0, argv
    return kept


def test_every_title_of_a_run_lies_inside_its_figure(drawn):
    assert len(drawn) >= 14
    outside = {name: _outside(fig) for name, fig in drawn.items()}
    assert not any(outside.values()), {k: v for k, v in outside.items() if v}


def test_the_latent_means_title_is_whole(drawn):
    fig = drawn["vae/figures/latent_means.png"]
    assert not _outside(fig)
    assert _words(fig) == ("test-set latent means (sprites, epoch 1) latent_factors.png colours "
                           "them by every factor")


def test_a_vq_vae_reconstruction_names_its_codes_not_mu(drawn):
    for name in ("vq/figures/reconstructions.png", "vq_reconstruct.png"):
        words = _words(drawn[name])
        assert "z_q" in words and "mu(x)" not in words, (name, words)
    assert "reconstruction at z_q(x), the nearest codes" in _words(drawn["vq_reconstruct.png"])
    for name in ("vae/figures/reconstructions.png", "vae_reconstruct.png"):
        assert "reconstruction at z = mu(x)" in _words(drawn[name])


LONG = ("a title far longer than any figure is wide, as a long data set name or a note may make "
        "it, which was cut at both edges of the figure and must now be wrapped onto more lines "
        "without losing a word")


def test_a_long_title_is_wrapped_not_cut(tmp_path, monkeypatch):
    """Each drawing function given a title of 195 characters: every word is drawn, inside."""
    pytest.importorskip("matplotlib", reason="the plot extra: pip install -e '.[test,plot]'")
    kept = _keep_figures(monkeypatch)
    rng = np.random.default_rng(0)
    x = rng.random((6, 12))
    model = VAE(12, (5,), 2, seed=0)
    figures.image_grid(tmp_path / "grid.png", x, (3, 4), title=LONG)
    figures.reconstructions(tmp_path / "pairs.png", x, x[::-1], (3, 4), title=LONG,
                            subtitle=LONG)
    figures.latent_means(tmp_path / "means.png", rng.standard_normal((30, 3)),
                         rng.integers(0, 3, 30), title=LONG)
    figures.latent_grid(tmp_path / "manifold.png", model, (3, 4), n=4, title=LONG)
    figures.latent_traversals(tmp_path / "traversals.png", model, x[0], (3, 4), title=LONG)
    figures.latent_means_by_factor(tmp_path / "factors.png", rng.standard_normal((30, 2)),
                                   {"pos_x": rng.random(30)}, title=LONG)
    assert len(kept) == 6
    for name, fig in kept.items():
        assert not _outside(fig), (name, _outside(fig))
        assert LONG in _words(fig), name
