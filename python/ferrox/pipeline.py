"""One serialisable pipeline: fitted ferrox transforms followed by a ferrox linear model, predicting in Rust.

``Pipeline`` fits like scikit-learn's (each transform's ``fit_transform``, then the model's ``fit``), then
compiles the fitted chain into one Rust object: ``predict`` / ``predict_proba`` / ``decision_function``
run every step and the model in Rust with the GIL released, and ``save`` / ``to_bytes`` write the whole
chain as one verified artifact (``Pipeline.load`` reads it back without the original objects). Supported
steps: StandardScaler, MinMaxScaler, RobustScaler, QuantileTransformer, SimpleImputer; final models:
Ridge, ElasticNet, Lasso, LogisticRegression, SGDClassifier, SGDRegressor.

>>> import numpy as np
>>> from ferrox.pipeline import Pipeline
>>> from ferrox.preprocessing import SimpleImputer, StandardScaler
>>> from ferrox.linear_model import Ridge
>>> X = np.array([[0.0, 1.0], [1.0, np.nan], [2.0, 3.0], [3.0, 2.0]])
>>> pipe = Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler()), ("ridge", Ridge(alpha=0.1))])
>>> again = Pipeline.from_bytes(pipe.fit(X, [1.0, 2.0, 3.0, 4.0]).to_bytes())
>>> bool(np.allclose(again.predict(X), pipe.predict(X)))
True
"""

from __future__ import annotations

import json
import os
import types
from typing import Any

import numpy as np

from . import _ferrox
from ._base import FerroxEstimator, check_is_fitted
from .exceptions import DataError, ParameterError

__all__ = ["Pipeline"]


def _step(est: Any) -> tuple[str, dict[str, Any]]:
    """The compiled form of a fitted ferrox transform."""
    from . import preprocessing as P

    m = est.n_features_in_
    zeros, ones = [0.0] * m, [1.0] * m
    if isinstance(est, P.StandardScaler):
        sub = list(est.mean_) if est.with_mean else zeros
        div = list(est.scale_) if est.with_std else ones
        return "affine", {"sub": sub, "div": div, "mul": ones, "add": zeros, "clip": None}
    if isinstance(est, P.MinMaxScaler):
        clip = (float(est.feature_range[0]), float(est.feature_range[1])) if est.clip else None
        return "affine", {"sub": zeros, "div": ones, "mul": list(est.scale_), "add": list(est.min_), "clip": clip}
    if isinstance(est, P.RobustScaler):
        sub = list(est.center_) if est.with_centering else zeros
        div = list(est.scale_) if est.with_scaling else ones
        return "affine", {"sub": sub, "div": div, "mul": ones, "add": zeros, "clip": None}
    if isinstance(est, P.QuantileTransformer):
        return "quantile", {
            "quantiles": np.ascontiguousarray(est.quantiles_, dtype=np.float64),
            "references": list(est.references_),
            "normal": est.output_distribution == "normal",
        }
    if isinstance(est, P.SimpleImputer):
        keep = np.flatnonzero(~np.isnan(est.statistics_))
        ind = est.indicator_features_ if est.add_indicator and est.indicator_features_ is not None else []
        fill = np.where(np.isnan(est.statistics_), 0.0, est.statistics_)
        return "impute", {"fill": list(fill), "keep": [int(k) for k in keep], "indicator": [int(k) for k in ind]}
    raise ParameterError(f"{type(est).__name__} cannot be compiled into a ferrox pipeline (supported: scalers, "
                         "QuantileTransformer, SimpleImputer)")


def _final_is_logistic(pipe: Any) -> bool:
    from .linear_model import LogisticRegression

    steps = getattr(pipe, "steps_", pipe.steps)
    return bool(steps) and isinstance(steps[-1][1], LogisticRegression)


class _OnlyIfLogistic:
    """A method that exists only when the final step is a LogisticRegression (``hasattr`` is False
    otherwise, as scikit-learn's ``available_if`` makes it, without importing scikit-learn here)."""

    def __init__(self, fn: Any):
        self.fn = fn
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self.fn
        if not _final_is_logistic(obj):
            raise AttributeError(f"{self.__name__} needs a LogisticRegression as the final step")
        return types.MethodType(self.fn, obj)


