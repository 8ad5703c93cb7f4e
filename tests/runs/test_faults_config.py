"""Faults, part three: a damaged config.json is refused with one line naming it and the entry; a
missing or damaged history.csv is rebuilt from the checkpoint; a run killed before its first
checkpoint evaluates to a clear error and resumes from scratch."""
import json

import pytest

from _fault_helpers import (CKPT, EPOCHS, commands, copy_run, differences, history_rows, npz,
                            one_line_error, temp_files, vae_np)
from vae_np import cli


CONFIG_DAMAGE = [
    # (what, edit of the config dict or raw bytes, commands that must refuse, words in the line)
    ("invalid JSON", b"{oops", "all", "not valid JSON"),
    ("empty file", b"", "all", "not valid JSON"),
    ("not UTF-8", b"\xff\xfe{}", "all", "not valid JSON"),
    ("a JSON list", b"[1, 2]", "all", "expected a JSON object with a 'model' entry"),
    ("no model", lambda c: c.pop("model"), "all", "expected a JSON object with a 'model' entry"),
    ("no dataset", lambda c: c.pop("dataset"), ("train", "evaluate", "reconstruct"),
     "entry 'dataset' is missing"),
    ("no epochs", lambda c: c.pop("epochs"), ("train",), "entry 'epochs' is missing"),
    ("no seed", lambda c: c.pop("seed"), ("train",), "entry 'seed' is missing"),
    ("no optimizer", lambda c: c.pop("optimizer"), ("train",), "entry 'optimizer' is missing"),
    ("no image_shape", lambda c: c.pop("image_shape"), ("sample",),
     "entry 'image_shape' is missing"),
    ("epochs a string", lambda c: c.update(epochs="six"), "all",
     "entry 'epochs' must be an integer >= 1, got 'six'"),
    ("batch_size 0", lambda c: c.update(batch_size=0), "all", "entry 'batch_size' must be"),
    ("lr a string", lambda c: c.update(lr="x"), "all", "entry 'lr' must be a finite number > 0"),
    ("lr negative", lambda c: c.update(lr=-1e-3), "all", "entry 'lr' must be"),
    ("seed negative", lambda c: c.update(seed=-1), "all", "entry 'seed' must be"),
    ("limit a string", lambda c: c.update(limit="x"), "all", "entry 'limit' must be"),
    ("subset_seed negative", lambda c: c.update(subset_seed=-1), "all",
     "entry 'subset_seed' must be null or an integer >= 0, got -1"),
    ("unknown optimizer", lambda c: c.update(optimizer="lbfgs"), "all", "entry 'optimizer'"),
    ("unknown schedule", lambda c: c.update(schedule="x"), "all", "entry 'schedule'"),
    ("unknown lr_schedule", lambda c: c.update(lr_schedule="x"), "all", "entry 'lr_schedule'"),
    ("optimizer_options a list", lambda c: c.update(optimizer_options=[1]), "all",
     "entry 'optimizer_options' must be null or a JSON object"),
    ("unknown dataset", lambda c: c.update(dataset="cifar"), "all", "entry 'dataset' must be"),
    ("dataset a number", lambda c: c.update(dataset=3), "all", "entry 'dataset' must be"),
    ("image_shape a string", lambda c: c.update(image_shape="28x28"), "all",
     "entry 'image_shape' must be"),
    ("image_shape too small", lambda c: c.update(image_shape=[28, 29]), ("sample",),
     "image_shape [28, 29] does not hold the model's 784 features"),
    ("model hidden a string", lambda c: c["model"].update(hidden="abc"), "all",
     "'model' entry: hidden must be"),
    ("model z_dim a string", lambda c: c["model"].update(z_dim="4"), "all",
     "'model' entry: z_dim must be"),
    ("model without x_dim", lambda c: c["model"].pop("x_dim"), "all",
     "'model' entry does not describe a VAE"),
    ("model of another size", lambda c: c["model"].update(x_dim=100), "all", " 100 "),
    ("model dtype unknown", lambda c: c["model"].update(dtype="banana"), "all", "dtype"),
]


@pytest.mark.parametrize("what, edit, refusing, words", CONFIG_DAMAGE,
                         ids=[c[0] for c in CONFIG_DAMAGE])
def test_damaged_config_is_one_line_naming_it(what, edit, refusing, words, ref, tmp_path, capsys,
                                              fast_sprites):
    run = copy_run(ref, tmp_path)
    if isinstance(edit, bytes):
        (run / "config.json").write_bytes(edit)
    else:
        config = json.loads((run / "config.json").read_text())
        edit(config)
        (run / "config.json").write_text(json.dumps(config))
    refusing = commands(run) if refusing == "all" else refusing
    for command, argv in commands(run).items():
        if command in refusing:
            line = one_line_error(argv, capsys)
            assert str(run / "config.json") in line and words in line, (command, line)
    assert not temp_files(run)


def test_config_json_that_is_a_directory(ref, tmp_path, capsys, fast_sprites):
    run = copy_run(ref, tmp_path)
    (run / "config.json").unlink()
    (run / "config.json").mkdir()
    for argv in commands(run).values():
        assert "config.json is missing" in one_line_error(argv, capsys)


def test_missing_or_damaged_history_csv_is_rebuilt_from_the_checkpoint(ref, tmp_path, capsys,
                                                                        fast_sprites):
    """history.csv is an output: the checkpoint holds the history, so a resume rewrites it."""
    for damage in ("missing", "garbage"):
        run = copy_run(ref, tmp_path, damage)
        if damage == "missing":
            (run / "history.csv").unlink()
        else:
            (run / "history.csv").write_bytes(b"\xff\x00 not csv")
        assert cli.main(commands(run)["evaluate"]) == 0
        assert cli.main(["train", "--resume", str(run), "-q", "--no-figures"]) == 0
        assert f"already completed {EPOCHS} epochs" in capsys.readouterr().out
        assert history_rows(run / "history.csv") == ref["history"]


def test_no_checkpoint_yet(ref, tmp_path, capsys, fast_sprites):
    """Killed before the first epoch ended: evaluate says so; resume starts from scratch."""
    run = copy_run(ref, tmp_path)
    (run / CKPT).unlink()
    (run / "history.csv").unlink()
    line = one_line_error(commands(run)["evaluate"], capsys)
    assert f"checkpoint not found: {run / CKPT} (no epoch of this run has completed" in line
    assert vae_np(["train", "--resume", run, "-q", "--no-figures"], tmp_path)[0] == 0
    assert not differences(npz(run / CKPT), ref["final"])
