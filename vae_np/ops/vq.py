"""Vector quantization (van den Oord et al. 2017, arXiv:1711.00937): the nearest-code search and
the three terms of the VQ-VAE's surrogate gradient.

Shapes: ``N`` vectors to quantize (N = B M: M latent vectors per example), ``D`` code dimension,
``K`` codebook size; the per-example terms take z_e as (B, M, D) and codes as (B, M).

The VQ-VAE's loss per example is

    nll(z_q) + sum_{m,d} (sg(z_e) - e_c)^2 + beta sum_{m,d} (z_e - sg(e_c))^2,   z_q = e_c,

with c the nearest code to z_e and sg the stop-gradient (its argument is a constant for the
derivative). The code assignment is piecewise constant, so the decoder term has no gradient onto
z_e; the straight-through estimator treats z_q as z_e + sg(e_c - z_e) and copies dL/dz_q onto
z_e unchanged. Each term has its own forward/backward pair here:

* ``vq_quantize_forward`` / ``vq_straight_through_backward``: z_q = e_c;  dz_e = dz_q (a copy).
  The decoder term gives the codebook nothing (z_q's dependence on e is behind sg).
* ``vq_codebook_forward`` / ``vq_codebook_backward``: ||sg(z_e) - e_c||^2;
  de_k = sum over the vectors n that chose k of 2 (e_k - z_e,n); z_e gets nothing.
* ``vq_commitment_forward`` / ``vq_commitment_backward``: beta ||z_e - sg(e_c)||^2;
  dz_e = 2 beta (z_e - e_c); the codebook gets nothing.
"""
from __future__ import annotations

import numpy as np

from .._validate import check_op_scalar as _check_scalar
from .._validate import check_op_shape as _check_shape


def _check_codebook(where, codebook, dim):
    if np.ndim(codebook) != 2 or codebook.shape[1] != dim or codebook.shape[0] < 1:
        raise ValueError(f"{where}: codebook must have shape (K, {dim}) with K >= 1, got "
                         f"{np.shape(codebook)}")


def _check_codes(where, codes, shape, k):
    _check_shape(where, "codes", codes, shape)
    if not np.issubdtype(np.asarray(codes).dtype, np.integer):
        raise ValueError(f"{where}: codes must be integer code indices, got dtype "
                         f"{np.asarray(codes).dtype}")
    if codes.size and (codes.min() < 0 or codes.max() >= k):
        raise ValueError(f"{where}: codes must lie in [0, {k - 1}] (the codebook has {k} "
                         f"codes), got values in [{codes.min()}, {codes.max()}]")


# --------------------------------------------------------------------------- nearest code
def code_distances(z, codebook):
    """Squared distances of every vector to every code, as matrix products.

    d_nk = |z_n|^2 - 2 z_n . e_k + |e_k|^2   (one (N, D) x (D, K) product; no loop over n or k)

    Parameters
    ----------
    z : (N, D)
    codebook : (K, D)

    Returns
    -------
    d : (N, K). Rounding: each entry is within a few eps (|z_n|^2 + |e_k|^2) of the exact
        squared distance (the expansion cancels when z_n is close to e_k).
    """
    if np.ndim(z) != 2:
        raise ValueError(f"code_distances: z must have shape (N, D), got {np.shape(z)}")
    _check_codebook("code_distances", codebook, z.shape[1])
    d = z @ codebook.T                                  # z_n . e_k
    d *= -2.0
    d += np.einsum("nd,nd->n", z, z)[:, None]           # + |z_n|^2
    d += np.einsum("kd,kd->k", codebook, codebook)      # + |e_k|^2
    return d


def nearest_code(z, codebook):
    """Index of the nearest code of every vector: c_n = argmin_k |z_n - e_k|^2.

    Ties (equal computed distances) go to the lowest index k (``np.argmin`` returns the first
    minimum). Distances equal in exact arithmetic but rounded differently by the expansion in
    ``code_distances`` may pick either of the tied codes; both are then equally near.

    Parameters
    ----------
    z : (..., D) any leading shape
    codebook : (K, D)

    Returns
    -------
    codes : int64 array of z's leading shape
    """
    z = np.asarray(z)
    if z.ndim < 1:
        raise ValueError(f"nearest_code: z must have shape (..., D), got {z.shape}")
    flat = z.reshape(-1, z.shape[-1])
    return np.argmin(code_distances(flat, codebook), axis=1).astype(np.int64).reshape(z.shape[:-1])


