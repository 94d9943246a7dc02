"""Every forest shape the compiled predictor evaluates differently predicts bit for bit what the
library that trained it predicts: trees of up to 32 leaves (32-bit mask tables), up to 64 (vector walks,
or 64-bit masks with categorical splits or other missing-value rules), deeper ones (vector walks; row
walks with categories), zero-as-missing, many trees; whole batches, odd-sized ones, Fortran order and
single rows."""

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb

import ferrox as fx


def data(rng, n, nf=10, nan=0.02):
    X = rng.normal(size=(n, nf))
    X[rng.random(X.shape) < nan] = np.nan
    z = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) ** 2 - np.nan_to_num(X[:, 2]) * np.nan_to_num(X[:, 3])
    return X, z


def assert_batches_and_rows_equal(ours, want, X):
    """Raw scores of the whole batch, of an odd-sized part, and of single rows equal `want` exactly."""
    got = ours.predict(X, raw_score=True)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(ours.predict(X[:333], raw_score=True), want[:333])
    np.testing.assert_array_equal(ours.predict(np.asfortranarray(X), raw_score=True), want)
    for r in (0, 7, len(X) - 1):
        np.testing.assert_array_equal(ours.predict(X[r : r + 1], raw_score=True), want[r : r + 1])


XGB_SHAPES = [
    ({}, 60),  # the defaults: max_depth 6, up to 64 leaves
    ({"max_depth": 7}, 40),  # up to 128
    ({"max_depth": 8}, 40),  # up to 256
    ({"max_depth": 10}, 15),  # beyond 256: walked
    ({"grow_policy": "lossguide", "max_depth": 0, "max_leaves": 200}, 30),
]


@pytest.mark.parametrize("params, rounds", XGB_SHAPES, ids=[str(p) for p, _ in XGB_SHAPES])
def test_xgboost_shapes_predict_exactly_as_xgboost(rng, params, rounds):
    X, z = data(rng, 12_000)
    y = (z + 0.3 * rng.normal(size=len(z)) > 1).astype(float)
    bst = xgb.train({"objective": "binary:logistic", "tree_method": "hist", "nthread": 2, **params}, xgb.DMatrix(X, label=y), rounds)
    leaves = max(t.count("leaf=") for t in bst.get_dump())
    expect_deep = params.get("max_depth", 6) >= 7 or "max_leaves" in params
    assert leaves > 64 or not expect_deep, f"the trees did not grow deep ({leaves} leaves)"
    ours = fx.Booster.from_xgboost(bst)
    Xt, _ = data(rng, 4_000)
    for inp in (Xt, Xt.astype(np.float32)):
        want = bst.inplace_predict(inp, predict_type="margin").astype(np.float64)
        assert_batches_and_rows_equal(ours, want, inp.astype(np.float64))


def test_xgboost_categorical_shapes_predict_exactly_as_xgboost(rng):
    X, z = data(rng, 8_000)
    c = rng.integers(0, 30, size=len(X)).astype(float)
    types = ["q"] * X.shape[1] + ["c"]
    numeric = np.column_stack([X, c])
    y = z + np.isin(c, [2, 5, 7, 20]) * 2.0
    for depth in (4, 8):
        bst = xgb.train({"tree_method": "hist", "max_cat_to_onehot": 1, "max_depth": depth, "nthread": 2},
                        xgb.DMatrix(numeric, label=y, feature_types=types, enable_categorical=True), 30)
        ours = fx.Booster.from_xgboost(bst)
        test = np.column_stack([data(rng, 3_000)[0], rng.integers(0, 34, size=3_000).astype(float)])
        test[:40, -1] = np.nan
        want = bst.inplace_predict(test, predict_type="margin").astype(np.float64)
        assert_batches_and_rows_equal(ours, want, test)


LGB_SHAPES = [(31, 100, False), (63, 50, False), (127, 40, False), (255, 40, False), (600, 10, False),
              (31, 60, True), (255, 30, True), (31, 1000, False)]


@pytest.mark.parametrize("leaves, rounds, cats", LGB_SHAPES, ids=[f"{l}-leaves-{r}-trees{'-cat' if c else ''}" for l, r, c in LGB_SHAPES])
def test_lightgbm_shapes_predict_exactly_as_lightgbm(rng, leaves, rounds, cats):
    n = 20_000 if leaves > 255 else 6_000 if rounds > 100 else 10_000
    X, z = data(rng, n)
    cat_cols = [7, 8, 9] if cats else []
    for j, k in zip(cat_cols, [6, 25, 90]):
        X[:, j] = rng.integers(0, k, size=n)
        X[rng.random(n) < 0.02, j] = np.nan
    y = z + (np.isin(X[:, 7], [1, 4]) + np.isin(X[:, 8] % 5, [2])) * 1.5 if cats else z
    params = {"objective": "regression", "num_leaves": leaves, "min_data_in_leaf": 3, "verbose": -1, "num_threads": 2,
              "max_cat_to_onehot": 4, "zero_as_missing": leaves == 127}
    model = lgb.train(params, lgb.Dataset(X, label=y, categorical_feature=cat_cols or "auto"), rounds)
    if cats:
        assert any(line.startswith("num_cat=") and line != "num_cat=0" for line in model.model_to_string().splitlines())
    ours = fx.Booster.from_lightgbm(model)
    Xt, _ = data(rng, 3_000)
    Xt[rng.random(Xt.shape) < 0.03] = 0.0
    for j, k in zip(cat_cols, [6, 25, 90]):
        Xt[:, j] = rng.integers(-1, k + 3, size=len(Xt))
        Xt[rng.random(len(Xt)) < 0.02, j] = np.nan
    assert_batches_and_rows_equal(ours, model.predict(Xt, raw_score=True), Xt)
    k = rounds // 3
    np.testing.assert_array_equal(ours.predict(Xt, raw_score=True, num_iteration=k), model.predict(Xt, raw_score=True, num_iteration=k))
