"""GBDTClassifier / GBDTRegressor / GBDTRanker: scikit-learn conformance and parity with LightGBM's sklearn API."""

import pickle
import warnings

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

import ferrox as fx


@pytest.mark.parametrize("cls", [fx.GBDTRegressor, fx.GBDTClassifier, fx.GBDTRanker], ids=lambda c: c.__name__)
def test_check_estimator(cls):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(cls(), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert failed == []


def problem(rng, n=6_000):
    X = rng.normal(size=(n, 6))
    X[rng.random(X.shape) < 0.05] = np.nan
    z = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) ** 2 + 0.4 * rng.normal(size=n)
    return X, z


def test_classifier_matches_lgbm(rng):
    X, z = problem(rng)
    labels = np.array(["low", "mid", "high"])[np.digitize(z, [0.3, 1.5])]
    tr, te = slice(0, 4_500), slice(4_500, None)
    ours = fx.GBDTClassifier(n_estimators=80, class_weight="balanced", random_state=1).fit(X[tr], labels[tr])
    theirs = lgb.LGBMClassifier(n_estimators=80, class_weight="balanced", random_state=1, verbose=-1).fit(X[tr], labels[tr])
    assert ours.classes_.tolist() == theirs.classes_.tolist() == ["high", "low", "mid"]
    proba = ours.predict_proba(X[te])
    assert proba.shape == (1_500, 3) and np.allclose(proba.sum(axis=1), 1)
    assert ours.score(X[te], labels[te]) >= theirs.score(X[te], labels[te]) - 0.02
    binary = z > 1
    b = fx.GBDTClassifier(n_estimators=50).fit(X[tr], binary[tr])
    assert b.predict_proba(X[te]).shape == (1_500, 2) and b.predict(X[te]).dtype == bool


def test_regressor_early_stopping_and_attributes(rng):
    X, z = problem(rng)
    tr, va = slice(0, 4_000), slice(4_000, None)
    m = fx.GBDTRegressor(n_estimators=2_000, learning_rate=0.2).fit(
        X[tr], z[tr], eval_set=[(X[va], z[va])], eval_metric="l1", callbacks=[fx.early_stopping(10, verbose=False)]
    )
    assert 0 < m.best_iteration_ < 2_000
    assert set(m.evals_result_["valid_0"]) == {"l1"}
    theirs = lgb.LGBMRegressor(n_estimators=m.best_iteration_, learning_rate=0.2, verbose=-1).fit(X[tr], z[tr])
    assert m.score(X[va], z[va]) >= theirs.score(X[va], z[va]) - 0.02
    assert m.feature_importances_.shape == (6,) and m.n_features_in_ == 6
    assert m.predict(X[:3], pred_contrib=True).shape == (3, 7)


def test_tables_keep_names_and_categories(rng):
    X, z = problem(rng, n=3_000)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    frame["shop"] = pd.Categorical(rng.choice(["a", "b", "c", "d"], size=len(frame)))
    y = z + frame["shop"].isin(["b", "d"]).to_numpy() * 3
    m = fx.GBDTRegressor(n_estimators=40).fit(frame, y)
    assert m.feature_names_in_.tolist() == list(frame.columns)
    assert m.booster_.feature_importance()[-1] > 0
    assert m.score(frame, y) > 0.9
    with pytest.raises(ValueError, match="feature names should match"):
        m.predict(frame.rename(columns={"f0": "other"}))


