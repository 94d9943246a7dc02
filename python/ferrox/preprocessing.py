"""Feature transforms with scikit-learn's names, parameters, fitted attributes and numbers.

Swap ``from sklearn.preprocessing import StandardScaler`` for ``from ferrox.preprocessing import
StandardScaler``: statistics are computed column-parallel and outputs written row-block-parallel in Rust
(``n_jobs`` threads; None = all cores). NaN passes through the scalers and is ignored by their statistics,
as in scikit-learn; infinities raise :class:`ferrox.DataError`. Constant columns get a scale of 1.

>>> import numpy as np
>>> from ferrox.preprocessing import StandardScaler
>>> StandardScaler().fit_transform(np.array([[0.0, 1.0], [2.0, np.nan], [4.0, 3.0]])).round(3)
array([[-1.225, -1.   ],
       [ 0.   ,    nan],
       [ 1.225,  1.   ]])
"""

from __future__ import annotations

import numbers
import statistics
import warnings
from typing import Any

import numpy as np

from . import _ferrox
from ._base import FerroxEstimator, TransformerMixin, check_is_fitted
from .exceptions import DataError, ParameterError

__all__ = [
    "StandardScaler",
    "MinMaxScaler",
    "RobustScaler",
    "QuantileTransformer",
    "SimpleImputer",
    "OrdinalEncoder",
    "OneHotEncoder",
    "KBinsDiscretizer",
    "TargetEncoder",
    "ColumnTransformer",
]

_EPS = float(np.finfo(np.float64).eps)


def _threads(n_jobs: int | None) -> int:
    if n_jobs is None:
        return 0
    from ._base import n_threads

    return n_threads(n_jobs)


def _zeros_to_one(scale: np.ndarray, constant: np.ndarray | None = None) -> np.ndarray:
    """scikit-learn's ``_handle_zeros_in_scale``: near-constant columns get a scale of 1."""
    scale = np.array(scale, dtype=np.float64, copy=True)
    mask = scale < 10 * _EPS if constant is None else constant
    scale[mask] = 1.0
    return scale


def _ones(n: int) -> np.ndarray:
    return np.ones(n, dtype=np.float64)


def _zeros(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.float64)


class _Transform(TransformerMixin, FerroxEstimator):
    """Common pieces: tags (NaN allowed) and fitted-state checks."""

    _fitted_attr = "n_features_in_"

    def _tag_overrides(self) -> dict[str, Any]:
        return {"allow_nan": True}

    def _check_fitted(self) -> None:
        check_is_fitted(self, self._fitted_attr)


class StandardScaler(_Transform):
    """Standardize features by removing the mean and scaling to unit variance (``sklearn.preprocessing``).

    Parameters are scikit-learn's (``copy`` is accepted; the output is always a new array); ``n_jobs`` sets
    the threads (None = all cores). Fitted: ``mean_``, ``var_``, ``scale_``, ``n_samples_seen_`` (an int, or
    one count per feature when some values were missing), ``n_features_in_``, ``feature_names_in_``.

    >>> import numpy as np
    >>> from ferrox.preprocessing import StandardScaler
    >>> s = StandardScaler().fit(np.array([[1.0], [3.0]]))
    >>> s.mean_, s.scale_, s.transform(np.array([[5.0]]))
    (array([2.]), array([1.]), array([[3.]]))
    """

    _fitted_attr = "n_samples_seen_"

    def __init__(self, *, copy: bool = True, with_mean: bool = True, with_std: bool = True, n_jobs: int | None = None):
        self.copy = copy
        self.with_mean = with_mean
        self.with_std = with_std
        self.n_jobs = n_jobs

    def fit(self, X: Any, y: Any = None) -> StandardScaler:
        """Computes mean and standard deviation (NaN ignored)."""
        for attr in ("scale_", "n_samples_seen_", "mean_", "var_"):
            if hasattr(self, attr):
                delattr(self, attr)
        return self.partial_fit(X, y)

    def partial_fit(self, X: Any, y: Any = None) -> StandardScaler:
        """Folds a batch of rows into the running mean and variance (Chan et al., as scikit-learn)."""
        first = not hasattr(self, "n_samples_seen_")
        arr = self._validate(X, reset=first)
        m = arr.shape[1]
        if first:
            count, mean, var = _zeros(m), _zeros(m), _zeros(m)
        else:
            count = np.broadcast_to(np.asarray(self.n_samples_seen_, dtype=np.float64), (m,)).copy()
            mean = _zeros(m) if self.mean_ is None else np.asarray(self.mean_, dtype=np.float64)
            var = _zeros(m) if self.var_ is None else np.asarray(self.var_, dtype=np.float64)
        count, mean, var = _ferrox.moments_update(arr, count, mean, var, _threads(self.n_jobs))
        if not self.with_mean and not self.with_std:
            self.mean_, self.var_ = None, None
        else:
            self.mean_ = mean
            self.var_ = var if self.with_std else None
        self.n_samples_seen_ = int(count[0]) if count.max() == count.min() else count
        if self.with_std:
            n = np.asarray(self.n_samples_seen_, dtype=np.float64)
            constant = var <= n * _EPS * var + (n * mean * _EPS) ** 2
            self.scale_ = _zeros_to_one(np.sqrt(var), constant)
        else:
            self.scale_ = None
        return self

    def transform(self, X: Any, copy: bool | None = None) -> Any:
        """(X - mean_) / scale_, each part only when asked for; NaN passes through."""
        self._check_fitted()
        arr = self._validate(X, reset=False)
        m = arr.shape[1]
        sub = self.mean_ if self.with_mean else _zeros(m)
        div = self.scale_ if self.with_std else _ones(m)
        out = _ferrox.affine_transform(arr, sub, div, _ones(m), _zeros(m), None, _threads(self.n_jobs))
        return self._wrap(out, X)

    def inverse_transform(self, X: Any, copy: bool | None = None) -> Any:
        """X * scale_ + mean_."""
        self._check_fitted()
        arr = self._validate(X, reset=False)
        m = arr.shape[1]
        mul = self.scale_ if self.with_std else _ones(m)
        add = self.mean_ if self.with_mean else _zeros(m)
        return _ferrox.affine_transform(arr, _zeros(m), _ones(m), mul, add, None, _threads(self.n_jobs))


