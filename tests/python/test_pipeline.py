"""The serialisable pipeline: fitted transforms + linear model in one artifact, predicting in Rust."""

import pickle

import numpy as np
import pytest
import sklearn.impute as ski
import sklearn.linear_model as skl
import sklearn.pipeline as skpipe
import sklearn.preprocessing as skp

import ferrox as fx
import ferrox.linear_model as fxl
import ferrox.preprocessing as fxp
from ferrox.pipeline import Pipeline


def data(rng, n=1500, m=6):
    X = rng.lognormal(size=(n, m))
    X[rng.random(X.shape) < 0.05] = np.nan
    y = np.nan_to_num(X) @ rng.normal(size=m) + rng.normal(size=n)
    return X, y


@pytest.mark.parametrize("scaler", ["standard", "minmax", "robust", "quantile"])
def test_pipeline_matches_sklearn_and_round_trips(rng, tmp_path, scaler):
    X, y = data(rng)
    ours_s, theirs_s = {
        "standard": (fxp.StandardScaler(), skp.StandardScaler()),
        "minmax": (fxp.MinMaxScaler(clip=True), skp.MinMaxScaler(clip=True)),
        "robust": (fxp.RobustScaler(), skp.RobustScaler()),
        "quantile": (fxp.QuantileTransformer(n_quantiles=100), skp.QuantileTransformer(n_quantiles=100)),
    }[scaler]
    ours = Pipeline([("imp", fxp.SimpleImputer(strategy="median", add_indicator=True)), ("s", ours_s), ("m", fxl.Ridge(alpha=0.5))])
    theirs = skpipe.Pipeline(
        [("imp", ski.SimpleImputer(strategy="median", add_indicator=True)), ("s", theirs_s), ("m", skl.Ridge(alpha=0.5))]
    )
    ours.fit(X, y)
    theirs.fit(X, y)
    Z, _ = data(rng, n=300)
    np.testing.assert_allclose(ours.predict(Z), theirs.predict(Z), rtol=1e-6, atol=1e-8)
    path = tmp_path / "pipe.frx"
    ours.save(path)
    loaded = Pipeline.load(path)
    np.testing.assert_array_equal(loaded.predict(Z), ours.predict(Z))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(ours)).predict(Z), ours.predict(Z))
    blob = bytearray(ours.to_bytes())
    blob[len(blob) // 2] ^= 0x01
    with pytest.raises(fx.ModelIntegrityError):
        Pipeline.from_bytes(bytes(blob))


def test_pipeline_classifier_probabilities(rng):
    X, y = data(rng)
    labels = np.where(y > np.median(y), "hi", "lo")
    ours = Pipeline([("imp", fxp.SimpleImputer()), ("s", fxp.StandardScaler()), ("m", fxl.LogisticRegression(tol=1e-8))])
    theirs = skpipe.make_pipeline(ski.SimpleImputer(), skp.StandardScaler(), skl.LogisticRegression(tol=1e-8))
    ours.fit(X, labels)
    theirs.fit(X, labels)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-5)
    again = Pipeline.from_bytes(ours.to_bytes())
    assert list(again.predict(X)) == list(ours.predict(X))
    with pytest.raises(fx.DataError, match="expecting 6 features"):
        again.predict(X[:, :2])


def test_pipeline_rejects_unsupported_steps(rng):
    X, y = data(rng, n=50)
    with pytest.raises(fx.ParameterError, match="cannot be compiled"):
        Pipeline([("enc", skp.StandardScaler()), ("m", fxl.Ridge())]).fit(np.nan_to_num(X), y)
    # KBinsDiscretizer is compiled now (it was not before the deployable pipeline).
    pipe = Pipeline([("enc", fxp.KBinsDiscretizer(encode="ordinal")), ("m", fxl.Ridge())]).fit(np.nan_to_num(X), y)
    steps = pipe.steps_
    expected = steps[1][1].predict(steps[0][1].transform(np.nan_to_num(X)))
    np.testing.assert_array_equal(pipe.predict(np.nan_to_num(X)), expected)


@pytest.mark.parametrize("final", ["Ridge", "LogisticRegression"])
def test_pipeline_passes_check_estimator(final):
    import warnings

    from sklearn.utils.estimator_checks import check_estimator

    from ferrox import linear_model as fxl
    from ferrox.pipeline import Pipeline
    from ferrox.preprocessing import StandardScaler

    pipe = Pipeline([("scale", StandardScaler()), ("model", getattr(fxl, final)())])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(pipe, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert failed == []
    assert hasattr(pipe, "predict_proba") == (final == "LogisticRegression")
