"""The whole VAE training step on one page: forward, backward and SGD in plain NumPy.

The model of ``vae_np.VAE``: an MLP encoder, q(z|x) = N(mu, diag sigma^2) with sigma = exp(s/2)
(the "logvar" head), the prior N(0, I), an MLP decoder, a Bernoulli decoder on logits or a
Gaussian one with a fixed sigma. Gradients are named d<var>, one chain-rule factor per line, and
``+=`` appears exactly where a value fans out to two consumers. ``VAE.trace`` computes the same
step through the library's components; tests/teaching/test_lecture.py shows that every value and
gradient agrees to 1e-12. Print this page with ``python -m vae_np lecture``.

Shapes: B batch, D data, Z latent, K samples per example, L hidden layers each way; W is (in, out)
and the decoder's rows are the K x B samples, sample-major.

    a_i = h_{i-1} W + b,  h_i = act(a_i),  i = 1..L,  h_0 = x              encoder, (B, H_i)
    mu = h_L W + b,  s = h_L W + b,  sigma = exp(s / 2)   (s = ln sigma^2)  (B, Z)
    z = mu + sigma * eps,  eps ~ N(0, I)                                    (K, B, Z)
    kl = 1/2 sum_j (mu^2 + sigma^2 - 1 - ln sigma^2)                        (B,)
    c_i = g_{i-1} W + b,  g_i = act(c_i),  g_0 = z                          decoder, (K B, H_i)
    y = g_L W + b: the logits l, or the Gaussian mean x~                    (K, B, D)
    nll = sum_d softplus(l) - x l,  or  sum_d (x - x~)^2 / (2 sd^2) + ln sd + 1/2 ln 2 pi
    loss = 1/B sum_b [ 1/K sum_k nll_kb + kl_b ]                            nats per example
    theta <- theta - lr dloss/dtheta                                        SGD

The factors of the backward pass: dloss/dnll = 1/(K B), dloss/dkl = 1/B; dnll/dl = sigmoid(l) - x
or dnll/dx~ = (x~ - x) / sd^2; for y = u W + b: dW = u^T dy, db = sum_b dy, du = dy W^T;
act'(a) = 1 - h^2 (tanh) or [a > 0] (relu); dz/dmu = 1 and dz/dsigma = eps, summed over the K
samples; dKL/dmu = mu, dKL/dsigma = sigma - 1/sigma; dsigma/ds = sigma / 2.
"""
import numpy as np


def softplus(l):
    """ln(1 + e^l), computed without overflow."""
    return np.logaddexp(0.0, l)


def sigmoid(l):
    """1 / (1 + e^-l); below l = -709, e^-l overflows to inf and gives the right 0."""
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-l))


ACTIVATIONS = {                     # name -> (act(a), act'(a) from a and h = act(a))
    "tanh": (np.tanh, lambda a, h: 1 - h * h),
    "relu": (lambda a: np.maximum(a, 0.0), lambda a, h: 1.0 * (a > 0)),
}
LIKELIHOODS = {     # name -> (name of y, nll(y, x, sd) (K, B), dy = dnll dnll/dy (K, B, D))
    "bernoulli": ("logits", lambda l, x, sd: np.sum(softplus(l) - x * l, axis=-1),
                  lambda dnll, l, x, sd: dnll[..., None] * (sigmoid(l) - x)),
    "gaussian": ("x~", lambda m, x, sd: np.sum((x - m) ** 2, axis=-1) / (2 * sd**2)
                 + x.shape[-1] * (np.log(sd) + np.log(2 * np.pi) / 2),
                 lambda dnll, m, x, sd: dnll[..., None] * (m - x) / sd**2),
}


def forward(params, x, eps, activation="relu", likelihood="bernoulli", decoder_sigma=1.0):
    """The forward pass: every value of the step under its name in ``VAE.trace``.

    Parameters
    ----------
    params : dict name -> array, the names of ``VAE.params``: encoder.{i}.W/b (i < L),
        encoder.mu.W/b, encoder.sigma.W/b, decoder.{i}.W/b, decoder.out.W/b; W of shape (in, out)
    x : (B, D) floats (in [0, 1] for the Bernoulli);  eps : (K, B, Z) N(0, I) noise, frozen
    activation : "relu" or "tanh";  likelihood : "bernoulli" or "gaussian" (sigma decoder_sigma)

    Returns
    -------
    dict name -> array: x, a1, h1, ..., mu, s, sigma, eps, z, kl, c1, g1, ..., logits or x~,
    nll (K, B), loss (0-d)
    """
    act = ACTIVATIONS[activation][0]
    out, nll_of, _ = LIKELIHOODS[likelihood]
    L = sum(f"encoder.{i}.W" in params for i in range(len(params)))    # hidden layers each way
    K, B, Z = eps.shape
    v = {"x": x}
    h = x
    for i in range(1, L + 1):                                    # encoder
        a = v[f"a{i}"] = h @ params[f"encoder.{i - 1}.W"] + params[f"encoder.{i - 1}.b"]
        h = v[f"h{i}"] = act(a)
    mu = v["mu"] = h @ params["encoder.mu.W"] + params["encoder.mu.b"]
    s = v["s"] = h @ params["encoder.sigma.W"] + params["encoder.sigma.b"]
    sigma = v["sigma"] = np.exp(s / 2)
    v["eps"] = eps
    z = v["z"] = mu + sigma * eps                                # K samples share mu and sigma
    v["kl"] = 0.5 * np.sum(mu**2 + sigma**2 - 1 - 2 * np.log(sigma), axis=-1)   # ln sigma^2
    g = z.reshape(K * B, Z)
    for i in range(1, L + 1):                                    # decoder
        c = v[f"c{i}"] = g @ params[f"decoder.{i - 1}.W"] + params[f"decoder.{i - 1}.b"]
        g = v[f"g{i}"] = act(c)
    y = v[out] = (g @ params["decoder.out.W"] + params["decoder.out.b"]).reshape(K, B, -1)
    v["nll"] = nll_of(y, x, decoder_sigma)                       # -ln p(x | z)
    v["loss"] = np.mean(v["nll"].mean(axis=0) + v["kl"])
    return v


