"""The learning rate ``vae-np train --lr-schedule burda2016`` actually trains with, step by step.

The schedule of Burda, Grosse & Salakhutdinov (2016, Sec. 5) runs stages i = 0, 1, 2, ... of 3^i
passes each at base_lr * 10^(-i/7). The test measures the rate from each SGD update itself,
theta_before - theta_after = lr g, so it sees the rate the optimizer used, wherever it was set;
the stages are written out here, not computed by ``presets.learning_rate``.
"""
import json

import numpy as np
import pytest

from vae_np import cli
from vae_np.optim import SGD

# the stage of epochs 1..40: 3^0 = 1 pass of stage 0, 3 of stage 1, 9 of stage 2, 27 of stage 3
STAGE = [0] + [1] * 3 + [2] * 9 + [3] * 27
BASE_LR = 0.1
EPOCHS = 14                     # into stage 3
STEPS = 2                       # --limit 8 --batch-size 4


@pytest.fixture
def used_rates(monkeypatch):
    """Every SGD step's rate, measured from its update: lr = (before - after) . g / |g|^2."""
    rates, step = [], SGD.step

    def measured(self, params, grads):
        before, g = params.copy(), grads.copy()
        step(self, params, grads)
        rates.append(float(np.dot(before - params, g) / np.dot(g, g)))
    monkeypatch.setattr(SGD, "step", measured)
    return rates


def train(out, epochs, *extra):
    argv = ["train", "--limit", "8", "--batch-size", "4", "--hidden", "4", "--z-dim", "2",
            "--optimizer", "sgd", "--lr", str(BASE_LR), "--lr-schedule", "burda2016",
            "--dtype", "float64", "--epochs", str(epochs), "--no-figures", "-q",
            "--threads", "1"]     # one thread: SGD.step receives the batch's whole gradient
    if extra:       # --resume DIR: the run's own settings
        argv = ["train", "--epochs", str(epochs), "--no-figures", "-q", *extra]
    else:
        argv += ["--out", str(out)]
    assert cli.main(argv) == 0


def expected_rates(first, last):
    """base_lr * 10^(-i/7) for every step of epochs first..last (1-based)."""
    return np.repeat([BASE_LR * 10 ** (-STAGE[e - 1] / 7) for e in range(first, last + 1)], STEPS)


def test_every_step_trains_at_its_epochs_stage_rate(fast_sprites, tmp_path, used_rates):
    """Each of the 2 steps of epochs 1..14 moves the parameters by base_lr 10^(-i/7) g, i the
    epoch's stage; history.csv's lr column says the same. Tolerance: the rate is recovered from a
    float64 difference of parameters of size ~0.1 moved by ~1e-3, a relative error ~1e-12;
    neighbouring stages differ by 10^(1/7) = 1.39."""
    run = tmp_path / "run"
    train(run, EPOCHS)
    np.testing.assert_allclose(used_rates, expected_rates(1, EPOCHS), rtol=1e-9)
    with np.load(run / "checkpoint.npz") as saved:
        np.testing.assert_allclose(saved["history.lr"], expected_rates(1, EPOCHS)[::STEPS],
                                   rtol=1e-12)


@pytest.mark.parametrize("stop", [1, 4, 5])
def test_a_resumed_run_trains_at_the_rates_of_an_uninterrupted_one(fast_sprites, tmp_path,
                                                                   used_rates, stop):
    """Stopped after epoch ``stop`` (the last epoch of stage 0, of stage 1, the first of stage 2)
    and resumed to 14, the resumed steps use the rates of their own epochs: the optimizer's
    state restored from the checkpoint holds the previous epoch's rate, which must not carry
    over."""
    run = tmp_path / "run"
    train(run, stop)
    assert json.loads((run / "config.json").read_text())["lr_schedule"] == "burda2016"
    first = len(used_rates)
    train(run, EPOCHS, "--resume", str(run))
    np.testing.assert_allclose(used_rates[:first], expected_rates(1, stop), rtol=1e-9)
    np.testing.assert_allclose(used_rates[first:], expected_rates(stop + 1, EPOCHS), rtol=1e-9)
