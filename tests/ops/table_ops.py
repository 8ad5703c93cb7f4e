"""Bad shapes and scalars for the ops (see ``tests/cli/entry_points.py``)."""
from __future__ import annotations

import numpy as np

from table_common import rows
from vae_np import ops

CASES: list = []
case = rows(CASES)


# ------------------------------------------------------------------------------ ops
# Only where a wrong shape (or a scalar out of range) would otherwise broadcast into a silently
# wrong number. Elementwise one-input ops (relu_forward, ..., sigmoid, softplus) have no such
# argument: NaN in gives NaN out, which is the mathematics.
A23, A13, A21 = np.ones((2, 3)), np.ones((1, 3)), np.ones((2, 1))
for _entry, _word, _what, _call in [
    ("ops.dense_forward", "b (n_out,)", "b of shape (1,) for W (3, 2)",
     lambda tmp: ops.dense_forward(A23, np.ones((3, 2)), np.ones(1))),
    ("ops.dense_backward", "dy", "dy (2, 1) for y (2, 2)",
     lambda tmp: ops.dense_backward(A21, ops.dense_forward(A23, np.ones((3, 2)), np.ones(2))[1])),
    ("ops.relu_backward", "dy", "dy (2, 1) for x (2, 3)", lambda tmp: ops.relu_backward(A21, A23)),
    ("ops.leaky_relu_backward", "dy", "dy (1, 3) for x (2, 3)",
     lambda tmp: ops.leaky_relu_backward(A13, A23)),
    ("ops.tanh_backward", "dy", "dy (2, 1) for y (2, 3)", lambda tmp: ops.tanh_backward(A21, A23)),
    ("ops.sigmoid_backward", "dy", "dy (1, 3) for y (2, 3)",
     lambda tmp: ops.sigmoid_backward(A13, A23)),
    ("ops.softplus_backward", "dy", "dy () for x (2, 3)",
     lambda tmp: ops.softplus_backward(np.float64(1.0), A23)),
    ("ops.sigma_logvar_backward", "dsigma", "dsigma (1, 3) for sigma (2, 3)",
     lambda tmp: ops.sigma_logvar_backward(A13, A23)),
    ("ops.sigma_softplus_backward", "dsigma", "dsigma (2, 1) for s (2, 3)",
     lambda tmp: ops.sigma_softplus_backward(A21, A23)),
    ("ops.reparameterize_forward", "sigma", "sigma (1, 3) for mu (2, 3)",
     lambda tmp: ops.reparameterize_forward(A23, A13, A23)),
    ("ops.reparameterize_backward", "dz", "dz (1, 3) for eps (2, 3)",
     lambda tmp: ops.reparameterize_backward(A13, ops.reparameterize_forward(A23, A23, A23)[1])),
    ("ops.kl_forward", "sigma", "sigma (1, 3) for mu (2, 3)", lambda tmp: ops.kl_forward(A23, A13)),
    ("ops.kl_backward", "dkl", "dkl (1,) for B = 2",
     lambda tmp: ops.kl_backward(np.ones(1), ops.kl_forward(A23, A23)[1])),
    ("ops.bernoulli_nll_forward", "x", "x (2, 1) for logits (2, 3)",
     lambda tmp: ops.bernoulli_nll_forward(A23, A21 * 0.5)),
    ("ops.bernoulli_nll_forward", "x", "x (3,) for logits (2, 3)",
     lambda tmp: ops.bernoulli_nll_forward(A23, np.full(3, 0.5))),
    ("ops.bernoulli_nll_backward", "dnll", "dnll (1,) for B = 2",
     lambda tmp: ops.bernoulli_nll_backward(np.ones(1), ops.bernoulli_nll_forward(A23, A23)[1])),
    ("ops.continuous_bernoulli_nll_forward", "x", "x (1, 3) for logits (2, 3)",
     lambda tmp: ops.continuous_bernoulli_nll_forward(A23, A13 * 0.5)),
    ("ops.continuous_bernoulli_nll_backward", "dnll", "dnll (1,) for B = 2",
     lambda tmp: ops.continuous_bernoulli_nll_backward(
         np.ones(1), ops.continuous_bernoulli_nll_forward(A23, A23 * 0.5)[1])),
    ("ops.gaussian_nll_forward", "x", "x (1, 3) for mean (2, 3)",
     lambda tmp: ops.gaussian_nll_forward(A23, A13)),
    ("ops.gaussian_nll_backward", "dnll", "dnll (2, 1) for B = 2",
     lambda tmp: ops.gaussian_nll_backward(A21, ops.gaussian_nll_forward(A23, A23)[1])),
    ("ops.gaussian_learned_nll_forward", "r", "r (2, 1) for mean (2, 3)",
     lambda tmp: ops.gaussian_learned_nll_forward(A23, A21, A23)),
    ("ops.gaussian_learned_nll_forward", "x", "x (1, 3) for mean (2, 3)",
     lambda tmp: ops.gaussian_learned_nll_forward(A23, A23, A13)),
    ("ops.gaussian_learned_nll_backward", "dnll", "dnll (1,) for B = 2",
     lambda tmp: ops.gaussian_learned_nll_backward(
         np.ones(1), ops.gaussian_learned_nll_forward(A23, A23, A23)[1])),
]:
    case(_entry, "shape", _word, _what, _call)
