"""Presets resolve to the documented published settings; the learning-rate schedules; --help."""
import json

import pytest

from vae_np import cli
from vae_np.runs.presets import DEFAULTS, LR_SCHEDULES, PRESETS, learning_rate, resolve


def test_every_preset_resolves_to_complete_settings():
    assert set(PRESETS) == {"pytorch-example", "kingma2013-mnist", "kingma2013-frey", "iwae-vae",
                            "iwae-2layer"}
    for name, preset in PRESETS.items():
        settings = resolve(name)
        assert set(settings) == set(DEFAULTS)
        assert set(preset.settings) <= set(DEFAULTS)
        assert preset.source and preset.summary
        assert settings["lr_schedule"] in LR_SCHEDULES


def test_pytorch_example():
    s = resolve("pytorch-example")
    assert (s["dataset"], s["hidden"], s["z_dim"], s["activation"], s["likelihood"]) == (
        "mnist", (400,), 20, "relu", "bernoulli")
    assert (s["optimizer"], s["lr"], s["batch_size"], s["epochs"], s["k"]) == (
        "adam", 1e-3, 128, 10, 1)
    assert "105.6" in PRESETS["pytorch-example"].reference


@pytest.mark.parametrize("name, dataset, hidden, likelihood", [
    ("kingma2013-mnist", "mnist", (500,), "bernoulli"),
    ("kingma2013-frey", "frey", (200,), "gaussian-learned"),
])
def test_kingma2013(name, dataset, hidden, likelihood):
    s = resolve(name)
    assert (s["dataset"], s["hidden"], s["activation"], s["likelihood"]) == (
        dataset, hidden, "tanh", likelihood)
    assert (s["init_std"], s["optimizer"], s["batch_size"], s["k"]) == (0.01, "adagrad", 100, 1)
    assert 0.01 <= s["lr"] <= 0.02
    assert s["decoder_mean"] == ("sigmoid" if dataset == "frey" else "identity")
    assert "1312.6114" in PRESETS[name].source


def test_iwae_vae():
    s = resolve("iwae-vae")
    assert (s["dataset"], s["hidden"], s["z_dim"], s["activation"]) == (
        "dynamic-mnist", (200, 200), 50, "tanh")
    assert (s["optimizer"], s["lr"], s["batch_size"]) == ("adam", 1e-3, 20)
    assert s["optimizer_options"] == {"betas": (0.9, 0.999), "eps": 1e-4}
    assert s["lr_schedule"] == "burda2016" and s["epochs"] == 3280
    assert "86.76" in PRESETS["iwae-vae"].reference and "1509.00519" in PRESETS["iwae-vae"].source


def test_iwae_2layer_is_burdas_two_layer_model_on_the_one_layer_protocol():
    """Burda et al. (2016), Sec. 5: q(z1|x) 784-200-200 -> 100, q(z2|z1) 100-100-100 -> 50,
    p(z1|z2) 50-100-100, p(x|z1) 100-200-200; everything else (data, Adam, batch, the stage
    schedule and its 3280 passes, so the same --passes budget) is iwae-vae's."""
    s, one = resolve("iwae-2layer"), resolve("iwae-vae")
    assert (s["hidden"], s["z_dim"], s["z2_dim"], s["hidden2"]) == ((200, 200), 100, 50, (100, 100))
    assert {key for key in s if s[key] != one[key]} == {"z_dim", "z2_dim", "hidden2"}
    assert "85.33" in PRESETS["iwae-2layer"].reference and "83.89" in PRESETS["iwae-2layer"].reference
    assert "1509.00519" in PRESETS["iwae-2layer"].source


def test_burda2016_schedule():
    # stage i: 3^i passes at 1e-3 * 10^(-i/7), i = 0..7: 3280 passes in all
    expected = [1e-3 * 10 ** (-i / 7) for i in range(8) for _ in range(3 ** i)]
    assert len(expected) == 3280
    got = [learning_rate("burda2016", 1e-3, epoch) for epoch in range(1, 3281)]
    assert got == pytest.approx(expected, rel=1e-14)
    assert learning_rate("burda2016", 1e-3, 3280) == pytest.approx(1e-4)
    assert learning_rate("burda2016", 1e-3, 3281) == pytest.approx(1e-3 * 10 ** (-8 / 7))
    assert learning_rate("constant", 0.05, 1000) == 0.05
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        learning_rate("cosine", 1e-3, 1)
    with pytest.raises(ValueError, match="epoch must be >= 1"):
        learning_rate("constant", 1e-3, 0)


def test_explicit_settings_override_the_preset():
    s = resolve("pytorch-example", {"epochs": 2, "hidden": (64,), "lr": None})
    assert (s["epochs"], s["hidden"], s["lr"]) == (2, (64,), 1e-3)
    s = resolve("iwae-vae", {"optimizer_options": {"eps": 1e-3}})
    assert s["optimizer_options"] == {"betas": (0.9, 0.999), "eps": 1e-3}
    s = resolve("iwae-vae", {"optimizer": "adagrad"})   # adam's options do not carry over
    assert s["optimizer_options"] == {}
    assert resolve()["dataset"] == DEFAULTS["dataset"] == "sprites"
    assert resolve() == resolve(None, {})
    with pytest.raises(ValueError, match="--preset must be one of"):
        resolve("nope")
    with pytest.raises(ValueError, match="unknown train setting"):
        resolve(None, {"wings": 2})
    assert PRESETS["iwae-vae"].settings["optimizer_options"]["eps"] == 1e-4   # not mutated


def test_help_names_every_preset_and_its_source(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for name, preset in PRESETS.items():
        assert name in text and " ".join(preset.source.split()) in text


def test_preset_goes_into_config_and_options_override(tmp_path):
    # a preset's data set is replaced so that the test needs no download
    out = tmp_path / "run"
    assert cli.main(["train", "--preset", "kingma2013-mnist", "--dataset", "sprites", "--limit",
                     "100", "--epochs", "1", "--hidden", "12", "--out", str(out), "-q",
                     "--no-figures"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["preset"] == "kingma2013-mnist" and config["dataset"] == "sprites"
    assert config["model"]["hidden"] == [12] and config["model"]["activation"] == "tanh"
    assert config["model"]["init_std"] == 0.01 and config["optimizer"] == "adagrad"
    assert config["batch_size"] == 100 and config["epochs"] == 1


def test_frey_preset_on_real_data(shared_data, tmp_path):
    out = tmp_path / "frey"
    assert cli.main(["train", "--preset", "kingma2013-frey", "--data-dir", str(shared_data),
                     "--epochs", "3", "--out", str(out), "-q", "--no-figures"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["x_dim"] == 560 and config["image_shape"] == [28, 20]
    assert config["model"]["likelihood"] == "gaussian-learned"
