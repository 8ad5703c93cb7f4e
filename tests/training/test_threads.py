"""fit(threads=N): a batch split into one shard per thread, through fit and the command line.

What a user observes and these tests check:

* threads=1 is the one-thread loop: the loop written out here (the loop before threads, call for
  call) gives bit for bit fit's history and parameters, for a VAE (IWAE, dynamic binarization),
  a VQ-VAE (EMA codebook, its hooks) and a MADE prior.
* threads=2 gives the one-thread loss and gradient to float rounding, on drawn shapes and batch
  sizes (odd ones: unequal shards), for every model kind: the VAE with the ELBO, IWAE and DReG,
  a planar and a radial flow, the two-layer model and the VampPrior, the VQ-VAE (both codebook
  updates, with its code statistics and EMA state) and the MADE prior.
* A short fit with threads=2 follows the one-thread trajectory within a stated bound.
* A run is deterministic for its thread count (also when the shards finish in another order),
  and a resume is bit-exact.

Tolerances. Everything is float64 (u = 2^-53 = 1.1e-16). The sharded step computes the same
terms as the one-thread step and adds them in another order: each gradient entry is a sum over
the K B samples of the batch, which the shards split into partial sums that are then weighted by
B_s / B and added. Two orders of one sum of m terms differ by at most about 2 m u sum_i |t_i|;
with m <= 60 here and sum_i |t_i| at most a few hundred times the largest gradient entry on
these tiny models, that is < 1e-11 of max |g|. The tests allow GRAD_RTOL = 1e-10 of max |g|
(observed: below 1e-14); a wrong shard weight or a dropped shard moves the gradient by a
fraction of itself (>= 1e-2 of max |g| on every draw).
"""
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import vae_np
from vae_np import VAE, VQVAE, MADEPrior, fit
from vae_np import optim
from vae_np.objectives import FreeBits, KLWarmup
from vae_np.optim import SGD, Adam, Adagrad, Momentum
from vae_np.training.fit import TrainingDivergedError
from vae_np.training.kind import to_batch
from vae_np.training.threads import Workers
from vae_np.training.vae import VAEKind

GRAD_RTOL = 1e-10
"""|g(threads=2) - g(threads=1)| <= GRAD_RTOL max |g| (module docstring)."""
LOSS_RTOL, LOSS_ATOL = 1e-12, 1e-13
"""The loss and its terms: means over at most 9 examples of terms of size ~10, added in another
order (relative); a term that is exactly 0 in one run (a VQ code initialised at an encoder
output, |z_e - e|^2 = 0) may be the rounding of z_e, ~u |z_e|^2 < 1e-15, in the other
(absolute)."""
TRAJECTORY_RTOL = 1e-8
"""A 3-epoch Adam fit: each step's rounding (<= 1e-14 of the gradient) moves Adam's update by
about as much relative to lr (m / sqrt(v) does not scale with g), and later steps carry it on
through the loss's curvature; 1e-8 of max |theta| leaves a factor of 10^4 for that growth
(observed: below 1e-13)."""


def binary(n, d, seed):
    return (np.random.default_rng(seed).random((n, d)) < 0.4).astype(np.float64)


def one_step(make, X, threads, **options):
    """One fit step over the whole of X (one batch) with SGD: (history, gradient, parameters
    after the step). The gradient is model.grad_flat after fit: the batch's gradient."""
    model = make()
    h = fit(model, X, SGD(0.1), epochs=1, batch_size=len(X), rng=np.random.default_rng(5),
            threads=threads, **options)
    return h, model.grad_flat.copy(), model


def assert_same_step(make, X, **options):
    h1, g1, m1 = one_step(make, X, 1, **options)
    h2, g2, m2 = one_step(make, X, 2, **options)
    for key in h1:
        if key != "seconds":
            np.testing.assert_allclose(h2[key], h1[key], rtol=LOSS_RTOL, atol=LOSS_ATOL,
                                       err_msg=key)
    scale = np.max(np.abs(g1))
    assert scale > 0
    assert np.max(np.abs(g2 - g1)) <= GRAD_RTOL * scale, np.max(np.abs(g2 - g1)) / scale
    return m1, m2