class Pipeline(FerroxEstimator):
    """A chain of ferrox transforms and a final ferrox linear model, predicting end to end in Rust.

    ``steps`` is a list of ``(name, estimator)`` as in ``sklearn.pipeline.Pipeline``.
    """

    def __init__(self, steps: list[tuple[str, Any]], *, n_jobs: int | None = None):
        self.steps = steps
        self.n_jobs = n_jobs

    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> Pipeline:
        """Fits a copy of each transform on the previous one's output, then a copy of the model, and
        compiles the chain; the fitted steps are ``steps_`` (``steps`` stays as given)."""
        from sklearn.base import clone

        if not self.steps:
            raise ParameterError("a Pipeline needs at least a final model")
        fitted = [(name, clone(est)) for name, est in self.steps]
        Xt = X
        for _, est in fitted[:-1]:
            Xt = est.fit_transform(Xt, y)
        fitted[-1][1].fit(Xt, y, **fit_params)
        self.steps_ = fitted
        self._compile()
        return self

    @property
    def named_steps(self) -> dict[str, Any]:
        """The fitted steps by name (the unfitted ones before :meth:`fit`)."""
        return dict(getattr(self, "steps_", self.steps))

    def _compile(self) -> None:
        steps = self.steps_
        final = steps[-1][1]
        if not hasattr(final, "_model"):
            raise ParameterError(f"the final step must be a fitted ferrox linear model, got {type(final).__name__}")
        compiled = [_step(est) for _, est in steps[:-1]]
        first = steps[0][1]
        self.n_features_in_ = int(first.n_features_in_)
        if hasattr(first, "feature_names_in_"):
            self.feature_names_in_ = first.feature_names_in_
        meta: dict[str, Any] = {"final": final._meta(), "names": [n for n, _ in steps],
                                "n_features_in_": self.n_features_in_}
        if hasattr(self, "feature_names_in_"):
            meta["feature_names_in_"] = [str(n) for n in self.feature_names_in_]
        model = final._model.with_meta(json.dumps(meta["final"]))
        self._compiled = _ferrox.FeaturePipeline.build(compiled, model, self.n_features_in_, json.dumps(meta))
        self._final = final

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "_compiled")

    def _decision(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "_compiled")
        arr = self._validate(X, reset=False)
        from ._base import n_threads

        return self._compiled.decision(arr, 0 if self.n_jobs is None else n_threads(self.n_jobs))

    def predict(self, X: Any) -> np.ndarray:
        """Predictions of the final model on the transformed X, computed in Rust end to end."""
        d = self._decision(X)
        final = self._final
        if hasattr(final, "classes_"):
            idx = (d[:, 0] > 0).astype(np.int64) if d.shape[1] == 1 else np.argmax(d, axis=1)
            return final.classes_[idx]
        return d[:, 0] if getattr(final, "_y_ndim", 1) == 1 else d

    def decision_function(self, X: Any) -> np.ndarray:
        """The final model's decision function."""
        d = self._decision(X)
        return d[:, 0] if d.shape[1] == 1 else d

    @_OnlyIfLogistic
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (present when the final model is a LogisticRegression)."""
        d = self._decision(X)
        if d.shape[1] == 1:
            p1 = 1.0 / (1.0 + np.exp(-d[:, 0]))
            return np.column_stack([1.0 - p1, p1])
        e = np.exp(d - d.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    # -- one artifact for the whole chain --
    def to_bytes(self) -> bytes:
        """The compiled pipeline as verified artifact bytes."""
        check_is_fitted(self, "_compiled")
        return bytes(self._compiled.to_bytes())

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the compiled pipeline to ``path`` (atomically; SHA-256 verified on load)."""
        check_is_fitted(self, "_compiled")
        self._compiled.save(path)

    @classmethod
    def _from_compiled(cls, compiled: Any) -> Pipeline:
        from . import linear_model as L

        meta = json.loads(compiled.meta)
        final_meta = meta["final"]
        final_cls = getattr(L, final_meta.get("estimator", ""), None)
        if final_cls is None:
            raise DataError(f"this artifact's final model {final_meta.get('estimator')!r} is unknown to this ferrox")
        final = final_cls._from_model(compiled.model())
        pipe = cls([(meta["names"][-1], final)])
        pipe.steps_ = pipe.steps
        pipe._compiled = compiled
        pipe._final = final
        pipe.n_features_in_ = int(meta["n_features_in_"])
        if "feature_names_in_" in meta:
            pipe.feature_names_in_ = np.asarray(meta["feature_names_in_"], dtype=object)
        return pipe

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Pipeline:
        """Reads a pipeline written by :meth:`save`; it predicts without the original objects."""
        return cls._from_compiled(_ferrox.FeaturePipeline.load(path))

    @classmethod
    def from_bytes(cls, data: bytes) -> Pipeline:
        """A pipeline from :meth:`to_bytes` output."""
        return cls._from_compiled(_ferrox.FeaturePipeline.from_bytes(data))

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k != "_compiled"}
        if hasattr(self, "_compiled"):
            state["_artifact"] = self.to_bytes()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        blob = state.pop("_artifact", None)
        self.__dict__.update(state)
        if blob is not None:
            self._compiled = _ferrox.FeaturePipeline.from_bytes(blob)

