"""Bad input gives a ValueError that names the argument and says what was expected.

Table-driven: each case is (id, call, words); the call must raise ValueError (not a NumPy
error, not a silently wrong number) and its message must contain every word in ``words``.
"""
import numpy as np
import pytest

from strategies import assert_unchanged, snapshot
from vae_np import SGD, VAE, Adagrad, Adam, Momentum, fit
from vae_np.gradcheck import check_gradients, check_model

X_DIM, Z_DIM, B = 4, 2, 3
GOOD_X = np.full((B, X_DIM), 0.5)
GOOD_EPS = np.zeros((B, Z_DIM))


def model(**kw):
    args = dict(x_dim=X_DIM, hidden=(3,), z_dim=Z_DIM, activation="tanh", likelihood="bernoulli")
    args.update(kw)
    return VAE(**args)


def with_nan(a, value=np.nan):
    a = np.array(a, dtype=float)
    a.flat[1] = value
    return a


BERNOULLI, GAUSSIAN = model(), model(likelihood="gaussian")

# every public entry point that takes a batch x (and, where it has them, k and eps)
X_METHODS = {
    "loss_and_grads": lambda m, x, **kw: m.loss_and_grads(x, **kw),
    "loss": lambda m, x, **kw: m.loss(x, **kw),
    "elbo_terms": lambda m, x, **kw: m.elbo_terms(x, **kw),
    "log_weights": lambda m, x, **kw: m.log_weights(x, **kw),
}
X_ONLY = {
    "encode": lambda m, x: m.encode(x),
    "reconstruct": lambda m, x: m.reconstruct(x),
    "fit": lambda m, x: fit(m, x, SGD(0.1), rng=np.random.default_rng(0)),
}

BAD_X = [
    ("1-D", np.zeros(X_DIM), ["x", "2-dimensional"]),
    ("3-D", np.zeros((1, B, X_DIM)), ["x", "2-dimensional"]),
    ("wrong width", np.zeros((B, X_DIM + 1)), ["x", f"{X_DIM}"]),
    ("empty batch", np.zeros((0, X_DIM)), ["x", "empty"]),
    ("strings", np.full((B, X_DIM), "a"), ["x", "numeric"]),
    ("object", np.full((B, X_DIM), None, dtype=object), ["x", "numeric"]),
    ("complex", np.zeros((B, X_DIM), complex), ["x", "real"]),
    ("NaN", with_nan(GOOD_X), ["x", "finite"]),
    ("inf", with_nan(GOOD_X, np.inf), ["x", "finite"]),
    ("-inf", with_nan(GOOD_X, -np.inf), ["x", "finite"]),
    ("ragged list", [[0.5] * X_DIM, [0.5]], ["x", "array"]),
    ("None", None, ["x"]),
]
BAD_X_BERNOULLI = [
    ("above 1", np.full((B, X_DIM), 1.5), ["x", "[0, 1]", "Bernoulli"]),
    ("below 0", np.full((B, X_DIM), -0.25), ["x", "[0, 1]", "Bernoulli"]),
    ("ints 0..255", np.full((B, X_DIM), 200, dtype=np.int64), ["x", "[0, 1]"]),
]


def _x_name(method):
    return "X" if method == "fit" else "x"


def _words(words, method):
    return [(_x_name(method) if w == "x" else w) for w in words]


@pytest.mark.parametrize("case", BAD_X + BAD_X_BERNOULLI, ids=lambda c: c[0])
@pytest.mark.parametrize("method", sorted(X_METHODS) + sorted(X_ONLY))
def test_bad_x(method, case):
    _, x, words = case
    call = X_METHODS.get(method) or X_ONLY[method]
    if method == "fit" and case[0] == "ints 0..255":
        words = ["X", "uint8"]                     # fit takes uint8 or floats, not other ints
    before = snapshot(x) if isinstance(x, np.ndarray) else None
    with pytest.raises(ValueError) as info:
        call(BERNOULLI, x)
    for w in _words(words, method):
        assert w in str(info.value), (w, str(info.value))
    if before is not None:
        assert_unchanged(before, x)


