"""The four update rules, each computed in place on one block of the parameter vector
(``_update(flat, g, buf)``; ``vae_np.optim.base.Optimizer.step`` runs it block by block). Each
class's docstring names the reference formula of ``vae_np.optim.reference`` it is tested against.
"""
from __future__ import annotations

import math

import numpy as np

from .._validate import check_positive
from .base import Optimizer


class SGD(Optimizer):
    """theta <- theta - lr g (the update of the derivation; ``sgd_reference``).

    Computed in place, in blocks of ``BLOCK_ELEMENTS`` numbers (``Optimizer.step``): g lr, then
    theta minus that, per element the reference's arithmetic.
    """

    def _update(self, flat, g, buf):
        work = buf["work"]
        np.multiply(g, self.lr, out=work)
        flat -= work


class Momentum(Optimizer):
    """Heavy-ball momentum: v <- beta v + g;  theta <- theta - lr v  (``momentum_reference``).

    Computed in place, in blocks of ``BLOCK_ELEMENTS`` numbers (``Optimizer.step``), per element
    the reference's arithmetic.
    """

    hyperparameters = ("lr", "beta")
    buffers = ("v",)

    def __init__(self, lr, beta=0.9):
        super().__init__(lr)
        self.beta = _check_beta("beta", beta)

    def _update(self, flat, g, buf):
        v, work = buf["v"], buf["work"]
        v *= self.beta
        v += g
        np.multiply(v, self.lr, out=work)
        flat -= work


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011), as used by Kingma & Welling 2013  (``adagrad_reference``).

    G <- G + g^2;  theta <- theta - lr g / (sqrt(G) + eps)

    Computed in place, in blocks of ``BLOCK_ELEMENTS`` numbers (``Optimizer.step``), per element
    the reference's arithmetic.
    """

    hyperparameters = ("lr", "eps")
    buffers = ("G",)

    def __init__(self, lr=0.01, eps=1e-8):
        super().__init__(lr)
        self.eps = check_positive("eps", eps)

    def _update(self, flat, g, buf):
        G, work = buf["G"], buf["work"]
        np.multiply(g, g, out=work)
        G += work
        np.sqrt(G, out=work)
        work += self.eps
        np.divide(g, work, out=work)
        work *= self.lr
        flat -= work


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015)  (``adam_reference``).

    m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
    theta <- theta - lr m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)

    Computed in place, in blocks of ``BLOCK_ELEMENTS`` numbers (``Optimizer.step``). The moments
    are the reference's arithmetic per element; the bias corrections are folded into two scalars
    (below), which moves a few roundings of the parameter update.
    """

    hyperparameters = ("lr", "betas", "eps")
    buffers = ("m", "v")

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_check_beta("betas[0]", betas[0]), _check_beta("betas[1]", betas[1]))
        self.eps = check_positive("eps", eps)

    def _update(self, flat, g, buf):
        b1, b2 = self.betas
        m, v, work = buf["m"], buf["v"], buf["work"]
        # m <- b1 m + (1 - b1) g as written, in place. (The shorter m += (1 - b1)(g - m) cancels
        # when the new average is much smaller than the old, i.e. for small betas: with b2 = 0 it
        # left v with the rounding error of the previous g^2, 1e-5 of the step for g: 1 -> 1e-6.)
        m *= b1
        np.multiply(g, 1 - b1, out=work)
        m += work
        v *= b2
        np.multiply(g, g, out=work)
        work *= 1 - b2
        v += work
        # The bias corrections are scalars: fold sqrt(1 - b2^t) into eps and the step size,
        # theta -= lr sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps sqrt(1-b2^t)), the same update.
        # math.sqrt, not np.sqrt: a NumPy float64 scalar would make the float32 in-place ops below
        # compute in float64 and cast back, about 7x slower than with a Python float.
        c2 = math.sqrt(1 - b2 ** self.t)
        step = self.lr * c2 / (1 - b1 ** self.t)
        np.sqrt(v, out=work)
        work += self.eps * c2
        np.divide(m, work, out=work)
        work *= step
        flat -= work


def _check_beta(name, beta):
    beta = check_positive(name, beta, allow_zero=True)
    if beta >= 1:
        raise ValueError(f"{name} must be in [0, 1), got {beta}")
    return beta


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adagrad": Adagrad, "adam": Adam}
