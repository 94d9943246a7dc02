"""Linear models with scikit-learn's names, parameters, fitted attributes and numbers, trained in Rust.

Swap ``from sklearn.linear_model import Ridge`` for ``from ferrox.linear_model import Ridge``. Dense
algebra goes through faer; reductions over rows run in parallel on ``n_jobs`` threads (None = all
cores) with results that do not depend on the thread count. Every model predicts through one Rust
path, saves to a verified artifact (``save`` / ``load``) and pickles through the same bytes.

>>> import numpy as np
>>> from ferrox.linear_model import Ridge
>>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
>>> m = Ridge(alpha=0.0).fit(X, 2 * X.ravel() + 1)
>>> m.coef_.round(6).tolist(), round(float(m.intercept_), 6)
([2.0], 1.0)
"""

from __future__ import annotations

import json
import numbers
import os
import sys
import warnings
from typing import Any

import numpy as np

from . import _ferrox
from ._base import FerroxEstimator, check_is_fitted
from .exceptions import DataError, ParameterError

__all__ = ["Ridge", "LogisticRegression", "ElasticNet", "Lasso", "SGDClassifier", "SGDRegressor"]


def _threads(n_jobs: int | None) -> int:
    if n_jobs is None:
        return 0
    from ._base import n_threads

    return n_threads(n_jobs)


def _conversion_warning() -> type[Warning]:
    sk = sys.modules.get("sklearn.exceptions")
    return getattr(sk, "DataConversionWarning", UserWarning) if sk is not None else UserWarning


def _check_y_values(y: np.ndarray) -> None:
    if y.dtype.kind in "fc":
        if np.isnan(y).any():
            raise DataError("Input y contains NaN.")
        if np.isinf(y).any():
            raise DataError("Input y contains infinity or a value too large for dtype('float64').")


def _sample_weight(sw: Any, n: int) -> np.ndarray | None:
    if sw is None:
        return None
    if isinstance(sw, numbers.Number):
        return np.full(n, float(sw))
    w = np.asarray(sw, dtype=np.float64)
    if w.ndim != 1 or w.shape[0] != n:
        raise DataError(f"sample_weight.shape == {w.shape}, expected ({n},)!")
    if not np.isfinite(w).all() or (w < 0).any():
        raise DataError("sample_weight must be finite and non-negative")
    return np.ascontiguousarray(w)


