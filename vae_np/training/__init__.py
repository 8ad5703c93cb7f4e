"""Training: the loop over shuffled mini-batches with its divergence guard (``fit``) and the
progress line of a long run (``progress``). The optimizers are vae_np.optim."""
