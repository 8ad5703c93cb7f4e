"""Gradient checking: any f(params) -> scalar against central differences, directional
derivatives or the complex step (``generic``), a VAE's full gradient with its noise frozen
(``model``), and the per-tensor report both return (``report``)."""
from ..numerics import relative_error
from .generic import METHODS, check_gradients, constant_ratio, describe_ratio
from .model import check_model
from .report import GradcheckReport, TensorResult

__all__ = ["check_gradients", "check_model", "GradcheckReport", "TensorResult", "constant_ratio",
           "describe_ratio", "relative_error", "METHODS"]
