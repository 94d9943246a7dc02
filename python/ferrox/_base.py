"""scikit-learn compatible behaviour shared by ferrox's estimators, without importing scikit-learn.

Parameters come from the ``__init__`` signature (``get_params`` / ``set_params`` / ``clone`` work as in
scikit-learn); input checks give scikit-learn's messages (feature-name and feature-count mismatches,
1-D input, empty input, infinities); ``__sklearn_tags__`` is built only when scikit-learn asks for it;
``set_output(transform="pandas"|"polars")`` wraps transform outputs. scikit-learn, pandas and polars
are imported only inside the functions that need them.

>>> import numpy as np
>>> from ferrox.preprocessing import StandardScaler
>>> s = StandardScaler(with_mean=False)
>>> s.get_params()
{'copy': True, 'n_jobs': None, 'with_mean': False, 'with_std': True}
>>> s.set_params(with_std=False).with_std
False
"""

from __future__ import annotations

import inspect
import sys
import warnings
from typing import Any

import numpy as np

from .exceptions import DataError, NotFittedError, ParameterError

__all__ = [
    "FerroxEstimator",
    "TransformerMixin",
    "check_is_fitted",
    "feature_names_of",
    "n_threads",
    "not_fitted_error",
]


def n_threads(n_jobs: int | None) -> int:
    """scikit-learn's ``n_jobs`` as a ferrox thread count (None -> 1 as in scikit-learn, -1 -> all cores).

    >>> n_threads(None), n_threads(2)
    (1, 2)
    """
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)):
        raise ParameterError(f"n_jobs must be an integer or None, got {n_jobs!r}")
    if n_jobs < 0:
        from . import _ferrox

        return max(1, _ferrox.default_num_threads() + 1 + int(n_jobs))
    if n_jobs == 0:
        raise ParameterError("n_jobs == 0 has no meaning; use None, a positive count or -1 for all cores")
    return int(n_jobs)


def feature_names_of(X: Any) -> np.ndarray | None:
    """Column names of a pandas/polars/pyarrow table as an object array, or None (as scikit-learn).

    >>> feature_names_of(np.zeros((2, 2))) is None
    True
    """
    cols = None
    mod = type(X).__module__.split(".", 1)[0]
    if mod == "pandas" and hasattr(X, "columns"):
        cols = list(X.columns)
    elif mod == "polars" and hasattr(X, "columns"):
        cols = list(X.columns)
    elif mod == "pyarrow" and hasattr(X, "column_names"):
        cols = list(X.column_names)
    if cols is None or len(cols) == 0:
        return None
    kinds = {type(c) is str for c in cols}
    if kinds == {True}:
        return np.asarray(cols, dtype=object)
    if len(kinds) > 1:
        raise TypeError(
            "Feature names are only supported if all input features have string names, but your input has "
            f"{sorted({type(c).__name__ for c in cols})} as feature name / column name types. If you want "
            "feature names to be stored and validated, you must convert them all to strings, by using "
            "X.columns = X.columns.astype(str) for example. Otherwise you can remove feature / column names "
            "from your input data, or convert them all to a non-string data type."
        )
    return None


_SKLEARN_COMPATIBLE_NOT_FITTED: dict[type, type] = {}


def not_fitted_error(msg: str) -> NotFittedError:
    """A :class:`NotFittedError`; when scikit-learn is loaded it also subclasses scikit-learn's, so
    ``except sklearn.exceptions.NotFittedError`` catches it too (scikit-learn is never imported here).

    >>> isinstance(not_fitted_error("x"), NotFittedError)
    True
    """
    sk = sys.modules.get("sklearn.exceptions")
    base = getattr(sk, "NotFittedError", None) if sk is not None else None
    if base is None or issubclass(NotFittedError, base):
        return NotFittedError(msg)
    cls = _SKLEARN_COMPATIBLE_NOT_FITTED.get(base)
    if cls is None:
        cls = type("NotFittedError", (NotFittedError, base), {"__module__": "ferrox.exceptions"})
        _SKLEARN_COMPATIBLE_NOT_FITTED[base] = cls
    return cls(msg)


def check_is_fitted(est: Any, attr: str) -> None:
    """Raises :class:`NotFittedError` unless ``est`` has the fitted attribute ``attr``.

    >>> from ferrox.preprocessing import MinMaxScaler
    >>> try:
    ...     check_is_fitted(MinMaxScaler(), "scale_")
    ... except NotFittedError as e:
    ...     print(str(e)[:35])
    This MinMaxScaler instance is not f
    """
    if not hasattr(est, attr):
        raise not_fitted_error(
            f"This {type(est).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
            "before using this estimator."
        )


