"""LightGBM models imported into ferrox predict exactly what LightGBM predicts."""

import lightgbm as lgb
import numpy as np
import pytest

import ferrox as fx
from ferrox import ModelIntegrityError


def data(rng, n=6_000, nf=6, nan=0.1, zeros=0.0):
    X = rng.normal(size=(n, nf))
    if zeros:
        X[rng.random(X.shape) < zeros] = 0.0
    X[rng.random(X.shape) < nan] = np.nan
    z = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) ** 2 + 0.3 * rng.normal(size=n)
    return X, z


CASES = [
    ({"objective": "binary"}, lambda z: (z > 1).astype(float)),
    ({"objective": "regression"}, lambda z: z),
    ({"objective": "multiclass", "num_class": 3}, lambda z: np.digitize(z, [0.5, 1.5]).astype(float)),
    ({"objective": "multiclassova", "num_class": 3}, lambda z: np.digitize(z, [0.5, 1.5]).astype(float)),
    ({"objective": "poisson"}, lambda z: np.floor(np.exp(z / 3))),
    ({"objective": "cross_entropy"}, lambda z: 1 / (1 + np.exp(-z))),
    ({"objective": "regression", "zero_as_missing": True}, lambda z: z),
    ({"objective": "regression", "use_missing": False}, lambda z: z),
    ({"objective": "binary", "boosting": "rf", "bagging_fraction": 0.7, "bagging_freq": 1}, lambda z: (z > 1).astype(float)),
]


@pytest.mark.parametrize("params, make_label", CASES, ids=[str(c[0]) for c in CASES])
def test_predictions_equal_lightgbm(rng, params, make_label):
    X, z = data(rng, zeros=0.1 if params.get("zero_as_missing") else 0.0)
    y = make_label(z)
    model = lgb.train({**params, "verbose": -1, "num_leaves": 31}, lgb.Dataset(X, label=y), 40)
    ours = fx.Booster.from_lightgbm(model)
    Xt, _ = data(rng, n=20_000, zeros=0.1)
    for inp in (Xt, Xt.astype(np.float32)):
        for raw in (False, True):
            np.testing.assert_allclose(ours.predict(inp, raw_score=raw), model.predict(inp, raw_score=raw), rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.predict(Xt, num_iteration=7), model.predict(Xt, num_iteration=7), rtol=0, atol=1e-9)


def test_categorical_splits_equal_lightgbm(rng):
    X, z = data(rng)
    X[:, 5] = rng.integers(0, 40, size=len(X))
    X[rng.random(len(X)) < 0.05, 5] = np.nan
    y = z + np.isin(X[:, 5], [3, 7, 11, 30]) * 2.0
    model = lgb.train({"verbose": -1, "max_cat_to_onehot": 4}, lgb.Dataset(X, label=y, categorical_feature=[5]), 30)
    text = model.model_to_string()
    assert any(line.startswith("num_cat=") and line != "num_cat=0" for line in text.splitlines()), "no categorical split"

    ours = fx.Booster.from_lightgbm(model)
    Xt = X.copy()
    Xt[:50, 5] = -3  # negative categories go right, as in LightGBM
    Xt[50:100, 5] = 1000  # unseen
    np.testing.assert_allclose(ours.predict(Xt), model.predict(Xt), rtol=0, atol=1e-9)


def test_sources_files_and_round_trip(rng, tmp_path):
    X, z = data(rng, n=2_000)
    model = lgb.train({"verbose": -1}, lgb.Dataset(X, label=z), 10)
    path = tmp_path / "model.txt"
    model.save_model(str(path))
    expect = model.predict(X)
    for src in (model, model.model_to_string(), str(path), path):
        np.testing.assert_allclose(fx.Booster.from_lightgbm(src).predict(X), expect, rtol=0, atol=1e-9)
    ours = fx.Booster.from_lightgbm(model)
    assert ours.feature_name() == model.feature_name()
    np.testing.assert_array_equal(fx.Booster.from_bytes(ours.to_bytes()).predict(X), ours.predict(X))
    np.testing.assert_array_equal(ours.feature_importance(), model.feature_importance())


