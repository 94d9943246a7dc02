"""The deployable pipeline: string columns in, predictions out, through one Rust path (and one artifact)."""

import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import ferrox as fx
import ferrox.linear_model as fxl
import ferrox.preprocessing as fxp
from ferrox.pipeline import Pipeline


def frame(rng, n=600):
    df = pd.DataFrame({
        "city": rng.choice(["paris", "rome", "oslo", "lima"], size=n).astype(object),
        "color": rng.choice(["red", "green", "blue"], size=n).astype(object),
        "shop": rng.choice(["s1", "s2", "s3", "s4", "s5"], size=n).astype(object),
        "x": rng.normal(size=n),
        "z": rng.lognormal(size=n),
        "w": rng.uniform(0, 10, size=n),
        "k": rng.integers(0, 5, size=n),
    })
    df.loc[rng.random(n) < 0.1, "x"] = np.nan
    df.loc[rng.random(n) < 0.1, "z"] = np.nan
    effect = df["city"].map({"paris": 1.0, "rome": -1.0, "oslo": 0.5, "lima": 0.0}).to_numpy()
    y = effect + np.nan_to_num(df["x"].to_numpy()) + 0.3 * df["w"].to_numpy() + rng.normal(scale=0.3, size=n)
    return df, y


def prep():
    num = fxp.ColumnTransformer([
        ("onehot", fxp.OneHotEncoder(sparse_output=False, handle_unknown="ignore"), ["city"]),
        ("ordinal", fxp.OrdinalEncoder(), ["color"]),
        ("target", fxp.TargetEncoder(random_state=0), ["shop"]),
        ("impute_scale", "passthrough", ["k"]),
        ("bins", fxp.KBinsDiscretizer(n_bins=4, encode="onehot-dense"), ["w"]),
    ], remainder="drop")
    return num


def full_prep():
    import sklearn.pipeline as skpipe

    return fxp.ColumnTransformer([
        ("onehot", fxp.OneHotEncoder(sparse_output=False, handle_unknown="ignore"), ["city"]),
        ("ordinal", fxp.OrdinalEncoder(), ["color"]),
        ("target", fxp.TargetEncoder(random_state=0), ["shop"]),
        ("num", skpipe.Pipeline([("imp", fxp.SimpleImputer(strategy="median")), ("sc", fxp.StandardScaler())]), ["x"]),
        ("q", skpipe.Pipeline([("imp", fxp.SimpleImputer()), ("qt", fxp.QuantileTransformer(n_quantiles=50))]), ["z"]),
        ("bins", fxp.KBinsDiscretizer(n_bins=4, encode="onehot-dense"), ["w"]),
    ], remainder="passthrough")


def step_by_step(pipe, X):
    Xt = X
    for _, est in pipe.steps_[:-1]:
        Xt = est.transform(Xt)
    return Xt


FINALS = ["clf_binary", "clf_multi", "regressor", "booster", "lightgbm", "logistic", "ridge"]


