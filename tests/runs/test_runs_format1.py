"""Run directories written before config.json named its model kind (format 1) still load,
evaluate and resume, bit-exact.

``tests/runs/fixtures/format1`` holds two tiny runs written by the code of commit 9624912 (the last
before one run format), one epoch each on 40 sprites, with OPENBLAS_NUM_THREADS=1:

    vae/     train --dataset sprites --limit 40 --hidden 3 --z-dim 2 --batch-size 20 --epochs 1
                   --schedule alternating --objective iwae --k 2     (two optimizers' states)
    vqvae/   train --model vqvae --dataset sprites --limit 40 --hidden 3 --n-latents 2
                   --code-dim 2 --codebook-size 4 --batch-size 20 --epochs 1 --codebook-update ema
             then fit-prior vqvae --epochs 1 --hidden 4               (prior.npz, prior.json)

Their config.json is format 1: the VAE's has "model": {...} and no "kind", the VQ-VAE's
"model": "vqvae", "vqvae": {...}. What the old code recorded (history, the prior's history) is
compared with what the new code computes from the files it reads; a resumed run must end with
exactly the arrays of a run trained straight through by the new code (whose results are those of
the old code bit for bit: the refactoring's report).
"""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from _fault_helpers import differences, npz, vae_np
from vae_np import cli
from vae_np.runs import directory as runs

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "format1"
STRAIGHT = {
    "vae": ["train", "--dataset", "sprites", "--limit", "40", "--hidden", "3", "--z-dim", "2",
            "--batch-size", "20", "--schedule", "alternating", "--objective", "iwae", "--k", "2"],
    "vqvae": ["train", "--model", "vqvae", "--dataset", "sprites", "--limit", "40", "--hidden",
              "3", "--n-latents", "2", "--code-dim", "2", "--codebook-size", "4", "--batch-size",
              "20", "--codebook-update", "ema"],
}


