"""ferrox.preprocessing against scikit-learn on fresh random data with NaN, constant and empty columns."""

import pickle
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
import sklearn.impute as ski
import sklearn.preprocessing as skp
from sklearn.base import clone
from sklearn.utils.estimator_checks import check_estimator

import ferrox as fx
import ferrox.preprocessing as fxp


def data(rng, n=3000, m=6):
    X = rng.lognormal(size=(n, m))
    X[rng.random(X.shape) < 0.03] = np.nan
    X[:, 1] = 2.5  # constant
    X[:, 2] = np.round(X[:, 2] * 3)  # ties
    return X


def close(a, b, rtol=1e-6):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12)


PAIRS = [
    (fxp.StandardScaler, skp.StandardScaler, {}),
    (fxp.StandardScaler, skp.StandardScaler, {"with_mean": False}),
    (fxp.StandardScaler, skp.StandardScaler, {"with_std": False}),
    (fxp.MinMaxScaler, skp.MinMaxScaler, {}),
    (fxp.MinMaxScaler, skp.MinMaxScaler, {"feature_range": (-1, 3), "clip": True}),
    (fxp.RobustScaler, skp.RobustScaler, {}),
    (fxp.RobustScaler, skp.RobustScaler, {"quantile_range": (10.0, 80.0), "unit_variance": True}),
    (fxp.RobustScaler, skp.RobustScaler, {"with_centering": False}),
    (fxp.QuantileTransformer, skp.QuantileTransformer, {"n_quantiles": 200}),
    (fxp.QuantileTransformer, skp.QuantileTransformer, {"output_distribution": "normal"}),
    (fxp.QuantileTransformer, skp.QuantileTransformer, {"subsample": 1000, "random_state": 7}),
    (fxp.SimpleImputer, ski.SimpleImputer, {}),
    (fxp.SimpleImputer, ski.SimpleImputer, {"strategy": "median", "add_indicator": True}),
    (fxp.SimpleImputer, ski.SimpleImputer, {"strategy": "most_frequent"}),
    (fxp.SimpleImputer, ski.SimpleImputer, {"strategy": "constant", "fill_value": -1.0}),
    (fxp.SimpleImputer, ski.SimpleImputer, {"keep_empty_features": True}),
]


@pytest.mark.parametrize("ours,theirs,params", PAIRS, ids=lambda p: getattr(p, "__name__", str(p)))
def test_matches_sklearn(rng, ours, theirs, params):
    X = data(rng)
    X[:, 3] = np.nan  # empty column
    Z = X * rng.uniform(0.5, 1.5, size=X.shape)  # unseen values, beyond the fitted range too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = ours(**params).fit(X)
        b = theirs(**params).fit(X)
        close(a.transform(Z), b.transform(Z))
        close(a.fit_transform(X), b.fit_transform(X))
    assert list(a.get_feature_names_out()) == list(b.get_feature_names_out())
    for attr in ("mean_", "var_", "scale_", "data_min_", "data_max_", "min_", "center_", "quantiles_", "statistics_"):
        if hasattr(b, attr) and getattr(b, attr) is not None:
            close(getattr(a, attr), getattr(b, attr))


@pytest.mark.parametrize("ours,theirs", [(fxp.StandardScaler, skp.StandardScaler), (fxp.MinMaxScaler, skp.MinMaxScaler)])
def test_partial_fit_matches_sklearn(rng, ours, theirs):
    X = data(rng, n=2000)
    a, b = ours(), theirs()
    for k in range(0, 2000, 300):
        a.partial_fit(X[k : k + 300])
        b.partial_fit(X[k : k + 300])
    close(a.transform(X), b.transform(X))
    assert np.array_equal(np.asarray(a.n_samples_seen_), np.asarray(b.n_samples_seen_))


def test_results_do_not_depend_on_threads(rng):
    X = data(rng, n=5000)
    outs = [fxp.QuantileTransformer(output_distribution="normal", n_jobs=t).fit_transform(X) for t in (1, 2, 3)]
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


def test_float32_and_fortran_input(rng):
    X = data(rng).astype(np.float32)
    a = fxp.StandardScaler().fit_transform(np.asfortranarray(X))
    b = skp.StandardScaler().fit_transform(X.astype(np.float64))
    close(a, b)