class _Linear(FerroxEstimator):
    """Shared: input checks, one prediction path, artifact persistence and pickling."""

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "_model")

    def _check_fitted(self) -> None:
        check_is_fitted(self, "_model")

    def _x(self, X: Any, reset: bool) -> np.ndarray:
        # NaN and infinity are rejected by the Rust core while it reads X (the error names the row and
        # column), so no separate pass over X is made here.
        return self._validate(X, reset=reset, allow_nan=True)

    def _decision(self, X: Any) -> np.ndarray:
        self._check_fitted()
        arr = self._x(X, reset=False)
        return self._model.decision(arr, _threads(getattr(self, "n_jobs", None)))

    # -- persistence: the artifact is the one serialised form --
    def _meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"estimator": type(self).__name__, "n_features_in_": self.n_features_in_}
        if hasattr(self, "feature_names_in_"):
            meta["feature_names_in_"] = [str(n) for n in self.feature_names_in_]
        return meta

    def to_bytes(self) -> bytes:
        """The fitted model as verified artifact bytes."""
        self._check_fitted()
        return bytes(self._model.with_meta(json.dumps(self._meta())).to_bytes())

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the fitted model to ``path`` (atomically, SHA-256 verified on load)."""
        self._check_fitted()
        self._model.with_meta(json.dumps(self._meta())).save(path)

    @classmethod
    def _from_model(cls, model: Any) -> Any:
        meta = json.loads(model.meta)
        if meta.get("estimator") != cls.__name__:
            raise DataError(f"this artifact holds a {meta.get('estimator')}, not a {cls.__name__}")
        est = cls(**meta.get("params", {}))
        est._restore(model, meta)
        return est

    def _restore(self, model: Any, meta: dict[str, Any]) -> None:
        self._model = model
        self.n_features_in_ = int(meta["n_features_in_"])
        if "feature_names_in_" in meta:
            self.feature_names_in_ = np.asarray(meta["feature_names_in_"], dtype=object)
        self._set_from_model()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Any:
        """Reads a model written by :meth:`save` (ModelIntegrityError when the file was changed)."""
        return cls._from_model(_ferrox.LinearModel.load(path))

    @classmethod
    def from_bytes(cls, data: bytes) -> Any:
        """A model from :meth:`to_bytes` output."""
        return cls._from_model(_ferrox.LinearModel.from_bytes(data))

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("_model", "coef_", "intercept_")}
        if hasattr(self, "_model"):
            state["_artifact"] = self.to_bytes()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        blob = state.pop("_artifact", None)
        self.__dict__.update(state)
        if blob is not None:
            model = _ferrox.LinearModel.from_bytes(blob)
            self._restore(model, json.loads(model.meta))


class _Regressor(_Linear):
    _estimator_type = "regressor"

    def _y(self, y: Any, n: int) -> np.ndarray:
        if y is None:
            raise DataError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        yv = np.asarray(y)
        if yv.dtype.kind not in "biuf":
            try:
                yv = yv.astype(np.float64)
            except (TypeError, ValueError) as e:
                raise DataError(f"y must be numeric for {type(self).__name__}: {e}") from e
        yv = yv.astype(np.float64, copy=False)
        _check_y_values(yv)
        if yv.ndim == 0 or yv.ndim > 2 or yv.shape[0] != n:
            raise DataError(f"y must have one value (or row) per row of X ({n}), got shape {yv.shape}")
        self._y_ndim = yv.ndim
        return np.ascontiguousarray(yv.reshape(n, -1))

    def _tag_overrides(self) -> dict[str, Any]:
        return {"multi_output": True}

    def _set_from_model(self) -> None:
        coef = np.asarray(self._model.coef())
        icpt = np.asarray(self._model.intercept())
        if getattr(self, "_y_ndim", 1) == 1 and coef.shape[0] == 1:
            self.coef_ = coef[0]
            self.intercept_ = float(icpt[0]) if self.fit_intercept else 0.0
        else:
            self.coef_ = coef
            self.intercept_ = icpt if self.fit_intercept else np.zeros_like(icpt)

    def _meta(self) -> dict[str, Any]:
        meta = super()._meta()
        meta["y_ndim"] = getattr(self, "_y_ndim", 1)
        meta["params"] = {k: v for k, v in self.get_params(deep=False).items() if isinstance(v, (int, float, str, bool, type(None)))}
        return meta

    def _restore(self, model: Any, meta: dict[str, Any]) -> None:
        self._y_ndim = int(meta.get("y_ndim", 1))
        super()._restore(model, meta)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values: (rows,) for one target, (rows, targets) for several."""
        d = self._decision(X)
        return d[:, 0] if getattr(self, "_y_ndim", 1) == 1 else d

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R^2 of the prediction (averaged uniformly over targets)."""
        yt = np.asarray(y, dtype=np.float64)
        yp = self.predict(X)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        yt2, yp2 = yt.reshape(len(yt), -1), yp.reshape(len(yp), -1)
        num = np.average((yt2 - yp2) ** 2, axis=0, weights=w)
        den = np.average((yt2 - np.average(yt2, axis=0, weights=w)) ** 2, axis=0, weights=w)
        r2 = np.where(den > 0, 1 - num / np.where(den > 0, den, 1), np.where(num == 0, 1.0, 0.0))
        return float(np.mean(r2))


class Ridge(_Regressor):
    """Linear least squares with L2 regularisation (``sklearn.linear_model.Ridge``), Cholesky via faer.

    Minimises ``||y - Xw - b||^2_W + alpha ||w||^2`` (``W`` = sample weights; the intercept is not
    penalised) for one or several targets. A singular system (``alpha=0``, collinear columns) gets the
    minimum-norm least-squares solution with a warning, never NaN. Fitted: ``coef_``, ``intercept_``.

    >>> import numpy as np
    >>> from ferrox.linear_model import Ridge
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> Ridge(alpha=1.0).fit(X, [1.0, 2.0, 3.0]).predict(X).round(3)
    array([1.625, 2.125, 2.25 ])
    """

    def __init__(self, alpha: float = 1.0, *, fit_intercept: bool = True, copy_X: bool = True,
                 max_iter: int | None = None, tol: float = 1e-4, solver: str = "auto", positive: bool = False,
                 random_state: Any = None, n_jobs: int | None = None):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.copy_X = copy_X
        self.max_iter = max_iter
        self.tol = tol
        self.solver = solver
        self.positive = positive
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Ridge:
        """Fits by a Cholesky solve of the (weighted, centred) normal equations."""
        if self.solver not in ("auto", "cholesky"):
            raise ParameterError(f"solver must be 'auto' or 'cholesky' in ferrox, got {self.solver!r}")
        if self.positive:
            raise ParameterError("positive=True is not supported by ferrox's Ridge (use ElasticNet(l1_ratio=0, positive=True))")
        if np.ndim(self.alpha) != 0 or isinstance(self.alpha, bool) or not isinstance(self.alpha, numbers.Real):
            raise ParameterError(f"alpha must be a non-negative float, got {self.alpha!r}")
        if self.alpha < 0:
            raise ParameterError(f"alpha must be >= 0, got {self.alpha}")
        arr = self._x(X, reset=True)
        yv = self._y(y, arr.shape[0])
        sw = _sample_weight(sample_weight, arr.shape[0])
        model, singular = _ferrox.ridge_fit(arr, yv, float(self.alpha), bool(self.fit_intercept), sw, _threads(self.n_jobs))
        if singular:
            warnings.warn("Singular matrix in solving the ridge system: using the minimum-norm least-squares solution.")
        self._model = model
        self._set_from_model()
        self.solver_ = "cholesky"
        self.n_iter_ = np.ones(yv.shape[1], dtype=np.int32)  # one direct solve per target
        return self


class ElasticNet(_Regressor):
    """Linear regression with combined L1 and L2 priors (``sklearn.linear_model.ElasticNet``).

    Minimises ``1/(2n) ||y - Xw - b||^2 + alpha l1_ratio ||w||_1 + alpha (1 - l1_ratio)/2 ||w||^2`` by
    cyclic coordinate descent; stops when the duality gap is below ``tol * ||y - mean(y)||^2`` exactly as
    scikit-learn defines it. ``warm_start`` starts from the previous ``coef_``; ``positive`` constrains
    coefficients to be >= 0. Fitted: ``coef_``, ``intercept_``, ``n_iter_``, ``dual_gap_``.

    >>> import numpy as np
    >>> from ferrox.linear_model import ElasticNet
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    >>> ElasticNet(alpha=0.1).fit(X, [0.0, 1.0, 2.0, 3.0]).coef_.round(3)
    array([0.923, 0.   ])
    """

    def __init__(self, alpha: float = 1.0, *, l1_ratio: float = 0.5, fit_intercept: bool = True,
                 precompute: Any = False, max_iter: int = 1000, copy_X: bool = True, tol: float = 1e-4,
                 warm_start: bool = False, positive: bool = False, random_state: Any = None,
                 selection: str = "cyclic", n_jobs: int | None = None):
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.precompute = precompute
        self.max_iter = max_iter
        self.copy_X = copy_X
        self.tol = tol
        self.warm_start = warm_start
        self.positive = positive
        self.random_state = random_state
        self.selection = selection
        self.n_jobs = n_jobs

    def fit(self, X: Any, y: Any, sample_weight: Any = None, check_input: bool = True) -> ElasticNet:
        """Fits by coordinate descent (warm-started from ``coef_`` when ``warm_start``)."""
        if self.selection != "cyclic":
            raise ParameterError(f"selection must be 'cyclic' in ferrox, got {self.selection!r}")
        for name in ("alpha", "l1_ratio", "tol"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or v < 0:
                raise ParameterError(f"{name} must be a float >= 0, got {v!r}")
        if self.l1_ratio > 1:
            raise ParameterError(f"l1_ratio must be in [0, 1], got {self.l1_ratio}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 1:
            raise ParameterError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        if self.alpha == 0:
            warnings.warn("With alpha=0, this algorithm does not converge well; use LinearRegression/Ridge instead.")
        arr = self._x(X, reset=True)
        yv = self._y(y, arr.shape[0])
        sw = _sample_weight(sample_weight, arr.shape[0])
        init = None
        if self.warm_start and hasattr(self, "_model"):
            prev = np.asarray(self._model.coef(), dtype=np.float64)
            if prev.size == arr.shape[1] * yv.shape[1]:
                init = np.ascontiguousarray(prev.ravel())
        model, n_iter, gaps, converged = _ferrox.enet_fit(
            arr, yv, float(self.alpha), float(self.l1_ratio), bool(self.fit_intercept), float(self.tol),
            int(self.max_iter), bool(self.positive), sw, init, _threads(self.n_jobs),
        )
        self._model = model
        self._set_from_model()
        self.n_iter_ = n_iter[0] if len(n_iter) == 1 else np.asarray(n_iter)
        self.dual_gap_ = gaps[0] if len(gaps) == 1 else np.asarray(gaps)
        if not all(converged):
            warnings.warn(
                "Objective did not converge. You might want to increase the number of iterations; duality gap: "
                f"{max(gaps):.3e}",
                _convergence_warning(),
            )
        return self

    @property
    def sparse_coef_(self) -> Any:
        """coef_ as a scipy CSR matrix."""
        import scipy.sparse as sp

        return sp.csr_matrix(np.atleast_2d(self.coef_))


class Lasso(ElasticNet):
    """Linear regression with an L1 prior (``sklearn.linear_model.Lasso``): ElasticNet with l1_ratio=1.

    >>> import numpy as np
    >>> from ferrox.linear_model import Lasso
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    >>> Lasso(alpha=0.1).fit(X, [0.0, 1.0, 2.0, 3.0]).coef_.round(3)
    array([0.92, 0.  ])
    """

    def __init__(self, alpha: float = 1.0, *, fit_intercept: bool = True, precompute: Any = False,
                 copy_X: bool = True, max_iter: int = 1000, tol: float = 1e-4, warm_start: bool = False,
                 positive: bool = False, random_state: Any = None, selection: str = "cyclic",
                 n_jobs: int | None = None):
        super().__init__(alpha=alpha, l1_ratio=1.0, fit_intercept=fit_intercept, precompute=precompute,
                         max_iter=max_iter, copy_X=copy_X, tol=tol, warm_start=warm_start, positive=positive,
                         random_state=random_state, selection=selection, n_jobs=n_jobs)


class _Classifier(_Linear):
    """Class labels in the artifact's metadata; the decision-based prediction methods."""

    _estimator_type = "classifier"

    def _meta(self) -> dict[str, Any]:
        meta = super()._meta()
        classes = self.classes_
        meta["classes"] = classes.tolist()
        meta["classes_dtype"] = classes.dtype.str if classes.dtype.kind != "O" else "O"
        meta["params"] = {k: v for k, v in self.get_params(deep=False).items()
                          if isinstance(v, (int, float, str, bool, type(None))) and not (isinstance(v, float) and np.isinf(v))}
        return meta

    def _restore(self, model: Any, meta: dict[str, Any]) -> None:
        dt = meta.get("classes_dtype", "O")
        self.classes_ = np.asarray(meta["classes"], dtype=object if dt == "O" else np.dtype(dt))
        super()._restore(model, meta)

    def decision_function(self, X: Any) -> np.ndarray:
        """Signed scores: (rows,) for two classes, (rows, n_classes) otherwise."""
        d = self._decision(X)
        return d[:, 0] if d.shape[1] == 1 else d

    def predict(self, X: Any) -> np.ndarray:
        """The most likely class of each row."""
        d = self._decision(X)
        idx = (d[:, 0] > 0).astype(np.int64) if d.shape[1] == 1 else np.argmax(d, axis=1)
        return self.classes_[idx]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy."""
        return float(np.average(self.predict(X) == np.asarray(y), weights=sample_weight))


def _convergence_warning() -> type[Warning]:
    sk = sys.modules.get("sklearn.exceptions")
    return getattr(sk, "ConvergenceWarning", UserWarning) if sk is not None else UserWarning


class LogisticRegression(_Classifier):
    """Logistic regression (``sklearn.linear_model.LogisticRegression``): binary or multinomial, L2 or none.

    Minimises scikit-learn's objective ``(1/S) sum_i s_i loss_i + ||w||^2 / (2 C S)`` (``S`` = total sample
    weight, class weights folded in; ``C=np.inf`` or ``penalty=None`` for no penalty) with ``solver``
    "lbfgs" or "newton-cholesky"; both stop when max |gradient| <= ``tol``. Fitted: ``classes_``, ``coef_``
    (1 or n_classes rows), ``intercept_``, ``n_iter_``.

    >>> import numpy as np
    >>> from ferrox.linear_model import LogisticRegression
    >>> X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    >>> clf = LogisticRegression().fit(X, ["no", "no", "yes", "yes"])
    >>> clf.predict([[-3.0], [3.0]]).tolist(), clf.predict_proba([[0.0]]).round(2).tolist()
    (['no', 'yes'], [[0.5, 0.5]])
    """

    _estimator_type = "classifier"

    def __init__(self, penalty: Any = "deprecated", *, C: float = 1.0, l1_ratio: float = 0.0, dual: bool = False,
                 tol: float = 1e-4, fit_intercept: bool = True, intercept_scaling: float = 1,
                 class_weight: Any = None, random_state: Any = None, solver: str = "lbfgs", max_iter: int = 100,
                 verbose: int = 0, warm_start: bool = False, n_jobs: int | None = None):
        self.penalty = penalty
        self.C = C
        self.l1_ratio = l1_ratio
        self.dual = dual
        self.tol = tol
        self.fit_intercept = fit_intercept
        self.intercept_scaling = intercept_scaling
        self.class_weight = class_weight
        self.random_state = random_state
        self.solver = solver
        self.max_iter = max_iter
        self.verbose = verbose
        self.warm_start = warm_start
        self.n_jobs = n_jobs

    def _effective_c(self) -> float:
        if self.penalty not in ("deprecated", "l2", None):
            raise ParameterError(f"penalty must be 'l2' or None in ferrox, got {self.penalty!r}")
        if self.l1_ratio not in (0, 0.0, None):
            raise ParameterError(f"only l1_ratio=0 (L2) is supported by ferrox, got {self.l1_ratio!r}")
        if self.dual:
            raise ParameterError("dual=True is not supported (liblinear only)")
        if isinstance(self.C, bool) or not isinstance(self.C, numbers.Real) or not self.C > 0:
            raise ParameterError(f"C must be a float > 0 (np.inf for no penalty), got {self.C!r}")
        return float("inf") if self.penalty is None else float(self.C)

    def _labels(self, y: Any, n: int) -> np.ndarray:
        if y is None:
            raise DataError("LogisticRegression requires y to be passed, but the target y is None")
        yv = np.asarray(y)
        if yv.ndim == 2 and yv.shape[1] == 1:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected. Please change the shape of y to "
                "(n_samples, ), for example using ravel().",
                _conversion_warning(),
            )
            yv = yv.ravel()
        if yv.ndim != 1 or yv.shape[0] != n:
            raise DataError(f"y must be 1-D with one label per row of X ({n}), got shape {yv.shape}")
        _check_y_values(yv)
        if yv.dtype.kind == "f" and np.any(yv != np.round(yv)):
            raise DataError(
                "Unknown label type: continuous. Maybe you are trying to fit a classifier, which expects discrete "
                "classes on a regression target with continuous values."
            )
        if yv.dtype.kind == "O":
            kinds = {type(v) for v in yv}
            if not all(issubclass(k, (str, numbers.Integral)) for k in kinds) or len(kinds) > 1 and str in kinds:
                raise DataError(f"Unknown label type: labels of types {sorted(k.__name__ for k in kinds)}")
        classes, codes = np.unique(yv, return_inverse=True)
        self.classes_ = classes
        return np.ascontiguousarray(codes.astype(np.int64).ravel())

    def _weights(self, codes: np.ndarray, sample_weight: Any) -> np.ndarray | None:
        n = codes.shape[0]
        sw = _sample_weight(sample_weight, n)
        cw = self.class_weight
        if cw is None:
            return sw
        k = len(self.classes_)
        if cw == "balanced":
            counts = np.bincount(codes, weights=sw, minlength=k).astype(np.float64)
            per_class = counts.sum() / (k * counts)
        elif isinstance(cw, dict):
            per_class = np.ones(k)
            for label, w in cw.items():
                hit = np.flatnonzero(self.classes_ == label)
                if hit.size == 0:
                    raise DataError(f"class_weight names the label {label!r}, which is not in y")
                per_class[hit[0]] = float(w)
        else:
            raise ParameterError(f"class_weight must be None, 'balanced' or a dict, got {cw!r}")
        w = per_class[codes]
        return np.ascontiguousarray(w if sw is None else w * sw)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LogisticRegression:
        """Fits by L-BFGS or Newton-Cholesky."""
        c = self._effective_c()
        if self.solver not in ("lbfgs", "newton-cholesky"):
            raise ParameterError(f"solver must be 'lbfgs' or 'newton-cholesky' in ferrox, got {self.solver!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 0:
            raise ParameterError(f"max_iter must be an integer >= 0, got {self.max_iter!r}")
        if isinstance(self.tol, bool) or not isinstance(self.tol, numbers.Real) or self.tol < 0:
            raise ParameterError(f"tol must be a float >= 0, got {self.tol!r}")
        arr = self._x(X, reset=True)
        codes = self._labels(y, arr.shape[0])
        k = len(self.classes_)
        if k < 2:
            raise DataError(
                "This solver needs samples of at least 2 classes in the data, but the data contains only one "
                f"class: {self.classes_[0]!r}"
            )
        sw = self._weights(codes, sample_weight)
        if sw is not None and np.unique(codes[sw > 0]).size < 2:
            raise DataError("This solver needs samples of at least 2 classes with non-zero weight; only one class has weight")
        init = None
        if self.warm_start and hasattr(self, "_model"):
            coef = np.asarray(self._model.coef())
            icpt = np.asarray(self._model.intercept())
            full = np.hstack([coef, icpt[:, None]]) if self.fit_intercept else coef
            if full.shape == ((1 if k == 2 else k), arr.shape[1] + int(self.fit_intercept)):
                init = np.ascontiguousarray(full.ravel())
        model, n_iter, converged, objective = _ferrox.logistic_fit(
            arr, codes, k, c, bool(self.fit_intercept), float(self.tol), int(self.max_iter), self.solver, sw, init,
            _threads(self.n_jobs),
        )
        if not converged and self.max_iter > 0:
            warnings.warn(
                f"{self.solver} failed to converge after {n_iter} iteration(s) (status=1): increase max_iter or "
                "scale the data.",
                _convergence_warning(),
            )
        self._model = model
        self.n_iter_ = np.asarray([n_iter], dtype=np.int32)
        self.objective_ = objective
        self._set_from_model()
        return self

    def _set_from_model(self) -> None:
        self.coef_ = np.asarray(self._model.coef())
        self.intercept_ = np.asarray(self._model.intercept()) if self.fit_intercept else np.zeros(self.coef_.shape[0])


    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, (rows, n_classes)."""
        d = self._decision(X)
        if d.shape[1] == 1:
            p1 = 1.0 / (1.0 + np.exp(-d[:, 0]))
            return np.column_stack([1.0 - p1, p1])
        z = d - d.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))