def test_pickle_clone_and_sklearn_tools(rng):
    X, z = problem(rng, n=2_000)
    # Extra keyword arguments are training parameters, kept through get_params/clone as LightGBM does.
    m = fx.GBDTRegressor(n_estimators=30, num_leaves=7, lambda_l2=0.5).set_params(min_child_samples=10, max_delta_step=2.0)
    assert m.get_params()["min_child_samples"] == 10 and m.get_params()["lambda_l2"] == 0.5
    assert clone(m).get_params() == m.get_params()
    fitted = m.fit(X, z)
    assert fitted.booster_.params["max_delta_step"] == 2.0
    with pytest.raises(fx.ParameterError, match="did you mean"):
        fx.GBDTRegressor(n_estimators=5, lamda_l2=1.0).fit(X, z)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(X), fitted.predict(X))
    pipe = make_pipeline(StandardScaler(), fx.GBDTRegressor(n_estimators=20))
    assert cross_val_score(pipe, np.nan_to_num(X), z, cv=3).mean() > 0.5
    grid = GridSearchCV(fx.GBDTClassifier(n_estimators=20), {"num_leaves": [3, 15]}, cv=3).fit(X, z > 1)
    assert grid.best_params_["num_leaves"] in (3, 15)


def test_ranker_matches_lgbm(rng):
    sizes = rng.integers(5, 25, size=200)
    n = int(sizes.sum())
    X = rng.normal(size=(n, 5))
    rel = np.clip(np.round(X[:, 0] + 0.5 * X[:, 1] + 0.5 * rng.normal(size=n) + 1), 0, 4)
    cut = int(sizes[:150].sum())
    kw = dict(n_estimators=40, min_child_samples=5)
    ours = fx.GBDTRanker(**kw).fit(X[:cut], rel[:cut], group=sizes[:150], eval_set=[(X[cut:], rel[cut:])], eval_group=[sizes[150:]], eval_at=[5])
    theirs = lgb.LGBMRanker(verbose=-1, **kw).fit(X[:cut], rel[:cut], group=sizes[:150], eval_set=[(X[cut:], rel[cut:])], eval_group=[sizes[150:]], eval_at=[5])
    assert ours.evals_result_["valid_0"]["ndcg@5"][-1] >= theirs.evals_result_["valid_0"]["ndcg@5"][-1] - 0.03
    with pytest.raises(fx.DataError, match="group"):
        fx.GBDTRanker().fit(X, rel, group=[5, 7])


def test_estimators_round_trip_through_the_artifact_and_mlflow(rng, tmp_path):
    import ferrox.mlflow as fxm

    X, z = problem(rng, n=2_000)
    labels = np.where(z > 1, "late", "on time")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    clf = fx.GBDTClassifier(n_estimators=20, num_leaves=7).fit(frame, labels)
    again = fx.GBDTClassifier.from_bytes(clf.to_bytes())
    np.testing.assert_array_equal(again.predict_proba(frame), clf.predict_proba(frame))
    assert again.predict(frame[:5]).tolist() == clf.predict(frame[:5]).tolist()
    assert again.get_params() == clf.get_params() and again.feature_names_in_.tolist() == list(frame.columns)
    blob = bytearray(clf.to_bytes())
    blob[-10] ^= 1
    with pytest.raises(fx.ModelIntegrityError):
        fx.GBDTClassifier.from_bytes(bytes(blob))
    with pytest.raises(fx.DataError, match="not a GBDTRegressor"):
        fx.GBDTRegressor.from_bytes(clf.to_bytes())
    fxm.save_model(clf, str(tmp_path / "model"))
    loaded = fxm.load_model(str(tmp_path / "model"))
    assert type(loaded) is fx.GBDTClassifier
    np.testing.assert_array_equal(loaded.predict_proba(frame), clf.predict_proba(frame))


def test_ranker_without_group_ranks_all_rows_as_one_query(rng):
    X = rng.normal(size=(400, 4))
    rel = np.clip(np.round(X[:, 0] + 1), 0, 3)
    a = fx.GBDTRanker(n_estimators=15, min_child_samples=5).fit(X, rel)
    b = fx.GBDTRanker(n_estimators=15, min_child_samples=5).fit(X, rel, group=[400])
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    c = fx.GBDTRanker(n_estimators=15, min_child_samples=5).fit(X, rel, group=[200, 200])
    assert not np.array_equal(a.predict(X), c.predict(X))