def copy(name, tmp_path):
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def evaluate_json(argv, capsys):
    capsys.readouterr()
    assert cli.main([str(a) for a in argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_fixtures_are_format_1():
    """The premise: neither config names its kind, and the VQ-VAE's has its format-1 layout."""
    vae = json.loads((FIXTURES / "vae" / "config.json").read_text())
    vq = json.loads((FIXTURES / "vqvae" / "config.json").read_text())
    assert "kind" not in vae and "kind" not in vq and isinstance(vae["model"], dict)
    assert vq["model"] == "vqvae" and isinstance(vq["vqvae"], dict)
    assert vae["format_version"] == vq["format_version"] == 1


def test_format_1_runs_load_as_their_kind(tmp_path):
    from vae_np import VAE, VQVAE
    from vae_np.vq.runs import load_vq_run
    for name, cls in (("vae", VAE), ("vqvae", VQVAE)):
        config, model, epoch, history = runs.load_run(copy(name, tmp_path))
        assert config["kind"] == name and isinstance(model, cls) and epoch == 1
        saved = npz(FIXTURES / name / "checkpoint.npz")
        for key, value in model.params.items():
            np.testing.assert_array_equal(value, saved[key], err_msg=key)
        assert history["epoch"] == [1]
    model, config, history = load_vq_run(tmp_path / "vqvae")
    np.testing.assert_array_equal(model.ema_count, saved["ema.count"])  # the model's state too
    np.testing.assert_array_equal(model.ema_sum, saved["ema.sum"])
    assert history["reseeded"] == [0] and isinstance(history["reseeded"][0], int)
    with pytest.raises(ValueError, match="not a VQ-VAE run"):
        load_vq_run(tmp_path / "vae")


def test_format_1_runs_evaluate_to_what_the_old_code_recorded(tmp_path, capsys, fast_sprites):
    """evaluate in the training dtype on the run's own 40 test images (seed 0) gives the test
    numbers the old code wrote into the history: the VAE's test -ELBO terms bit for bit (the same
    computation, the same noise); the VQ-VAE's usage and perplexity exactly (integer counts), its
    -ln p(x|z_q) to 1e-6 (float32 sums in another order: history.csv sums per chunk in Python
    floats, evaluate takes a float32 mean; 40 terms of rounding 6e-8 each), and the prior's
    -ln prior of the test codes to 1e-6 (fit-prior's float32 mean against evaluate's float64
    mean of the same float32 values)."""
    vae, vq = copy("vae", tmp_path), copy("vqvae", tmp_path)
    history = npz(vae / "checkpoint.npz")
    result = evaluate_json(["evaluate", vae, "--limit", "40", "--seed", "0", "--dtype",
                            "float32", "--iwae-k", "2", "--elbo-k", "1", "--json"], capsys)
    assert result["epoch"] == 1 and result["n_examples"] == 40
    assert result["test_recon"] == float(history["history.test_recon"][0])
    assert result["test_kl"] == float(history["history.test_kl"][0])

    history = npz(vq / "checkpoint.npz")
    info = json.loads((vq / "prior.json").read_text())
    result = evaluate_json(["evaluate", vq, "--limit", "40", "--seed", "0", "--dtype",
                            "float32", "--json"], capsys)
    assert result["model"] == "vqvae" and result["prior_fitted_at_epoch"] == result["epoch"] == 1
    assert result["usage"] == float(history["history.test_usage"][0])
    assert result["perplexity"] == pytest.approx(float(history["history.test_perplexity"][0]),
                                                 rel=1e-12)
    assert result["recon"] == pytest.approx(float(history["history.test_recon"][0]), rel=1e-6)
    assert result["prior_nll"] == pytest.approx(info["history"][0]["test_nll"], rel=1e-6)
    assert result["bound"] == pytest.approx(result["recon"] + result["prior_nll"], rel=1e-12)
    for argv in (["sample", vq, "--n", "4", "--out", tmp_path / "s.png"],
                 ["reconstruct", vae, "--n", "4", "--out", tmp_path / "r.png"]):
        assert cli.main([str(a) for a in argv]) in (0, 1)     # 1: no matplotlib, said so


@pytest.mark.parametrize("name", ["vae", "vqvae"])
def test_format_1_runs_resume_bit_exact(name, tmp_path):
    """Resumed to epoch 2 by the new code, a format-1 run holds the arrays of a run the new code
    trains straight for 2 epochs (its first epoch is the old code's, from the fixture); its
    config.json is rewritten in format 2 with the same entries."""
    run = copy(name, tmp_path)
    old = json.loads((run / "config.json").read_text())
    status, _, err = vae_np(["train", "--resume", run, "--epochs", "2", "-q", "--no-figures"],
                            tmp_path)
    assert status == 0, err
    # the fixtures were trained on one thread, and their resume keeps to one
    status, _, err = vae_np([*STRAIGHT[name], "--epochs", "2", "--out", tmp_path / "straight",
                             "-q", "--no-figures", "--threads", "1"], tmp_path)
    assert status == 0, err
    resumed, straight = npz(run / "checkpoint.npz"), npz(tmp_path / "straight" / "checkpoint.npz")
    assert not differences(resumed, straight)
    assert int(resumed["epoch"]) == 2 and int(resumed["format_version"]) == 2
    new = json.loads((run / "config.json").read_text())
    assert new["kind"] == name and new["format_version"] == 2
    assert new["model"] == (old["model"] if name == "vae" else old["vqvae"])
    assert new["threads"] == 1 and "threads" not in old     # it trained on one thread
    same = ("kind", "model", "vqvae", "epochs", "format_version", "threads")
    assert {k: v for k, v in new.items() if k not in same} == \
        {k: v for k, v in old.items() if k not in same}


def test_a_checkpoint_of_another_kind_is_refused_naming_both(tmp_path, capsys):
    """The VQ-VAE fixture's checkpoint (its stored config in format 1) in the VAE fixture's
    directory: evaluate and resume refuse it in one line that names the two kinds, before any
    comparison of the model's entries."""
    run = copy("vae", tmp_path)
    shutil.copyfile(FIXTURES / "vqvae" / "checkpoint.npz", run / "checkpoint.npz")
    for argv in (["evaluate", run, "--limit", "4"], ["train", "--resume", run, "--epochs", "2"]):
        capsys.readouterr()
        assert cli.main([str(a) for a in argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "written by another model kind" in err, err
        assert "'vqvae' in the checkpoint vs 'vae' in" in err
