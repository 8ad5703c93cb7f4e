"""The claim figures draw what their legends say: each labelled line of the saved matplotlib Figure
against the formula written out here (``tests/figures/test_claim_figures.py`` checks the numbers
behind the pictures; this checks that the picture shows them under the right label). Needs
matplotlib (the ``plot`` extra)."""
import math
import re

import numpy as np
import pytest

from vae_np.figures import claims as cf


@pytest.fixture
def drawn(monkeypatch):
    """{file name: the matplotlib Figure saved under it}."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        pytest.fail("matplotlib is not installed: pip install -e '.[test,plot]'")
    figs, savefig = {}, Figure.savefig

    def record(self, path, *args, **kwargs):
        figs[path.name] = self
        return savefig(self, path, *args, **kwargs)
    monkeypatch.setattr(Figure, "savefig", record)
    return figs


def lines(ax):
    """{legend label: (x, y)} of an Axes' lines."""
    return {line.get_label(): (np.asarray(line.get_xdata(), float),
                               np.asarray(line.get_ydata(), float)) for line in ax.lines}


def test_kl_curve_draws_the_true_gradient_as_the_librarys_and_the_doubled_one_as_doubled(
        drawn, tmp_path):
    cf.kl_curve(tmp_path / "kl_curve.png")
    left, right = drawn["kl_curve.png"].axes
    v, y = lines(left)["-2 KL from ops.kl_forward"]
    np.testing.assert_allclose(y, 1 + np.log(v) - v, rtol=1e-12, atol=1e-14)
    grads = lines(right)
    s, true = grads["library: -(sigma - 1/sigma) (ops.kl_backward)"]
    np.testing.assert_allclose(true, 1 / s - s, rtol=1e-12, atol=1e-14)
    s2, doubled = grads["circulating 2(1/sigma - sigma): 2x too big"]
    np.testing.assert_allclose(doubled, 2 * (1 / s2 - s2), rtol=1e-12, atol=1e-14)
    s3, fd = grads["central differences of -KL"]
    np.testing.assert_allclose(fd, 1 / s3 - s3, rtol=1e-6, atol=1e-8)


def test_elbo_gap_draws_the_elbo_below_ln_p_and_the_gap_as_the_kl_to_the_posterior(
        drawn, tmp_path):
    cf.elbo_gap(tmp_path / "elbo_gap.png")
    _, middle, right = drawn["elbo_gap.png"].axes
    d = cf.elbo_gap_data()
    t, elbo = lines(middle)["ELBO(q_t) (library KL)"]
    np.testing.assert_array_equal(t, d["t"])
    assert np.all(elbo <= d["log_px"] + 1e-12) and elbo[-1] == pytest.approx(d["log_px"])
    x, s2 = d["x"], d["s2"]                          # the conjugate model, written out here
    log_px = -0.5 * (math.log(2 * math.pi * (1 + s2)) + x * x / (1 + s2))
    (ln_p,) = [y for label, (_, y) in lines(middle).items() if label.startswith("ln p(x) = ")]
    np.testing.assert_allclose(ln_p, log_px, rtol=1e-13)
    t_gap, gap = lines(right)["ln p(x) - ELBO(q_t)"]
    m_post, v_post = x / (1 + s2), s2 / (1 + s2)
    m, v = d["m"][d["t"] < 1], d["v"][d["t"] < 1]
    np.testing.assert_allclose(gap, 0.5 * (np.log(v_post / v) + (v + (m - m_post) ** 2) / v_post
                                          - 1), rtol=1e-9)


def test_decoder_sigma_draws_twice_the_gaussian_log_likelihood_for_each_residual(drawn, tmp_path):
    cf.decoder_sigma(tmp_path / "decoder_sigma.png", seed=0)
    left = drawn["decoder_sigma.png"].axes[0]
    curves = lines(left)
    assert len(curves) == 4
    for label, (v, y) in curves.items():
        k = float(re.match(r"k = ([\d.]+)", label).group(1))
        np.testing.assert_allclose(y, -np.log(2 * np.pi * v) - k * k / v, rtol=1e-12)