# ---------------------------------------------------------------------- equal to rounding
VAE_CASES = {
    "elbo": (dict(), dict()),
    "iwae": (dict(), dict(objective="iwae")),
    "dreg": (dict(), dict(objective="iwae", estimator="dreg")),
    "warmup": (dict(), dict(objective=KLWarmup(warmup_epochs=2))),
    "planar": (dict(flow="planar", flow_length=2), dict(objective="iwae")),
    "radial": (dict(flow="radial", flow_length=2), dict()),
    "two-layer": (dict(z2_dim=2, hidden2=(3,)), dict(objective="iwae")),
    "vamp": (dict(prior="vamp", pseudo_inputs=3), dict(objective="iwae")),
}


@pytest.mark.parametrize("case", sorted(VAE_CASES))
@settings(max_examples=6)
@given(batch=st.integers(2, 9), x_dim=st.integers(2, 6), width=st.integers(1, 5),
       z_dim=st.integers(1, 3), k=st.integers(1, 4), seed=st.integers(0, 2 ** 16))
def test_a_vae_step_on_two_threads_is_the_one_thread_step(case, batch, x_dim, width, z_dim, k,
                                                          seed):
    """The loss, recon and kl of the history and the batch's gradient with threads=2 equal the
    one-thread ones (module docstring's tolerance), for every objective, estimator, posterior
    and prior; odd batches give unequal shards."""
    model_options, fit_options = VAE_CASES[case]
    X = binary(batch, x_dim, seed)
    assert_same_step(lambda: VAE(x_dim, (width,), z_dim, "tanh", seed=seed % 7, **model_options),
                     X, k=k, **fit_options)


@pytest.mark.parametrize("update", ["grad", "ema"])
@settings(max_examples=8)
@given(batch=st.integers(2, 9), n_latents=st.integers(1, 3), code_dim=st.integers(1, 3),
       codebook_size=st.integers(2, 5), seed=st.integers(0, 2 ** 16))
def test_a_vq_step_on_two_threads_is_the_one_thread_step(update, batch, n_latents, code_dim,
                                                         codebook_size, seed):
    """The VQ-VAE's four terms, its gradient (the codebook's included), and the codebook's
    statistics: the epoch's usage and perplexity exactly (the same codes: counts of integers),
    the EMA state to rounding (the EMA step read the whole batch's z_e and codes, not one
    shard's)."""
    X = binary(batch, 6, seed)

    def make():
        return VQVAE(6, (4,), n_latents=n_latents, code_dim=code_dim,
                     codebook_size=codebook_size, codebook_update=update, seed=seed % 5)
    m1, m2 = assert_same_step(make, X, reseed=False)
    np.testing.assert_allclose(m2.ema_count, m1.ema_count, rtol=1e-13)
    np.testing.assert_allclose(m2.ema_sum, m1.ema_sum, rtol=1e-13, atol=1e-15)


@settings(max_examples=10)
@given(batch=st.integers(2, 9), n_latents=st.integers(1, 4), codebook_size=st.integers(2, 5),
       width=st.integers(1, 6), seed=st.integers(0, 2 ** 16))
def test_a_made_step_on_two_threads_is_the_one_thread_step(batch, n_latents, codebook_size,
                                                           width, seed):
    codes = np.random.default_rng(seed).integers(0, codebook_size, size=(batch, n_latents))
    assert_same_step(lambda: MADEPrior(n_latents, codebook_size, hidden=(width,), seed=seed % 3),
                     codes)


def test_unequal_shards_are_weighted_by_their_size():
    """A batch of 7 in shards of 4 and 3: the mean of the two shard means would be off by
    (4/7 - 1/2) (g_0 - g_1); the step is the batch's. With 3 threads, 7 = 3 + 2 + 2."""
    X = binary(7, 5, 1)
    for threads in (2, 3):
        h1, g1, _ = one_step(lambda: VAE(5, (4,), 2, "tanh", seed=1), X, 1, k=2)
        h, g, _ = one_step(lambda: VAE(5, (4,), 2, "tanh", seed=1), X, threads, k=2)
        assert h["loss"][0] == pytest.approx(h1["loss"][0], rel=LOSS_RTOL)
        assert np.max(np.abs(g - g1)) <= GRAD_RTOL * np.max(np.abs(g1))


