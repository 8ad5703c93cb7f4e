"""Checks added by the adversarial review of the VQ-VAE, the MADE prior and the bound: each one
fails on a mutation that no earlier test caught (named in each docstring) and passes on the code.

* the EMA state (N_i, m_i) must describe the codebook, e_i = m_i / N_i, after ``init_codebook``
  and for every code ``reseed`` moves: otherwise the next ``ema_update`` pulls the code back
  towards where it was before (a dead code is re-seeded and at once returns to its dead place);
* ``load_prior`` on a truncated or foreign prior.npz: one ValueError naming the file (it was a
  zipfile.BadZipFile traceback, or NumPy's words about pickles);
* ``sample`` of a run whose prior is over other codes: one line, status 2 (it silently decoded
  codes of a K = 64 prior with a K = 128 model).
"""
import json

import numpy as np
import pytest

from vae_np import cli
from vae_np.made import MADEPrior
from vae_np.vq_prior import load_prior, save_prior
from vae_np.vqvae import VQVAE

M, D, K = 3, 2, 6


def ema_model(seed=0):
    model = VQVAE(12, hidden=(7,), n_latents=M, code_dim=D, codebook_size=K,
                  codebook_update="ema", seed=seed)
    x = (np.random.default_rng(seed).random((20, 12)) < 0.4).astype(np.float64)
    return model, x


def assert_ema_describes_the_codebook(model, which):
    """N_i = 1 and m_i = e_i for the codes ``which`` (so m_i / N_i = e_i exactly)."""
    np.testing.assert_array_equal(model.ema_count[which], 1.0)
    np.testing.assert_array_equal(model.ema_sum[which], model.codebook[which])


def test_init_codebook_restarts_the_ema_state():
    """Mutation: ``init_codebook`` without ``reset_ema`` (m_i stays at the random init)."""
    model, x = ema_model()
    model.ema_update(model.encode(x), model.encode_codes(x))      # state away from N = 1
    model.init_codebook(x, np.random.default_rng(1))
    assert_ema_describes_the_codebook(model, np.arange(K))


@pytest.mark.parametrize("seed", [0, 1])
def test_reseeded_codes_restart_their_ema_state_and_stay_put(seed):
    """Mutations: ``reseed`` leaving m_i (the code's old sum), or setting N_i to another value.
    After the re-seed an EMA step in which the code is unused must leave it where it was put,
    up to the Laplace smoothing: e_i = gamma m_i / N~_i with N~_i = (gamma N_i + eps) n / (n +
    K eps) -- written out here, not taken from ``ema_update``."""
    model, x = ema_model(seed)
    rng = np.random.default_rng(seed + 5)
    model.init_codebook(x, rng)
    model.ema_update(model.encode(x), model.encode_codes(x))
    z_e = model.encode(x)
    dead = np.array([1, 4])
    model.reseed(dead, z_e, rng)
    assert_ema_describes_the_codebook(model, dead)
    placed = model.codebook[dead].copy()
    # one EMA step with codes that avoid the re-seeded ones
    codes = np.where(np.isin(model.encode_codes(x), dead), 0, model.encode_codes(x))
    gamma, eps = model.ema_decay, model.ema_eps
    n = gamma * model.ema_count.sum() + (1 - gamma) * codes.size
    smoothed = (gamma * 1.0 + eps) / (n + K * eps) * n
    model.ema_update(z_e, codes)
    np.testing.assert_allclose(model.codebook[dead], gamma * placed / smoothed, rtol=1e-12)
    # the code stays within the smoothing's 1e-4 of where it was put, not near its old place
    np.testing.assert_allclose(model.codebook[dead], placed, rtol=1e-3, atol=1e-6)


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


# --------------------------------------------------------------------------- fit_vq's history
def test_epoch_averages_weight_a_short_last_batch_by_its_size():
    """Mutation: the epoch's totals weighted by ``batch_size`` rather than the batch's length
    (100 examples in batches of 30: the last holds 10). The epoch's mean must be the
    example-weighted mean of the step losses the callback reports."""
    from vae_np.optim import Adam
    from vae_np.vq_train import fit_vq
    model, _ = ema_model(3)
    X = (np.random.default_rng(3).random((100, 12)) < 0.4).astype(np.float64)
    steps = []
    h = fit_vq(model, X, Adam(1e-2), epochs=1, batch_size=30, rng=np.random.default_rng(0),
               callback=lambda e: steps.append(e["loss"]) if e["kind"] == "step" else None)
    sizes = np.array([30, 30, 30, 10])
    assert len(steps) == 4
    np.testing.assert_allclose(h["loss"][0], np.dot(sizes, steps) / 100, rtol=1e-12)


def test_reseeded_codes_are_encoder_outputs_of_the_epochs_last_batch():
    """Mutation: re-seeding from encoder outputs of another batch (the first rows of X, under
    the parameters after the last step). The module's rule: the epoch's last batch's z_e, which
    the last step computed with the parameters from before it; every moved code must be one of
    those vectors (to rounding), and re-seeding must leave the moved codes' EMA state at N = 1."""
    from vae_np.optim import Adam
    from vae_np.vq_train import fit_vq
    X = (np.random.default_rng(4).random((90, 12)) < 0.3).astype(np.float64)
    model = VQVAE(12, (8,), n_latents=2, code_dim=2, codebook_size=40)
    saved = {}

    def remember(event):
        if event["kind"] == "step" and event["step"] == event["steps"] - 1:
            saved["flat"] = model.flat.copy()        # the parameters the last step starts from
        if event["kind"] == "step" and event["step"] == event["steps"]:
            saved["codebook"] = model.codebook.copy()

    h = fit_vq(model, X, Adam(1e-2), epochs=1, batch_size=30, rng=np.random.default_rng(2),
               callback=remember)
    moved = np.flatnonzero(np.any(model.codebook != saved["codebook"], axis=1))
    assert len(moved) == h["reseeded"][0] > 0
    after = model.flat.copy()
    model.flat[...] = saved["flat"]
    candidates = model.encode(X).reshape(-1, 2)
    model.flat[...] = after
    gap = np.abs(model.codebook[moved][:, None] - candidates[None]).max(-1).min(axis=1)
    assert np.all(gap < 1e-12), gap
    assert_ema_describes_the_codebook(model, moved)


