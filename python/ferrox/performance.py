"""Model performance without waiting for labels, and with them.

* :func:`realised` — ROC AUC, log-loss and accuracy of a binary classifier, RMSE and MAE of a regressor.
* :class:`CBPE` — confidence-based performance estimation for binary classifiers: the scores are
  calibrated on reference data (isotonic regression); on current data the calibrated probabilities give
  the expected confusion matrix and the expected ROC curve, so ROC AUC and accuracy are estimated from the
  scores alone, each with a ±3 standard-error band. Valid under covariate shift (``P(y | score)``
  unchanged), not under concept shift.
* :class:`DLE` — direct loss estimation for regressors: two small ferrox GBDT models learn each reference
  row's absolute and squared error from its features; on current data their mean predictions are the
  estimated MAE and RMSE.

The same computations run inside the model server (``[monitoring]``) when a pipeline carries a performance
reference (:meth:`ferrox.pipeline.Pipeline.fit_monitoring`).

>>> import numpy as np, ferrox as fx
>>> rng = np.random.default_rng(0)
>>> p = rng.uniform(size=5000); y = (rng.uniform(size=5000) < p).astype(float)   # calibrated scores
>>> est = fx.performance.CBPE().fit(p, y)
>>> q = rng.uniform(size=5000) ** 2; yq = (rng.uniform(size=5000) < q).astype(float)
>>> e = est.estimate(q)["roc_auc"]; r = fx.performance.realised("binary", q, yq)["roc_auc"]
>>> bool(abs(e["value"] - r) < 0.03 and e["lower"] <= r <= e["upper"])
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _ferrox
from .exceptions import DataError, NotFittedError, ParameterError

__all__ = ["realised", "CBPE", "DLE"]


def _vector(values: Any, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 2 and a.shape[1] == 2:
        a = a[:, 1]
    if a.ndim != 1:
        raise DataError(f"{name} must be one value per row (or two class probabilities), got shape {a.shape}")
    return np.ascontiguousarray(a)


def _task(task: str) -> str:
    if task not in ("binary", "regression"):
        raise ParameterError(f"task must be 'binary' or 'regression', got {task!r}")
    return task


def realised(task: str, y_score: Any, y_true: Any, threshold: float = 0.5) -> dict[str, float]:
    """Realised performance: for ``task="binary"`` (``y_score`` = P(class 1), ``y_true`` 0/1) ``roc_auc``,
    ``logloss`` and ``accuracy`` at ``threshold``; for ``"regression"`` ``rmse`` and ``mae``.

    >>> import ferrox as fx
    >>> fx.performance.realised("regression", [1.0, 2.0], [2.0, 2.0])["mae"]
    0.5
    """
    return dict(_ferrox.performance_realised(_task(task), _vector(y_score, "y_score"), _vector(y_true, "y_true"),
                                             float(threshold)))


def _estimates(rows: list[tuple[str, float, float, float]]) -> dict[str, dict[str, float]]:
    return {k: {"value": v, "lower": lo, "upper": hi} for k, v, lo, hi in rows}


class CBPE:
    """Confidence-based performance estimation of a binary classifier (ROC AUC and accuracy).

    ``fit(y_score, y_true)`` on reference data (held out from training) calibrates the scores;
    ``estimate(y_score)`` on current data returns ``{"roc_auc": {"value", "lower", "upper"}, "accuracy": ...}``.

    >>> import numpy as np, ferrox as fx
    >>> rng = np.random.default_rng(1); p = rng.uniform(size=2000); y = (rng.uniform(size=2000) < p) * 1.0
    >>> sorted(fx.performance.CBPE().fit(p, y).estimate(p))
    ['accuracy', 'roc_auc']
    """

    def __init__(self, threshold: float = 0.5):
        if not 0.0 < float(threshold) < 1.0:
            raise ParameterError(f"threshold must lie in (0, 1), got {threshold!r}")
        self.threshold = float(threshold)

    def fit(self, y_score: Any, y_true: Any) -> CBPE:
        """Calibrates reference scores against their 0/1 outcomes (isotonic regression)."""
        x, y = _ferrox.performance_calibrate(_vector(y_score, "y_score"), _vector(y_true, "y_true"))
        self.knots_x_, self.knots_y_ = np.asarray(x), np.asarray(y)
        self.reference_ = realised("binary", y_score, y_true, self.threshold)
        return self

    def calibrate(self, y_score: Any) -> np.ndarray:
        """Calibrated probabilities of scores."""
        self._check()
        return np.interp(_vector(y_score, "y_score"), self.knots_x_, self.knots_y_)

    def estimate(self, y_score: Any) -> dict[str, dict[str, float]]:
        """Estimated ROC AUC and accuracy of current scores, with ±3 standard-error bands."""
        self._check()
        return _estimates(_ferrox.performance_estimate_binary(
            _vector(y_score, "y_score"), self.knots_x_.tolist(), self.knots_y_.tolist(), self.threshold))

    def _check(self) -> None:
        if not hasattr(self, "knots_x_"):
            raise NotFittedError("this CBPE is not fitted yet: call fit(y_score, y_true) on reference data")


class DLE:
    """Direct loss estimation of a regressor (MAE and RMSE).

    ``fit(X, y_true, y_pred)`` trains two small ferrox GBDT models of the absolute and squared error on
    reference data; ``estimate(X)`` returns ``{"mae": {"value", "lower", "upper"}, "rmse": ...}``.
    ``n_estimators``, ``num_leaves`` and ``learning_rate`` size the loss models.

    >>> import numpy as np, ferrox as fx
    >>> rng = np.random.default_rng(2); X = rng.normal(size=(3000, 2))
    >>> y = X[:, 0] + rng.normal(scale=np.where(X[:, 1] > 0, 2.0, 0.2))   # noisier where x1 > 0
    >>> dle = fx.performance.DLE(n_estimators=30).fit(X, y, X[:, 0])
    >>> e = dle.estimate(X[X[:, 1] > 0])["mae"]["value"]; bool(1.2 < e < 2.0)
    True
    """

    def __init__(self, n_estimators: int = 100, num_leaves: int = 15, learning_rate: float = 0.1,
                 n_jobs: int | None = None, random_state: int = 0):
        self.n_estimators, self.num_leaves, self.learning_rate = int(n_estimators), int(num_leaves), float(learning_rate)
        self.n_jobs, self.random_state = n_jobs, random_state

    def _model(self) -> Any:
        from .sklearn import GBDTRegressor

        return GBDTRegressor(n_estimators=self.n_estimators, num_leaves=self.num_leaves,
                             learning_rate=self.learning_rate, n_jobs=self.n_jobs if self.n_jobs is not None else -1,
                             random_state=self.random_state, verbose=-1)

    def fit(self, X: Any, y_true: Any, y_pred: Any) -> DLE:
        """Trains the loss models on reference data: ``X`` the model's inputs (numeric), ``y_pred`` its
        predictions, ``y_true`` the outcomes."""
        t, p = _vector(y_true, "y_true"), _vector(y_pred, "y_pred")
        if len(t) != len(p):
            raise DataError(f"y_true has {len(t)} values but y_pred {len(p)}")
        err = p - t
        self.mae_model_ = self._model().fit(X, np.abs(err))
        self.mse_model_ = self._model().fit(X, err * err)
        self.reference_ = realised("regression", p, t)
        return self

    def predict_losses(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Each row's estimated absolute and squared error."""
        if not hasattr(self, "mae_model_"):
            raise NotFittedError("this DLE is not fitted yet: call fit(X, y_true, y_pred) on reference data")
        return np.asarray(self.mae_model_.predict(X), dtype=np.float64), np.asarray(self.mse_model_.predict(X), dtype=np.float64)

    def estimate(self, X: Any) -> dict[str, dict[str, float]]:
        """Estimated MAE and RMSE of the model on ``X``, with ±3 standard-error bands of the mean losses."""
        a, s = self.predict_losses(X)
        return _estimates(_ferrox.performance_estimate_regression(a, s))
