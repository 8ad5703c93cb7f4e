"""The four updates as the maths writes them: the new values from the old, nothing mutated, for a
reader to hold against the equations of ``vae_np.optim``. The classes of ``vae_np.optim.rules``
compute the same in place and in blocks and are tested against these; training uses the classes.
"""
from __future__ import annotations

import numpy as np

from .._validate import check_int, check_op_shape


def sgd_reference(theta, g, lr):
    """SGD's update as a formula: returns theta - lr g (nothing is mutated).

    Parameters
    ----------
    theta, g : (P,) arrays
    lr : float

    Returns
    -------
    theta_new : (P,)
    """
    _check_like("sgd_reference", theta, g=g)
    return theta - lr * g


def momentum_reference(theta, g, v, lr, beta):
    """Heavy-ball momentum's update as a formula (nothing is mutated).

        v_new = beta v + g;   theta_new = theta - lr v_new

    Parameters
    ----------
    theta, g, v : (P,) arrays (v starts at 0)
    lr, beta : float

    Returns
    -------
    theta_new, v_new : (P,)
    """
    _check_like("momentum_reference", theta, g=g, v=v)
    v = beta * v + g
    return theta - lr * v, v


def adagrad_reference(theta, g, G, lr, eps):
    """Adagrad's update as a formula (nothing is mutated).

        G_new = G + g^2;   theta_new = theta - lr (g / (sqrt(G_new) + eps))

    (the parentheses are the order in which ``Adagrad`` rounds, so the two agree bit for bit)

    Parameters
    ----------
    theta, g, G : (P,) arrays (G starts at 0)
    lr, eps : float

    Returns
    -------
    theta_new, G_new : (P,)
    """
    _check_like("adagrad_reference", theta, g=g, G=G)
    G = G + g ** 2
    return theta - lr * (g / (np.sqrt(G) + eps)), G


def adam_reference(theta, g, m, v, t, lr, betas, eps):
    """Adam's update as a formula, step number t = 1, 2, ... (nothing is mutated).

        m_new = b1 m + (1 - b1) g;   v_new = b2 v + (1 - b2) g^2
        theta_new = theta - lr m_hat / (sqrt(v_hat) + eps),
        m_hat = m_new / (1 - b1^t),  v_hat = v_new / (1 - b2^t)

    Parameters
    ----------
    theta, g, m, v : (P,) arrays (m and v start at 0)
    t : int >= 1
    lr : float
    betas : (b1, b2)
    eps : float

    Returns
    -------
    theta_new, m_new, v_new : (P,)
    """
    _check_like("adam_reference", theta, g=g, m=m, v=v)
    t = check_int("adam_reference: t", t, minimum=1)
    b1, b2 = betas
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g ** 2
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def _check_like(where, theta, **arrays):
    """ValueError unless every array has theta's shape (a reference's elementwise formula would
    broadcast a wrong shape silently)."""
    for name, a in arrays.items():
        check_op_shape(where, name, a, np.shape(theta))


