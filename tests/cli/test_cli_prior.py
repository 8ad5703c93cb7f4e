"""``fit-prior`` and the VQ-VAE branches of ``evaluate``, ``sample`` and ``reconstruct``, on a tiny
VQ-VAE run trained from the command line on a few sprites (a few seconds).

The bound that ``evaluate`` prints is recomputed here through the library (load the run and the
prior, encode, -ln p(x|c) - ln prior(c)) and must agree; a planted bug in the CLI's sum (the prior
term dropped) must fail that comparison.
"""
import json
import shutil

import numpy as np
import pytest

from vae_np import cli
from vae_np.cli.common import load_data
from vae_np.evaluate import evaluation_set
from vae_np.vq.prior import load_prior, vq_bound
from vae_np.vq.runs import load_vq_run

M, K = 3, 6


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("vq") / "run"
    status = cli.main(["train", "--model", "vqvae", "--dataset", "sprites", "--limit", "200",
                       "--epochs", "1", "--hidden", "16", "--n-latents", str(M), "--code-dim",
                       "2", "--codebook-size", str(K), "--no-figures", "-q", "--out", str(run)])
    assert status == 0
    return run


@pytest.fixture
def run(base_run, tmp_path):
    """A fresh copy of the trained run (no prior yet)."""
    return shutil.copytree(base_run, tmp_path / "run")


def main(argv, capsys):
    try:
        status = cli.main([str(a) for a in argv])
    except SystemExit as exc:            # argparse's own errors
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def fit(run, capsys, *extra):
    status, out, err = main(["fit-prior", run, "--epochs", "2", "--hidden", "8", *extra], capsys)
    assert status == 0, err
    return out


def one_line_error(status, err, word):
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1 and word in lines[0], err
    assert lines[0].startswith("vae-np") and "Traceback" not in err


def test_evaluate_without_prior_is_one_line_pointing_to_fit_prior(run, capsys):
    status, out, err = main(["evaluate", run, "--limit", "50"], capsys)
    one_line_error(status, err, "fit-prior")
    status, out, err = main(["sample", run], capsys)
    one_line_error(status, err, "fit-prior")


def test_evaluate_no_bound_reports_recon_usage_perplexity(run, capsys):
    status, out, err = main(["evaluate", run, "--limit", "50", "--no-bound", "--json"], capsys)
    assert status == 0, err
    result = json.loads(out)
    assert "bound" not in result and np.isfinite(result["recon"])
    assert 0 < result["usage"] <= 1 and 1 <= result["perplexity"] <= K


def test_fit_prior_writes_prior_and_figures(run, capsys):
    out = fit(run, capsys)
    assert "epoch 2/2" in out and "M ln K" in out
    info = json.loads((run / "prior.json").read_text())
    assert info["prior"]["n_latents"] == M and info["prior"]["codebook_size"] == K
    assert [row["epoch"] for row in info["history"]] == [1, 2]
    assert info["fit"]["n_codes"] == 200                         # the run's --limit
    for name in ("prior_samples.png", "prior_code_usage.png"):
        assert (run / "figures" / name).stat().st_size > 0


def library_bound(run):
    """The bound by the library's own route: load run and prior, encode the first 50 test images."""
    model, config, _ = load_vq_run(run, dtype=np.float64)
    prior, _ = load_prior(run, np.float64)         # evaluate's default dtype, for both
    x = evaluation_set(load_data(config, type("A", (), {"quiet": True})()), "test", 50)
    return vq_bound(model, prior, x)


def test_evaluate_bound_matches_the_library(run, capsys):
    fit(run, capsys)
    status, out, err = main(["evaluate", run, "--limit", "50", "--json"], capsys)
    assert status == 0, err
    result = json.loads(out)
    expected = library_bound(run)
    np.testing.assert_allclose(result["bound"], expected.bound.mean(), rtol=1e-12)
    np.testing.assert_allclose(result["prior_nll"], expected.prior_nll.mean(), rtol=1e-12)
    np.testing.assert_allclose(result["bound"], result["recon"] + result["prior_nll"],
                               rtol=1e-12)
    assert result["usage"] == len(np.unique(expected.codes)) / K        # by hand, from the codes
    freq = np.array([np.mean(expected.codes == k) for k in np.unique(expected.codes)])
    np.testing.assert_allclose(result["perplexity"], np.exp(-np.sum(freq * np.log(freq))),
                               rtol=1e-12)
    status, out, err = main(["evaluate", run, "--limit", "50"], capsys)
    assert status == 0 and "bound >= -ln p(x)" in out and "perplexity" in out


