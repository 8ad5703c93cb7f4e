"""Checks added by the adversarial review of the VQ-VAE and its training: each one fails on a
mutation that no earlier test caught (named in each docstring), or on a defect the review found,
and passes on the code.

* the EMA state (N_i, m_i) must describe the codebook, e_i = m_i / N_i, after ``init_codebook``
  and for every code ``reseed`` moves: otherwise the next ``ema_update`` pulls the code back
  towards where it was before (a dead code is re-seeded and at once returns to its dead place);
* fit_vq's epoch means weight a short last batch by its size; re-seeding draws from the epoch's
  last batch; ``train --model vqvae`` records the schedule's lr and the test set's numbers;
* ``ema_update`` and ``reseed`` refuse bad input with a ValueError naming the argument.

The prior, the bound and their commands: tests/vq/test_vq_prior_breaks.py.
"""
import numpy as np
import pytest

from vae_np import cli
from vae_np.vq.model import VQVAE

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


# --------------------------------------------------------------------------- fit_vq's history
def test_epoch_averages_weight_a_short_last_batch_by_its_size():
    """Mutation: the epoch's totals weighted by ``batch_size`` rather than the batch's length
    (100 examples in batches of 30: the last holds 10). The epoch's mean must be the
    example-weighted mean of the step losses the callback reports."""
    from vae_np.optim import Adam
    from vae_np.vq.train import fit_vq
    model, _ = ema_model(3)
    X = (np.random.default_rng(3).random((100, 12)) < 0.4).astype(np.float64)
    steps, seen = [], []
    h = fit_vq(model, X, Adam(1e-2), epochs=1, batch_size=30, rng=np.random.default_rng(0),
               callback=lambda e: (steps.append(e["loss"]), seen.append(e["examples"]))
               if e["kind"] == "step" else None)
    sizes = np.array([30, 30, 30, 10])
    assert len(steps) == 4
    np.testing.assert_allclose(h["loss"][0], np.dot(sizes, steps) / 100, rtol=1e-12)
    assert seen == [30, 60, 90, 100]        # examples so far (the progress line's examples/s)


def test_reseeded_codes_are_encoder_outputs_of_the_epochs_last_batch():
    """Mutation: re-seeding from encoder outputs of another batch (the first rows of X, under
    the parameters after the last step). The module's rule: the epoch's last batch's z_e, which
    the last step computed with the parameters from before it; every moved code must be one of
    those vectors (to rounding), and re-seeding must leave the moved codes' EMA state at N = 1."""
    from vae_np.optim import Adam
    from vae_np.vq.train import fit_vq
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


def test_history_records_the_schedules_lr_and_the_test_sets_numbers(tmp_path):
    """Mutations: the learning rate of epoch e + 1 used in epoch e; the held-out -ln p(x|z_q)
    divided by N + 1. Burda's schedule written out: epoch 1 at lr, epochs 2-4 at lr 10^(-1/7);
    the test columns recomputed from the saved model one example at a time."""
    from vae_np.cli.common import load_data
    from vae_np.evaluate import evaluation_set
    from vae_np.vq.runs import load_vq_run
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


def test_train_initialises_the_codebook_once_and_not_on_resume(tmp_path, monkeypatch):
    """Mutation: ``train`` passing init_codebook=True for every epoch (the codebook thrown away
    and re-drawn from one batch at the start of each epoch). Bit-exact resume cannot see it: the
    straight run re-draws the same way. Counted here: once in a 2-epoch run, never on --resume."""
    calls = []
    real = VQVAE.init_codebook
    monkeypatch.setattr(VQVAE, "init_codebook",
                        lambda self, x, rng: calls.append(1) or real(self, x, rng))
    out = tmp_path / "run"
    argv = ["--model", "vqvae", "--dataset", "sprites", "--limit", "40", "--hidden", "8",
            "--n-latents", str(M), "--code-dim", str(D), "--codebook-size", str(K),
            "--no-figures", "-q"]
    assert cli.main(["train", *argv, "--epochs", "2", "--out", str(out)]) == 0
    assert len(calls) == 1
    assert cli.main(["train", "--resume", str(out), "--epochs", "3", "-q", "--no-figures"]) == 0
    assert len(calls) == 1


