"""Every supported container gives the same bins for the same values."""

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import ferrox as fx


def numeric_frame(rng, n=5_000):
    x = rng.lognormal(size=(n, 3))
    x[rng.random(x.shape) < 0.05] = np.nan
    ints = rng.integers(0, 20, size=n).astype(np.float64)
    ints[rng.random(n) < 0.1] = np.nan
    flags = (rng.random(n) < 0.3).astype(np.float64)
    return np.column_stack([x, ints, flags])


def test_numpy_orders_and_dtypes_agree(rng):
    x = numeric_frame(rng).astype(np.float32).astype(np.float64)
    ref = fx.Dataset(x).bins()
    for variant in (np.asfortranarray(x), x.astype(np.float32), np.asfortranarray(x.astype(np.float32))):
        np.testing.assert_array_equal(fx.Dataset(variant).bins(), ref)
    # Non-contiguous views are read through their strides.
    wide = np.repeat(x, 2, axis=1)
    np.testing.assert_array_equal(fx.Dataset(wide[:, ::2]).bins(), ref)


def test_pandas_polars_arrow_numpy_identical_bins(rng):
    x = numeric_frame(rng)
    names = ["a", "b", "c", "n", "flag"]
    expected = fx.Dataset(x, feature_name=names).bins()
    pdf = pd.DataFrame(x, columns=names)
    pdf["n"] = pd.array(np.where(np.isnan(x[:, 3]), None, x[:, 3]), dtype="Int64")
    pdf["flag"] = x[:, 4].astype(bool)
    plf = pl.from_numpy(x, schema=names).with_columns(
        pl.col("n").fill_nan(None).cast(pl.Int64), pl.col("flag").cast(pl.Boolean)
    )
    tbl = pa.Table.from_pandas(pdf, preserve_index=False)
    for data in (pdf, plf, tbl, pa.RecordBatch.from_pandas(pdf, preserve_index=False)):
        ds = fx.Dataset(data)
        assert ds.feature_name() == names
        np.testing.assert_array_equal(ds.bins(), expected, err_msg=type(data).__name__)


def test_chunked_arrow_equals_single_chunk(rng):
    x = numeric_frame(rng)
    tbl = pa.table({f"f{j}": x[:, j] for j in range(x.shape[1])})
    chunked = pa.Table.from_batches(tbl.to_batches(max_chunksize=333))
    assert chunked.column(0).num_chunks > 1
    np.testing.assert_array_equal(fx.Dataset(chunked).bins(), fx.Dataset(tbl).bins())


def test_categoricals_from_every_source_agree(rng):
    n = 3_000
    cats = np.array(["red", "green", "blue", "violet"])
    idx = rng.choice(4, size=n, p=[0.5, 0.3, 0.15, 0.05])
    vals = cats[idx].astype(object)
    vals[rng.random(n) < 0.05] = None
    num = rng.normal(size=n)
    pdf = pd.DataFrame({"color": pd.Categorical(vals), "x": num})
    expected = fx.Dataset(pdf)
    assert expected.categorical_feature == ["color"]
    info = expected.feature_info("color")
    assert info["kind"] == "categorical"
    # Bins ordered by frequency.
    assert info["categories"][:2] == ["red", "green"]
    sources = [
        pl.DataFrame({"color": pl.Series(vals.tolist(), dtype=pl.Categorical), "x": num}),
        pl.DataFrame({"color": pl.Series(vals.tolist(), dtype=pl.Enum(["violet", "blue", "green", "red"])), "x": num}),
        pa.table({"color": pa.array(vals.tolist()).dictionary_encode(), "x": num}),
    ]
    for data in sources:
        np.testing.assert_array_equal(fx.Dataset(data).bins(), expected.bins(), err_msg=str(type(data)))
    # Plain strings work when declared categorical, by name or by index.
    plain = pa.table({"color": pa.array(vals.tolist()), "x": num})
    for spec in (["color"], [0], "color"):
        np.testing.assert_array_equal(fx.Dataset(plain, categorical_features=spec).bins(), expected.bins())
    # Against a reference, string columns it treats as categorical need no declaration.
    np.testing.assert_array_equal(fx.Dataset(plain, reference=expected).bins(), expected.bins())
    # A pandas category with a different category order maps values, not codes.
    reordered = pdf.assign(color=pdf["color"].cat.reorder_categories(["violet", "blue", "green", "red"]))
    np.testing.assert_array_equal(fx.Dataset(reordered, reference=expected).bins(), expected.bins())


def test_integer_categories_numpy_and_pandas_agree(rng):
    n = 2_000
    codes = rng.integers(0, 6, size=n).astype(np.float64)
    codes[rng.random(n) < 0.05] = np.nan
    x = np.column_stack([codes, rng.normal(size=n)])
    a = fx.Dataset(x, categorical_features=[0])
    pdf = pd.DataFrame({"Column_0": pd.Categorical(pd.array(np.where(np.isnan(codes), None, codes), dtype="Int64")), "Column_1": x[:, 1]})
    b = fx.Dataset(pdf)
    np.testing.assert_array_equal(a.bins(), b.bins())
    missing_bin = a.feature_info(0)["missing_bin"]
    assert (a.bins()[np.isnan(codes), 0] == missing_bin).all()


def test_numpy_int_and_bool_are_widened(rng):
    xi = rng.integers(-5, 5, size=(500, 3))
    np.testing.assert_array_equal(fx.Dataset(xi).bins(), fx.Dataset(xi.astype(np.float64)).bins())
    xb = rng.random((500, 2)) < 0.5
    np.testing.assert_array_equal(fx.Dataset(xb).bins(), xb.astype(np.uint8))


def test_labels_and_weights_from_series(rng):
    n = 400
    x = rng.normal(size=(n, 2))
    y = rng.normal(size=n)
    w = rng.random(n)
    for ly, lw in ((y, w), (pd.Series(y), pd.Series(w)), (pl.Series(y), pl.Series(w)), (list(y), list(w)), (pa.array(y), pa.array(w))):
        ds = fx.Dataset(x, label=ly, weight=lw)
        np.testing.assert_array_equal(ds.get_label(), y)
        np.testing.assert_array_equal(ds.get_weight(), w)
    assert fx.Dataset(x).get_label() is None


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_bins_do_not_depend_on_thread_count(rng, threads):
    x = numeric_frame(rng, n=20_000)
    base = fx.Dataset(x, num_threads=1, params={"bin_construct_sample_cnt": 5_000})
    other = fx.Dataset(x, num_threads=threads, params={"bin_construct_sample_cnt": 5_000})
    np.testing.assert_array_equal(other.bins(), base.bins())
    for j in range(x.shape[1]):
        np.testing.assert_array_equal(other.feature_info(j).get("upper_bounds"), base.feature_info(j).get("upper_bounds"))
