"""One training loop for every kind of model: ``fit`` trains the VAE, the VQ-VAE, the MADE prior
and a kind it has never heard of through one protocol (vae_np.training.kind), and the command
line trains, resumes and refuses options for a kind registered from outside the package.

The toy kind is written here, outside vae_np: a vector w (D,) fitted to the rows of X with

    loss_b = 1/2 |x_b + s eps_b - w|^2 + c/2 (sum w)^2,   eps_b ~ N(0, I) from the training rng
    d loss / d w = mean_b (w - x_b - s eps_b) + c (sum w) 1

(noise s, coupling c). Its hooks write a log; its state is a step counter (int64, not a
parameter). What fit must do with it is written out here by hand: shuffle with the rng, slice
batches in order, take the gradient, step with SGD (w <- w - lr g), weight each batch's terms by
its size, call the hooks in their order, and number the epochs from ``first_epoch``. Nothing in
the loop names a kind, so it trains the toy unchanged; that is what these tests show.
"""
import json
import re

import numpy as np
import pytest

from _fault_helpers import differences, npz
from vae_np import MADEPrior, SGD, VAE, VQVAE, TrainingDivergedError, cli, fit
from vae_np.training.kind import MODEL_KINDS, ModelKind

D = 6


class Toy:
    """The toy model: parameters w (D,) in ``flat``; state ``steps`` (1,) int64."""

    def __init__(self, x_dim=D, coupling=0.0, dtype="float64", seed=0):
        self.x_dim, self.coupling, self.seed = x_dim, coupling, seed
        self.dtype = np.dtype(dtype)
        self.flat = np.random.default_rng(seed).normal(size=x_dim).astype(self.dtype)
        self.grad_flat = np.zeros_like(self.flat)
        self.params = {"w": self.flat}
        self.steps = np.zeros(1, dtype=np.int64)

    def loss(self, x):
        return float(0.5 * np.mean(np.sum((x - self.flat) ** 2, axis=1))
                     + 0.5 * self.coupling * self.flat.sum() ** 2)

    def __repr__(self):
        return f"Toy({self.x_dim}, coupling={self.coupling})"


class ToyKind(ModelKind):
    model_class = Toy
    options = dict(noise=0.0)
    history_keys = ("loss", "dist")
    epoch_keys = ("steps",)

    def __init__(self, model, noise=0.0):
        super().__init__(model)
        self.noise = noise
        half = model.x_dim // 2
        self.groups = (slice(0, half), slice(half, None))
        self.log = model.log = []

    def state(self):
        return {"toy.steps": self.model.steps}

    def check_data(self, X):
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.model.x_dim:
            raise ValueError(f"X must have shape (n, {self.model.x_dim}), got {X.shape}")
        return X

    def begin(self, X, rng, batch_size, first_epoch):
        self.log.append(("begin", first_epoch))

    def begin_epoch(self, epoch):
        self.log.append(("begin_epoch", epoch))

    def gradient(self, x, rng):
        w, c = self.model.flat, self.model.coupling
        if self.noise:
            x = x + self.noise * rng.standard_normal(x.shape)
        d = w - x
        self.model.grad_flat[...] = d.mean(axis=0) + c * w.sum()
        self.log.append("gradient")
        return (0.5 * float(np.mean(np.sum(d ** 2, axis=1))) + 0.5 * c * float(w.sum()) ** 2,
                float(np.mean(np.sqrt(np.sum(d ** 2, axis=1)))))

    def after_step(self):
        self.model.steps += 1
        self.log.append("after_step")

    def end_epoch(self, rng):
        self.log.append("end_epoch")
        return {"steps": int(self.model.steps[0])}


@pytest.fixture
def toy_kind():
    MODEL_KINDS.register("toy", ToyKind)
    yield ToyKind
    MODEL_KINDS.pop("toy")


def data(n=10, seed=0):
    return np.random.default_rng(seed).random((n, D))


def by_hand(w, X, lr, epochs, batch_size, rng, noise=0.0, coupling=0.0):
    """fit's loop written out for the toy: (w, history rows of (loss, dist), steps per epoch)."""
    n, rows = len(X), []
    for _ in range(epochs):
        totals = np.zeros(2)
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            x = X[order[start:start + batch_size]]
            if noise:
                x = x + noise * rng.standard_normal(x.shape)
            d = w - x
            loss = 0.5 * np.mean(np.sum(d ** 2, axis=1)) + 0.5 * coupling * w.sum() ** 2
            dist = np.mean(np.sqrt(np.sum(d ** 2, axis=1)))
            totals += len(x) * np.array([loss, dist])
            w = w - (d.mean(axis=0) + coupling * w.sum()) * lr
        rows.append(totals / n)
    return w, rows