_CLASSIFIER_LOSSES = ("hinge", "log_loss", "modified_huber", "squared_hinge", "perceptron", "squared_error", "huber",
                      "epsilon_insensitive", "squared_epsilon_insensitive")
_REGRESSOR_LOSSES = ("squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive")


class _SGD(_Linear):
    """Shared SGD machinery: parameters, the Rust call, ``t_`` bookkeeping for ``partial_fit``."""

    def _sgd_check(self, losses: tuple[str, ...]) -> None:
        if self.loss not in losses:
            raise ParameterError(f"loss must be one of {losses}, got {self.loss!r}")
        if self.penalty not in ("l2", "l1", "elasticnet", None):
            raise ParameterError(f"penalty must be 'l2', 'l1', 'elasticnet' or None, got {self.penalty!r}")
        if self.learning_rate not in ("optimal", "constant", "invscaling", "adaptive"):
            raise ParameterError(f"learning_rate must be 'optimal', 'constant', 'invscaling' or 'adaptive', got {self.learning_rate!r}")
        if self.early_stopping or self.average:
            raise ParameterError("early_stopping and average are not supported by ferrox's SGD yet")
        if not 0 <= self.l1_ratio <= 1:
            raise ParameterError(f"l1_ratio must be in [0, 1], got {self.l1_ratio}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 1:
            raise ParameterError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        if self.alpha < 0 or (self.learning_rate == "optimal" and self.alpha == 0):
            raise ParameterError(f"alpha must be >= 0 (> 0 with learning_rate='optimal'), got {self.alpha}")
        if self.learning_rate != "optimal" and not self.eta0 > 0:
            raise ParameterError(f"eta0 must be > 0 with learning_rate={self.learning_rate!r}, got {self.eta0}")

    def _l1_ratio(self) -> float:
        return {"l2": 0.0, "l1": 1.0, "elasticnet": float(self.l1_ratio), None: 0.0}[self.penalty]

    def _run(self, arr: np.ndarray, targets: np.ndarray, wpos: list[float], wneg: list[float], coef: np.ndarray,
             icpt: np.ndarray, sw: np.ndarray | None, max_iter: int, tol: float | None) -> tuple[np.ndarray, np.ndarray, int]:
        seed = int(_rs(self.random_state).randint(2**31 - 1)) if self.shuffle else None
        out, b, iters = _ferrox.sgd_fit(
            arr, np.ascontiguousarray(targets), wpos, wneg, np.ascontiguousarray(coef, dtype=np.float64),
            [float(v) for v in icpt], self.loss, float(self.epsilon), float(self.alpha), self._l1_ratio(),
            self.penalty is not None, bool(self.fit_intercept), int(max_iter), tol, int(self.n_iter_no_change),
            self.learning_rate, float(self.eta0), float(self.power_t), seed, float(self.t_), sw,
            _threads(getattr(self, "n_jobs", None)),
        )
        n_iter = max(iters)
        # Learning-rate steps taken: one per row visit (when shuffling, a weight counts as ceil(weight)
        # visits, so integer weights are equivalent to repeated rows).
        visits = arr.shape[0] if seed is None or sw is None else float(np.ceil(sw).sum())
        self.t_ += n_iter * visits
        return np.asarray(out), np.asarray(b), n_iter

    def _store(self, coef: np.ndarray, icpt: np.ndarray) -> None:
        self._model = _ferrox.LinearModel(np.ascontiguousarray(coef), [float(v) for v in icpt], type(self).__name__)
        self._set_from_model()

    def _tol(self) -> float | None:
        return None if self.tol is None else float(self.tol)


def _rs(seed: Any) -> np.random.RandomState:
    if seed is None:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral):
        return np.random.RandomState(int(seed))
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ParameterError(f"random_state must be None, an int or a RandomState, got {seed!r}")


