"""ferrox.validation: schema inference and checks, training-data checks measured against pandas."""

import pickle

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import ferrox as fx
from ferrox import DataError, ParameterError
from ferrox.validation import Schema, check_training_data


def training_frame(rng, n=3000):
    df = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "heavy": rng.standard_t(2, size=n),
            "gappy": np.where(rng.random(n) < 0.25, np.nan, rng.random(n)),
            "const": np.full(n, 3.0),
            "cat": pd.Categorical(rng.choice(["x", "y", "z"], size=n)),
            "label": (rng.random(n) < 0.03).astype(int),
        }
    )
    df["copy_of_a"] = df["a"]
    dup = df.sample(40, random_state=int(rng.integers(1 << 31)))
    return pd.concat([df, dup], ignore_index=True)


def by_check(report):
    return {(i["column"], i["check"]): i for i in report.issues}


def test_training_checks_match_pandas(rng):
    df = training_frame(rng)
    r = check_training_data(df, target="label")
    issues = by_check(r)
    assert not r.ok  # gappy is 25% missing
    assert issues[("gappy", "missing_share")]["value"] == pytest.approx(df["gappy"].isna().mean())
    assert ("const", "constant") in issues and ("copy_of_a", "duplicate_column") in issues
    assert r.to_dict()["duplicate_rows"] == df.duplicated().sum()
    assert issues[("", "duplicate_rows")]["value"] == df.duplicated().sum()
    minority = df["label"].value_counts(normalize=True).min()
    assert r.to_dict()["minority_share"] == pytest.approx(minority)
    assert (("label", "class_balance") in issues) == (minority < 0.05)
    cols = {c["column"]: c for c in r.to_dict()["columns"]}
    for col in ("a", "heavy"):
        x = df[col].to_numpy()
        share = np.mean(np.abs(x - x.mean()) > 3 * x.std())
        assert cols[col]["outlier_share"] == pytest.approx(share)
        assert ((col, "outliers") in issues) == (share > 0.01)
    assert not any(i["column"] == "label" and i["check"] == "missing_share" for i in r.issues)
    df2 = df.drop(columns=["gappy"]).assign(label=df["label"].astype(float))
    df2.loc[5, "label"] = np.nan
    df2.loc[7, "a"] = np.inf
    r2 = check_training_data(df2, target="label", missing_limit=0.5)
    issues2 = by_check(r2)
    assert issues2[("label", "label_missing")]["value"] == 1
    assert issues2[("a", "infinite")]["value"] == 1  # infinite values are reported, not dropped
    frame = r2.to_pandas()
    assert list(frame.columns) == ["column", "check", "severity", "message", "value"] and len(frame) == len(r2.issues)


def test_training_checks_same_on_every_input_kind(rng):
    df = training_frame(rng, 800).drop(columns=["cat"])
    base = sorted((i["column"], i["check"], i["value"]) for i in check_training_data(df, target="label").issues)
    for data in (pl.from_pandas(df), pa.Table.from_pandas(df, preserve_index=False)):
        got = sorted((i["column"], i["check"], i["value"]) for i in check_training_data(data, target="label").issues)
        assert got == base
    arr = df.to_numpy(dtype=np.float64)
    r = check_training_data(arr, target=list(df.columns).index("label"))
    assert {i["check"] for i in r.issues} == {c for _, c, _ in base}


def test_training_check_errors():
    with pytest.raises(ParameterError, match="target 'nope' is not a column"):
        check_training_data(pd.DataFrame({"x": [1.0]}), target="nope")
    with pytest.raises(ParameterError, match="out of range"):
        check_training_data(np.ones((3, 2)), target=5)
    r = check_training_data(pd.DataFrame({"x": [1.0, 2.0], "y": [1, 1]}), target="y")
    assert by_check(r)[("y", "single_class")]["severity"] == "error"
    with pytest.raises(DataError, match="no rows"):
        check_training_data(np.empty((0, 2)))


def test_schema_infer_and_validate(rng):
    ref = pd.DataFrame(
        {
            "x": rng.normal(size=500),
            "n": np.where(rng.random(500) < 0.1, np.nan, rng.random(500)),
            "c": rng.choice(["a", "b"], size=500),
            "k": pd.Categorical(rng.choice(["p", "q"], size=500)),
            "i": rng.integers(0, 10, size=500),
        }
    )
    schema = Schema.infer(ref)
    cols = {c["name"]: c for c in schema.columns}
    assert cols["x"]["kind"] == "numeric" and cols["x"]["min"] == ref["x"].min() and cols["x"]["max"] == ref["x"].max()
    assert cols["n"]["nullable"] and not cols["x"]["nullable"]
    assert cols["c"]["kind"] == "categorical" and sorted(k["Str"] for k in cols["c"]["categories"]) == ["a", "b"]
    assert cols["i"]["dtype"] == "Int64"
    assert schema.validate(ref).ok and schema.validate(ref).issues == []
    bad = ref.iloc[:50].copy()
    bad.loc[0, "x"] = ref["x"].max() + 1
    bad.loc[1, "x"] = np.nan
    bad.loc[2, "c"] = "zz"
    bad.loc[3, "x"] = -np.inf
    bad = bad.drop(columns=["k"]).assign(i=bad["i"].astype(float), extra=1)
    issues = by_check(schema.validate(bad))
    assert issues[("x", "above_max")]["value"] == 1
    assert issues[("x", "nulls")]["severity"] == "error"
    assert issues[("x", "infinite")]["value"] == 1
    assert "'zz'" in issues[("c", "unknown_category")]["message"]
    assert ("k", "missing_column") in issues and ("extra", "extra_column") in issues
    assert issues[("i", "dtype")]["severity"] == "warning" and "Float64" in issues[("i", "dtype")]["message"]
    kind = schema.validate(ref.assign(x=ref["x"].astype(str)))
    assert by_check(kind)[("x", "kind")]["severity"] == "error"
    # round trips
    again = pickle.loads(pickle.dumps(schema))
    assert again.columns == schema.columns
    assert Schema.from_json(schema.to_json()).validate(bad).issues == schema.validate(bad).issues
    with pytest.raises(DataError, match="not a ferrox schema"):
        Schema.from_json("{}")
    # polars and arrow read the same way
    assert Schema.infer(pl.from_pandas(ref.drop(columns=["k"]))).validate(ref.drop(columns=["k"])).ok


def test_results_do_not_depend_on_thread_count(rng):
    df = training_frame(rng, 1500)
    a = check_training_data(df, target="label", num_threads=1).to_dict()
    b = check_training_data(df, target="label", num_threads=3).to_dict()
    assert str(a) == str(b)
    assert Schema.infer(df, num_threads=1).columns == Schema.infer(df, num_threads=3).columns
