"""Bad input gives a ValueError that names the argument and says what was expected.

Table-driven: the tables are in ``tests/core/table_bad_input.py``; each case's call must raise
ValueError (not a NumPy error, not a silently wrong number) and its message must contain every
word of the case.
"""
import numpy as np
import pytest

from strategies import assert_unchanged, snapshot
from table_bad_input import (BERNOULLI, CALL_CASES, CONSTRUCTOR_CASES, DECODE_CASES, EPS_CASES,
                             FIT_CASES, GAUSSIAN, GOOD_EPS, GOOD_X, K_CASES, LR_CASES, X_CASES,
                             X_DIM, X_METHODS, X_ONLY, B, model)
from vae_np import SGD, fit


def _x_name(method):
    return "X" if method == "fit" else "x"


def _words(words, method):
    return [(_x_name(method) if w == "x" else w) for w in words]


def _assert_words(exc, words):
    for w in words:
        assert w in str(exc), (w, str(exc))


@pytest.mark.parametrize("entry, method, case", X_CASES, ids=[f"{m}-{c[0]}" for _, m, c in X_CASES])
def test_bad_x(entry, method, case):
    _, x, words = case
    call = X_METHODS.get(method) or X_ONLY[method]
    if method == "fit" and case[0] == "ints 0..255":
        words = ["X", "uint8"]                     # fit takes uint8 or floats, not other ints
    before = snapshot(x) if isinstance(x, np.ndarray) else None
    with pytest.raises(ValueError) as info:
        call(BERNOULLI, x)
    _assert_words(info.value, _words(words, method))
    if before is not None:
        assert_unchanged(before, x)


@pytest.mark.parametrize("x", [np.full((B, X_DIM), 3.0), np.full((B, X_DIM), -2.0)])
def test_gaussian_accepts_any_real_x(x):
    assert np.isfinite(GAUSSIAN.loss(x, eps=GOOD_EPS))


@pytest.mark.parametrize("entry, method, k", K_CASES, ids=repr)
def test_bad_k(entry, method, k):
    with pytest.raises(ValueError, match=r"\bk\b.*integer"):
        X_METHODS[method](BERNOULLI, GOOD_X, k=k)


@pytest.mark.parametrize("entry, method, case", EPS_CASES,
                         ids=[f"{m}-{c[0]}" for _, m, c in EPS_CASES])
def test_bad_eps_and_rng(entry, method, case):
    _, kwargs, words = case
    with pytest.raises(ValueError) as info:
        X_METHODS[method](BERNOULLI, GOOD_X, **kwargs)
    _assert_words(info.value, words)


@pytest.mark.parametrize("entry, kwargs, words", CONSTRUCTOR_CASES, ids=lambda v: repr(v)[:40])
def test_bad_constructor_argument(entry, kwargs, words):
    with pytest.raises(ValueError) as info:
        model(**kwargs)
    _assert_words(info.value, words)


@pytest.mark.parametrize("entry, cls, lr", LR_CASES, ids=repr)
def test_non_positive_or_non_numeric_learning_rate(entry, cls, lr):
    with pytest.raises(ValueError, match=r"\blr\b"):
        cls(lr)


@pytest.mark.parametrize("entry, call, words", DECODE_CASES,
                         ids=[f"{e}-{w[0]}-{w[1]}" for e, _, w in DECODE_CASES])
def test_bad_decode_and_sample(entry, call, words):
    with pytest.raises(ValueError) as info:
        call(BERNOULLI)
    _assert_words(info.value, words)


@pytest.mark.parametrize("entry, kwargs, words", FIT_CASES, ids=lambda v: repr(v)[:40])
def test_bad_fit_argument(entry, kwargs, words):
    m = model(seed=1)
    start = m.flat.copy()
    kwargs = {"optimizer": SGD(0.1), **kwargs}
    with pytest.raises(ValueError) as info:
        fit(m, GOOD_X, **kwargs)
    _assert_words(info.value, words)
    np.testing.assert_array_equal(m.flat, start)          # rejected before any step


@pytest.mark.parametrize("entry, call, pattern", CALL_CASES,
                         ids=[f"{e}-{p}" for e, _, p in CALL_CASES])
def test_bad_fit_model_and_gradcheck_arguments(entry, call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()