class SGDRegressor(_SGD, _Regressor):
    """Linear regression by stochastic gradient descent (``sklearn.linear_model.SGDRegressor``), in Rust.

    scikit-learn's update rules (scaled weights, L2 shrinkage, cumulative L1 clipping, "invscaling" /
    "optimal" / "constant" / "adaptive" rates, stopping on the average objective). With ``shuffle=False``
    the coefficients equal scikit-learn's; with shuffling, rows are permuted by ferrox's own seeded
    generator, an integer ``sample_weight`` counts as that many visits of the row per epoch (so weights
    are equivalent to repeated rows) and the result does not depend on the order the rows are stored in.
    ``partial_fit`` runs one epoch on a batch, continuing the learning-rate schedule.

    >>> import numpy as np
    >>> from ferrox.linear_model import SGDRegressor
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> m = SGDRegressor(max_iter=200, tol=None, random_state=0).fit(X, 3 * X.ravel() + 1)
    >>> bool(abs(m.coef_[0] - 3) < 0.1 and abs(m.intercept_[0] - 1) < 0.1)
    True
    """

    def __init__(self, loss: str = "squared_error", *, penalty: Any = "l2", alpha: float = 0.0001,
                 l1_ratio: float = 0.15, fit_intercept: bool = True, max_iter: int = 1000, tol: float | None = 1e-3,
                 shuffle: bool = True, verbose: int = 0, epsilon: float = 0.1, random_state: Any = None,
                 learning_rate: str = "invscaling", eta0: float = 0.01, power_t: float = 0.25,
                 early_stopping: bool = False, validation_fraction: float = 0.1, n_iter_no_change: int = 5,
                 warm_start: bool = False, average: bool = False, n_jobs: int | None = None):
        self.loss = loss
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.shuffle = shuffle
        self.verbose = verbose
        self.epsilon = epsilon
        self.random_state = random_state
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.average = average
        self.n_jobs = n_jobs

    def _tag_overrides(self) -> dict[str, Any]:
        return {"multi_output": False, "non_deterministic": False}

    def _set_from_model(self) -> None:
        self.coef_ = np.asarray(self._model.coef())[0]
        self.intercept_ = np.asarray(self._model.intercept())

    def _fit_epochs(self, X: Any, y: Any, sample_weight: Any, reset: bool, max_iter: int, tol: float | None) -> None:
        self._sgd_check(_REGRESSOR_LOSSES)
        arr = self._x(X, reset=reset)
        if y is None:
            raise DataError("SGDRegressor requires y to be passed, but the target y is None")
        yv = np.asarray(y, dtype=np.float64)
        if yv.ndim == 2 and yv.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected. Please change the shape of y "
                          "to (n_samples, ), for example using ravel().", _conversion_warning())
            yv = yv.ravel()
        if yv.ndim != 1 or yv.shape[0] != arr.shape[0]:
            raise DataError(f"y must be 1-D with one value per row of X ({arr.shape[0]}), got shape {yv.shape}")
        _check_y_values(yv)
        sw = _sample_weight(sample_weight, arr.shape[0])
        if hasattr(self, "_model") and not reset or (reset and self.warm_start and hasattr(self, "_model")):
            coef = np.asarray(self._model.coef())
            icpt = np.asarray(self._model.intercept())
        else:
            coef, icpt = np.zeros((1, arr.shape[1])), np.zeros(1)
        if reset or not hasattr(self, "t_"):
            self.t_ = 1.0
        out, b, n_iter = self._run(arr, yv[None, :], [1.0], [1.0], coef, icpt, sw, max_iter, tol)
        self.n_iter_ = n_iter
        self._store(out, b)

    def fit(self, X: Any, y: Any, coef_init: Any = None, intercept_init: Any = None, sample_weight: Any = None) -> SGDRegressor:
        """Runs up to ``max_iter`` epochs from zeros (or the previous solution with ``warm_start``)."""
        if coef_init is not None or intercept_init is not None:
            raise ParameterError("coef_init/intercept_init are not supported by ferrox; use warm_start")
        self._fit_epochs(X, y, sample_weight, reset=True, max_iter=int(self.max_iter), tol=self._tol())
        if self.tol is not None and self.n_iter_ == self.max_iter:
            warnings.warn("Maximum number of iteration reached before convergence. Consider increasing max_iter "
                          "to improve the fit.", _convergence_warning())
        return self

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> SGDRegressor:
        """One epoch over this batch, continuing from the current model and learning-rate step."""
        first = not hasattr(self, "_model")
        self._fit_epochs(X, y, sample_weight, reset=first, max_iter=1, tol=None)
        return self