# --------------------------------------------------------------------------- fit, on the toy
def test_fit_trains_a_kind_defined_outside_the_package(toy_kind):
    """10 rows in batches of 4 (a short last batch of 2), noise drawn from the training rng:
    the parameters and every history entry are those of the loop written out by hand, to the
    bit; the hooks run in order (begin once, then per epoch begin_epoch, a gradient and an
    after_step per batch, end_epoch); the state the hooks keep is the history's column."""
    model, X = Toy(), data()
    w0 = model.flat.copy()
    h = fit(model, X, SGD(0.1), epochs=2, batch_size=4, rng=np.random.default_rng(7),
            first_epoch=5, noise=0.3)
    w, rows = by_hand(w0, X, 0.1, 2, 4, np.random.default_rng(7), noise=0.3)
    np.testing.assert_array_equal(model.flat, w)
    assert list(h) == ["epoch", "loss", "dist", "steps", "seconds"]
    assert h["epoch"] == [5, 6] and h["steps"] == [3, 6]
    assert [[a, b] for a, b in zip(h["loss"], h["dist"])] == [list(r) for r in rows]
    per_epoch = ["gradient", "after_step"] * 3
    assert model.log == ([("begin", 5), ("begin_epoch", 5), *per_epoch, "end_epoch",
                          ("begin_epoch", 6), *per_epoch, "end_epoch"])


def test_alternating_steps_each_group_from_a_fresh_gradient(toy_kind, monkeypatch):
    """schedule="alternating" with the toy's two groups (w[:3], w[3:]) coupled through sum w:
    per batch, a step of the first group, then a gradient at the updated w for the second,
    each group with its own optimizer. A divergence at the second gradient leaves w as it was
    before the batch (the first group's step undone)."""
    model, X = Toy(coupling=0.5), data()
    w = model.flat.copy()
    fit(model, X, (SGD(0.1), SGD(0.05)), epochs=1, batch_size=5, rng=np.random.default_rng(1),
        schedule="alternating")
    order = np.random.default_rng(1).permutation(len(X))
    for start in (0, 5):
        x = X[order[start:start + 5]]
        g = (w - x).mean(axis=0) + 0.5 * w.sum()
        w = np.concatenate([w[:3] - g[:3] * 0.1, w[3:]])
        g = (w - x).mean(axis=0) + 0.5 * w.sum()
        w = np.concatenate([w[:3], w[3:] - g[3:] * 0.05])
    np.testing.assert_array_equal(model.flat, w)
    assert model.log.count("gradient") == 4 and model.log.count("after_step") == 2

    calls, real = [], ToyKind.gradient

    def second_call_explodes(self, x, rng):
        terms = real(self, x, rng)
        calls.append(1)
        if len(calls) == 2:
            self.model.grad_flat[:] = np.nan
        return terms

    before = model.flat.copy()
    monkeypatch.setattr(ToyKind, "gradient", second_call_explodes)
    with pytest.raises(TrainingDivergedError, match="epoch 1, step 1/2"):
        fit(model, X, SGD(0.1), batch_size=5, rng=np.random.default_rng(1),
            schedule="alternating")
    np.testing.assert_array_equal(model.flat, before)


def test_keep_best_restores_the_parameters_and_state_of_the_best_epoch(toy_kind):
    """A monitor whose values per epoch are 3, 1, 2, 1: best is [True, True, False, False] (a
    tie is not a new best), and the model ends with the parameters and the step counter it had
    after epoch 2 (recorded from the epoch events); the monitors are history columns."""
    model, X = Toy(), data()
    values, seen = iter([3.0, 1.0, 2.0, 1.0]), {}

    def record(event):
        if event["kind"] == "epoch":
            seen[event["epoch"]] = (model.flat.copy(), model.steps.copy())

    h = fit(model, X, SGD(0.1), epochs=4, batch_size=5, rng=np.random.default_rng(0),
            callback=record, monitor={"held_out": lambda m: next(values),
                                      "norm": lambda m: float(np.abs(m.flat).sum())},
            keep_best="held_out")
    assert list(h) == ["epoch", "loss", "dist", "steps", "held_out", "norm", "best", "seconds"]
    assert h["best"] == [True, True, False, False] and h["held_out"] == [3.0, 1.0, 2.0, 1.0]
    np.testing.assert_array_equal(model.flat, seen[2][0])
    np.testing.assert_array_equal(model.steps, seen[2][1])
    assert h["norm"][-1] == float(np.abs(seen[4][0]).sum()) != float(np.abs(model.flat).sum())


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(k=2), ValueError, "k does not apply to a Toy"),
    (dict(objective="iwae"), ValueError, "objective does not apply to a Toy"),
    (dict(binarize=True), ValueError, "binarize does not apply to a Toy"),
    (dict(reseed=False), TypeError, "unexpected keyword argument 'reseed'"),
    (dict(keep_best="held_out"), ValueError, "keep_best must be None or the name of a monitor"),
    (dict(monitor={"m": 3}), ValueError, "monitor must be None or a dict"),
])
def test_options_a_kind_does_not_read_are_refused(toy_kind, kwargs, error, message):
    with pytest.raises(error, match=message):
        fit(Toy(), data(), SGD(0.1), rng=np.random.default_rng(0), **kwargs)


