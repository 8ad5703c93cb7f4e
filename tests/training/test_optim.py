"""Optimizers on the flat vector against reference formulas written out here.

Each update is compared for several steps with the textbook formula on small float64 vectors. The
library works in place and folds Adam's bias corrections into scalars, which reorders a few
roundings per step, each ~1e-16 of the quantities it touches: theta and that step's update. So the
parameters must agree to 1e-12 of the path length |theta_0| + sum_t |update_t| (per coordinate,
updates from the reference): a margin of ~1000 over rounding, while any wrong factor, bias
correction or moment update misses by many orders of magnitude.
"""
import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategies import arrays, assert_unchanged, floats, snapshot
from vae_np.optim import OPTIMIZERS, SGD, Adagrad, Adam, Momentum

PATH_TOL = 1e-12
N_STEPS = 5


def assert_matches_reference(theta, reference):
    expected, path = reference
    bad = np.abs(theta - expected) > PATH_TOL * path
    assert not bad.any(), (theta, expected, path)


# --------------------------------------------------------------------------- reference formulas
def ref_sgd(theta, grads, lr):
    path = np.abs(theta)
    for g in grads:
        update = lr * g
        theta, path = theta - update, path + np.abs(update)
    return theta, path


def ref_momentum(theta, grads, lr, beta):
    v, path = np.zeros_like(theta), np.abs(theta)
    for g in grads:
        v = beta * v + g
        update = lr * v
        theta, path = theta - update, path + np.abs(update)
    return theta, path


def ref_adagrad(theta, grads, lr, eps):
    G, path = np.zeros_like(theta), np.abs(theta)
    for g in grads:
        G = G + g ** 2
        update = lr * g / (np.sqrt(G) + eps)
        theta, path = theta - update, path + np.abs(update)
    return theta, path


def ref_adam(theta, grads, lr, b1, b2, eps):
    m, v, path = np.zeros_like(theta), np.zeros_like(theta), np.abs(theta)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        update = lr * m_hat / (np.sqrt(v_hat) + eps)
        theta, path = theta - update, path + np.abs(update)
    return theta, path


def run(opt, theta, grads):
    flat = theta.copy()
    for g in grads:
        before = snapshot(g)
        opt.step(flat, g)
        assert_unchanged(before, g)                 # the gradient is read, never written
    return flat


problems = st.integers(1, 6).flatmap(lambda n: st.tuples(
    arrays((n,), -2, 2), st.lists(arrays((n,), -3, 3), min_size=1, max_size=N_STEPS)))
learning_rates = floats(1e-4, 0.5)
betas = floats(0.0, 0.999)


@given(problem=problems, lr=learning_rates)
def test_sgd(problem, lr):
    theta, grads = problem
    assert_matches_reference(run(SGD(lr), theta, grads), ref_sgd(theta, grads, lr))


@given(problem=problems, lr=learning_rates, beta=betas)
def test_momentum(problem, lr, beta):
    theta, grads = problem
    assert_matches_reference(run(Momentum(lr, beta), theta, grads),
                             ref_momentum(theta, grads, lr, beta))


@given(problem=problems, lr=learning_rates, eps=floats(1e-10, 1e-3))
def test_adagrad(problem, lr, eps):
    theta, grads = problem
    assert_matches_reference(run(Adagrad(lr, eps), theta, grads),
                             ref_adagrad(theta, grads, lr, eps))


@given(problem=problems, lr=learning_rates, b1=betas, b2=betas, eps=floats(1e-10, 1e-3))
def test_adam(problem, lr, b1, b2, eps):
    theta, grads = problem
    assert_matches_reference(run(Adam(lr, (b1, b2), eps), theta, grads),
                             ref_adam(theta, grads, lr, b1, b2, eps))


@pytest.mark.parametrize("block", [1, 2, 4])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_blocks_cover_every_parameter_once(monkeypatch, name, block):
    """A step updates the vector in blocks of optim.BLOCK_ELEMENTS numbers. Shrunk to 1, 2 and 4
    for a vector of 7 (the last block partial), every coordinate must still follow the reference
    formula, and bit for bit as with one block for all."""
    import vae_np.optim.base
    rng = np.random.default_rng(5)
    theta, grads = rng.standard_normal(7), list(rng.standard_normal((N_STEPS, 7)))
    make = {"sgd": lambda: SGD(0.1), "momentum": lambda: Momentum(0.1, 0.9),
            "adagrad": lambda: Adagrad(0.1, 1e-8), "adam": lambda: Adam(0.1, (0.9, 0.99), 1e-8)}
    reference = {"sgd": lambda: ref_sgd(theta, grads, 0.1),
                 "momentum": lambda: ref_momentum(theta, grads, 0.1, 0.9),
                 "adagrad": lambda: ref_adagrad(theta, grads, 0.1, 1e-8),
                 "adam": lambda: ref_adam(theta, grads, 0.1, 0.9, 0.99, 1e-8)}
    whole = run(make[name](), theta, grads)
    monkeypatch.setattr(vae_np.optim.base, "BLOCK_ELEMENTS", block)   # where the step reads it
    opt, sizes = make[name](), []
    update = opt._update
    opt._update = lambda flat, g, buf: sizes.append(flat.size) or update(flat, g, buf)
    blocked = run(opt, theta, grads)
    # the shrunk block is the one the steps used (blocking is bit-exact, so only this shows it)
    assert sizes == [min(block, 7 - i) for i in range(0, 7, block)] * N_STEPS
    assert_matches_reference(blocked, reference[name]())
    assert np.array_equal(blocked, whole)