def test_bad_input_is_a_clear_error(rng):
    X = data(rng)
    X[5, 4] = np.inf
    with pytest.raises(fx.DataError, match=r"infinity.*row 5, column 4"):
        fxp.StandardScaler().fit(X)
    ok = fxp.MinMaxScaler().fit(data(rng))
    with pytest.raises(fx.DataError, match="infinity"):
        ok.transform(X)
    with pytest.raises(fx.DataError, match="non-numeric"):
        fxp.RobustScaler().fit(np.array([["a", "b"], ["c", "d"]], dtype=object))
    with pytest.raises(fx.DataError, match="expecting 6 features"):
        ok.transform(np.zeros((2, 3)))
    with pytest.raises(fx.NotFittedError, match="not fitted"):
        fxp.StandardScaler().transform(X)
    with pytest.raises(fx.ParameterError, match="feature range"):
        fxp.MinMaxScaler(feature_range=(2, 1)).fit(data(rng))
    with pytest.raises(fx.ParameterError, match="quantile range"):
        fxp.RobustScaler(quantile_range=(80, 20)).fit(data(rng))
    with pytest.raises(fx.ParameterError, match="strategy"):
        fxp.SimpleImputer(strategy="mode").fit(data(rng))


def test_constant_column_scales_to_zero_not_nan(rng):
    X = np.full((50, 2), 4.0)
    X[:, 1] = rng.normal(size=50)
    for est in (fxp.StandardScaler(), fxp.RobustScaler()):
        out = est.fit_transform(X)
        assert np.all(out[:, 0] == 0.0)
    assert np.all(fxp.MinMaxScaler().fit_transform(X)[:, 0] == 0.0)


def test_pickle_clone_and_frames(rng):
    X = data(rng, n=200)
    df = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    est = fxp.StandardScaler().fit(df)
    assert list(est.feature_names_in_) == list(df.columns)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.transform(df), est.transform(df))
    assert clone(est).get_params() == est.get_params()
    out = fxp.MinMaxScaler().set_output(transform="pandas").fit_transform(df)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(df.columns)
    out = fxp.MinMaxScaler().set_output(transform="polars").fit(pl.from_pandas(df)).transform(pl.from_pandas(df))
    assert isinstance(out, pl.DataFrame) and out.columns == list(df.columns)