for _entry, _kind, _word, _what, _call in [
    ("ops.sigma_softplus_forward", "range", "sigma_min", "sigma_min = -1 (sigma could be <= 0)",
     lambda tmp: ops.sigma_softplus_forward(A23, -1.0)),
    ("ops.sigma_softplus_forward", "shape", "sigma_min", "sigma_min an array (3,)",
     lambda tmp: ops.sigma_softplus_forward(A23, np.ones(3))),
    ("ops.gaussian_nll_forward", "range", "sigma", "sigma = 0",
     lambda tmp: ops.gaussian_nll_forward(A23, A23, 0.0)),
    ("ops.gaussian_nll_forward", "range", "sigma", "sigma = -1 (ln of a negative)",
     lambda tmp: ops.gaussian_nll_forward(A23, A23, -1.0)),
    ("ops.gaussian_nll_forward", "nan/inf", "sigma", "sigma = NaN",
     lambda tmp: ops.gaussian_nll_forward(A23, A23, np.nan)),
    ("ops.gaussian_nll_forward", "shape", "sigma", "sigma an array (3,)",
     lambda tmp: ops.gaussian_nll_forward(A23, A23, np.ones(3))),
    ("ops.gaussian_learned_nll_forward", "range", "sigma_min", "sigma_min = -0.1",
     lambda tmp: ops.gaussian_learned_nll_forward(A23, A23, A23, -0.1)),
    ("ops.gaussian_learned_nll_forward", "nan/inf", "sigma_min", "sigma_min = NaN",
     lambda tmp: ops.gaussian_learned_nll_forward(A23, A23, A23, np.nan)),
]:
    case(_entry, _kind, _word, _what, _call)


