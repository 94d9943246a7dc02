"""The model server against real clients: Triton's HTTP and gRPC client libraries and plain HTTP.

Every server runs on an ephemeral 127.0.0.1 port inside the test and is stopped in the teardown.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

import ferrox as fx

httpclient = pytest.importorskip("tritonclient.http")
grpcclient = pytest.importorskip("tritonclient.grpc")
from tritonclient.utils import InferenceServerException  # noqa: E402


def _booster(rng, n_features=5, rounds=20, objective="binary"):
    X = rng.normal(size=(2000, n_features))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=len(X)) > 0).astype(float)
    if objective == "regression":
        y = X[:, 0] * 3 + X[:, 1]
    b = fx.train({"objective": objective, "num_leaves": 15, "verbosity": -1}, fx.Dataset(X, label=y), rounds)
    return b, X


def _post(url, body, headers=None, raw=False):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            out = r.read()
            return r.status, (out if raw else json.loads(out)), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


def _get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def served(rng, tmp_path):
    b, X = _booster(rng)
    path = tmp_path / "model.frx"
    b.save_model(path)
    srv = fx.serving.Server({"m": path}, port=0, grpc_port=0).start()
    yield srv, b, X, tmp_path
    srv.stop()


def test_triton_http_client_health_metadata_and_infer(served):
    srv, b, X, _ = served
    client = httpclient.InferenceServerClient(srv.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("m") and not client.is_model_ready("nope")
    meta = client.get_server_metadata()
    assert meta["name"] == "ferrox" and "binary_tensor_data" in meta["extensions"]
    mm = client.get_model_metadata("m")
    assert [i["name"] for i in mm["inputs"]] == b.feature_name() and mm["versions"] == ["1"]
    rows = X[:64]
    for binary in (True, False):
        for dtype, arr in (("FP64", rows), ("FP32", rows.astype(np.float32))):
            inp = httpclient.InferInput("input-0", list(arr.shape), dtype)
            inp.set_data_from_numpy(arr, binary_data=binary)
            outs = [httpclient.InferRequestedOutput("predict", binary_data=binary),
                    httpclient.InferRequestedOutput("raw", binary_data=binary)]
            res = client.infer("m", [inp], outputs=outs, request_id="abc")
            assert res.get_response()["id"] == "abc"
            # Same bits as the in-process prediction, JSON (shortest round-trip) or binary.
            assert np.array_equal(res.as_numpy("predict"), b.predict(arr))
            assert np.array_equal(res.as_numpy("raw"), b.predict(arr, raw_score=True))
    client.close()


def test_triton_grpc_client(served):
    srv, b, X, _ = served
    client = grpcclient.InferenceServerClient(srv.grpc_address)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("m")
    assert client.get_server_metadata().name == "ferrox"
    mm = client.get_model_metadata("m")
    assert [i.name for i in mm.inputs] == b.feature_name()
    arr = X[:100].astype(np.float32)
    inp = grpcclient.InferInput("input-0", list(arr.shape), "FP32")
    inp.set_data_from_numpy(arr)
    res = client.infer("m", [inp], outputs=[grpcclient.InferRequestedOutput("predict")], request_id="r1")
    assert res.get_response().id == "r1"
    assert np.array_equal(res.as_numpy("predict"), b.predict(arr))
    # SHAP contributions through the `contrib` output.
    res = client.infer("m", [inp], outputs=[grpcclient.InferRequestedOutput("contrib")])
    assert np.allclose(res.as_numpy("contrib"), b.predict_contrib(arr), rtol=0, atol=1e-12)
    with pytest.raises(InferenceServerException, match="not loaded"):
        client.infer("nope", [inp])
    bad = grpcclient.InferInput("input-0", [2, 3], "FP32")
    bad.set_data_from_numpy(np.zeros((2, 3), np.float32))
    with pytest.raises(InferenceServerException, match="needs 5 columns"):
        client.infer("m", [bad])
    client.close()


def test_rest_errors_are_protocol_errors(served):
    srv, b, X, _ = served
    url = srv.url + "/v2/models/m/infer"
    code, body, _ = _post(srv.url + "/v2/models/nope/infer", {"inputs": []})
    assert code == 404 and "not loaded" in body["error"]
    code, body, _ = _post(url, b"{not json")
    assert code == 400 and "not valid OIP JSON" in body["error"]
    code, body, _ = _post(url, {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [0, 0, 0, 0]}]})
    assert code == 400 and "'x'" in body["error"] and "5 columns" in body["error"]
    code, body, _ = _post(url, {"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": [0, 0, "a", 0, 0]}]})
    assert code == 400 and "element 2" in body["error"]
    code, body, _ = _post(url, {"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": [0] * 5}],
                                "outputs": [{"name": "bogus"}]})
    assert code == 400 and "unknown output" in body["error"]
    code, body, _ = _post(url, {"inputs": [{"name": "x", "shape": [2, 5], "datatype": "FP64", "data": X[:2].tolist()}],
                                "parameters": {"contrib": True}})
    assert code == 200 and [o["name"] for o in body["outputs"]] == ["predict", "contrib"]
    assert np.allclose(np.reshape(body["outputs"][1]["data"], (2, 6)), b.predict_contrib(X[:2]), rtol=0, atol=1e-12)
    code, _ = _get(srv.url + "/v2/models/m/versions/9")
    assert code == 404
    # A request without an id gets one.
    code, body, _ = _post(url, {"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": X[0].tolist()}]})
    assert code == 200 and len(body["id"]) > 0 and body["model_version"] == "1"
    assert body["outputs"][0]["data"] == b.predict(X[:1]).tolist()


def test_body_limit_and_auth(rng, tmp_path, monkeypatch):
    b, X = _booster(rng)
    path = tmp_path / "m.frx"
    b.save_model(path)
    monkeypatch.setenv("FERROX_TEST_TOKEN", "s3cret")
    with fx.serving.Server({"m": path}, port=0, grpc_port=0, auth_token_env="FERROX_TEST_TOKEN", max_body_bytes=4096) as srv:
        url = srv.url + "/v2/models/m/infer"
        body = {"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": X[0].tolist()}]}
        assert _get(srv.url + "/v2/health/ready")[0] == 200          # probes stay open
        code, err, headers = _post(url, body)
        assert code == 401 and "bearer token" in err["error"] and headers.get("www-authenticate") == "Bearer"
        assert _post(url, body, {"Authorization": "Bearer wrong"})[0] == 401
        code, out, _ = _post(url, body, {"Authorization": "Bearer s3cret"})
        assert code == 200
        big = {"inputs": [{"name": "x", "shape": [400, 5], "datatype": "FP64", "data": [0.5] * 2000}]}
        code, err, _ = _post(url, big, {"Authorization": "Bearer s3cret"})
        assert code == 413 and "4096" in err["error"]
        assert _get(srv.url + "/metrics")[0] == 401
        client = grpcclient.InferenceServerClient(srv.grpc_address)
        with pytest.raises(InferenceServerException, match="bearer token"):
            client.get_model_metadata("m")
        assert client.get_model_metadata("m", headers={"authorization": "Bearer s3cret"}).name == "m"
        client.close()


def test_hot_swap_rollback_and_refused_artifact(served):
    srv, b1, X, tmp = served
    b2, _ = _booster(np.random.default_rng(7), rounds=35)
    p2 = tmp / "v2.frx"
    b2.save_model(p2)
    row = {"inputs": [{"name": "x", "shape": [3, 5], "datatype": "FP64", "data": X[:3].tolist()}]}
    url = srv.url + "/v2/models/m/infer"
    code, out, _ = _post(srv.url + "/v2/repository/models/m/load", {"parameters": {"path": str(p2)}})
    assert code == 200 and out["version"] == "2" and out["previous"] == "1"
    _, res, _ = _post(url, row)
    assert res["model_version"] == "2" and res["outputs"][0]["data"] == b2.predict(X[:3]).tolist()
    # Version 1 stays addressable, and rolling back is a pointer swap.
    _, res, _ = _post(srv.url + "/v2/models/m/versions/1/infer", row)
    assert res["outputs"][0]["data"] == b1.predict(X[:3]).tolist()
    r = srv.rollback("m")
    assert (r.version, r.previous) == ("1", "2") and r.seconds < 1.0
    _, res, _ = _post(url, row)
    assert res["model_version"] == "1"
    # A corrupted artifact is refused, over REST and from Python; version 1 keeps serving.
    bad = bytearray(p2.read_bytes())
    bad[len(bad) // 2] ^= 0xFF
    p3 = tmp / "bad.frx"
    p3.write_bytes(bytes(bad))
    code, err, _ = _post(srv.url + "/v2/repository/models/m/load", {"parameters": {"path": str(p3)}})
    assert code == 400 and "SHA-256" in err["error"]
    with pytest.raises(fx.ModelIntegrityError, match="SHA-256"):
        srv.load("m", p3)
    _, res, _ = _post(url, row)
    assert res["model_version"] == "1" and res["outputs"][0]["data"] == b1.predict(X[:3]).tolist()
    index = _post(srv.url + "/v2/repository/index", {})[1]
    assert {"name": "m", "version": "1", "state": "READY", "reason": ""} in index
    assert any(e["state"] == "UNAVAILABLE" and "SHA-256" in e["reason"] for e in index)
    assert 'ferrox_model_events_total{model="m",event="refused"} 2' in srv.metrics()
    # Unload over the repository extension.
    assert _post(srv.url + "/v2/repository/models/m/unload", {})[0] == 200
    assert _post(url, row)[0] == 404


def test_swaps_under_load_fail_no_request(served):
    srv, b1, X, tmp = served
    b2, _ = _booster(np.random.default_rng(3), rounds=30)
    p1, p2 = tmp / "model.frx", tmp / "v2.frx"
    b2.save_model(p2)
    expected = {tuple(b1.predict(X[:2]).tolist()), tuple(b2.predict(X[:2]).tolist())}
    body = json.dumps({"inputs": [{"name": "x", "shape": [2, 5], "datatype": "FP64", "data": X[:2].tolist()}]}).encode()
    failures, answers, stop = [], [], threading.Event()

    def client():
        while not stop.is_set():
            code, res, _ = _post(srv.url + "/v2/models/m/infer", body)
            if code != 200:
                failures.append((code, res))
            else:
                answers.append(tuple(res["outputs"][0]["data"]))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    deadline = time.time() + 20
    for i in range(40):
        srv.load("m", p2 if i % 2 == 0 else p1)
        if time.time() > deadline:
            break
    stop.set()
    for t in threads:
        t.join(10)
    assert failures == []
    assert len(answers) > 0 and set(answers) <= expected
    assert len(srv.models()["m"]["versions"]) == 2          # older versions are released


def test_model_repository_with_triton_load(rng, tmp_path):
    b1, X = _booster(rng)
    b2, _ = _booster(rng, rounds=5)
    for v, b in (("1", b1), ("2", b2)):
        (tmp_path / "repo" / "m" / v).mkdir(parents=True)
        b.save_model(tmp_path / "repo" / "m" / v / "model.frx")
    with fx.serving.Server(model_repository=tmp_path / "repo", port=0, grpc_port=None) as srv:
        client = httpclient.InferenceServerClient(srv.url.removeprefix("http://"))
        index = client.get_model_repository_index()
        assert {(e["name"], e["version"], e["state"]) for e in index} == {("m", "1", "LOADED"), ("m", "2", "READY")}
        inp = httpclient.InferInput("input-0", [4, 5], "FP64")
        inp.set_data_from_numpy(X[:4])
        assert np.array_equal(client.infer("m", [inp]).as_numpy("predict"), b2.predict(X[:4]))
        assert np.array_equal(client.infer("m", [inp], model_version="1").as_numpy("predict"), b1.predict(X[:4]))
        client.unload_model("m")
        assert not client.is_model_ready("m")
        client.load_model("m")
        assert client.is_model_ready("m")
        client.close()


def test_batching_deadlines_and_queue_limit(rng, tmp_path):
    b, X = _booster(rng)
    path = tmp_path / "m.frx"
    b.save_model(path)
    with fx.serving.Server({"m": path}, port=0, grpc_port=None, max_batch_size=64, max_queue_delay_us=2000) as srv:
        url = srv.url + "/v2/models/m/infer"
        results = [None] * 24

        def one(i):
            rows = X[i * 3:(i + 1) * 3]
            body = {"inputs": [{"name": "x", "shape": [3, 5], "datatype": "FP64", "data": rows.tolist()}]}
            results[i] = _post(url, body)[1]["outputs"][0]["data"]

        ts = [threading.Thread(target=one, args=(i,)) for i in range(24)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(10)
        assert np.array_equal(np.concatenate(results), b.predict(X[:72]))
        assert "ferrox_batch_rows_bucket" in srv.metrics()
    # A request that waits in the queue past its deadline is answered 504; a full queue answers 429.
    with fx.serving.Server({"m": path}, port=0, grpc_port=None, max_batch_size=1000, max_queue_delay_us=300_000,
                           queue_size=1) as srv:
        url = srv.url + "/v2/models/m/infer"
        body = {"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": X[0].tolist()}]}
        first = {}
        t = threading.Thread(target=lambda: first.update(r=_post(url, body)))
        t.start()
        time.sleep(0.1)
        code, err, _ = _post(url, body)
        assert code == 429 and "retry later" in err["error"]
        t.join(10)
        assert first["r"][0] == 200
        code, err, _ = _post(url, dict(body, parameters={"timeout": 1000}))
        assert code == 504 and "deadline" in err["error"]
        assert 'cause="deadline"} 1' in srv.metrics() and 'cause="overloaded"} 1' in srv.metrics()


def test_cli_serve_and_sigterm(rng, tmp_path):
    b, X = _booster(rng)
    path = tmp_path / "m.frx"
    b.save_model(path)
    exe = [sys.executable, "-m", "ferrox", "serve", "--model", f"m={path}", "--http-port", "0", "--grpc-port", "0",
           "--max-batch-size", "64", "--max-queue-delay-us", "400000"]
    proc = subprocess.Popen(exe, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready" and ready["http"].startswith("http://127.0.0.1:")
        body = {"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": X[0].tolist()}]}
        code, out, _ = _post(ready["http"] + "/v2/models/m/infer", body)
        assert code == 200 and out["outputs"][0]["data"] == b.predict(X[:1]).tolist()
        # SIGTERM while a request waits in the batcher (400 ms): it is still answered.
        late = {}
        t = threading.Thread(target=lambda: late.update(r=_post(ready["http"] + "/v2/models/m/infer", body)))
        t.start()
        time.sleep(0.15)
        proc.send_signal(signal.SIGTERM)
        t.join(10)
        assert late["r"][0] == 200 and late["r"][1]["outputs"][0]["data"] == b.predict(X[:1]).tolist()
        assert proc.wait(20) == 0
        assert json.loads(proc.stdout.readline())["event"] == "stopped"
        events = [json.loads(line) for line in proc.stderr.read().splitlines() if line.startswith("{")]
        assert any(e["event"] == "load" and e["model"] == "m" for e in events)
    finally:
        if proc.poll() is None:
            proc.kill()
    bad = subprocess.run([sys.executable, "-m", "ferrox", "serve", "--model", f"m={tmp_path / 'missing.frx'}",
                          "--http-port", "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "missing.frx" in bad.stderr


def test_mlflow_registry_uris(rng, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    try:
        b1, X = _booster(rng, rounds=5)
        b2, _ = _booster(rng, rounds=25)
        exp = mlflow.create_experiment("serving", artifact_location=str(tmp_path / "artifacts"))
        for b in (b1, b2):
            with mlflow.start_run(experiment_id=exp):
                fx.mlflow.log_model(b, name="model", registered_model_name="served")
        fx.mlflow.promote("served", 1)
        fx.mlflow.promote("served", 2)
        with fx.serving.Server({"a": "models:/served/1", "b": "models:/served@champion"}, port=0, grpc_port=None) as srv:
            body = {"inputs": [{"name": "x", "shape": [3, 5], "datatype": "FP64", "data": X[:3].tolist()}]}
            assert _post(srv.url + "/v2/models/a/infer", body)[1]["outputs"][0]["data"] == b1.predict(X[:3]).tolist()
            assert _post(srv.url + "/v2/models/b/infer", body)[1]["outputs"][0]["data"] == b2.predict(X[:3]).tolist()
            assert srv.models()["b"]["serving"] == "2"  # labelled with the registry version
            fx.mlflow.rollback("served")
            assert srv.load("b", "models:/served@champion").version == "1"
            assert _post(srv.url + "/v2/models/b/infer", body)[1]["outputs"][0]["data"] == b1.predict(X[:3]).tolist()
    finally:
        mlflow.set_tracking_uri(before)


def _string_pipeline(rng, n=800):
    import pandas as pd
    import sklearn.pipeline as skpipe

    import ferrox.preprocessing as fxp
    from ferrox.pipeline import Pipeline

    def frame(m):
        df = pd.DataFrame({
            "city": rng.choice(["paris", "rome", "oslo", "lima"], size=m).astype(object),
            "shop": rng.choice(["s1", "s2", "s3"], size=m).astype(object),
            "x": rng.normal(size=m),
            "k": rng.integers(0, 5, size=m),
        })
        df.loc[rng.random(m) < 0.1, "x"] = np.nan
        return df

    df = frame(n)
    y = np.where(df["city"].isin(["paris", "oslo"]).to_numpy() ^ (np.nan_to_num(df["x"].to_numpy()) > 0.3), "yes", "no")
    prep = fxp.ColumnTransformer([
        ("city", fxp.OneHotEncoder(sparse_output=False, handle_unknown="error"), ["city"]),
        ("shop", fxp.TargetEncoder(random_state=0), ["shop"]),
        ("x", skpipe.Pipeline([("imp", fxp.SimpleImputer(strategy="median")), ("sc", fxp.StandardScaler())]), ["x"]),
    ], remainder="passthrough")
    pipe = Pipeline([("prep", prep), ("model", fx.GBDTClassifier(n_estimators=30, num_leaves=7))]).fit(df, y)
    return pipe, frame(200)


def test_pipeline_with_string_columns_served_bit_for_bit(rng, tmp_path):
    pipe, test = _string_pipeline(rng)
    path = tmp_path / "pipe.frx"
    pipe.save(path)
    want_label, want_proba = pipe.predict(test), pipe.predict_proba(test)
    with fx.serving.Server({"p": path}, port=0, grpc_port=0) as srv:
        meta = httpclient.InferenceServerClient(srv.url.removeprefix("http://")).get_model_metadata("p")
        assert {(i["name"], i["datatype"]) for i in meta["inputs"]} == {
            ("city", "BYTES"), ("shop", "BYTES"), ("x", "FP64"), ("k", "INT64")}

        def inputs(mod, binary):
            out = []
            for name, dtype in (("city", "BYTES"), ("shop", "BYTES"), ("x", "FP64"), ("k", "INT64")):
                col = test[name].to_numpy()
                arr = col.astype(object) if dtype == "BYTES" else col.astype(np.float64 if dtype == "FP64" else np.int64)
                inp = mod.InferInput(name, [len(arr)], dtype)
                if mod is httpclient:
                    inp.set_data_from_numpy(arr, binary_data=binary)
                else:
                    inp.set_data_from_numpy(arr)
                out.append(inp)
            return out

        for binary in (False, True):
            client = httpclient.InferenceServerClient(srv.url.removeprefix("http://"))
            outs = [httpclient.InferRequestedOutput("predict", binary_data=binary),
                    httpclient.InferRequestedOutput("predict_proba", binary_data=binary)]
            res = client.infer("p", inputs(httpclient, binary), outputs=outs)
            labels = res.as_numpy("predict")
            labels = np.array([v.decode() if isinstance(v, bytes) else v for v in labels], dtype=object)
            assert labels.tolist() == want_label.tolist()
            assert np.array_equal(res.as_numpy("predict_proba"), want_proba)
            client.close()
        g = grpcclient.InferenceServerClient(srv.grpc_address)
        res = g.infer("p", inputs(grpcclient, True), outputs=[grpcclient.InferRequestedOutput("predict_proba"),
                                                              grpcclient.InferRequestedOutput("predict")])
        assert np.array_equal(res.as_numpy("predict_proba"), want_proba)
        assert [v.decode() for v in res.as_numpy("predict")] == want_label.tolist()
        # An unknown category is refused as the encoder's policy says, naming the column.
        bad = test.head(1).copy()
        bad["city"] = "atlantis"
        body = {"inputs": [{"name": "city", "shape": [1], "datatype": "BYTES", "data": ["atlantis"]},
                           {"name": "shop", "shape": [1], "datatype": "BYTES", "data": [bad["shop"].iloc[0]]},
                           {"name": "x", "shape": [1], "datatype": "FP64", "data": [0.0]},
                           {"name": "k", "shape": [1], "datatype": "INT64", "data": [1]}]}
        code, err, _ = _post(srv.url + "/v2/models/p/infer", body)
        assert code == 400 and "city" in err["error"] and "atlantis" in err["error"]
        with pytest.raises(fx.DataError, match="atlantis"):
            pipe.predict(bad)
        body["inputs"][0]["data"] = ["rome"]
        body["inputs"] = body["inputs"][:3]
        code, err, _ = _post(srv.url + "/v2/models/p/infer", body)
        assert code == 400 and "'k'" in err["error"]
        g.close()


def test_experiment_routing_sticky_forced_and_shadow(rng, tmp_path):
    b1, X = _booster(rng, rounds=10)
    b2, _ = _booster(rng, rounds=40)
    paths = {}
    for name, b in (("champion", b1), ("challenger", b2)):
        paths[name] = tmp_path / f"{name}.frx"
        b.save_model(paths[name])
    with fx.serving.Server(paths, port=0, grpc_port=0) as srv:
        st = srv.start_experiment("ab", "flights", [("control", "champion", 1.0), ("treatment", "challenger", 3.0)],
                                  shadows=["challenger"])
        assert [v["weight"] for v in st["variants"]] == [0.25, 0.75]
        url = srv.url + "/v2/models/flights/infer"
        rows = X[:2].tolist()
        want = {"control": b1.predict(X[:2]).tolist(), "treatment": b2.predict(X[:2]).tolist()}
        seen = {}
        for i in range(200):
            unit = f"user-{i}"
            body = {"inputs": [{"name": "x", "shape": [2, 5], "datatype": "FP64", "data": rows}],
                    "parameters": {"unit_id": unit}}
            code, out, headers = _post(url, body)
            assert code == 200
            variant = out["parameters"]["variant"]
            assert headers["x-ferrox-variant"] == variant and out["parameters"]["experiment"] == "ab"
            assert out["outputs"][0]["data"] == want[variant]
            # The documented hash gives the same variant.
            assert ["control", "treatment"][fx.serving.assign(unit, "ab", [1.0, 3.0])[1]] == variant
            seen[unit] = variant
        # Sticky: the same unit again gets the same variant, over gRPC too.
        g = grpcclient.InferenceServerClient(srv.grpc_address)
        inp = grpcclient.InferInput("x", [2, 5], "FP64")
        inp.set_data_from_numpy(X[:2])
        for unit in list(seen)[:20]:
            res = g.infer("flights", [inp], parameters={"unit_id": unit})
            assert res.get_response().parameters["variant"].string_param == seen[unit]
        g.close()
        share = sum(v == "treatment" for v in seen.values()) / len(seen)
        assert 0.6 < share < 0.9
        # A header forces a variant; an unknown one is a 400 naming the experiment's variants.
        body = {"inputs": [{"name": "x", "shape": [2, 5], "datatype": "FP64", "data": rows}]}
        assert _post(url, body, {"x-ferrox-variant": "control"})[1]["parameters"]["variant"] == "control"
        code, err, _ = _post(url, body, {"x-ferrox-variant": "nope"})
        assert code == 400 and "treatment" in err["error"]
        deadline = time.time() + 10
        while time.time() < deadline:
            (exp,) = srv.experiments()
            if exp["shadows"][0]["requests"] >= 200:
                break
            time.sleep(0.05)
        shadow = exp["shadows"][0]
        assert shadow["model"] == "challenger" and shadow["rows"] == 2 * shadow["requests"]
        # The shadow agrees exactly with the live answer when the challenger answered, never otherwise.
        treated = sum(v == "treatment" for v in seen.values())
        assert shadow["agreeing_rows"] >= 2 * treated and shadow["mean_abs_diff"] > 0
        assert 'ferrox_experiment_assignments_total{experiment="ab",variant="treatment"}' in srv.metrics()
        final = srv.stop_experiment("ab")
        assert sum(v["requests"] for v in final["variants"]) >= 221
        assert _post(url, body)[0] == 404          # the endpoint is no model once the experiment stops
        with pytest.raises(fx.DataError, match="not loaded"):
            srv.start_experiment("bad", "x", {"a": "missing-model"})


def test_http2_prior_knowledge(served):
    import shutil

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    srv, b, X, _ = served
    body = json.dumps({"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": X[0].tolist()}]})
    r = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-w", "\n%{http_version}", "-d", body,
                        srv.url + "/v2/models/m/infer"], capture_output=True, text=True, timeout=30)
    answer, version = r.stdout.rsplit("\n", 1)
    assert version == "2" and json.loads(answer)["outputs"][0]["data"] == b.predict(X[:1]).tolist()


def test_refused_artifact_at_start(rng, tmp_path):
    b, _ = _booster(rng)
    path = tmp_path / "m.frx"
    b.save_model(path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(fx.ModelIntegrityError, match="SHA-256"):
        fx.serving.Server({"m": path}, port=0, grpc_port=None).start()
    with pytest.raises(fx.ParameterError, match="not valid"):
        fx.serving.Server({"a/b": path}, port=0, grpc_port=None).start()
