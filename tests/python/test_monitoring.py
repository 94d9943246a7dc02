"""Drift monitoring of served rows inside the real server: metrics, status, alerts, webhook, callback."""

from __future__ import annotations

import http.client
import http.server
import json
import threading
import time

import numpy as np
import pytest

import ferrox as fx
import ferrox.linear_model as fxl
from ferrox.pipeline import Pipeline


def _pipeline(rng, n=5000):
    X = rng.normal(size=(n, 4))
    y = X @ np.array([1.0, -0.5, 0.2, 0.0]) + rng.normal(0, 0.1, n)
    return Pipeline([("m", fxl.Ridge())], reference_profile=True).fit(X, y)


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (the standard library's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def _infer(conn, X, rid=None):
    body = {"inputs": [{"name": "x", "shape": list(X.shape), "datatype": "FP64", "data": X.tolist()}]}
    if rid is not None:
        body["id"] = rid
    conn.request("POST", "/v2/models/m/infer", json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    return r.status


def test_served_rows_are_monitored_and_a_shift_alerts_by_metrics_webhook_and_callback(rng, tmp_path):
    pipe = _pipeline(rng)
    path = tmp_path / "m.frx"
    pipe.save(path)
    hook = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    alerts = []
    try:
        cfg = {"sample_rate": 0.5, "window": 1000, "alert_after": 2, "webhook": f"http://127.0.0.1:{hook.server_port}/alerts"}
        with fx.serving.Server({"m": path}, port=0, grpc_port=None, monitoring=cfg, on_drift_alert=alerts.append) as srv:
            conn = http.client.HTTPConnection("127.0.0.1", int(srv.url.rsplit(":", 1)[1]), timeout=10)
            # Stationary traffic: 10 windows (every other request of 100 rows is monitored), no alert.
            for _ in range(200):
                assert _infer(conn, rng.normal(size=(100, 4))) == 200
            deadline = time.time() + 10
            while srv.monitoring("m")["windows"] < 10 and time.time() < deadline:
                time.sleep(0.05)
            st = srv.monitoring("m")
            assert st["windows"] == 10 and st["alerts"] == 0 and st["rows"] == 10_000 and st["dropped"] == 0
            assert st["version"] == "1" and not st["last_window"]["drifted"]
            # Feature x2 shifts by one standard deviation: alerted after 2 windows in a row.
            for _ in range(60):
                X = rng.normal(size=(100, 4))
                X[:, 2] += 1.0
                assert _infer(conn, X) == 200
            while srv.monitoring("m")["windows"] < 13 and time.time() < deadline:
                time.sleep(0.05)
            st = srv.monitoring("m")
            assert st["alerts"] == 1, st
            assert st["last_window"]["drifted_columns"] == ["Column_2"] or "Column_2" in st["last_window"]["drifted_columns"]
            text = srv.metrics()
            assert 'ferrox_drift_alerts_total{model="m",version="1"} 1' in text
            assert 'ferrox_feature_drifted{model="m",version="1",feature="Column_2"} 1' in text
            assert 'ferrox_feature_drifted{model="m",version="1",feature="Column_0"} 0' in text
            assert 'ferrox_feature_missing_share{model="m",version="1",feature="Column_3"} 0' in text
            while (not alerts or not _Hook.received) and time.time() < deadline:
                time.sleep(0.05)
            assert len(_Hook.received) == 1 and _Hook.received[0]["model"] == "m" and "Column_2" in _Hook.received[0]["drifted_columns"]
            assert len(alerts) == 1 and alerts[0]["window"] == _Hook.received[0]["window"]
            conn.close()
    finally:
        hook.shutdown()


def test_monitoring_errors_are_clear(rng, tmp_path):
    b = fx.train({"objective": "regression", "verbosity": -1}, fx.Dataset(rng.normal(size=(300, 3)), label=rng.normal(size=300)), 3)
    with fx.serving.Server({"plain": b}, port=0, grpc_port=None, monitoring=True) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", int(srv.url.rsplit(":", 1)[1]), timeout=10)
        body = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [[0.0, 0.0, 0.0]]}]}
        conn.request("POST", "/v2/models/plain/infer", json.dumps(body))
        assert conn.getresponse().read() and True
        conn.request("GET", "/v2/models/plain/monitoring")
        r = conn.getresponse()
        assert r.status == 404 and "no reference profile" in json.loads(r.read())["error"]
        conn.close()
    with fx.serving.Server({"plain": b}, port=0, grpc_port=None) as srv:
        with pytest.raises(fx.ParameterError, match="monitoring is off"):
            srv.monitoring("plain")
    with pytest.raises(fx.ParameterError, match="sample_rate"):
        fx.serving.Server({"plain": b}, port=0, grpc_port=None, monitoring={"sample_rate": 2}).start()
    with pytest.raises(fx.ParameterError, match="webhook"):
        fx.serving.Server({"plain": b}, port=0, grpc_port=None, monitoring={"webhook": "ftp://x"}).start()


