"""Every command that uses part of a split takes a seeded uniform random subset and says so:
``train --limit`` (the images it trains on and the test images of its history), ``evaluate
--limit`` (the report, the JSON and the numbers), ``fit-prior`` (the run's own images, or part of
them), ``reconstruct --n``, for a VAE and a VQ-VAE run. A run made before random subsets (a
config.json with "limit" and no "subset_seed") keeps its first N images.

What a command used is observed from outside: the arrays reaching the training function, the
prior's fit and the figure (wrapped, and passed on unchanged), and the numbers a command prints,
recomputed here from the rows of the data set.
"""
import json
import shutil

import numpy as np
import pytest

from vae_np import cli
from vae_np.cli import train as cli_train, vq as cli_vq
from vae_np.figures import runs as figures
from vae_np.runs import directory as runs
from vae_np.data import make_sprites, subset_rows
from vae_np.evaluate import elbo
from vae_np.vq.prior import encode_all
from vae_np.vq.runs import load_vq_run

TINY = ["--dataset", "sprites", "--hidden", "8", "--batch-size", "20", "-q", "--no-figures"]
VQ = ["--model", "vqvae", "--n-latents", "2", "--code-dim", "2", "--codebook-size", "4"]
N_TRAIN, N_TEST = 20000, 2000          # the sprites splits


@pytest.fixture(scope="module")
def sprites():
    return make_sprites()


def spy(monkeypatch, module, name, seen):
    """Replace ``module.name`` by a wrapper that records its second argument (the data)."""
    real = getattr(module, name)

    def wrapper(model, x, *args, **kwargs):
        seen.append(np.array(x))
        return real(model, x, *args, **kwargs)
    monkeypatch.setattr(module, name, wrapper)