def test_no_reseed_leaves_dead_codes_where_they_were(monkeypatch):
    """Mutation: fit_vq moving dead codes whatever ``reseed`` says (only the recorded count
    obeyed it). A code no vector chose in the epoch (recorded from every forward pass) has a
    zero gradient at every step, so Adam leaves it exactly where init_codebook put it."""
    from vae_np.optim import Adam
    from vae_np.vq.train import fit_vq
    X = (np.random.default_rng(4).random((90, 12)) < 0.3).astype(np.float64)
    for reseed in (False, True):
        model = VQVAE(12, (8,), n_latents=2, code_dim=2, codebook_size=40)
        start, chosen = {}, set()
        init, forward = model.init_codebook, model.forward
        monkeypatch.setattr(model, "init_codebook", lambda x, rng: init(x, rng) or start.update(
            codebook=model.codebook.copy()))
        monkeypatch.setattr(model, "forward", lambda x: chosen.update(
            forward(x).values["codes"].ravel().tolist()) or forward(x))
        h = fit_vq(model, X, Adam(1e-2), epochs=1, batch_size=30, rng=np.random.default_rng(2),
                   reseed=reseed)
        dead = sorted(set(range(40)) - chosen)
        assert len(dead) == round((1 - h["usage"][0]) * 40) > 0
        moved = np.any(model.codebook[dead] != start["codebook"][dead], axis=1)
        assert moved.all() if reseed else not moved.any()
        assert h["reseeded"] == [len(dead) if reseed else 0]


def test_train_no_reseed_reaches_fit_vq(tmp_path):
    """Mutation: ``train --no-reseed`` recorded in config.json but not passed on (fit_vq
    re-seeded anyway). 40 codes for 20 sprites x 3 positions leave codes dead."""
    from vae_np.vq.runs import load_vq_run
    out = tmp_path / "run"
    assert cli.main(["train", "--model", "vqvae", "--dataset", "sprites", "--limit", "20",
                     "--hidden", "8", "--n-latents", str(M), "--code-dim", str(D),
                     "--codebook-size", "40", "--epochs", "2", "--no-reseed", "--no-figures",
                     "-q", "--out", str(out)]) == 0
    _, config, history = load_vq_run(out)
    assert config["reseed"] is False
    assert history["reseeded"] == [0, 0] and history["usage"][-1] < 1


def test_nll_given_codes_refuses_codes_of_another_batch():
    """Mutation: the check that codes have one row per example removed: one row of codes then
    broadcasts silently over every example of x."""
    model, x = ema_model()
    codes = model.encode_codes(x)
    with pytest.raises(ValueError, match=r"one row per example of x \(20\)"):
        model.nll_given_codes(x, codes[:1])


def test_history_csv_holds_the_checkpoints_history(tmp_path):
    """Mutation: history.csv written with its numbers shifted (1e-3) while the checkpoint's
    history is right: every CSV cell must read back as the checkpoint's value, exactly (the
    floats are written by repr)."""
    import csv
    from vae_np.vq.runs import HISTORY_COLUMNS, load_vq_run
    out = tmp_path / "run"
    assert cli.main(["train", "--model", "vqvae", "--dataset", "sprites", "--limit", "20",
                     "--hidden", "8", "--n-latents", str(M), "--code-dim", str(D),
                     "--codebook-size", "40", "--epochs", "2", "--no-figures", "-q",
                     "--out", str(out)]) == 0
    _, _, history = load_vq_run(out)
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert len(rows) == 2 and list(rows[0]) == list(HISTORY_COLUMNS)
    for column in HISTORY_COLUMNS:
        assert [float(r[column]) for r in rows] == [float(v) for v in history[column]], column
    assert sum(history["reseeded"]) > 0 and all(r["reseeded"].isdigit() for r in rows)


def spread_model(n=23, seed=3):
    """A VQ-VAE whose codebook starts on its own encoder outputs (so many codes are used) and
    n binary examples."""
    model = VQVAE(12, hidden=(7,), n_latents=M, code_dim=D, codebook_size=64, seed=seed)
    x = (np.random.default_rng(seed).random((n, 12)) < 0.4).astype(np.float64)
    model.init_codebook(x[:6], np.random.default_rng(seed))
    return model, x


def expected_statistics(model, x):
    """Mean -ln p(x | z_q) one example at a time; usage and perplexity exp(-sum p ln p) of the
    codes' frequencies, written out here."""
    codes = np.concatenate([model.encode_codes(x[i:i + 1]) for i in range(len(x))])
    nll = np.mean([model.nll_given_codes(x[i:i + 1], codes[i:i + 1])[0] for i in range(len(x))])
    counts = np.bincount(codes.ravel(), minlength=model.codebook_size)
    p = counts[counts > 0] / counts.sum()
    usage, perplexity = np.count_nonzero(counts) / model.codebook_size, np.exp(-p @ np.log(p))
    return nll, usage, perplexity, codes


