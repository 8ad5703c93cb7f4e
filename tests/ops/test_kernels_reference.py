"""The fast kernels against the plain formulas written beside them ("formula first").

The two largest elementwise jobs of a step run cache-blocked and in place: the Bernoulli term
(``ops.bernoulli_nll_forward`` / ``_backward``, blocks of ``ops.likelihoods.BLOCK_ELEMENTS``
numbers along the sample axes) and the optimizer step (``optim.SGD``, ``Momentum``, ``Adagrad``,
``Adam``, blocks of ``optim.BLOCK_ELEMENTS`` numbers). Each has a reference in its module, the
formula in a NumPy line or a few, which a reader can hold against the maths:

    bernoulli_nll_reference           nll = sum_d softplus(l_d) - x_d l_d
    bernoulli_nll_backward_reference  dlogits = dnll (sigmoid(l) - x)
    sgd_reference, momentum_reference, adagrad_reference, adam_reference

Here hypothesis draws shapes (empty axes, one element, sizes that are not a multiple of the block,
several blocks once the block is shrunk to a few numbers), float32 and float64, and logits out to
+-800 (past the overflow of e^l in both dtypes), and checks that the kernel equals its reference:

- bit for bit where the arithmetic per element is the same: the Bernoulli pair (the blocked loop
  evaluates softplus as ln(1 + e^-|l|) + max(l, 0), the reference's softplus the same terms; the
  sum over D of a contiguous row is the same reduction; for a strided view of logits the
  reference may sum in another order, within the bound stated in the test), SGD, Momentum,
  Adagrad, and Adam's moments m, v;
- Adam's parameters within a stated rounding bound, because the class folds the bias corrections
  into two scalars: theta -= [lr sqrt(c2) / c1] m / (sqrt(v) + eps sqrt(c2)), c1 = 1 - b1^t,
  c2 = 1 - b2^t, where the reference rounds m / c1, v / c2, sqrt, + eps, /, lr * (see ADAM_ULPS).

The optimizers are driven through their public classes only (``step`` on flat vectors, several
steps, ``state_dict``, and a ``load_state_dict`` into a fresh optimizer part way), against the
reference applied step by step from zero buffers. (An empty vector is refused by every optimizer;
tests/core/table_model.py holds that row.) The references themselves are checked against the maths
by the independent formulas of tests/ops/test_ops.py and tests/training/test_optim.py, which the
kernels pass, and here by a gradient check of the Bernoulli pair.
"""
from unittest import mock

import numpy as np
import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vae_np import ops
from vae_np import optim
from vae_np.ops import likelihoods
from vae_np.optim import (
    OPTIMIZERS, adagrad_reference, adam_reference, momentum_reference, sgd_reference)
from vae_np.testing import assert_backward

DTYPES = [np.float32, np.float64]
BLOCKS = [1, 2, 3, 5, 7, 16, 1 << 16]        # numbers per block; 1 << 16 is the default


