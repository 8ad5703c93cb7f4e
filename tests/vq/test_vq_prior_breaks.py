"""Checks added by the adversarial review of the MADE prior, the VQ-VAE's bound and their
commands: each fails on a mutation that no earlier test caught (named in each docstring), or on a
defect the review found, and passes on the code.

* ``load_prior`` on a truncated or foreign prior.npz: one ValueError naming the file (it was a
  zipfile.BadZipFile traceback, or NumPy's words about pickles);
* ``sample`` of a run whose prior is over other codes: one line, status 2 (it silently decoded
  codes of a K = 64 prior with a K = 128 model);
* ``evaluate`` in float64 evaluates a float32-fitted prior in float64 too;
* a checkpoint of another model is refused; MADE's chunked loops; fit_prior's train_nll, strict
  early stopping on the validation split, --limit; encode_all's last row; the bound's SE.
"""
import json

import numpy as np
import pytest

from vae_np import cli
from vae_np.vq.made import MADEPrior
from vae_np.vq.prior import load_prior, save_prior
from vae_np.vq.model import VQVAE

M, D, K = 3, 2, 6


def tiny_model(seed=0):
    model = VQVAE(12, hidden=(7,), n_latents=M, code_dim=D, codebook_size=K, seed=seed)
    return model, (np.random.default_rng(seed).random((20, 12)) < 0.4).astype(np.float64)


# --------------------------------------------------------------------------- the prior's files
def saved_prior(tmp_path):
    prior = MADEPrior(M, K, hidden=(5,), seed=0)
    save_prior(tmp_path, prior, dict(fit=dict(epochs=1)))
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    return prior


