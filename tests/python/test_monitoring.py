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


def _infer(conn, X):
    body = {"inputs": [{"name": "x", "shape": list(X.shape), "datatype": "FP64", "data": X.tolist()}]}
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
            assert 'ferrox_drift_alerts_total{model="m"} 1' in text
            assert 'ferrox_feature_drifted{model="m",feature="Column_2"} 1' in text
            assert 'ferrox_feature_drifted{model="m",feature="Column_0"} 0' in text
            assert 'ferrox_feature_missing_share{model="m",feature="Column_3"} 0' in text
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