@pytest.mark.parametrize("final", FINALS)
def test_pipeline_equals_step_by_step_and_round_trips(rng, tmp_path, final):
    df, y = frame(rng)
    Z, _ = frame(rng, n=200)
    labels2 = np.where(y > np.median(y), "high", "low").astype(object)
    labels3 = np.asarray(["a", "b", "c"], dtype=object)[np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))]
    params = dict(n_estimators=20, num_leaves=7, min_child_samples=5, verbosity=-1)
    target = y
    if final == "clf_binary":
        model, target = fx.GBDTClassifier(**params), labels2
    elif final == "clf_multi":
        model, target = fx.GBDTClassifier(**params), labels3
    elif final == "regressor":
        model = fx.GBDTRegressor(**params)
    elif final == "logistic":
        model, target = fxl.LogisticRegression(), labels2
    elif final == "ridge":
        model = fxl.Ridge(alpha=0.5)
    else:
        ct = full_prep()
        Xt = ct.fit_transform(df, y)
        if final == "booster":
            model = fx.train({"verbosity": -1, "num_leaves": 7, "min_data_in_leaf": 5}, fx.Dataset(Xt, label=y), 15)
        else:
            lgb = pytest.importorskip("lightgbm")
            booster = lgb.train({"verbosity": -1, "num_leaves": 7, "min_data_in_leaf": 5}, lgb.Dataset(Xt, label=y), 15)
            model = fx.Booster.from_lightgbm(booster)
        pipe = Pipeline([("prep", ct), ("model", model)])
        # The trained booster is kept as it is; fit refits the transforms (same data, same result).
        pipe.fit(df, y)
    if final not in ("booster", "lightgbm"):
        pipe = Pipeline([("prep", full_prep()), ("model", model)], reference_profile=True).fit(df, target)
    fitted_model = pipe.steps_[-1][1]
    Zt = step_by_step(pipe, Z)
    got = pipe.predict(Z)
    np.testing.assert_array_equal(got, fitted_model.predict(Zt))
    if hasattr(fitted_model, "predict_proba"):
        np.testing.assert_allclose(pipe.predict_proba(Z), fitted_model.predict_proba(Zt), rtol=1e-14, atol=1e-15)
    if hasattr(fitted_model, "booster_") or isinstance(fitted_model, fx.Booster):
        contrib = pipe.predict_contrib(Z)
        booster = fitted_model.booster_ if hasattr(fitted_model, "booster_") else fitted_model
        np.testing.assert_array_equal(contrib, booster.predict_contrib(Zt))
    else:
        assert not hasattr(pipe, "predict_contrib")
    # Saved and loaded: bit for bit, as a file, bytes, or a pickle.
    path = tmp_path / "pipe.frx"
    pipe.save(path)
    loaded = Pipeline.load(path)
    np.testing.assert_array_equal(loaded.predict(Z), got)
    np.testing.assert_array_equal(Pipeline.from_bytes(pipe.to_bytes()).decision_function(Z), pipe.decision_function(Z))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(pipe)).predict(Z), got)
    # Column order is free for Arrow input, and a row's prediction does not depend on the batch.
    table = pa.Table.from_pandas(Z[list(Z.columns[::-1])], preserve_index=False)
    np.testing.assert_array_equal(loaded._compiled.predict(table, "predict").ravel() if not isinstance(got[0], str)
                                  else np.asarray(loaded._compiled.predict(table, "predict"), dtype=object), got)
    for i in (0, 7, 199):
        np.testing.assert_array_equal(pipe.predict(Z.iloc[i:i + 1]), got[i:i + 1])
    if final not in ("booster", "lightgbm"):
        assert isinstance(loaded.reference_profile_, fx.drift.ReferenceProfile)
    schema = {c["name"]: c for c in loaded.schema_}
    assert schema["city"]["dtype"] == "string" and schema["city"]["categories"] == ["lima", "oslo", "paris", "rome"]
    assert schema["k"]["dtype"] == "integer" and schema["x"]["dtype"] == "float"
    assert schema["x"]["min"] == np.nanmin(df["x"]) and schema["w"]["max"] == df["w"].max()
    # x and z are imputed; k is passed through: missing is fine only where the final model is a tree model.
    assert schema["x"]["nullable"] and schema["z"]["nullable"]
    assert schema["k"]["nullable"] == (final not in ("logistic", "ridge"))
    # KBinsDiscretizer needs a value.
    assert not schema["w"]["nullable"]