@pytest.mark.parametrize("x", [np.full((B, X_DIM), 3.0), np.full((B, X_DIM), -2.0)])
def test_gaussian_accepts_any_real_x(x):
    assert np.isfinite(GAUSSIAN.loss(x, eps=GOOD_EPS))


BAD_K = [0, -1, 1.5, "2", None, True]


@pytest.mark.parametrize("k", BAD_K, ids=repr)
@pytest.mark.parametrize("method", sorted(X_METHODS))
def test_bad_k(method, k):
    with pytest.raises(ValueError, match=r"\bk\b.*integer"):
        X_METHODS[method](BERNOULLI, GOOD_X, k=k)


BAD_EPS = [
    ("wrong Z", dict(eps=np.zeros((B, Z_DIM + 1))), ["eps", "shape"]),
    ("wrong B", dict(eps=np.zeros((B + 1, Z_DIM))), ["eps", "shape"]),
    ("2-D with k=2", dict(k=2, eps=np.zeros((B, Z_DIM))), ["eps", "shape", "k=2"]),
    ("wrong K", dict(k=2, eps=np.zeros((3, B, Z_DIM))), ["eps", "shape"]),
    ("NaN", dict(eps=with_nan(GOOD_EPS)), ["eps", "finite"]),
    ("inf", dict(eps=with_nan(GOOD_EPS, np.inf)), ["eps", "finite"]),
    ("strings", dict(eps=np.full((B, Z_DIM), "e")), ["eps", "numeric"]),
    ("complex", dict(eps=np.zeros((B, Z_DIM), complex)), ["eps", "real"]),
    ("object", dict(eps=np.full((B, Z_DIM), None, dtype=object)), ["eps", "numeric"]),
    ("empty", dict(eps=np.zeros((0, Z_DIM))), ["eps"]),
    ("rng not a Generator", dict(rng=42), ["rng", "Generator"]),
    ("legacy RandomState", dict(rng=np.random.RandomState(0)), ["rng", "Generator"]),
]


@pytest.mark.parametrize("case", BAD_EPS, ids=lambda c: c[0])
@pytest.mark.parametrize("method", sorted(X_METHODS))
def test_bad_eps_and_rng(method, case):
    _, kwargs, words = case
    with pytest.raises(ValueError) as info:
        X_METHODS[method](BERNOULLI, GOOD_X, **kwargs)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


BAD_CONSTRUCTOR = [
    (dict(activation="swish"), ["activation", "relu", "tanh"]),
    (dict(activation=None), ["activation"]),
    (dict(likelihood="poisson"), ["likelihood", "bernoulli"]),
    (dict(likelihood="Bernoulli"), ["likelihood"]),
    (dict(sigma_param="exp"), ["sigma_param", "logvar", "softplus"]),
    (dict(decoder_mean="tanh"), ["decoder_mean", "identity", "sigmoid"]),
    (dict(sigma_min=0), ["sigma_min", "> 0"]),
    (dict(sigma_min=-1e-3), ["sigma_min", "> 0"]),
    (dict(sigma_min=float("nan")), ["sigma_min", "finite"]),
    (dict(sigma_min="0.1"), ["sigma_min"]),
    (dict(decoder_sigma_min=-0.1), ["decoder_sigma_min", ">= 0"]),
    (dict(decoder_sigma=0.0), ["decoder_sigma", "> 0"]),
    (dict(init_std=0), ["init_std", "> 0"]),
    (dict(init_std=-1), ["init_std"]),
    (dict(dtype=np.int32), ["dtype", "float32 or float64"]),
    (dict(dtype=np.float16), ["dtype", "float32 or float64"]),
    (dict(dtype=np.complex128), ["dtype", "float32 or float64"]),
    (dict(dtype="float17"), ["dtype", "float32 or float64"]),
    (dict(x_dim=0), ["x_dim", ">= 1"]),
    (dict(x_dim=2.5), ["x_dim", "integer"]),
    (dict(z_dim=0), ["z_dim", ">= 1"]),
    (dict(z_dim="2"), ["z_dim", "integer"]),
    (dict(hidden=(0,)), ["hidden"]),
    (dict(hidden=(3, -1)), ["hidden"]),
    (dict(hidden=(2.5,)), ["hidden"]),
    (dict(hidden=None), ["hidden"]),
    (dict(seed=-1), ["seed"]),
    (dict(seed="a"), ["seed"]),
]