ESTIMATORS = [
    fxp.StandardScaler,
    fxp.MinMaxScaler,
    fxp.RobustScaler,
    fxp.QuantileTransformer,
    fxp.SimpleImputer,
    fxp.OrdinalEncoder,
    fxp.OneHotEncoder,
    fxp.KBinsDiscretizer,
    fxp.TargetEncoder,
]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_check_estimator(cls):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(cls(), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert failed == []
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert skipped <= {"check_array_api_input"}


def cat_frame(rng, n=3000):
    return pd.DataFrame(
        {
            "city": rng.choice(["x", "y", "zz", "é", "B"], n, p=[0.5, 0.3, 0.15, 0.03, 0.02]),
            "k": rng.integers(0, 6, n),
            "f": rng.choice([0.5, 1.5, np.nan, -2.0], n, p=[0.6, 0.3, 0.05, 0.05]),
            "s": rng.choice(["p", "q", None], n, p=[0.7, 0.2, 0.1]),
            "cat": pd.Categorical(rng.choice(["lo", "hi", "mid"], n)),
        }
    )


def same_categories(a, b):
    assert len(a) == len(b)
    for ca, cb in zip(a, b):
        assert [str(v) for v in ca] == [str(v) for v in cb]


@pytest.mark.parametrize(
    "params", [{}, {"handle_unknown": "use_encoded_value", "unknown_value": -1}, {"encoded_missing_value": -7}]
)
def test_ordinal_encoder_matches_sklearn_exactly(rng, params):
    df = cat_frame(rng)
    a, b = fxp.OrdinalEncoder(**params).fit(df), skp.OrdinalEncoder(**params).fit(df)
    same_categories(a.categories_, b.categories_)
    np.testing.assert_array_equal(a.transform(df), b.transform(df))
    for other in (pl.from_pandas(df), df.to_numpy()):
        np.testing.assert_array_equal(fxp.OrdinalEncoder(**params).fit(other).transform(other), b.transform(df))
    # fit_transform reads the data once and gives the same codes and fitted state.
    c = fxp.OrdinalEncoder(**params)
    np.testing.assert_array_equal(c.fit_transform(df), b.fit_transform(df))
    same_categories(c.categories_, b.categories_)
    np.testing.assert_array_equal(c.transform(df), b.transform(df))


ONEHOT = [
    {},
    {"min_frequency": 100},
    {"min_frequency": 0.1, "drop": "if_binary"},
    {"max_categories": 3, "handle_unknown": "infrequent_if_exist"},
    {"drop": "first"},
    {"handle_unknown": "ignore", "max_categories": 2, "drop": "first"},
]


@pytest.mark.parametrize("params", ONEHOT)
def test_onehot_encoder_matches_sklearn_exactly(rng, params):
    df = cat_frame(rng)
    test = cat_frame(rng, n=500)
    if params.get("handle_unknown", "error") != "error":
        test.loc[3, "city"] = "never-seen"
    a = fxp.OneHotEncoder(**params).fit(df)
    b = skp.OneHotEncoder(**params).fit(df)
    same_categories(a.categories_, b.categories_)
    assert list(a.get_feature_names_out()) == list(b.get_feature_names_out())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sa, sb = a.transform(test), b.transform(test)
    assert type(sa) is type(sb) and sa.shape == sb.shape and (sa != sb).nnz == 0
    dense = fxp.OneHotEncoder(sparse_output=False, **params).fit(pl.from_pandas(df)).transform(pl.from_pandas(test))
    np.testing.assert_array_equal(dense, sb.toarray())
    # fit_transform reads the data once and gives the same matrix and fitted state.
    c = fxp.OneHotEncoder(**params)
    fa, fb = c.fit_transform(df), skp.OneHotEncoder(**params).fit_transform(df)
    assert type(fa) is type(fb) and fa.shape == fb.shape and (fa != fb).nnz == 0
    assert list(c.get_feature_names_out()) == list(b.get_feature_names_out())
    np.testing.assert_array_equal(
        fxp.OneHotEncoder(sparse_output=False, **params).fit_transform(pl.from_pandas(df)), fb.toarray()
    )


def test_unknown_category_error_names_column_and_value(rng):
    df = cat_frame(rng, n=100)
    bad = df.copy()
    bad.loc[7, "city"] = "atlantis"
    for enc in (fxp.OrdinalEncoder(), fxp.OneHotEncoder()):
        enc.fit(df)
        with pytest.raises(fx.DataError, match=r"\['atlantis'\] in column 0 \('city'\).*row 7"):
            enc.transform(bad)
    # fit_transform keeps the fit-time parameter checks.
    with pytest.raises(ValueError, match="already used for encoding the seen categories"):
        fxp.OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=0).fit_transform(df)
    with pytest.raises(fx.ParameterError, match="drop"):
        fxp.OneHotEncoder(drop="last").fit_transform(df)


def test_encoder_pickle_and_numeric_input(rng):
    X = rng.integers(0, 4, size=(200, 3))
    enc = fxp.OneHotEncoder(sparse_output=False).fit(X)
    ref = skp.OneHotEncoder(sparse_output=False).fit(X)
    assert list(enc.get_feature_names_out()) == list(ref.get_feature_names_out())
    again = pickle.loads(pickle.dumps(enc))
    np.testing.assert_array_equal(again.transform(X), ref.transform(X))
    with pytest.raises(TypeError, match="uniformly strings or numbers"):
        fxp.OrdinalEncoder().fit(np.array([["a", 1], [2, "b"]], dtype=object))


