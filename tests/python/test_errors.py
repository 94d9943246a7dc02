"""Bad input raises a typed error naming what is wrong, and builds nothing."""

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import ferrox as fx
from ferrox import DataError, FerroxError, ModelIntegrityError, ModelVersionError, NotFittedError, ParameterError


def test_exception_hierarchy():
    assert issubclass(DataError, FerroxError) and issubclass(DataError, ValueError)
    assert issubclass(ParameterError, DataError)
    assert issubclass(ModelIntegrityError, FerroxError) and issubclass(ModelIntegrityError, ValueError)
    assert issubclass(ModelVersionError, ModelIntegrityError)
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)


@pytest.mark.parametrize(
    "data, match",
    [
        (np.zeros(5), "2-D"),
        (np.zeros((2, 3, 4)), "3-D"),
        (np.zeros((0, 3)), "no rows"),
        (np.zeros((3, 0)), "no columns"),
        (pd.DataFrame({"a": []}, dtype=float), "no rows"),
        (pd.Series([1.0, 2.0]), "2-D"),
        (pl.Series([1.0, 2.0]), "2-D"),
        (np.array([["a", "b"]]), "dtype"),
        ("not data", "unsupported data type"),
        (pd.DataFrame({"city": ["a", "b"], "x": [1.0, 2.0]}), "'city'"),
        (pl.DataFrame({"city": ["a", "b"]}), "'city'"),
        (pd.DataFrame([[1.0, 2.0]], columns=["a", "a"]), "duplicate column name 'a'"),
        (pa.table({"t": pa.array([1, 2], pa.timestamp("s"))}), "'t'"),
    ],
)
def test_bad_data(data, match):
    with pytest.raises(DataError, match=match):
        fx.Dataset(data)


def test_bad_label_and_weight(rng):
    x = rng.normal(size=(10, 2))
    y = np.zeros(10)
    with pytest.raises(DataError, match="label has 9 values but the data has 10 rows"):
        fx.Dataset(x, label=y[:9])
    with pytest.raises(DataError, match="weight has 11 values"):
        fx.Dataset(x, weight=np.ones(11))
    bad = y.copy()
    bad[4] = np.nan
    with pytest.raises(DataError, match="label holds NaN at row 4"):
        fx.Dataset(x, label=bad)
    bad[4] = np.inf
    with pytest.raises(DataError, match="row 4"):
        fx.Dataset(x, label=bad)
    w = np.ones(10)
    w[6] = -0.5
    with pytest.raises(DataError, match="row 6.*>= 0"):
        fx.Dataset(x, weight=w)
    w[6] = np.inf
    with pytest.raises(DataError, match="weight holds inf at row 6"):
        fx.Dataset(x, weight=w)
    with pytest.raises(DataError, match="label must be numeric"):
        fx.Dataset(x, label=np.array(["a"] * 10))
    with pytest.raises(DataError, match="label has 9 values"):
        fx.Dataset(pd.DataFrame(x), label=pd.Series(y[:9]))


@pytest.mark.parametrize("max_bin", [-1, 0, 1, 65536, 10**12])
def test_max_bin_range(max_bin):
    with pytest.raises(DataError, match="max_bin must be in 2..=65535"):
        fx.Dataset(np.zeros((4, 1)), max_bin=max_bin)


def test_bad_parameters():
    x = np.zeros((4, 2))
    with pytest.raises(ParameterError, match="max_bin must be an integer"):
        fx.Dataset(x, max_bin="255")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="did you mean 'max_bin'"):
        fx.Dataset(x, params={"max_bn": 10})
    with pytest.raises(ParameterError, match="categorical_features names column 'z'"):
        fx.Dataset(x, categorical_features=["z"])
    with pytest.raises(ParameterError, match="column 7"):
        fx.Dataset(x, categorical_features=[7])
    with pytest.raises(ParameterError, match=">= 0"):
        fx.Dataset(x, categorical_features=[-1])
    with pytest.raises(ParameterError, match="reference must be a ferrox.Dataset"):
        fx.Dataset(x, reference=x)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="feature_name has 3 names"):
        fx.Dataset(x, feature_name=["a", "b", "c"])


def test_non_integer_category_names_column_and_row():
    x = np.array([[1.0], [2.0], [2.5]])
    with pytest.raises(DataError, match=r"column 'Column_0'.*row 2 holds 2.5"):
        fx.Dataset(x, categorical_features=[0])


def test_reference_mismatches(rng):
    train = fx.Dataset(pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)}))
    with pytest.raises(DataError, match="3 columns but the reference Dataset has 2"):
        fx.Dataset(rng.normal(size=(5, 3)), reference=train)
    with pytest.raises(DataError, match="named 'c' but the reference Dataset calls it 'b'"):
        fx.Dataset(pd.DataFrame({"a": [1.0], "c": [2.0]}), reference=train)
    with pytest.raises(DataError, match="categorical here but numeric"):
        fx.Dataset(pd.DataFrame({"a": [1.0], "b": pd.Categorical(["x"])}), reference=train)
