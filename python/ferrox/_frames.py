"""Turning user inputs (numpy, pandas, polars, pyarrow, Arrow PyCapsule objects) into what the core reads.

Nothing here loops over rows or columns: numpy arrays go to the core as they are; tables go through the
Arrow C data interface. pandas and pyarrow are imported only when a pandas object is passed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .exceptions import DataError

__all__ = ["as_table_or_matrix", "as_vector"]


def _module_of(obj: object) -> str:
    return type(obj).__module__.split(".", 1)[0]


def _describe(obj: object) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def _numpy_matrix(arr: np.ndarray) -> np.ndarray:
    if arr.ndim != 2:
        hint = " (use X.reshape(-1, 1) for a single feature)" if arr.ndim == 1 else ""
        raise DataError(f"data must be 2-D (rows x features), got a {arr.ndim}-D array of shape {arr.shape}{hint}")
    if arr.dtype == np.float32 or arr.dtype == np.float64:
        return arr
    if arr.dtype.kind in "biu":
        return arr.astype(np.float64)
    if arr.dtype.kind == "f":
        return arr.astype(np.float64)
    raise DataError(
        f"data has dtype {arr.dtype}; numpy input must be numeric (float32/float64, or int/bool, which are "
        "widened to float64). Pass a pandas/polars/pyarrow table to use string or categorical columns"
    )


def _pandas_to_arrow(df: Any) -> Any:
    cols = df.columns
    dup = cols[cols.duplicated()]
    if len(dup):
        raise DataError(f"duplicate column name {str(dup[0])!r}; column names must be unique")
    try:
        import pyarrow as pa
    except ImportError:
        pa = None
    if pa is None:
        kinds = {dt.kind for dt in df.dtypes if isinstance(dt, np.dtype)}
        if len(kinds) == len(df.dtypes) and kinds <= set("fiub"):
            return df.to_numpy(dtype=np.float64), [str(c) for c in cols]
        raise DataError(
            "this pandas DataFrame has non-numeric or extension columns; reading those needs pyarrow "
            "(pip install pyarrow)"
        )
    names = [str(c) for c in cols]
    try:
        # float32/float64 numpy columns are wrapped in place (their NaN stay NaN, which the core reads
        # as missing, as it does Arrow nulls); pyarrow converts the rest (categories, strings, nullable
        # extension types). One array per column, no data copied for the floats.
        arrays = [
            pa.array(s.to_numpy(), from_pandas=False)
            if isinstance(s.dtype, np.dtype) and s.dtype in (np.float32, np.float64)
            else pa.array(s, from_pandas=True)
            for _, s in df.items()
        ]
        return pa.Table.from_arrays(arrays, names=names), None
    except pa.ArrowException as e:
        raise DataError(f"cannot read this pandas DataFrame: {e}") from e


def as_table_or_matrix(data: Any) -> tuple[str, Any, list[str] | None]:
    """Classifies ``data``: ("numpy", 2-D float array, names or None) or ("arrow", Arrow object, None)."""
    if isinstance(data, np.ndarray):
        return "numpy", _numpy_matrix(data), None
    mod = _module_of(data)
    name = type(data).__name__
    if mod == "pandas":
        if name != "DataFrame":
            raise DataError(f"data must be 2-D: got a pandas {name}; pass a DataFrame (e.g. series.to_frame())")
        converted, names = _pandas_to_arrow(data)
        if names is not None:
            return "numpy", converted, names
        return "arrow", converted, None
    if mod in ("polars", "pyarrow") and name in ("Series", "Array", "ChunkedArray"):
        raise DataError(f"data must be 2-D: got a {mod} {name}; pass a table/DataFrame")
    if hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__"):
        return "arrow", data, None
    if mod == "scipy":
        raise DataError("sparse matrices are not supported yet; pass a dense array (X.toarray())")
    if isinstance(data, (list, tuple)):
        try:
            arr = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise DataError(f"data given as a {name} could not be read as a numeric matrix: {e}") from e
        return "numpy", _numpy_matrix(arr), None
    raise DataError(
        f"unsupported data type {_describe(data)}: expected a 2-D numpy array, a pandas/polars DataFrame, a "
        "pyarrow Table/RecordBatch or any object with __arrow_c_stream__"
    )


def as_vector(values: Any, what: str, n_rows: int | None = None) -> np.ndarray:
    """A contiguous float64 1-D copy of a label/weight-like input (numpy, list, pandas/polars/Arrow)."""
    mod = _module_of(values)
    try:
        if mod == "pandas":
            arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
        elif mod == "polars":
            arr = np.asarray(values.to_numpy(), dtype=np.float64)
        elif mod == "pyarrow":
            arr = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
        else:
            arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(f"{what} must be numeric: {e}") from e
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise DataError(f"{what} must be 1-D, got shape {arr.shape}")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise DataError(f"{what} has {arr.shape[0]} values but the data has {n_rows} rows")
    return np.ascontiguousarray(arr)
