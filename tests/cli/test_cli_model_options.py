"""The richer models and the ELBO's KL options from the command line: ``train --preset
iwae-2layer`` (with small --hidden/--z-dim/--z2-dim/--hidden2 overrides), ``--prior vamp
--pseudo-inputs K``, ``--warmup-epochs N`` and ``--free-bits LAMBDA``.

What a user relies on, each through ``vae_np.cli.main`` on the sprites (100 images, tiny nets):

- every such run, stopped after one epoch and resumed to three, holds exactly the arrays of the
  run trained straight for three (parameters, Adam, rng, history), and the resume rebuilds the
  same model (its printed description); a run killed inside an epoch resumes to them too;
- KL warm-up's first epoch (beta = 0) trains the reconstruction alone: its parameters are those
  of a run whose free bits floor every KL group (no KL gradient either), and not the plain
  ELBO's; the epoch lines name beta and the loss minimised, the history keeps the -ELBO;
- ``evaluate`` reports the active units of both layers of a two-layer run, the variances of
  z2's units being those of q(z2|z1)'s mean at z1's mean, written out here from the parameters;
  a one-layer run reports one layer;
- the figures, ``sample`` and ``reconstruct`` work on a two-layer and a VampPrior run;
- a warm-up that does not end before the last epoch is a warning naming both numbers.

Bad values (one line, exit 2) are rows of ``tests/cli/table_cli.py``.
"""
import json

import numpy as np
import pytest

from _fault_helpers import KILLED, child, differences, history_rows, npz, vae_np
from conftest import _cached_load_dataset
from vae_np import cli, data
from vae_np.runs import directory as runs

TINY = ["--dataset", "sprites", "--limit", "100", "--hidden", "16", "--z-dim", "3",
        "--batch-size", "25", "-q"]
TWO = ["--preset", "iwae-2layer", "--z2-dim", "2", "--hidden2", "8"]
RUNS = {
    "two-layer": TWO,
    "two-layer-iwae": TWO + ["--objective", "iwae", "--k", "3"],
    "vamp": ["--prior", "vamp", "--pseudo-inputs", "5"],
    "two-layer-vamp-top": TWO + ["--prior", "vamp", "--pseudo-inputs", "4"],
    "warmup": ["--warmup-epochs", "2"],
    "free-bits": ["--free-bits", "0.5"],
}
FIGURES = {"reconstructions.png", "samples.png", "loss.png", "traversals.png",
           "latent_means.png", "latent_factors.png"}


def described(text):
    """The model a train command printed ("training VAE(...)" or "resuming VAE(...)", wrapped)."""
    return " ".join(text.split("\n  on ")[0].split()[1:])