# ------------------------------------------------------------------------------ ops.vq (VQ-VAE)
_ZE, _CB, _C = np.zeros((2, 3, 1)), np.zeros((4, 1)), np.zeros((2, 3), dtype=np.int64)
for _entry, _kind, _word, _what, _call in [
    ("ops.vq_quantize_forward", "range", "codes", "code 4 of a 4-code codebook",
     lambda tmp: ops.vq_quantize_forward(_CB, np.full((2, 3), 4))),
    ("ops.vq_quantize_forward", "dtype", "codes", "float codes",
     lambda tmp: ops.vq_quantize_forward(_CB, np.zeros((2, 3)))),
    ("ops.vq_straight_through_backward", "shape", "dz_q", "dz_q (2, 3, 2) for z_q (2, 3, 1)",
     lambda tmp: ops.vq_straight_through_backward(np.ones((2, 3, 2)),
                                                  ops.vq_quantize_forward(_CB, _C)[1])),
    ("ops.vq_codebook_forward", "shape", "codes", "codes (2, 1) for z_e (2, 3, 1)",
     lambda tmp: ops.vq_codebook_forward(_ZE, _CB, _C[:, :1])),
    ("ops.vq_codebook_forward", "shape", "codebook", "codebook (4, 2) for D = 1",
     lambda tmp: ops.vq_codebook_forward(_ZE, np.zeros((4, 2)), _C)),
    ("ops.vq_codebook_backward", "shape", "dloss", "dloss (1,) for B = 2",
     lambda tmp: ops.vq_codebook_backward(np.ones(1), ops.vq_codebook_forward(_ZE, _CB, _C)[1])),
    ("ops.vq_commitment_forward", "shape", "z_q", "z_q (2, 1, 1) for z_e (2, 3, 1)",
     lambda tmp: ops.vq_commitment_forward(_ZE, _ZE[:, :1], 0.25)),
    ("ops.vq_commitment_forward", "range", "beta", "beta = -1",
     lambda tmp: ops.vq_commitment_forward(_ZE, _ZE, -1.0)),
    ("ops.vq_commitment_backward", "shape", "dloss", "dloss (2, 1) for B = 2",
     lambda tmp: ops.vq_commitment_backward(np.ones((2, 1)),
                                            ops.vq_commitment_forward(_ZE, _ZE, 0.25)[1])),
]:
    case(_entry, _kind, _word, _what, _call)


# ------------------------------------------------------------------------------ ops.flows
_FZ, _F1, _FN = np.zeros((2, 3)), np.ones((2, 3)), np.ones(2)
for _entry, _kind, _word, _what, _call in [
    ("ops.planar_u_hat_forward", "shape", "w", "w (2, 2) for u (2, 3)",
     lambda tmp: ops.planar_u_hat_forward(_F1, np.ones((2, 2)))),
    ("ops.planar_u_hat_forward", "range", "w", "a zero row of w (u_hat divides by |w|^2)",
     lambda tmp: ops.planar_u_hat_forward(_F1, np.array([[1.0, 0, 0], [0, 0, 0]]))),
    ("ops.planar_u_hat_backward", "shape", "du_hat", "du_hat (2, 2) for u (2, 3)",
     lambda tmp: ops.planar_u_hat_backward(np.ones((2, 2)),
                                           ops.planar_u_hat_forward(_F1, _F1)[1])),
    ("ops.planar_forward", "shape", "u_hat", "u_hat (2, 2) for z (2, 3)",
     lambda tmp: ops.planar_forward(_FZ, np.ones((2, 2)), _F1, _FN)),
    ("ops.planar_forward", "shape", "b", "b (3,) for N = 2",
     lambda tmp: ops.planar_forward(_FZ, _F1, _F1, np.ones(3))),
    ("ops.planar_forward", "range", "u_hat", "w.u_hat = -3 (a raw u, not u_hat)",
     lambda tmp: ops.planar_forward(_FZ, -_F1, _F1, _FN)),
    ("ops.planar_forward", "shape", "one_plus_wuh", "one_plus_wuh (3,) for N = 2",
     lambda tmp: ops.planar_forward(_FZ, _F1, _F1, _FN, np.ones(3))),
    ("ops.planar_forward", "range", "one_plus_wuh", "one_plus_wuh = -1 (w.u_hat passed for "
     "1 + w.u_hat)", lambda tmp: ops.planar_forward(_FZ, _F1, _F1, _FN, -_FN)),
    ("ops.planar_one_plus_wuh", "type", "cache",
     "planar_forward's cache, not planar_u_hat_forward's",
     lambda tmp: ops.planar_one_plus_wuh(ops.planar_forward(_FZ, _F1, _F1, _FN)[2])),
    ("ops.planar_u_hat_backward", "shape", "done_plus_wuh", "done_plus_wuh (3,) for N = 2",
     lambda tmp: ops.planar_u_hat_backward(_F1, ops.planar_u_hat_forward(_F1, _F1)[1],
                                           np.ones(3))),
    ("ops.planar_backward", "shape", "dlogdet", "dlogdet (1,) for N = 2",
     lambda tmp: ops.planar_backward(_F1, np.ones(1), ops.planar_forward(_FZ, _F1, _F1,
                                                                         _FN)[2])),
    ("ops.radial_params_forward", "shape", "beta_raw", "beta_raw (3,) for alpha_raw (2,)",
     lambda tmp: ops.radial_params_forward(_FN, np.ones(3))),
    ("ops.radial_params_backward", "shape", "dbeta", "dbeta (3,) for N = 2",
     lambda tmp: ops.radial_params_backward(_FN, np.ones(3),
                                            ops.radial_params_forward(_FN, _FN)[2])),
    ("ops.radial_forward", "shape", "z_ref", "z_ref (3, 3) for z (2, 3)",
     lambda tmp: ops.radial_forward(_FZ, np.ones((3, 3)), _FN, _FN)),
    ("ops.radial_forward", "range", "alpha", "alpha = 0",
     lambda tmp: ops.radial_forward(_FZ, _F1, np.zeros(2), _FN)),
    ("ops.radial_forward", "range", "beta", "beta = -2 alpha",
     lambda tmp: ops.radial_forward(_FZ, _F1, _FN, -2 * _FN)),
    ("ops.radial_backward", "shape", "df", "df (2, 2) for z (2, 3)",
     lambda tmp: ops.radial_backward(np.ones((2, 2)), _FN,
                                     ops.radial_forward(_FZ, _F1, _FN, _FN)[2])),
]:
    case(_entry, _kind, _word, _what, _call)