def test_a_checkpoint_of_another_model_is_refused(vq_run):
    """Mutation: the comparison of the checkpoint's model with config.json skipping an entry
    (beta). Every VQVAE argument but the seed changes what the parameters mean."""
    from vae_np import runs
    from vae_np.vq_runs import read_vq_config, restore_vq_checkpoint
    config = read_vq_config(vq_run)
    arrays = runs.load_checkpoint(vq_run / "checkpoint.npz")
    for key, value in (("beta", 0.5), ("ema_decay", 0.9), ("code_dim", D), ("hidden", [8]),
                       ("codebook_update", "ema"), ("likelihood", "bernoulli")):
        changed = dict(config, vqvae=dict(config["vqvae"], **{key: value}))
        model = VQVAE(**changed["vqvae"])
        if changed["vqvae"] == config["vqvae"]:
            restore_vq_checkpoint(arrays, changed, model)          # the same model: accepted
            continue
        with pytest.raises(ValueError, match=f"another model.*{key}"):
            restore_vq_checkpoint(arrays, changed, model)
    reseeded = dict(config, vqvae=dict(config["vqvae"], seed=7))
    restore_vq_checkpoint(arrays, reseeded, VQVAE(**reseeded["vqvae"]))


def test_history_records_the_schedules_lr_and_the_test_sets_numbers(tmp_path):
    """Mutations: the learning rate of epoch e + 1 used in epoch e; the held-out -ln p(x|z_q)
    divided by N + 1. Burda's schedule written out: epoch 1 at lr, epochs 2-4 at lr 10^(-1/7);
    the test columns recomputed from the saved model one example at a time."""
    from vae_np.cli_common import load_data
    from vae_np.evaluate import evaluation_set
    from vae_np.vq_runs import load_vq_run
    out = tmp_path / "run"
    assert cli.main(["train", "--model", "vqvae", "--dataset", "sprites", "--limit", "40",
                     "--epochs", "2", "--hidden", "8", "--n-latents", str(M), "--code-dim",
                     str(D), "--codebook-size", str(K), "--lr", "0.01", "--lr-schedule",
                     "burda2016", "--no-figures", "-q", "--out", str(out)]) == 0
    model, config, history = load_vq_run(out)
    np.testing.assert_allclose(history["lr"], [0.01, 0.01 * 10 ** (-1 / 7)], rtol=1e-15)
    x = evaluation_set(load_data(config, None), "test", 40)
    nll = [model.nll_given_codes(x[i:i + 1], model.encode_codes(x[i:i + 1]))[0]
           for i in range(len(x))]
    np.testing.assert_allclose(history["test_recon"][-1], np.mean(nll), rtol=1e-5)
    codes = model.encode_codes(x)
    assert history["test_usage"][-1] == len(np.unique(codes)) / K


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


@pytest.mark.parametrize("call, word", [
    (lambda m: m.ema_update(np.zeros((2, M, D)), np.full((2, M), K)), "codes must be integer"),
    (lambda m: m.ema_update(np.zeros((2, M, D)), np.zeros((2, M))), "codes must be integer"),
    (lambda m: m.ema_update(np.zeros((2, M, D + 1)), np.zeros((2, M), int)), "z_e must have"),
    (lambda m: m.ema_update(np.zeros((2, M, D)), np.zeros((2, M - 1), int)), "one code per"),
    (lambda m: m.reseed([K], np.zeros((2, M, D)), np.random.default_rng(0)), "dead must be"),
    (lambda m: m.reseed([-1], np.zeros((2, M, D)), np.random.default_rng(0)), "dead must be"),
    (lambda m: m.reseed([1], np.zeros((2, M, D)), None), "rng must be"),
    (lambda m: m.reseed([1], np.zeros((0, D)), np.random.default_rng(0)), "z_e must have"),
])
def test_ema_and_reseed_bad_input_is_a_value_error_naming_the_argument(call, word):
    """Defect: these were NumPy broadcasting/IndexError/AttributeError messages, and a negative
    dead index silently moved code K - 1."""
    model, _ = ema_model()
    before = model.flat.copy(), model.ema_count.copy(), model.ema_sum.copy()
    with pytest.raises(ValueError, match=word):
        call(model)
    for a, b in zip(before, (model.flat, model.ema_count, model.ema_sum)):
        np.testing.assert_array_equal(a, b)


def test_bound_and_encode_all_of_no_examples_name_x():
    from vae_np.vq_prior import encode_all, vq_bound
    model, x = ema_model()
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
    from vae_np.cli_common import load_data
    from vae_np.evaluate import evaluation_set
    from vae_np.vq_prior import vq_bound
    from vae_np.vq_runs import load_vq_run
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
    from vae_np import made
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
    from vae_np.vq_prior import fit_prior
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
    from vae_np.vq_prior import encode_all
    model, x = ema_model(2)
    x = x[:n]
    codes = encode_all(model, x, batch_size=3)
    z = model.encode(x)
    brute = np.argmin(((z[:, :, None] - model.codebook[None, None]) ** 2).sum(-1), axis=-1)
    np.testing.assert_array_equal(codes, brute)
