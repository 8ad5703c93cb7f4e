"""``evaluate`` reports a standard error beside every mean, in its text and its JSON, for a VAE run
(the k = 1 -ELBO and its two terms, the averaged -ELBO and its reconstruction, the IWAE estimate)
and a VQ-VAE run (reconstruction, prior term, bound; reconstruction alone with --no-bound).

SE = sqrt(sum_i (v_i - mean)^2 / (n - 1)) / sqrt(n) over the n test images, written out here from
per-example values the library computes for the same rows (``elbo``, ``iwae_nll``, ``vq_bound``
with the subset's rows and seed); the means must agree too. Tolerance 1e-12 relative: the same
float64 numbers summed in another order. One image has no spread: null in the JSON, no "+-".
"""
import json
import shutil

import numpy as np
import pytest

from vae_np import cli
from vae_np.runs import directory as runs
from vae_np.data import make_sprites
from vae_np.evaluate import elbo, evaluation_subset, iwae_nll
from vae_np.vq.prior import load_prior, vq_bound
from vae_np.vq.runs import load_vq_run

TINY = ["--dataset", "sprites", "--hidden", "8", "--batch-size", "20", "--limit", "40",
        "--epochs", "1", "-q", "--no-figures"]
N, SEED, ELBO_K, IWAE_K = 9, 4, 3, 5


@pytest.fixture(scope="module")
def sprites():
    return make_sprites()


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("se") / "vae"
    assert cli.main(["train", *TINY, "--z-dim", "3", "--out", str(run)]) == 0
    return run


@pytest.fixture(scope="module")
def vq_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("se") / "vq"
    assert cli.main(["train", *TINY, "--model", "vqvae", "--n-latents", "2", "--code-dim", "2",
                     "--codebook-size", "4", "--out", str(run)]) == 0
    assert cli.main(["fit-prior", str(run), "--epochs", "1", "--hidden", "4", "-q",
                     "--no-figures"]) == 0
    return run


def se(values):
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    return np.sqrt(((values - values.mean()) ** 2).sum() / (n - 1)) / np.sqrt(n)


def evaluate(run, capsys, *extra):
    argv = ["evaluate", str(run), "--limit", str(N), "--seed", str(SEED), "--elbo-k", str(ELBO_K),
            "--iwae-k", str(IWAE_K), "-q", *extra]
    capsys.readouterr()
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert cli.main(argv + ["--json"]) == 0
    return text, json.loads(capsys.readouterr().out)


def check(result, key, values):
    assert result[key] == pytest.approx(np.mean(values), rel=1e-12), key
    assert result[f"{key}_se"] == pytest.approx(se(values), rel=1e-12), key


def test_every_mean_of_a_vae_evaluation_has_its_standard_error(vae_run, sprites, fast_sprites,
                                                               capsys):
    text, result = evaluate(vae_run, capsys)
    _, model, _, _ = runs.load_run(vae_run, dtype="float64")
    subset = evaluation_subset(sprites, "test", N, SEED)
    one = elbo(model, subset.x, k=1, seed=SEED, rows=subset.rows)
    avg = elbo(model, subset.x, k=ELBO_K, seed=SEED, rows=subset.rows)
    iwae = iwae_nll(model, subset.x, k=IWAE_K, seed=SEED, rows=subset.rows)[1]
    for key, values in (("test_loss", one.per_example), ("test_recon", one.per_example_recon),
                        ("test_kl", one.per_example_kl), ("test_loss_avg", avg.per_example),
                        ("test_recon_avg", avg.per_example_recon), ("iwae_nll", iwae)):
        check(result, key, values)
    lines = {line[2:34].strip(): line[34:] for line in text.splitlines()[3:-1]}
    for name, key in (("-ELBO (k = 1)", "test_loss"), ("reconstruction -ln p(x|z)", "test_recon"),
                      ("KL(q(z|x) || p(z))", "test_kl"),
                      (f"-ELBO (mean of {ELBO_K} samples)", "test_loss_avg"),
                      (f"-ln p(x), IWAE k = {IWAE_K}", "iwae_nll")):
        assert lines[name] == f"{result[key]:.3f} +- {result[key + '_se']:.3f}", (name, text)
    assert "mean +- standard error over the images" in text
    assert max(len(line) for line in text.splitlines()[1:]) <= 100


def test_every_mean_of_a_vq_evaluation_has_its_standard_error(vq_run, sprites, fast_sprites,
                                                              capsys):
    text, result = evaluate(vq_run, capsys)
    model, _, _ = load_vq_run(vq_run, dtype=np.float64)
    prior, _ = load_prior(vq_run, np.float64)
    bound = vq_bound(model, prior, evaluation_subset(sprites, "test", N, SEED).x)
    for key, values in (("recon", bound.recon), ("prior_nll", bound.prior_nll),
                        ("bound", bound.bound)):
        check(result, key, values)
        assert f"{result[key]:.3f} +- {result[key + '_se']:.3f}" in text, (key, text)
    text, result = evaluate(vq_run, capsys, "--no-bound")
    check(result, "recon", bound.recon)
    assert f"{result['recon']:.3f} +- {result['recon_se']:.3f}" in text
    assert "bound" not in result


def test_one_image_has_no_standard_error(vae_run, vq_run, fast_sprites, tmp_path, capsys):
    for run in (vae_run, vq_run):
        argv = ["evaluate", str(run), "--limit", "1", "--elbo-k", "2", "--iwae-k", "2", "-q"]
        assert cli.main(argv) == 0
        assert "+-" not in capsys.readouterr().out
        assert cli.main(argv + ["--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        ses = {key: value for key, value in result.items() if key.endswith("_se")}
        assert len(ses) >= 3 and set(ses.values()) == {None}
