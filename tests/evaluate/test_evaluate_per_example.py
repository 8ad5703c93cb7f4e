"""``evaluate --per-example FILE``: every image's values, for paired comparisons between runs.

What a user relies on: the file names the images by their rows in the split, its arrays average
to the means the JSON reports, and the values of a random subset are those rows of a whole-split
evaluation (each image's noise is keyed by its row), so two runs evaluated on the same images
can be differenced image by image. Checked for a VAE run and a VQ-VAE run with its prior.
"""
import json

import numpy as np
import pytest

from vae_np import cli

TINY = ["--dataset", "sprites", "--hidden", "8", "--batch-size", "20", "-q", "--no-figures",
        "--limit", "40", "--epochs", "1"]
VQ = ["--model", "vqvae", "--n-latents", "2", "--code-dim", "2", "--codebook-size", "4"]
EVAL = ["--iwae-k", "3", "--elbo-k", "2", "-q"]
N_TEST = 2000                                   # the sprites test split


def evaluate(run, tmp_path, capsys, name, *extra):
    path = tmp_path / f"{name}.npz"
    capsys.readouterr()
    assert cli.main(["evaluate", str(run), *EVAL, "--json", "--per-example", str(path),
                     *extra]) == 0
    return json.loads(capsys.readouterr().out), dict(np.load(path, allow_pickle=False))


@pytest.mark.parametrize("kind", ["vae", "vqvae"])
def test_per_example_values_are_the_rows_of_the_whole_split(kind, fast_sprites, tmp_path,
                                                            capsys):
    run = tmp_path / "run"
    extra = VQ if kind == "vqvae" else ["--z-dim", "2"]
    assert cli.main(["train", *TINY, *extra, "--out", str(run)]) == 0
    if kind == "vqvae":
        assert cli.main(["fit-prior", str(run), "--epochs", "1", "-q", "--no-figures"]) == 0
    means = (("recon", "prior_nll", "bound") if kind == "vqvae" else
             ("test_loss", "test_recon", "test_kl", "test_loss_avg", "iwae_nll"))
    whole_json, whole = evaluate(run, tmp_path, capsys, "whole", "--seed", "3")
    part_json, part = evaluate(run, tmp_path, capsys, "part", "--limit", "60", "--seed", "3")
    np.testing.assert_array_equal(whole["rows"], np.arange(N_TEST))
    assert len(part["rows"]) == 60 and len(set(part["rows"])) == 60
    assert sorted(part) == sorted(whole) == sorted(("rows",) + means)
    for name in means:
        for result, arrays in ((whole_json, whole), (part_json, part)):
            assert arrays[name].shape == (len(arrays["rows"]),)
            assert arrays[name].mean() == pytest.approx(result[name], rel=1e-12), name
            se = arrays[name].std(ddof=1) / np.sqrt(len(arrays[name]))
            assert result[f"{name}_se"] == pytest.approx(se, rel=1e-12), name
        # the subset's images carry the values of the same images in the whole split
        np.testing.assert_allclose(part[name], whole[name][part["rows"]], rtol=1e-12,
                                   err_msg=name)


def test_a_bad_per_example_path_is_one_line(fast_sprites, tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", *TINY, "--z-dim", "2", "--out", str(run)]) == 0
    capsys.readouterr()
    status = cli.main(["evaluate", str(run), *EVAL, "--per-example",
                       str(tmp_path / "no" / "such" / "dir" / "x.npz")])
    err = capsys.readouterr().err
    assert status == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