# ---------------------------------------------------------------------- trajectories
TRAJECTORY_CASES = {
    "vae iwae": (lambda: VAE(12, (6,), 2, "tanh", seed=2), dict(k=3, objective="iwae")),
    "flow": (lambda: VAE(12, (6,), 2, "tanh", seed=2, flow="planar", flow_length=2), dict(k=2)),
    "vq ema": (lambda: VQVAE(12, (6,), n_latents=2, code_dim=2, codebook_size=4,
                             codebook_update="ema", seed=2), dict()),
    "made": (lambda: MADEPrior(3, 4, hidden=(6,), seed=2), dict()),
}


@pytest.mark.parametrize("case", sorted(TRAJECTORY_CASES))
def test_a_short_fit_on_two_threads_follows_the_one_thread_trajectory(case):
    """3 epochs of Adam over batches of 7 (shards of 4 and 3): the history and the parameters
    with threads=2 stay within TRAJECTORY_RTOL of the one-thread run's; the VQ-VAE's usage and
    perplexity (from the same codes) are equal."""
    make, options = TRAJECTORY_CASES[case]
    X = (np.random.default_rng(3).integers(0, 4, size=(30, 3)) if case == "made"
         else binary(30, 12, 3))
    runs = []
    for threads in (1, 2):
        model = make()
        h = fit(model, X, Adam(1e-2), epochs=3, batch_size=7, rng=np.random.default_rng(4),
                threads=threads, **options)
        runs.append((h, model.flat.copy()))
    (h1, theta1), (h2, theta2) = runs
    assert np.max(np.abs(theta2 - theta1)) <= TRAJECTORY_RTOL * np.max(np.abs(theta1))
    assert not np.array_equal(theta2, theta1)      # (two threads did add in another order)
    for key in h1:
        if key in ("usage", "perplexity", "reseeded"):
            assert h2[key] == h1[key], key
        elif key != "seconds":
            np.testing.assert_allclose(h2[key], h1[key], rtol=TRAJECTORY_RTOL, err_msg=key)


# ---------------------------------------------------------------------- one thread
def loop_written_out(model, X, optimizer, epochs, batch_size, rng, k, objective):
    """The one-thread loop of fit for a VAE with dynamic binarization, written out: a
    permutation per epoch, each batch binarized and its eps drawn from rng, forward, backward,
    the optimizer's step; returns the per-epoch weighted mean loss."""
    losses = []
    for _ in range(epochs):
        order, total = rng.permutation(len(X)), 0.0
        for start in range(0, len(X), batch_size):
            index = order[start:start + batch_size]
            x = to_batch(X, index, model.dtype, rng)
            eps = rng.standard_normal((k, len(index), model.noise_dim), dtype=model.dtype)
            trace = model.backward(model.forward(x, eps, objective=objective))
            optimizer.step(model.flat, model.grad_flat)
            total += len(index) * float(trace.loss)
        losses.append(total / len(X))
    return losses


def test_one_thread_is_the_loop_written_out():
    """fit(threads=1) on a float32 IWAE VAE with dynamic binarization and Adam: the history and
    the parameters are bit for bit those of the loop written out (threads=2 are not: they add in
    another order)."""
    X = (np.random.default_rng(0).random((50, 20)) * 255).astype(np.uint8)
    results = {}
    for threads in (None, 1, 2):
        model = VAE(20, (8, 8), 3, "tanh", dtype=np.float32, seed=1)
        optimizer, rng = Adam(1e-2), np.random.default_rng(9)
        if threads is None:
            losses = loop_written_out(model, X, optimizer, 2, 16, rng, 4, "iwae")
        else:
            losses = fit(model, X, optimizer, epochs=2, batch_size=16, k=4, objective="iwae",
                         binarize=True, rng=rng, threads=threads)["loss"]
        results[threads] = (losses, model.flat.copy(), optimizer.state["m"].copy(),
                            rng.random())
    for i in range(4):
        np.testing.assert_array_equal(results[1][i], results[None][i])
    assert not np.array_equal(results[2][1], results[None][1])