@pytest.mark.parametrize("batch_size", [1, 4, 7, 23])
def test_held_out_statistics_over_chunks_are_those_of_one_chunk(batch_size):
    """Mutation: the held-out sums (-ln p(x|z_q), code counts) overwritten by each chunk instead
    of added. train evaluates the test set in chunks of 1000, so every test set of a test run
    was one chunk. With 23 examples in chunks of 1, 4, 7 (a short last chunk) and 23, the
    statistics equal those counted one example at a time here; the last chunk alone uses fewer
    codes and has another mean (checked, so the comparison can fail). Tolerance: the -ln p sums
    of float64 terms in another order, 1e-12 relative; usage and perplexity from integer counts."""
    from vae_np.cli.vq import heldout_statistics
    from vae_np.vq.made import MADEPrior
    from vae_np.vq.prior import encode_all, vq_bound

    model, x = spread_model()
    nll, usage, perplexity, codes = expected_statistics(model, x)
    last = expected_statistics(model, x[-(len(x) % 7):])
    assert last[1] != usage and last[2] != pytest.approx(perplexity) and 0 < usage < 1
    got = heldout_statistics(model, x, batch_size=batch_size)
    np.testing.assert_allclose(got, (nll, usage, perplexity), rtol=1e-12)
    np.testing.assert_array_equal(encode_all(model, x, batch_size=batch_size), codes)
    prior = MADEPrior(M, model.codebook_size, hidden=(5,), seed=1)
    whole = vq_bound(model, prior, x, batch_size=len(x))
    parts = vq_bound(model, prior, x, batch_size=batch_size)
    for name in ("bound", "recon", "prior_nll", "codes"):
        np.testing.assert_allclose(getattr(parts, name), getattr(whole, name), rtol=1e-12)
    assert np.mean(whole.recon) == pytest.approx(nll, rel=1e-12)


def test_fit_applies_one_ema_step_after_each_update():
    """Mutation: the VQ kind's after-step hook without the EMA step (the codebook then never
    moves under codebook_update="ema": its gradient is 0). Replayed by hand: each batch (the
    shuffle of the same seed), its encoder outputs at the parameters before its step (recorded
    from the callback), its nearest codes under the codebook replayed so far, and the EMA
    written out here, N <- g N + (1 - g) n, m <- g m + (1 - g) s,
    e = m / ((N + eps) n_tot / (n_tot + K eps)). Tolerance: float64 sums in another order
    (bincount against a loop over the codes), 1e-12 relative."""
    from vae_np.optim import Adam
    from vae_np.vq.train import fit_vq
    model, _ = ema_model(5)
    replica = VQVAE(**model.config())
    X = (np.random.default_rng(5).random((30, 12)) < 0.4).astype(np.float64)
    count, total, g = model.ema_count.copy(), model.ema_sum.copy(), model.ema_decay
    flats, codebooks = [model.flat.copy()], []

    def record(event):
        if event["kind"] == "step":
            flats.append(model.flat.copy())
            codebooks.append(model.codebook.copy())

    fit_vq(model, X, Adam(1e-2), epochs=1, batch_size=8, rng=np.random.default_rng(3),
           init_codebook=False, reseed=False, callback=record)
    order = np.random.default_rng(3).permutation(len(X))
    codebook = total / count[:, None]
    for step, start in enumerate(range(0, len(X), 8)):
        replica.flat[...] = flats[step]                   # the parameters before this step
        z = replica.encode(X[order[start:start + 8]]).reshape(-1, D)
        codes = np.argmin(((z[:, None] - codebook[None]) ** 2).sum(-1), axis=1)
        n = np.array([np.sum(codes == k) for k in range(K)], dtype=float)
        s = np.array([z[codes == k].sum(axis=0) for k in range(K)])
        count, total = g * count + (1 - g) * n, g * total + (1 - g) * s
        n_tot = count.sum()
        codebook = total / ((count + model.ema_eps) * n_tot / (n_tot + K * model.ema_eps))[:, None]
        np.testing.assert_allclose(codebooks[step], codebook, rtol=1e-12, atol=1e-15)
    assert not np.allclose(codebooks[0], codebooks[-1])