@pytest.mark.parametrize("damage", ["truncated", "text", "empty"])
def test_a_damaged_prior_npz_is_one_value_error_naming_it(tmp_path, damage):
    saved_prior(tmp_path)
    path = tmp_path / "prior.npz"
    data = path.read_bytes()
    path.write_bytes({"truncated": data[:len(data) // 2], "text": b"garbage\n",
                      "empty": b""}[damage])
    with pytest.raises(ValueError, match=r"prior\.npz: corrupt or truncated.*fit-prior"):
        load_prior(tmp_path)


def test_prior_npz_without_flat_is_refused(tmp_path):
    saved_prior(tmp_path)
    np.savez(tmp_path / "prior.npz", other=np.zeros(3))
    with pytest.raises(ValueError, match=r"prior\.npz: expected \d+ parameters"):
        load_prior(tmp_path)


@pytest.fixture(scope="module")
def vq_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("vqb") / "run"
    assert cli.main(["train", "--model", "vqvae", "--dataset", "sprites", "--limit", "60",
                     "--epochs", "1", "--hidden", "8", "--n-latents", str(M), "--code-dim",
                     str(D), "--codebook-size", str(K), "--no-figures", "-q",
                     "--out", str(run)]) == 0
    return run


@pytest.mark.parametrize("m, k", [(M, K - 2), (M, K + 1), (M + 1, K)])
def test_sample_refuses_a_prior_over_other_codes(vq_run, m, k, capsys, tmp_path):
    """Mutation/defect: ``sample`` without ``check_pair`` decoded a K - 2 prior's codes."""
    save_prior(vq_run, MADEPrior(m, k, hidden=(4,), seed=0), dict(fit={}))
    capsys.readouterr()
    status = cli.main(["sample", str(vq_run), "--n", "2", "--out", str(tmp_path / "s.png")])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1, err
    assert "prior must be over the model's codes" in err
    assert not (tmp_path / "s.png").exists()
    info = json.loads((vq_run / "prior.json").read_text())
    assert info["prior"]["codebook_size"] == k


def test_a_checkpoint_of_another_model_is_refused(vq_run):
    """Mutation: the comparison of the checkpoint's model with config.json skipping an entry
    (beta). Every VQVAE argument but the seed changes what the parameters mean."""
    from vae_np.runs import directory as runs
    config = runs.read_config(vq_run)
    arrays = runs.load_checkpoint(vq_run / "checkpoint.npz")
    for key, value in (("beta", 0.5), ("ema_decay", 0.9), ("code_dim", D), ("hidden", [8]),
                       ("codebook_update", "ema"), ("likelihood", "bernoulli")):
        changed = dict(config, model=dict(config["model"], **{key: value}))
        model = VQVAE(**changed["model"])
        if changed["model"] == config["model"]:
            runs.check_checkpoint(arrays, changed)                 # the same model: accepted
            runs.restore_model(arrays, model)
            continue
        with pytest.raises(ValueError, match=f"another model.*{key}"):
            runs.check_checkpoint(arrays, changed)
    reseeded = dict(config, model=dict(config["model"], seed=7))
    runs.check_checkpoint(arrays, reseeded)
    runs.restore_model(arrays, VQVAE(**reseeded["model"]))


def test_categorical_nll_of_huge_logits_is_finite_and_exact():
    """Mutation: log_softmax without the max shift (exp(1000) overflows to inf, the nll to nan).
    Two values with logits 1000 and 1000 + ln 3: -ln p(0) = ln 4, -ln p(1) = ln(4/3); the
    gradient softmax - onehot is (1/4 - 1, 3/4) for code 0."""
    from vae_np import ops
    logits = np.array([[[1000.0, 1000.0 + np.log(3.0)]], [[-1000.0, -1000.0 + np.log(3.0)]]])
    for codes, expected in (([[0], [0]], np.log(4.0)), ([[1], [1]], np.log(4.0 / 3.0))):
        with np.errstate(all="raise"):
            nll, cache = ops.categorical_nll_forward(logits, np.array(codes))
            np.testing.assert_allclose(nll, [expected, expected], rtol=1e-13)
    _, cache = ops.categorical_nll_forward(logits, np.array([[0], [0]]))
    np.testing.assert_allclose(ops.categorical_nll_backward(np.ones(2), cache)[0, 0],
                               [-0.75, 0.75], rtol=1e-13)


def test_bound_and_encode_all_of_no_examples_name_x():
    from vae_np.vq.prior import encode_all, vq_bound
    model, x = tiny_model()
    with pytest.raises(ValueError, match=r"X must be a \(N, x_dim\) array with N >= 1"):
        encode_all(model, x[:0])
    with pytest.raises(ValueError, match=r"X must be a \(N, x_dim\) array with N >= 1"):
        vq_bound(model, MADEPrior(M, K, hidden=(3,)), x[:0])


@pytest.mark.parametrize("codes", [[[-1]], [[2]], [[0.0]]])
def test_categorical_nll_refuses_codes_outside_the_values(codes):
    """Mutation: the lower bound of the codes' check moved to -1 (a code -1 would index the last
    value silently: put_along_axis wraps)."""
    from vae_np import ops
    with pytest.raises(ValueError, match=r"codes must be integers in \[0, 2\)"):
        ops.categorical_nll_forward(np.zeros((1, 1, 2)), np.array(codes))


def test_evaluate_in_float64_evaluates_the_prior_in_float64(vq_run, tmp_path, capsys):
    """Defect: ``evaluate`` (float64 by default) rebuilt the model in float64 but left a prior
    fitted in float32 (fit-prior's default) in float32, so -ln prior carried float32 rounding.
    The reference: the same weights in a float64 MADEPrior, through vq_bound."""
    import shutil
    from vae_np.cli.common import load_data
    from vae_np.evaluate import evaluation_set
    from vae_np.vq.prior import vq_bound
    from vae_np.vq.runs import load_vq_run
    run = shutil.copytree(vq_run, tmp_path / "run")
    prior32 = MADEPrior(M, K, hidden=(5,), seed=3, dtype=np.float32)
    prior32.flat[:] *= 3                                   # logits far from uniform
    save_prior(run, prior32, dict(fit={}))
    capsys.readouterr()
    assert cli.main(["evaluate", str(run), "--limit", "20", "--json", "-q"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dtype"] == "float64"
    model, config, _ = load_vq_run(run, dtype=np.float64)
    prior64 = MADEPrior(M, K, hidden=(5,), seed=3, dtype=np.float64)
    prior64.flat[:] = prior32.flat
    x = evaluation_set(load_data(config, None), "test", 20)
    expected = vq_bound(model, prior64, x)
    np.testing.assert_allclose(result["prior_nll"], expected.prior_nll.mean(), rtol=1e-13)
    np.testing.assert_allclose(result["bound"], expected.bound.mean(), rtol=1e-13)
    # the standard error of the mean bound: sample standard deviation (n - 1) over sqrt(n)
    b = expected.bound
    se = np.sqrt(np.sum((b - b.mean()) ** 2) / (len(b) - 1) / len(b))
    np.testing.assert_allclose(result["bound_se"], se, rtol=1e-10)


# --------------------------------------------------------------------------- MADE in chunks
def plain_made_logits(prior, codes):
    """The MADE's logits written out in NumPy: onehot -> relu(x (W * mask) + b) ... -> (B, M, K)."""
    B, Mp, Kp = len(codes), prior.n_latents, prior.codebook_size
    h = np.zeros((B, Mp * Kp))
    h[np.arange(B)[:, None], np.arange(Mp) * Kp + codes] = 1.0
    for i, name in enumerate(prior.names):
        h = h @ (prior.params[name + ".W"] * prior.masks[i]) + prior.params[name + ".b"]
        if name != "out":
            h = np.maximum(h, 0.0)
    return h.reshape(B, Mp, Kp)


def test_log_prob_logits_and_sample_agree_across_chunks(monkeypatch):
    """Mutations: the chunked loops of logits/log_prob evaluating the first chunk's codes for
    every chunk (the CLI's test sets are smaller than CHUNK = 1024, so nothing noticed). With
    CHUNK = 2 and 5 code vectors, logits and ln prior must be the plain NumPy forward's, and
    sampling must give the same codes as with one chunk."""
    from vae_np.vq import made
    prior = MADEPrior(M, K, hidden=(9,), seed=4)
    prior.flat[:] *= 3
    codes = np.random.default_rng(5).integers(0, K, size=(5, M))
    whole = prior.sample(7, np.random.default_rng(6))
    monkeypatch.setattr(made, "CHUNK", 2)
    logits = plain_made_logits(prior, codes)
    np.testing.assert_allclose(prior.logits(codes), logits, rtol=1e-12, atol=1e-12)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = np.take_along_axis(log_p, codes[..., None], axis=-1)[..., 0].sum(1)
    np.testing.assert_allclose(prior.log_prob(codes), expected, rtol=1e-12)
    np.testing.assert_array_equal(prior.sample(7, np.random.default_rng(6)), whole)


# --------------------------------------------------------------------------- fit_prior, encode_all
def test_fit_prior_train_nll_weights_the_short_batch_and_keeps_a_strict_best():
    """Mutations: the epoch's train_nll weighting every batch by ``batch_size`` (20 codes in
    batches of 8: the last holds 4); early stopping counting a validation NLL within 1e-3 of the
    best as a new best. Training on all-0 codes and validating on all-1 codes with a tiny step
    makes the validation NLL rise by ~1e-5 per epoch: only epoch 1 is best, and the prior must
    end with epoch 1's parameters."""
    from vae_np.optim import Adam
    from vae_np.vq.prior import fit_prior
    prior = MADEPrior(3, 4, hidden=(5,), seed=0)
    train, valid = np.zeros((20, 3), int), np.ones((10, 3), int)
    losses = []
    history = fit_prior(prior, train, Adam(1e-6), 4, 8, np.random.default_rng(0),
                        callback=lambda e: losses.append(e["loss"]) if e["kind"] == "step"
                        else None, codes_valid=valid)
    steps = np.array(losses).reshape(4, 3)
    for row, epoch_losses in zip(history, steps):
        np.testing.assert_allclose(row["train_nll"], np.dot([8, 8, 4], epoch_losses) / 20,
                                   rtol=1e-12)
    nll = [row["valid_nll"] for row in history]
    assert np.all(np.diff(nll) > 0)                       # the set-up: it only gets worse
    assert [row["best"] for row in history] == [True, False, False, False]
    assert -np.mean(prior.log_prob(valid)) == nll[0]


@pytest.mark.parametrize("n", [1, 6, 7, 8])
def test_encode_all_covers_every_row(n):
    """Mutation: the batch loop stopping one row short (it loses the last row when n = 1 mod the
    batch size). Reference: each row's nearest codes by a brute-force argmin."""
    from vae_np.vq.prior import encode_all
    model, x = tiny_model(2)
    x = x[:n]
    codes = encode_all(model, x, batch_size=3)
    z = model.encode(x)
    brute = np.argmin(((z[:, :, None] - model.codebook[None, None]) ** 2).sum(-1), axis=-1)
    np.testing.assert_array_equal(codes, brute)


def test_fit_prior_limit_chooses_the_training_codes(vq_run, tmp_path, capsys):
    """Mutation: fit-prior ignoring --limit (always the run's own limit). The run saw 60
    training images; --limit 25 must fit the prior to 25 code vectors, and the default to 60."""
    import shutil
    run = shutil.copytree(vq_run, tmp_path / "run")
    for extra, n in ((["--limit", "25"], 25), ([], 60)):
        assert cli.main(["fit-prior", str(run), "--epochs", "1", "--hidden", "4", "--no-figures",
                         "-q", *extra]) == 0
        fit = json.loads((run / "prior.json").read_text())["fit"]
        assert fit["n_codes"] == n and fit["limit"] == (25 if extra else 60)


def test_fit_prior_stops_early_on_the_validation_split(vq_run, tmp_path, capsys, monkeypatch):
    """Mutation: early stopping on the test split's codes (the test set would then choose the
    model that is evaluated on it). Sprites has no validation split, so one is given here: the
    codes fit_prior stops on must be those of x_valid, and none with --no-early-stopping."""
    import dataclasses
    import shutil
    from vae_np.cli import vq as cli_vq
    from vae_np.vq.prior import encode_all
    from vae_np.vq.runs import load_vq_run
    run = shutil.copytree(vq_run, tmp_path / "run")
    real_load = cli_vq.load_data

    def with_valid(config, args):
        dataset = real_load(config, args)
        x_valid = np.random.default_rng(0).integers(0, 256, size=(30, dataset.n_features))
        return dataclasses.replace(dataset, x_valid=x_valid.astype(np.uint8))

    seen = []
    real_fit = cli_vq.fit_prior
    monkeypatch.setattr(cli_vq, "load_data", with_valid)
    monkeypatch.setattr(cli_vq, "fit_prior", lambda *a: seen.append(a[-1]) or real_fit(*a))
    model, config, _ = load_vq_run(run)
    for extra in ([], ["--no-early-stopping"]):
        assert cli.main(["fit-prior", str(run), "--epochs", "1", "--hidden", "4", "--no-figures",
                         "-q", *extra]) == 0
    dataset = with_valid(config, None)
    np.testing.assert_array_equal(seen[0], encode_all(model, dataset.x_valid[:60]))
    assert seen[1] is None


def test_fit_prior_reports_the_epoch_it_kept(vq_run, tmp_path, capsys, monkeypatch):
    """Mutation: the kept epoch taken as the first best epoch rather than the last (the prior
    holds the parameters of the last epoch that improved the validation NLL). fit_prior is
    replaced by one whose history says epochs 1 and 2 improved and 3 did not."""
    import shutil
    from vae_np.cli import vq as cli_vq
    run = shutil.copytree(vq_run, tmp_path / "run")
    rows = [dict(epoch=e, train_nll=1.0, test_nll=1.0, valid_nll=v, best=b, seconds=0.0)
            for e, v, b in ((1, 2.0, True), (2, 1.5, True), (3, 1.7, False))]
    monkeypatch.setattr(cli_vq, "fit_prior", lambda *a: rows)
    assert cli.main(["fit-prior", str(run), "--epochs", "3", "--hidden", "4", "--no-figures",
                     "-q"]) == 0
    assert json.loads((run / "prior.json").read_text())["fit"]["kept_epoch"] == 2
    assert "kept the parameters of epoch 2" in capsys.readouterr().out


def test_sample_is_a_function_of_the_seed(vq_run, tmp_path, monkeypatch):
    """Mutation: ``sample`` drawing the prior's codes from an unseeded generator. The images
    handed to the figure must repeat for one --seed and differ for another."""
    import shutil
    from vae_np.cli import vq as cli_vq
    run = shutil.copytree(vq_run, tmp_path / "run")
    prior = MADEPrior(M, K, hidden=(4,), seed=1)
    prior.flat[:] *= 0.1                                    # near uniform: many distinct codes
    save_prior(run, prior, dict(fit={}))
    drawn = []
    monkeypatch.setattr(cli_vq.figures, "image_grid",
                        lambda path, images, *a, **k: drawn.append(images.copy()) or path)
    for seed in (3, 3, 4):
        assert cli.main(["sample", str(run), "--n", "16", "--seed", str(seed),
                         "--out", str(tmp_path / "s.png")]) == 0
    np.testing.assert_array_equal(drawn[0], drawn[1])
    assert not np.array_equal(drawn[0], drawn[2])