def test_one_thread_trains_a_vq_vae_and_a_made_prior_as_their_hooks_say():
    """fit(threads=1) on a VQ-VAE with the EMA codebook: each step's forward, backward and Adam
    step, then the EMA step and the code counts from that step's z_e and codes, the codebook
    set from a first random batch, written out here, give bit for bit fit's parameters, EMA
    state and usage; and a MADE prior's loop written out gives fit's."""
    X = binary(40, 10, 2)
    model = VQVAE(10, (6,), n_latents=2, code_dim=2, codebook_size=5, codebook_update="ema",
                  seed=3)
    twin = VQVAE(**model.config())
    h = fit(model, X, Adam(1e-2), epochs=2, batch_size=9, rng=np.random.default_rng(1),
            reseed=False, threads=1)
    rng, optimizer = np.random.default_rng(1), Adam(1e-2)
    twin.init_codebook(X[rng.choice(40, size=9, replace=False)], rng)
    usage = []
    for _ in range(2):
        order, counts = rng.permutation(40), np.zeros(5, int)
        for start in range(0, 40, 9):
            trace = twin.backward(twin.forward(X[order[start:start + 9]]))
            optimizer.step(twin.flat, twin.grad_flat)
            twin.ema_update(trace.values["z_e"], trace.values["codes"])
            counts += np.bincount(trace.values["codes"].ravel(), minlength=5)
        usage.append(np.count_nonzero(counts) / 5)
    np.testing.assert_array_equal(model.flat, twin.flat)
    np.testing.assert_array_equal(model.ema_sum, twin.ema_sum)
    assert h["usage"] == usage

    codes = np.random.default_rng(4).integers(0, 3, size=(25, 2))
    prior, twin = MADEPrior(2, 3, hidden=(5,), seed=1), MADEPrior(2, 3, hidden=(5,), seed=1)
    h = fit(prior, codes, Momentum(0.1), epochs=2, batch_size=6, rng=np.random.default_rng(2),
            threads=1)
    rng, optimizer, losses = np.random.default_rng(2), Momentum(0.1), []
    for _ in range(2):
        order, total = rng.permutation(25), 0.0
        for start in range(0, 25, 6):
            batch = codes[order[start:start + 6]]
            total += len(batch) * twin.loss_and_grads(batch)[0]
            optimizer.step(twin.flat, twin.grad_flat)
        losses.append(total / 25)
    np.testing.assert_array_equal(prior.flat, twin.flat)
    assert h["loss"] == losses


def test_an_objective_that_couples_the_batch_trains_on_one_thread():
    """Free bits floors each KL group's batch mean, which no shard sees: fit(threads=2) gives
    bit for bit the one-thread run (a split would change the floor's mask, not just rounding)."""
    X = binary(21, 6, 0)
    runs = []
    for threads in (1, 2):
        model = VAE(6, (4,), 3, "tanh", seed=0)
        fit(model, X, Adam(1e-2), epochs=2, batch_size=7, rng=np.random.default_rng(0),
            objective=FreeBits(free_bits=0.3), threads=threads)
        runs.append(model.flat.copy())
    np.testing.assert_array_equal(runs[1], runs[0])


