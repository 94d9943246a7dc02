"""Exceptions raised by ferrox.

Every error ferrox raises on purpose is a :class:`FerroxError`; each subclass also derives from the
builtin a caller would naturally catch, so ``except ValueError`` keeps working when ferrox is swapped in.

>>> import ferrox, numpy as np
>>> try:
...     ferrox.Dataset(np.zeros(3))
... except ValueError as e:
...     print(type(e).__name__)
DataError
"""

from __future__ import annotations

__all__ = [
    "FerroxError",
    "DataError",
    "ParameterError",
    "ModelIntegrityError",
    "ModelVersionError",
    "NotFittedError",
    "DeviceError",
]


class FerroxError(Exception):
    """Base class of every error ferrox raises on purpose."""


class DataError(FerroxError, ValueError):
    """Input data cannot be used as given; the message names the column, row or argument."""


class ParameterError(DataError):
    """A parameter is unknown or out of range; the message names it (and the closest valid name)."""


class ModelIntegrityError(FerroxError, ValueError):
    """A model file or byte string failed verification (magic, SHA-256, length or structure)."""


class ModelVersionError(ModelIntegrityError):
    """A model file was written by a newer format version than this ferrox reads."""


class NotFittedError(FerroxError, ValueError, AttributeError):
    """An estimator was used before ``fit``; compatible with scikit-learn's ``NotFittedError`` checks."""


class DeviceError(FerroxError, RuntimeError):
    """A GPU cannot be used: the CUDA driver or NVRTC library is missing, there is no such device, a
    kernel failed to compile or launch, or device memory ran out. The message says which."""