def _to_numpy(X: Any) -> np.ndarray:
    mod = type(X).__module__.split(".", 1)[0]
    if mod == "scipy" or hasattr(X, "tocsr"):
        raise TypeError(
            "Sparse data was passed, but dense data is required; use X.toarray() to convert to a dense array"
        )
    if mod == "polars":
        X = X.to_numpy()
    elif mod == "pyarrow":
        X = np.column_stack([c.to_numpy(zero_copy_only=False) for c in X.columns]) if X.num_columns else np.zeros((X.num_rows, 0))
    elif mod == "pandas":
        X = X.to_numpy(dtype=np.float64, na_value=np.nan) if X.shape[1] else np.zeros((X.shape[0], 0))
    arr = np.asarray(X)
    if np.iscomplexobj(arr):
        raise DataError("Complex data not supported")
    return arr


class FerroxEstimator:
    """Parameters from the ``__init__`` signature, as scikit-learn's ``BaseEstimator`` does."""

    _estimator_type: str = ""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters and their current values."""
        out = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update({f"{name}__{k}": v for k, v in value.get_params().items()})
            out[name] = value
        return out

    def set_params(self, **params: Any) -> Any:
        """Sets constructor parameters (``name__sub`` reaches nested estimators); returns self."""
        valid = self._param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {type(self).__name__}. Valid parameters are: {valid!r}."
                )
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        parts = []
        for name, p in sig.parameters.items():
            if name == "self" or not hasattr(self, name):
                continue
            value = getattr(self, name)
            default = p.default
            try:
                same = bool(value is default or value == default)
            except Exception:
                same = False
            if not same:
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # -- scikit-learn tags (built lazily: only scikit-learn calls this) --
    def _tag_overrides(self) -> dict[str, Any]:
        return {}

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import (
            ClassifierTags,
            InputTags,
            RegressorTags,
            Tags,
            TargetTags,
            TransformerTags,
        )

        kind = self._estimator_type or None
        o = self._tag_overrides()
        tags = Tags(
            estimator_type=kind,
            target_tags=TargetTags(required=kind in ("classifier", "regressor"), single_output=True,
                                   multi_output=o.get("multi_output", False)),
            transformer_tags=TransformerTags(preserves_dtype=["float64"]) if kind is None else None,
            classifier_tags=ClassifierTags(multi_class=o.get("multi_class", True)) if kind == "classifier" else None,
            regressor_tags=RegressorTags() if kind == "regressor" else None,
            input_tags=InputTags(allow_nan=o.get("allow_nan", False), sparse=False,
                                 categorical=o.get("categorical", False)),
            non_deterministic=o.get("non_deterministic", False),
            requires_fit=True,
        )
        if kind is None:
            tags.transformer_tags = TransformerTags(preserves_dtype=["float64"])
        return tags

    # -- input checks, with scikit-learn's messages --
    def _check_names(self, X: Any, reset: bool) -> None:
        names = feature_names_of(X)
        if reset:
            if names is not None:
                self.feature_names_in_ = names
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            return
        fitted = getattr(self, "feature_names_in_", None)
        if fitted is None and names is None:
            return
        if names is not None and fitted is None:
            warnings.warn(
                f"X has feature names, but {type(self).__name__} was fitted without feature names", UserWarning
            )
            return
        if names is None and fitted is not None:
            warnings.warn(
                f"X does not have valid feature names, but {type(self).__name__} was fitted with feature names",
                UserWarning,
            )
            return
        assert fitted is not None and names is not None
        if len(fitted) == len(names) and np.all(fitted == names):
            return
        msg = "The feature names should match those that were passed during fit.\n"
        fitted_set, set_now = set(fitted), set(names)
        unexpected = sorted(set_now - fitted_set)
        missing = sorted(fitted_set - set_now)

        def listing(items: list[str]) -> str:
            out = "".join(f"- {n}\n" for n in items[:5])
            return out + ("- ...\n" if len(items) > 5 else "")

        if unexpected:
            msg += "Feature names unseen at fit time:\n" + listing(unexpected)
        if missing:
            msg += "Feature names seen at fit time, yet now missing:\n" + listing(missing)
        if not missing and not unexpected:
            msg += "Feature names must be in the same order as they were in fit.\n"
        raise ValueError(msg)

    def _validate(self, X: Any, reset: bool, allow_nan: bool = True, min_samples: int = 1) -> np.ndarray:
        """X as a 2-D float32/float64 numpy array, after scikit-learn's checks; sets n_features_in_."""
        self._check_names(X, reset)
        arr = _to_numpy(X)
        if arr.ndim == 0:
            raise DataError(f"Expected 2D array, got scalar array instead:\narray={arr}.")
        if arr.ndim == 1:
            raise DataError(
                f"Expected 2D array, got 1D array instead:\narray={arr}.\nReshape your data either using "
                "array.reshape(-1, 1) if your data has a single feature or array.reshape(1, -1) if it contains a "
                "single sample."
            )
        if arr.ndim != 2:
            raise DataError(f"Found array with dim {arr.ndim}, while dim <= 2 is required.")
        if arr.dtype.kind not in "f" or arr.dtype == np.float16:
            if arr.dtype.kind in "OUS":
                try:
                    arr = arr.astype(np.float64)
                except ValueError as e:
                    raise DataError(
                        f"{type(self).__name__} needs numeric data, but X holds non-numeric values ({e}); "
                        "encode string columns first (OrdinalEncoder / OneHotEncoder)"
                    ) from e
            elif arr.dtype.kind in "biuf":
                arr = arr.astype(np.float64)
            else:
                raise DataError(f"X has dtype {arr.dtype}; this transform needs numeric data (ints, floats or bools)")
        elif arr.dtype == np.longdouble and arr.dtype != np.float64:
            arr = arr.astype(np.float64)
        n, m = arr.shape
        if n < min_samples:
            raise DataError(
                f"Found array with {n} sample(s) (shape={arr.shape}) while a minimum of {min_samples} is required."
            )
        if m < 1:
            raise DataError(f"Found array with 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required.")
        if not allow_nan and np.isnan(arr).any():
            raise DataError(f"Input X contains NaN. {type(self).__name__} does not accept missing values encoded as NaN.")
        if reset:
            self.n_features_in_ = m
        elif m != self.n_features_in_:
            raise DataError(
                f"X has {m} features, but {type(self).__name__} is expecting {self.n_features_in_} features as input."
            )
        return arr


