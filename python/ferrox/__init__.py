"""ferrox: the production-ML loop on tabular data, fast and safe.

A Rust core with a thin Python face. ``import ferrox`` needs numpy only; pandas, polars, pyarrow and the
workflow integrations are imported when used.

>>> import numpy as np, ferrox as fx
>>> ds = fx.Dataset(np.arange(12, dtype=np.float64).reshape(6, 2))
>>> ds.num_data(), ds.num_feature()
(6, 2)
"""

from __future__ import annotations

from . import _ferrox, drift, experiment, gpu, linear_model, performance, pipeline, preprocessing, retrain, serving, validation
from .artifact import artifact_info
from .callback import EarlyStopException, early_stopping, log_evaluation, record_evaluation
from .dataset import Dataset
from .gbdt import Booster, train
from .sklearn import GBDTClassifier, GBDTRanker, GBDTRegressor
from .exceptions import (
    DataError,
    DeviceError,
    FerroxError,
    ModelIntegrityError,
    ModelVersionError,
    NotFittedError,
    ParameterError,
)

__version__: str = _ferrox.__version__

__all__ = [
    "__version__",
    "Dataset",
    "Booster",
    "train",
    "GBDTClassifier",
    "GBDTRegressor",
    "GBDTRanker",
    "early_stopping",
    "log_evaluation",
    "record_evaluation",
    "EarlyStopException",
    "drift",
    "gpu",
    "experiment",
    "performance",
    "validation",
    "artifact_info",
    "FerroxError",
    "DataError",
    "DeviceError",
    "ParameterError",
    "ModelIntegrityError",
    "ModelVersionError",
    "NotFittedError",
    "preprocessing",
    "linear_model",
    "pipeline",
    "serving",
    "retrain",
    "default_num_threads",
    "release_memory",
]


def default_num_threads() -> int:
    """The threads a call with ``num_threads=0`` (or ``n_jobs=-1``) would use if it started now.

    Explicit counts are always honoured exactly. The default shares the cores among the calls that run
    at once, so parallel trials or workers never oversubscribe: ``FERROX_NUM_THREADS`` sets it outright;
    otherwise it is the cores this process may use, capped by ``OMP_NUM_THREADS`` (which joblib sets in
    its worker processes), divided by the number of ferrox calls running side by side in this process
    (for example the trials of an Optuna study with ``n_jobs=2``; the split is kept a few seconds after
    the calls stop overlapping).

    >>> import ferrox as fx
    >>> fx.default_num_threads() >= 1
    True
    """
    return int(_ferrox.default_num_threads())


def release_memory() -> int:
    """Frees the large output buffers kept for reuse and returns the bytes they held.

    The transforms in :mod:`ferrox.preprocessing` write their outputs into fresh buffers from the
    operating system, which must clear every page before first use; for a memory-bound transform that
    costs as much as the transform. So when a large output (16 MiB or more) is freed, its buffer is kept
    for the next output of a similar size: at most 4 buffers and 2 GiB, each for at most 60 seconds
    (checked whenever a transform runs). Kept buffers are marked free-on-pressure, so the operating
    system takes their memory back whenever it needs it, but they still count towards the process's
    resident size until then. Call this to give them back at once.

    >>> import numpy as np, ferrox as fx
    >>> out = fx.preprocessing.StandardScaler().fit_transform(np.ones((3_000_000, 1)))
    >>> del out
    >>> fx.release_memory() >= 24_000_000
    True
    >>> fx.release_memory()
    0
    """
    return int(_ferrox.release_memory())


def __getattr__(name: str) -> object:
    # The integrations load on first use (``fx.optuna.PruningCallback``); they import their library lazily too.
    if name in ("optuna", "mlflow", "ray"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'ferrox' has no attribute {name!r}")
