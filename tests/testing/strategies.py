"""The shared test helpers, re-exported from their public home ``vae_np.testing`` so that test
files can keep ``from strategies import ...``. Tolerances are documented in
``vae_np.testing.numerical``; strategies in ``vae_np.testing.strategies``."""
from vae_np.testing.numerical import (
    CS_ATOL, CS_RTOL, FD_ATOL_PER_F, FD_RTOL, assert_complex_close, assert_fd_close,
    assert_unchanged, central_difference, complex_step, relative_error, snapshot)
from vae_np.testing.strategies import (
    ACTIVATION_NAMES, DECODER_MEAN_NAMES, LIKELIHOOD_NAMES, SIGMA_PARAM_NAMES, architectures,
    arrays, away_from_zero, batch_sizes, dense_shapes, dims, floats, make_data, matrix_shapes,
    sample_counts, seeds)
