"""The design-card VAE: dense layers on one flat parameter vector (``layers``), the step's trace
of every named quantity (``trace``), the approximate posterior q(z|x) (``posterior``), the prior
p(z) and the KL term (``prior``), the decoder likelihoods p(x|z) (``likelihood``), the negative
ELBO and the objective protocol (``objective``), data batches (``batch``), the registries of the
extension points (``registry``) and the model that wires them into one training step (``model``).

core imports nothing of the extensions: ``vae_np.objectives`` and ``vae_np.flows`` register
their components in core's registries (see ``registry``)."""
