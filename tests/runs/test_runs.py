"""The run directory: config, atomic checkpoints (round trip, validation, corruption), history."""
import json
import os

import numpy as np
import pytest

from vae_np import VAE, Adam, fit
from vae_np.runs import directory as runs
from vae_np.optim import Adagrad

HISTORY = {c: [1.0, 2.0] for c in runs.HISTORY_COLUMNS} | {"epoch": [1, 2]}
CONFIG = dict(model=dict(x_dim=12, hidden=[5], z_dim=2, dtype="float32", seed=3),
              optimizer="adam", lr=1e-3, optimizer_options={}, schedule="joint")


def trained(schedule="joint"):
    """A tiny model, its optimizer(s) and training rng, after a few steps."""
    config = dict(CONFIG, schedule=schedule)
    model = runs.build_model(config)
    optimizers = runs.build_optimizers(config)
    rng = np.random.default_rng([3, 1])
    x = np.random.default_rng(0).integers(0, 2, size=(40, 12)).astype(np.uint8) * 255
    fit(model, x, optimizers if len(optimizers) > 1 else optimizers[0], epochs=2,
        batch_size=8, rng=rng, schedule=schedule)
    return config, model, optimizers, rng


@pytest.mark.parametrize("schedule", ["joint", "alternating"])
def test_checkpoint_round_trip(tmp_path, schedule):
    config, model, optimizers, rng = trained(schedule)
    path = runs.save_checkpoint(tmp_path, model, optimizers, rng, 2, HISTORY, config)
    assert path == tmp_path / "checkpoint.npz"
    with np.load(path, allow_pickle=False) as npz:      # the documented, pickle-free format
        for name, value in model.params.items():
            np.testing.assert_array_equal(npz[name], value)
        assert int(npz["epoch"]) == 2
        assert json.loads(str(npz["config"]))["schedule"] == schedule
    arrays = runs.load_checkpoint(path)
    model2, optimizers2 = runs.build_model(config), runs.build_optimizers(config)
    runs.restore_model(arrays, model2, path)
    runs.restore_optimizers(arrays, optimizers2, model2, path)
    np.testing.assert_array_equal(model2.flat, model.flat)
    for a, b in zip(optimizers, optimizers2):
        assert (a.t, a.lr, a.betas, a.eps) == (b.t, b.lr, b.betas, b.eps)
        for key in a.buffers:
            np.testing.assert_array_equal(a.state[key], b.state[key])
    rng2 = runs.restore_rng(arrays, path)
    np.testing.assert_array_equal(rng2.random(5), rng.random(5))
    assert runs.read_history(arrays) == HISTORY
    prefixes = {"joint": ["optim."], "alternating": ["optim.encoder.", "optim.decoder."]}
    for prefix in prefixes[schedule]:
        assert prefix + "m" in arrays and prefix + "t" in arrays


def test_restore_into_a_float64_model(tmp_path):
    config, model, optimizers, rng = trained()
    runs.save_checkpoint(tmp_path, model, optimizers, rng, 1, HISTORY, config)
    runs.write_config(tmp_path, config)
    config2, model64, epoch, history = runs.load_run(tmp_path, dtype="float64")
    assert model64.dtype == np.float64 and epoch == 1 and history == HISTORY
    np.testing.assert_array_equal(model64.flat, model.flat.astype(np.float64))


