"""The design-card VAE: dense layers on one flat parameter vector (``layers``), the step's trace
of every named quantity (``trace``), the approximate posterior q(z|x) (``posterior``), the decoder
likelihoods p(x|z) (``likelihood``), the negative ELBO (``objective``), data batches (``batch``)
and the model that wires them into one training step (``model``)."""
