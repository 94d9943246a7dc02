"""``ferrox.validation``: check data before it trains or scores a model.

``Schema.infer(frame)`` records each column's kind (numeric or categorical), storage type, whether
missing and infinite values occur, its finite range and its categories; ``schema.validate(frame)``
reports what new data breaks. ``check_training_data(frame, target=...)`` runs the checks worth running
before fitting. Both return a :class:`ValidationReport` (``.ok``, ``.issues``, ``to_dict()``,
``to_pandas()``); an issue of severity "error" makes ``ok`` false, a "warning" does not.

>>> import numpy as np, pandas as pd, ferrox as fx
>>> train = pd.DataFrame({"age": [23.0, 35.0, 51.0, 44.0], "city": ["a", "b", "a", "c"]})
>>> schema = fx.validation.Schema.infer(train)
>>> report = schema.validate(pd.DataFrame({"age": [30.0, 140.0], "city": ["a", "z"]}))
>>> report.ok, sorted(i["check"] for i in report.issues)
(False, ['above_max', 'unknown_category'])
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from . import _ferrox
from .exceptions import DataError, ParameterError

__all__ = ["Schema", "ValidationReport", "check_training_data"]


def _input(data: Any, what: str) -> tuple[Any, list[str] | None]:
    from ._frames import as_table_or_matrix

    try:
        kind, payload, names = as_table_or_matrix(data)
    except DataError as e:
        raise DataError(f"{what}: {e}") from e
    return payload, names


class ValidationReport:
    """Findings of a check: ``issues`` (dicts with column, check, severity, message, value) and ``ok``.

    For :func:`check_training_data` it also carries per-column numbers (``columns``), the count of
    duplicate rows and the share of the rarest label class.

    >>> r = ValidationReport({"issues": [{"column": "x", "check": "nulls", "severity": "warning",
    ...                                   "message": "...", "value": 1.0}]})
    >>> r.ok, len(r.issues)
    (True, 1)
    """

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    @property
    def issues(self) -> list[dict[str, Any]]:
        """The findings, each a dict: column, check, severity ("error"/"warning"), message, value."""
        return list(self._data["issues"])

    @property
    def ok(self) -> bool:
        """True when no finding has severity "error"."""
        return not any(i["severity"] == "error" for i in self._data["issues"])

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The findings of severity "error"."""
        return [i for i in self._data["issues"] if i["severity"] == "error"]

    def to_dict(self) -> dict[str, Any]:
        """Everything in the report as plain Python data."""
        return dict(self._data, ok=self.ok)

    def to_pandas(self) -> Any:
        """The issues as a DataFrame (one row per issue)."""
        import pandas as pd

        return pd.DataFrame(self._data["issues"], columns=["column", "check", "severity", "message", "value"])

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        n_err = len(self.errors)
        return f"<ferrox ValidationReport: ok={self.ok}, {n_err} errors, {len(self._data['issues']) - n_err} warnings>"


class Schema:
    """The expected columns of a table: kind, storage type, nullability, finite range, categories.

    Strings, booleans, pandas ``category`` and Arrow dictionary columns are categorical; numbers are
    numeric. Edit ``columns`` (a list of dicts) to loosen or tighten it, e.g. set ``nullable``.

    >>> import numpy as np, ferrox as fx
    >>> schema = fx.validation.Schema.infer(np.array([[1.0, 2.0], [3.0, np.nan]]))
    >>> [(c["name"], c["nullable"], c["min"], c["max"]) for c in schema.columns]
    [('Column_0', False, 1.0, 3.0), ('Column_1', True, 2.0, 2.0)]
    >>> schema.validate(np.array([[2.0, 2.0]])).ok
    True
    """

    __slots__ = ("columns",)

    def __init__(self, columns: Sequence[dict[str, Any]]) -> None:
        self.columns = [dict(c) for c in columns]

    @classmethod
    def infer(cls, data: Any, *, num_threads: int = 0) -> Schema:
        """The schema of ``data`` (numpy, pandas, polars, pyarrow)."""
        payload, names = _input(data, "data")
        return cls(json.loads(_ferrox.infer_schema(payload, names, int(num_threads)))["columns"])

    def validate(self, data: Any, *, num_threads: int = 0) -> ValidationReport:
        """Checks ``data`` against the schema: missing or extra columns, kinds and dtypes, missing and
        infinite values where not allowed, values outside the range, unknown categories."""
        payload, names = _input(data, "data")
        issues = json.loads(_ferrox.validate_schema(self.to_json(), payload, names, int(num_threads)))
        return ValidationReport({"issues": issues})

    def to_dict(self) -> dict[str, Any]:
        """The schema as plain data."""
        return {"columns": [dict(c) for c in self.columns]}

    def to_json(self) -> str:
        """The schema as JSON text (read back with :meth:`from_json`)."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Schema:
        """A schema from :meth:`to_json` output."""
        try:
            return cls(json.loads(text)["columns"])
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(f"not a ferrox schema: {e}") from e

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (Schema.from_json, (self.to_json(),))

    def __repr__(self) -> str:
        return f"<ferrox Schema: {len(self.columns)} columns>"


def check_training_data(
    data: Any,
    target: str | int | None = None,
    *,
    missing_limit: float = 0.1,
    outlier_sigma: float = 3.0,
    outlier_limit: float = 0.01,
    min_class_share: float = 0.05,
    max_classes: int = 50,
    num_threads: int = 0,
) -> ValidationReport:
    """Checks training data before fitting.

    Errors: a column more than ``missing_limit`` missing (default 10%), infinite values, a missing or
    infinite label, a label with a single class. Warnings: more than ``outlier_limit`` of a column's
    finite values beyond ``outlier_sigma`` standard deviations (population σ) of its mean, constant
    columns, columns duplicating an earlier one, duplicate rows (64-bit row hashes), and a rarest
    class below ``min_class_share`` of the rows (the label counts as classes when it is categorical
    or holds at most ``max_classes`` distinct whole numbers). ``target`` names the label column (or
    its position); it is left out of the feature checks.

    >>> import numpy as np, pandas as pd, ferrox as fx
    >>> df = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0], "k": [7, 7, 7, 7], "y": [0, 1, 0, np.nan]})
    >>> r = fx.validation.check_training_data(df, target="y")
    >>> r.ok, sorted(i["check"] for i in r.issues)
    (False, ['constant', 'label_missing', 'missing_share'])
    """
    payload, names = _input(data, "data")
    if isinstance(target, int) and not isinstance(target, bool):
        cols = names if names is not None else getattr(payload, "column_names", None)
        if cols is None:
            cols = [f"Column_{i}" for i in range(payload.shape[1])]
        if not 0 <= target < len(cols):
            raise ParameterError(f"target index {target} is out of range for {len(cols)} columns")
        target = cols[target]
    elif target is not None and not isinstance(target, str):
        raise ParameterError(f"target must be a column name or index, got {type(target).__name__}")
    out = _ferrox.check_training(
        payload,
        names,
        target,
        float(missing_limit),
        float(outlier_sigma),
        float(outlier_limit),
        float(min_class_share),
        int(max_classes),
        int(num_threads),
    )
    return ValidationReport(json.loads(out))
