"""What a run records and plots, named for what it is, for every objective.

``fit``'s history: ``loss`` the objective (-ELBO, or -L_k for objective="iwae"), ``recon`` the mean
-ln p(x|z) over the k samples, ``kl`` the ELBO's KL term (closed form for the Gaussian posterior,
Monte Carlo for a flow), so recon + kl is the k-sample -ELBO and, for an IWAE run, lies above
-L_k. An IWAE run used to record kl = -L_k - recon, a "KL" of -52 nats plotted under a "-ELBO"
title; the test that recon + kl == loss held by construction and could not see it.

The expected values here are computed from what the model received and returned in each step
(its trace: x, mu, sigma, nll, log_w), with the closed-form KL and the log-mean-exp written out,
not by the code that records them.
"""
import csv

import numpy as np
import pytest
from scipy.special import logsumexp

from vae_np import SGD, VAE, Adam, cli, fit
from vae_np.runs import directory as runs
from vae_np.data import make_sprites
from vae_np.evaluate import elbo, iwae_nll


def recording_traces(model):
    """Make ``model.forward`` append every Trace it returns to the returned list."""
    traces, forward = [], model.forward

    def record(*args, **kwargs):
        traces.append(forward(*args, **kwargs))
        return traces[-1]
    model.forward = record
    return traces


def closed_form_kl(mu, sigma):
    """KL(N(mu, sigma^2) || N(0, I)) per row."""
    return 0.5 * np.sum(mu ** 2 + sigma ** 2 - 1 - np.log(sigma ** 2), axis=-1)


def binary_data(n=60, seed=0):
    """Noisy copies of two 8-pixel prototypes: data a VAE with z_dim 2 encodes (KL > 0)."""
    rng = np.random.default_rng(seed)
    protos = np.array([[1, 1, 1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 1, 1, 0, 0]], float)
    x = protos[rng.integers(0, 2, n)]
    return np.where(rng.random(x.shape) < 0.05, 1 - x, x)


@pytest.mark.parametrize("estimator", ["standard", "dreg"])
def test_an_iwae_history_records_the_bound_the_reconstruction_and_the_elbos_kl(estimator):
    """Epoch by epoch, over batches of 16, 16, 16 and 12 examples (means weighted by size), at
    the parameters of each step: loss = -L_5 = -mean_b [logsumexp_k ln w - ln 5], recon = the
    mean nll, kl = the closed-form KL of each step's mu and sigma; kl >= 0 and recon + kl above
    the bound. Tolerance: the same float64 numbers summed in another order, 1e-12 relative."""
    X = binary_data()
    model = VAE(8, (6,), 2, "tanh", "bernoulli", seed=0)
    traces = recording_traces(model)    # threads=1: whole batches, on this model's forward
    history = fit(model, X, Adam(1e-2), epochs=3, batch_size=16, k=5, objective="iwae",
                  estimator=estimator, rng=np.random.default_rng(1), threads=1)
    assert len(traces) == 3 * 4
    for epoch in range(3):
        steps = traces[4 * epoch:4 * epoch + 4]
        sizes = np.array([len(t.values["x"]) for t in steps])
        assert list(sizes) == [16, 16, 16, 12]

        def mean(per_step):
            return sizes @ np.array(per_step) / sizes.sum()
        v = [t.values for t in steps]
        bound = mean([-np.mean(logsumexp(s["log_w"], axis=0) - np.log(5)) for s in v])
        recon = mean([s["nll"].mean() for s in v])
        kl = mean([closed_form_kl(s["mu"], s["sigma"]).mean() for s in v])
        assert history["loss"][epoch] == pytest.approx(bound, rel=1e-12)
        assert history["recon"][epoch] == pytest.approx(recon, rel=1e-12)
        assert history["kl"][epoch] == pytest.approx(kl, rel=1e-12)
        assert kl > 0 and recon + kl > bound


def test_the_recorded_kl_is_the_trained_models_mean_kl():
    """After 40 epochs of IWAE training, one more epoch at lr = 1e-300 (every update rounds away:
    the parameters are checked to be unchanged) records the trained model's mean KL on X, its
    closed form from model.encode, to 1e-12 (float64 rounding of the same sum)."""
    X = binary_data(96)
    model = VAE(8, (6,), 2, "tanh", "bernoulli", seed=0)
    fit(model, X, Adam(2e-2), epochs=40, batch_size=16, k=5, objective="iwae",
        rng=np.random.default_rng(1))
    trained = model.flat.copy()
    history = fit(model, X, SGD(1e-300), epochs=1, batch_size=16, k=5, objective="iwae",
                  rng=np.random.default_rng(2))
    np.testing.assert_array_equal(model.flat, trained)
    mu, sigma = model.encode(X)
    expected = closed_form_kl(mu, sigma).mean()
    assert history["kl"][0] == pytest.approx(expected, rel=1e-12)
    assert expected > 0.3                                   # the model uses z


def test_with_a_flows_monte_carlo_kl_the_elbo_is_above_the_bound_at_every_epoch():
    """A flow's KL is the Monte Carlo 1/k sum_k [ln q(z_k|x) - ln p(z_k)], so recon + kl =
    -1/k sum_k ln w_k >= -ln 1/k sum_k w_k = -L_k for every example (Jensen), strictly unless
    the k weights are equal; the history must show it for the ELBO objective (loss = recon +
    kl) and the IWAE one (loss < recon + kl)."""
    X = binary_data()
    for objective in ("elbo", "iwae"):
        model = VAE(8, (6,), 2, "tanh", "bernoulli", seed=0, flow="planar", flow_length=2)
        h = fit(model, X, Adam(1e-2), epochs=3, batch_size=16, k=4, objective=objective,
                rng=np.random.default_rng(3))
        elbo_ = np.add(h["recon"], h["kl"])
        if objective == "elbo":
            np.testing.assert_allclose(h["loss"], elbo_, rtol=1e-12)
        else:
            assert np.all(elbo_ > np.array(h["loss"]))


