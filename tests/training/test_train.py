"""The fit loop: learning, history, determinism, uint8 input, alternating schedule, divergence."""
import numpy as np
import pytest

from strategies import assert_unchanged, snapshot
from vae_np import SGD, VAE, Adam, Momentum, TrainingDivergedError, fit


def prototypes_data(n=96, d=8, seed=0):
    """Noisy copies of two binary prototypes: a VAE with z_dim 1 can learn them."""
    rng = np.random.default_rng(seed)
    protos = np.array([[1, 1, 1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 1, 1, 0, 0]], float)[:, :d]
    x = protos[rng.integers(0, 2, n)]
    flip = rng.random(x.shape) < 0.05
    return np.where(flip, 1 - x, x)


def tiny_model(**kw):
    args = dict(x_dim=8, hidden=(6,), z_dim=1, activation="tanh", likelihood="bernoulli", seed=0)
    args.update(kw)
    return VAE(**args)


def test_loss_decreases_on_a_learnable_dataset():
    X = prototypes_data()
    model = tiny_model()
    history = fit(model, X, Adam(0.02), epochs=40, batch_size=16, rng=np.random.default_rng(0))
    loss = history["loss"]
    # 8 pixels start near 8 ln 2 = 5.5 nats; two prototypes with 5% noise need ~1.6 + KL
    assert loss[0] > 4.5
    assert loss[-1] < 0.7 * loss[0]
    assert np.mean(loss[-5:]) < np.mean(loss[:5])


def test_history_keys_lengths_and_consistency():
    X = prototypes_data(n=50)
    events = []
    history = fit(tiny_model(), X, SGD(0.05), epochs=3, batch_size=16,
                  rng=np.random.default_rng(1), callback=events.append)
    assert set(history) == {"epoch", "loss", "recon", "kl", "seconds"}
    assert all(len(v) == 3 for v in history.values())
    assert history["epoch"] == [1, 2, 3]
    np.testing.assert_allclose(history["loss"], np.add(history["recon"], history["kl"]), rtol=1e-12)
    assert all(kl >= 0 for kl in history["kl"]) and all(s >= 0 for s in history["seconds"])
    steps = [e for e in events if e["kind"] == "step"]
    epochs = [e for e in events if e["kind"] == "epoch"]
    assert len(steps) == 3 * 4 and len(epochs) == 3          # ceil(50 / 16) = 4 steps per epoch
    assert [e["step"] for e in steps[:4]] == [1, 2, 3, 4] and steps[0]["steps"] == 4
    # examples seen so far in the epoch (the progress line's examples/s): 64 overstated the last
    assert [e["examples"] for e in steps[:4]] == [16, 32, 48, 50]
    # the epoch loss is the size-weighted mean of that epoch's batch losses (16, 16, 16, 2)
    sizes = np.array([16, 16, 16, 2])
    for epoch in range(3):
        batch_losses = np.array([e["loss"] for e in steps[4 * epoch:4 * epoch + 4]])
        np.testing.assert_allclose(history["loss"][epoch], sizes @ batch_losses / 50, rtol=1e-12)
        assert epochs[epoch]["loss"] == pytest.approx(history["loss"][epoch], rel=1e-12)


def test_callback_returning_false_stops():
    X = prototypes_data(n=40)
    model = tiny_model()
    calls = []

    def stop_after_two(event):
        calls.append(event)
        return not (event["kind"] == "step" and event["step"] == 2)
    fit(model, X, SGD(0.1), epochs=5, batch_size=8, rng=np.random.default_rng(0),
        callback=stop_after_two)
    assert len(calls) == 2


def test_same_seed_same_result():
    X = prototypes_data()
    results = []
    for _ in range(2):
        model = tiny_model(seed=3)
        history = fit(model, X, Momentum(0.05), epochs=2, batch_size=32,
                      rng=np.random.default_rng(11))
        results.append((model.flat.copy(), history["loss"]))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]
    # and a different data seed gives a different run
    model = tiny_model(seed=3)
    fit(model, X, Momentum(0.05), epochs=2, batch_size=32, rng=np.random.default_rng(12))
    assert not np.array_equal(model.flat, results[0][0])


