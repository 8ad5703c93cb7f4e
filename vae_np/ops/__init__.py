"""Pure operations of the VAE, each a ``name_forward`` / ``name_backward`` pair.

``name_forward(...) -> (out, cache)`` computes one step of the derivation;
``name_backward(dout, cache) -> grads`` applies that step's chain rule, where ``dout`` is the
gradient of the scalar loss with respect to ``out``. Gradients are named ``d<var>``. No function
here keeps state or mutates its inputs; the optional ``out_*`` arguments let a caller supply the
arrays the gradients are written into (the model passes views of its flat gradient vector), which
avoids copies without changing any result.

Shapes: ``B`` batch, ``D`` data dimension, ``Z`` latent dimension, ``K`` Monte Carlo samples.

Complex inputs follow an analytic formula (no ``abs``/``maximum``) so that complex-step
derivative checks can pass through tanh, sigmoid, softplus, exp and log.

The submodules group the pairs by the part of the model they belong to:

* ``ops.dense``: the affine map of every layer;
* ``ops.activations``: ReLU, leaky ReLU, tanh, sigmoid, softplus, identity (and the stable scalar
  helpers ``softplus`` and ``sigmoid``);
* ``ops.gaussian``: the diagonal Gaussian posterior: sigma heads, reparameterization, KL;
* ``ops.likelihoods``: the decoder's -ln p(x|z) (the Bernoulli term also as its formula in one
  line, ``bernoulli_nll_reference`` and ``bernoulli_nll_backward_reference``, beside the
  cache-blocked pair the model runs);
* ``ops.flows``: normalizing-flow steps (planar, radial) with their invertibility
  reparameterizations and log-determinants;
* ``ops.masked``: the MADE prior's masked affine map and categorical -ln p (vae_np.vq.made);
* ``ops.vq``: the VQ-VAE's nearest-code search and its three gradient terms (straight-through,
  codebook, commitment).

Everything is also importable from ``vae_np.ops`` directly.
"""
from ..numerics import LN_2PI
from .activations import (
    ACTIVATIONS, LEAKY_SLOPE, identity_backward, identity_forward, leaky_relu_backward,
    leaky_relu_forward, relu_backward, relu_forward, sigmoid, sigmoid_backward, sigmoid_forward,
    softplus, softplus_backward, softplus_forward, tanh_backward, tanh_forward)
from .dense import dense_backward, dense_forward
from .flows import (planar_backward, planar_forward, planar_one_plus_wuh, planar_u_hat_backward,
                    planar_u_hat_forward, radial_backward, radial_forward, radial_params_backward,
                    radial_params_forward)
from .gaussian import (
    SIGMA_PARAMETERIZATIONS, kl_backward, kl_forward, reparameterize_backward,
    reparameterize_forward, sigma_logvar_backward, sigma_logvar_forward, sigma_softplus_backward,
    sigma_softplus_forward)
from .likelihoods import (
    bernoulli_nll_backward, bernoulli_nll_backward_reference, bernoulli_nll_forward,
    bernoulli_nll_reference, continuous_bernoulli_log_normaliser,
    continuous_bernoulli_log_normaliser_grad, continuous_bernoulli_nll_backward,
    continuous_bernoulli_nll_forward, gaussian_learned_nll_backward, gaussian_learned_nll_forward,
    gaussian_nll_backward, gaussian_nll_forward)
from .masked import (
    categorical_nll_backward, categorical_nll_forward, log_softmax, masked_dense_backward,
    masked_dense_forward)
from .vq import (
    code_distances, nearest_code, vq_codebook_backward, vq_codebook_forward, vq_commitment_backward,
    vq_commitment_forward, vq_quantize_forward, vq_straight_through_backward)