@pytest.fixture
def drawn(monkeypatch):
    """{file name: the matplotlib Figure saved under it}."""
    from pathlib import Path

    from matplotlib.figure import Figure

    figs, savefig = {}, Figure.savefig

    def record(self, path, *args, **kwargs):
        figs[Path(path).name] = self
        return savefig(self, path, *args, **kwargs)
    monkeypatch.setattr(Figure, "savefig", record)
    return figs


@pytest.fixture(scope="module")
def sprites():
    return make_sprites(n_train=1000, n_test=500, seed=0)


def test_an_iwae_run_records_prints_and_plots_its_quantities_by_name(
        tmp_path, monkeypatch, capsys, drawn, sprites):
    """``train --objective iwae --k 3``: history.csv's train_kl and test_kl are KLs (>= 0; the
    test one the closed form of the saved model's mu and sigma on the test set), each -ELBO is
    above its -L_3, test_loss is -L_3 of the saved model on the test set with the evaluation's
    noise (``evaluate.iwae_nll``), the epoch line names -L_3 for train and test, and loss.png
    says -L_3 in its title, axis and legend, with each curve drawn from its column.

    Tolerances: float64 throughout; the test-set values are the same computations as the run's
    (1e-12). The test -ELBO (k = 1 noise) lies above -L_3 (other noise) in expectation; by 7.6
    nats here, against a standard error of the mean gap of 0.5 over the 500 test images, so the
    check asks for more than 1 nat."""
    from vae_np import data

    monkeypatch.setattr(data, "load_dataset", lambda *a, **k: sprites)
    out = tmp_path / "run"
    assert cli.main(["train", "--objective", "iwae", "--k", "3", "--hidden", "8", "--z-dim", "2",
                     "--batch-size", "500", "--epochs", "2", "--dtype", "float64", "--out",
                     str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    with open(out / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    h = {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}
    assert np.all(h["train_kl"] > 0) and np.all(h["test_kl"] > 0)
    assert np.all(h["train_recon"] + h["train_kl"] > h["train_loss"])
    assert np.all(h["test_recon"] + h["test_kl"] > h["test_loss"] + 1.0)

    _, model, epoch, _ = runs.load_run(out)
    assert epoch == 2
    x = sprites.x_test
    mu, sigma = model.encode(x)
    assert h["test_kl"][-1] == pytest.approx(closed_form_kl(mu, sigma).mean(), rel=1e-12)
    assert h["test_recon"][-1] + h["test_kl"][-1] == pytest.approx(elbo(model, x, k=1).loss,
                                                                   rel=1e-12)
    assert h["test_loss"][-1] == pytest.approx(iwae_nll(model, x, k=3)[0], rel=1e-12)

    line = [s for s in lines if s.startswith("epoch 2/2")][0]
    assert (f"train -L_3 {h['train_loss'][-1]:.2f} (-ELBO: recon {h['train_recon'][-1]:.2f} + "
            f"kl {h['train_kl'][-1]:.2f})  test -L_3 {h['test_loss'][-1]:.2f}") in line

    left, right = drawn["loss.png"].axes
    assert left.get_title() == "-L_3 (sprites)" and left.get_ylabel().startswith("-L_3 ")
    curves = {line.get_label(): list(line.get_ydata()) for line in left.lines}
    assert curves == {"train -L_3 (mean over the epoch)": list(h["train_loss"]),
                      "test -L_3 (after the epoch)": list(h["test_loss"]),
                      "train -ELBO = recon + KL": list(h["train_recon"] + h["train_kl"]),
                      "test -ELBO": list(h["test_recon"] + h["test_kl"])}
    assert [t.get_text() for t in left.get_legend().get_texts()] == list(curves)
    assert right.get_title() == "train terms of the -ELBO"
    terms = {line.get_label(): list(line.get_ydata()) for line in right.lines}
    assert terms == {"reconstruction -E[ln p(x|z)]": list(h["train_recon"]),
                     "KL(q(z|x) || p(z))": list(h["train_kl"])}


def test_an_elbo_runs_figure_and_line_still_say_elbo(tmp_path, monkeypatch, capsys, drawn,
                                                     sprites):
    """The default objective: loss = recon + kl in every row, -ELBO in the line, the title and
    the axis, and no -L_k or extra curve."""
    from vae_np import data

    monkeypatch.setattr(data, "load_dataset", lambda *a, **k: sprites)
    out = tmp_path / "run"
    assert cli.main(["train", "--hidden", "8", "--z-dim", "2", "--batch-size", "500",
                     "--epochs", "1", "--out", str(out)]) == 0
    line = [s for s in capsys.readouterr().out.splitlines() if s.startswith("epoch 1/1")][0]
    assert "test -ELBO " in line and "-L_" not in line
    _, _, _, history = runs.load_run(out)
    assert history["train_loss"] == pytest.approx(np.add(history["train_recon"],
                                                          history["train_kl"]), rel=1e-12)
    left, _ = drawn["loss.png"].axes
    assert left.get_title() == "-ELBO (sprites)" and left.get_ylabel().startswith("-ELBO ")
    assert [line.get_label() for line in left.lines] == ["train -ELBO (mean over the epoch)",
                                                         "test -ELBO (after the epoch)"]
