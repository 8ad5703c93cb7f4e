"""The exercise file that ``vae-np exercises init DIR`` writes: one stub per backward pass.

Each stub has the name and the (dout, cache) signature of its ``vae_np.ops`` counterpart and a
docstring with the forward equation, the shapes and what the cache holds; its body raises
NotImplementedError until the student replaces it. Never the answer.
"""
from __future__ import annotations

from pathlib import Path

FILENAME = "backprop_exercises.py"

TEMPLATE = '''"""Backprop exercises for vae_np: write the backward pass of every step of a VAE.

Every forward function is the library's (vae_np.ops.<name>_forward); you write the backward.
Convention: forward(*inputs) -> (out, cache); backward(dout, cache) -> the gradient of the
scalar loss with respect to each input, where dout is the gradient with respect to out.
Keep the names and signatures. Replace each `raise NotImplementedError` and check your work:

    python -m vae_np exercises check {filename}

Shapes: B batch, D data dimension, Z latent dimension, K Monte Carlo samples per example.
"""
import numpy as np

from vae_np.ops import sigmoid, softplus     # stable helpers: sigmoid(x), ln(1 + e^x)


def dense_backward(dy, cache):
    """Dense layer. Forward: y = x @ W + b.

    Shapes: x (B, n_in), W (n_in, n_out), b (n_out,), y and dy (B, n_out).
    cache: the tuple (x, W).
    Return (dx, dW, db), with the shapes of x, W and b.
    (vae_np.ops.dense_backward also takes optional output arrays; you need not.)
    """
    raise NotImplementedError


def relu_backward(dy, x):
    """ReLU. Forward: y = max(x, 0), with the derivative at exactly 0 taken as 0.

    Shapes: x, y, dy (B, n).  cache: x itself.
    Return dx (B, n).
    """
    raise NotImplementedError


def tanh_backward(dy, y):
    """tanh. Forward: y = tanh(x).

    Shapes: x, y, dy (B, n).  cache: y = tanh(x), the output (not x).
    Return dx (B, n).
    """
    raise NotImplementedError


def sigmoid_backward(dy, y):
    """Logistic sigmoid. Forward: y = sigmoid(x) = 1 / (1 + e^-x).

    Shapes: x, y, dy (B, n).  cache: y = sigmoid(x), the output (not x).
    Return dx (B, n).
    """
    raise NotImplementedError


def softplus_backward(dy, x):
    """softplus. Forward: y = ln(1 + e^x).

    Shapes: x, y, dy (B, n).  cache: x, the input.
    Return dx (B, n).
    """
    raise NotImplementedError


def sigma_logvar_backward(dsigma, sigma):
    """The encoder's sigma head in log-variance form. Forward: sigma = exp(s / 2) (s = ln sigma^2).

    Shapes: s, sigma, dsigma (B, Z).  cache: sigma, the output.
    Return ds (B, Z).
    """
    raise NotImplementedError


def sigma_softplus_backward(dsigma, s):
    """The encoder's sigma head in softplus form. Forward: sigma = softplus(s) + sigma_min.

    Shapes: s, sigma, dsigma (B, Z); sigma_min a constant > 0.  cache: s, the input.
    Return ds (B, Z).
    """
    raise NotImplementedError


def reparameterize_backward(dz, cache):
    """The reparameterization. Forward: z_k = mu + sigma * eps_k, eps_k ~ N(0, I) drawn outside.

    Shapes: mu, sigma (B, Z); eps, z, dz (K, B, Z): K samples share one mu and one sigma.
    cache: the tuple (sigma, eps).
    Return (dmu, dsigma), each (B, Z). eps is noise, not a parameter: no gradient for it.
    """
    raise NotImplementedError


def kl_backward(dkl, cache):
    """KL(N(mu, diag sigma^2) || N(0, I)) per example.
    Forward: kl_b = 1/2 sum_j (mu_bj^2 + sigma_bj^2 - 1 - ln sigma_bj^2).

    Shapes: mu, sigma (B, Z), sigma > 0; kl and dkl (B,).  cache: the tuple (mu, sigma).
    Return (dmu, dsigma), each (B, Z).
    """
    raise NotImplementedError


def bernoulli_nll_backward(dnll, cache):
    """Bernoulli decoder on logits l. Forward: nll_kb = sum_d [softplus(l_kbd) - x_bd l_kbd]
    (= -ln p(x | z) with p = sigmoid(l); x may be grey levels in [0, 1]).

    Shapes: logits (K, B, D); x (B, D), shared by the K samples; nll and dnll (K, B).
    cache: the tuple (logits, x).
    Return dlogits (K, B, D). x is data: no gradient for it.
    """
    raise NotImplementedError


def gaussian_nll_backward(dnll, cache):
    """Gaussian decoder with a fixed sigma. Forward:
    nll_kb = 1/2 sum_d (x_bd - mean_kbd)^2 / sigma^2 + D ln sigma + D/2 ln(2 pi).

    Shapes: mean (K, B, D); x (B, D), shared by the K samples; nll and dnll (K, B); sigma > 0 a
    number.  cache: the tuple (mean, x, sigma).
    Return dmean (K, B, D).
    """
    raise NotImplementedError


def vae_backward(params, trace):
    """The whole VAE, assembled from your functions above.

    Model: x -> a = dense(x; encoder.0) -> h = tanh(a) -> mu = dense(h; encoder.mu),
    s = dense(h; encoder.sigma) -> sigma = exp(s / 2) -> z = mu + sigma * eps -> c = dense(z;
    decoder.0) -> g = tanh(c) -> logits = dense(g; decoder.out) -> Bernoulli nll.
    Loss (nats per example): loss = mean_b [ 1/K sum_k nll_kb + kl_b ].

    params: dict name -> array: encoder.0.W/b, encoder.mu.W/b, encoder.sigma.W/b,
        decoder.0.W/b, decoder.out.W/b (W has shape (in, out)).
    trace: the forward pass, from vae_np.teaching.exercises.vae_forward(params, x, eps), with fields
        x (B, D), eps (K, B, Z), loss, and per step its output and its forward's cache:
        a, a_cache (dense: (x, W));   h, h_cache (tanh: h);
        mu, mu_cache (dense);   s, s_cache (dense);   sigma, sigma_cache (sigma_logvar: sigma);
        z, z_cache (reparameterize: (sigma, eps)), z of shape (K, B, Z);
        kl, kl_cache (kl: (mu, sigma));
        c, c_cache (dense on z reshaped to (K B, Z));   g, g_cache (tanh);
        logits, logits_cache (dense: logits of shape (K B, D));
        nll, nll_cache (bernoulli_nll on logits reshaped to (K, B, D): (logits, x)), nll (K, B).
    Return a dict with the names of params and the gradient of the loss for each.
    It is graded against vae_np.teaching.lecture, the same step written out in plain NumPy on one page
    (python -m vae_np lecture prints it): read it once yours passes.
    """
    raise NotImplementedError
'''


def write_stubs(directory) -> Path:
    """Write the exercise file into ``directory`` (created if needed); refuse to overwrite one."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"DIR must be a directory, got the file {directory}")
    path = directory / FILENAME
    if path.exists():
        raise ValueError(f"{path} exists already; check it with 'vae-np exercises check {path}' "
                         f"or choose another DIR")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(TEMPLATE.replace("{filename}", str(path)))
    except OSError as exc:
        raise ValueError(f"DIR {directory} cannot be written: {exc.strerror or exc}") from None
    return path
