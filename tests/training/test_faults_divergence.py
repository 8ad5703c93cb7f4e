"""Faults, part five: a diverging run says which epoch, step and loss, and keeps the last good
checkpoint (or, in the first epoch, writes none)."""
import json
import os

from _fault_helpers import ARGV, CKPT, commands
from vae_np import cli
from vae_np.runs import directory as runs


def test_divergence_in_the_first_epoch_leaves_no_checkpoint(tmp_path, capsys, fast_sprites):
    run = tmp_path / "run"
    status = cli.main([*ARGV, "--epochs", "2", "--optimizer", "sgd", "--lr", "1e30",
                       "--out", str(run)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1
    assert "training diverged: non-finite loss or gradient at epoch 1, step " in err[0]
    assert "(loss = " in err[0] and "Try a lower learning rate" in err[0]
    assert f"No epoch completed, so {run} holds no checkpoint" in err[0]
    assert sorted(os.listdir(run)) == ["config.json"]


def test_divergence_in_a_later_epoch_keeps_the_last_good_checkpoint(ref, tmp_path, capsys,
                                                                     fast_sprites):
    """Two good epochs, then the learning rate in config.json is raised to 1e30 (the only way to
    change it for a --resume): epoch 3 diverges, the error names epoch 3 (not the 1 that fit
    counts internally), its step and loss, and the checkpoint of epoch 2 stays as it was."""
    run = tmp_path / "run"
    assert cli.main([*ARGV, "--epochs", "2", "--optimizer", "sgd", "--lr", "0.01",
                     "--out", str(run)]) == 0
    before = (run / CKPT).read_bytes(), (run / "history.csv").read_bytes()
    config = json.loads((run / "config.json").read_text())
    config["lr"] = 1e30
    (run / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(run), "--epochs", "4", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert ("training diverged: non-finite loss or gradient at epoch 3, step " in err[0]
            and "(loss = " in err[0] and "Try a lower learning rate" in err[0]
            and f"The checkpoint of epoch 2 is kept in {run}" in err[0]), err[0]
    assert ((run / CKPT).read_bytes(), (run / "history.csv").read_bytes()) == before
    assert int(runs.load_checkpoint(run / CKPT)["epoch"]) == 2
    assert cli.main(commands(run)["sample"]) == 0                 # and it is usable