def test_bad_input_is_a_data_error_naming_the_column(rng):
    df, y = frame(rng)
    ct = fxp.ColumnTransformer([
        ("onehot", fxp.OneHotEncoder(sparse_output=False), ["city"]),
        ("num", fxp.StandardScaler(), ["w", "k"]),
    ])
    pipe = Pipeline([("prep", ct), ("m", fxl.Ridge())]).fit(df[["city", "w", "k"]], y)
    good = df[["city", "w", "k"]].iloc[:5].copy()
    d = pipe._compiled
    with pytest.raises(fx.DataError, match="missing column 'k'"):
        d.predict(pa.Table.from_pandas(good[["city", "w"]], preserve_index=False))
    with pytest.raises(fx.DataError, match="column 'extra' is not an input"):
        d.predict(pa.Table.from_pandas(good.assign(extra=1.0), preserve_index=False))
    with pytest.raises(fx.DataError, match="column 'w' expects float values, but got strings"):
        pipe.predict(good.assign(w=["a"] * 5))
    with pytest.raises(fx.DataError, match=r"unknown categories \['tokyo'\].*'city'"):
        pipe.predict(good.assign(city=["tokyo"] * 5))
    with pytest.raises(fx.DataError, match="column 'w' has a missing value .*NaN.* at row 2"):
        pipe.predict(good.assign(w=[1.0, 2.0, np.nan, 4.0, 5.0]))
    with pytest.raises(fx.DataError, match="column 'city' has a missing value"):
        pipe.predict(good.assign(city=["rome", None, "rome", "rome", "rome"]))
    assert [c["nullable"] for c in pipe.schema_] == [False, False, False]
    with pytest.raises(fx.ParameterError, match="does not produce 'contrib'"):
        d.predict(pa.Table.from_pandas(good, preserve_index=False), "contrib")


def test_bare_models_load_as_deployables(rng, tmp_path):
    X = rng.normal(size=(400, 4))
    X[rng.random(X.shape) < 0.05] = np.nan
    y = np.nan_to_num(X) @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(size=400)
    booster = fx.train({"verbosity": -1, "num_leaves": 7}, fx.Dataset(X, label=y), 10)
    booster.save_model(tmp_path / "b.frx")
    d = fx._ferrox.Deployable.load(str(tmp_path / "b.frx"))
    assert [c["name"] for c in d.schema()] == booster.feature_name()
    assert all(c["nullable"] for c in d.schema())
    np.testing.assert_array_equal(d.predict(X)[:, 0], booster.predict(X))
    np.testing.assert_array_equal(d.predict(X, "contrib"), booster.predict_contrib(X))
    labels = np.where(y > 0, 3, 7)
    clf = fx.GBDTClassifier(n_estimators=10, num_leaves=7, verbosity=-1).fit(X, labels)
    d = fx._ferrox.Deployable.from_bytes(clf.to_bytes())
    np.testing.assert_array_equal(d.predict(X)[:, 0], clf.predict(X))
    np.testing.assert_array_equal(d.predict(X, "predict_proba"), clf.predict_proba(X))
    Xf = np.nan_to_num(X)
    lr = fxl.LogisticRegression().fit(Xf, labels)
    lr.save(tmp_path / "lr.frx")
    loaded = Pipeline.load(tmp_path / "lr.frx")
    np.testing.assert_array_equal(loaded.predict(Xf), lr.predict(Xf))
    np.testing.assert_allclose(loaded.predict_proba(Xf), lr.predict_proba(Xf), rtol=1e-14)
    holed = Xf.copy()
    holed[5, 1] = np.nan
    with pytest.raises(fx.DataError, match="column 'f1' has a missing value .* at row 5"):
        loaded.predict(holed)
    ridge = fxl.Ridge().fit(Xf, y)
    np.testing.assert_array_equal(Pipeline.from_bytes(ridge.to_bytes()).predict(Xf), ridge.predict(Xf))


def test_a_changed_byte_is_an_integrity_error(rng, tmp_path):
    df, y = frame(rng, n=200)
    pipe = Pipeline([("prep", full_prep()), ("m", fx.GBDTRegressor(n_estimators=5, verbosity=-1))]).fit(df, y)
    path = tmp_path / "p.frx"
    pipe.save(path)
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x10
    path.write_bytes(bytes(blob))
    with pytest.raises(fx.ModelIntegrityError):
        Pipeline.load(path)
