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

__all__ = ["Ridge", "LogisticRegression", "ElasticNet", "Lasso"]


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
        return self._validate(X, reset=reset, allow_nan=False)

    def _decision(self, X: Any) -> np.ndarray:
        self._check_fitted()
        arr = self._x(X, reset=False)
        return self._model.decision(arr, _threads(getattr(self, "n_jobs", None)))

    def _set_from_model(self) -> None:
        raise NotImplementedError

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


def _convergence_warning() -> type[Warning]:
    sk = sys.modules.get("sklearn.exceptions")
    return getattr(sk, "ConvergenceWarning", UserWarning) if sk is not None else UserWarning


class LogisticRegression(_Linear):
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

    def predict(self, X: Any) -> np.ndarray:
        """The most likely class of each row."""
        d = self._decision(X)
        idx = (d[:, 0] > 0).astype(np.int64) if d.shape[1] == 1 else np.argmax(d, axis=1)
        return self.classes_[idx]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy."""
        return float(np.average(self.predict(X) == np.asarray(y), weights=sample_weight))