# ---------------------------------------------------------------------- determinism, resume
def test_a_run_on_threads_is_deterministic_whatever_shard_finishes_first(monkeypatch):
    """With 4 threads (a batch of 9 in shards of 3, 2, 2, 2) the shards' gradients are summed in
    shard order: a run whose shards are delayed at random, so that they finish in another order
    at every step, ends bit for bit where the undelayed run does. (With two shards the order
    would not show: a + b = b + a in floating point.)"""
    X = binary(36, 10, 5)

    def run():
        model = VAE(10, (6,), 3, "tanh", dtype=np.float32, seed=4)
        fit(model, X, Adam(1e-2), epochs=2, batch_size=9, k=3, objective="iwae",
            rng=np.random.default_rng(6), threads=4)
        return model.flat.copy()

    plain = run()
    delays, lock, real_run = np.random.default_rng(0), threading.Lock(), VAEKind.run

    def delayed(self, model, inputs):
        with lock:
            pause = delays.random() * 2e-3
        time.sleep(pause)
        return real_run(self, model, inputs)
    monkeypatch.setattr(VAEKind, "run", delayed)
    np.testing.assert_array_equal(run(), plain)


def test_fit_resumes_bit_exact_on_two_threads():
    """Two epochs in one fit, or one and then another (new workers, new replicas), with the
    same generator and optimizer: the same parameters, EMA state and history, bit for bit."""
    X = binary(30, 10, 7)
    for make in (lambda: VAE(10, (6,), 2, "tanh", dtype=np.float32, seed=5),
                 lambda: VQVAE(10, (6,), n_latents=2, code_dim=2, codebook_size=4,
                               codebook_update="ema", dtype=np.float32, seed=5)):
        ends = []
        for split in (False, True):
            model, optimizer, rng = make(), Adam(1e-2), np.random.default_rng(8)
            if split:
                h = fit(model, X, optimizer, epochs=1, batch_size=7, rng=rng, threads=2)
                h2 = fit(model, X, optimizer, epochs=1, batch_size=7, rng=rng, threads=2,
                         first_epoch=2)
                losses = h["loss"] + h2["loss"]
            else:
                losses = fit(model, X, optimizer, epochs=2, batch_size=7, rng=rng,
                             threads=2)["loss"]
            ends.append((losses, model.flat.copy(), optimizer.state["v"].copy(),
                         getattr(model, "ema_sum", np.zeros(1)).copy()))
        for a, b in zip(*ends):
            np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------- guard, BLAS, threads
def test_a_diverging_shard_stops_training_with_the_parameters_of_before():
    """One example whose Gaussian nll overflows (x = 1e300) in the second shard of the batch:
    TrainingDivergedError naming the step, and the parameters are those from before it."""
    X = np.random.default_rng(0).random((8, 4))
    X[6] = 1e300
    model = VAE(4, (3,), 2, "tanh", "gaussian", seed=0)
    before = model.flat.copy()
    with pytest.raises(TrainingDivergedError, match="step 1/1"):
        fit(model, X, SGD(0.1), epochs=1, batch_size=8, rng=np.random.default_rng(0),
            threads=2)
    np.testing.assert_array_equal(model.flat, before)


def blas_threads():
    from threadpoolctl import threadpool_info
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_blas_runs_one_thread_a_worker_while_a_threaded_fit_trains():
    """During fit(threads=2) every BLAS library NumPy loaded runs one thread (so no BLAS worker
    spins against a shard); after it, and during fit(threads=1), BLAS has its own count again."""
    outside = blas_threads()
    X = binary(12, 5, 0)
    seen = {}
    for threads in (1, 2):
        def record(event, threads=threads):
            seen.setdefault(threads, blas_threads())
        fit(VAE(5, (3,), 2), X, SGD(0.1), batch_size=6, threads=threads, callback=record)
        assert blas_threads() == outside
    assert seen[1] == outside and set(seen[2]) == {1}


def test_the_worker_threads_end_with_fit_also_after_an_error(monkeypatch):
    """fit starts its workers and ends them, also when a shard raises: the shard's error
    reaches the caller (the second shard's, on a worker) and no thread is left behind."""
    before = threading.active_count()
    X = binary(10, 5, 0)
    fit(VAE(5, (3,), 2), X, SGD(0.1), batch_size=5, threads=3)
    assert threading.active_count() == before
    real_run = VAEKind.run

    def failing(self, model, inputs):
        if inputs[0].shape[0] == 2:             # the second and third shards of 5 = 3 + 2 + 2
            raise ArithmeticError("shard failed")
        return real_run(self, model, inputs)
    monkeypatch.setattr(VAEKind, "run", failing)
    with pytest.raises(ArithmeticError, match="shard failed"):
        fit(VAE(5, (3,), 2), X, SGD(0.1), batch_size=5, threads=3)
    assert threading.active_count() == before