@pytest.mark.parametrize("model, kwargs, message", [
    (VQVAE(D, (4,), n_latents=2, code_dim=2, codebook_size=3), dict(k=2),
     "k does not apply to a VQVAE"),
    (VQVAE(D, (4,), n_latents=2, code_dim=2, codebook_size=3), dict(schedule="alternating"),
     "schedule must be 'joint' for a VQVAE"),
    (MADEPrior(2, 3, hidden=(4,)), dict(binarize=True), "binarize does not apply to a MADEPrior"),
    (VAE(D, (4,), 2), dict(reseed=False), "unexpected keyword argument 'reseed'"),
])
def test_the_kinds_refuse_what_they_do_not_read(model, kwargs, message):
    X = (np.random.default_rng(0).integers(0, 3, (8, 2)) if isinstance(model, MADEPrior)
         else data(8))
    with pytest.raises((ValueError, TypeError), match=message):
        fit(model, X, SGD(0.1), rng=np.random.default_rng(0), **kwargs)


# --------------------------------------------------------------------------- every kind, one loop
def every_kind():
    """(id, model, X, name of a parameter to break) for each kind fit trains."""
    X = (np.random.default_rng(0).random((10, D)) < 0.5).astype(np.float64)
    return [("vae", VAE(D, (4,), 2, seed=0), X, "decoder.out.b"),
            ("flow vae", VAE(D, (4,), 2, seed=0, flow="planar", flow_length=2), X,
             "decoder.out.b"),
            ("vqvae", VQVAE(D, (4,), n_latents=2, code_dim=2, codebook_size=3), X,
             "decoder.out.b"),
            ("made", MADEPrior(2, 3, hidden=(4,)), np.random.default_rng(0).integers(0, 3, (10, 2)),
             "out.b"),
            ("toy", Toy(), data(), "w")]


@pytest.mark.parametrize("case", range(5), ids=[c[0] for c in every_kind()])
def test_every_kind_runs_through_the_same_loop(case, toy_kind):
    """The same events and numbering for every kind: a "step" event per batch (epoch, step,
    steps, examples so far), then an "epoch" event that is the history's row; epochs numbered
    from first_epoch; False from a step event stops after that step (no row); a non-finite
    loss stops with TrainingDivergedError naming the epoch and step, the parameters untouched."""
    name, model, X, broken = every_kind()[case]
    events = []
    h = fit(model, X, SGD(0.01), epochs=2, batch_size=4, rng=np.random.default_rng(0),
            callback=events.append, first_epoch=3)
    assert [(e["kind"], e["epoch"], e.get("step")) for e in events] == [
        (kind, epoch, step) for epoch in (3, 4)
        for kind, step in (("step", 1), ("step", 2), ("step", 3), ("epoch", None))]
    assert [e["examples"] for e in events if e["kind"] == "step"] == [4, 8, 10] * 2
    assert all(e["steps"] == 3 for e in events if e["kind"] == "step")
    rows = [e for e in events if e["kind"] == "epoch"]
    assert h["epoch"] == [3, 4] and list(h)[0] == "epoch" and list(h)[-1] == "seconds"
    for i, row in enumerate(rows):
        assert {key: row[key] for key in h} == {key: values[i] for key, values in h.items()}

    stopped = []
    h = fit(model, X, SGD(0.01), epochs=2, batch_size=4, rng=np.random.default_rng(0),
            callback=lambda e: stopped.append(e) or len(stopped) < 2)
    assert len(stopped) == 2 and h["epoch"] == []

    model.params[broken][...] = np.inf
    before = model.flat.copy()
    with pytest.raises(TrainingDivergedError, match="epoch 3, step 1/3"):
        fit(model, X, SGD(0.01), batch_size=4, rng=np.random.default_rng(0), first_epoch=3)
    np.testing.assert_array_equal(model.flat, before)


