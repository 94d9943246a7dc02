"""scikit-learn estimators over ferrox's GBDT, with the parameter names of LightGBM's sklearn API.

``GBDTClassifier``, ``GBDTRegressor`` and ``GBDTRanker`` take the arguments of ``LGBMClassifier``,
``LGBMRegressor`` and ``LGBMRanker`` (extra keyword arguments go to :func:`ferrox.train` as parameters),
so swapping is a rename. pandas, polars and Arrow tables keep their categorical columns; numpy input is
checked as scikit-learn checks it.

>>> import numpy as np
>>> from ferrox import GBDTClassifier
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(500, 4)); y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
>>> clf = GBDTClassifier(n_estimators=30, num_leaves=7).fit(X, y)
>>> clf.classes_.tolist(), clf.predict(X[:3]).tolist() == y[:3].tolist()
(['no', 'yes'], True)
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._base import FerroxEstimator, check_is_fitted, feature_names_of
from .dataset import Dataset
from . import _ferrox
from .exceptions import DataError, ParameterError
from . import gbdt as _gbdt

__all__ = ["GBDTClassifier", "GBDTRegressor", "GBDTRanker"]

_TABLE_MODULES = ("pandas", "polars", "pyarrow")


def _is_table(X: Any) -> bool:
    return type(X).__module__.split(".", 1)[0] in _TABLE_MODULES and hasattr(X, "columns" if type(X).__module__.startswith(("pandas", "polars")) else "column_names")


class _GBDTBase(FerroxEstimator):
    """Parameters, fitting and prediction shared by the three estimators."""

    _objective = "regression"

    def __init__(
        self,
        boosting_type: str = "gbdt",
        num_leaves: int = 31,
        max_depth: int = -1,
        learning_rate: float = 0.1,
        n_estimators: int = 100,
        subsample_for_bin: int = 200000,
        objective: str | Callable[..., Any] | None = None,
        class_weight: dict[Any, float] | str | None = None,
        min_split_gain: float = 0.0,
        min_child_weight: float = 1e-3,
        min_child_samples: int = 20,
        subsample: float = 1.0,
        subsample_freq: int = 0,
        colsample_bytree: float = 1.0,
        reg_alpha: float = 0.0,
        reg_lambda: float = 0.0,
        random_state: int | None = None,
        n_jobs: int | None = None,
        importance_type: str = "split",
        device: str = "cpu",
        **kwargs: Any,
    ) -> None:
        self.boosting_type = boosting_type
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.subsample_for_bin = subsample_for_bin
        self.objective = objective
        self.class_weight = class_weight
        self.min_split_gain = min_split_gain
        self.min_child_weight = min_child_weight
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.subsample_freq = subsample_freq
        self.colsample_bytree = colsample_bytree
        self.reg_alpha = reg_alpha
        self.reg_lambda = reg_lambda
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.importance_type = importance_type
        self.device = device
        self._other_params: dict[str, Any] = dict(kwargs)

    # -- parameters (extra keyword arguments round-trip as LightGBM's do) --------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters, extra keyword arguments included."""
        params = super().get_params(deep=deep)
        params.update(getattr(self, "_other_params", {}))
        return params

    def set_params(self, **params: Any) -> Any:
        """Sets parameters; names that are not constructor arguments become training parameters."""
        known = set(self._param_names())
        extra = {k: v for k, v in params.items() if k.split("__", 1)[0] not in known}
        super().set_params(**{k: v for k, v in params.items() if k not in extra})
        self._other_params = {**getattr(self, "_other_params", {}), **extra}
        return self

    def _tag_overrides(self) -> dict[str, Any]:
        return {"allow_nan": True}

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "booster_")

    def _train_params(self, objective: str | None, extra: dict[str, Any]) -> dict[str, Any]:
        if self.importance_type not in ("split", "gain"):
            raise ParameterError(f"importance_type must be 'split' or 'gain', got {self.importance_type!r}")
        if isinstance(self.n_estimators, bool) or not isinstance(self.n_estimators, numbers.Integral) or self.n_estimators < 1:
            raise ParameterError(f"n_estimators must be a positive integer, got {self.n_estimators!r}")
        params: dict[str, Any] = {
            "boosting": self.boosting_type,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "learning_rate": self.learning_rate,
            "bin_construct_sample_cnt": self.subsample_for_bin,
            "min_gain_to_split": self.min_split_gain,
            "min_sum_hessian_in_leaf": self.min_child_weight,
            "min_data_in_leaf": self.min_child_samples,
            "bagging_fraction": self.subsample,
            "bagging_freq": self.subsample_freq,
            "feature_fraction": self.colsample_bytree,
            "lambda_l1": self.reg_alpha,
            "lambda_l2": self.reg_lambda,
            "num_threads": 0 if self.n_jobs is None else self.n_jobs,
            "device": self.device,
            "verbosity": -1,
        }
        if self.random_state is not None:
            if isinstance(self.random_state, np.random.RandomState):
                params["seed"] = int(self.random_state.randint(0, 2**31 - 1))
            else:
                params["seed"] = int(self.random_state)
        if objective is not None:
            params["objective"] = objective
        params.update(getattr(self, "_other_params", {}))
        params.update(extra)
        return params

    def _features(self, X: Any, reset: bool) -> Any:
        """Tables pass through (categorical columns kept); anything else is checked as scikit-learn does."""
        if _is_table(X):
            self._check_names(X, reset)
            n_cols = len(X.columns) if hasattr(X, "columns") else X.num_columns
            n_rows = X.shape[0] if hasattr(X, "shape") else X.num_rows
            if n_rows < 1:
                raise DataError(f"Found array with 0 sample(s) (shape=({n_rows}, {n_cols})) while a minimum of 1 is required.")
            if reset:
                self.n_features_in_ = n_cols
            elif n_cols != self.n_features_in_:
                raise DataError(f"X has {n_cols} features, but {type(self).__name__} is expecting {self.n_features_in_} features as input.")
            return X
        arr = self._validate(X, reset=reset, allow_nan=True)
        if np.isinf(arr).any():
            raise DataError("Input X contains infinity or a value too large for dtype('float64').")
        return arr

    def _fit(
        self,
        data: Any,
        y: np.ndarray,
        objective: str | None,
        extra_params: dict[str, Any],
        sample_weight: Any,
        init_score: Any,
        group: Any,
        eval_set: Sequence[tuple[Any, Any]] | None,
        eval_names: Sequence[str] | None,
        eval_sample_weight: Sequence[Any] | None,
        eval_group: Sequence[Any] | None,
        eval_y: Callable[[Any], np.ndarray],
        eval_metric: Any,
        callbacks: Sequence[Any] | None,
        categorical_feature: Any,
    ) -> Any:
        n = data.shape[0] if hasattr(data, "shape") else data.num_rows
        if y.shape[0] != n:
            raise DataError(f"Found input variables with inconsistent numbers of samples: [{n}, {y.shape[0]}]")
        weight = self._weights(sample_weight, y, n)
        params = self._train_params(objective, extra_params)
        fobj = self.objective if callable(self.objective) else None
        if fobj is not None:
            params["objective"] = lambda preds, ds: fobj(ds.get_label(), preds)
        if eval_metric is not None and not callable(eval_metric):
            params["metric"] = [eval_metric] if isinstance(eval_metric, str) else list(eval_metric)
        cats = None if categorical_feature in (None, "auto") else categorical_feature
        names = [str(c) for c in self.feature_names_in_] if hasattr(self, "feature_names_in_") and not _is_table(data) else None
        train_set = Dataset(data, label=y, weight=weight, categorical_features=cats, feature_name=names, init_score=init_score, group=group, params={"num_threads": params["num_threads"]} if params["num_threads"] else None)
        valid_sets, valid_names = [], []
        for i, (vx, vy) in enumerate(eval_set or []):
            vdata = self._features(vx, reset=False)
            vw = None if not eval_sample_weight else eval_sample_weight[i]
            vg = None if not eval_group else eval_group[i]
            valid_sets.append(Dataset(vdata, label=eval_y(vy), weight=vw, group=vg, reference=train_set, feature_name=names))
            valid_names.append(eval_names[i] if eval_names and i < len(eval_names) else f"valid_{i}")
        self.evals_result_: dict[str, dict[str, list[float]]] = {}
        from .callback import record_evaluation

        cbs = list(callbacks or []) + [record_evaluation(self.evals_result_)]
        # Through the module, so that integrations that wrap ferrox.gbdt.train (autolog) see it.
        self.booster_ = _gbdt.train(params, train_set, int(self.n_estimators), valid_sets=valid_sets, valid_names=valid_names, callbacks=cbs)
        self.best_iteration_ = self.booster_.best_iteration
        self.best_score_ = self.booster_.best_score
        self.objective_ = params.get("objective")
        self.n_estimators_ = self.booster_.current_iteration()
        return self

    def _weights(self, sample_weight: Any, y: np.ndarray, n: int) -> np.ndarray | None:
        w = None
        if sample_weight is not None:
            if isinstance(sample_weight, numbers.Number):
                w = np.full(n, float(sample_weight))
            else:
                w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
            if w.shape[0] != n:
                raise DataError(f"sample_weight.shape == {w.shape}, expected ({n},)!")
            if not (w > 0).any():
                raise DataError("Sample weights must contain at least one non-zero number.")
        return w

    @property
    def feature_importances_(self) -> np.ndarray:
        """Split counts or gains per feature (``importance_type``)."""
        check_is_fitted(self, "booster_")
        return self.booster_.feature_importance(self.importance_type)

    @property
    def feature_name_(self) -> list[str]:
        """Feature names as the booster knows them."""
        check_is_fitted(self, "booster_")
        return self.booster_.feature_name()

    # -- persistence: the Booster artifact, with the estimator's parameters and fitted state as JSON --
    def to_bytes(self) -> bytes:
        """The fitted estimator as a verified ferrox artifact (the booster plus its parameters as JSON).

        Parameters that are not plain values (a callable objective) are not kept.
        """
        check_is_fitted(self, "booster_")
        plain = (int, float, str, bool, type(None))
        meta: dict[str, Any] = {
            "estimator": type(self).__name__,
            # The device is where the model was computed, not part of it: bytes are the same from either.
            "params": {k: v for k, v in self.get_params(deep=False).items() if isinstance(v, plain) and k != "device"},
            "n_features_in_": int(self.n_features_in_),
            "best_iteration_": int(self.best_iteration_),
            "best_score_": self.best_score_,
            "n_estimators_": int(self.n_estimators_),
        }
        if hasattr(self, "feature_names_in_"):
            meta["feature_names_in_"] = [str(n) for n in self.feature_names_in_]
        if hasattr(self, "classes_"):
            meta["classes_"] = self.classes_.tolist()
        return bytes(self.booster_._model.with_meta(json.dumps(meta)).to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> Any:
        """An estimator from :meth:`to_bytes` output (ModelIntegrityError when the bytes were changed)."""
        model = _ferrox.BoosterModel.from_bytes(bytes(data))
        try:
            meta = json.loads(model.meta())
        except ValueError:
            meta = {}
        if meta.get("estimator") != cls.__name__:
            raise DataError(f"these bytes hold a {meta.get('estimator') or 'bare Booster'}, not a {cls.__name__}")
        est = cls(**meta["params"])
        est.booster_ = _gbdt.Booster._wrap(model)
        est.n_features_in_ = meta["n_features_in_"]
        est.best_iteration_ = meta["best_iteration_"]
        est.best_score_ = meta["best_score_"]
        est.n_estimators_ = meta["n_estimators_"]
        est.evals_result_ = {}
        if "feature_names_in_" in meta:
            est.feature_names_in_ = np.asarray(meta["feature_names_in_"], dtype=object)
        if "classes_" in meta:
            est.classes_ = np.asarray(meta["classes_"])
            est.n_classes_ = len(est.classes_)
        return est

    def _raw(self, X: Any, raw_score: bool, num_iteration: int | None, pred_contrib: bool) -> np.ndarray:
        check_is_fitted(self, "booster_")
        data = self._features(X, reset=False)
        if pred_contrib:
            return self.booster_.predict_contrib(data, num_iteration=num_iteration)
        return self.booster_.predict(data, raw_score=raw_score, num_iteration=num_iteration, device=self.device)


def _check_y(y: Any, n: int | None = None) -> np.ndarray:
    if y is None:
        raise DataError("requires y to be passed, but the target y is None")
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        import sys
        import warnings

        sk = sys.modules.get("sklearn.exceptions")
        category = getattr(sk, "DataConversionWarning", UserWarning) if sk is not None else UserWarning
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. Please change the shape of y to "
            "(n_samples, ), for example using ravel().",
            category,
            stacklevel=3,
        )
        arr = arr.ravel()
    if arr.ndim != 1:
        raise DataError(f"y should be a 1d array, got an array of shape {arr.shape} instead.")
    if n is not None and arr.shape[0] != n:
        raise DataError(f"Found input variables with inconsistent numbers of samples: [{n}, {arr.shape[0]}]")
    return arr


