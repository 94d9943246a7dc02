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
from .exceptions import ParameterError

__all__ = ["StandardScaler", "MinMaxScaler", "RobustScaler", "QuantileTransformer", "SimpleImputer"]

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