def main(*argv):
    """cli.main(argv); (status, stdout + stderr) with the output captured."""
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        status = cli.main([str(a) for a in argv])
    return status, out.getvalue()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Each run of RUNS trained straight for 3 epochs (with figures), and stopped after 1 and
    resumed to 3; name -> (straight, resumed, straight's output, the resume's output)."""
    base = tmp_path_factory.mktemp("runs")
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(data, "load_dataset", _cached_load_dataset)
        for name, extra in RUNS.items():
            straight, part = base / f"{name}-straight", base / f"{name}-part"
            status, text = main("train", *TINY, *extra, "--epochs", 3, "--out", straight)
            assert status == 0, text
            status, first = main("train", *TINY, *extra, "--epochs", 1, "--no-figures",
                                 "--out", part)
            assert status == 0, first
            status, resumed = main("train", "--resume", part, "--epochs", 3, "-q",
                                   "--no-figures")
            assert status == 0, resumed
            out[name] = (straight, part, text, resumed)
    return out


@pytest.mark.parametrize("name", list(RUNS))
def test_a_run_resumed_after_one_epoch_reaches_the_straight_runs_arrays(trained, name):
    straight, resumed, text, again = trained[name]
    a, b = npz(straight / "checkpoint.npz"), npz(resumed / "checkpoint.npz")
    assert int(a["epoch"]) == int(b["epoch"]) == 3
    assert not differences(a, b)
    assert history_rows(straight / "history.csv") == history_rows(resumed / "history.csv")
    assert described(again) == described(text)            # the same model
    config = json.loads((resumed / "config.json").read_text())
    assert config["model"] == json.loads((straight / "config.json").read_text())["model"]


def test_the_runs_are_the_models_asked_for(trained):
    """The description each run prints: the second layer, its widths, the top prior and its
    pseudo-inputs, the VampPrior over a one-layer model."""
    first = {name: described(trained[name][2]) for name in RUNS}
    assert "two stochastic layers (z2 2, 8, p(z2) N(0, I), analytic top KL)" in first["two-layer"]
    assert ("two stochastic layers (z2 2, 8, p(z2) VampPrior (4 pseudo-inputs), sampled top KL)"
            in first["two-layer-vamp-top"])
    assert "VAE(784-16-3, relu, bernoulli, sigma=logvar, VampPrior (5 pseudo-inputs)" in (
        first["vamp"])
    assert "-L_3" in trained["two-layer-iwae"][2]                 # trained on the bound
    model = runs.load_run(trained["vamp"][0])[1]
    assert model.params["prior.u"].shape == (5, 784)


# --------------------------------------------------------------------------- kill, then resume
KILL_ARGV = ["train", *TINY, "--no-figures", "--epochs", "3"]


@pytest.mark.parametrize("extra", [TWO + ["--prior", "vamp", "--pseudo-inputs", "4",
                                          "--warmup-epochs", "2"],
                                   ["--prior", "vamp", "--pseudo-inputs", "3", "--free-bits",
                                    "0.2"]], ids=["two-layer-vamp-warmup", "vamp-free-bits"])
def test_a_run_killed_inside_an_epoch_resumes_bit_for_bit(extra, tmp_path):
    """SIGKILLed after the 6th update (epoch 2 of 4 steps an epoch): the checkpoint of epoch 1
    is on disk, and --resume (a fresh process) ends with the uninterrupted run's arrays."""
    ref, run = tmp_path / "ref", tmp_path / "run"
    assert vae_np([*KILL_ARGV, *extra, "--out", ref], tmp_path)[0] == 0
    status, _, _ = child(dict(kind="step", n=6), [*KILL_ARGV, *extra, "--out", run], tmp_path)
    assert status == KILLED
    assert int(npz(run / "checkpoint.npz")["epoch"]) == 1
    status, out, err = vae_np(["train", "--resume", run, "-q", "--no-figures"], tmp_path)
    assert status == 0 and "after epoch 1" in out, err
    assert not differences(npz(run / "checkpoint.npz"), npz(ref / "checkpoint.npz"))
    assert history_rows(run / "history.csv") == history_rows(ref / "history.csv")


# --------------------------------------------------------------------------- warm-up, free bits
def params_after_one_epoch(tmp_path, name, *extra):
    run = tmp_path / name
    status, text = main("train", *TINY, "--epochs", 1, "--no-figures", "--out", run, *extra)
    assert status == 0, text
    saved = npz(run / "checkpoint.npz")
    return {key: saved[key] for key in runs.load_run(run)[1].params}


def test_warmup_and_free_bits_change_what_the_first_epoch_trains(tmp_path, fast_sprites):
    """KL warm-up's beta is 0 in epoch 1 whatever N: runs with N = 2 and N = 5 take the same
    steps, and not the plain ELBO's. Free bits with a floor that holds for every group (1e6 or
    1e9 nats) send no KL gradient: the two floors take the same steps, again not the ELBO's.
    (Warm-up and free bits are not compared with each other: a threaded fit may add a batch's
    terms in another order for one than for the other.)"""
    plain = params_after_one_epoch(tmp_path, "plain")
    for a, b in ((["--warmup-epochs", "2"], ["--warmup-epochs", "5"]),
                 (["--free-bits", "1e6"], ["--free-bits", "1e9"])):
        first, second = (params_after_one_epoch(tmp_path, "-".join(o), *o) for o in (a, b))
        for name in first:
            np.testing.assert_array_equal(first[name], second[name], err_msg=f"{a} {name}")
        assert max(np.abs(first[n] - plain[n]).max() for n in first) > 1e-6, a


def test_the_epoch_lines_name_beta_and_the_history_keeps_the_elbo(trained):
    straight, _, text, _ = trained["warmup"]
    lines = [line for line in text.splitlines() if line.startswith("epoch ")]
    for line, beta in zip(lines, ("beta 0: ", "beta 0.5: ", "beta 1: ")):   # N = 2: (e - 1) / 2
        assert beta in line, line
    assert "free bits: " in [line for line in trained["free-bits"][2].splitlines()
                             if line.startswith("epoch 1/3")][0]
    for name in ("warmup", "free-bits"):
        h = npz(trained[name][0] / "checkpoint.npz")
        np.testing.assert_allclose(h["history.train_loss"],
                                   h["history.train_recon"] + h["history.train_kl"], rtol=1e-12)
    # what was minimised in epoch 1 is the reconstruction alone (beta = 0), below the -ELBO
    minimised = float(lines[0].split("beta 0: ")[1].split(")")[0])
    h = npz(straight / "checkpoint.npz")
    assert minimised == pytest.approx(h["history.train_recon"][0], abs=0.006)   # 2 decimals