# --------------------------------------------------------------------------- decoder term
def vq_quantize_forward(codebook, codes):
    """z_q = e_c: the chosen code of every latent vector.

    Parameters
    ----------
    codebook : (K, D)
    codes : (B, M) int

    Returns
    -------
    z_q : (B, M, D)
    cache : z_q's shape
    """
    _check_codes("vq_quantize_forward", codes, np.shape(codes), codebook.shape[0])
    z_q = codebook[codes]
    return z_q, z_q.shape


def vq_straight_through_backward(dz_q, cache):
    """The straight-through estimator: dz_e = dL/dz_q, copied unchanged.

    In the surrogate z_q = z_e + sg(e_c - z_e), dz_q/dz_e is the identity and dz_q/de is 0 (the
    codebook learns only from the codebook term).

    Parameters
    ----------
    dz_q : (B, M, D)
    cache : from vq_quantize_forward

    Returns
    -------
    dz_e : (B, M, D), a copy of dz_q
    """
    _check_shape("vq_straight_through_backward", "dz_q", dz_q, cache)
    return dz_q.copy()                                  # dz_q/dz_e = I


# --------------------------------------------------------------------------- codebook term
def vq_codebook_forward(z_e, codebook, codes):
    """The codebook term per example: sum_{m,d} (sg(z_e) - e_c)^2.

    Parameters
    ----------
    z_e : (B, M, D) encoder outputs (constants here)
    codebook : (K, D)
    codes : (B, M)

    Returns
    -------
    loss : (B,)
    cache : (z_e, codebook, codes)
    """
    B, M, D = _check_latents("vq_codebook_forward", z_e)
    _check_codebook("vq_codebook_forward", codebook, D)
    _check_codes("vq_codebook_forward", codes, (B, M), codebook.shape[0])
    diff = z_e - codebook[codes]
    return np.einsum("bmd,bmd->b", diff, diff), (z_e, codebook, codes)


def vq_codebook_backward(dloss, cache):
    """de_k = sum_{(b,m): c_bm = k} 2 dloss_b (e_k - z_e,bm): only the chosen codes move; a code
    chosen by several vectors gets the sum of their pulls (scatter-added with ``np.bincount``);
    z_e gets no gradient (it is behind sg).

    Parameters
    ----------
    dloss : (B,)
    cache : from vq_codebook_forward

    Returns
    -------
    dcodebook : (K, D)
    """
    z_e, codebook, codes = cache
    B, M, D = z_e.shape
    K = codebook.shape[0]
    _check_shape("vq_codebook_backward", "dloss", dloss, (B,))
    # d/de_c (e_c - z_e)^2 = 2 (e_c - z_e), times dloss_b of the example the vector belongs to
    pull = 2.0 * (codebook[codes] - z_e) * dloss[:, None, None]           # (B, M, D)
    # scatter-add every vector's pull onto its code: flat index c D + d, one bincount
    index = (codes[:, :, None] * D + np.arange(D)).ravel()
    dcodebook = np.bincount(index, weights=pull.ravel(), minlength=K * D)
    return dcodebook.reshape(K, D).astype(codebook.dtype, copy=False)


# --------------------------------------------------------------------------- commitment term
def vq_commitment_forward(z_e, z_q, beta):
    """The commitment term per example: beta sum_{m,d} (z_e - sg(z_q))^2, z_q = e_c.

    Parameters
    ----------
    z_e : (B, M, D)
    z_q : (B, M, D) the chosen codes (constants here)
    beta : float >= 0

    Returns
    -------
    loss : (B,)
    cache : (z_e - z_q, beta)
    """
    _check_latents("vq_commitment_forward", z_e)
    _check_shape("vq_commitment_forward", "z_q", z_q, z_e.shape)
    _check_scalar("vq_commitment_forward", "beta", beta, allow_equal=True)
    diff = z_e - z_q
    return beta * np.einsum("bmd,bmd->b", diff, diff), (diff, beta)


def vq_commitment_backward(dloss, cache):
    """dz_e = 2 beta dloss_b (z_e - e_c); the codebook gets nothing (it is behind sg).

    Parameters
    ----------
    dloss : (B,)
    cache : from vq_commitment_forward

    Returns
    -------
    dz_e : (B, M, D)
    """
    diff, beta = cache
    _check_shape("vq_commitment_backward", "dloss", dloss, diff.shape[:1])
    return (2.0 * beta) * diff * dloss[:, None, None]       # d/dz_e beta (z_e - e)^2


def _check_latents(where, z_e):
    if np.ndim(z_e) != 3:
        raise ValueError(f"{where}: z_e must have shape (B, M, D), got {np.shape(z_e)}")
    return z_e.shape