def test_default_rng_is_the_models():
    X = prototypes_data(n=32)
    a, b = tiny_model(seed=4), tiny_model(seed=4)
    fit(a, X, SGD(0.1), epochs=1, batch_size=8)
    fit(b, X, SGD(0.1), epochs=1, batch_size=8)
    np.testing.assert_array_equal(a.flat, b.flat)


@pytest.mark.parametrize("binarize", [False, True])
def test_uint8_input_equals_float_input_over_255(binarize):
    """uint8 grey levels are scaled by 1/255 per batch; the same data as floats x/255 trains to
    the same parameters. x * (1/255) and x / 255 can differ in the last bit for 24 of the 256
    grey levels, so the parameters agree to rounding (1e-12 relative), not bitwise."""
    rng = np.random.default_rng(5)
    X_u8 = rng.integers(0, 256, size=(40, 8)).astype(np.uint8)
    X_float = X_u8 / 255.0
    before = snapshot(X_u8, X_float)
    models = []
    for X in (X_u8, X_float):
        model = tiny_model(seed=6)
        fit(model, X, Adam(0.01), epochs=1, batch_size=16, rng=np.random.default_rng(7),
            binarize=binarize)
        models.append(model)
    assert_unchanged(before, X_u8, X_float)
    np.testing.assert_allclose(models[0].flat, models[1].flat, rtol=1e-12, atol=1e-14)
    assert not np.array_equal(models[0].flat, tiny_model(seed=6).flat)      # it did train


def test_fit_does_not_mutate_data():
    X = prototypes_data(n=30)
    before = snapshot(X)
    fit(tiny_model(), X, SGD(0.1), epochs=2, batch_size=7, rng=np.random.default_rng(0))
    assert_unchanged(before, X)


def test_alternating_schedule_updates_encoder_then_decoder():
    """One alternating step = SGD on phi from a gradient at (phi, theta), then SGD on theta from a
    fresh gradient (new eps) at the updated (phi', theta) -- replayed here by hand."""
    X = prototypes_data(n=12)
    lr, k = 0.3, 2
    model = tiny_model(seed=8)
    reference = tiny_model(seed=8)
    fit(model, X, SGD(lr), epochs=1, batch_size=12, k=k, rng=np.random.default_rng(9),
        schedule="alternating")

    rng = np.random.default_rng(9)                 # the same stream fit consumed
    x = X[rng.permutation(12)]
    e = reference.n_encoder
    reference.loss_and_grads(x, k=k, eps=rng.standard_normal((k, 12, 1)))
    phi_step = lr * reference.grad_flat[:e]
    reference.flat[:e] -= phi_step
    reference.loss_and_grads(x, k=k, eps=rng.standard_normal((k, 12, 1)))
    reference.flat[e:] -= lr * reference.grad_flat[e:]
    np.testing.assert_allclose(model.flat, reference.flat, rtol=1e-12, atol=1e-15)

    # ... which is not what a joint step (both from the first gradient) would give
    joint = tiny_model(seed=8)
    fit(joint, X, SGD(lr), epochs=1, batch_size=12, k=k, rng=np.random.default_rng(9))
    np.testing.assert_allclose(joint.flat[:e], model.flat[:e], rtol=1e-12, atol=1e-15)
    assert not np.allclose(joint.flat[e:], model.flat[e:], rtol=1e-6, atol=0)


def test_alternating_with_a_pair_of_optimizers():
    X = prototypes_data(n=16)
    model = tiny_model(seed=1)
    start = model.flat.copy()
    enc, dec = Adam(1e-2), SGD(1e-2)
    fit(model, X, (enc, dec), epochs=1, batch_size=8, rng=np.random.default_rng(0),
        schedule="alternating")
    e = model.n_encoder
    assert enc.t == 2 and dec.t == 2
    assert enc.state["m"].size == e and dec.state["work"].size == model.flat.size - e
    assert not np.array_equal(model.flat[:e], start[:e])
    assert not np.array_equal(model.flat[e:], start[e:])


