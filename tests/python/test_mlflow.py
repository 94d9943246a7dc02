"""The MLflow flavor against the real mlflow, with embedded stores only (sqlite + a local directory)."""

import glob
import hashlib
import json
import os

import numpy as np
import pytest

import ferrox as fx
import ferrox.mlflow as fxm

mlflow = pytest.importorskip("mlflow")
pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A sqlite tracking + registry store with artifacts in a local directory; no server."""
    root = tmp_path_factory.mktemp("mlflow")
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    exp = mlflow.create_experiment("ferrox-tests", artifact_location=str(root / "artifacts"))
    yield root, exp
    mlflow.set_tracking_uri(before)


def _frame(rng, n=500):
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["age", "income", "score", "noise"])
    y = (X["age"] + X["income"] * X["score"] > 0).astype(float)
    return X, y


def _model(X, y, rounds=15, **params):
    return fx.train({"objective": "binary", "verbosity": -1, **params}, fx.Dataset(X, label=y), rounds)


def _artifact_file(root, run_id):
    found = glob.glob(str(root / "artifacts" / "**" / "model.ferrox"), recursive=True)
    found = [f for f in found if run_id in f] or [f for f in found]
    assert found
    return max(found, key=os.path.getmtime)


def test_log_and_load_round_trip_gives_identical_predictions(store, rng):
    _, exp = store
    X, y = _frame(rng)
    b = _model(X, y)
    with mlflow.start_run(experiment_id=exp):
        info = fxm.log_model(b, name="model", input_example=X.head(5))
    assert info.flavors["ferrox"]["sha256"] == hashlib.sha256(b.to_bytes()).hexdigest()
    assert [c.name for c in info.signature.inputs.inputs] == list(X.columns)  # inferred from the example
    loaded = fxm.load_model(info.model_uri)
    assert isinstance(loaded, fx.Booster)
    assert np.array_equal(loaded.predict(X), b.predict(X))
    assert np.array_equal(loaded.predict_contrib(X), b.predict_contrib(X))
    served = mlflow.pyfunc.load_model(info.model_uri)
    assert np.array_equal(np.asarray(served.predict(X)), b.predict(X))
    assert isinstance(served.get_raw_model(), fx.Booster)
    with open(os.path.join(mlflow.artifacts.download_artifacts(info.model_uri), "requirements.txt")) as f:
        reqs = f.read().split()
    assert f"ferrox=={fx.__version__}" in reqs


def test_flavor_records_the_artifact_hash(store, rng, tmp_path):
    X, y = _frame(rng, 200)
    b = _model(X, y, 5)
    fxm.save_model(b, tmp_path / "m")
    import yaml

    conf = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    assert conf["flavors"]["ferrox"]["sha256"] == hashlib.sha256((tmp_path / "m" / "model.ferrox").read_bytes()).hexdigest()
    assert conf["flavors"]["ferrox"]["model_type"] == "ferrox.gbdt:Booster"
    assert conf["flavors"]["python_function"]["loader_module"] == "ferrox.mlflow"


def test_tampered_artifact_raises_integrity_error(store, rng):
    root, exp = store
    X, y = _frame(rng, 300)
    b = _model(X, y, 8)
    with mlflow.start_run(experiment_id=exp) as run:
        info = fxm.log_model(b, name="model")
    path = _artifact_file(root, info.model_id or run.info.run_id)
    good = open(path, "rb").read()
    # A flipped byte inside the stored file.
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x01
    open(path, "wb").write(bytes(bad))
    with pytest.raises(fx.ModelIntegrityError):
        fxm.load_model(info.model_uri)
    with pytest.raises(fx.ModelIntegrityError):
        mlflow.pyfunc.load_model(info.model_uri)
    # A different, internally valid model swapped in: only the hash in MLmodel can tell.
    open(path, "wb").write(_model(X, y, 3).to_bytes())
    with pytest.raises(fx.ModelIntegrityError, match="SHA-256.*MLmodel records"):
        fxm.load_model(info.model_uri)
    open(path, "wb").write(good)
    assert np.array_equal(fxm.load_model(info.model_uri).predict(X), b.predict(X))


def test_promote_then_rollback_restores_the_earlier_model(store, rng):
    _, exp = store
    X, y = _frame(rng, 400)
    first, second = _model(X, y, 3), _model(X, y, 30, num_leaves=7)
    versions = []
    for m in (first, second):
        with mlflow.start_run(experiment_id=exp):
            versions.append(fxm.log_model(m, name="model", registered_model_name="churn").registered_model_version)
    assert versions == [1, 2]
    assert fxm.promote("churn", 1) == "1"
    assert np.array_equal(fxm.load_model("models:/churn@champion").predict(X), first.predict(X))
    fxm.promote("churn", 2)
    assert np.array_equal(fxm.load_model("models:/churn@champion").predict(X), second.predict(X))
    assert fxm.rollback("churn") == "1"
    assert np.array_equal(fxm.load_model("models:/churn@champion").predict(X), first.predict(X))
    assert np.array_equal(np.asarray(mlflow.pyfunc.load_model("models:/churn@champion").predict(X)), first.predict(X))
    with pytest.raises(fx.ParameterError, match="'champion' of model 'churn' has no earlier version"):
        fxm.rollback("churn")
    # Other aliases keep their own history.
    fxm.promote("churn", 2, alias="challenger")
    assert str(mlflow.MlflowClient().get_model_version_by_alias("churn", "champion").version) == "1"


def test_autolog_logs_params_metrics_importance_and_model(store, rng):
    _, exp = store
    X, y = _frame(rng, 600)
    train = fx.Dataset(X[:450], label=y[:450])
    valid = fx.Dataset(X[450:], label=y[450:], reference=train)
    original = fx.train
    fxm.autolog()
    try:
        with mlflow.start_run(experiment_id=exp) as run:
            b = fx.train({"objective": "binary", "verbosity": -1, "num_leaves": 9}, train, 12,
                         valid_sets=[valid], valid_names=["valid"])
    finally:
        fxm.autolog(disable=True)
    assert fx.train is original and fx.gbdt.train is original
    client = mlflow.MlflowClient()
    data = client.get_run(run.info.run_id).data
    assert data.params["num_leaves"] == "9" and data.params["num_boost_round"] == "12"
    history = client.get_metric_history(run.info.run_id, "valid-binary_logloss")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(range(12))
    assert np.isclose(sorted(history, key=lambda m: m.step)[-1].value, b.best_score["valid"]["binary_logloss"])
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"feature_importance.json", "feature_importance.png"} <= arts
    table = json.loads(open(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="feature_importance.json")).read())
    assert table["feature"] == list(X.columns) and table["split"] == b.feature_importance("split").tolist()
    logged = mlflow.search_logged_models(experiment_ids=[exp], filter_string=f"source_run_id = '{run.info.run_id}'", output_format="list")
    assert len(logged) == 1
    assert np.array_equal(fxm.load_model(logged[0].model_uri).predict(X), b.predict(X))


def test_local_directory_store(rng, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())  # a new directory: MLflow lays it out
    try:
        X, y = _frame(rng, 300)
        b = _model(X, y, 6)
        with mlflow.start_run():
            info = fxm.log_model(b, name="model")
        assert np.array_equal(fxm.load_model(info.model_uri).predict(X), b.predict(X))
    finally:
        mlflow.set_tracking_uri(before)


def test_any_ferrox_object_with_bytes_round_trips(tmp_path, rng):
    ds = fx.Dataset(rng.normal(size=(50, 3)), max_bin=15)
    fxm.save_model(ds, tmp_path / "ds")
    again = fxm.load_model(tmp_path / "ds")
    assert isinstance(again, fx.Dataset) and np.array_equal(again.bins(), ds.bins())


def test_bad_inputs_name_the_problem(tmp_path, rng):
    X, y = _frame(rng, 100)
    b = _model(X, y, 2)
    with pytest.raises(fx.ParameterError, match="saves ferrox objects, got builtins.dict"):
        fxm.save_model({"a": 1}, tmp_path / "x")
    fxm.save_model(b, tmp_path / "m")
    with pytest.raises(fx.ParameterError, match="already exists"):
        fxm.save_model(b, tmp_path / "m")
    with pytest.raises(fx.ParameterError, match="metrics_every"):
        fxm.autolog(metrics_every=0)


def test_autolog_puts_later_trainings_of_a_run_in_child_runs(store, rng):
    _, exp = store
    X, y = _frame(rng, 300)
    ds = fx.Dataset(X, label=y)
    fxm.autolog(log_models=False, log_importance=False)
    try:
        with mlflow.start_run(experiment_id=exp) as parent:
            for leaves in (3, 7, 15):
                fx.train({"objective": "binary", "verbosity": -1, "num_leaves": leaves}, ds, 4, valid_sets=[ds])
    finally:
        fxm.autolog(disable=True)
    client = mlflow.MlflowClient()
    assert client.get_run(parent.info.run_id).data.params["num_leaves"] == "3"
    runs = client.search_runs([exp])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.params["num_leaves"] for r in children) == ["15", "7"]
    assert all(len(client.get_metric_history(r.info.run_id, "training-binary_logloss")) == 4 for r in children)


def test_pip_requirements_are_written_as_given(tmp_path, rng):
    X, y = _frame(rng, 100)
    b = _model(X, y, 2)
    fxm.save_model(b, tmp_path / "a", pip_requirements=["ferrox", "pandas>=2"])
    # MLflow puts itself first, then the requirements exactly as given.
    assert (tmp_path / "a" / "requirements.txt").read_text().split() == ["mlflow==" + mlflow.__version__, "ferrox", "pandas>=2"]
    fxm.save_model(b, tmp_path / "b", extra_pip_requirements=["pyarrow"])
    reqs = (tmp_path / "b" / "requirements.txt").read_text().split()
    assert f"ferrox=={fx.__version__}" in reqs and "pyarrow" in reqs


def test_autolog_covers_the_gbdt_estimators(store, rng):
    _, exp = store
    X, y = _frame(rng, 600)
    fxm.autolog(log_models=False)
    try:
        with mlflow.start_run(experiment_id=exp) as run:
            fx.GBDTClassifier(n_estimators=10, num_leaves=7).fit(X[:450], y[:450], eval_set=[(X[450:], y[450:])])
    finally:
        fxm.autolog(disable=True)
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "valid_0-binary_logloss")
    assert sorted(m.step for m in history) == list(range(10))