def test_adam_first_step_is_lr_times_sign():
    """With bias correction the first Adam step is lr * g / (|g| + eps) ~ lr * sign(g)."""
    flat = np.zeros(3)
    Adam(0.1, eps=1e-12).step(flat, np.array([3.0, -0.002, 50.0]))
    np.testing.assert_allclose(flat, [-0.1, 0.1, -0.1], rtol=1e-9)


@pytest.mark.parametrize("betas", [(0.0, 0.0), (0.9, 0.0), (0.0, 0.999), (0.5, 0.5)])
def test_adam_small_betas_keep_precision_when_gradients_shrink(betas):
    """Moving averages that drop by orders of magnitude (small betas, g: 1 -> 1e-6) keep full
    relative precision: each step matches the formula to 1e-12 of its own size."""
    flat, opt = np.zeros(1), Adam(0.1, betas=betas, eps=1e-12)
    grads = [np.array([1.0]), np.array([1e-6]), np.array([1e-9])]
    expected_prev = np.zeros(1)
    for t in range(1, 4):
        before = flat.copy()
        opt.step(flat, grads[t - 1])
        expected, _ = ref_adam(np.zeros(1), grads[:t], 0.1, *betas, 1e-12)
        np.testing.assert_allclose(flat - before, expected - expected_prev, rtol=1e-12, atol=0)
        expected_prev = expected


def test_float32_vectors_keep_their_dtype():
    for cls in OPTIMIZERS.values():
        flat = np.ones(4, dtype=np.float32)
        opt = cls(0.1)
        opt.step(flat, np.full(4, 0.5, dtype=np.float32))
        assert flat.dtype == np.float32
        assert all(b.dtype == np.float32 for b in opt.state.values())


# --------------------------------------------------------------------------- state
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@given(problem=problems, split=st.integers(0, N_STEPS))
def test_state_dict_round_trip_continues_identically(name, problem, split):
    """Save after ``split`` steps (through np.savez, without pickle), load into a new optimizer,
    continue both: bitwise the same parameters."""
    theta, grads = problem
    split = min(split, len(grads))
    opt = OPTIMIZERS[name](0.05)
    flat = theta.copy()
    for g in grads[:split]:
        opt.step(flat, g)
    buffer = io.BytesIO()
    np.savez(buffer, **opt.state_dict())
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as stored:
        state = {key: stored[key] for key in stored.files}
    restored = OPTIMIZERS[name](0.9)           # other hyperparameters: they must be restored too
    restored.load_state_dict(state)
    assert restored.t == opt.t == split
    flat_restored = flat.copy()
    for g in grads[split:] + grads:
        opt.step(flat, g)
        restored.step(flat_restored, g)
    np.testing.assert_array_equal(flat_restored, flat)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_spawn_has_same_hyperparameters_and_fresh_state(name):
    opt = OPTIMIZERS[name](0.03)
    opt.step(np.zeros(2), np.ones(2))
    twin = opt.spawn()
    assert type(twin) is type(opt) and twin.t == 0 and not twin.state
    for h in opt.hyperparameters:
        assert getattr(twin, h) == getattr(opt, h)


def test_load_state_dict_rejects_missing_entries():
    with pytest.raises(ValueError, match="missing"):
        Adam().load_state_dict({"lr": 0.1})
    state = Adam(0.1).state_dict()
    state["t"] = 3                              # steps taken but no moment buffers
    with pytest.raises(ValueError, match="buffers"):
        Adam().load_state_dict(state)


def test_state_for_another_size_is_rejected():
    opt = Momentum(0.1)
    opt.step(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="parameters"):
        opt.step(np.zeros(4), np.ones(4))


# --------------------------------------------------------------------------- bad hyperparameters
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("lr", [0, 0.0, -1e-3, float("nan"), float("inf"), "a", None, True])
def test_bad_learning_rate(name, lr):
    with pytest.raises(ValueError, match="lr"):
        OPTIMIZERS[name](lr)


@pytest.mark.parametrize("b", [(1.0, 0.999), (0.9, 1.0), (-0.1, 0.9), (0.9, 1.5),
                               (float("nan"), 0.9), 0.9, (0.9,), (0.9, 0.99, 0.9)])
def test_bad_adam_betas(b):
    with pytest.raises(ValueError, match="betas"):
        Adam(1e-3, betas=b)


@pytest.mark.parametrize("beta", [1.0, -0.5, float("nan"), "x"])
def test_bad_momentum_beta(beta):
    with pytest.raises(ValueError, match="beta"):
        Momentum(0.1, beta=beta)


@pytest.mark.parametrize("cls", [Adam, Adagrad])
@pytest.mark.parametrize("eps", [0, -1e-8, float("nan")])
def test_bad_eps(cls, eps):
    with pytest.raises(ValueError, match="eps"):
        cls(0.1, eps=eps)


@pytest.mark.parametrize("flat, grad", [
    ([0.0, 1.0], np.zeros(2)),                    # not an ndarray
    (np.zeros(2), np.zeros(3)),                   # shapes differ
    (np.zeros((2, 2)), np.zeros((2, 2))),         # not 1-D
])
def test_bad_vectors(flat, grad):
    with pytest.raises(ValueError, match="flat"):
        SGD(0.1).step(flat, grad)