# ------------------------------------------------------------------------------ ops.masked (MADE)
_X, _W, _MASK = np.ones((2, 3)), np.ones((3, 2)), np.ones((3, 2))
_LOGITS, _CODES = np.zeros((2, 3, 4)), np.zeros((2, 3), dtype=np.int64)
for _entry, _kind, _word, _what, _call in [
    ("ops.masked_dense_forward", "shape", "mask", "mask (2, 3) for W (3, 2)",
     lambda tmp: ops.masked_dense_forward(_X, _W, np.ones(2), np.ones((2, 3)))),
    ("ops.masked_dense_forward", "shape", "b (n_out,)", "b (1,) for W (3, 2)",
     lambda tmp: ops.masked_dense_forward(_X, _W, np.ones(1), _MASK)),
    ("ops.masked_dense_backward", "shape", "dy", "dy (2, 1) for y (2, 2)",
     lambda tmp: ops.masked_dense_backward(np.ones((2, 1)),
                                           ops.masked_dense_forward(_X, _W, np.ones(2), _MASK)[1])),
    ("ops.categorical_nll_forward", "shape", "codes", "codes (2, 2) for logits (2, 3, 4)",
     lambda tmp: ops.categorical_nll_forward(_LOGITS, _CODES[:, :2])),
    ("ops.categorical_nll_forward", "range", "codes", "code -1 (would wrap to the last value)",
     lambda tmp: ops.categorical_nll_forward(_LOGITS, _CODES - 1)),
    ("ops.categorical_nll_forward", "range", "codes", "code 4 of 4 values",
     lambda tmp: ops.categorical_nll_forward(_LOGITS, _CODES + 4)),
    ("ops.categorical_nll_forward", "dtype", "codes", "float codes",
     lambda tmp: ops.categorical_nll_forward(_LOGITS, np.zeros((2, 3)))),
    ("ops.categorical_nll_backward", "shape", "dnll", "dnll (1,) for B = 2",
     lambda tmp: ops.categorical_nll_backward(np.ones(1),
                                              ops.categorical_nll_forward(_LOGITS, _CODES)[1])),
]:
    case(_entry, _kind, _word, _what, _call)
