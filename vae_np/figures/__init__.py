"""Pictures: the drawing surface (``canvas``: matplotlib without pyplot, image grids), a run's
figures (``runs``), the latent space (``latent``) and the claims of the derivation (``claims``)."""
