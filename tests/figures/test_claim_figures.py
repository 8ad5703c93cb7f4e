"""The claim figures (vae_np.figures.claims): the numbers behind each picture against formulas
written out here, and the PNGs themselves. Drawing needs matplotlib (the ``plot`` extra, installed
by ``pip install -e ".[test,plot]"``); without it the drawing tests fail and say what to install."""
import math

import numpy as np
import pytest
from scipy.stats import norm

from vae_np.figures import claims as cf

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def mpl_image():
    try:
        import matplotlib.image
    except ImportError:
        pytest.fail("matplotlib is not installed: pip install -e '.[test,plot]'")
    return matplotlib.image


def test_monte_carlo_kl_tends_to_the_closed_form_with_shrinking_standard_errors():
    mu, sigma = np.array([0.8, -0.5]), np.array([0.6, 1.4])
    d = cf.kl_monte_carlo_data(seed=3, mu=tuple(mu), sigma=tuple(sigma), n_max=20_000)
    closed = 0.5 * np.sum(mu ** 2 + sigma ** 2 - 1 - np.log(sigma ** 2))
    assert d["closed"] == pytest.approx(closed, rel=1e-14)
    assert d["n"][0] == 10 and d["n"][-1] == 20_000 and np.all(np.diff(d["n"]) > 0)
    assert abs(d["estimate"][-1] - closed) < 4 * d["stderr"][-1]
    # the standard error is sd / sqrt(n): sd is about the same at every n beyond the first few
    sd = d["stderr"] * np.sqrt(d["n"])
    assert np.ptp(sd[-10:]) < 0.1 * sd[-1]
    assert d["stderr"][-1] < d["stderr"][0] / 10


def test_kl_curve_is_one_plus_ln_v_minus_v_and_the_library_gradient_keeps_the_half():
    v = np.array([0.05, 0.5, 1.0, 2.0, 4.0])
    d = cf.kl_curve_data(v)
    np.testing.assert_allclose(d["y"], 1 + np.log(v) - v, rtol=1e-12, atol=1e-15)
    s = np.sqrt(v)
    np.testing.assert_allclose(d["true_grad"], 1 / s - s, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(d["fd"], 1 / s - s, rtol=1e-6, atol=1e-8)
    off_peak = v != 1
    np.testing.assert_allclose(d["doubled"][off_peak] / d["true_grad"][off_peak], 2.0, rtol=1e-12)


def test_estimator_spreads_are_centred_on_the_exact_gradient_and_the_score_is_wider():
    d = cf.estimator_spread_data(seed=1, mu=1.0, sigma=0.5, n=10, repeats=300)
    exact = np.array([2 * 1.0, 2 * 0.5])                     # d/d(mu, sigma) of mu^2 + sigma^2
    for key in ("score", "reparam"):
        values = d[key]
        assert values.shape == (300, 2)
        se = values.std(axis=0, ddof=1) / math.sqrt(300)
        assert np.all(np.abs(values.mean(axis=0) - exact) < 4 * se), key
    assert np.all(d["score"].std(axis=0) > 2 * d["reparam"].std(axis=0))


def test_elbo_gap_is_the_kl_to_the_exact_posterior_and_vanishes_there():
    x, s2 = 1.5, 0.3
    d = cf.elbo_gap_data(x=x, s2=s2, steps=11)
    assert d["log_px"] == pytest.approx(norm.logpdf(x, 0, math.sqrt(1 + s2)), rel=1e-13)
    m_post, v_post = x / (1 + s2), s2 / (1 + s2)             # the conjugate posterior
    m, v = d["m"], d["v"]
    assert (m[0], v[0]) == (0.0, 1.0) and m[-1] == pytest.approx(m_post)
    assert v[-1] == pytest.approx(v_post)
    kl_post = 0.5 * (np.log(v_post / v) + (v + (m - m_post) ** 2) / v_post - 1)
    np.testing.assert_allclose(d["gap"], kl_post, rtol=1e-9, atol=1e-13)
    assert np.all(d["elbo"] <= d["log_px"] + 1e-13)
    assert np.all(np.diff(d["gap"]) < 0) and abs(d["gap"][-1]) < 1e-13


def test_gaussian_loglik_curve_is_minus_ln_2_pi_v_minus_k2_over_v():
    v = np.array([1e-4, 0.01, 0.25, 1.0, 3.0])
    for k in (0.0, 0.1, 1.0):
        np.testing.assert_allclose(cf.gaussian_loglik_curve(v, k),
                                   -np.log(2 * np.pi * v) - k * k / v, rtol=1e-12)
    # a reproduced point (k = 0) gains without bound as v -> 0; k > 0 peaks at v = k^2
    assert cf.gaussian_loglik_curve(np.array([1e-12]), 0.0)[0] > 25
    grid = np.geomspace(1e-4, 1, 2001)
    assert grid[np.argmax(cf.gaussian_loglik_curve(grid, 0.1))] == pytest.approx(0.01, rel=0.01)


def test_write_claim_figures_draws_every_figure_reproducibly(mpl_image, tmp_path):
    paths = cf.write_claim_figures(tmp_path / "a", seed=0)
    assert [p.name for p in paths] == ["kl_monte_carlo.png", "kl_curve.png", "elbo_gap.png",
                                       "estimators.png", "decoder_sigma.png"]
    for path in paths:
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        image = mpl_image.imread(path)
        assert image.shape[0] >= 400 and image.shape[1] >= 700 and image.std() > 0.01
    again = cf.kl_monte_carlo(tmp_path / "b" / "kl_monte_carlo.png", seed=0)
    other = cf.kl_monte_carlo(tmp_path / "c" / "kl_monte_carlo.png", seed=1)
    np.testing.assert_array_equal(mpl_image.imread(again), mpl_image.imread(paths[0]))
    assert not np.array_equal(mpl_image.imread(other), mpl_image.imread(paths[0]))


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_a_bad_seed_is_a_value_error_naming_it(seed, tmp_path):
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        cf.write_claim_figures(tmp_path, seed=seed)
