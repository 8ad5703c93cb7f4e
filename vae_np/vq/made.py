"""An autoregressive prior over discrete codes in the MADE style (Germain et al. 2015).

The VQ-VAE turns an image into M code indices c = (c_1, ..., c_M), each in {0, ..., K-1}. A prior
over those vectors factorises by the chain rule of probability,

    ln prior(c) = sum_m ln p(c_m | c_<m),      p(c_m | c_<m) = softmax(logits_m(c_<m))[c_m],

and MADE computes all M conditionals in one pass of an MLP whose weights are masked so that the
logits of position m depend only on the positions before it:

* input: onehot(c), M*K units; input unit (m, k) has degree m + 1 (positions numbered 1..M);
* hidden unit j has a degree d_j in 1..M-1 (assigned in turn: 1, 2, ..., M-1, 1, 2, ...) and may
  read a unit of the layer below only if its degree is <= d_j: it then depends on positions
  1..d_j at most;
* output unit (m, k) has degree m + 1 and reads a unit below only if that degree is < m + 1
  (strict): position m's logits depend on positions < m only, and the first position's logits
  are the output biases alone.

So the product of the M conditionals is a normalised distribution over all K^M code vectors
(``tests/vq/test_made.py`` sums it). Shapes: B examples, M positions, K values per position.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from .._validate import check_array, check_choice, check_dtype, check_int, check_rng, check_widths
from ..core.layers import FlatParameters

CHUNK = 1024      # examples per forward pass in log_prob and sample (bounds the one-hot's memory)


def made_degrees(n_latents, hidden):
    """Degrees of the input units (M*K of them are built by the caller from this) and of each
    hidden layer: position degrees 1..M for the inputs, and 1..M-1 in turn for hidden units
    (all 1 when M = 1, where no hidden unit reaches an output)."""
    span = max(n_latents - 1, 1)
    return [1 + np.arange(width) % span for width in hidden]


def made_masks(n_latents, codebook_size, hidden):
    """The 0/1 masks, one per layer: (n_in, n_out) with mask[i, j] = 1 where unit j may read i.

    hidden layers: deg_out[j] >= deg_in[i];  output layer: deg_out[j] > deg_in[i].
    """
    deg_in = np.repeat(np.arange(1, n_latents + 1), codebook_size)     # unit (m, k) -> m + 1
    masks = []
    for deg in made_degrees(n_latents, hidden):
        masks.append((deg[None, :] >= deg_in[:, None]).astype(np.float64))
        deg_in = deg
    deg_out = np.repeat(np.arange(1, n_latents + 1), codebook_size)
    masks.append((deg_out[None, :] > deg_in[:, None]).astype(np.float64))
    return masks


class MADEPrior:
    """ln prior(c) = sum_m log_softmax(logits_m(c_<m))[c_m] with a masked MLP (module docstring).

    Parameters
    ----------
    n_latents : M, the number of code positions
    codebook_size : K, the values per position (>= 2)
    hidden : widths of the masked hidden layers (may be empty: logits linear in the one-hot)
    activation : one of ``ops.ACTIVATIONS`` (default relu)
    seed : initialisation, W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    dtype : float32 or float64

    Parameters are ``layer.{i}.W/b`` (i = 1..len(hidden)) and ``out.W/b`` in one FlatParameters
    store (``flat``/``grad_flat``, ``params``/``grads``); ``masks[i]`` is layer i's mask.
    """

    def __init__(self, n_latents, codebook_size, hidden=(256,), activation="relu", seed=0,
                 dtype=np.float64):
        self.n_latents = check_int("n_latents", n_latents)
        self.codebook_size = check_int("codebook_size", codebook_size, minimum=2)
        self.hidden = check_widths("hidden", hidden, "(512,)")
        self.activation = check_choice("activation", activation, ops.ACTIVATIONS)
        self._act_forward, self._act_backward = ops.ACTIVATIONS[activation]
        self.seed = check_int("seed", seed, minimum=0)
        self.dtype = check_dtype("dtype", dtype)
        MK = self.n_latents * self.codebook_size
        widths = (MK,) + self.hidden + (MK,)
        self.names = [f"layer.{i}" for i in range(1, len(self.hidden) + 1)] + ["out"]
        spec = []
        for name, n_in, n_out in zip(self.names, widths[:-1], widths[1:]):
            spec += [(name + ".W", (n_in, n_out)), (name + ".b", (n_out,))]
        self.store = FlatParameters(spec, self.dtype)
        self.flat, self.grad_flat = self.store.flat, self.store.grad_flat
        self.params, self.grads = self.store.params, self.store.grads
        self.masks = [m.astype(self.dtype) for m in
                      made_masks(self.n_latents, self.codebook_size, self.hidden)]
        rng = np.random.default_rng(self.seed)
        for name, shape in spec:
            bound = 1 / np.sqrt(self.params[name[:-2] + ".W"].shape[0])
            self.params[name][...] = rng.uniform(-bound, bound, size=shape)

    # ------------------------------------------------------------------ input checks
    def check_codes(self, codes, name="codes"):
        """codes as an int64 (B, M) array; ValueError naming ``name`` unless integers in [0, K)."""
        codes = check_array(name, codes, ndim=2, shape=(None, self.n_latents))
        if not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"{name} must be integer code indices in [0, {self.codebook_size}), "
                             f"got dtype {codes.dtype}")
        if codes.min() < 0 or codes.max() >= self.codebook_size:
            raise ValueError(f"{name} must be integer code indices in [0, {self.codebook_size}), "
                             f"got values from {codes.min()} to {codes.max()}")
        return codes.astype(np.int64, copy=False)

    # ------------------------------------------------------------------ forward / backward
    def _forward(self, codes):
        """logits (B, M, K) and the caches of every layer, for checked codes."""
        B, M, K = len(codes), self.n_latents, self.codebook_size
        x = np.zeros((B, M * K), dtype=self.dtype)                      # onehot(c), unit m*K + k
        x[np.arange(B)[:, None], np.arange(M) * K + codes] = 1.0
        h, caches = x, []
        for name, mask in zip(self.names[:-1], self.masks[:-1]):
            a, dense_cache = ops.masked_dense_forward(h, self.params[name + ".W"],
                                                      self.params[name + ".b"], mask)
            h, act_cache = self._act_forward(a)
            caches.append((dense_cache, act_cache))
        out, out_cache = ops.masked_dense_forward(h, self.params["out.W"], self.params["out.b"],
                                                  self.masks[-1])
        return out.reshape(B, M, K), caches + [(out_cache, None)]

    def logits(self, codes):
        """logits (B, M, K) of p(c_m | c_<m) for every position m."""
        codes = self.check_codes(codes)
        return np.concatenate([self._forward(codes[i:i + CHUNK])[0]
                               for i in range(0, len(codes), CHUNK)])

    def log_prob(self, codes):
        """ln prior(codes), (B,) in nats: sum_m log_softmax(logits_m)[c_m]."""
        codes = self.check_codes(codes)
        out = []
        for i in range(0, len(codes), CHUNK):
            logits, _ = self._forward(codes[i:i + CHUNK])
            out.append(-ops.categorical_nll_forward(logits, codes[i:i + CHUNK])[0])
        return np.concatenate(out)

    def loss_and_grads(self, codes):
        """loss = mean_b -ln prior(c_b) (nats) and its gradient (dict name -> view of grad_flat).

        Backward, one factor per line: dnll_b = 1/B (the mean); dlogits = dnll (softmax - onehot);
        then each masked layer, dW = (h^T dy) * mask, db = sum_b dy, dh = dy (W * mask)^T, and
        da = dh * act'(a) between layers.
        """
        codes = self.check_codes(codes)
        B = len(codes)
        logits, caches = self._forward(codes)
        nll, nll_cache = ops.categorical_nll_forward(logits, codes)
        dnll = np.full(B, 1.0 / B, dtype=self.dtype)                    # d mean_b / d nll_b
        dlogits = ops.categorical_nll_backward(dnll, nll_cache)         # * (softmax - onehot)
        dy = dlogits.reshape(B, -1)                                     # output units m*K + k
        for i in reversed(range(len(self.names))):
            name = self.names[i]
            dense_cache, act_cache = caches[i]
            if act_cache is not None:                                   # a hidden layer
                dy = self._act_backward(dy, act_cache)                  # da = dh * act'(a)
            dy, _, _ = ops.masked_dense_backward(dy, dense_cache, out_dW=self.grads[name + ".W"],
                                                 out_db=self.grads[name + ".b"], need_dx=i > 0)
        return float(np.mean(nll)), self.grads

    # ------------------------------------------------------------------ sampling
    def sample(self, n, rng):
        """n code vectors (n, M) int64 by ancestral sampling: position m is drawn from
        p(c_m | c_<m) after positions < m are drawn (M passes of the network)."""
        n = check_int("n", n)
        rng = check_rng("rng", rng)
        codes = np.zeros((n, self.n_latents), dtype=np.int64)
        for m in range(self.n_latents):
            logits = np.concatenate([self._forward(codes[i:i + CHUNK])[0][:, m]
                                     for i in range(0, n, CHUNK)])            # (n, K)
            cdf = np.cumsum(np.exp(ops.log_softmax(logits.astype(np.float64))), axis=1)
            u = rng.random(n)[:, None] * cdf[:, -1:]                    # inverse CDF
            codes[:, m] = np.minimum(np.sum(cdf <= u, axis=1), self.codebook_size - 1)
        return codes

    def config(self) -> dict:
        """Constructor arguments as a JSON-serialisable dict (``MADEPrior(**config)`` rebuilds)."""
        return dict(n_latents=self.n_latents, codebook_size=self.codebook_size,
                    hidden=list(self.hidden), activation=self.activation, seed=self.seed,
                    dtype=self.dtype.name)

    def __repr__(self):
        return (f"MADEPrior(M={self.n_latents}, K={self.codebook_size}, hidden={self.hidden}, "
                f"{self.activation}, {self.dtype.name}, {self.flat.size} parameters)")
