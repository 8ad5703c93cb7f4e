"""The error an op raises when the model's map is not defined at the current parameters.

It sits with the ops, the lowest layer, so that every op can raise it and every layer above (the
model, the training loop) can catch it without knowing which extension's op it came from.
"""
from __future__ import annotations


class SingularMapError(ValueError):
    """A map of the model that is not invertible (or not defined) in floating point at these
    parameters, although its parameterization excludes that mathematically: parameters that ran
    far out reach it. Training reports it as a divergence (``vae_np.training.fit``), naming
    ``what`` became singular.

    Subclasses name their map in ``what`` (e.g. "a flow step").
    """
    what = "a map of the model"
