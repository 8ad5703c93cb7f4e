"""The one container every loader returns: :class:`Dataset`.

Convention shared by every data set in the library
--------------------------------------------------
Images are stored flattened, one row per example, as ``uint8`` grey levels in ``[0, 255]``.
Binary data (sprites, statically binarized MNIST) is stored as ``0`` / ``255``. The trainer
therefore always turns a batch into intensities in ``[0, 1]`` with the same line, ``x / 255``;
data stays ``uint8`` in memory (MNIST train is 47 MB as ``uint8``, 376 MB as ``float64``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A train/test split of flattened images plus optional labels and generative factors.

    Attributes
    ----------
    name : canonical name, e.g. ``"mnist"``
    x_train, x_test : (N, D), (M, D) uint8 grey levels 0..255 (binary data as 0/255), D = H * W
    y_train, y_test : (N,), (M,) integer class labels, or None
    image_shape : (H, W): ``x[i].reshape(image_shape)`` is image ``i``
    dynamic_binarization : True: the trainer draws ``x ~ Bernoulli(x / 255)`` afresh for every
        batch of every epoch (dynamically binarized MNIST); False: the data is used as stored
    factors_train, factors_test : dict of name -> (N,) / (M,) ground-truth generative factors
        (sprites only), or None
    x_valid : (V, D) uint8 validation split when the data set defines one (binarized MNIST:
        10000 images), or None

    Raises ValueError on construction when an array has the wrong dtype, number of dimensions or
    length, so that a malformed data set fails here and not deep inside training.
    """

    name: str
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray | None
    y_test: np.ndarray | None
    image_shape: tuple[int, int]
    dynamic_binarization: bool = False
    factors_train: dict[str, np.ndarray] | None = None
    factors_test: dict[str, np.ndarray] | None = None
    x_valid: np.ndarray | None = None

    def __post_init__(self) -> None:
        shape = tuple(self.image_shape)
        if len(shape) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in shape):
            raise ValueError(f"Dataset {self.name!r}: image_shape must be a pair of positive "
                             f"integers (H, W), got {self.image_shape!r}")
        object.__setattr__(self, "image_shape", (int(shape[0]), int(shape[1])))
        n_features = shape[0] * shape[1]
        for field in ("x_train", "x_test", "x_valid"):
            x = getattr(self, field)
            if x is None and field == "x_valid":
                continue
            if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2:
                raise ValueError(f"Dataset {self.name!r}: {field} must be a 2-D uint8 array "
                                 f"(N, D), got {_describe(x)}")
            if x.shape[1] != n_features:
                raise ValueError(f"Dataset {self.name!r}: {field} has {x.shape[1]} columns but "
                                 f"image_shape {shape} needs D = {n_features}")
        for split in ("train", "test"):
            n = len(getattr(self, f"x_{split}"))
            labels = getattr(self, f"y_{split}")
            if labels is not None and not (isinstance(labels, np.ndarray) and labels.ndim == 1
                                           and np.issubdtype(labels.dtype, np.integer)
                                           and len(labels) == n):
                raise ValueError(f"Dataset {self.name!r}: y_{split} must be None or a 1-D "
                                 f"integer array of length {n}, got {_describe(labels)}")
            factors = getattr(self, f"factors_{split}")
            if factors is not None:
                for key, values in dict(factors).items():
                    if not isinstance(values, np.ndarray) or values.shape != (n,):
                        raise ValueError(f"Dataset {self.name!r}: factors_{split}[{key!r}] must "
                                         f"be an array of shape ({n},), got {_describe(values)}")

    @property
    def n_features(self) -> int:
        """Number of pixels D of one flattened image."""
        return self.image_shape[0] * self.image_shape[1]

    def __repr__(self) -> str:
        parts = [f"name={self.name!r}", f"x_train={self.x_train.shape}"]
        parts.append(f"x_test={self.x_test.shape}")
        if self.x_valid is not None:
            parts.append(f"x_valid={self.x_valid.shape}")
        parts.append(f"labels={self.y_train is not None}")
        parts.append(f"image_shape={self.image_shape}")
        if self.dynamic_binarization:
            parts.append("dynamic_binarization=True")
        if self.factors_train is not None:
            parts.append(f"factors={sorted(self.factors_train)}")
        return f"Dataset({', '.join(parts)})"


def _describe(x) -> str:
    """Short description of a value for error messages: dtype and shape, or the type name."""
    if isinstance(x, np.ndarray):
        return f"array of dtype {x.dtype} and shape {x.shape}"
    return f"a value of type {type(x).__name__}"
