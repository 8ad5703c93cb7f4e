"""Optimizer state save and restore (vae_np.optim state_dict / load_state_dict) beyond the np.savez
round trip of tests/training/test_optim.py, which saves and loads at once and only in float64:

- state_dict() is a snapshot: steps after it must not change it (with the buffers returned
  without .copy(), the saved moments moved on with the optimizer and nothing failed);
- load_state_dict() copies: steps after it must not write into the caller's arrays (with
  np.asarray for np.array, they did and nothing failed);
- a float32 optimizer restored continues in float32, bit for bit (a float64 scratch buffer after
  the load passed tests/training/test_optim.py; only the kill-and-resume tests saw it);
- buffers of different shapes or dtypes are refused by name, and a refused state leaves the
  optimizer as it was (a v shorter than m failed deep inside NumPy at the next step; a missing
  buffer left t loaded and the moments empty, so a later step restarted them from zero).
"""
import numpy as np
import pytest

from vae_np.optim import OPTIMIZERS, Adam

STATEFUL = sorted(name for name, cls in OPTIMIZERS.items() if cls.buffers)


def gradients(dtype, n=4, size=9):
    return list(np.random.default_rng(21).standard_normal((n, size)).astype(dtype))


def steps(opt, flat, grads):
    for g in grads:
        opt.step(flat, g)
    return flat


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", STATEFUL)
def test_a_saved_state_is_a_snapshot_and_a_loaded_one_a_copy(name, dtype):
    g = gradients(dtype)
    opt = OPTIMIZERS[name](0.05)
    flat = steps(opt, np.linspace(-1, 1, 9).astype(dtype), g[:2])
    saved, flat_saved = opt.state_dict(), flat.copy()
    kept = {k: np.array(v, copy=True) for k, v in saved.items()}
    steps(opt, flat, g[2:])                                   # the original moves on
    restored = OPTIMIZERS[name](0.9)
    restored.load_state_dict(saved)
    resumed = steps(restored, flat_saved, g[2:])              # the restored one moves on
    for key in opt.buffers:
        assert np.array_equal(saved[key], kept[key]), f"{key} changed after state_dict()"
        assert restored.state[key].dtype == dtype
    assert resumed.dtype == dtype and np.array_equal(resumed, flat)


@pytest.mark.parametrize("bad, match", [
    ({"v": np.ones(3)}, r"buffer v must be a float32 or float64 vector like m \(\(9,\), float64\)"),
    ({"v": np.ones(9, np.float32)}, "buffer v"),
    ({"m": np.ones((9, 1)), "v": np.ones((9, 1))}, "buffer m"),
    ({"m": np.array(["a"] * 9), "v": np.array(["a"] * 9)}, "buffer m"),
    ({"v": None}, "missing buffers"),
])
def test_mismatched_buffers_are_refused_and_leave_the_optimizer_as_it_was(bad, match):
    g = gradients(np.float64)
    opt = Adam(0.05)
    steps(opt, np.zeros(9), g[:2])
    state = {**opt.state_dict(), **{k: v for k, v in bad.items() if v is not None}, "t": 7}
    state.update({"lr": 0.3})
    for k, v in bad.items():
        if v is None:
            del state[k]
    target = Adam(0.01)
    steps(target, np.zeros(9), g[:1])
    before = (target.lr, target.t, {k: b.copy() for k, b in target.state.items()})
    with pytest.raises(ValueError, match=match):
        target.load_state_dict(state)
    assert (target.lr, target.t) == before[:2]
    assert all(np.array_equal(target.state[k], b) for k, b in before[2].items())
