"""Figures: the pure-NumPy tiling, every PNG a run writes, the sample / reconstruct commands, and
the lazy matplotlib import. Tests that draw need matplotlib (the ``plot`` extra, installed by
``pip install -e ".[test,plot]"``): without it they fail and say what to install."""
import builtins
import subprocess
import sys

import numpy as np
import pytest

from vae_np import VAE, cli
from vae_np.figures import runs as figures

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def mpl():
    """matplotlib's image reader; fails, naming the extra, without it."""
    try:
        import matplotlib.image
    except ImportError:
        pytest.fail("matplotlib is not installed: pip install -e '.[test,plot]'")
    return matplotlib.image


def read_png(mpl, path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    return mpl.imread(path)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    assert cli.main(["train", "--limit", "150", "--hidden", "16", "--z-dim", "2", "--epochs",
                     "2", "--batch-size", "50", "--out", str(out), "-q"]) == 0
    return out


def test_tile_places_images_on_a_padded_grid():
    images = np.arange(5 * 6, dtype=float).reshape(5, 6) / 29
    grid = figures.tile(images, (2, 3), ncols=2, pad=1, pad_value=-1)
    assert grid.shape == (3 * 3 - 1, 2 * 4 - 1)
    np.testing.assert_array_equal(grid[0:2, 0:3], images[0].reshape(2, 3))
    np.testing.assert_array_equal(grid[0:2, 4:7], images[1].reshape(2, 3))
    np.testing.assert_array_equal(grid[6:8, 0:3], images[4].reshape(2, 3))
    assert (grid[6:8, 4:7] == -1).all() and (grid[2, :] == -1).all()     # empty cell, padding
    clipped = figures.tile(np.array([[-3.0, 0.5, 7.0, 1.0]]), (2, 2))
    np.testing.assert_array_equal(clipped, [[0, 0.5], [1, 1]])
    assert figures.tile(np.zeros((10, 4)), (2, 2)).shape == (3 * 3 - 1, 4 * 3 - 1)   # 4 x 3
    with pytest.raises(ValueError, match="images must have 6 columns"):
        figures.tile(np.zeros((2, 5)), (2, 3))


def test_importing_figures_does_not_import_matplotlib():
    code = ("import vae_np.figures.runs, vae_np.figures.claims, vae_np.cli, sys; "
            "assert 'matplotlib' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_matplotlib_raises_plot_unavailable_with_the_hint(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(figures.PlotUnavailable, match=r"pip install 'vae_np\[plot\]'"):
        figures.image_grid(tmp_path / "x.png", np.zeros((4, 4)), (2, 2))
    assert not (tmp_path / "x.png").exists()


def test_train_writes_every_figure(mpl, run_dir):
    names = sorted(p.name for p in (run_dir / "figures").glob("*.png"))
    assert names == ["latent_factors.png", "latent_grid.png", "latent_means.png", "loss.png",
                     "reconstructions.png", "samples.png", "traversals.png"]
    for name in names:
        image = read_png(mpl, run_dir / "figures" / name)
        assert image.ndim == 3 and min(image.shape[:2]) > 100 and image.std() > 0.01


def test_traversals_for_any_z_dim_and_the_latent_grid_only_for_two(mpl, tmp_path):
    out = tmp_path / "run"
    assert cli.main(["train", "--limit", "60", "--hidden", "8", "--z-dim", "3", "--epochs", "1",
                     "--out", str(out), "-q"]) == 0
    assert sorted(p.name for p in (out / "figures").glob("*.png")) == [
        "latent_factors.png", "latent_means.png", "loss.png", "reconstructions.png",
        "samples.png", "traversals.png"]
    with pytest.raises(ValueError, match="z_dim = 2"):
        figures.latent_grid(tmp_path / "g.png", VAE(4, (), 3), (2, 2))


def test_traversal_height_grows_with_the_number_of_latents(mpl, tmp_path):
    x = np.random.default_rng(2).random(6)
    heights = [read_png(mpl, figures.latent_traversals(tmp_path / f"t{z}.png", VAE(6, (4,), z), x,
                                                        (2, 3), n_steps=5)).shape[0]
               for z in (1, 6)]
    assert heights[1] > heights[0] + 200          # 0.75 inch (75 px) per latent row
    with pytest.raises(ValueError, match=r"x must be one example of shape \(x_dim,\)"):
        figures.latent_traversals(tmp_path / "t.png", VAE(6, (4,), 2), x[None], (2, 3))


def test_sample_command_writes_a_grid(mpl, run_dir, tmp_path, capsys):
    out = tmp_path / "samples.png"
    assert cli.main(["sample", str(run_dir), "--n", "16", "--out", str(out), "--seed", "4"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    first = read_png(mpl, out)
    assert cli.main(["sample", str(run_dir), "--n", "16", "--out", str(out), "--seed", "4"]) == 0
    np.testing.assert_array_equal(read_png(mpl, out), first)          # seeded: reproducible
    assert cli.main(["sample", str(run_dir), "--n", "9"]) == 0
    assert (run_dir / "figures" / "samples.png").is_file()


def test_reconstruct_command_writes_inputs_beside_reconstructions(mpl, run_dir, tmp_path):
    out = tmp_path / "rec.png"
    assert cli.main(["reconstruct", str(run_dir), "--n", "8", "--out", str(out)]) == 0
    image = read_png(mpl, out)
    assert image.shape[1] > image.shape[0]          # two grids side by side


def test_figure_functions_directly(mpl, tmp_path):
    history = {"epoch": [1, 2, 3], "train_loss": [3, 2, 1], "test_loss": [3.5, 2.5, 1.5],
               "train_recon": [2, 1.5, 0.8], "train_kl": [1, 0.5, 0.2]}
    read_png(mpl, figures.loss_curves(tmp_path / "loss.png", history))
    mu = np.random.default_rng(0).standard_normal((60, 2))
    labels = np.repeat([0, 1, 2], 20)
    read_png(mpl, figures.latent_means(tmp_path / "a.png", mu, labels, ("sq", "el", "he")))
    read_png(mpl, figures.latent_means(tmp_path / "b.png", mu))
    model = VAE(6, (4,), 2, dtype=np.float64)
    read_png(mpl, figures.latent_grid(tmp_path / "sub" / "grid.png", model, (2, 3), n=5))
    x = np.random.default_rng(1).random((10, 6))
    read_png(mpl, figures.reconstructions(tmp_path / "r.png", x, model.reconstruct(x), (2, 3)))


def test_tile_pairs_puts_each_input_left_of_its_reconstruction():
    x = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])          # three 1 x 2 images
    rec = np.array([[0.9, 0.8], [0.7, 0.6], [0.5, 0.4]])
    grid = figures.tile_pairs(x, rec, (1, 2), ncols=2, gap=1, pad=2, pad_value=0.25)
    # a pair is 1 x (2 + 1 + 2); two pairs per row with 2 px of white (1.0) between them
    assert grid.shape == (1 + 2 + 1, 5 + 2 + 5)
    np.testing.assert_array_equal(grid[0], [0.1, 0.2, 0.25, 0.9, 0.8, 1, 1,
                                            0.3, 0.4, 0.25, 0.7, 0.6])
    np.testing.assert_array_equal(grid[3, :5], [0.5, 0.6, 0.25, 0.5, 0.4])
    assert (grid[3, 5:] == 1).all() and (grid[1:3] == 1).all()
    with pytest.raises(ValueError, match=r"x_rec must have the shape of x"):
        figures.tile_pairs(x, rec[:2], (1, 2))


def test_traversal_codes_sweep_one_unit_and_hold_the_others_at_mu():
    from vae_np.figures.latent import traversal_codes

    z = traversal_codes([0.5, -1.0, 2.0], [-3.0, 3.0])
    np.testing.assert_array_equal(z, [[-3.0, -1.0, 2.0], [3.0, -1.0, 2.0],
                                      [0.5, -3.0, 2.0], [0.5, 3.0, 2.0],
                                      [0.5, -1.0, -3.0], [0.5, -1.0, 3.0]])


def test_factor_r2_reads_what_the_latents_encode():
    from vae_np.figures.latent import factor_r2, two_units

    rng = np.random.default_rng(3)
    mu = rng.standard_normal((500, 3))
    assert factor_r2(mu, 2 * mu[:, 1] - 0.5, "pos_x") == pytest.approx(1.0, abs=1e-12)
    assert factor_r2(mu, rng.standard_normal(500), "scale") < 0.03       # about 3/500 by chance
    shape = (mu[:, 0] > 0).astype(np.int64) + 2 * (mu[:, 2] > 0)        # 4 classes, not linear
    assert 0.3 < factor_r2(mu, shape, "shape") < 0.9
    angle = np.arctan2(mu[:, 2], mu[:, 0]) % (2 * np.pi)               # cos, sin not linear in mu
    assert factor_r2(np.stack([np.cos(angle), np.sin(angle)], 1), angle, "rotation") == \
        pytest.approx(1.0, abs=1e-12)
    assert two_units(mu * [1.0, 5.0, 3.0]) == (1, 2)
    with pytest.raises(ValueError, match="values of factor 'scale' must have shape"):
        factor_r2(mu, np.zeros(3), "scale")


def test_loss_figure_notes_a_test_loss_below_train_in_epoch_1(mpl, tmp_path):
    history = {"epoch": [1, 2], "train_loss": [3, 2], "test_loss": [2.5, 2.1],
               "train_recon": [2, 1.5], "train_kl": [1, 0.5]}
    assert figures.epoch1_note(history) == figures.EPOCH1_NOTE
    noted = read_png(mpl, figures.loss_curves(tmp_path / "noted.png", history))
    history["test_loss"] = [3.5, 2.1]
    assert figures.epoch1_note(history) is None
    plain = read_png(mpl, figures.loss_curves(tmp_path / "plain.png", history))
    assert noted.shape[0] == plain.shape[0] + 60                       # the note's 0.6 inch


def test_latent_means_by_factor_draws_a_panel_per_factor(mpl, tmp_path):
    from vae_np.data import make_sprites

    data = make_sprites(10, 300, seed=1)
    mu = np.random.default_rng(4).standard_normal((300, 2))
    image = read_png(mpl, figures.latent_means_by_factor(tmp_path / "f.png", mu, data.factors_test))
    assert image.shape[:2] == (720, 1260)                               # 2 rows x 3 panels
    one = read_png(mpl, figures.latent_means_by_factor(tmp_path / "g.png", mu,
                                                       {"pos_x": data.factors_test["pos_x"]}))
    assert one.shape[:2] == (360, 1260)
    with pytest.raises(ValueError, match="factors must be a non-empty dict"):
        figures.latent_means_by_factor(tmp_path / "h.png", mu, {})


def test_run_figures_without_labels_or_factors(mpl, tmp_path):
    from vae_np.data import Dataset

    rng = np.random.default_rng(5)
    x = (rng.random((40, 6)) < 0.5).astype(np.uint8) * 255
    data = Dataset(name="toy", x_train=x, x_test=x[:20], y_train=None, y_test=None,
                   image_shape=(2, 3))
    history = {"epoch": [1], "train_loss": [3.0], "test_loss": [3.5], "train_recon": [2.0],
               "train_kl": [1.0]}
    for z_dim, expected in ((1, []), (3, ["latent_means.png"]),
                            (2, ["latent_grid.png", "latent_means.png"])):
        out = tmp_path / f"z{z_dim}"
        written = figures.run_figures(out, VAE(6, (4,), z_dim), data, x[:20], history,
                                      np.random.default_rng(0), n_samples=4, n_inputs=4)
        names = sorted(p.name for p in written)
        assert names == sorted(["loss.png", "reconstructions.png", "samples.png",
                                "traversals.png"] + expected)
        assert sorted(p.name for p in out.glob("*.png")) == names


@pytest.fixture
def drawn(mpl, monkeypatch):
    """{file name: the matplotlib Figure saved under it}, for reading back what was drawn."""
    from pathlib import Path

    from matplotlib.figure import Figure

    figs, savefig = {}, Figure.savefig

    def record(self, path, *args, **kwargs):
        figs[Path(path).name] = self
        return savefig(self, path, *args, **kwargs)
    monkeypatch.setattr(Figure, "savefig", record)
    return figs


def _pairs_of(grid, n, h, w, ncols=8, gap=1, pad=4):
    """The (left, right) images of the first n pairs of a tile_pairs grid, read back by position."""
    out = []
    for i in range(n):
        r, c = divmod(i, ncols)
        cell = grid[r * (h + pad):r * (h + pad) + h, c * (2 * w + gap + pad):][:, :2 * w + gap]
        out.append((cell[:, :w].ravel(), cell[:, w + gap:].ravel()))
    return out


def test_run_figures_draw_the_models_own_numbers(drawn, tmp_path, monkeypatch):
    """Each figure of a run shows what its name says: test images beside model.reconstruct of
    them (a random choice, not the first ones), model.sample with the run's rng, the history's
    columns under their labels, the traversal of the first image shown, and the test-set latent
    means coloured by the labels of their own rows of the split."""
    from vae_np.data import make_sprites
    from vae_np.figures.latent import traversal_codes

    data = make_sprites(10, 50, seed=2)
    model = VAE(784, (8,), 2, seed=3)
    rows = np.sort(np.random.default_rng(11).permutation(50)[:30])     # a subset of the split
    assert not np.array_equal(rows, np.arange(30))
    x = data.x_test[rows]
    history = {"epoch": [1, 2], "train_loss": [9.0, 7.0], "test_loss": [8.5, 7.5],
               "train_recon": [6.0, 5.0], "train_kl": [3.0, 2.0]}
    figures.run_figures(tmp_path, model, data, x, history, np.random.default_rng(7),
                        n_samples=5, n_inputs=6, rows=rows)

    def image(name):
        return drawn[name].axes[0].images[0].get_array()
    shown = []          # the row of x each pair's left image is, and its right image
    for left, right in _pairs_of(np.asarray(image("reconstructions.png")), 6, 28, 28):
        match = [i for i in range(len(x)) if np.array_equal(left, x[i] / 255)]
        assert len(match) == 1
        shown.append(match[0])
        # one row alone: BLAS sums in another order than for the batch of six, hence 1e-12
        np.testing.assert_allclose(right, np.clip(model.reconstruct(x[match]), 0, 1)[0],
                                   rtol=1e-12, atol=0)
    assert len(set(shown)) == 6 and shown != list(range(6))
    np.testing.assert_array_equal(image("samples.png"), figures.tile(
        model.sample(5, rng=np.random.default_rng(7)), (28, 28), ncols=8))
    mu = model.encode(x[shown[:1]])[0][0]
    np.testing.assert_array_equal(image("traversals.png"), figures.tile(
        model.decode(traversal_codes(mu, np.linspace(-3, 3, 9))), (28, 28), ncols=9))

    left, right = drawn["loss.png"].axes
    curves = {line.get_label().split()[0]: list(line.get_ydata()) for line in left.lines}
    assert curves == {"train": history["train_loss"], "test": history["test_loss"]}
    terms = [list(line.get_ydata()) for line in right.lines]
    assert terms == [history["train_recon"], history["train_kl"]]
    assert [line.get_label()[:3] for line in right.lines] == ["rec", "KL("]

    scatter = drawn["latent_means.png"].axes[0].collections[0]
    np.testing.assert_array_equal(scatter.get_offsets(), model.encode(x)[0])
    colors = scatter.get_facecolors()
    labels = data.y_test[rows]
    for label in np.unique(labels):       # one colour per label, and different labels differ
        same = colors[labels == label]
        assert (same == same[0]).all()
    assert len({tuple(c) for c in colors}) == len(np.unique(labels))

    # the manifold: z at the N(0, 1) quantiles 0.05..0.95, z_1 along a row, z_2 growing upwards
    from statistics import NormalDist
    values = np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, 20)])
    codes = np.array([[z1, z2] for z2 in values[::-1] for z1 in values])
    np.testing.assert_allclose(image("latent_grid.png"), figures.tile(
        model.decode(codes), (28, 28), ncols=20), rtol=1e-6, atol=1e-7)
    # latent_factors: each continuous factor's panel colours model.encode(x) by that factor
    panels = {ax.get_title().split(" (")[0].removeprefix("coloured by "): ax
              for ax in drawn["latent_factors.png"].axes if ax.get_title().startswith("coloured")}
    assert set(panels) == set(data.factors_test)
    for name in ("pos_x", "pos_y", "scale"):
        points = panels[name].collections[0]
        np.testing.assert_array_equal(points.get_offsets(), model.encode(x)[0])
        np.testing.assert_array_equal(points.get_array(), data.factors_test[name][rows])
    # over other seeds, other test images are shown (the drawing skipped: only the inputs count)
    inputs = []
    for name in ("image_grid", "loss_curves", "latent_traversals", "latent_grid", "latent_means",
                 "latent_means_by_factor"):
        monkeypatch.setattr(figures, name, lambda path, *args, **kwargs: path)
    monkeypatch.setattr(figures, "reconstructions",
                        lambda path, x, *args, **kwargs: inputs.append(x) or path)
    for seed in range(12):
        figures.run_figures(tmp_path, model, data, x, history, np.random.default_rng(seed),
                            n_samples=1, n_inputs=6, rows=rows)
    chosen = {i for shown in inputs for row in shown for i in range(len(x))
              if np.array_equal(row, x[i] / 255)}
    assert len(chosen) >= 25     # 30 (1 - (24/30)^12) = 27.9 expected; the first six: 6