# --------------------------------------------------------------------------- divergence
@pytest.mark.parametrize("schedule", ["joint", "alternating"])
@pytest.mark.parametrize("lr", [1e2, 1e4, 1e8])
def test_divergence_names_the_step_and_keeps_the_parameters(schedule, lr):
    X = prototypes_data(n=64)
    model = tiny_model(seed=2)
    snapshots = [model.flat.copy()]               # parameters after each completed step

    def record(event):
        if event["kind"] == "step":
            snapshots.append(model.flat.copy())
    with pytest.raises(TrainingDivergedError, match=r"step \d+") as info:
        fit(model, X, SGD(lr), epochs=5, batch_size=8, rng=np.random.default_rng(0),
            callback=record, schedule=schedule)
    failing_step = len(snapshots)                 # steps are numbered from 1 within an epoch
    assert f"step {failing_step}/8" in str(info.value)
    assert "epoch 1" in str(info.value)
    # the parameters are those from before the failing step, and they are finite
    np.testing.assert_array_equal(model.flat, snapshots[-1])
    assert np.all(np.isfinite(model.flat))
    assert isinstance(info.value, FloatingPointError)


def test_non_finite_parameters_stop_at_the_first_step():
    X = prototypes_data(n=16)
    model = tiny_model()
    model.flat[0] = np.nan
    before = model.flat.copy()
    with pytest.raises(TrainingDivergedError, match="epoch 1, step 1/2"):
        fit(model, X, Adam(1e-3), epochs=1, batch_size=8, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(model.flat, before)             # NaN compares equal here


@pytest.mark.parametrize("dtype, huge, safe", [(np.float32, 2e19, 1e18), (np.float64, 2e154, 1e153)])
def test_divergence_guard_is_the_squared_gradient_norm(monkeypatch, dtype, huge, safe):
    """A finite gradient whose squared norm overflows (|g| > 1.8e19 in float32) counts as
    divergence, as Adam's second moment would be inf; one below that bound does not."""
    X = prototypes_data(n=16)
    backward = VAE.backward

    def backward_with(value):
        def patched(self, trace):
            backward(self, trace)
            self.grad_flat[3] = value       # one large but finite component
            return trace
        return patched
    for value, diverges in ((huge, True), (safe, False)):
        model = tiny_model(dtype=dtype)
        before = model.flat.copy()
        monkeypatch.setattr(VAE, "backward", backward_with(value))
        assert np.isfinite(model.dtype.type(value))
        if diverges:
            with pytest.raises(TrainingDivergedError, match="epoch 1, step 1/2"):
                fit(model, X, SGD(1e-30), epochs=1, batch_size=8, rng=np.random.default_rng(0))
            np.testing.assert_array_equal(model.flat, before)
        else:
            fit(model, X, SGD(1e-30), epochs=1, batch_size=8, rng=np.random.default_rng(0))
            assert np.all(np.isfinite(model.flat))


def test_first_epoch_numbers_history_and_divergence_errors():
    """A caller training one epoch at a time passes its own epoch count; the error carries it."""
    rng = np.random.default_rng(0)
    X = (rng.random((64, 6)) < 0.5).astype(np.float64)
    model = VAE(6, (4,), 2, "tanh", dtype=np.float64, seed=0)
    history = fit(model, X, SGD(0.01), epochs=2, batch_size=32, rng=rng, first_epoch=5)
    assert history["epoch"] == [5, 6]
    with pytest.raises(TrainingDivergedError) as info:
        fit(model, X, SGD(1e300), epochs=2, batch_size=32, rng=rng, first_epoch=7)
    assert info.value.epoch == 7 and info.value.step >= 1
    assert "epoch 7" in str(info.value)
    with pytest.raises(ValueError, match="first_epoch"):
        fit(model, X, SGD(0.01), first_epoch=0)