class GBDTRegressor(_GBDTBase):
    """Gradient-boosted regression trees, as ``lightgbm.LGBMRegressor``.

    >>> import numpy as np
    >>> from ferrox import GBDTRegressor
    >>> X = np.random.default_rng(1).normal(size=(800, 3)); y = 3 * X[:, 0] + X[:, 1] ** 2
    >>> m = GBDTRegressor(n_estimators=60).fit(X, y)
    >>> bool(m.score(X, y) > 0.9), m.n_features_in_
    (True, 3)
    """

    _estimator_type = "regressor"

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        init_score: Any = None,
        eval_set: Sequence[tuple[Any, Any]] | None = None,
        eval_names: Sequence[str] | None = None,
        eval_sample_weight: Sequence[Any] | None = None,
        eval_init_score: Any = None,
        eval_metric: Any = None,
        callbacks: Sequence[Any] | None = None,
        categorical_feature: Any = "auto",
    ) -> GBDTRegressor:
        """Fits the model; ``eval_set`` pairs are tracked (and used by early-stopping callbacks)."""
        data = self._features(X, reset=True)
        yv = _check_y(y)
        if yv.dtype.kind not in "biuf":
            try:
                yv = yv.astype(np.float64)
            except (TypeError, ValueError) as e:
                raise DataError(f"y must be numeric for GBDTRegressor: {e}") from e
        yv = yv.astype(np.float64)
        if not np.isfinite(yv).all():
            raise DataError("Input y contains NaN or infinity.")
        objective = self.objective if isinstance(self.objective, str) else ("regression" if self.objective is None else None)

        def eval_y(v: Any) -> np.ndarray:
            return _check_y(v).astype(np.float64)

        return self._fit(data, yv, objective, {}, sample_weight, init_score, None, eval_set, eval_names,
                         eval_sample_weight, None, eval_y, eval_metric, callbacks, categorical_feature)

    def predict(self, X: Any, raw_score: bool = False, num_iteration: int | None = None, pred_contrib: bool = False) -> np.ndarray:
        """Predicted values (or SHAP values with ``pred_contrib``)."""
        return self._raw(X, raw_score, num_iteration, pred_contrib)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R^2 of the predictions."""
        yt = np.asarray(y, dtype=np.float64)
        yp = self.predict(X)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        num = np.average((yt - yp) ** 2, weights=w)
        den = np.average((yt - np.average(yt, weights=w)) ** 2, weights=w)
        return float(1 - num / den) if den > 0 else (1.0 if num == 0 else 0.0)


class GBDTClassifier(_GBDTBase):
    """Gradient-boosted classification trees, as ``lightgbm.LGBMClassifier`` (binary and multiclass).

    >>> import numpy as np
    >>> from ferrox import GBDTClassifier
    >>> X = np.random.default_rng(2).normal(size=(900, 3)); y = np.digitize(X[:, 0], [-0.5, 0.5])
    >>> m = GBDTClassifier(n_estimators=40).fit(X, y)
    >>> m.predict_proba(X).shape, m.n_classes_
    ((900, 3), 3)
    """

    _estimator_type = "classifier"

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        init_score: Any = None,
        eval_set: Sequence[tuple[Any, Any]] | None = None,
        eval_names: Sequence[str] | None = None,
        eval_sample_weight: Sequence[Any] | None = None,
        eval_class_weight: Any = None,
        eval_init_score: Any = None,
        eval_metric: Any = None,
        callbacks: Sequence[Any] | None = None,
        categorical_feature: Any = "auto",
    ) -> GBDTClassifier:
        """Fits the model on labels of any type (``classes_`` keeps them, sorted)."""
        data = self._features(X, reset=True)
        yv = _check_y(y)
        if yv.dtype.kind == "f" and not np.isfinite(yv).all():
            raise DataError("Input y contains NaN or infinity.")
        if yv.dtype.kind == "f" and not np.all(yv == np.round(yv)):
            raise DataError("Unknown label type: continuous. Maybe you are trying to fit a classifier, which expects discrete classes on a regression target with continuous values.")
        if yv.dtype.kind == "O":
            kinds = {type(v) for v in yv.tolist()}
            if len(kinds) > 1:
                raise DataError(f"Unknown label type: mixed types in y ({sorted(k.__name__ for k in kinds)})")
        self.classes_, codes = np.unique(yv, return_inverse=True)
        self.n_classes_ = len(self.classes_)
        if self.n_classes_ < 2:
            raise DataError(f"GBDTClassifier needs samples of at least 2 classes in the data, but the data contains only one class: {self.classes_[0]!r}")
        codes = codes.astype(np.float64)
        if self.objective is None or isinstance(self.objective, str):
            objective = self.objective or ("binary" if self.n_classes_ == 2 else "multiclass")
        else:
            objective = None
        extra = {"num_class": self.n_classes_} if self.n_classes_ > 2 else {}
        index = {c: i for i, c in enumerate(self.classes_.tolist())}

        def eval_y(v: Any) -> np.ndarray:
            vals = _check_y(v).tolist()
            try:
                return np.asarray([index[c] for c in vals], dtype=np.float64)
            except KeyError as e:
                raise DataError(f"eval_set holds label {e.args[0]!r}, which is not among the training classes") from None

        return self._fit(data, codes, objective, extra, sample_weight, init_score, None, eval_set, eval_names,
                         eval_sample_weight, None, eval_y, eval_metric, callbacks, categorical_feature)

    def _weights(self, sample_weight: Any, y: np.ndarray, n: int) -> np.ndarray | None:
        w = super()._weights(sample_weight, y, n)
        cw = self.class_weight
        if cw is None:
            return w
        codes = y.astype(int)
        if cw == "balanced":
            counts = np.bincount(codes, minlength=self.n_classes_).astype(np.float64)
            per_class = n / (self.n_classes_ * np.where(counts > 0, counts, 1))
        elif isinstance(cw, dict):
            per_class = np.asarray([float(cw.get(c, 1.0)) for c in self.classes_.tolist()])
        else:
            raise ParameterError(f"class_weight must be None, 'balanced' or a dict, got {cw!r}")
        cls_w = per_class[codes]
        return cls_w if w is None else w * cls_w

    def predict_proba(self, X: Any, raw_score: bool = False, num_iteration: int | None = None, pred_contrib: bool = False) -> np.ndarray:
        """Class probabilities, (rows, classes)."""
        p = self._raw(X, raw_score, num_iteration, pred_contrib)
        if raw_score or pred_contrib:
            return p
        return np.column_stack([1 - p, p]) if p.ndim == 1 else p

    def predict(self, X: Any, raw_score: bool = False, num_iteration: int | None = None, pred_contrib: bool = False) -> np.ndarray:
        """The most probable class of each row."""
        if raw_score or pred_contrib:
            return self._raw(X, raw_score, num_iteration, pred_contrib)
        proba = self.predict_proba(X, num_iteration=num_iteration)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy."""
        right = (self.predict(X) == np.asarray(y)).astype(np.float64)
        return float(np.average(right, weights=None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)))