@pytest.mark.parametrize("threads", [0, -1, 1.5, "2", True])
def test_a_thread_count_that_is_not_a_positive_integer_is_refused(threads):
    with pytest.raises(ValueError, match="threads"):
        fit(VAE(5, (3,), 2), binary(4, 5, 0), SGD(0.1), threads=threads)


# ---------------------------------------------------------------------- the optimizer's split
@pytest.mark.parametrize("make", [lambda: SGD(0.1), lambda: Momentum(0.1, 0.9),
                                  lambda: Adagrad(0.1), lambda: Adam(0.1)])
@pytest.mark.parametrize("size", [1, 7, 50])
def test_an_update_split_over_threads_is_the_one_thread_update(make, size, monkeypatch):
    """Optimizer.step(workers=Workers(n)) with blocks of 3 numbers, n = 2, 3, 4 (parts shorter
    than a block, and than one number): 4 steps give bit for bit the one-thread parameters and
    buffers, and ``before`` sees every number exactly once per step."""
    monkeypatch.setattr(optim.base, "BLOCK_ELEMENTS", 3)     # where the step reads it
    rng = np.random.default_rng(size)
    grads = rng.standard_normal((4, size))
    for n in (2, 3, 4):
        serial, split = make(), make()
        flat_a, flat_b = rng.standard_normal(size), None
        flat_b = flat_a.copy()
        with Workers(n) as workers:
            for g in grads:
                serial.step(flat_a, g.copy())
                visits = np.zeros(size, int)
                lock = threading.Lock()

                def count(block):
                    with lock:
                        visits[block] += 1
                split.step(flat_b, g.copy(), workers=workers, before=count)
                np.testing.assert_array_equal(visits, 1)
        np.testing.assert_array_equal(flat_b, flat_a)
        for name in serial.buffers:
            np.testing.assert_array_equal(split.state[name], serial.state[name])
        assert split.t == serial.t == 4


def test_a_shard_with_a_non_finite_gradient_stops_training(monkeypatch):
    """The guard reads every shard's |g_s|^2: a NaN in the gradient of the second shard alone
    (its loss finite) stops training before any update."""
    real_run = VAEKind.run

    def nan_in_second(self, model, inputs):
        result = real_run(self, model, inputs)
        if model is not self.model:             # a replica: the second shard
            model.grad_flat[3] = np.nan
        return result
    monkeypatch.setattr(VAEKind, "run", nan_in_second)
    model = VAE(5, (3,), 2, seed=0)
    before = model.flat.copy()
    with pytest.raises(TrainingDivergedError, match="non-finite loss or gradient"):
        fit(model, binary(6, 5, 0), SGD(0.1), batch_size=6, threads=2)
    np.testing.assert_array_equal(model.flat, before)


# ------------------------------------------------------------------ the default thread count
def two_cores(monkeypatch):
    """The process may run on two cores, whatever machine runs the test."""
    from vae_np.training import threads
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)


@pytest.mark.parametrize("batch, k, expected", [(20, 5, 1), (25, 4, 1), (64, 2, 2), (128, 1, 2)])
def test_fit_splits_a_step_by_default_only_from_128_rows(batch, k, expected, monkeypatch):
    """fit(threads=None) on two cores: a step of batch x k < 128 rows trains as threads=1 (it was
    measured slower split), one of >= 128 rows as threads=2 - bit for bit."""
    two_cores(monkeypatch)
    X = binary(2 * batch, 6, 0)

    def trained(threads):
        model = VAE(6, (5,), 2, seed=0)
        fit(model, X, Adam(1e-2), epochs=1, batch_size=batch, k=k, objective="iwae",
            rng=np.random.default_rng(1), threads=threads)
        return model.flat

    one, two = trained(1), trained(2)
    assert not np.array_equal(one, two)         # the test can tell the two paths apart
    np.testing.assert_array_equal(trained(None), one if expected == 1 else two)