def run_json(argv, capsys):
    assert cli.main([str(a) for a in argv]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("seed", [0, 3])
def test_train_limit_trains_and_tests_on_random_subsets(seed, sprites, fast_sprites, tmp_path,
                                                        monkeypatch, capsys):
    """The images train trains on are, row for row, those of the subset of its --seed (not the
    first 60); its printed line and config.json say so; and its history's test -ELBO is that of
    evaluate on the same subset (same seed and size, the model's own float32), to the bit."""
    seen = []
    spy(monkeypatch, cli_train, "fit", seen)
    run = tmp_path / "run"
    assert cli.main(["train", *TINY, "--z-dim", "2", "--limit", "60", "--epochs", "2",
                     "--seed", str(seed), "--out", str(run)]) == 0
    out = capsys.readouterr().out
    rows = subset_rows(N_TRAIN, 60, seed, "train")
    assert len(seen) == 2 and not np.array_equal(rows, np.arange(60))
    for x in seen:
        np.testing.assert_array_equal(x, sprites.x_train[rows])
    assert (f"on sprites: 60 of {N_TRAIN} train / 60 of {N_TEST} test images, random subsets, "
            f"seed {seed}") in out
    config = json.loads((run / "config.json").read_text())
    assert config["limit"] == 60 and config["subset_seed"] == seed
    result = run_json(["evaluate", run, "--limit", 60, "--seed", seed, "--dtype", "float32",
                       "--elbo-k", 1, "--iwae-k", 1, "--json"], capsys)
    history = runs.read_history(np.load(run / "checkpoint.npz"))
    assert result["test_loss"] == history["test_loss"][-1]
    assert result["n_examples"] == 60 and result["subset_seed"] == seed


def test_a_run_from_before_random_subsets_keeps_its_first_images(sprites, fast_sprites, tmp_path,
                                                                 monkeypatch, capsys):
    """config.json with "limit" and no "subset_seed" (runs made before random subsets): a resume
    trains on the first N training images and tests on the first N test images, as the run did,
    and says so."""
    run = tmp_path / "run"
    assert cli.main(["train", *TINY, "--z-dim", "2", "--limit", "40", "--epochs", "1",
                     "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    del config["subset_seed"]
    (run / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    seen = []
    spy(monkeypatch, cli_train, "fit", seen)
    assert cli.main(["train", "--resume", str(run), "--epochs", "2", "-q", "--no-figures"]) == 0
    words = " ".join(capsys.readouterr().out.split())      # the report wraps at 100 columns
    assert "the first rows of each split (a run made before random subsets)" in words
    np.testing.assert_array_equal(seen[0], sprites.x_train[:40])
    _, model, _, history = runs.load_run(run)
    assert history["test_loss"][-1] == elbo(model, sprites.x_test[:40], k=1, seed=0).loss


def test_evaluate_limit_reports_the_subset_and_its_numbers(sprites, fast_sprites, tmp_path,
                                                           capsys):
    """evaluate --limit 50 --seed s: the report and the JSON name the subset (50 of 2000, random,
    seed s), and its -ELBO is the mean over exactly those rows of the whole test split's
    per-example values (library, float64); without --limit, all 2000."""
    run = tmp_path / "run"
    assert cli.main(["train", *TINY, "--z-dim", "2", "--limit", "40", "--epochs", "1",
                     "--out", str(run)]) == 0
    _, model, _, _ = runs.load_run(run, dtype="float64")
    for seed in (0, 2):
        whole = elbo(model, sprites.x_test, k=1, seed=seed).per_example
        capsys.readouterr()
        result = run_json(["evaluate", run, "--limit", 50, "--seed", seed, "--iwae-k", 2,
                           "--elbo-k", 2, "--json"], capsys)
        rows = subset_rows(N_TEST, 50, seed, "test")
        assert result["test_loss"] == pytest.approx(whole[rows].mean(), rel=1e-13)
        assert (result["n_examples"], result["n_split"], result["subset"],
                result["subset_seed"]) == (50, N_TEST, "random", seed)
        assert result["test_loss"] != pytest.approx(whole[:50].mean(), rel=1e-6)
    assert cli.main(["evaluate", str(run), "--limit", "50", "--iwae-k", "2", "--elbo-k", "2"]) == 0
    assert f"sprites, 50 of {N_TEST} test images, random subset, seed 0" in capsys.readouterr().out
    result = run_json(["evaluate", run, "--iwae-k", 1, "--elbo-k", 1, "--json"], capsys)
    assert (result["n_examples"], result["subset"], result["subset_seed"]) == (N_TEST, "all", None)


@pytest.mark.parametrize("vq", [False, True])
def test_reconstruct_shows_a_random_subset(vq, sprites, fast_sprites, tmp_path, monkeypatch,
                                           capsys):
    """reconstruct --n 8 --seed s draws test images of the subset of seed s, not the first 8."""
    run = tmp_path / "run"
    extra = VQ if vq else ["--z-dim", "2"]
    assert cli.main(["train", *TINY, *extra, "--limit", "40", "--epochs", "1",
                     "--out", str(run)]) == 0
    shown = []
    monkeypatch.setattr(figures, "reconstructions",
                        lambda path, x, x_rec, *a, **k: shown.append(x) or path)
    for seed in (0, 1):
        assert cli.main(["reconstruct", str(run), "--n", "8", "--seed", str(seed)]) == 0
        rows = subset_rows(N_TEST, 8, seed, "test")
        np.testing.assert_array_equal(shown[-1], sprites.x_test[rows] / 255)
    assert not np.array_equal(shown[0], shown[1])


def test_vq_train_and_fit_prior_use_the_runs_subset(sprites, fast_sprites, tmp_path,
                                                    monkeypatch, capsys):
    """A VQ run trains on the subset of its seed; fit-prior fits the codes of those same training
    images by default, and with a smaller --limit the codes of a part of them; prior.json and the
    printed line record the subset."""
    seen, codes_seen = [], []
    spy(monkeypatch, cli_train, "fit", seen)
    run = tmp_path / "run"
    assert cli.main(["train", *TINY, *VQ, "--limit", "60", "--epochs", "1", "--seed", "2",
                     "--out", str(run)]) == 0
    rows = subset_rows(N_TRAIN, 60, 2, "train")
    np.testing.assert_array_equal(seen[0], sprites.x_train[rows])
    real = cli_vq.fit_prior
    monkeypatch.setattr(cli_vq, "fit_prior",
                        lambda prior, codes, *a: codes_seen.append(codes) or real(prior, codes, *a))
    model, _, _ = load_vq_run(run)
    for extra, n in (([], 60), (["--limit", "25"], 25)):
        shutil.rmtree(run / "figures", ignore_errors=True)
        capsys.readouterr()
        assert cli.main(["fit-prior", str(run), "--epochs", "1", "--hidden", "4", "-q",
                         "--no-figures", *extra]) == 0
        assert f"{n} of {N_TRAIN} train images, random subset, seed 2" in capsys.readouterr().out
        part = subset_rows(N_TRAIN, n, 2, "train")
        assert set(part) <= set(rows)
        np.testing.assert_array_equal(codes_seen[-1], encode_all(model, sprites.x_train[part]))
        fit = json.loads((run / "prior.json").read_text())["fit"]
        assert (fit["n_codes"], fit["n_split"], fit["subset"], fit["subset_seed"]) == \
            (n, N_TRAIN, "random", 2)