class MinMaxScaler(_Transform):
    """Scale each feature to ``feature_range`` (``sklearn.preprocessing.MinMaxScaler``).

    Fitted: ``data_min_``, ``data_max_``, ``data_range_``, ``scale_``, ``min_``, ``n_samples_seen_``.
    ``clip=True`` clips transformed values to ``feature_range``; NaN passes through.

    >>> import numpy as np
    >>> from ferrox.preprocessing import MinMaxScaler
    >>> MinMaxScaler().fit_transform(np.array([[1.0], [3.0], [2.0]])).ravel()
    array([0. , 1. , 0.5])
    """

    _fitted_attr = "scale_"

    def __init__(self, feature_range: tuple[float, float] = (0, 1), *, copy: bool = True, clip: bool = False,
                 n_jobs: int | None = None):
        self.feature_range = feature_range
        self.copy = copy
        self.clip = clip
        self.n_jobs = n_jobs

    def fit(self, X: Any, y: Any = None) -> MinMaxScaler:
        """Computes per-feature minimum and maximum (NaN ignored)."""
        for attr in ("scale_", "min_", "n_samples_seen_", "data_min_", "data_max_", "data_range_"):
            if hasattr(self, attr):
                delattr(self, attr)
        return self.partial_fit(X, y)

    def partial_fit(self, X: Any, y: Any = None) -> MinMaxScaler:
        """Updates the running minimum and maximum with a batch of rows."""
        lo_r, hi_r = self.feature_range
        if lo_r >= hi_r:
            raise ParameterError(
                f"Minimum of desired feature range must be smaller than maximum. Got {self.feature_range}."
            )
        first = not hasattr(self, "n_samples_seen_")
        arr = self._validate(X, reset=first)
        lo, hi = _ferrox.column_min_max(arr, _threads(self.n_jobs))
        if np.isnan(lo).any():
            warnings.warn("All-NaN slice encountered", RuntimeWarning)
        if first:
            self.n_samples_seen_ = arr.shape[0]
        else:
            lo = np.minimum(self.data_min_, lo)
            hi = np.maximum(self.data_max_, hi)
            self.n_samples_seen_ += arr.shape[0]
        data_range = hi - lo
        self.scale_ = (hi_r - lo_r) / _zeros_to_one(data_range)
        self.min_ = lo_r - lo * self.scale_
        self.data_min_, self.data_max_, self.data_range_ = lo, hi, data_range
        return self

    def transform(self, X: Any) -> Any:
        """X * scale_ + min_, clipped to feature_range when ``clip``."""
        self._check_fitted()
        arr = self._validate(X, reset=False)
        m = arr.shape[1]
        clip = (float(self.feature_range[0]), float(self.feature_range[1])) if self.clip else None
        out = _ferrox.affine_transform(arr, _zeros(m), _ones(m), self.scale_, self.min_, clip, _threads(self.n_jobs))
        return self._wrap(out, X)

    def inverse_transform(self, X: Any) -> Any:
        """(X - min_) / scale_."""
        self._check_fitted()
        arr = self._validate(X, reset=False)
        m = arr.shape[1]
        return _ferrox.affine_transform(arr, self.min_, self.scale_, _ones(m), _zeros(m), None, _threads(self.n_jobs))


class RobustScaler(_Transform):
    """Scale with statistics robust to outliers: median and quantile range (``sklearn.preprocessing``).

    Fitted: ``center_`` (median, or None without centering), ``scale_`` (the quantile range, or None).

    >>> import numpy as np
    >>> from ferrox.preprocessing import RobustScaler
    >>> RobustScaler().fit(np.array([[1.0], [2.0], [3.0], [100.0]])).center_
    array([2.5])
    """

    _fitted_attr = "n_features_in_"

    def __init__(self, *, with_centering: bool = True, with_scaling: bool = True,
                 quantile_range: tuple[float, float] = (25.0, 75.0), copy: bool = True, unit_variance: bool = False,
                 n_jobs: int | None = None):
        self.with_centering = with_centering
        self.with_scaling = with_scaling
        self.quantile_range = quantile_range
        self.copy = copy
        self.unit_variance = unit_variance
        self.n_jobs = n_jobs

    def fit(self, X: Any, y: Any = None) -> RobustScaler:
        """Computes the median and the quantile range of each feature (NaN ignored)."""
        q_min, q_max = self.quantile_range
        if not 0 <= q_min <= q_max <= 100:
            raise ParameterError(f"Invalid quantile range: {self.quantile_range}")
        arr = self._validate(X, reset=True)
        qs = np.array([50.0, q_min, q_max], dtype=np.float64)
        p = _ferrox.column_percentiles(arr, qs, None, _threads(self.n_jobs))
        self.center_ = p[0].copy() if self.with_centering else None
        if self.with_scaling:
            scale = _zeros_to_one(p[2] - p[1])
            if self.unit_variance:
                nd = statistics.NormalDist()
                scale = scale / (nd.inv_cdf(q_max / 100.0) - nd.inv_cdf(q_min / 100.0))
            self.scale_ = scale
        else:
            self.scale_ = None
        return self

    def transform(self, X: Any) -> Any:
        """(X - center_) / scale_, each part only when asked for."""
        self._check_fitted()
        arr = self._validate(X, reset=False)
        m = arr.shape[1]
        sub = self.center_ if self.with_centering else _zeros(m)
        div = self.scale_ if self.with_scaling else _ones(m)
        out = _ferrox.affine_transform(arr, sub, div, _ones(m), _zeros(m), None, _threads(self.n_jobs))
        return self._wrap(out, X)

    def inverse_transform(self, X: Any) -> Any:
        """X * scale_ + center_."""
        self._check_fitted()
        arr = self._validate(X, reset=False)
        m = arr.shape[1]
        mul = self.scale_ if self.with_scaling else _ones(m)
        add = self.center_ if self.with_centering else _zeros(m)
        return _ferrox.affine_transform(arr, _zeros(m), _ones(m), mul, add, None, _threads(self.n_jobs))


def _random_state(seed: Any) -> np.random.RandomState:
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral):
        return np.random.RandomState(int(seed))
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ParameterError(f"random_state must be None, an int or a numpy RandomState, got {seed!r}")


class QuantileTransformer(_Transform):
    """Map each feature to a uniform or normal distribution through its quantiles (``sklearn.preprocessing``).

    With the same ``random_state`` the subsample (when ``subsample`` < rows) is the one scikit-learn draws,
    so ``quantiles_`` and the outputs agree. Fitted: ``n_quantiles_``, ``quantiles_``, ``references_``.

    >>> import numpy as np
    >>> from ferrox.preprocessing import QuantileTransformer
    >>> qt = QuantileTransformer(n_quantiles=5).fit(np.arange(5.0).reshape(-1, 1))
    >>> qt.transform(np.array([[0.0], [2.0], [3.5], [9.0]])).ravel()
    array([0.   , 0.5  , 0.875, 1.   ])
    """

    _fitted_attr = "quantiles_"

    def __init__(self, *, n_quantiles: int = 1000, output_distribution: str = "uniform",
                 ignore_implicit_zeros: bool = False, subsample: int | None = 10_000, random_state: Any = None,
                 copy: bool = True, n_jobs: int | None = None):
        self.n_quantiles = n_quantiles
        self.output_distribution = output_distribution
        self.ignore_implicit_zeros = ignore_implicit_zeros
        self.subsample = subsample
        self.random_state = random_state
        self.copy = copy
        self.n_jobs = n_jobs

    def _check_params(self) -> None:
        if isinstance(self.n_quantiles, bool) or not isinstance(self.n_quantiles, numbers.Integral) or self.n_quantiles < 1:
            raise ParameterError(f"n_quantiles must be an integer >= 1, got {self.n_quantiles!r}")
        if self.output_distribution not in ("uniform", "normal"):
            raise ParameterError(
                f"output_distribution must be 'uniform' or 'normal', got {self.output_distribution!r}"
            )
        if self.subsample is not None and (
            isinstance(self.subsample, bool) or not isinstance(self.subsample, numbers.Integral) or self.subsample < 1
        ):
            raise ParameterError(f"subsample must be None or an integer >= 1, got {self.subsample!r}")
        if self.subsample is not None and self.n_quantiles > self.subsample:
            raise ParameterError(
                "The number of quantiles cannot be greater than the number of samples used. Got "
                f"{self.n_quantiles} quantiles and {self.subsample} samples."
            )

    def fit(self, X: Any, y: Any = None) -> QuantileTransformer:
        """Computes the quantiles of each feature (NaN ignored), on a subsample when rows > ``subsample``."""
        self._check_params()
        arr = self._validate(X, reset=True)
        n = arr.shape[0]
        if self.n_quantiles > n:
            warnings.warn(
                f"n_quantiles ({self.n_quantiles}) is greater than the total number of samples ({n}). "
                "n_quantiles is set to n_samples."
            )
        self.n_quantiles_ = max(1, min(int(self.n_quantiles), n))
        rng = _random_state(self.random_state)
        self.references_ = np.linspace(0, 1, self.n_quantiles_, endpoint=True)
        rows = None
        if self.subsample is not None and self.subsample < n:
            idx = np.arange(n)
            rng.shuffle(idx)
            rows = np.ascontiguousarray(idx[: self.subsample], dtype=np.int64)
        self.quantiles_ = _ferrox.column_percentiles(arr, self.references_ * 100, rows, _threads(self.n_jobs))
        return self

    def transform(self, X: Any) -> Any:
        """Each value's estimated CDF (uniform) or its normal score; NaN passes through."""
        self._check_fitted()
        arr = self._validate(X, reset=False)
        out = _ferrox.quantile_transform(
            arr, self.quantiles_, self.references_, self.output_distribution == "normal", _threads(self.n_jobs)
        )
        return self._wrap(out, X)


