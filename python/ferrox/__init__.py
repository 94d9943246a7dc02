"""ferrox: the production-ML loop on tabular data, fast and safe.

A Rust core with a thin Python face. ``import ferrox`` needs numpy only; pandas, polars, pyarrow and the
workflow integrations are imported when used.

>>> import numpy as np, ferrox as fx
>>> ds = fx.Dataset(np.arange(12, dtype=np.float64).reshape(6, 2))
>>> ds.num_data(), ds.num_feature()
(6, 2)
"""

from __future__ import annotations

from . import _ferrox, drift, linear_model, pipeline, preprocessing, validation
from .artifact import artifact_info
from .callback import EarlyStopException, early_stopping, log_evaluation, record_evaluation
from .dataset import Dataset
from .gbdt import Booster, train
from .sklearn import GBDTClassifier, GBDTRanker, GBDTRegressor
from .exceptions import (
    DataError,
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
    "validation",
    "artifact_info",
    "FerroxError",
    "DataError",
    "ParameterError",
    "ModelIntegrityError",
    "ModelVersionError",
    "NotFittedError",
    "preprocessing",
    "linear_model",
    "pipeline",
    "default_num_threads",
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


def __getattr__(name: str) -> object:
    # The integrations load on first use (``fx.optuna.PruningCallback``); they import their library lazily too.
    if name in ("optuna", "mlflow"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'ferrox' has no attribute {name!r}")