def _global_transform_output() -> str:
    sk = sys.modules.get("sklearn")
    if sk is None:
        return "default"
    try:
        return str(sk.get_config().get("transform_output", "default"))
    except Exception:
        return "default"


class TransformerMixin:
    """``fit_transform``, ``set_output`` and ``get_feature_names_out`` for ferrox transforms."""

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """Fits to X, then transforms X."""
        return self.fit(X, y, **fit_params).transform(X)  # type: ignore[attr-defined]

    def set_output(self, *, transform: str | None = None) -> Any:
        """Output container of ``transform``/``fit_transform``: "default" (numpy), "pandas" or "polars"."""
        if transform is None:
            return self
        if transform not in ("default", "pandas", "polars"):
            raise ParameterError(f"set_output(transform=...) must be 'default', 'pandas' or 'polars', got {transform!r}")
        self._ferrox_output = transform
        return self

    def _input_feature_names(self, input_features: Any = None) -> np.ndarray:
        fitted = getattr(self, "feature_names_in_", None)
        if input_features is None:
            if fitted is not None:
                return np.asarray(fitted, dtype=object)
            return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)  # type: ignore[attr-defined]
        names = np.asarray(input_features, dtype=object)
        if fitted is not None and not np.array_equal(names, fitted):
            raise ValueError("input_features is not equal to feature_names_in_")
        if len(names) != self.n_features_in_:  # type: ignore[attr-defined]
            raise ValueError(
                f"input_features should have length equal to number of features ({self.n_features_in_}), "  # type: ignore[attr-defined]
                f"got {len(names)}"
            )
        return names

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Output feature names: the input names (or ``x0``, ``x1``, ... for numpy input)."""
        check_is_fitted(self, "n_features_in_")
        return self._input_feature_names(input_features)

    def _wrap(self, out: np.ndarray, X: Any) -> Any:
        mode = getattr(self, "_ferrox_output", "default")
        if mode == "default":
            mode = _global_transform_output()
        if mode == "default":
            return out
        names = [str(n) for n in self.get_feature_names_out()]
        if mode == "pandas":
            import pandas as pd

            index = X.index if type(X).__module__.split(".", 1)[0] == "pandas" and hasattr(X, "index") else None
            return pd.DataFrame(out, columns=names, index=index, copy=False)
        import polars as pl

        return pl.DataFrame(out, schema=names, orient="row")
