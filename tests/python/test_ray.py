"""ferrox.ray on a local Ray cluster: distributed training gives fx.train's model bytes, batch
prediction equals Booster.predict, profiles merge to the whole data's."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

ray = pytest.importorskip("ray")

import ferrox as fx  # noqa: E402
from ferrox.exceptions import ParameterError  # noqa: E402


@pytest.fixture(scope="session")
def cluster():
    """One local Ray cluster for the whole session (2 CPUs, as CI has)."""
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def frame(kind: str, n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, list[str]]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"x{j}" for j in range(5)])
    df.loc[rng.random(n) < 0.05, "x2"] = np.nan
    df["cat"] = rng.integers(0, 8, size=n)
    effect = np.array([0.0, 1.5, -1.0, 0.5, 2.0, -2.0, 0.0, 1.0])[df["cat"]]
    z = df.x0 - 0.5 * df.x1**2 + np.nan_to_num(df.x2) + effect + rng.normal(scale=0.5, size=n)
    if kind == "binary":
        df["y"] = (z > 0).astype(float)
    elif kind == "multiclass":
        df["y"] = np.digitize(z, [-1.0, 1.0]).astype(float)
    else:
        df["y"] = z
    return df, [c for c in df.columns if c != "y"]


PARAMS = {
    "binary": {"objective": "binary"},
    "multiclass": {"objective": "multiclass", "num_class": 3},
    "regression": {"objective": "regression"},
}
COMMON = {"verbosity": -1, "num_leaves": 15, "bagging_fraction": 0.7, "bagging_freq": 1, "feature_fraction": 0.8, "seed": 3}


def local_model(df: pd.DataFrame, feats: list[str], params: dict, rounds: int, **kw) -> fx.Booster:
    ds = fx.Dataset(df[feats], label=df.y, categorical_features=["cat"])
    return fx.train(params, ds, rounds, **kw)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_same_model_bytes_for_any_worker_count_and_partitioning(cluster, kind):
    df, feats = frame(kind)
    params = {**PARAMS[kind], **COMMON}
    want = local_model(df, feats, params, 15).to_bytes()
    thirds = [df.iloc[:900], df.iloc[900:2100], df.iloc[2100:]]
    for workers in (1, 2, 3):
        got = fx.ray.train(params, thirds, label="y", categorical_features=["cat"], num_workers=workers, num_boost_round=15)
        assert got.to_bytes() == want, f"{kind}, {workers} workers"
    # Shuffled partitioning: rows dealt at random to the parts; row_id says where each row was.
    perm = np.random.default_rng(7).permutation(len(df))
    shuffled = df.assign(rid=np.arange(len(df))).iloc[perm]
    parts = [shuffled.iloc[i::3] for i in range(3)]
    got = fx.ray.train(params, parts, label="y", row_id="rid", categorical_features=["cat"], num_workers=3, num_boost_round=15)
    assert got.to_bytes() == want, f"{kind}, shuffled"


def test_ray_dataset_input_with_validation_and_early_stopping(cluster):
    df, feats = frame("binary", n=4000, seed=1)
    train, valid = df.iloc[:3000], df.iloc[3000:]
    params = {**PARAMS["binary"], **COMMON, "metric": ["auc", "binary_logloss"], "learning_rate": 0.3}
    ds = fx.Dataset(train[feats], label=train.y, categorical_features=["cat"])
    vs = fx.Dataset(valid[feats], label=valid.y, reference=ds)
    want = fx.train(params, ds, 200, valid_sets=[vs], callbacks=[fx.early_stopping(5, verbose=False)])
    assert 0 < want.best_iteration < 200
    got = fx.ray.train(
        params,
        ray.data.from_pandas(train).repartition(4),
        label="y",
        categorical_features=["cat"],
        num_workers=2,
        num_boost_round=200,
        valid_sets=[valid],
        callbacks=[fx.early_stopping(5, verbose=False)],
    )
    assert got.best_iteration == want.best_iteration
    assert got.best_score == want.best_score
    assert got.to_bytes() == want.to_bytes()


def test_a_killed_worker_is_replaced_and_the_model_is_unchanged(cluster):
    df, feats = frame("binary", n=2000, seed=2)
    params = {**PARAMS["binary"], **COMMON, "num_leaves": 7}
    want = local_model(df, feats, params, 100).to_bytes()
    killed = []

    def kill_one(env):
        if env.iteration == 49:  # after round 50
            names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith("ferrox-train-")]
            victim = sorted(names)[-1]
            ray.kill(ray.get_actor(victim))
            killed.append(victim)

    stats: dict = {}
    got = fx.ray.train(
        params, [df.iloc[:1000], df.iloc[1000:]], label="y", categorical_features=["cat"], num_workers=2,
        num_boost_round=100, callbacks=[kill_one], stats=stats, timeout_s=60,
    )
    assert killed and stats["recovered"] == 1
    assert got.current_iteration() == 100
    assert got.to_bytes() == want


def test_an_unanswering_worker_stops_training_with_a_clear_error(cluster):
    df, _ = frame("binary", n=500)
    with pytest.raises(fx.ray.WorkerLostError, match="did not answer within"):
        fx.ray.train({"verbosity": -1}, [df.iloc[:250], df.iloc[250:]], label="y", num_workers=2, num_boost_round=5, timeout_s=1e-4)


@pytest.mark.parametrize(
    "params, name",
    [({"data_sample_strategy": "goss"}, "GOSS"), ({"objective": "quantile"}, "quantile"), ({"use_quantized_grad": True}, "use_quantized_grad")],
)
def test_options_that_cannot_be_exact_are_refused(cluster, params, name):
    df, _ = frame("regression", n=300)
    with pytest.raises(ParameterError, match=name):
        fx.ray.train({"verbosity": -1, **params}, [df], label="y", num_workers=1, num_boost_round=2)


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_predict_equals_booster_predict_joined_by_key(cluster, kind):
    df, feats = frame(kind, n=5000, seed=4)
    model = local_model(df, feats, {**PARAMS[kind], **COMMON}, 10)
    data = ray.data.from_pandas(df.assign(key=np.arange(len(df)) * 3 + 1)).repartition(5)
    out = fx.ray.predict(model, data, key_columns=["key"], batch_size=700, concurrency=2, num_cpus=0.5).to_pandas()
    out = out.sort_values("key").reset_index(drop=True)
    assert len(out) == len(df)
    np.testing.assert_array_equal(out.key.to_numpy(), np.arange(len(df)) * 3 + 1)
    want = model.predict(df[feats])
    got = out.prediction.to_numpy() if kind == "binary" else out[[f"prediction_{j}" for j in range(3)]].to_numpy()
    np.testing.assert_array_equal(got, want)


def test_predict_a_pipeline(cluster):
    from ferrox.pipeline import Pipeline
    from ferrox.preprocessing import StandardScaler

    df, _ = frame("regression", n=2000, seed=5)
    num = ["x0", "x1", "x3", "x4"]
    pipe = Pipeline([("scale", StandardScaler()), ("model", fx.GBDTRegressor(n_estimators=10, verbose=-1))]).fit(df[num], df.y)
    data = ray.data.from_pandas(df[num].assign(id=np.arange(len(df)))).repartition(3)
    out = fx.ray.predict(pipe, data, key_columns=["id"], concurrency=1, num_cpus=0.5).to_pandas().sort_values("id")
    np.testing.assert_array_equal(out.prediction.to_numpy(), pipe.predict(df[num]))


def test_profile_merged_over_blocks_equals_the_whole_data_profile(cluster):
    df, _ = frame("binary", n=6000, seed=6)
    df["cat"] = df["cat"].map(lambda c: f"c{c}")
    whole = fx.drift.ReferenceProfile.fit(df)
    merged = fx.ray.profile(ray.data.from_pandas(df).repartition(4))
    assert merged.describe() == whole.describe()
    cur = df.sample(frac=0.5, random_state=1).assign(x0=lambda d: d.x0 + 0.3)
    assert merged.compare(cur).to_dict() == whole.compare(cur).to_dict()
    # Beyond exact_limit the merged sketch stays within its documented rank error.
    small = fx.ray.profile(ray.data.from_pandas(df[["x0"]]).repartition(4), exact_limit=500, sketch_k=64)
    d = small.describe()[0]
    assert d["n_rows"] == 6000 and not d["exact"] and d["rank_error_bound"] < 0.2


def test_import_ferrox_does_not_import_ray():
    code = "import sys, ferrox; assert 'ray' not in sys.modules; ferrox.ray; assert 'ray' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_weights_and_a_polars_part(cluster):
    pl = pytest.importorskip("polars")
    df, feats = frame("regression", n=2400, seed=8)
    df["w"] = np.random.default_rng(8).uniform(0.1, 3.0, size=len(df))
    params = {**PARAMS["regression"], **COMMON, "num_leaves": 7}
    ds = fx.Dataset(df[feats], label=df.y, weight=df.w, categorical_features=["cat"])
    want = fx.train(params, ds, 10).to_bytes()
    parts = [df.iloc[:1200], pl.from_pandas(df.iloc[1200:])]
    got = fx.ray.train(params, parts, label="y", weight="w", categorical_features=["cat"], num_workers=2, num_boost_round=10)
    assert got.to_bytes() == want


def test_a_worker_killed_in_the_middle_of_a_round_is_caught_up_exactly(cluster):
    # Multiclass: a round grows three trees, so a death between them leaves a partial round that the
    # replacement must catch up on (finished trees of the round added after its gradients).
    import threading

    df, feats = frame("multiclass", n=3000, seed=9)
    params = {**PARAMS["multiclass"], **COMMON}
    want = local_model(df, feats, params, 30).to_bytes()
    timers = []

    def kill_soon(env):
        if env.iteration == 2 and not timers:
            def kill():
                names = sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith("ferrox-train-"))
                ray.kill(ray.get_actor(names[0]))

            timers.append(threading.Timer(0.1, kill))
            timers[0].start()

    stats: dict = {}
    got = fx.ray.train(
        params, [df.iloc[:1500], df.iloc[1500:]], label="y", categorical_features=["cat"], num_workers=2,
        num_boost_round=30, callbacks=[kill_soon], stats=stats, timeout_s=60,
    )
    timers[0].join()
    assert stats["recovered"] == 1
    assert got.to_bytes() == want
