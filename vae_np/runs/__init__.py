"""Run directories: their one layout for every model kind, checkpoints and atomic writes
(``directory``), what config.json holds and how it is checked (``config``), the model kinds a run
can hold and their registry (``kinds``: the VAE's here, the VQ-VAE's in vae_np.vq.runs), and the
published setups a run can start from (``presets``)."""
