"""`ferrox rollback` / `ferrox.retrain.rollback` against a real server and a real MLflow registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ferrox as fx

mlflow = pytest.importorskip("mlflow")


@pytest.fixture
def registry(tmp_path):
    before = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(before)


def _register(rng, tmp_path, n):
    X = rng.normal(size=(500, 4))
    boosters = []
    exp = mlflow.create_experiment("rb", artifact_location=str(tmp_path / "artifacts"))
    for k in range(n):
        b = fx.train({"objective": "regression", "verbosity": -1}, fx.Dataset(X, label=X[:, 0] * (k + 1)), 5 + k)
        boosters.append(b)
        with mlflow.start_run(experiment_id=exp):
            fx.mlflow.log_model(b, name="model", registered_model_name="flights")
    return boosters, X


def _answer(srv, X):
    import urllib.request

    body = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": X[:2].tolist()}]}
    req = urllib.request.Request(srv.url + "/v2/models/flights/infer", json.dumps(body).encode())
    out = json.load(urllib.request.urlopen(req))
    return out["model_version"], out["outputs"][0]["data"]


def test_rollback_moves_the_alias_swaps_the_server_and_verifies_within_a_second(rng, tmp_path, registry):
    boosters, X = _register(rng, tmp_path, 2)
    fx.mlflow.promote("flights", 1)
    with fx.serving.Server({"flights": "models:/flights@champion"}, port=0, grpc_port=None) as srv:
        fx.mlflow.promote("flights", 2)
        srv.load("flights", "models:/flights@champion")
        assert _answer(srv, X)[0] == "2"
        audit = tmp_path / "audit.jsonl"
        env = dict(os.environ, MLFLOW_TRACKING_URI=registry)
        out = subprocess.run([sys.executable, "-m", "ferrox", "rollback", "flights", "--server", srv.url,
                              "--audit", str(audit), "--reason", "p99 doubled"], capture_output=True, text=True,
                             timeout=120, env=env)
        assert out.returncode == 0, out.stderr
        r = json.loads(out.stdout)
        assert (r["from_version"], r["to_version"], r["verified"]) == ("2", "1", True)
        assert r["how"] == "pointer swap to a loaded version"
        # From the command (process start) to the old version's verified answer: the bar is 1 s.
        assert r["timings"]["command_to_answer"] <= 1.0, r["timings"]
        assert r["timings"]["serving"] <= 0.2, r["timings"]
        version, data = _answer(srv, X)
        assert version == "1" and data == boosters[0].predict(X[:2]).tolist()
        from mlflow import MlflowClient

        assert str(MlflowClient().get_model_version_by_alias("flights", "champion").version) == "1"
        entry = json.loads(audit.read_text().splitlines()[-1])
        assert entry["ok"] and entry["from"] == "2" and entry["to"] == "1" and entry["reason"] == "p99 doubled"
        # Nothing earlier to go back to: a clear failure, exit code 1, and the audit records it.
        bad = subprocess.run([sys.executable, "-m", "ferrox", "rollback", "flights", "--server", srv.url,
                              "--audit", str(audit)], capture_output=True, text=True, timeout=120, env=env)
        assert bad.returncode == 1 and "no earlier version to roll back to" in bad.stderr
        assert json.loads(audit.read_text().splitlines()[-1])["ok"] is False


def test_rollback_to_a_version_no_longer_loaded_loads_the_registry_artifact(rng, tmp_path, registry):
    boosters, X = _register(rng, tmp_path, 3)
    with fx.serving.Server({"flights": "models:/flights/1"}, port=0, grpc_port=None, keep_versions=2) as srv:
        srv.load("flights", "models:/flights/2")
        srv.load("flights", "models:/flights/3")
        assert srv.models()["flights"]["versions"] == ["2", "3"]
        r = fx.retrain.rollback("flights", to=1, server=srv.url)
        assert (r.to_version, r.verified, r.how) == ("1", True, "verified load of the registry's artifact")
        assert _answer(srv, X) == ("1", boosters[0].predict(X[:2]).tolist())
        # Server only: back to the version it served before, by its label.
        r = fx.retrain.rollback("flights", to="3", server=srv.url, registry=False)
        assert (r.from_version, r.to_version) == ("1", "3") and _answer(srv, X)[0] == "3"
        with pytest.raises(fx.FerroxError, match="refused to serve version '9'"):
            fx.retrain.rollback("flights", to="9", server=srv.url, registry=False)
    with pytest.raises(fx.FerroxError, match="server http://127.0.0.1:9"):
        fx.retrain.rollback("flights", to="1", server="http://127.0.0.1:9", registry=False)