@pytest.mark.parametrize("kwargs, words", BAD_CONSTRUCTOR, ids=lambda v: repr(v)[:40])
def test_bad_constructor_argument(kwargs, words):
    with pytest.raises(ValueError) as info:
        model(**kwargs)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


@pytest.mark.parametrize("cls", [SGD, Momentum, Adagrad, Adam])
@pytest.mark.parametrize("lr", [0, -0.1, float("nan"), float("-inf"), "0.1", None])
def test_non_positive_or_non_numeric_learning_rate(cls, lr):
    with pytest.raises(ValueError, match=r"\blr\b"):
        cls(lr)


BAD_DECODE = [
    (lambda m: m.decode(np.zeros((2, Z_DIM + 1))), ["z", "shape"]),
    (lambda m: m.decode(np.zeros(Z_DIM)), ["z", "2-dimensional"]),
    (lambda m: m.decode(with_nan(np.zeros((2, Z_DIM)))), ["z", "finite"]),
    (lambda m: m.decode(np.zeros((0, Z_DIM))), ["z", "empty"]),
    (lambda m: m.decode(np.full((2, Z_DIM), "z")), ["z", "numeric"]),
    (lambda m: m.sample(0), ["n", ">= 1"]),
    (lambda m: m.sample(2.0), ["n", "integer"]),
    (lambda m: m.sample(2, rng=7), ["rng", "Generator"]),
]


@pytest.mark.parametrize("case", BAD_DECODE, ids=lambda c: c[1][0] + "-" + c[1][1])
def test_bad_decode_and_sample(case):
    call, words = case
    with pytest.raises(ValueError) as info:
        call(BERNOULLI)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


BAD_FIT = [
    (dict(epochs=0), ["epochs"]),
    (dict(batch_size=0), ["batch_size"]),
    (dict(batch_size=2.5), ["batch_size"]),
    (dict(k=0), ["k"]),
    (dict(schedule="interleaved"), ["schedule", "alternating", "joint"]),
    (dict(optimizer=0.1), ["optimizer"]),
    (dict(optimizer=(SGD(0.1),), schedule="alternating"), ["optimizer"]),
    (dict(rng=3), ["rng", "Generator"]),
    (dict(callback="print"), ["callback"]),
]


@pytest.mark.parametrize("kwargs, words", BAD_FIT, ids=lambda v: repr(v)[:40])
def test_bad_fit_argument(kwargs, words):
    m = model(seed=1)
    start = m.flat.copy()
    kwargs = {"optimizer": SGD(0.1), **kwargs}
    with pytest.raises(ValueError) as info:
        fit(m, GOOD_X, **kwargs)
    for w in words:
        assert w in str(info.value), (w, str(info.value))
    np.testing.assert_array_equal(m.flat, start)          # rejected before any step


def test_fit_rejects_a_non_model():
    with pytest.raises(ValueError, match="model"):
        fit("vae", GOOD_X, SGD(0.1))


def test_bad_gradcheck_arguments():
    with pytest.raises(ValueError, match="method"):
        check_model(BERNOULLI, GOOD_X, method="backward")
    with pytest.raises(ValueError, match="tol"):
        check_gradients(lambda p: 0.0, np.zeros(2), np.zeros(2), tol=-1)
    with pytest.raises(ValueError, match="directions"):
        check_gradients(lambda p: 0.0, np.zeros(2), np.zeros(2), method="directional",
                        directions=0)
    with pytest.raises(ValueError, match=r"\bk\b"):
        check_model(BERNOULLI, GOOD_X, k=0)