def test_failed_write_keeps_the_old_checkpoint_and_leaves_no_temp_file(tmp_path, monkeypatch):
    config, model, optimizers, rng = trained()
    path = runs.save_checkpoint(tmp_path, model, optimizers, rng, 1, HISTORY, config)
    before = path.read_bytes()

    def crash(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        runs.save_checkpoint(tmp_path, model, optimizers, rng, 2, HISTORY, config)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.npz"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_corrupt_checkpoint_is_a_clear_error_naming_the_file(tmp_path, damage):
    config, model, optimizers, rng = trained()
    path = runs.save_checkpoint(tmp_path, model, optimizers, rng, 1, HISTORY, config)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[:len(data) // 2]
    elif damage == "garbage":
        data = bytearray(b"not a checkpoint at all")
    else:   # flip bytes inside the first stored array: the zip CRC check fails
        data[200:220] = bytes(255 - b for b in data[200:220])
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"{path}.*corrupt or truncated"):
        runs.load_checkpoint(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        runs.load_checkpoint(tmp_path / "checkpoint.npz")


def test_missing_parameter_and_shape_mismatch_name_file_and_difference(tmp_path):
    config, model, optimizers, rng = trained()
    path = runs.save_checkpoint(tmp_path, model, optimizers, rng, 1, HISTORY, config)
    arrays = runs.load_checkpoint(path)
    del arrays["decoder.out.b"]
    with pytest.raises(ValueError, match=r"checkpoint.npz: checkpoint is missing .*decoder.out.b"):
        runs.restore_model(arrays, runs.build_model(config), path)
    wider = dict(config, model=dict(config["model"], hidden=[6]))
    with pytest.raises(ValueError, match=r"encoder.0.W has shape \(12, 5\) in the checkpoint but "
                                         r"\(12, 6\)"):
        runs.restore_model(runs.load_checkpoint(path), runs.build_model(wider), path)
    with pytest.raises(ValueError, match=r"optim.m has shape"):
        model6 = runs.build_model(wider)
        runs.restore_optimizers(runs.load_checkpoint(path), runs.build_optimizers(wider),
                                model6, path)
    arrays = runs.load_checkpoint(path)
    del arrays["optim.t"]
    with pytest.raises(ValueError, match=r"checkpoint.npz: optim.\* optimizer state is missing"):
        runs.restore_optimizers(arrays, runs.build_optimizers(config), model, path)
    del arrays["rng_state"]
    with pytest.raises(ValueError, match="rng_state"):
        runs.restore_rng(arrays, path)


def test_config_round_trip_and_errors(tmp_path):
    runs.write_config(tmp_path, CONFIG)         # a config without "kind" (format 1): a VAE's
    assert runs.read_config(tmp_path) == dict(json.loads(json.dumps(CONFIG)), kind="vae")
    with pytest.raises(FileNotFoundError, match="run directory not found"):
        runs.read_config(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        runs.read_config(tmp_path / "empty")
    (tmp_path / "empty" / "config.json").write_text("{broken")
    with pytest.raises(ValueError, match="config.json: not valid JSON"):
        runs.read_config(tmp_path / "empty")
    with pytest.raises(ValueError, match="does not describe a VAE"):
        runs.build_model({"model": {"x_dim": 3, "wings": 2}})


def test_build_optimizers_from_config():
    (adam,) = runs.build_optimizers(dict(CONFIG, optimizer_options={"betas": [0.8, 0.9],
                                                                    "eps": 1e-4}))
    assert isinstance(adam, Adam) and adam.betas == (0.8, 0.9) and adam.eps == 1e-4
    enc, dec = runs.build_optimizers(dict(CONFIG, optimizer="adagrad", lr=0.02,
                                          schedule="alternating"))
    assert isinstance(enc, Adagrad) and isinstance(dec, Adagrad) and enc is not dec
    with pytest.raises(ValueError, match="optimizer must be one of"):
        runs.build_optimizers(dict(CONFIG, optimizer="lbfgs"))
    with pytest.raises(ValueError, match="does not accept options"):
        runs.build_optimizers(dict(CONFIG, optimizer="sgd", optimizer_options={"eps": 1.0}))


def test_history_csv_round_trip(tmp_path):
    history = {c: [0.1 * i + j for i in range(3)] for j, c in enumerate(runs.HISTORY_COLUMNS)}
    history["epoch"] = [1, 2, 3]
    path = runs.write_history_csv(tmp_path, history)
    assert path.read_text().splitlines()[0] == ",".join(runs.HISTORY_COLUMNS)
    assert runs.read_history_csv(path) == history       # repr() of a float round-trips exactly


def test_files_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = runs.write_config(tmp_path, CONFIG)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_model_parameters_all_saved_for_every_likelihood(tmp_path):
    model = VAE(10, (4, 3), 2, likelihood="gaussian-learned", dtype=np.float32)
    optimizer = Adam()
    runs.save_checkpoint(tmp_path, model, (optimizer,), np.random.default_rng(0), 0,
                         {c: [] for c in runs.HISTORY_COLUMNS})
    arrays = runs.load_checkpoint(tmp_path / "checkpoint.npz")
    assert set(model.params) <= set(arrays) and "decoder.logsigma.W" in arrays
    assert runs.read_history(arrays)["epoch"] == []