@pytest.mark.parametrize(
    "params",
    [
        {"strategy": "uniform", "encode": "ordinal"},
        {"encode": "ordinal"},
        {"quantile_method": "linear", "n_bins": 7, "encode": "onehot-dense"},
        {"subsample": 500, "random_state": 0, "encode": "ordinal"},
        {},
    ],
)
def test_kbins_matches_sklearn_exactly(rng, params):
    X = rng.lognormal(size=(3000, 4))
    X[:, 1] = 2.0
    X[:, 2] = rng.integers(0, 3, 3000)
    Z = X * rng.uniform(0.5, 1.5, X.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = fxp.KBinsDiscretizer(**params).fit(X), skp.KBinsDiscretizer(**params).fit(X)
    ta, tb = a.transform(Z), b.transform(Z)
    if hasattr(tb, "toarray"):
        ta, tb = ta.toarray(), tb.toarray()
    np.testing.assert_array_equal(ta, tb)
    assert list(a.n_bins_) == list(b.n_bins_)
    for ea, eb in zip(a.bin_edges_, b.bin_edges_):
        close(ea, eb)
    assert list(a.get_feature_names_out()) == list(b.get_feature_names_out())


@pytest.mark.parametrize("target", ["continuous", "binary", "multiclass"])
@pytest.mark.parametrize("params", [{"random_state": 3}, {"smooth": 2.0, "cv": 3, "random_state": 1}])
def test_target_encoder_cross_fitting_matches_sklearn(rng, target, params):
    df = cat_frame(rng)
    y = {
        "continuous": rng.normal(size=len(df)) + (df.city == "x").to_numpy(),
        "binary": (rng.random(len(df)) < 0.3).astype(int),
        "multiclass": rng.choice(["u", "v", "w"], len(df)),
    }[target]
    test = cat_frame(rng, n=300)
    test.loc[0, "city"] = "unseen"
    a = fxp.TargetEncoder(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        b = skp.TargetEncoder(**params)
        fb = b.fit_transform(df, y)
    close(a.fit_transform(df, y), fb, rtol=1e-9)
    close(a.transform(test), b.transform(test), rtol=1e-9)
    assert a.target_type_ == b.target_type_
    assert list(a.get_feature_names_out()) == list(b.get_feature_names_out())
    again = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(again.transform(test), a.transform(test))


def test_target_encoder_rejects_nan_target(rng):
    df = cat_frame(rng, n=50)
    y = rng.normal(size=50)
    y[4] = np.nan
    with pytest.raises(fx.DataError, match="NaN.*row 4"):
        fxp.TargetEncoder().fit(df, y)


@pytest.mark.parametrize("remainder", ["drop", "passthrough"])
def test_column_transformer_matches_sklearn(rng, remainder):
    from sklearn.compose import ColumnTransformer as SkColumnTransformer

    df = cat_frame(rng, n=800)
    df["x"] = rng.lognormal(size=len(df))
    a = fxp.ColumnTransformer(
        [("num", fxp.StandardScaler(), ["x", "f"]), ("cat", fxp.OneHotEncoder(handle_unknown="ignore"), ["city", "s"])],
        remainder=remainder,
    )
    b = SkColumnTransformer(
        [("num", skp.StandardScaler(), ["x", "f"]), ("cat", skp.OneHotEncoder(handle_unknown="ignore"), ["city", "s"])],
        remainder=remainder,
    )
    df = df.drop(columns=["cat"])
    ta, tb = a.fit_transform(df), b.fit_transform(df)
    dense = lambda t: t.toarray() if hasattr(t, "toarray") else np.asarray(t, dtype=float)  # noqa: E731
    close(dense(ta), dense(tb))
    close(dense(a.transform(df)), dense(b.transform(df)))
    assert list(a.get_feature_names_out()) == list(b.get_feature_names_out())
    assert a.get_params()["num__with_mean"] is True
    a.set_params(num__with_mean=False)
    assert a.transformers[0][1].with_mean is False


def test_column_transformer_check_estimator():
    est = fxp.ColumnTransformer([("s", fxp.StandardScaler(), [0])], remainder="passthrough")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(est, on_fail=None)
    assert [r["check_name"] for r in results if r["status"] == "failed"] == []


def test_large_outputs_reuse_freed_buffers_and_never_alias_live_ones(rng):
    # 2.1M x 1 float64 = 16.8 MB: large enough for freed outputs to be kept for reuse.
    fx.release_memory()
    X = rng.lognormal(size=(2_100_000, 1))
    X[rng.random(X.shape) < 0.01] = np.nan
    mm = fxp.MinMaxScaler(feature_range=(-2, 5)).fit(X)
    st = fxp.StandardScaler().fit(X)
    want_mm, want_st = skp.MinMaxScaler(feature_range=(-2, 5)).fit_transform(X), skp.StandardScaler().fit_transform(X)
    a = mm.transform(X)
    b = st.transform(X)  # a is alive: b must get memory of its own
    assert not np.shares_memory(a, b)
    a_before = a.copy()
    del a
    assert fx.release_memory() >= X.nbytes  # a's buffer was kept ...
    c = st.transform(X)
    at = c.__array_interface__["data"][0]
    del c
    d = mm.transform(X)  # ... and c's is reused by d, which must hold every new value
    assert d.__array_interface__["data"][0] == at
    close(d, want_mm)
    close(b, want_st)
    close(a_before, want_mm)
    view = d[::2]
    del d
    close(view, want_mm[::2])  # a view keeps its buffer from being reused
    e = st.transform(X)
    assert not np.shares_memory(e, view)
    close(view, want_mm[::2])
    close(e, want_st)
    del view, e
    assert fx.release_memory() >= X.nbytes
    assert fx.release_memory() == 0