# --------------------------------------------------------------------------- the command line
@pytest.fixture
def toy_cli(toy_kind):
    """The toy registered as a run kind and a command kind, as an extension outside vae_np
    would: a ``--coupling`` option of its own, a test loss per epoch, no evaluate or sample."""
    from vae_np.cli.kinds import COMMAND_KINDS, CommandKind, run_config, shared_settings
    from vae_np.runs.kinds import RUN_KINDS, RunKind

    class Commands(CommandKind):
        name, title, help = "toy", "toy", "toy: a vector fitted to the data"
        options = ("coupling",)

        def add_arguments(self, p):
            p.add_argument_group("toy options").add_argument("--coupling", type=float)

        def build_config(self, args):
            s = shared_settings(args)
            model = dict(x_dim=1, coupling=args.coupling or 0.0, dtype=s["dtype"], seed=s["seed"])
            return run_config(self, args, s, model)

        def epoch_columns(self, run, h):
            x = run.x_test / 255.0
            return dict(train_loss=h["loss"][0], train_dist=h["dist"][0], steps=h["steps"][0],
                        test_loss=run.model.loss(x))

        def epoch_line(self, run, row):
            return f"epoch {row['epoch']}  toy loss {row['train_loss']:.3f}"

    RUN_KINDS.register("toy", RunKind("toy", "toy", Toy, (
        "epoch", "train_loss", "train_dist", "steps", "test_loss", "lr", "seconds"),
        ("dataset", "optimizer", "lr", "epochs", "batch_size", "seed"),
        integer_columns=("epoch", "steps")))
    COMMAND_KINDS.register("toy", Commands())
    yield
    RUN_KINDS.pop("toy")
    COMMAND_KINDS.pop("toy")


TOY = ["train", "--model", "toy", "--dataset", "sprites", "--limit", "30", "--batch-size", "8",
       "--optimizer", "sgd", "--lr", "0.05", "--coupling", "0.01", "-q", "--no-figures"]


def test_a_kind_registered_from_outside_trains_and_resumes_bit_exact(toy_cli, tmp_path,
                                                                     fast_sprites, capsys):
    """train --model toy writes the one run layout (config.json naming the kind, the toy's
    history columns, its state in the checkpoint), and --resume reaches the arrays of the run
    trained straight through: parameters, state, optimizer, rng, history."""
    assert cli.main([*TOY, "--epochs", "3", "--out", str(tmp_path / "straight")]) == 0
    assert cli.main([*TOY, "--epochs", "1", "--out", str(tmp_path / "part")]) == 0
    assert cli.main(["train", "--resume", str(tmp_path / "part"), "--epochs", "3", "-q",
                     "--no-figures"]) == 0
    straight, part = (npz(tmp_path / run / "checkpoint.npz") for run in ("straight", "part"))
    assert not differences(straight, part)
    assert int(part["toy.steps"][0]) == 3 * 4 and int(part["epoch"]) == 3
    config = json.loads((tmp_path / "part" / "config.json").read_text())
    assert config["kind"] == "toy" and config["model"]["coupling"] == 0.01
    header = (tmp_path / "part" / "history.csv").read_text().splitlines()[0]
    assert header == "epoch,train_loss,train_dist,steps,test_loss,lr,seconds"
    assert "epoch 3  toy loss" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    ([*TOY, "--z-dim", "2"], "--z-dim does not apply to --model toy"),
    ([*TOY, "--k", "2", "--beta", "1"], "--k, --beta do not apply to --model toy"),
    (["train", "--coupling", "0.5", "--limit", "5"], "--coupling applies to --model toy"),
    (["train", "--model", "vqvae", "--coupling", "0.5", "--limit", "5"],
     "--coupling does not apply to --model vqvae"),
])
def test_options_of_other_kinds_are_refused_in_one_line(toy_cli, argv, message, tmp_path,
                                                       capsys):
    assert cli.main([*argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err


def test_commands_a_kind_lacks_are_refused_in_one_line(toy_cli, tmp_path, fast_sprites, capsys):
    run = tmp_path / "run"
    assert cli.main([*TOY, "--epochs", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    for argv, taker in ((["evaluate", str(run)], "VAE or VQ-VAE"),
                        (["sample", str(run)], "VAE or VQ-VAE"),
                        (["fit-prior", str(run)], "VQ-VAE")):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert f"not a {taker} run: {argv[0]} applies to those, and this is a toy run" in err
    assert cli.main(["train", "--resume", str(run), "--model", "vae"]) == 2
    assert "is a toy run; --model vae does not apply to it" in capsys.readouterr().err
