"""XGBoost models imported into ferrox predict what XGBoost predicts."""

import numpy as np
import pytest
import xgboost as xgb

import ferrox as fx
from ferrox import ModelIntegrityError


def data(rng, n=5_000, nf=6, nan=0.1):
    X = rng.normal(size=(n, nf))
    X[rng.random(X.shape) < nan] = np.nan
    z = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) ** 2 + 0.3 * rng.normal(size=n)
    return X, z


CASES = [
    ("binary:logistic", lambda z: (z > 1).astype(float), {}),
    ("reg:squarederror", lambda z: z, {}),
    ("multi:softprob", lambda z: np.digitize(z, [0.5, 1.5]).astype(float), {"num_class": 3}),
    ("count:poisson", lambda z: np.floor(np.exp(z / 3)), {}),
    ("reg:absoluteerror", lambda z: z, {}),
]


@pytest.mark.parametrize("objective, make_label, extra", CASES, ids=[c[0] for c in CASES])
def test_predictions_equal_xgboost(rng, objective, make_label, extra):
    X, z = data(rng)
    y = make_label(z)
    params = {"objective": objective, "tree_method": "hist", "max_depth": 6, "eta": 0.3, "nthread": 2, **extra}
    bst = xgb.train(params, xgb.DMatrix(X, label=y), 60)
    ours = fx.Booster.from_xgboost(bst)
    Xt, _ = data(rng, n=20_000)
    for inp in (Xt, Xt.astype(np.float32)):
        theirs = bst.inplace_predict(inp, predict_type="margin")
        ours_raw = ours.predict(inp, raw_score=True)
        np.testing.assert_allclose(ours_raw, theirs, rtol=0, atol=1e-6)
        np.testing.assert_allclose(ours.predict(inp), bst.inplace_predict(inp), rtol=1e-5, atol=1e-6)


def test_categorical_and_formats(rng, tmp_path):
    X, z = data(rng)
    c = rng.integers(0, 12, size=len(X)).astype(float)
    numeric = np.column_stack([X, c])
    types = ["q"] * X.shape[1] + ["c"]
    y = z + np.isin(c, [2, 5, 7]) * 2.0
    train = xgb.DMatrix(numeric, label=y, feature_types=types, enable_categorical=True)
    bst = xgb.train({"tree_method": "hist", "max_cat_to_onehot": 1, "max_depth": 5}, train, 40)
    test = numeric.copy()
    test[:30, -1] = np.nan  # missing: the node's default direction
    expect = bst.predict(xgb.DMatrix(test, feature_types=types, enable_categorical=True))
    for src in (bst, bytes(bst.save_raw("ubj")), bytes(bst.save_raw("json"))):
        ours = fx.Booster.from_xgboost(src)
        assert any(n.get("cat_inverted") for t in ours.dump_model()["trees"] for n in t["nodes"]), "no categorical split"
        np.testing.assert_allclose(ours.predict(test), expect, rtol=0, atol=1e-5)
    path = tmp_path / "m.json"
    bst.save_model(str(path))
    np.testing.assert_allclose(fx.Booster.from_xgboost(path).predict(test), expect, rtol=0, atol=1e-5)


def test_shap_equals_xgboost_contribs(rng):
    X, z = data(rng, n=3_000)
    bst = xgb.train({"tree_method": "hist", "max_depth": 4}, xgb.DMatrix(X, label=z), 20)
    ours = fx.Booster.from_xgboost(bst)
    Xt, _ = data(rng, n=300)
    theirs = bst.predict(xgb.DMatrix(Xt), pred_contribs=True)
    np.testing.assert_allclose(ours.predict_contrib(Xt), theirs, rtol=1e-4, atol=1e-4)


def test_corrupted_models_are_refused(rng):
    X, z = data(rng, n=500)
    raw = bytes(xgb.train({"max_depth": 3}, xgb.DMatrix(X, label=z), 3).save_raw("json"))
    for broken in (raw[: len(raw) // 2], raw.replace(b'"split_indices":[', b'"split_indices":[999,', 1), b"{}", b"\x00\x01"):
        with pytest.raises(ModelIntegrityError):
            fx.Booster.from_xgboost(broken)