def assert_bitwise(actual, expected, what):
    """Same dtype, same shape, same bits (so -0.0 differs from 0.0 and no tolerance hides)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    size = actual.dtype.itemsize
    a = np.ascontiguousarray(actual).reshape(-1).view(np.uint8).reshape(-1, size)
    b = np.ascontiguousarray(expected).reshape(-1).view(np.uint8).reshape(-1, size)
    differ = np.any(a != b, axis=-1)
    if differ.any():
        i = np.unravel_index(np.argmax(differ), actual.shape)
        raise AssertionError(f"{what}: {differ.sum()} of {differ.size} values differ, first at "
                             f"{i}: {actual[i]!r} != {expected[i]!r}")


# --------------------------------------------------------------------------- Bernoulli term
# 88.7: e^l just below float32's overflow at 88.72; 103.9: e^-l below float32's smallest
# subnormal; 709.8 and 745.2 the same for float64 (709.78, 745.13); 800 past all of them.
EXTREME_LOGITS = [0.0, 1e-8, 17.0, 88.7, 103.9, 709.8, 745.2, 800.0]


def logit_values(dtype):
    width = np.finfo(dtype).bits
    exact = sorted({float(dtype(s * v)) for v in EXTREME_LOGITS for s in (1, -1)})
    return st.one_of(st.floats(-800, 800, width=width, allow_subnormal=False),
                     st.sampled_from(exact))


@st.composite
def bernoulli_problems(draw):
    """(logits, x, dnll, block) with logits (..., B, D), zero to two sample axes."""
    dtype = draw(st.sampled_from(DTYPES))
    lead = tuple(draw(st.lists(st.integers(0, 5), max_size=2)))
    B, D = draw(st.integers(0, 3)), draw(st.integers(0, 20))
    shape = lead + (B, D)
    logits = draw(hnp.arrays(dtype, shape, elements=logit_values(dtype)))
    if draw(st.booleans()) and len(shape) >= 3:        # a view whose axes run the other way
        logits = np.ascontiguousarray(logits.T).T
    kind = draw(st.sampled_from(["binary", "grey", "bool", "uint8"]))
    if kind == "grey":
        x = draw(hnp.arrays(dtype, (B, D), elements=st.floats(0, 1, width=np.finfo(dtype).bits)))
    else:
        bits = draw(hnp.arrays(np.bool_, (B, D)))
        x = bits.astype({"binary": dtype, "bool": np.bool_, "uint8": np.uint8}[kind])
    dnll = draw(hnp.arrays(dtype, shape[:-1], elements=st.floats(
        -3, 3, width=np.finfo(dtype).bits, allow_subnormal=False)))
    # a block size from BLOCKS, or one that holds 2 or 3 samples and a part of the next
    row = max(B * D, 1)
    block = draw(st.one_of(st.sampled_from(BLOCKS),
                           st.builds(lambda k, r: k * row + r, st.integers(2, 3),
                                     st.integers(0, row - 1))))
    return logits, x, dnll, block


def explicit(dtype, logits, x, block, view=False):
    """A Bernoulli problem written out (dnll drawn from a fixed seed), run on every test run."""
    logits, x = np.array(logits, dtype=dtype), np.array(x)
    if view:
        logits = np.ascontiguousarray(logits.T).T
    dnll = np.random.default_rng(0).standard_normal(logits.shape[:-1]).astype(dtype)
    return logits, x.astype(dtype) if x.dtype.kind == "f" else x, dnll, block


EXPLICIT_BERNOULLI = [
    # five samples of (2, 3), blocks of 2 samples and a part (13 numbers): three blocks, the last
    # partial; logits at +-800 and at the float32 overflow of e^l
    explicit(np.float32, np.linspace(-800, 800, 30).reshape(5, 2, 3), [[0, 1, 1], [1, 0, 0.5]],
             13),
    explicit(np.float64, [[[800.0, -800.0, 709.8, -745.2]]] * 3, [[1.0, 0.0, 0.0, 1.0]], 1),
    explicit(np.float64, [[-3.5]], [[True]], 1),                        # one element
    explicit(np.float32, np.zeros((0, 2, 3)), np.ones((2, 3)), 1),      # no sample
    explicit(np.float32, np.zeros((3, 2, 0)), np.ones((2, 0)), 1),      # no pixel
    # strided views: one sample of (3, 16) in (D, B) order, which NumPy sums in another order in
    # the reference; and float32 samples of (1, 2) in blocks of one, whose blocks NumPy 2.4's
    # np.negative misread before the backward made them C-ordered
    explicit(np.float64, np.random.default_rng(1).standard_normal((1, 3, 16)) * 30,
             np.eye(3, 16), 1, view=True),
    explicit(np.float32, np.arange(8.0).reshape(4, 1, 2) - 4, [[1.0, 1.0]], 1, view=True),
]


def blocks_of(shape, block):
    """How the kernel cuts the samples of logits of this shape (for hypothesis' statistics)."""
    samples, per = int(np.prod(shape[:-2])), max(1, block // max(shape[-2] * shape[-1], 1))
    if samples <= per:
        return "one block" if samples else "no sample"
    return "several blocks, " + ("the last partial" if samples % per else "all full")


@given(bernoulli_problems())
@example(EXPLICIT_BERNOULLI[0])
@example(EXPLICIT_BERNOULLI[1])
@example(EXPLICIT_BERNOULLI[2])
@example(EXPLICIT_BERNOULLI[3])
@example(EXPLICIT_BERNOULLI[4])
@example(EXPLICIT_BERNOULLI[5])
@example(EXPLICIT_BERNOULLI[6])
def test_bernoulli_kernels_equal_their_reference_bit_for_bit(problem):
    """Per element the blocked loop does the reference's arithmetic, so every value, of any shape
    and block size, is the reference's to the last bit, in the logits' dtype; and nothing
    overflows into a warning, an inf or a NaN, even at logits of +-800.

    One exception, in the reference: for logits whose last axis is not contiguous (a transposed
    view) NumPy's sum over D in the reference runs through the terms in memory order, one after
    the other, while the kernel sums a contiguous work row pairwise. The terms are still the same
    bits (dlogits, elementwise, stays bit for bit); each order of summing D terms is within
    (D - 1) u sum_d |term_d| of the exact sum (u = eps / 2), so the two nll within
    (D - 1) eps sum_d |term_d|."""
    logits, x, dnll, block = problem
    with mock.patch.object(likelihoods, "BLOCK_ELEMENTS", block), \
            np.errstate(over="raise", invalid="raise", divide="raise"):
        nll, cache = ops.bernoulli_nll_forward(logits, x)
        dlogits = ops.bernoulli_nll_backward(dnll, cache)
        nll_ref = ops.bernoulli_nll_reference(logits, x)
        dlogits_ref = ops.bernoulli_nll_backward_reference(dnll, logits, x)
    assert nll.dtype == logits.dtype and dlogits.dtype == logits.dtype
    assert_bitwise(dlogits, dlogits_ref, "dlogits")
    assert np.all(np.isfinite(nll)) and np.all(np.isfinite(dlogits))
    if logits.flags.c_contiguous:
        event(f"C-ordered logits, {blocks_of(logits.shape, block)}")
        assert_bitwise(nll, nll_ref, "nll")
        return
    event("a strided view of logits: summed in another order by the reference"
          if np.any(nll != nll_ref) else "a strided view of logits: the same sum")
    l64 = logits.astype(np.float64)
    terms = np.abs(np.logaddexp(0.0, l64) - x.astype(np.float64) * l64).sum(axis=-1)
    bound = max(logits.shape[-1] - 1, 0) * np.finfo(logits.dtype).eps * terms
    off = np.abs(nll.astype(np.float64) - nll_ref)
    assert np.all(off <= bound), (off.max(), bound.max())


def test_the_bernoulli_reference_pair_is_a_forward_and_its_gradient():
    """The reference backward is the derivative of the reference forward (central differences
    and the complex step, float64), at logits up to +-30 and grey levels."""
    rng = np.random.default_rng(31)
    logits, x = rng.standard_normal((3, 2, 5)) * 10, rng.random((2, 5))

    def forward(logits, x):
        return ops.bernoulli_nll_reference(logits, x), (logits, x)

    def backward(dnll, cache):
        return ops.bernoulli_nll_backward_reference(dnll, *cache)

    assert_backward(forward, backward, logits, x, constants=["x"], complex_step=True)


@pytest.mark.parametrize("call, match", [
    (lambda: ops.bernoulli_nll_reference(np.zeros(3), np.zeros(3)),
     r"^bernoulli_nll_reference: logits must be an array of shape \(\.\.\., B, D\)"),
    (lambda: ops.bernoulli_nll_reference(np.zeros((2, 3)), np.zeros((3, 2))),
     r"^bernoulli_nll_reference: x must have shape \(2, 3\), got \(3, 2\)"),
    (lambda: ops.bernoulli_nll_backward_reference(np.zeros(3), np.zeros((2, 3)), np.zeros((2, 3))),
     r"^bernoulli_nll_backward_reference: dnll must have shape \(2,\), got \(3,\)"),
    (lambda: sgd_reference(np.zeros(3), np.zeros(4), 0.1),
     r"^sgd_reference: g must have shape \(3,\), got \(4,\)"),
    (lambda: momentum_reference(np.zeros(3), np.zeros(3), np.zeros(1), 0.1, 0.9),
     r"^momentum_reference: v must have shape \(3,\), got \(1,\)"),
    (lambda: adagrad_reference(np.zeros(3), np.zeros(3), np.zeros((3, 1)), 0.1, 1e-8),
     r"^adagrad_reference: G must have shape \(3,\), got \(3, 1\)"),
    (lambda: adam_reference(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3), 0, 0.1,
                            (0.9, 0.999), 1e-8),
     r"^adam_reference: t must be an integer >= 1, got 0"),
])
def test_references_refuse_bad_input_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------- optimizers
ADAM_ULPS = 8
"""Adam's parameter update differs from the reference's by at most ADAM_ULPS eps |update| per
step. Counting half-ulp roundings relative to the exact update (the Python scalars c1, c2 being
the same in both): the class rounds sqrt(v), eps sqrt(c2) (a cast), their sum, m / sum, its
step scalar (a cast) and the product, about 5 half-ulps; the reference rounds c1 and c2 (casts),
m / c1, v / c2, sqrt, eps (a cast), the sum, the quotient, lr (a cast) and the product, about 8:
13 half-ulps in float32, 13.5 in float64 (double scalars instead of casts), so 7 eps to first
order. The two
subtractions theta - update add a half-ulp each, at most eps |theta_new| between them (the larger
|theta_new| of the two sides). Per step the bound grows by ADAM_ULPS eps |update| +
eps |theta_new|, and it accumulates over the steps, since each side goes on from its own theta.
Measured on 300 random float32 and float64 runs of five steps, the largest difference was 0.8
and 0.9 of this bound. It admits any rounding of the formula (a reference that forms m_hat as
m (1 / c1) passes); a wrong constant (eps not scaled by sqrt(c2), b1^(t+1) for b1^t) fails it."""

MAGNITUDES = st.one_of(st.just(0.0), st.floats(1e-6, 1e3), st.floats(-1e3, -1e-6))
"""Zero or |value| in [1e-6, 1e3]: with betas 0 or in [1e-3, 0.999] and at most five steps the
moments stay normal numbers in float32 (>= 1e-30), so the relative bound above holds."""

BETAS = st.one_of(st.just(0.0), st.floats(1e-3, 0.999))


@st.composite
def optimizer_problems(draw):
    name = draw(st.sampled_from(sorted(OPTIMIZERS)))
    dtype = draw(st.sampled_from(DTYPES))
    n = draw(st.integers(1, 40))
    steps = draw(st.integers(1, 5))
    values = hnp.arrays(dtype, n, elements=MAGNITUDES.map(lambda v: float(dtype(v))))
    theta = draw(values)
    grads = [draw(values) for _ in range(steps)]
    lr, eps = draw(st.floats(1e-4, 0.5)), draw(st.floats(1e-10, 1e-3))
    hyper = {"sgd": dict(lr=lr), "momentum": dict(lr=lr, beta=draw(BETAS)),
             "adagrad": dict(lr=lr, eps=eps),
             "adam": dict(lr=lr, betas=(draw(BETAS), draw(BETAS)), eps=eps)}[name]
    resume_at = draw(st.integers(0, steps))              # 0: no save and load part way
    return name, hyper, theta, grads, draw(st.sampled_from(BLOCKS)), resume_at


class Reference:
    """The reference update applied step by step, from zero buffers, on its own copies."""

    def __init__(self, name, hyper, theta):
        self.name, self.hyper, self.theta, self.t = name, hyper, theta.copy(), 0
        self.buffers = {b: np.zeros_like(theta) for b in OPTIMIZERS[name].buffers}

    def step(self, g):
        h, b = self.hyper, self.buffers
        self.t += 1
        if self.name == "sgd":
            self.theta = sgd_reference(self.theta, g, h["lr"])
        elif self.name == "momentum":
            self.theta, b["v"] = momentum_reference(self.theta, g, b["v"], h["lr"], h["beta"])
        elif self.name == "adagrad":
            self.theta, b["G"] = adagrad_reference(self.theta, g, b["G"], h["lr"], h["eps"])
        else:
            self.theta, b["m"], b["v"] = adam_reference(self.theta, g, b["m"], b["v"], self.t,
                                                        h["lr"], h["betas"], h["eps"])

    def adam_update(self):
        """|lr m_hat / (sqrt(v_hat) + eps)| of the step just taken, in float64."""
        (b1, b2), m, v = self.hyper["betas"], self.buffers["m"], self.buffers["v"]
        m_hat = m.astype(np.float64) / (1 - b1 ** self.t)
        v_hat = v.astype(np.float64) / (1 - b2 ** self.t)
        return np.abs(self.hyper["lr"] * m_hat / (np.sqrt(v_hat) + self.hyper["eps"]))


def explicit_steps(name, dtype, n, block, resume_at, **hyper):
    """An optimizer problem written out: theta and five gradients from a fixed seed."""
    rng = np.random.default_rng(n)
    theta = (rng.standard_normal(n) * 3).astype(dtype)
    scales = 10.0 ** rng.integers(-3, 3, (5, n))
    grads = list((rng.standard_normal((5, n)) * scales).astype(dtype))
    return name, {"lr": 0.05, **hyper}, theta, grads, block, resume_at


@given(optimizer_problems())
@example(explicit_steps("adam", np.float32, 7, 2, 3, betas=(0.9, 0.999), eps=1e-8))
@example(explicit_steps("adam", np.float64, 40, 16, 0, betas=(0.0, 0.5), eps=1e-6))
@example(explicit_steps("adagrad", np.float32, 1, 1, 2, eps=1e-8))
@example(explicit_steps("momentum", np.float32, 40, 7, 5, beta=0.9))
@example(explicit_steps("sgd", np.float64, 5, 3, 0))
def test_optimizers_equal_their_reference_step_by_step(problem):
    """Every step of every optimizer, blocked to a few numbers or not, against the reference
    applied step by step: the buffers (state_dict) bit for bit; theta bit for bit for SGD,
    Momentum and Adagrad and within the accumulated ADAM_ULPS bound for Adam; t counts the steps.
    Part way the state goes through state_dict / load_state_dict into a fresh optimizer."""
    name, hyper, theta, grads, block, resume_at = problem
    dtype, ulp = theta.dtype, np.finfo(theta.dtype).eps
    opt, flat, ref = OPTIMIZERS[name](**hyper), theta.copy(), Reference(name, hyper, theta)
    slack = np.zeros(theta.shape)                   # Adam's accumulated rounding bound
    event(f"{name}, {'one block' if theta.size <= block else 'several blocks'}")
    with mock.patch.object(optim.base, "BLOCK_ELEMENTS", block):   # where the step reads it
        for t, g in enumerate(grads, start=1):
            if t == resume_at:
                fresh = OPTIMIZERS[name](**hyper)
                fresh.load_state_dict(opt.state_dict())
                opt = fresh
            g_before = g.copy()
            opt.step(flat, g)
            ref.step(g)
            assert_bitwise(g, g_before, "the gradient (read, never written)")
            state = opt.state_dict()
            assert state["t"] == t
            for b in opt.buffers:
                assert_bitwise(state[b], ref.buffers[b], f"{name} step {t}: {b}")
            assert flat.dtype == dtype
            if name != "adam":
                assert_bitwise(flat, ref.theta, f"{name} step {t}: theta")
                continue
            larger = np.maximum(np.abs(ref.theta), np.abs(flat)).astype(np.float64)
            slack += ulp * (ADAM_ULPS * ref.adam_update() + larger)
            off = np.abs(flat.astype(np.float64) - ref.theta)
            assert np.all(off <= slack), (f"adam step {t}: theta off by {off.max():.3g} at "
                                          f"{off.argmax()}, bound {slack[off.argmax()]:.3g}")
