"""The latent figures (vae_np.figures.latent) on the new models: the two-layer model and the
VampPrior model draw the grid, the means and the traversals of z1 (the decoder's latent), and
their samples come from their own priors.

A figure is checked through what it shows: a PNG whose pixels vary (a blank or constant figure
fails), and for the grid the decoder means at the grid's z, recomputed with ``model.decode``.
"""
import numpy as np
import pytest

from vae_np import VAE, Adam, fit
from vae_np.evaluate import latent_means as encode_means
from vae_np.figures.latent import latent_grid, latent_means, latent_traversals

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MODELS = {"two layers": dict(z2_dim=2, hidden2=(8,)),
          "two layers, vamp top": dict(z2_dim=2, hidden2=(8,), prior="vamp", pseudo_inputs=4),
          "vamp": dict(prior="vamp", pseudo_inputs=4)}


@pytest.fixture
def mpl():
    """matplotlib's image reader; fails, naming the extra, without it."""
    try:
        import matplotlib.image
    except ImportError:
        pytest.fail("matplotlib is not installed: pip install -e '.[test,plot]'")
    return matplotlib.image


def trained(name):
    rng = np.random.default_rng(0)
    X = (rng.random((80, 16)) < np.linspace(0.1, 0.9, 16)).astype(np.float64)
    model = VAE(16, (12,), 2, "tanh", seed=1, **MODELS[name])
    fit(model, X, Adam(1e-2), epochs=3, batch_size=20, k=2, rng=np.random.default_rng(2))
    return model, X


def pixels(mpl, path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = mpl.imread(path)
    assert image.shape[0] > 100 and image.std() > 0.01         # drawn, not blank
    return image


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_latent_figures_draw_the_new_models(name, mpl, tmp_path):
    model, X = trained(name)
    pixels(mpl, latent_grid(tmp_path / "grid.png", model, (4, 4), n=5))
    mu = encode_means(model, X)
    pixels(mpl, latent_means(tmp_path / "means.png", mu, labels=np.arange(80) % 3))
    pixels(mpl, latent_traversals(tmp_path / "trav.png", model, X[0], (4, 4), n_steps=4))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_samples_come_from_the_models_own_prior(name):
    """z ~ p(z1): for the two-layer model z1 ~ p(z1|z2) at z2 ~ p(z2), not N(0, I); the samples
    the figures decode are model.sample's, the decoder means at those draws."""
    model, _ = trained(name)
    z = model.prior.sample(5000, np.random.default_rng(3))
    assert z.shape == (5000, 2) and np.all(np.isfinite(z))
    # a standard normal would give variance 1 per unit within 0.04 (4 SE of 1/sqrt(2500));
    # the trained priors are not N(0, I)
    assert np.max(np.abs(z.var(axis=0) - 1)) > 0.04
    x = model.sample(6, rng=np.random.default_rng(4))
    np.testing.assert_allclose(x, model.decode(model.prior.sample(6, np.random.default_rng(4))),
                               rtol=1e-12)