def test_corrupted_model_text_is_refused(rng):
    X, z = data(rng, n=1_000)
    text = lgb.train({"verbose": -1}, lgb.Dataset(X, label=z), 3).model_to_string()
    broken = [
        text[: len(text) // 2],
        text.replace("split_feature=", "split_feature=99 ", 1),
        text.replace("left_child=", "left_child=-77 ", 1),
        text.replace("max_feature_idx=5", "max_feature_idx=-2"),
        "hello",
    ]
    for b in broken:
        with pytest.raises(ModelIntegrityError):
            fx.Booster.from_lightgbm(b if b.startswith("tree\n") else "tree\n" + b)


@pytest.mark.parametrize("objective", ["regression", "binary", "multiclass"])
def test_shap_equals_lightgbm_pred_contrib(rng, objective):
    X, z = data(rng, n=4_000)
    X[:, 4] = rng.integers(0, 10, size=len(X))
    y = {"regression": z, "binary": (z > 1).astype(float), "multiclass": np.digitize(z, [0.5, 1.5]).astype(float)}[objective]
    params = {"objective": objective, "verbose": -1, "num_leaves": 15}
    if objective == "multiclass":
        params["num_class"] = 3
    model = lgb.train(params, lgb.Dataset(X, label=y, categorical_feature=[4]), 20)
    ours = fx.Booster.from_lightgbm(model)
    Xt, _ = data(rng, n=500)
    Xt[:, 4] = rng.integers(0, 12, size=len(Xt))
    phi = ours.predict_contrib(Xt)
    theirs = model.predict(Xt, pred_contrib=True)
    np.testing.assert_allclose(phi, theirs, rtol=0, atol=1e-9)
    k = 3 if objective == "multiclass" else 1
    sums = phi.reshape(len(Xt), k, -1).sum(axis=2)
    np.testing.assert_allclose(sums, ours.predict(Xt, raw_score=True).reshape(len(Xt), k), rtol=0, atol=1e-9)


@pytest.mark.parametrize("leaves", [31, 60])
def test_every_memory_layout_and_tree_count_predicts_alike(rng, leaves):
    # Batches take the mask-table path (up to 64 leaves) reading C- or F-ordered float64 in place, a
    # copied block for other inputs, and walk the trees past the last whole table group.
    X, z = data(rng, n=2_000, nf=8)
    model = lgb.train({"objective": "regression", "verbose": -1, "num_leaves": leaves, "min_data_in_leaf": 3, "num_threads": 1}, lgb.Dataset(X, label=z), 150)
    ours = fx.Booster.from_lightgbm(model)
    Xt, _ = data(rng, n=3_000, nf=8, zeros=0.05)
    Xt[rng.random(Xt.shape) < 0.01] = np.inf
    wide = np.hstack([Xt, Xt])[:, ::2]  # strided columns
    for n_iter in (None, 129, 37):
        want = model.predict(Xt, raw_score=True, num_iteration=n_iter)
        for inp in (Xt, np.asfortranarray(Xt), wide, Xt.astype(np.float32).astype(np.float64), Xt[:777]):
            expect = want if len(inp) == len(Xt) else want[: len(inp)]
            if inp.dtype == np.float64 and not np.array_equal(inp, Xt[: len(inp)], equal_nan=True):
                expect = model.predict(inp, raw_score=True, num_iteration=n_iter)
            np.testing.assert_allclose(ours.predict(inp, raw_score=True, num_iteration=n_iter), expect, rtol=0, atol=1e-9)
        # A single row equals its row in a batch exactly.
        for r in (0, 5, 2999):
            assert ours.predict(Xt[r : r + 1], raw_score=True, num_iteration=n_iter)[0] == ours.predict(Xt, raw_score=True, num_iteration=n_iter)[r]


def test_pandas_categorical_columns_map_as_lightgbm_maps_them(rng):
    # LightGBM codes a pandas categorical column by the position of each value in the training
    # categories (stored in the model); the imported model must read the same frame the same way,
    # whatever the category order, unseen values and missing values of the new frame.
    import pandas as pd

    n = 4_000
    df = pd.DataFrame({
        "a": rng.normal(size=n),
        "c": pd.Categorical(rng.choice(["x", "y", "z", "w"], n)),
        "d": pd.Categorical(rng.choice([10, 20, 30], n)),
    })
    y = (df.a + 2 * (df.c == "x") - (df.d == 20) + 0.3 * rng.normal(size=n) > 0.5).astype(float)
    model = lgb.train({"objective": "binary", "verbose": -1, "min_data_per_group": 5, "cat_smooth": 1, "num_threads": 1},
                      lgb.Dataset(df, label=y), 30)
    ours = fx.Booster.from_lightgbm(model)
    m = 2_000
    test = pd.DataFrame({
        "a": rng.normal(size=m),
        "c": pd.Categorical(rng.choice(["z", "x", "v", "w", "y"], m), categories=["z", "y", "x", "w", "v"]),
        "d": pd.Categorical(rng.choice([30, 10, 20], m)),
    })
    test.loc[rng.random(m) < 0.05, "c"] = np.nan
    np.testing.assert_allclose(ours.predict(test, raw_score=True), model.predict(test, raw_score=True), rtol=0, atol=1e-9)
    again = fx.Booster.from_bytes(ours.to_bytes())
    np.testing.assert_array_equal(again.predict(test), ours.predict(test))