def backward(params, v, activation="relu", likelihood="bernoulli", decoder_sigma=1.0):
    """The backward pass: d loss / d name for every value of ``forward`` but x and eps, and for
    every parameter, in the order computed (that of ``VAE.trace(...).grads``). Parameters are
    those of ``forward``, with ``v`` the dict it returned.

    Returns
    -------
    dict name -> array of that value's or parameter's shape
    """
    act_grad = ACTIVATIONS[activation][1]
    out, _, dy_of = LIKELIHOODS[likelihood]
    L = sum(f"encoder.{i}.W" in params for i in range(len(params)))
    K, B, Z = v["eps"].shape
    hs = [v["x"]] + [v[f"h{i}"] for i in range(1, L + 1)]       # each layer's input, then h_L
    gs = [v["z"].reshape(K * B, Z)] + [v[f"g{i}"] for i in range(1, L + 1)]
    d = {"loss": np.ones(())}
    dnll = d["nll"] = np.full((K, B), 1 / (K * B))               # loss = mean_b [mean_k nll + kl]
    dkl = d["kl"] = np.full(B, 1 / B)
    dy = d[out] = dy_of(dnll, v[out], v["x"], decoder_sigma)    # dnll dnll/dy (LIKELIHOODS)
    dy = dy.reshape(K * B, -1)
    d["decoder.out.W"] = gs[L].T @ dy                            # y = g W + b
    d["decoder.out.b"] = dy.sum(axis=0)                          # b reaches every row
    dg = dy @ params["decoder.out.W"].T
    for i in range(L, 0, -1):                                    # decoder, top layer first
        d[f"g{i}"] = dg
        dc = d[f"c{i}"] = dg * act_grad(v[f"c{i}"], v[f"g{i}"])  # dc = dg act'(c)
        d[f"decoder.{i - 1}.W"] = gs[i - 1].T @ dc
        d[f"decoder.{i - 1}.b"] = dc.sum(axis=0)
        dg = dc @ params[f"decoder.{i - 1}.W"].T
    dz = d["z"] = dg.reshape(K, B, Z)
    dmu = dz.sum(axis=0)                                         # dz/dmu = 1
    dmu += dkl[:, None] * v["mu"]                                # dKL/dmu = mu
    dsigma = (dz * v["eps"]).sum(axis=0)                         # dz/dsigma = eps
    # dKL/dsigma = 1/2 (2 sigma - 2/sigma); the 2(1/sigma - sigma) that circulates is twice the
    # gradient of -KL (tests/ops/test_kl_gradient.py)
    dsigma += dkl[:, None] * (v["sigma"] - 1 / v["sigma"])
    d["mu"], d["sigma"] = dmu, dsigma
    ds = d["s"] = dsigma * v["sigma"] / 2                        # dsigma/ds = sigma / 2
    d["encoder.mu.W"] = hs[L].T @ dmu
    d["encoder.mu.b"] = dmu.sum(axis=0)
    d["encoder.sigma.W"] = hs[L].T @ ds
    d["encoder.sigma.b"] = ds.sum(axis=0)
    dh = dmu @ params["encoder.mu.W"].T                          # h fans out to both heads
    dh += ds @ params["encoder.sigma.W"].T
    for i in range(L, 0, -1):                                    # encoder, top layer first
        d[f"h{i}"] = dh
        da = d[f"a{i}"] = dh * act_grad(v[f"a{i}"], v[f"h{i}"])  # da = dh act'(a)
        d[f"encoder.{i - 1}.W"] = hs[i - 1].T @ da
        d[f"encoder.{i - 1}.b"] = da.sum(axis=0)
        dh = da @ params[f"encoder.{i - 1}.W"].T                 # at i = 1 this is dx, unused
    return d


def sgd(params, grads, lr):
    """One SGD step, theta <- theta - lr dloss/dtheta, for every parameter: a new dict."""
    return {name: theta - lr * grads[name] for name, theta in params.items()}
