"""``ferrox.Dataset``: data binned once, reused by every training run."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import _ferrox
from ._frames import as_table_or_matrix, as_vector
from .exceptions import DataError, ParameterError

__all__ = ["Dataset"]

# LightGBM's dataset parameters and their aliases -> ferrox's keyword names.
_PARAM_ALIASES: dict[str, str] = {
    "max_bin": "max_bin",
    "max_bins": "max_bin",
    "bin_construct_sample_cnt": "bin_construct_sample_cnt",
    "subsample_for_bin": "bin_construct_sample_cnt",
    "data_random_seed": "data_random_seed",
    "data_seed": "data_random_seed",
    "min_data_in_bin": "min_data_in_bin",
    "num_threads": "num_threads",
    "num_thread": "num_threads",
    "nthread": "num_threads",
    "nthreads": "num_threads",
    "n_jobs": "num_threads",
}


def _int_param(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _dataset_params(params: Mapping[str, Any] | None, max_bin: int, num_threads: int | None) -> dict[str, int]:
    out: dict[str, int] = {"max_bin": _int_param("max_bin", max_bin)}
    for key, value in (params or {}).items():
        target = _PARAM_ALIASES.get(key)
        if target is None:
            close = difflib.get_close_matches(key, list(_PARAM_ALIASES), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ParameterError(f"unknown Dataset parameter {key!r}{hint}")
        out[target] = _int_param(key, value)
    if num_threads is not None:
        out["num_threads"] = _int_param("num_threads", num_threads)
    return out


class Dataset:
    """Training data, binned once into small integers and reusable across trainings and tuning trials.

    Parameters
    ----------
    data
        A 2-D numpy array (float32/float64, C or Fortran order; the floats are not copied), a pandas or
        polars DataFrame, a pyarrow Table/RecordBatch, or any object with ``__arrow_c_stream__`` /
        ``__arrow_c_array__``. Missing values (NaN, Arrow nulls, pandas NA) get a bin of their own.
    label, weight
        One value per row (numpy, list, pandas/polars Series). Must be finite; weights must be >= 0.
    categorical_features
        Column names or indices to bin as categories. pandas ``category``, Arrow dictionary and polars
        Categorical/Enum columns are categorical without being listed.
    max_bin
        Most bins per feature, 2..65535, the bin kept for missing values included (as LightGBM counts
        them for a feature with missing values). Bins are stored as uint8 up to 256 bins, uint16 beyond.
    reference
        A Dataset whose bin edges to reuse (validation data, tuning trials).
    feature_name
        Names for numpy columns (default ``Column_0``, ``Column_1``, ...). Tables keep their own names.
    params
        LightGBM-style dataset parameters: ``max_bin``, ``bin_construct_sample_cnt``,
        ``data_random_seed``, ``min_data_in_bin``, ``num_threads`` (and their usual aliases).
    num_threads
        Threads used for binning (default: all cores this process may use).
    group
        Query sizes for ranking (rows of one query are consecutive); they must sum to the rows.
    init_score
        Starting raw scores, one per row, or ``(rows, classes)`` for multiclass; training starts from
        them instead of the label average, and the model does not include them (as in LightGBM).

    Examples
    --------
    >>> import numpy as np, ferrox as fx
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 3)).astype(np.float32)
    >>> ds = fx.Dataset(X, label=X[:, 0] > 0, max_bin=63)
    >>> ds.num_data(), ds.num_feature(), ds.feature_name()
    (1000, 3, ['Column_0', 'Column_1', 'Column_2'])
    >>> valid = fx.Dataset(X[:100], reference=ds)
    >>> bool((valid.bins() == ds.bins()[:100]).all())
    True
    """

    __slots__ = ("_handle",)

    def __init__(
        self,
        data: Any,
        label: Any = None,
        weight: Any = None,
        categorical_features: Sequence[str | int] | None = None,
        max_bin: int = 255,
        reference: Dataset | None = None,
        *,
        feature_name: Sequence[str] | None = None,
        params: Mapping[str, Any] | None = None,
        num_threads: int | None = None,
        group: Any = None,
        init_score: Any = None,
    ) -> None:
        if reference is not None and not isinstance(reference, Dataset):
            raise ParameterError(f"reference must be a ferrox.Dataset, got {type(reference).__name__}")
        if isinstance(categorical_features, (str, bytes)):
            categorical_features = [categorical_features]  # type: ignore[list-item]
        kwargs: dict[str, Any] = _dataset_params(params, max_bin, num_threads)
        kind, payload, names = as_table_or_matrix(data)
        if feature_name is not None:
            if kind != "numpy":
                raise ParameterError("feature_name applies to numpy data; tables keep their own column names")
            names = [str(n) for n in feature_name]
        n_rows = _row_count(kind, payload)
        kwargs["label"] = None if label is None else as_vector(label, "label", n_rows)
        kwargs["weight"] = None if weight is None else as_vector(weight, "weight", n_rows)
        kwargs["categorical_features"] = None if categorical_features is None else list(categorical_features)
        kwargs["reference"] = None if reference is None else reference._handle
        kwargs["group"] = None if group is None else _group_sizes(group)
        kwargs["init_score"] = None if init_score is None else _init_scores(init_score, n_rows)
        if kind == "numpy":
            self._handle = _ferrox.BinnedDataset.from_numpy(payload, feature_names=names, **kwargs)
        else:
            try:
                self._handle = _ferrox.BinnedDataset.from_arrow(payload, **kwargs)
            except DataError:
                raise
            except (ValueError, TypeError) as e:
                raise DataError(f"cannot read {type(data).__name__} through the Arrow interface: {e}") from e

    @classmethod
    def _wrap(cls, handle: _ferrox.BinnedDataset) -> Dataset:
        self = cls.__new__(cls)
        self._handle = handle
        return self

    def num_data(self) -> int:
        """Number of rows."""
        return self._handle.num_data()

    def num_feature(self) -> int:
        """Number of features."""
        return self._handle.num_feature()

    def feature_name(self) -> list[str]:
        """Feature names in column order."""
        return self._handle.feature_name()

    @property
    def categorical_feature(self) -> list[str]:
        """Names of the features binned as categories."""
        return [n for n, c in zip(self._handle.feature_name(), self._handle.categorical_mask()) if c]

    def get_label(self) -> np.ndarray | None:
        """The label as float64 (a copy), or None."""
        return self._handle.get_label()

    def get_weight(self) -> np.ndarray | None:
        """The weights as float64 (a copy), or None."""
        return self._handle.get_weight()

    def get_group(self) -> np.ndarray | None:
        """Query sizes, or None."""
        g = self._handle.get_group()
        return None if g is None else np.asarray(g, dtype=np.int64)

    def get_init_score(self) -> np.ndarray | None:
        """Starting raw scores (class-major for multiclass), or None."""
        return self._handle.get_init_score()

    def get_params(self) -> dict[str, int]:
        """The binning parameters this Dataset was built with."""
        return self._handle.params()

    def num_bins(self) -> list[int]:
        """Bins per feature, the missing-value bin included."""
        return self._handle.num_bins()

    def bins(self) -> np.ndarray:
        """The bins as a (num_data, num_feature) uint8/uint16 array (a copy, for inspection)."""
        return self._handle.bins()

    def feature_info(self, feature: int | str) -> dict[str, Any]:
        """The bin rule of one feature: kind, bin upper bounds or categories, missing bin."""
        if isinstance(feature, str):
            names = self.feature_name()
            if feature not in names:
                raise DataError(f"no feature named {feature!r}")
            feature = names.index(feature)
        return self._handle.feature_info(int(feature))

    def to_bytes(self) -> bytes:
        """The Dataset as a ferrox artifact (SHA-256 verified when read back)."""
        return self._handle.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Dataset:
        """A Dataset from :meth:`to_bytes` output; raises ModelIntegrityError if it was changed."""
        return cls._wrap(_ferrox.BinnedDataset.from_bytes(bytes(data)))

    def save_binary(self, path: str | os.PathLike[str]) -> Dataset:
        """Writes the binned Dataset to ``path`` (atomically) and returns self."""
        self._handle.save(os.fspath(path))
        return self

    @classmethod
    def load_binary(cls, path: str | os.PathLike[str]) -> Dataset:
        """Reads a Dataset written by :meth:`save_binary`, verifying its SHA-256."""
        return cls._wrap(_ferrox.BinnedDataset.load(os.fspath(path)))

    def describe(self) -> str:
        """Names, bin rules and parameters as JSON text, for people to read."""
        return self._handle.describe_json()

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (Dataset.from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        cats = sum(self._handle.categorical_mask())
        return (
            f"<ferrox.Dataset: {self.num_data()} rows x {self.num_feature()} features "
            f"({cats} categorical), {self._handle.bin_bits()}-bit bins>"
        )


def _group_sizes(group: Any) -> list[int]:
    arr = np.asarray(group)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise DataError(f"group must be a 1-D sequence of integer query sizes, got {arr.dtype} of shape {arr.shape}")
    return [int(v) for v in arr.tolist()]


def _init_scores(init_score: Any, n_rows: int | None) -> np.ndarray:
    arr = np.asarray(init_score, dtype=np.float64)
    if arr.ndim == 2:
        if n_rows is not None and arr.shape[0] != n_rows:
            raise DataError(f"init_score has {arr.shape[0]} rows but the data has {n_rows}")
        arr = arr.T  # class-major, as the trainer keeps scores
    elif arr.ndim != 1:
        raise DataError(f"init_score must be 1-D or (rows, classes), got shape {arr.shape}")
    return np.ascontiguousarray(arr.reshape(-1))


def _row_count(kind: str, payload: Any) -> int | None:
    if kind == "numpy":
        return int(payload.shape[0])
    n = getattr(payload, "num_rows", None)
    if isinstance(n, int):
        return n
    shape = getattr(payload, "shape", None)
    if isinstance(shape, tuple) and shape and isinstance(shape[0], int):
        return shape[0]
    return None
