"""``vae-np train --objective iwae``: recorded in config.json, honoured by --resume, bit for bit."""
import json

import numpy as np

from vae_np import cli

TINY = ["--limit", "200", "--hidden", "16", "--z-dim", "2", "--batch-size", "50", "-q",
        "--no-figures", "--k", "3"]


def train(tmp_path, name, *extra):
    out = tmp_path / name
    assert cli.main(["train", *TINY, "--out", str(out), *extra]) == 0
    return out


def arrays(run_dir):
    with np.load(run_dir / "checkpoint.npz", allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files if key not in ("config", "history.seconds")}


def test_the_objective_is_recorded_and_resumed_bit_for_bit(tmp_path):
    whole = train(tmp_path, "whole", "--epochs", "3", "--objective", "iwae")
    part = train(tmp_path, "part", "--epochs", "1", "--objective", "iwae")
    assert json.loads((part / "config.json").read_text())["objective"] == "iwae"
    assert cli.main(["train", "--resume", str(part), "--epochs", "3", "-q", "--no-figures"]) == 0
    a, b = arrays(whole), arrays(part)
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    elbo = arrays(train(tmp_path, "elbo", "--epochs", "3"))
    assert not np.array_equal(elbo["encoder.mu.W"], a["encoder.mu.W"])   # it did change training


def test_a_run_from_before_the_objective_resumes_with_the_elbo(tmp_path):
    old = train(tmp_path, "old", "--epochs", "1")
    config = json.loads((old / "config.json").read_text())
    del config["objective"]
    (old / "config.json").write_text(json.dumps(config))
    new = train(tmp_path, "new", "--epochs", "1")
    assert cli.main(["train", "--resume", str(old), "--epochs", "2", "-q", "--no-figures"]) == 0
    assert cli.main(["train", "--resume", str(new), "--epochs", "2", "-q", "--no-figures"]) == 0
    a, b = arrays(old), arrays(new)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_the_epoch_line_names_the_bound(tmp_path, capsys):
    out = tmp_path / "r"
    assert cli.main(["train", *TINY[:-4], "--k", "3", "--epochs", "1", "--no-figures",
                     "--objective", "iwae", "--out", str(out)]) == 0
    line = [s for s in capsys.readouterr().out.splitlines() if s.startswith("epoch 1/1")][0]
    assert "train -L_3 " in line and "kl" not in line and "test -ELBO " in line


def test_a_bad_objective_in_config_is_named(tmp_path, capsys):
    run = train(tmp_path, "r", "--epochs", "1")
    config = json.loads((run / "config.json").read_text())
    config["objective"] = "iwea"
    (run / "config.json").write_text(json.dumps(config))
    assert cli.main(["train", "--resume", str(run), "--epochs", "2", "-q"]) == 2
    assert "entry 'objective' must be one of" in capsys.readouterr().err