class SimpleImputer(_Transform):
    """Replace missing values (NaN) by a per-column statistic (``sklearn.impute.SimpleImputer``).

    ``strategy``: "mean", "median", "most_frequent" or "constant" (``fill_value``, default 0). Columns with
    no observed value are dropped unless ``keep_empty_features``; ``add_indicator`` appends one 0/1 column
    per feature that had missing values at fit. Fitted: ``statistics_``, ``indicator_features_``.

    >>> import numpy as np
    >>> from ferrox.preprocessing import SimpleImputer
    >>> SimpleImputer(strategy="median").fit_transform(np.array([[1.0], [np.nan], [5.0], [2.0]])).ravel()
    array([1., 2., 5., 2.])
    """

    _fitted_attr = "statistics_"

    def __init__(self, *, missing_values: Any = np.nan, strategy: str = "mean", fill_value: Any = None,
                 copy: bool = True, add_indicator: bool = False, keep_empty_features: bool = False,
                 n_jobs: int | None = None):
        self.missing_values = missing_values
        self.strategy = strategy
        self.fill_value = fill_value
        self.copy = copy
        self.add_indicator = add_indicator
        self.keep_empty_features = keep_empty_features
        self.n_jobs = n_jobs

    def fit(self, X: Any, y: Any = None) -> SimpleImputer:
        """Computes the fill value of each column."""
        if not (isinstance(self.missing_values, float) and np.isnan(self.missing_values)):
            raise ParameterError(f"missing_values must be np.nan in ferrox, got {self.missing_values!r}")
        if self.strategy not in ("mean", "median", "most_frequent", "constant"):
            raise ParameterError(
                f"strategy must be 'mean', 'median', 'most_frequent' or 'constant', got {self.strategy!r}"
            )
        arr = self._validate(X, reset=True)
        m = arr.shape[1]
        t = _threads(self.n_jobs)
        if self.strategy == "mean":
            _, stat, _ = _ferrox.moments_update(arr, _zeros(m), _zeros(m), _zeros(m), t)
        elif self.strategy == "median":
            stat = _ferrox.column_percentiles(arr, np.array([50.0]), None, t)[0].copy()
        elif self.strategy == "most_frequent":
            stat = _ferrox.column_most_frequent(arr, t)
        else:
            fill = 0.0 if self.fill_value is None else self.fill_value
            if not isinstance(fill, numbers.Real):
                raise ParameterError(
                    f"fill_value={fill!r} is invalid. Expected a numerical value when imputing numerical data"
                )
            stat = np.full(m, float(fill))
        n_missing = np.asarray(_ferrox.column_missing_counts(arr, t))
        if self.strategy == "constant" and not self.keep_empty_features:
            stat = np.where(n_missing == arr.shape[0], np.nan, stat)
        if self.strategy != "constant" and self.keep_empty_features:
            stat = np.where(np.isnan(stat), 0.0, stat)
        self.statistics_ = np.asarray(stat, dtype=np.float64)
        missing = n_missing > 0
        self.indicator_features_ = np.flatnonzero(missing) if self.add_indicator else None
        return self

    def _valid(self) -> np.ndarray:
        return ~np.isnan(self.statistics_)

    def transform(self, X: Any) -> Any:
        """X with NaN replaced; empty columns dropped; indicator columns appended when asked for."""
        self._check_fitted()
        arr = self._validate(X, reset=False)
        valid = self._valid()
        if not valid.all():
            warnings.warn(
                "Skipping features without any observed values: "
                f"{np.flatnonzero(~valid)}. At least one non-missing value is needed for imputation with "
                f"strategy='{self.strategy}'."
            )
            arr_v = np.asarray(arr[:, valid])
            stats = self.statistics_[valid]
        else:
            arr_v, stats = arr, self.statistics_
        out = _ferrox.impute_transform(arr_v, stats, _threads(self.n_jobs))
        if self.add_indicator and self.indicator_features_ is not None:
            ind = np.isnan(arr[:, self.indicator_features_]).astype(np.float64)
            out = np.hstack([out, ind])
        return self._wrap(out, X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Kept input names, then ``missingindicator_<name>`` for each indicator column."""
        self._check_fitted()
        names = self._input_feature_names(input_features)
        out = list(names[self._valid()])
        if self.add_indicator and self.indicator_features_ is not None:
            out += [f"missingindicator_{n}" for n in names[self.indicator_features_]]
        return np.asarray(out, dtype=object)


# ---------------------------------------------------------------------------------------------
# Categorical encoders: the category table lives in Rust; strings are read through Arrow.


def _encoder_input(est: FerroxEstimator, X: Any, reset: bool) -> tuple[Any, int, int]:
    """X as a float numpy matrix or an Arrow table the core reads; (data, rows, columns).

    Sets ``est._int_input`` when a numpy matrix of integers was given (categories stay integers)."""
    est._int_input = False
    est._check_names(X, reset)
    mod = type(X).__module__.split(".", 1)[0]
    data: Any
    if mod == "scipy" or hasattr(X, "tocsr"):
        raise TypeError("Sparse data was passed, but dense data is required; use X.toarray() to convert")
    if mod == "pandas" and hasattr(X, "columns"):
        from ._frames import _pandas_to_arrow

        if X.shape[1] == 0:
            data, shape = None, X.shape
        else:
            converted, names = _pandas_to_arrow(X)
            data = np.ascontiguousarray(converted, dtype=np.float64) if names is not None else converted
            shape = X.shape
    elif mod in ("polars", "pyarrow") and (hasattr(X, "__arrow_c_stream__") or hasattr(X, "__arrow_c_array__")):
        data = X
        shape = (X.shape[0], X.shape[1]) if mod == "polars" else (X.num_rows, X.num_columns)
    else:
        arr = np.asarray(X)
        if np.iscomplexobj(arr):
            raise DataError("Complex data not supported")
        if arr.ndim != 2:
            raise DataError(
                f"Expected 2D array, got {arr.ndim}D array instead. Reshape your data either using "
                "array.reshape(-1, 1) if your data has a single feature or array.reshape(1, -1) if it contains a "
                "single sample."
            )
        shape = arr.shape
        if arr.dtype.kind in "biuf" and arr.dtype != np.float16:
            data = arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float64)
            est._int_input = arr.dtype.kind in "biu"
        else:
            try:
                data = arr.astype(np.float64)
            except ValueError:
                data = _strings_to_arrow(arr)
    n, m = shape
    if n < 1:
        raise DataError(f"Found array with 0 sample(s) (shape={tuple(shape)}) while a minimum of 1 is required.")
    if m < 1:
        raise DataError(f"Found array with 0 feature(s) (shape={tuple(shape)}) while a minimum of 1 is required.")
    if reset:
        est.n_features_in_ = m
    elif m != est.n_features_in_:
        raise DataError(f"X has {m} features, but {type(est).__name__} is expecting {est.n_features_in_} features as input.")
    return data, n, m


def _strings_to_arrow(arr: np.ndarray) -> Any:
    import pandas as pd
    import pyarrow as pa

    df = pd.DataFrame(arr, columns=[str(i) for i in range(arr.shape[1])])
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise TypeError(
            f"Encoders require their input argument must be uniformly strings or numbers, per column: {e}"
        ) from e


class _Encoder(_Transform):
    _fitted_attr = "categories_"

    def _tag_overrides(self) -> dict[str, Any]:
        return {"allow_nan": True, "categorical": True}

    def _fit_input(self, X: Any) -> tuple[Any, int]:
        if self.categories != "auto":
            raise ParameterError("categories must be 'auto' in ferrox (given lists are not supported yet)")
        data, n, _ = _encoder_input(self, X, reset=True)
        return data, n

    def _fit_table(self, X: Any) -> tuple[Any, int]:
        data, n = self._fit_input(X)
        self._set_table(_ferrox.CategoryTable.fit(data, _threads(self.n_jobs)))
        return data, n

    def _set_table(self, table: Any) -> None:
        self._table = table
        cats = []
        for j in range(table.n_features()):  # per-column metadata (the categories), not data
            values, has_missing, integer = table.categories(j)
            if isinstance(values, list):
                arr = np.array(values + ([np.nan] if has_missing else []), dtype=object)
            elif has_missing:
                arr = np.append(values, np.nan)
            elif integer or self._int_input:
                arr = values.astype(np.int64)
            else:
                arr = values
            cats.append(arr)
        self.categories_ = cats

    def _names(self) -> list[str]:
        return [str(n) for n in self._input_feature_names()]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if "_table" in state:
            state["_table"] = state["_table"].to_bytes()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "_table" in state:
            state["_table"] = _ferrox.CategoryTable.from_bytes(state["_table"])
        self.__dict__.update(state)


class OrdinalEncoder(_Encoder):
    """Encode categorical features as integers 0..n_categories-1 (``sklearn.preprocessing.OrdinalEncoder``).

    Categories are sorted (numbers ascending, strings in code-point order, the missing value last), so
    codes equal scikit-learn's. Strings are read from pandas/polars/Arrow through Arrow, without Python loops.
    ``handle_unknown="use_encoded_value"`` maps unseen values to ``unknown_value``; missing values map
    to ``encoded_missing_value``.

    >>> import numpy as np
    >>> from ferrox.preprocessing import OrdinalEncoder
    >>> enc = OrdinalEncoder().fit(np.array([["b", "x"], ["a", "y"], ["b", "y"]], dtype=object))
    >>> enc.categories_[0].tolist(), enc.transform(np.array([["a", "y"]], dtype=object)).tolist()
    (['a', 'b'], [[0.0, 1.0]])
    """

    def __init__(self, *, categories: Any = "auto", dtype: Any = np.float64, handle_unknown: str = "error",
                 unknown_value: Any = None, encoded_missing_value: Any = np.nan, min_frequency: Any = None,
                 max_categories: Any = None, n_jobs: int | None = None):
        self.categories = categories
        self.dtype = dtype
        self.handle_unknown = handle_unknown
        self.unknown_value = unknown_value
        self.encoded_missing_value = encoded_missing_value
        self.min_frequency = min_frequency
        self.max_categories = max_categories
        self.n_jobs = n_jobs

    def fit(self, X: Any, y: Any = None) -> OrdinalEncoder:
        """Learns the sorted categories of each column."""
        self._check_params()
        self._fit_table(X)
        self._check_unknown_value()
        return self

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """Learns the categories and encodes X, reading X once (same result as ``fit(X).transform(X)``)."""
        self._check_params()
        data, _ = self._fit_input(X)
        table, out = _ferrox.CategoryTable.fit_ordinal(
            data, self._names(), float(self.encoded_missing_value), _threads(self.n_jobs)
        )
        self._set_table(table)
        self._check_unknown_value()
        return self._wrap(out.astype(self.dtype, copy=False), X)

    def _check_params(self) -> None:
        if self.handle_unknown not in ("error", "use_encoded_value"):
            raise ParameterError(f"handle_unknown must be 'error' or 'use_encoded_value', got {self.handle_unknown!r}")
        if self.handle_unknown == "use_encoded_value":
            uv = self.unknown_value
            if not (isinstance(uv, numbers.Integral) or (isinstance(uv, float) and np.isnan(uv))):
                raise TypeError(
                    "unknown_value should be an integer or np.nan when handle_unknown is 'use_encoded_value', "
                    f"got {uv!r}."
                )
        elif self.unknown_value is not None:
            raise TypeError(
                "unknown_value should only be set when handle_unknown is 'use_encoded_value', "
                f"got {self.unknown_value!r}."
            )
        if self.min_frequency is not None or self.max_categories is not None:
            raise ParameterError("OrdinalEncoder: min_frequency and max_categories are not supported by ferrox yet")

    def _check_unknown_value(self) -> None:
        if self.handle_unknown == "use_encoded_value" and not np.isnan(float(self.unknown_value)):
            for j, cats in enumerate(self.categories_):
                n_known = len(cats) - int(self._table.categories(j)[1])
                if 0 <= self.unknown_value < n_known:
                    raise ValueError(
                        f"The used value for unknown_value {self.unknown_value} is one of the values already used "
                        f"for encoding the seen categories."
                    )

    def transform(self, X: Any) -> Any:
        """Category codes; DataError (naming column and value) for an unseen value unless told otherwise."""
        self._check_fitted()
        data, _, _ = _encoder_input(self, X, reset=False)
        unknown = float(self.unknown_value) if self.handle_unknown == "use_encoded_value" else None
        out = self._table.ordinal(data, self._names(), unknown, float(self.encoded_missing_value), _threads(self.n_jobs))
        return self._wrap(out.astype(self.dtype, copy=False), X)

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Codes back to categories (an object array)."""
        self._check_fitted()
        codes = np.asarray(X, dtype=np.float64)
        out = np.empty(codes.shape, dtype=object)
        for j, cats in enumerate(self.categories_):  # one vectorised take per column (metadata-sized loop)
            col = codes[:, j]
            known = (col >= 0) & (col < len(cats)) & ~np.isnan(col)
            out[:, j] = None
            out[known, j] = np.asarray(cats, dtype=object)[col[known].astype(np.int64)]
        return out


class OneHotEncoder(_Encoder):
    """Encode categorical features as a one-hot matrix (``sklearn.preprocessing.OneHotEncoder``).

    ``handle_unknown``: "error" (DataError naming column and value), "ignore" (all zeros) or
    "infrequent_if_exist" (the infrequent column). ``min_frequency`` / ``max_categories`` group rare
    categories into one "infrequent_sklearn" column; ``drop``: None, "first" or "if_binary".
    ``sparse_output=True`` returns a scipy CSR matrix, else a dense array.

    >>> import numpy as np
    >>> from ferrox.preprocessing import OneHotEncoder
    >>> enc = OneHotEncoder(sparse_output=False).fit(np.array([["b"], ["a"], ["b"]], dtype=object))
    >>> enc.transform(np.array([["a"], ["b"]], dtype=object)).tolist(), list(enc.get_feature_names_out())
    ([[1.0, 0.0], [0.0, 1.0]], ['x0_a', 'x0_b'])
    """

    def __init__(self, *, categories: Any = "auto", drop: Any = None, sparse_output: bool = True,
                 dtype: Any = np.float64, handle_unknown: str = "error", min_frequency: Any = None,
                 max_categories: Any = None, feature_name_combiner: Any = "concat", n_jobs: int | None = None):
        self.categories = categories
        self.drop = drop
        self.sparse_output = sparse_output
        self.dtype = dtype
        self.handle_unknown = handle_unknown
        self.min_frequency = min_frequency
        self.max_categories = max_categories
        self.feature_name_combiner = feature_name_combiner
        self.n_jobs = n_jobs

    def _options(self) -> dict[str, Any]:
        return {
            "min_frequency": self._min_count,
            "max_categories": None if self.max_categories is None else int(self.max_categories),
            "drop": self.drop,
            "infrequent_if_exist": self.handle_unknown in ("infrequent_if_exist", "warn"),
        }

    def fit(self, X: Any, y: Any = None) -> OneHotEncoder:
        """Learns the sorted categories of each column, the infrequent groups and the dropped ones."""
        self._check_params()
        _, n = self._fit_table(X)
        self._set_min_count(n)
        self._set_layout()
        return self

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """Learns the categories and one-hot encodes X, reading X once (same as ``fit(X).transform(X)``)."""
        self._check_params()
        data, n = self._fit_input(X)
        self._set_min_count(n)
        table, indptr, indices, width = _ferrox.CategoryTable.fit_onehot(
            data, n_threads=_threads(self.n_jobs), **self._options()
        )
        self._set_table(table)
        self._set_layout()
        return self._output(indptr, indices, width, n, X)

    def _check_params(self) -> None:
        if self.handle_unknown not in ("error", "ignore", "infrequent_if_exist", "warn"):
            raise ParameterError(
                f"handle_unknown must be 'error', 'ignore', 'infrequent_if_exist' or 'warn', got {self.handle_unknown!r}"
            )
        if self.drop not in (None, "first", "if_binary"):
            raise ParameterError(f"drop must be None, 'first' or 'if_binary' in ferrox, got {self.drop!r}")
        if self.max_categories is not None and (isinstance(self.max_categories, bool) or int(self.max_categories) < 1):
            raise ParameterError(f"max_categories must be an integer >= 1, got {self.max_categories!r}")

    def _set_min_count(self, n: int) -> None:
        mf = self.min_frequency
        if mf is None:
            self._min_count = None
        elif isinstance(mf, numbers.Integral) and not isinstance(mf, bool) and mf >= 1:
            self._min_count = float(mf)
        elif isinstance(mf, float) and 0.0 < mf < 1.0:
            self._min_count = mf * n
        else:
            raise ParameterError(f"min_frequency must be an int >= 1 or a float in (0, 1), got {mf!r}")

    def _set_layout(self) -> None:
        self._layout = self._table.onehot_layout(**self._options())
        infreq = [np.asarray(self.categories_[j], dtype=self.categories_[j].dtype)[lay["infrequent"]] if lay["infrequent"] else None
                  for j, lay in enumerate(self._layout)]
        self.infrequent_categories_ = infreq
        if self.drop is None:
            self.drop_idx_ = None
        else:
            d = [lay["dropped"] for lay in self._layout]
            self.drop_idx_ = np.array(d, dtype=object)

    def transform(self, X: Any) -> Any:
        """The one-hot matrix (CSR when ``sparse_output``)."""
        self._check_fitted()
        data, n, _ = _encoder_input(self, X, reset=False)
        indptr, indices, width = self._table.onehot(
            data, self._names(), self.handle_unknown == "error", n_threads=_threads(self.n_jobs), **self._options()
        )
        return self._output(indptr, indices, width, n, X)

    def _output(self, indptr: np.ndarray, indices: np.ndarray, width: int, n: int, X: Any) -> Any:
        if self.sparse_output:
            if getattr(self, "_ferrox_output", "default") != "default":
                raise ValueError("Pandas output does not support sparse data. Set sparse_output=False to output pandas dataframes or disable Pandas output via `ohe.set_output(transform='default')`.")
            import scipy.sparse as sp

            values = np.ones(len(indices), dtype=self.dtype)
            return sp.csr_matrix((values, indices, indptr), shape=(n, width))
        out = np.zeros((n, width), dtype=self.dtype)
        rows = np.repeat(np.arange(n), np.diff(indptr))
        out[rows, indices] = 1
        return self._wrap(out, X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``<feature>_<category>`` per output column (``infrequent_sklearn`` for the grouped one)."""
        self._check_fitted()
        names = self._input_feature_names(input_features)
        out: list[str] = []
        for j, lay in enumerate(self._layout):
            labels = [""] * lay["width"]
            cats = self.categories_[j]
            for k, s in enumerate(lay["slot"]):
                if s >= 0:
                    labels[s] = "infrequent_sklearn" if k in lay["infrequent"] else str(cats[k])
            out += [f"{names[j]}_{label}" for label in labels]
        return np.asarray(out, dtype=object)


class KBinsDiscretizer(_Transform):
    """Bin continuous features into intervals (``sklearn.preprocessing.KBinsDiscretizer``).

    ``strategy``: "uniform" or "quantile" (numpy's ``quantile_method``, "averaged_inverted_cdf" by default
    as in scikit-learn 1.9); ``encode``: "onehot" (CSR), "onehot-dense" or "ordinal". Bins narrower than
    1e-8 are merged and constant features get one bin, as in scikit-learn. Fitted: ``bin_edges_``, ``n_bins_``.

    >>> import numpy as np
    >>> from ferrox.preprocessing import KBinsDiscretizer
    >>> kb = KBinsDiscretizer(n_bins=2, encode="ordinal", strategy="uniform").fit(np.array([[0.0], [1.0], [4.0]]))
    >>> kb.bin_edges_[0].tolist(), kb.transform(np.array([[0.5], [3.0]])).ravel().tolist()
    ([0.0, 2.0, 4.0], [0.0, 1.0])
    """

    _fitted_attr = "bin_edges_"

    def __init__(self, n_bins: Any = 5, *, encode: str = "onehot", strategy: str = "quantile",
                 quantile_method: str = "averaged_inverted_cdf", dtype: Any = None, subsample: int | None = 200_000,
                 random_state: Any = None, n_jobs: int | None = None):
        self.n_bins = n_bins
        self.encode = encode
        self.strategy = strategy
        self.quantile_method = quantile_method
        self.dtype = dtype
        self.subsample = subsample
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _tag_overrides(self) -> dict[str, Any]:
        return {"allow_nan": False}

    def fit(self, X: Any, y: Any = None) -> KBinsDiscretizer:
        """Computes the bin edges of each feature."""
        if self.encode not in ("onehot", "onehot-dense", "ordinal"):
            raise ParameterError(f"encode must be 'onehot', 'onehot-dense' or 'ordinal', got {self.encode!r}")
        if self.strategy not in ("uniform", "quantile"):
            raise ParameterError(f"strategy must be 'uniform' or 'quantile' in ferrox, got {self.strategy!r}")
        if self.quantile_method not in ("linear", "averaged_inverted_cdf"):
            raise ParameterError(
                f"quantile_method must be 'linear' or 'averaged_inverted_cdf' in ferrox, got {self.quantile_method!r}"
            )
        arr = self._validate(X, reset=True, allow_nan=False)
        n, m = arr.shape
        bins = np.full(m, self.n_bins, dtype=np.int64) if isinstance(self.n_bins, numbers.Integral) else np.asarray(self.n_bins, dtype=np.int64)
        if isinstance(self.n_bins, bool) or bins.shape != (m,) or (bins < 2).any():
            raise ParameterError(f"n_bins must be an int >= 2 or one such int per feature, got {self.n_bins!r}")
        if self.subsample is not None and n > self.subsample:
            idx = _random_state(self.random_state).choice(n, size=self.subsample, replace=True)
            arr = np.ascontiguousarray(arr[idx])
        t = _threads(self.n_jobs)
        lo, hi = _ferrox.column_min_max(arr, t)
        edges: list[np.ndarray] = []
        if self.strategy == "quantile":
            # One call per distinct bin count (usually one): percentiles of every column at once.
            per_count = {
                int(k): _ferrox.column_percentiles(arr, np.linspace(0, 100, int(k) + 1), None, t, self.quantile_method)
                for k in np.unique(bins)
            }
        n_bins = bins.copy()
        for j in range(m):  # per-feature metadata (a handful of edges), not data
            if lo[j] == hi[j]:
                warnings.warn(f"Feature {j} is constant and will be replaced with 0.")
                n_bins[j] = 1
                edges.append(np.array([-np.inf, np.inf]))
                continue
            if self.strategy == "uniform":
                e = np.linspace(lo[j], hi[j], bins[j] + 1)
            else:
                e = np.asarray(per_count[int(bins[j])][:, j], dtype=np.float64)
                e = e[np.ediff1d(e, to_begin=np.inf) > 1e-8]
                if len(e) - 1 != bins[j]:
                    warnings.warn(
                        f"Bins whose width are too small (i.e., <= 1e-8) in feature {j} are removed. Consider "
                        "decreasing the number of bins."
                    )
                    n_bins[j] = len(e) - 1
            edges.append(e)
        self.bin_edges_ = np.empty(m, dtype=object)
        self.bin_edges_[:] = edges
        self.n_bins_ = n_bins
        return self

    def transform(self, X: Any) -> Any:
        """Bin indices (ordinal), or their one-hot encoding."""
        self._check_fitted()
        arr = self._validate(X, reset=False, allow_nan=False)
        codes = _ferrox.digitize(arr, [list(e[1:-1]) for e in self.bin_edges_], _threads(self.n_jobs))
        dtype = self.dtype or np.float64
        if self.encode == "ordinal":
            return self._wrap(codes.astype(dtype, copy=False), X)
        n, m = codes.shape
        offsets = np.concatenate([[0], np.cumsum(self.n_bins_)[:-1]]).astype(np.int64)
        indices = (codes.astype(np.int64) + offsets[None, :]).ravel()
        width = int(np.sum(self.n_bins_))
        if self.encode == "onehot":
            import scipy.sparse as sp

            return sp.csr_matrix((np.ones(n * m, dtype=dtype), indices, np.arange(0, n * m + 1, m)), shape=(n, width))
        out = np.zeros((n, width), dtype=dtype)
        out[np.repeat(np.arange(n), m), indices] = 1
        return self._wrap(out, X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The input names (ordinal) or ``<feature>_<bin>`` per one-hot column."""
        self._check_fitted()
        names = self._input_feature_names(input_features)
        if self.encode == "ordinal":
            return names
        return np.asarray([f"{name}_{float(b)}" for name, k in zip(names, self.n_bins_) for b in range(k)], dtype=object)


def _kfold_assignment(n: int, n_splits: int, shuffle: bool, random_state: Any) -> np.ndarray:
    """Test-fold id of each row, as scikit-learn's KFold(n_splits, shuffle, random_state).split draws it."""
    idx = np.arange(n)
    if shuffle:
        _random_state(random_state).shuffle(idx)
    sizes = np.full(n_splits, n // n_splits, dtype=np.int64)
    sizes[: n % n_splits] += 1
    folds = np.empty(n, dtype=np.uint32)
    folds[idx] = np.repeat(np.arange(n_splits, dtype=np.uint32), sizes)
    return folds


def _stratified_assignment(y: np.ndarray, n_splits: int, shuffle: bool, random_state: Any) -> np.ndarray:
    """Test-fold id of each row, as scikit-learn's StratifiedKFold(n_splits, shuffle, random_state) draws it."""
    rng = _random_state(random_state) if shuffle else None
    _, y_idx, y_inv = np.unique(y, return_index=True, return_inverse=True)
    _, class_perm = np.unique(y_idx, return_inverse=True)
    y_enc = class_perm[y_inv.ravel()]
    n_classes = len(y_idx)
    counts = np.bincount(y_enc)
    if np.all(n_splits > counts):
        raise DataError(f"n_splits={n_splits} cannot be greater than the number of members in each class.")
    if n_splits > counts.min():
        warnings.warn(
            f"The least populated class in y has only {counts.min()} members, which is less than n_splits={n_splits}."
        )
    y_order = np.sort(y_enc)
    allocation = np.asarray([np.bincount(y_order[i::n_splits], minlength=n_classes) for i in range(n_splits)])
    folds = np.empty(len(y), dtype=np.uint32)
    for k in range(n_classes):  # per class (metadata), vectorised within
        for_class = np.arange(n_splits, dtype=np.uint32).repeat(allocation[:, k])
        if rng is not None:
            rng.shuffle(for_class)
        folds[y_enc == k] = for_class
    return folds


def _target_type(y: np.ndarray) -> str:
    if y.dtype.kind in "fc" and np.any(y != np.round(y)):
        return "continuous"
    return "binary" if len(np.unique(y)) <= 2 else "multiclass"


class TargetEncoder(_Encoder):
    """Encode categories by shrunk target means, cross-fitted on training data (``sklearn.preprocessing``).

    ``fit_transform`` encodes each row with statistics from the other ``cv`` folds (KFold for continuous
    targets, StratifiedKFold otherwise, drawn exactly as scikit-learn draws them for the same
    ``random_state``); ``transform`` uses ``encodings_`` fitted on all rows. ``smooth="auto"`` is the
    empirical-Bayes shrinkage; a float is a fixed prior weight. Multiclass targets give one column per
    feature and class. Fitted: ``categories_``, ``encodings_``, ``target_type_``, ``target_mean_``, ``classes_``.

    >>> import numpy as np
    >>> from ferrox.preprocessing import TargetEncoder
    >>> X = np.array([["a"], ["a"], ["b"], ["b"]] * 5, dtype=object)
    >>> y = np.array([1.5, 2.5, 10.5, 11.5] * 5)
    >>> TargetEncoder(smooth=0.0).fit(X, y).transform(np.array([["a"], ["c"]], dtype=object)).ravel().tolist()
    [2.0, 6.5]
    """

    def __init__(self, categories: Any = "auto", target_type: str = "auto", smooth: Any = "auto", cv: int = 5,
                 shuffle: bool = True, random_state: Any = None, n_jobs: int | None = None):
        self.categories = categories
        self.target_type = target_type
        self.smooth = smooth
        self.cv = cv
        self.shuffle = shuffle
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _tag_overrides(self) -> dict[str, Any]:
        return {"allow_nan": True, "categorical": True}

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    def _targets(self, y: Any, n: int) -> np.ndarray:
        if y is None:
            raise DataError("TargetEncoder requires y to be passed, but the target y is None: call fit(X, y)")
        yv = np.asarray(y)
        if yv.ndim == 2 and yv.shape[1] == 1:
            yv = yv.ravel()
        if yv.ndim != 1 or yv.shape[0] != n:
            raise DataError(f"y must be 1-D with one value per row of X ({n}), got shape {yv.shape}")
        if yv.dtype.kind in "fc" and np.isnan(yv).any():
            raise DataError(f"y contains NaN (first at row {int(np.flatnonzero(np.isnan(yv))[0])}); the target must be finite")
        kind = _target_type(yv) if self.target_type == "auto" else self.target_type
        if kind not in ("continuous", "binary", "multiclass"):
            raise ParameterError(f"target_type must be 'auto', 'continuous', 'binary' or 'multiclass', got {kind!r}")
        self.target_type_ = kind
        self._y_raw = yv
        if kind == "continuous":
            self.classes_ = None
            return np.asarray(yv, dtype=np.float64)[None, :]
        classes, inv = np.unique(yv, return_inverse=True)
        self.classes_ = classes
        if kind == "binary":
            if len(classes) > 2:
                raise DataError(f"target_type='binary' but y has {len(classes)} classes")
            return inv.astype(np.float64)[None, :]
        return (inv[None, :] == np.arange(len(classes))[:, None]).astype(np.float64)

    def _smooth(self) -> float | None:
        if self.smooth == "auto":
            return None
        if isinstance(self.smooth, bool) or not isinstance(self.smooth, numbers.Real) or self.smooth < 0:
            raise ParameterError(f"smooth must be 'auto' or a float >= 0, got {self.smooth!r}")
        return float(self.smooth)

    def fit(self, X: Any, y: Any = None) -> TargetEncoder:
        """Learns categories and their encodings on all rows."""
        self._fit_all(X, y)
        return self

    def _fit_all(self, X: Any, y: Any) -> tuple[Any, np.ndarray]:
        smooth = self._smooth()
        data, n = self._fit_table(X)
        targets = self._targets(y, n)
        enc, means = self._table.target_fit(data, np.ascontiguousarray(targets), smooth, _threads(self.n_jobs))
        self.encodings_ = enc
        self.target_mean_ = means[0] if self.target_type_ != "multiclass" else means
        self._means = means
        return data, targets

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """Fits, then returns cross-fitted encodings of X (each row from the other folds' statistics)."""
        if isinstance(self.cv, bool) or not isinstance(self.cv, numbers.Integral) or self.cv < 2:
            raise ParameterError(f"cv must be an integer >= 2, got {self.cv!r}")
        data, targets = self._fit_all(X, y)
        n = targets.shape[1]
        if self.target_type_ == "continuous":
            folds = _kfold_assignment(n, int(self.cv), self.shuffle, self.random_state)
        else:
            folds = _stratified_assignment(self._y_raw, int(self.cv), self.shuffle, self.random_state)
        out = self._table.target_cross_fit(
            data, np.ascontiguousarray(targets), folds.tolist(), int(self.cv), self._smooth(), _threads(self.n_jobs)
        )
        return self._wrap(out, X)

    def transform(self, X: Any) -> Any:
        """Encodings fitted on all rows; unseen categories get the target mean."""
        self._check_fitted()
        data, _, _ = _encoder_input(self, X, reset=False)
        out = self._table.target_apply(data, [list(e) for e in self.encodings_], list(self._means), _threads(self.n_jobs))
        return self._wrap(out, X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Input names, or ``<feature>_<class>`` per feature and class for multiclass targets."""
        self._check_fitted()
        names = self._input_feature_names(input_features)
        if self.target_type_ != "multiclass":
            return names
        return np.asarray([f"{n}_{c}" for n in names for c in self.classes_], dtype=object)


def _clone(est: Any) -> Any:
    """A new unfitted estimator with the same parameters (nested estimators cloned too)."""
    if isinstance(est, str) or not hasattr(est, "get_params"):
        return est
    params = {k: _clone(v) for k, v in est.get_params(deep=False).items()}
    return type(est)(**params)


def _column_indices(X: Any, names: np.ndarray | None, n_cols: int, key: Any) -> np.ndarray:
    if callable(key):
        key = key(X)
    if isinstance(key, slice):
        if names is not None and (isinstance(key.start, str) or isinstance(key.stop, str)):
            pos = {n: i for i, n in enumerate(names)}
            start = pos[key.start] if key.start is not None else 0
            stop = pos[key.stop] + 1 if key.stop is not None else n_cols
            return np.arange(start, stop)
        return np.arange(n_cols)[key]
    if isinstance(key, (str, int, np.integer)):
        key = [key]
    arr = np.asarray(key)
    if arr.dtype == bool:
        return np.flatnonzero(arr)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind in "iu":
        return np.where(arr < 0, arr + n_cols, arr).astype(np.int64)
    if names is None:
        raise DataError("columns can be given by name only when X is a DataFrame with column names")
    pos = {n: i for i, n in enumerate(names)}
    missing = [str(k) for k in arr if k not in pos]
    if missing:
        raise DataError(f"A given column is not a column of the dataframe: {missing[0]!r}")
    return np.asarray([pos[k] for k in arr], dtype=np.int64)


def _take_columns(X: Any, idx: np.ndarray) -> Any:
    mod = type(X).__module__.split(".", 1)[0]
    if mod == "pandas":
        return X.iloc[:, idx]
    if mod == "polars":
        return X.select([X.columns[i] for i in idx])
    if mod == "pyarrow":
        return X.select(list(idx))
    return np.asarray(X)[:, idx]


class ColumnTransformer(TransformerMixin, FerroxEstimator):
    """Apply transformers to column subsets and concatenate the results (``sklearn.compose``).

    ``transformers`` is a list of ``(name, transformer, columns)``; columns are names, positions, a
    slice, a boolean mask or a callable; a transformer may be "drop" or "passthrough". ``remainder``:
    "drop" or "passthrough". Outputs are stacked side by side, sparse when any part is sparse and the
    overall density is below ``sparse_threshold``. Output names are ``<name>__<feature>``.

    >>> import numpy as np
    >>> from ferrox.preprocessing import ColumnTransformer, StandardScaler, OneHotEncoder
    >>> X = np.array([[0.0, 1.0], [2.0, 2.0], [4.0, 1.0]])
    >>> ct = ColumnTransformer([("num", StandardScaler(), [0]), ("cat", OneHotEncoder(sparse_output=False), [1])])
    >>> ct.fit_transform(X).round(2).tolist()
    [[-1.22, 1.0, 0.0], [0.0, 0.0, 1.0], [1.22, 1.0, 0.0]]
    >>> list(ct.get_feature_names_out())
    ['num__x0', 'cat__x1_1.0', 'cat__x1_2.0']
    """

    def __init__(self, transformers: list[tuple[str, Any, Any]], *, remainder: Any = "drop",
                 sparse_threshold: float = 0.3, n_jobs: int | None = None, transformer_weights: Any = None,
                 verbose: bool = False, verbose_feature_names_out: bool = True):
        self.transformers = transformers
        self.remainder = remainder
        self.sparse_threshold = sparse_threshold
        self.n_jobs = n_jobs
        self.transformer_weights = transformer_weights
        self.verbose = verbose
        self.verbose_feature_names_out = verbose_feature_names_out

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters; with ``deep``, each named transformer and its parameters too."""
        out = super().get_params(deep=False)
        if deep:
            for name, trans, _ in self.transformers:
                out[name] = trans
                if hasattr(trans, "get_params"):
                    out.update({f"{name}__{k}": v for k, v in trans.get_params(deep=True).items()})
        return out

    def set_params(self, **params: Any) -> ColumnTransformer:
        """Sets parameters; ``<name>__<param>`` reaches the named transformer."""
        try:
            names = {t[0]: i for i, t in enumerate(self.transformers)}
        except (TypeError, IndexError, KeyError):
            names = {}
        own = {}
        for key, value in params.items():
            head, _, sub = key.partition("__")
            if head in names and sub:
                self.transformers[names[head]][1].set_params(**{sub: value})
            elif head in names:
                t = list(self.transformers[names[head]])
                t[1] = value
                self.transformers[names[head]] = tuple(t)  # type: ignore[call-overload]
            else:
                own[key] = value
        return super().set_params(**own) if own else self

    def _tag_overrides(self) -> dict[str, Any]:
        return {"allow_nan": True}

    def _n_cols(self, X: Any) -> int:
        if type(X).__module__.split(".", 1)[0] == "scipy" or hasattr(X, "tocsr"):
            raise TypeError("Sparse data was passed, but ColumnTransformer needs dense data; use X.toarray()")
        shape = getattr(X, "shape", None)
        if shape is not None and len(shape) == 2:
            return int(shape[1])
        if hasattr(X, "num_columns"):
            return int(X.num_columns)
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise DataError(
                f"Expected 2D array, got {arr.ndim}D array instead. Reshape your data either using "
                "array.reshape(-1, 1) if your data has a single feature or array.reshape(1, -1) if it contains a "
                "single sample."
            )
        return int(arr.shape[1])

    def fit(self, X: Any, y: Any = None) -> ColumnTransformer:
        """Fits every transformer on its columns."""
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """Fits every transformer on its columns and stacks their outputs."""
        if self.remainder not in ("drop", "passthrough"):
            raise ParameterError(f"remainder must be 'drop' or 'passthrough' in ferrox, got {self.remainder!r}")
        if type(X).__module__.split(".", 1)[0] == "scipy" or hasattr(X, "tocsr"):
            raise TypeError("Sparse data was passed, but ColumnTransformer needs dense data; use X.toarray()")
        if type(X).__module__.split(".", 1)[0] not in ("pandas", "polars", "pyarrow") and not isinstance(X, np.ndarray):
            X = np.asarray(X)
        self._check_names(X, reset=True)
        m = self._n_cols(X)
        n = self._n_rows(X)
        if n < 1:
            raise DataError(f"Found array with 0 sample(s) (shape=({n}, {m})) while a minimum of 1 is required.")
        if m < 1:
            raise DataError(f"Found array with 0 feature(s) (shape=({n}, {m})) while a minimum of 1 is required.")
        self.n_features_in_ = m
        names = getattr(self, "feature_names_in_", None)
        used = np.zeros(m, dtype=bool)
        fitted: list[tuple[str, Any, np.ndarray]] = []
        for name, trans, cols in self.transformers:
            idx = _column_indices(X, names, m, cols)
            used[idx] = True
            fitted.append((name, trans, idx))
        rest = np.flatnonzero(~used)
        if self.remainder == "passthrough" and rest.size:
            fitted.append(("remainder", "passthrough", rest))
        outs = []
        self.transformers_ = []
        for name, trans, idx in fitted:
            if isinstance(trans, str):
                self.transformers_.append((name, trans, idx))
                if trans == "passthrough":
                    outs.append(self._passthrough(X, idx))
                continue
            est = _clone(trans)
            outs.append(est.fit_transform(_take_columns(X, idx), y))
            self.transformers_.append((name, est, idx))
        if self.remainder == "drop" and rest.size:
            self.transformers_.append(("remainder", "drop", rest))
        return self._stack(outs, X, fitting=True)

    def _passthrough(self, X: Any, idx: np.ndarray) -> np.ndarray:
        sub = _take_columns(X, idx)
        mod = type(sub).__module__.split(".", 1)[0]
        if mod == "pandas":
            return sub.to_numpy(dtype=np.float64, na_value=np.nan)
        if mod in ("polars", "pyarrow"):
            return np.asarray(sub.to_numpy() if mod == "polars" else sub.to_pandas().to_numpy(), dtype=np.float64)
        return np.asarray(sub, dtype=np.float64)

    def _stack(self, outs: list[Any], X: Any, fitting: bool) -> Any:
        widths = [o.shape[1] for o in outs]
        self.output_indices_ = {}
        at = 0
        for (name, _, _), w in zip([t for t in self.transformers_ if t[1] != "drop"], widths):
            self.output_indices_[name] = slice(at, at + w)
            at += w
        n = outs[0].shape[0] if outs else self._n_rows(X)
        if not outs:
            return np.zeros((n, 0))
        sparse_parts = [hasattr(o, "tocsr") for o in outs]
        if any(sparse_parts):
            import scipy.sparse as sp

            if fitting:
                nnz = sum(o.nnz if s else np.count_nonzero(o) for o, s in zip(outs, sparse_parts))
                total = sum(o.shape[0] * o.shape[1] for o in outs)
                self.sparse_output_ = total > 0 and nnz / total < self.sparse_threshold
            if self.sparse_output_:
                return sp.hstack([sp.csr_matrix(o) for o in outs]).tocsr()
            outs = [o.toarray() if s else o for o, s in zip(outs, sparse_parts)]
        elif fitting:
            self.sparse_output_ = False
        dense = [np.asarray(o.to_numpy() if hasattr(o, "to_numpy") else o, dtype=np.float64) for o in outs]
        return self._wrap(np.hstack(dense), X)

    def _n_rows(self, X: Any) -> int:
        return int(X.shape[0]) if hasattr(X, "shape") else int(X.num_rows)

    def transform(self, X: Any) -> Any:
        """Transforms each column subset with its fitted transformer and stacks the outputs."""
        check_is_fitted(self, "transformers_")
        if type(X).__module__.split(".", 1)[0] == "scipy" or hasattr(X, "tocsr"):
            raise TypeError("Sparse data was passed, but ColumnTransformer needs dense data; use X.toarray()")
        if type(X).__module__.split(".", 1)[0] not in ("pandas", "polars", "pyarrow") and not isinstance(X, np.ndarray):
            X = np.asarray(X)
        self._check_names(X, reset=False)
        m = self._n_cols(X)
        if m != self.n_features_in_:
            raise DataError(
                f"X has {m} features, but ColumnTransformer is expecting {self.n_features_in_} features as input."
            )
        outs = []
        for _, est, idx in self.transformers_:
            if est == "drop":
                continue
            if est == "passthrough":
                outs.append(self._passthrough(X, idx))
            else:
                outs.append(est.transform(_take_columns(X, idx)))
        return self._stack(outs, X, fitting=False)

    @property
    def named_transformers_(self) -> dict[str, Any]:
        """The fitted transformers by name."""
        check_is_fitted(self, "transformers_")
        return {name: est for name, est, _ in self.transformers_}

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``<name>__<feature>`` for every output column (plain names without ``verbose_feature_names_out``)."""
        check_is_fitted(self, "transformers_")
        names = self._input_feature_names(input_features)
        out: list[str] = []
        for name, est, idx in self.transformers_:
            if est == "drop":
                continue
            inner = list(names[idx]) if est == "passthrough" else list(est.get_feature_names_out(names[idx]))
            out += [f"{name}__{f}" if self.verbose_feature_names_out else str(f) for f in inner]
        return np.asarray(out, dtype=object)
