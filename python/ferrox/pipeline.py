"""One deployable artifact: fitted ferrox preprocessing, a final ferrox model, the input schema and an
optional reference profile, predicting end to end in Rust.

``Pipeline`` fits like scikit-learn's (each transform's ``fit_transform``, then the model's ``fit``), then
compiles the fitted chain into one Rust object (``ferrox._ferrox.Deployable``). ``predict``,
``predict_proba``, ``decision_function`` and ``predict_contrib`` call the very Rust functions the model
server calls (``Deployable::predict_arrow`` / ``predict_dense``): Python only converts the input (numpy,
pandas, polars, pyarrow) and wraps the output, so training/serving skew is impossible by construction.
``save`` / ``to_bytes`` write the whole chain as one SHA-256-verified artifact that ``Pipeline.load`` and
``ferrox serve`` read back without the original Python objects.

Steps: StandardScaler, MinMaxScaler, RobustScaler, QuantileTransformer, SimpleImputer, OrdinalEncoder,
OneHotEncoder, TargetEncoder, KBinsDiscretizer, ColumnTransformer (with "passthrough" / "drop" parts and
remainder) and scikit-learn Pipelines of these. Final models: GBDTClassifier, GBDTRegressor, a trained
ferrox Booster (used as it is: ``fit`` fits only the transforms), Ridge, Lasso, ElasticNet,
LogisticRegression, SGDClassifier, SGDRegressor.

>>> import numpy as np
>>> from ferrox.pipeline import Pipeline
>>> from ferrox.preprocessing import SimpleImputer, StandardScaler
>>> from ferrox.linear_model import Ridge
>>> X = np.array([[0.0, 1.0], [1.0, np.nan], [2.0, 3.0], [3.0, 2.0]])
>>> pipe = Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler()), ("ridge", Ridge(alpha=0.1))])
>>> again = Pipeline.from_bytes(pipe.fit(X, [1.0, 2.0, 3.0, 4.0]).to_bytes())
>>> bool(np.array_equal(again.predict(X), pipe.predict(X)))
True
>>> [c["nullable"] for c in again.schema_]
[True, True]
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


def _table(est: Any) -> Any:
    return est._table


def _step(est: Any) -> tuple[str, dict[str, Any]]:
    """The compiled form of a fitted ferrox transform: (kind, parameters)."""
    from . import preprocessing as P

    if isinstance(est, P.ColumnTransformer):
        if est.transformer_weights is not None:
            raise ParameterError("ColumnTransformer: transformer_weights cannot be compiled into a ferrox pipeline")
        parts = []
        for _, trans, idx in est.transformers_:
            if isinstance(trans, str) and trans == "drop":
                continue
            cols = [int(i) for i in idx]
            if isinstance(trans, str) and trans == "passthrough":
                parts.append((cols, "passthrough", {}))
            else:
                kind, params = _step(trans)
                parts.append((cols, kind, params))
        return "columns", {"parts": parts, "n_inputs": int(est.n_features_in_)}
    if type(est).__module__.startswith("sklearn.") and hasattr(est, "steps"):
        inner = [_step(e) for _, e in est.steps if not (e is None or (isinstance(e, str) and e == "passthrough"))]
        return "chain", {"steps": inner}
    if isinstance(est, P.OrdinalEncoder):
        unknown = float(est.unknown_value) if est.handle_unknown == "use_encoded_value" else None
        return "ordinal", {"table": _table(est), "unknown_value": unknown,
                           "missing_value": float(est.encoded_missing_value)}
    if isinstance(est, P.OneHotEncoder):
        return "onehot", {"table": _table(est), "error": est.handle_unknown == "error", **est._options()}
    if isinstance(est, P.TargetEncoder):
        return "target", {"table": _table(est), "encodings": [list(map(float, e)) for e in est.encodings_],
                          "means": [float(v) for v in est._means]}
    if isinstance(est, P.KBinsDiscretizer):
        return "kbins", {"inner_edges": [[float(v) for v in e[1:-1]] for e in est.bin_edges_],
                         "n_bins": [int(k) for k in est.n_bins_], "onehot": est.encode != "ordinal"}
    m = getattr(est, "n_features_in_", 0)
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
    raise ParameterError(f"{type(est).__name__} cannot be compiled into a ferrox pipeline (supported: ferrox "
                         "scalers, QuantileTransformer, SimpleImputer, encoders, KBinsDiscretizer, ColumnTransformer)")


def _labels(classes: np.ndarray) -> list[Any]:
    """Class labels as plain Python values of one kind (ints, floats or strings)."""
    if classes.dtype.kind in "biu":
        return np.asarray(classes, dtype=np.int64).tolist()
    if classes.dtype.kind == "f":
        return np.asarray(classes, dtype=np.float64).tolist()
    values = classes.tolist()
    if all(isinstance(v, str) for v in values):
        return values
    if all(isinstance(v, (int, np.integer)) for v in values):
        return [int(v) for v in values]
    if all(isinstance(v, (int, float, np.number)) for v in values):
        return [float(v) for v in values]
    raise ParameterError("class labels must be all integers, all floats or all strings to be compiled")


def _final(final: Any) -> tuple[str, Any, list[Any] | None, bool, dict[str, Any]]:
    """(kind, Rust model, labels, has predict_proba, metadata) of a fitted final model."""
    from . import linear_model as L
    from .gbdt import Booster

    meta: dict[str, Any] = {"estimator": type(final).__name__}
    classes = getattr(final, "classes_", None)
    if classes is not None:
        meta["classes"] = np.asarray(classes).tolist()
        meta["classes_dtype"] = classes.dtype.str if classes.dtype.kind != "O" else "O"
    if isinstance(final, Booster):
        return "gbdt", final._model, None, False, meta
    if hasattr(final, "booster_"):
        labels = _labels(np.asarray(classes)) if classes is not None else None
        return "gbdt", final.booster_._model, labels, classes is not None, meta
    if hasattr(final, "_model") and isinstance(final, L._Linear):
        meta["y_ndim"] = int(getattr(final, "_y_ndim", 1))
        labels = _labels(np.asarray(classes)) if classes is not None else None
        return "linear", final._model, labels, isinstance(final, L.LogisticRegression), meta
    raise ParameterError(f"the final step must be a fitted ferrox model (GBDT estimator, Booster or linear model), "
                         f"got {type(final).__name__}")


def _object_frame(X: np.ndarray, names: list[str]) -> Any:
    import pandas as pd

    from ._frames import _pandas_to_arrow

    return _pandas_to_arrow(pd.DataFrame(X, columns=names))[0]


def _has_output(pipe: Any, name: str) -> bool:
    compiled = getattr(pipe, "_compiled", None)
    if compiled is not None:
        return any(o[0] == name for o in compiled.outputs())
    steps = getattr(pipe, "steps_", pipe.steps)
    if not steps:
        return False
    final = steps[-1][1]
    from .gbdt import Booster
    from .linear_model import LogisticRegression

    if name == "predict_proba":
        return isinstance(final, LogisticRegression) or (hasattr(final, "predict_proba") and hasattr(final, "booster_"))
    return isinstance(final, Booster) or type(final).__name__ in ("GBDTClassifier", "GBDTRegressor")


class _OnlyIf:
    """A method that exists only when the compiled model has an output (``hasattr`` is False otherwise,
    as scikit-learn's ``available_if`` makes it, without importing scikit-learn here)."""

    def __init__(self, output: str, fn: Any):
        self.output = output
        self.fn = fn
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self.fn
        if not _has_output(obj, self.output):
            raise AttributeError(f"{self.__name__} is not available for this pipeline's final model")
        return types.MethodType(self.fn, obj)


def _only_if(output: str) -> Any:
    return lambda fn: _OnlyIf(output, fn)


class Pipeline(FerroxEstimator):
    """Fitted ferrox transforms and a final ferrox model as one deployable artifact, predicting in Rust.

    ``steps`` is a list of ``(name, estimator)`` as in ``sklearn.pipeline.Pipeline``. With
    ``reference_profile=True``, ``fit`` also stores ``ferrox.drift.ReferenceProfile.fit(X)`` of the
    training frame in the artifact (``reference_profile_``). The input schema (``schema_``) holds each
    column's name, dtype, categories, training range and whether a missing value can be processed.

    >>> import numpy as np, pandas as pd, ferrox as fx
    >>> from ferrox.preprocessing import ColumnTransformer, OneHotEncoder, StandardScaler
    >>> df = pd.DataFrame({"city": ["a", "b", "a", "c"] * 10, "x": np.arange(40.0)})
    >>> prep = ColumnTransformer([("c", OneHotEncoder(sparse_output=False), ["city"]), ("n", StandardScaler(), ["x"])])
    >>> pipe = Pipeline([("prep", prep), ("m", fx.linear_model.Ridge())]).fit(df, np.arange(40.0))
    >>> [(c["name"], c["dtype"], c["categories"]) for c in pipe.schema_]
    [('city', 'string', ['a', 'b', 'c']), ('x', 'float', None)]
    >>> pipe.predict(df.iloc[:2]).round(3).tolist()
    [0.467, 1.443]
    >>> pipe.outputs_
    [('predict', 'FP64', 1), ('raw', 'FP64', 1)]
    """

    def __init__(self, steps: list[tuple[str, Any]], *, n_jobs: int | None = None, reference_profile: bool = False):
        self.steps = steps
        self.n_jobs = n_jobs
        self.reference_profile = reference_profile

    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> Pipeline:
        """Fits a copy of each transform on the previous one's output, then a copy of the model (a trained
        Booster is kept as it is), and compiles the chain; the fitted steps are ``steps_``."""
        from sklearn.base import clone

        if not self.steps:
            raise ParameterError("a Pipeline needs at least a final model")
        fitted = [(name, clone(est) if hasattr(est, "get_params") else est) for name, est in self.steps]
        Xt = X
        for _, est in fitted[:-1]:
            Xt = est.fit_transform(Xt, y)
        if hasattr(fitted[-1][1], "fit"):
            fitted[-1][1].fit(Xt, y, **fit_params)
        self.steps_ = fitted
        self._compile(X)
        return self

    @property
    def named_steps(self) -> dict[str, Any]:
        """The fitted steps by name (the unfitted ones before :meth:`fit`)."""
        return dict(getattr(self, "steps_", self.steps))

    def _compile(self, X: Any) -> None:
        from ._frames import as_table_or_matrix

        steps = self.steps_
        final = steps[-1][1]
        kind, model, labels, proba, final_meta = _final(final)
        compiled = [_step(est) for _, est in steps[:-1]]
        first = steps[0][1]
        if hasattr(first, "n_features_in_"):
            self.n_features_in_ = int(first.n_features_in_)
        else:
            self.n_features_in_ = int(len(model.feature_name()))
        names = getattr(first, "feature_names_in_", None)
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        schema_names = [str(n) for n in names] if names is not None else [f"f{i}" for i in range(self.n_features_in_)]
        if isinstance(X, np.ndarray) and X.dtype.kind in "OUS":
            data: Any = _object_frame(X, schema_names)
        else:
            kind_in, data, _ = as_table_or_matrix(X)
            if kind_in == "numpy":
                data = np.ascontiguousarray(data, dtype=np.float64)
        profile = None
        if self.reference_profile:
            from .drift import ReferenceProfile

            profile = ReferenceProfile.fit(X)._handle
        meta: dict[str, Any] = {"final": final_meta, "names": [n for n, _ in steps], "n_features_in_": self.n_features_in_}
        if names is not None:
            meta["feature_names_in_"] = schema_names
        self._compiled = _ferrox.Deployable.build(
            data, schema_names, compiled, kind, model, labels, proba, profile, json.dumps(meta)
        )
        self._final_meta = final_meta
        if "classes" in final_meta:
            self.classes_ = np.asarray(final.classes_)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "_compiled")

    # -- prediction: the Rust path the server calls --
    def _input(self, X: Any) -> Any:
        from ._frames import as_table_or_matrix

        mod = type(X).__module__.split(".", 1)[0]
        if mod in ("pandas", "polars", "pyarrow"):
            self._check_names(X, reset=False)
            kind, payload, _ = as_table_or_matrix(X)
            return np.ascontiguousarray(payload, dtype=np.float64) if kind == "numpy" else payload
        if hasattr(X, "__arrow_c_stream__") or hasattr(X, "__arrow_c_array__"):
            return X
        arr = np.asarray(X) if not isinstance(X, np.ndarray) else X
        if arr.dtype.kind in "OUS" and arr.ndim == 2:
            names = [c["name"] for c in self._compiled.schema()]
            if arr.shape[1] != len(names):
                raise DataError(f"X has {arr.shape[1]} features, but Pipeline is expecting {len(names)} features as input.")
            return _object_frame(arr, names)
        return self._validate(X, reset=False)

    def _run(self, X: Any, output: str) -> Any:
        check_is_fitted(self, "_compiled")
        data = self._input(X)
        from ._base import n_threads

        return self._compiled.predict(data, output, 0 if self.n_jobs is None else n_threads(self.n_jobs))

    def predict(self, X: Any) -> np.ndarray:
        """The final model's predictions (class labels for classifiers), computed in Rust end to end."""
        out = self._run(X, "predict")
        classes = getattr(self, "classes_", None)
        if isinstance(out, list):
            return np.asarray(out, dtype=classes.dtype if classes is not None else object)
        if classes is not None:
            return out[:, 0].astype(classes.dtype, copy=False)
        y_ndim = int(getattr(self, "_final_meta", {}).get("y_ndim", 1))
        return out[:, 0] if out.shape[1] == 1 and y_ndim == 1 else out

    def decision_function(self, X: Any) -> np.ndarray:
        """The final model's decision function (raw scores for tree models)."""
        d = self._run(X, "raw")
        return d[:, 0] if d.shape[1] == 1 else d

    @_only_if("predict_proba")
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, (rows, classes) (GBDTClassifier and LogisticRegression final models)."""
        return self._run(X, "predict_proba")

    @_only_if("contrib")
    def predict_contrib(self, X: Any) -> np.ndarray:
        """TreeSHAP contributions of the final tree model's inputs (``Booster.predict_contrib``'s layout).

        >>> import numpy as np, ferrox as fx
        >>> X = np.random.default_rng(0).normal(size=(200, 2)); y = X[:, 0] - X[:, 1]
        >>> pipe = Pipeline([("s", fx.preprocessing.StandardScaler()), ("m", fx.GBDTRegressor(n_estimators=5))]).fit(X, y)
        >>> phi = pipe.predict_contrib(X)
        >>> phi.shape, bool(np.allclose(phi.sum(axis=1), pipe.decision_function(X)))
        ((200, 3), True)
        """
        return self._run(X, "contrib")

    # -- what the artifact carries --
    @property
    def schema_(self) -> list[dict[str, Any]]:
        """The input schema: per column, name, dtype ("float", "integer", "bool", "string"), categories,
        min, max and nullable (whether a missing value can be processed)."""
        check_is_fitted(self, "_compiled")
        return list(self._compiled.schema())

    @property
    def outputs_(self) -> list[tuple[str, str, int]]:
        """What the model produces: (name, Open Inference Protocol datatype, width), "predict" first."""
        check_is_fitted(self, "_compiled")
        return list(self._compiled.outputs())

    @property
    def reference_profile_(self) -> Any:
        """The stored :class:`ferrox.drift.ReferenceProfile` of the training frame, or None.

        >>> import numpy as np, ferrox as fx
        >>> X = np.random.default_rng(0).normal(size=(100, 2))
        >>> pipe = Pipeline([("m", fx.linear_model.Ridge())], reference_profile=True).fit(X, X[:, 0])
        >>> type(pipe.reference_profile_).__name__
        'ReferenceProfile'
        """
        check_is_fitted(self, "_compiled")
        from .drift import ReferenceProfile

        handle = self._compiled.reference_profile()
        return None if handle is None else ReferenceProfile(handle)

    def fit_monitoring(self, X: Any, y: Any, *, threshold: float = 0.5, loss_estimators: int = 100) -> Pipeline:
        """Stores in the artifact what the server's monitoring compares live traffic with, from reference
        data ``X, y`` held out from training: the model's scores and metrics there (prediction drift,
        reference performance), the calibration of a binary classifier's scores (confidence-based
        estimation of ROC AUC and accuracy, :class:`ferrox.performance.CBPE`) or, for a regressor, two loss
        models of ``loss_estimators`` trees trained on the same inputs (direct loss estimation of MAE and
        RMSE, :class:`ferrox.performance.DLE`). Returns self; ``monitoring_reference_`` describes it.

        >>> import numpy as np, ferrox as fx
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(2000, 3)); y = (X[:, 0] + rng.normal(size=2000) > 0) * 1
        >>> pipe = Pipeline([("m", fx.GBDTClassifier(n_estimators=20))]).fit(X[:1000], y[:1000])
        >>> ref = pipe.fit_monitoring(X[1000:], y[1000:]).monitoring_reference_
        >>> ref["task"], sorted(ref["metrics"])
        ('binary', ['accuracy', 'logloss', 'roc_auc'])
        """
        check_is_fitted(self, "_compiled")
        outputs = [o[0] for o in self._compiled.outputs()]
        classes = getattr(self, "classes_", None)
        if classes is not None:
            if len(classes) != 2 or "predict_proba" not in outputs:
                raise ParameterError("performance monitoring covers binary classifiers with probabilities and regressors; "
                                     f"this model has {len(classes)} classes")
            task = "binary"
            scores = np.asarray(self._run(X, "predict_proba"), dtype=np.float64)[:, 1]
            yv = np.asarray(y)
            unknown = ~np.isin(yv, classes)
            if unknown.any():
                raise DataError(f"y holds {yv[unknown][0]!r}, which is not a class of this model ({list(classes)})")
            outcomes = (yv == classes[1]).astype(np.float64)
            losses: list[tuple[str, Any]] = []
        else:
            task = "regression"
            scores = np.asarray(self._run(X, "predict"), dtype=np.float64).reshape(len(np.asarray(y)), -1)[:, 0]
            outcomes = np.ascontiguousarray(y, dtype=np.float64)
            if not getattr(self, "steps_", None):
                raise ParameterError("direct loss estimation trains loss models on the pipeline's steps; "
                                     "fit_monitoring needs a fitted Pipeline, not one loaded from an artifact")
            from sklearn.base import clone

            from .sklearn import GBDTRegressor

            err = scores - outcomes
            losses = []
            for metric, target in (("mae", np.abs(err)), ("mse", err * err)):
                steps = [(n, clone(e)) for n, e in self.steps[:-1]]
                lm = GBDTRegressor(n_estimators=int(loss_estimators), num_leaves=15, learning_rate=0.1, verbose=-1)
                losses.append((metric, Pipeline(steps + [("loss", lm)], n_jobs=self.n_jobs).fit(X, target)._compiled))
        if len(scores) != len(outcomes):
            raise DataError(f"X has {len(scores)} rows but y {len(outcomes)}")
        profile = _ferrox.ReferenceProfile.fit_numpy(np.ascontiguousarray(scores.reshape(-1, 1)), ["prediction"],
                                                     1_000_000, 4096, 0)
        self._compiled = self._compiled.with_monitoring(task, np.ascontiguousarray(scores), outcomes, profile,
                                                        losses, float(threshold))
        return self

    @property
    def monitoring_reference_(self) -> dict[str, Any] | None:
        """What :meth:`fit_monitoring` stored (task, threshold, reference metrics, rows, loss models), or None."""
        check_is_fitted(self, "_compiled")
        ref = self._compiled.monitoring_reference()
        return None if ref is None else dict(ref)

    # -- one artifact for the whole chain --
    def to_bytes(self) -> bytes:
        """The compiled pipeline as verified artifact bytes."""
        check_is_fitted(self, "_compiled")
        return bytes(self._compiled.to_bytes())

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the compiled pipeline to ``path`` (atomically; SHA-256 verified on load)."""
        check_is_fitted(self, "_compiled")
        self._compiled.save(os.fspath(path))

    @classmethod
    def _from_compiled(cls, compiled: Any) -> Pipeline:
        try:
            meta = json.loads(compiled.meta) if compiled.meta else {}
        except ValueError:
            meta = {}
        pipe = cls([])
        pipe.steps_ = []
        pipe._compiled = compiled
        final_meta = meta.get("final", {})
        pipe._final_meta = final_meta
        if "classes" in final_meta:
            dt = final_meta.get("classes_dtype", "O")
            pipe.classes_ = np.asarray(final_meta["classes"], dtype=object if dt == "O" else np.dtype(dt))
        pipe.n_features_in_ = int(meta.get("n_features_in_", len(compiled.schema())))
        if "feature_names_in_" in meta:
            pipe.feature_names_in_ = np.asarray(meta["feature_names_in_"], dtype=object)
        return pipe

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Pipeline:
        """Reads a pipeline written by :meth:`save` (or a saved Booster / linear model); it predicts without
        the original objects."""
        return cls._from_compiled(_ferrox.Deployable.load(os.fspath(path)))

    @classmethod
    def from_bytes(cls, data: bytes) -> Pipeline:
        """A pipeline from :meth:`to_bytes` output (or a Booster's / linear model's bytes)."""
        return cls._from_compiled(_ferrox.Deployable.from_bytes(bytes(data)))

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k != "_compiled"}
        if hasattr(self, "_compiled"):
            state["_artifact"] = self.to_bytes()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        blob = state.pop("_artifact", None)
        self.__dict__.update(state)
        if blob is not None:
            self._compiled = _ferrox.Deployable.from_bytes(blob)