def test_evaluate_with_prior_term_dropped_fails_the_comparison(run, capsys, monkeypatch):
    """Planted bug: evaluate's bound without -ln prior(c(x))."""
    fit(run, capsys)
    import vae_np.cli.vq as cli_vq
    right = cli_vq.vq_bound

    def dropped(model, prior, x):
        b = right(model, prior, x)
        return b._replace(bound=b.recon, prior_nll=0 * b.prior_nll)

    monkeypatch.setattr(cli_vq, "vq_bound", dropped)
    status, out, err = main(["evaluate", run, "--limit", "50", "--json"], capsys)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(json.loads(out)["bound"], library_bound(run).bound.mean(),
                                   rtol=1e-12)


def test_evaluate_says_when_the_prior_is_older_than_the_model(run, capsys):
    """After train --resume the codes move on; the prior fitted to the old ones still gives a
    bound, but evaluate must say it is stale (and record both epochs), not stay silent."""
    fit(run, capsys)
    status, out, err = main(["evaluate", run, "--limit", "20", "--json"], capsys)
    assert status == 0 and "fit-prior" not in err
    assert json.loads(out)["prior_fitted_at_epoch"] == json.loads(out)["epoch"] == 1
    status, out, err = main(["train", "--resume", run, "--epochs", "2", "--no-figures", "-q"],
                            capsys)
    assert status == 0, err
    status, out, err = main(["evaluate", run, "--limit", "20", "--json"], capsys)
    result = json.loads(out)
    assert status == 0 and (result["epoch"], result["prior_fitted_at_epoch"]) == (2, 1)
    assert "epoch 1" in err and "epoch 2" in err and f"fit-prior {run}" in err
    fit(run, capsys)                                   # refitted: the note is gone
    status, out, err = main(["evaluate", run, "--limit", "20"], capsys)
    assert status == 0 and "fit-prior" not in err


def test_sample_and_reconstruct_write_images(run, capsys, tmp_path):
    fit(run, capsys)
    for argv in (["sample", run, "--n", "8", "--out", tmp_path / "s.png"],
                 ["reconstruct", run, "--n", "4", "--out", tmp_path / "r.png"]):
        status, out, err = main(argv, capsys)
        assert status == 0, err
    assert (tmp_path / "s.png").stat().st_size > 0 and (tmp_path / "r.png").stat().st_size > 0


def test_fit_prior_is_reproducible(run, capsys):
    fit(run, capsys, "--no-figures")
    first = np.load(run / "prior.npz")["flat"]
    fit(run, capsys, "--no-figures")
    np.testing.assert_array_equal(np.load(run / "prior.npz")["flat"], first)


@pytest.mark.parametrize("argv, word", [
    (["fit-prior", "{run}", "--epochs", "0"], "--epochs"),
    (["fit-prior", "{run}", "--hidden", "0"], "--hidden"),
    (["fit-prior", "{run}", "--lr", "-1"], "--lr"),
    (["fit-prior", "{tmp}/nowhere"], "nowhere"),
    (["fit-prior", "{tmp}/vae"], "not a VQ-VAE run"),
])
def test_fit_prior_bad_input_one_line(run, tmp_path, capsys, argv, word):
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "config.json").write_text(json.dumps({"dataset": "sprites"}))
    argv = [a.replace("{run}", str(run)).replace("{tmp}", str(tmp_path)) for a in argv]
    one_line_error(*main(argv, capsys)[::2], word)


def test_fit_prior_help_fits_100_columns(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exc:
        cli.main(["fit-prior", "-h"])
    lines = capsys.readouterr().out.splitlines()
    assert exc.value.code == 0 and max(len(line) for line in lines) <= 100