@pytest.mark.parametrize("warmup, epochs, warned", [(3, 2, True), (2, 2, True), (1, 2, False)])
def test_a_warmup_that_does_not_end_before_the_last_epoch_is_a_warning(warmup, epochs, warned,
                                                                       tmp_path, fast_sprites,
                                                                       capsys):
    status = cli.main(["train", *TINY, "--no-figures", "--warmup-epochs", str(warmup),
                       "--epochs", str(epochs), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert status == 0
    warnings = [line for line in err.splitlines() if "warning" in line]
    if warned:
        assert len(warnings) == 1 and warnings[0].startswith("vae-np: warning: ")
        assert f"--warmup-epochs {warmup}" in warnings[0] and f"--epochs {epochs}" in warnings[0]
        assert f"beta never reaches 1 (at most {epochs - 1}/{warmup})" in warnings[0]
    else:
        assert not warnings, err


# --------------------------------------------------------------------------- evaluate
def evaluate(run, tmp_path, *extra):
    status, text = main("evaluate", run, "--limit", "40", "--iwae-k", "4", "--elbo-k", "2", "-q",
                        *extra)
    assert status == 0, text
    return text


def test_evaluate_reports_the_active_units_of_both_layers(trained, tmp_path, fast_sprites):
    """A_j = Var_x of a unit's mean: z1's from q(z1|x), z2's from q(z2|z1) at z1 = its mean,
    written out here from the checkpoint's parameters (tanh layers, then the mu head)."""
    run = trained["two-layer"][0]
    probe = json.loads(evaluate(run, tmp_path, "--json", "--per-example", tmp_path / "p.npz"))
    rows = np.load(tmp_path / "p.npz")["rows"]
    model = runs.load_run(run, dtype="float64")[1]
    x = data.load_dataset("sprites").x_test[rows] / 255.0
    mu1 = model.encode(x)[0]
    p = model.params
    h = mu1
    for i in range(len(model.hidden2)):
        h = np.tanh(h @ p[f"q_z2.{i}.W"] + p[f"q_z2.{i}.b"])
    mu2 = h @ p["q_z2.mu.W"] + p["q_z2.mu.b"]
    variances = [mu1.var(axis=0), mu2.var(axis=0)]
    threshold = float(np.median(np.concatenate(variances)))     # some units on either side
    result = json.loads(evaluate(run, tmp_path, "--json", "--threshold", repr(threshold)))
    assert result["layer_dims"] == [3, 2]
    for got, want in zip(result["layer_unit_variances"], variances):
        np.testing.assert_allclose(got, want, atol=1e-6)        # reported rounded to 6 decimals
    expected = [int(np.sum(v > threshold)) for v in variances]
    assert result["active_units_per_layer"] == expected and 0 < sum(expected) < 5
    assert (result["active_units"], result["z_dim"]) == (expected[0], 3)     # z1: as before
    assert "iwae_nll" in result and result["iwae_nll_se"] > 0
    text = evaluate(run, tmp_path, "--threshold", repr(threshold))
    assert f"active units, z1                {expected[0]} / 3  (Cov_x(E_q[z_j]) >" in text
    assert f"active units, z2                {expected[1]} / 2  (q(z2|z1)'s mean at z1's mean)" \
        in text


def test_a_one_layer_run_reports_one_layer(trained, tmp_path, fast_sprites):
    run = trained["vamp"][0]
    result = json.loads(evaluate(run, tmp_path, "--json"))
    assert result["layer_dims"] == [3]
    assert result["active_units_per_layer"] == [result["active_units"]]
    assert result["layer_unit_variances"] == [result["unit_variances"]]
    text = evaluate(run, tmp_path)
    assert "active units, z" not in text and "  active units   " in text


# --------------------------------------------------------------------------- figures
@pytest.mark.parametrize("name", ["two-layer", "vamp", "two-layer-vamp-top"])
def test_figures_sample_and_reconstruct_work_on_the_new_models(trained, name, tmp_path,
                                                               fast_sprites):
    run, _, text, _ = trained[name]
    written = {p.name for p in (run / "figures").glob("*.png")}
    assert written == FIGURES, text
    for png in (run / "figures").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    for command in ("sample", "reconstruct"):
        out = tmp_path / f"{command}.png"
        status, message = main(command, run, "--n", 4, "--out", out)
        assert status == 0 and out.stat().st_size > 1000, message