class GBDTRanker(_GBDTBase):
    """Learning to rank with LambdaRank, as ``lightgbm.LGBMRanker``; ``group`` gives query sizes.

    Unlike LightGBM, ``fit(X, y)`` without ``group`` is allowed: all rows then form one query, so the
    ranker works wherever scikit-learn calls ``fit(X, y)`` (its estimator checks, plain pipelines).

    >>> import numpy as np
    >>> from ferrox import GBDTRanker
    >>> rng = np.random.default_rng(3)
    >>> X = rng.normal(size=(600, 3)); rel = np.clip(np.round(X[:, 0] + 1), 0, 3)
    >>> r = GBDTRanker(n_estimators=20, min_child_samples=5).fit(X, rel, group=[20] * 30)
    >>> r.predict(X[:5]).shape
    (5,)
    """

    _estimator_type = "ranker"

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        init_score: Any = None,
        group: Any = None,
        eval_set: Sequence[tuple[Any, Any]] | None = None,
        eval_names: Sequence[str] | None = None,
        eval_sample_weight: Sequence[Any] | None = None,
        eval_init_score: Any = None,
        eval_group: Sequence[Any] | None = None,
        eval_metric: Any = None,
        eval_at: Sequence[int] | int = (1, 2, 3, 4, 5),
        callbacks: Sequence[Any] | None = None,
        categorical_feature: Any = "auto",
    ) -> GBDTRanker:
        """Fits LambdaRank; ``group`` (and ``eval_group``) give query sizes in row order (None: one query)."""
        if eval_set is not None and eval_group is None:
            raise ParameterError("eval_group is required when eval_set is given")
        data = self._features(X, reset=True)
        yv = _check_y(y).astype(np.float64)
        if group is None:
            group = [len(yv)]
        objective = self.objective if isinstance(self.objective, str) else "lambdarank"
        at = [eval_at] if isinstance(eval_at, int) else list(eval_at)

        def eval_y(v: Any) -> np.ndarray:
            return _check_y(v).astype(np.float64)

        return self._fit(data, yv, objective, {"eval_at": at}, sample_weight, init_score, group, eval_set, eval_names,
                         eval_sample_weight, eval_group, eval_y, eval_metric, callbacks, categorical_feature)

    def predict(self, X: Any, raw_score: bool = False, num_iteration: int | None = None, pred_contrib: bool = False) -> np.ndarray:
        """Ranking scores (higher ranks first)."""
        return self._raw(X, raw_score, num_iteration, pred_contrib)