def test_train_records_the_default_thread_count_of_its_steps(tmp_path, fast_sprites,
                                                             monkeypatch):
    """A new run without --threads records fit's default for its steps: 1 below 128 rows (batch
    20 x k 5), the cores from 128 rows on (batch 128 x k 1; batch 64 x k 2)."""
    from vae_np import cli
    from vae_np.runs import directory as runs
    two_cores(monkeypatch)
    base = ["train", "--dataset", "sprites", "--limit", "130", "--hidden", "4", "--z-dim", "2",
            "-q", "--no-figures", "--epochs", "1"]
    for batch, k, expected in [(20, 5, 1), (128, 1, 2), (64, 2, 2)]:
        out = tmp_path / f"b{batch}k{k}"
        assert cli.main([*base, "--batch-size", str(batch), "--k", str(k), "--out",
                         str(out)]) == 0
        assert runs.read_config(out)["threads"] == expected, (batch, k)


# ---------------------------------------------------------------------- the command line
TRAIN = ["train", "--dataset", "sprites", "--limit", "24", "--hidden", "4", "--z-dim", "2",
         "--batch-size", "7", "--k", "2", "--objective", "iwae", "-q", "--no-figures"]


def test_train_records_its_threads_and_resumes_with_them_bit_exact(tmp_path, fast_sprites):
    """``train --threads 2`` records threads 2 in config.json; resumed without --threads after
    its first epoch it trains on 2 again and ends bit for bit where a straight 2-epoch run
    does; without --threads a new run records the default count."""
    from _fault_helpers import differences, npz
    from vae_np import cli
    from vae_np.runs import directory as runs
    straight, resumed, default = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert cli.main([*TRAIN, "--threads", "2", "--epochs", "2", "--out", str(straight)]) == 0
    assert cli.main([*TRAIN, "--threads", "2", "--epochs", "1", "--out", str(resumed)]) == 0
    assert runs.read_config(resumed)["threads"] == 2
    assert cli.main(["train", "--resume", str(resumed), "--epochs", "2", "-q",
                     "--no-figures"]) == 0
    assert not differences(npz(straight / "checkpoint.npz"), npz(resumed / "checkpoint.npz"))
    assert cli.main([*TRAIN, "--epochs", "1", "--out", str(default)]) == 0
    assert runs.read_config(default)["threads"] == 1      # batch 7 x k 2 = 14 rows < 128


def test_threads_on_one_and_two_differ_only_by_rounding_through_train(tmp_path, fast_sprites):
    """The same run on --threads 1 and --threads 2: the histories agree to 1e-5 (float32
    training, two epochs), and they are not the same bits (the second did split its batches)."""
    from _fault_helpers import npz
    from vae_np import cli
    ends = []
    for threads in ("1", "2"):
        out = tmp_path / threads
        assert cli.main([*TRAIN, "--threads", threads, "--epochs", "2", "--out", str(out)]) == 0
        ends.append(npz(out / "checkpoint.npz"))
    np.testing.assert_allclose(ends[1]["history.train_loss"], ends[0]["history.train_loss"],
                               rtol=1e-5)
    assert not np.array_equal(ends[1]["history.train_loss"], ends[0]["history.train_loss"])


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_threads_option_is_one_line(value, capsys):
    from vae_np import cli
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--threads", value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--threads" in err


def test_a_run_whose_config_holds_bad_threads_is_refused_in_one_line(tmp_path, fast_sprites,
                                                                     capsys):
    import json
    from vae_np import cli
    out = tmp_path / "run"
    assert cli.main([*TRAIN, "--threads", "1", "--epochs", "1", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    config["threads"] = "two"
    (out / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(out), "--epochs", "2", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "entry 'threads' must be an integer >= 1" in err