def _classifier(rng, n=6000):
    X = rng.normal(size=(n, 3))
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-2.0 * X[:, 0]))).astype(int)
    pipe = Pipeline([("m", fx.GBDTClassifier(n_estimators=40, num_leaves=7, verbose=-1))], reference_profile=True)
    pipe.fit(X[: n // 2], y[: n // 2])
    return pipe.fit_monitoring(X[n // 2:], y[n // 2:])


def test_served_performance_is_estimated_without_labels_and_realised_with_them(rng, tmp_path):
    pipe = _classifier(rng)
    ref = pipe.monitoring_reference_
    assert ref["task"] == "binary" and ref["calibrated"] and 0.75 < ref["metrics"]["roc_auc"] < 0.95
    path = tmp_path / "m.frx"
    pipe.save(path)
    assert Pipeline.load(path).monitoring_reference_ == ref  # it travels in the artifact
    alerts = []
    cfg = {"sample_rate": 1.0, "window": 500, "alert_after": 2, "performance_window": 400, "max_performance_drop": 0.05}
    with fx.serving.Server({"m": path}, port=0, grpc_port=None, monitoring=cfg, on_drift_alert=alerts.append) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", int(srv.url.rsplit(":", 1)[1]), timeout=10)
        # Stationary traffic, one row a request, labels fed back by request id.
        X = rng.normal(size=(1000, 3))
        y = (rng.uniform(size=1000) < 1 / (1 + np.exp(-2.0 * X[:, 0]))).astype(int)
        for i in range(1000):
            assert _infer(conn, X[i:i + 1], f"r{i}") == 200
        r = srv.feedback([{"id": f"r{i}", "label": int(y[i])} for i in range(1000)] + [{"id": "nobody", "label": 1}])
        assert r["monitored"] == 1001
        deadline = time.time() + 20
        while (srv.monitoring("m").get("outcomes_joined", 0) < 1000 or srv.monitoring("m")["rows"] < 1000) and time.time() < deadline:
            time.sleep(0.05)
        st = srv.monitoring("m")
        assert st["outcomes_joined"] == 1000 and st["outcomes_unmatched"] == 1
        real = st["realised_performance"]["metrics"]
        want = fx.performance.realised("binary", pipe.predict_proba(X[400:800])[:, 1], y[400:800])
        assert abs(real["roc_auc"] - want["roc_auc"]) < 1e-12 and abs(real["logloss"] - want["logloss"]) < 1e-12
        est = st["estimated_performance"]["metrics"]["roc_auc"]
        assert abs(est["value"] - ref["metrics"]["roc_auc"]) < 0.05 and est["lower"] < est["value"] < est["upper"]
        assert not st["prediction_drift"]["drift"] and not st["estimated_performance"]["degraded"]
        assert not [a for a in alerts if a["event"] == "performance_alert"]
        # Covariate shift that squeezes x0 towards 0: the scores drift and the estimated AUC falls.
        Xs = rng.normal(size=(1500, 3)) * np.array([0.15, 1.0, 1.0])
        for i in range(1500):
            assert _infer(conn, Xs[i:i + 1], f"s{i}") == 200
        while srv.monitoring("m")["rows"] < 2500 and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        st = srv.monitoring("m")
        assert st["prediction_drift"]["drift"], st["prediction_drift"]
        est = st["estimated_performance"]["metrics"]["roc_auc"]
        ys = (rng.uniform(size=1500) < 1 / (1 + np.exp(-2.0 * Xs[:, 0]))).astype(int)
        realised_shifted = fx.performance.realised("binary", pipe.predict_proba(Xs[1000:])[:, 1], ys[1000:])["roc_auc"]
        assert est["value"] < ref["metrics"]["roc_auc"] * 0.95 and abs(est["value"] - realised_shifted) < 0.08
        assert st["estimated_performance"]["degraded"]
        while not [a for a in alerts if a["event"] == "performance_alert"] and time.time() < deadline:
            time.sleep(0.05)
        perf = [a for a in alerts if a["event"] == "performance_alert"]
        assert perf and perf[0]["source"] == "estimated" and perf[0]["metric"] == "roc_auc"
        text = srv.metrics()
        assert 'ferrox_estimated_performance{model="m",version="1",metric="roc_auc"}' in text
        assert 'ferrox_realised_performance{model="m",version="1",metric="logloss"}' in text
        assert 'ferrox_prediction_drifted{model="m",version="1"} 1' in text
        assert 'ferrox_performance_alerts_total{model="m",version="1"} 1' in text
        conn.close()


def test_regressor_loss_is_estimated_directly_and_out_of_range_values_are_counted(rng, tmp_path):
    X = rng.normal(size=(4000, 2))
    y = X[:, 0] + rng.normal(size=4000) * np.where(X[:, 1] > 1.0, 3.0, 0.3)
    pipe = Pipeline([("s", fx.preprocessing.StandardScaler()), ("m", fx.GBDTRegressor(n_estimators=30, verbose=-1))])
    pipe.fit(X[:2000], y[:2000]).fit_monitoring(X[2000:], y[2000:], loss_estimators=40)
    ref = pipe.monitoring_reference_
    assert ref["task"] == "regression" and ref["loss_models"] == ["mae", "mse"]
    path = tmp_path / "r.frx"
    pipe.save(path)
    with fx.serving.Server({"m": path}, port=0, grpc_port=None, monitoring={"sample_rate": 1.0, "window": 500}) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", int(srv.url.rsplit(":", 1)[1]), timeout=10)
        # Traffic from the noisy region: the estimated MAE rises well above the reference MAE.
        Xn = rng.normal(size=(500, 2))
        Xn[:, 1] = np.abs(Xn[:, 1]) + 1.2
        Xn[0, 0] = 50.0  # far outside the training range
        assert _infer(conn, Xn) == 200
        deadline = time.time() + 20
        while srv.monitoring("m")["rows"] < 500 and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        st = srv.monitoring("m")
        est = st["estimated_performance"]["metrics"]["mae"]["value"]
        yn = Xn[:, 0] + rng.normal(size=500) * 3.0
        real = fx.performance.realised("regression", pipe.predict(Xn), yn)["mae"]
        assert est > 2 * ref["metrics"]["mae"] and abs(est - real) < 0.35 * real, (est, real, ref)
        text = srv.metrics()
        for j, col in enumerate(pipe.schema_):
            outside = int(((Xn[:, j] < col["min"]) | (Xn[:, j] > col["max"])).sum())
            assert f'ferrox_feature_out_of_range_total{{model="m",version="1",feature="{col["name"]}"}} {outside}' in text
            assert outside >= 1
        assert 'ferrox_estimated_performance{model="m",version="1",metric="rmse"}' in text
        conn.close()


def test_performance_reference_errors_are_clear(rng):
    X = rng.normal(size=(300, 2))
    multi = Pipeline([("m", fx.GBDTClassifier(n_estimators=3, verbose=-1))]).fit(X, rng.integers(0, 3, 300))
    with pytest.raises(fx.ParameterError, match="3 classes"):
        multi.fit_monitoring(X, rng.integers(0, 3, 300))
    binary = Pipeline([("m", fx.GBDTClassifier(n_estimators=3, verbose=-1))]).fit(X, rng.integers(0, 2, 300))
    with pytest.raises(fx.DataError, match="not a class"):
        binary.fit_monitoring(X, np.full(300, 7))
    with pytest.raises(fx.ParameterError, match="performance_metric"):
        fx.serving.Server({"m": binary}, port=0, grpc_port=None, monitoring={"performance_metric": "f1"}).start()


def test_windows_can_be_timed(rng, tmp_path):
    pipe = _pipeline(rng)
    path = tmp_path / "m.frx"
    pipe.save(path)
    with fx.serving.Server({"m": path}, port=0, grpc_port=None, monitoring={"sample_rate": 1.0, "window_seconds": 0.4}) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", int(srv.url.rsplit(":", 1)[1]), timeout=10)
        start = time.time()
        while time.time() - start < 1.5:
            assert _infer(conn, rng.normal(size=(20, 4))) == 200
            time.sleep(0.01)
        assert _infer(conn, rng.normal(size=(20, 4))) == 200
        deadline = time.time() + 10
        while srv.monitoring("m")["windows"] < 3 and time.time() < deadline:
            time.sleep(0.05)
        st = srv.monitoring("m")
        # about 1.5 s of traffic in windows of 0.4 s: 3 closed (the 4th is still open)
        assert 3 <= st["windows"] <= 4 and st["alerts"] == 0, st
        w = st["last_window"]
        assert 0 < w["end_row"] - w["start_row"] < st["rows"]
        conn.close()
    with pytest.raises(fx.ParameterError, match="window_seconds"):
        fx.serving.Server({"m": path}, port=0, grpc_port=None, monitoring={"window_seconds": 0}).start()
