"""The shipped Prometheus rules and Grafana dashboard name only metrics a running server exports."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import numpy as np
import yaml

import ferrox as fx
import ferrox.linear_model as fxl
from ferrox.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[2]
_NAME = re.compile(r"\b(ferrox_[a-z_]+)")


def _exported(rng, tmp_path):
    X = rng.normal(size=(3000, 3))
    y = (X[:, 0] > 0).astype(int)
    pipe = Pipeline([("m", fx.GBDTClassifier(n_estimators=5, verbose=-1))], reference_profile=True).fit(X[:2000], y[:2000])
    pipe.fit_monitoring(X[2000:], y[2000:])  # performance series too
    pipe.save(tmp_path / "a.frx")
    Pipeline([("m", fxl.Ridge())], reference_profile=True).fit(X, X[:, 0]).save(tmp_path / "b.frx")
    with fx.serving.Server({"a": tmp_path / "a.frx", "b": tmp_path / "b.frx"}, port=0, grpc_port=None,
                           monitoring={"sample_rate": 1, "window": 50, "performance_window": 2}) as srv:
        srv.start_experiment("c", "ep", {"champion": "a", "challenger": "b"}, kind="canary")
        srv.start_experiment("s", "sh", {"a": "a"}, shadows=["b"])
        body = {"inputs": [{"name": "x", "shape": [60, 3], "datatype": "FP64", "data": X[:60].tolist()}]}
        for model in ("a", "ep", "sh"):
            req = urllib.request.Request(f"{srv.url}/v2/models/{model}/infer", json.dumps(body).encode())
            urllib.request.urlopen(req).read()
        for i in range(3):
            one = {"id": f"r{i}", "inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": X[i:i + 1].tolist()}]}
            urllib.request.urlopen(urllib.request.Request(f"{srv.url}/v2/models/a/infer", json.dumps(one).encode())).read()
        srv.feedback([{"id": f"r{i}", "label": int(y[i])} for i in range(3)])
        srv.feedback([{"unit": "u", "experiment": "c", "reward": 1}])
        import time

        deadline = time.time() + 10
        while (srv.monitoring("a")["windows"] < 1 or "realised_performance" not in srv.monitoring("a")) and time.time() < deadline:
            time.sleep(0.05)
        text = srv.metrics()
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
    # histogram series and their parts
    return names | {n + s for n in names for s in ("_bucket", "_sum", "_count")}


def _referenced(expr: str) -> set[str]:
    return set(_NAME.findall(expr))


def test_alert_rules_and_dashboard_use_exported_metrics(rng, tmp_path):
    exported = _exported(rng, tmp_path)
    rules = yaml.safe_load((ROOT / "deploy/prometheus/ferrox-alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert len(exprs) >= 6 and all(r.get("alert") and r.get("annotations") for g in rules["groups"] for r in g["rules"])
    dash = json.loads((ROOT / "deploy/grafana/ferrox-dashboard.json").read_text())
    exprs += [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs.append(dash["templating"]["list"][1]["query"])
    missing = {n for e in exprs for n in _referenced(e)} - exported
    assert not missing, f"not exported by the server: {sorted(missing)}"
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