class SGDClassifier(_SGD, _Classifier):
    """Linear classifiers by stochastic gradient descent (``sklearn.linear_model.SGDClassifier``), in Rust.

    Binary problems use one coefficient vector; several classes are fitted one-vs-all in parallel
    (``n_jobs``). Losses: hinge, log_loss, modified_huber, squared_hinge, perceptron and the regression
    losses. With ``shuffle=False`` the coefficients equal scikit-learn's; with shuffling, sample weights
    count as repeated rows, as in :class:`SGDRegressor`. ``partial_fit(X, y, classes=...)``
    learns online, one epoch per call.

    >>> import numpy as np
    >>> from ferrox.linear_model import SGDClassifier
    >>> X = np.array([[-2.0], [-1.0], [1.0], [2.0]] * 10)
    >>> SGDClassifier(random_state=0).fit(X, [0, 0, 1, 1] * 10).predict([[-3.0], [3.0]]).tolist()
    [0, 1]
    """

    _estimator_type = "classifier"

    def __init__(self, loss: str = "hinge", *, penalty: Any = "l2", alpha: float = 0.0001, l1_ratio: float = 0.15,
                 fit_intercept: bool = True, max_iter: int = 1000, tol: float | None = 1e-3, shuffle: bool = True,
                 verbose: int = 0, epsilon: float = 0.1, n_jobs: int | None = None, random_state: Any = None,
                 learning_rate: str = "optimal", eta0: float = 0.01, power_t: float = 0.5,
                 early_stopping: bool = False, validation_fraction: float = 0.1, n_iter_no_change: int = 5,
                 class_weight: Any = None, warm_start: bool = False, average: bool = False):
        self.loss = loss
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.shuffle = shuffle
        self.verbose = verbose
        self.epsilon = epsilon
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.average = average

    def _set_from_model(self) -> None:
        self.coef_ = np.asarray(self._model.coef())
        self.intercept_ = np.asarray(self._model.intercept())

    def _targets(self, codes: np.ndarray) -> tuple[np.ndarray, list[float], list[float]]:
        k = len(self.classes_)
        neg = 0.0 if self.loss == "log_loss" else -1.0
        cw = self._class_weights(codes)
        if k == 2:
            t = np.where(codes == 1, 1.0, neg)[None, :]
            return t, [cw[1]], [cw[0]]
        t = np.where(codes[None, :] == np.arange(k)[:, None], 1.0, neg)
        return t, [cw[i] for i in range(k)], [1.0] * k

    def _class_weights(self, codes: np.ndarray) -> np.ndarray:
        k = len(self.classes_)
        cw = self.class_weight
        if cw is None:
            return np.ones(k)
        if cw == "balanced":
            counts = np.bincount(codes, minlength=k).astype(np.float64)
            return len(codes) / (k * counts)
        if isinstance(cw, dict):
            out = np.ones(k)
            for label, w in cw.items():
                hit = np.flatnonzero(self.classes_ == label)
                if hit.size == 0:
                    raise DataError(f"class_weight names the label {label!r}, which is not in y")
                out[hit[0]] = float(w)
            return out
        raise ParameterError(f"class_weight must be None, 'balanced' or a dict, got {cw!r}")

    def _labels(self, y: Any, n: int, classes: Any) -> np.ndarray:
        if y is None:
            raise DataError("SGDClassifier requires y to be passed, but the target y is None")
        yv = np.asarray(y)
        if yv.ndim == 2 and yv.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected. Please change the shape of y "
                          "to (n_samples, ), for example using ravel().", _conversion_warning())
            yv = yv.ravel()
        if yv.ndim != 1 or yv.shape[0] != n:
            raise DataError(f"y must be 1-D with one label per row of X ({n}), got shape {yv.shape}")
        _check_y_values(yv)
        if yv.dtype.kind == "f" and np.any(yv != np.round(yv)):
            raise DataError("Unknown label type: continuous. Maybe you are trying to fit a classifier, which expects "
                            "discrete classes on a regression target with continuous values.")
        if classes is not None:
            self.classes_ = np.unique(np.asarray(classes))
        elif not hasattr(self, "classes_") or not hasattr(self, "_model"):
            self.classes_ = np.unique(yv)
        unseen = ~np.isin(yv, self.classes_)
        if unseen.any():
            raise DataError(f"y holds the label {yv[np.flatnonzero(unseen)[0]]!r}, unseen at fit (classes: {list(self.classes_)})")
        if len(self.classes_) < 2:
            raise DataError(f"The number of classes has to be greater than one; got {len(self.classes_)} class")
        return np.searchsorted(self.classes_, yv)

    def _fit_epochs(self, X: Any, y: Any, sample_weight: Any, reset: bool, max_iter: int, tol: float | None,
                    classes: Any = None) -> None:
        self._sgd_check(_CLASSIFIER_LOSSES)
        arr = self._x(X, reset=reset)
        codes = self._labels(y, arr.shape[0], classes)
        targets, wpos, wneg = self._targets(codes)
        sw = _sample_weight(sample_weight, arr.shape[0])
        k = targets.shape[0]
        keep = hasattr(self, "_model") and (not reset or self.warm_start)
        if keep and np.asarray(self._model.coef()).shape == (k, arr.shape[1]):
            coef, icpt = np.asarray(self._model.coef()), np.asarray(self._model.intercept())
        else:
            coef, icpt = np.zeros((k, arr.shape[1])), np.zeros(k)
        if reset or not hasattr(self, "t_"):
            self.t_ = 1.0
        out, b, n_iter = self._run(arr, targets, wpos, wneg, coef, icpt, sw, max_iter, tol)
        self.n_iter_ = n_iter
        self._store(out, b)

    def fit(self, X: Any, y: Any, coef_init: Any = None, intercept_init: Any = None, sample_weight: Any = None) -> SGDClassifier:
        """Runs up to ``max_iter`` epochs (one-vs-all for several classes)."""
        if coef_init is not None or intercept_init is not None:
            raise ParameterError("coef_init/intercept_init are not supported by ferrox; use warm_start")
        if hasattr(self, "classes_") and not self.warm_start:
            del self.classes_
        self._fit_epochs(X, y, sample_weight, reset=True, max_iter=int(self.max_iter), tol=self._tol())
        if self.tol is not None and self.n_iter_ == self.max_iter:
            warnings.warn("Maximum number of iteration reached before convergence. Consider increasing max_iter "
                          "to improve the fit.", _convergence_warning())
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None) -> SGDClassifier:
        """One epoch over this batch; ``classes`` (all labels) is required on the first call."""
        first = not hasattr(self, "_model")
        if first and classes is None:
            raise DataError("classes must be passed on the first call to partial_fit.")
        self._fit_epochs(X, y, sample_weight, reset=first, max_iter=1, tol=None, classes=classes if first else None)
        return self

    @property
    def predict_proba(self) -> Any:
        """Probabilities (log_loss: logistic; modified_huber: clipped), one-vs-all normalised; only for
        those two losses (the attribute is absent otherwise, as in scikit-learn)."""
        if self.loss not in ("log_loss", "modified_huber"):
            raise AttributeError(f"probability estimates are not available for loss={self.loss!r}")
        return self._predict_proba

    def _predict_proba(self, X: Any) -> np.ndarray:
        d = self._decision(X)
        if self.loss == "log_loss":
            p = 1.0 / (1.0 + np.exp(-d))
        else:
            p = (np.clip(d, -1, 1) + 1) / 2
        if p.shape[1] == 1:
            return np.column_stack([1 - p[:, 0], p[:, 0]])
        s = p.sum(axis=1, keepdims=True)
        return np.where(s > 0, p / np.where(s > 0, s, 1), 1.0 / p.shape[1])
