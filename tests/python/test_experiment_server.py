"""Experiments inside the real server: canary ramps with guardrails, bandits, feedback and the event log.

Every server runs on an ephemeral 127.0.0.1 port inside the test and is stopped in the teardown; the
clients are the standard library's HTTP client (one kept-alive connection) and Triton's HTTP client.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import ferrox as fx


def _booster(rng, n_features=5, rounds=10):
    X = rng.normal(size=(1500, n_features))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=len(X)) > 0).astype(float)
    return fx.train({"objective": "binary", "num_leaves": 7, "verbosity": -1}, fx.Dataset(X, label=y), rounds), X


class Client:
    """One kept-alive HTTP/1.1 connection to the server."""

    def __init__(self, url):
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=10)

    def post(self, path, body):
        self.conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = self.conn.getresponse()
        return r.status, json.loads(r.read())

    def infer(self, model, rows, unit=None, rid=None):
        body = {"inputs": [{"name": "x", "shape": list(np.shape(rows)), "datatype": "FP64", "data": np.asarray(rows).tolist()}]}
        params = {}
        if unit is not None:
            params["unit_id"] = unit
        if params:
            body["parameters"] = params
        if rid is not None:
            body["id"] = rid
        return self.post(f"/v2/models/{model}/infer", body)

    def close(self):
        self.conn.close()


def _save(tmp_path, **models):
    paths = {}
    for name, b in models.items():
        paths[name] = tmp_path / f"{name}.frx"
        b.save_model(paths[name])
    return paths


def _wait_phase(srv, name, phases, seconds=20.0):
    end = time.time() + seconds
    while time.time() < end:
        st = srv.experiment(name)
        if st["canary"]["phase"] in phases:
            return st
        time.sleep(0.05)
    return srv.experiment(name)


def test_canary_rolls_back_a_failing_challenger_within_the_first_step(rng, tmp_path):
    good, X = _booster(rng)
    wide, _ = _booster(rng, n_features=6)  # refuses the 5-column requests the champion accepts
    paths = _save(tmp_path, v1=good, v2=wide)
    with fx.serving.Server(paths, port=0, grpc_port=None) as srv:
        srv.start_experiment("rollout", "flights", {"champion": "v1", "challenger": "v2"}, kind="canary",
                             canary={"steps": [10, 50, 100], "min_units": 300, "min_seconds": 30, "check_interval_ms": 20})
        c = Client(srv.url)
        codes = {"champion": [], "challenger": []}
        for i in range(3000):
            code, out = c.infer("flights", X[i % 100: i % 100 + 1], unit=f"u{i}")
            variant = out["parameters"]["variant"] if code == 200 else None
            codes["champion" if code == 200 and variant == "champion" else "challenger"].append(code)
            if srv.experiment("rollout")["canary"]["phase"] != "ramping" if i % 100 == 99 else False:
                break
        st = _wait_phase(srv, "rollout", ("rolled_back",), seconds=5)
        assert st["canary"]["phase"] == "rolled_back", st["canary"]
        events = [t["event"] for t in st["transitions"]]
        assert events == ["canary_started", "canary_rolled_back"], events  # never left the first step
        assert "error rate" in st["canary"]["reason"]
        assert st["variants"][1]["errors"] > 0 and st["variants"][0]["errors"] == 0
        # After the rollback every request is the champion's and succeeds, sticky challenger units too.
        for i in range(200):
            code, out = c.infer("flights", X[:1], unit=f"u{i}")
            assert code == 200 and out["parameters"]["variant"] == "champion"
        text = srv.metrics()
        assert 'ferrox_experiment_transitions_total{experiment="rollout",transition="canary_rolled_back"} 1' in text
        assert 'ferrox_experiment_share{experiment="rollout",variant="challenger"} 0' in text
        c.close()


def test_canary_promotes_a_sound_challenger_and_units_never_change_variant(rng, tmp_path):
    b1, X = _booster(rng, rounds=10)
    b2, _ = _booster(rng, rounds=12)
    paths = _save(tmp_path, v1=b1, v2=b2)
    with fx.serving.Server(paths, port=0, grpc_port=None) as srv:
        srv.start_experiment("ramp", "flights", {"champion": "v1", "challenger": "v2"}, kind="canary",
                             canary={"steps": [10, 50, 100], "min_units": 25, "min_seconds": 0.3,
                                     "check_interval_ms": 20, "metric": "reward", "min_outcomes": 20})
        c = Client(srv.url)
        want = {"champion": b1.predict(X), "challenger": b2.predict(X)}
        first, log = {}, []
        n_units, i = 0, 0
        deadline = time.time() + 40
        while time.time() < deadline:
            # new units and returning ones
            unit = f"u{n_units}" if i % 2 == 0 or n_units == 0 else f"u{rng.integers(0, n_units)}"
            n_units += i % 2 == 0 or n_units == 0
            t0 = time.time()
            row = i % len(X)
            code, out = c.infer("flights", X[row: row + 1], unit=unit)
            t1 = time.time()
            assert code == 200, out
            variant = out["parameters"]["variant"]
            assert out["outputs"][0]["data"][0] == want[variant][row]
            first.setdefault(unit, variant)
            log.append((unit, variant, t0, t1))
            status, fb = c.post("/v2/feedback", {"feedback": [{"id": out["id"], "reward": bool(rng.random() < 0.5)}]})
            assert status == 200 and fb["accepted"] == 1, fb
            i += 1
            if i % 200 == 0 and srv.experiment("ramp")["canary"]["phase"] != "ramping":
                break
        st = srv.experiment("ramp")
        assert st["canary"]["phase"] == "promoted", (st["canary"], st["transitions"])
        events = [t["event"] for t in st["transitions"]]
        assert events == ["canary_started", "canary_step", "canary_step", "canary_promoted"], events
        assert [t["share"] for t in st["transitions"]] == [10, 50, 100, 100.0]
        promoted_at = st["transitions"][-1]["ts"]
        # Sticky: before the promotion no unit was ever served another variant than its first.
        for unit, variant, t0, t1 in log:
            if t1 < promoted_at:
                assert variant == first[unit], unit
        assert st["variants"][1]["outcomes"]["reward"]["n"] > 0
        for _ in range(50):
            code, out = c.infer("flights", X[:1], unit="u0")
            assert out["parameters"]["variant"] == "challenger"
        c.close()


def test_canary_rolls_back_a_worse_primary_metric(rng, tmp_path):
    b1, X = _booster(rng)
    b2, _ = _booster(rng, rounds=11)
    paths = _save(tmp_path, v1=b1, v2=b2)
    with fx.serving.Server(paths, port=0, grpc_port=None) as srv:
        srv.start_experiment("metric", "flights", {"champion": "v1", "challenger": "v2"}, kind="canary",
                             canary={"steps": [20, 100], "min_units": 100000, "min_seconds": 60, "check_interval_ms": 20,
                                     "metric": "conversion", "min_outcomes": 30})
        c = Client(srv.url)
        rate = {"champion": 0.6, "challenger": 0.2}
        for i in range(4000):
            code, out = c.infer("flights", X[:1], unit=f"u{i}")
            v = out["parameters"]["variant"]
            c.post("/v2/feedback", [{"unit": f"u{i}", "experiment": "metric", "metrics": {"conversion": float(rng.random() < rate[v])}}])
            if i % 100 == 99 and srv.experiment("metric")["canary"]["phase"] != "ramping":
                break
        st = _wait_phase(srv, "metric", ("rolled_back",), seconds=5)
        assert st["canary"]["phase"] == "rolled_back", st["canary"]
        assert "primary metric 'conversion'" in st["canary"]["reason"]
        assert [t["event"] for t in st["transitions"]] == ["canary_started", "canary_rolled_back"]
        c.close()


def test_bandit_moves_traffic_to_the_best_arm_logs_propensities_and_survives_a_restart(rng, tmp_path):
    httpclient = pytest.importorskip("tritonclient.http")
    models = {f"m{k}": _booster(rng, rounds=5 + k)[0] for k in range(3)}
    X = rng.normal(size=(4, 5))
    paths = _save(tmp_path, **models)
    state = tmp_path / "bandit" / "state.json"
    rates = {"a": 0.1, "b": 0.2, "c": 0.45}
    cfg = {"policy": "thompson", "floor": 0.02, "state_path": state}
    with fx.serving.Server(paths, port=0, grpc_port=None) as srv:
        srv.start_experiment("bandit", "rank", {"a": "m0", "b": "m1", "c": "m2"}, kind="bandit", bandit=cfg)
        client = httpclient.InferenceServerClient(srv.url.removeprefix("http://"))
        inp = httpclient.InferInput("x", [1, 5], "FP64")
        inp.set_data_from_numpy(X[:1])
        chosen, pending = [], []
        n = 3000
        for i in range(n):
            r = client.infer("rank", [inp]).get_response()
            v, p = r["parameters"]["variant"], float(r["parameters"]["propensity"])
            assert 0.02 <= p <= 1.0
            chosen.append(v)
            pending.append({"id": r["id"], "reward": float(rng.random() < rates[v])})
            if len(pending) == 50:
                assert srv.feedback(pending)["accepted"] == 50
                pending = []
        late = chosen[n // 2:]
        assert late.count("c") / len(late) >= 0.7, {k: late.count(k) for k in rates}
        st = srv.experiment("bandit")
        arms = {a["name"]: a for a in st["bandit"]["arms"]}
        assert sum(a["n"] for a in arms.values()) == n - len(pending)
        probs = [v["probability"] for v in st["variants"]]
        assert abs(sum(probs) - 1) < 1e-9 and min(probs) >= 0.02 - 1e-12
        srv.stop_experiment("bandit")
    saved = json.loads(state.read_text())
    assert {a["name"]: a["n"] for a in saved["arms"]} == {k: a["n"] for k, a in arms.items()}
    # A new server picks the state up and keeps favouring the best arm at once.
    with fx.serving.Server(paths, port=0, grpc_port=None) as srv:
        st = srv.start_experiment("bandit", "rank", {"a": "m0", "b": "m1", "c": "m2"}, kind="bandit", bandit=cfg)
        assert {a["name"]: a["n"] for a in st["bandit"]["arms"]} == {k: a["n"] for k, a in arms.items()}
        assert max(st["variants"], key=lambda v: v["probability"])["name"] == "c"
        # A state file of another experiment is refused.
        with pytest.raises(fx.DataError, match="belongs to experiment 'bandit'"):
            srv.start_experiment("other", "rank2", {"a": "m0", "b": "m1"}, kind="bandit", bandit=cfg)


def test_feedback_joins_by_id_and_unit_and_refuses_bad_items(rng, tmp_path):
    b1, X = _booster(rng)
    b2, _ = _booster(rng, rounds=12)
    paths = _save(tmp_path, v1=b1, v2=b2)
    with fx.serving.Server(paths, port=0, grpc_port=None) as srv:
        srv.start_experiment("ab", "flights", {"control": "v1", "treatment": "v2"})
        c = Client(srv.url)
        served, sums = {}, {"control": [], "treatment": []}
        for i in range(60):
            code, out = c.infer("flights", X[:1], unit=f"user-{i}", rid=f"req-{i}")
            assert out["id"] == f"req-{i}"
            served[i] = out["parameters"]["variant"]
        items = []
        for i in range(60):
            value = float(rng.normal(10, 2))
            sums[served[i]].append(value)
            items.append({"id": f"req-{i}", "metrics": {"revenue": value}} if i % 2 else {"unit": f"user-{i}", "metrics": {"revenue": value}})
        status, r = c.post("/v2/feedback", {"experiment": "ab", "feedback": items})
        assert status == 200 and r == {"accepted": 60, "unmatched": 0, "errors": [], "monitored": 0}
        st = srv.experiment("ab")
        for v in st["variants"]:
            o = v["outcomes"]["revenue"]
            assert o["n"] == len(sums[v["name"]])
            assert o["mean"] == pytest.approx(np.mean(sums[v["name"]]), rel=1e-12)
        status, r = c.post("/v2/feedback", [
            {"id": "never-served", "reward": 1},
            {"id": "req-1"},
            {"unit": 5, "reward": 1},
            {"id": "req-2", "reward": "yes"},
            {"id": "req-3", "reward": 1, "colour": "red"},
            {"id": "req-4", "metrics": {"x": None}},
            "text",
        ])
        assert status == 200 and r["accepted"] == 0 and r["unmatched"] == 1
        errors = {e["index"]: e["error"] for e in r["errors"]}
        assert set(errors) == {1, 2, 3, 4, 5, 6}
        assert "no outcome" in errors[1] and "reward must be" in errors[3] and "colour" in errors[4] and "metrics.x" in errors[5]
        assert c.post("/v2/feedback", {"feedback": "nope"})[0] == 400
        status, r = c.post("/v2/feedback", {"experiment": "missing", "feedback": []})
        assert status == 404 and "missing" in r["error"]
        c.conn.request("POST", "/v2/feedback", b"{not json")
        resp = c.conn.getresponse()
        assert resp.status == 400 and "not JSON" in json.loads(resp.read())["error"]
        assert 'ferrox_experiment_outcomes_total{experiment="ab",variant="control"}' in srv.metrics()
        c.close()


def test_event_log_holds_assignments_outcomes_and_transitions_and_feeds_analyze(rng, tmp_path):
    b1, X = _booster(rng)
    b2, _ = _booster(rng, rounds=12)
    paths = _save(tmp_path, v1=b1, v2=b2)
    log = tmp_path / "events"
    with fx.serving.Server(paths, port=0, grpc_port=None, event_log={"path": log, "max_file_bytes": 20000, "flush_rows": 100}) as srv:
        srv.start_experiment("ab", "flights", {"control": "v1", "treatment": "v2"})
        c = Client(srv.url)
        revenue = {}
        for i in range(600):
            code, out = c.infer("flights", X[i % 50: i % 50 + 2], unit=f"user-{i % 300}", rid=f"r{i}")
            lift = 0.5 if out["parameters"]["variant"] == "treatment" else 0.0
            revenue[f"r{i}"] = float(rng.normal(10 + lift, 1))
        fb = [{"id": k, "metrics": {"revenue": v}, "label": "bought"} for k, v in revenue.items() if int(k[1:]) % 3]
        assert srv.feedback(fb)["accepted"] == len(fb)
        srv.flush_events()
        t = fx.experiment.read_events(log)
        kinds = t.column("kind").to_pylist()
        assert kinds.count("assignment") == 600 and kinds.count("outcome") == len(fb)
        rows = t.filter(__import__("pyarrow").compute.equal(t["kind"], "assignment")).to_pylist()
        assert [r["request_id"] for r in rows] == [f"r{i}" for i in range(600)]
        want = {"control": b1, "treatment": b2}
        for r in rows[:20]:
            i = int(r["request_id"][1:])
            assert r["prediction"] == want[r["variant"]].predict(X[i % 50: i % 50 + 1])[0] and r["rows"] == 2
            assert r["unit"] == f"user-{i % 300}" and r["model"] == {"control": "v1", "treatment": "v2"}[r["variant"]]
        srv.stop_experiment("ab")
    files = sorted(os.listdir(log))
    assert len(files) > 1 and all(f.endswith(".arrows") for f in files), files  # rolled, all finished
    per_request = fx.experiment.outcomes(fx.experiment.read_events(log))
    assert per_request.num_rows == 600
    got = dict(zip(per_request["request_id"].to_pylist(), per_request["revenue"].to_pylist()))
    for k, v in revenue.items():
        assert got[k] == (v if int(k[1:]) % 3 else 0.0)
    a = fx.experiment.analyze(log, metrics=["revenue"])
    assert a.rows[0]["arm"] == "treatment" and a.units == [float(x) for x in np.bincount(
        [0 if v == "control" else 1 for v in per_request["arm"].to_pylist()])]
    with pytest.raises(fx.ParameterError, match="does not exist"):
        fx.experiment.read_events(tmp_path / "nowhere")


def test_a_killed_server_loses_at_most_the_unflushed_batch(rng, tmp_path):
    b1, X = _booster(rng)
    paths = _save(tmp_path, v1=b1, v2=b1)
    log = tmp_path / "events"
    cfg = tmp_path / "server.toml"
    cfg.write_text(
        "http_port = 0\ngrpc_port = 0\n"
        f'[event_log]\npath = "{log}"\nflush_rows = 50\nflush_interval_ms = 20\n'
        f'[[models]]\nname = "v1"\npath = "{paths["v1"]}"\n[[models]]\nname = "v2"\npath = "{paths["v2"]}"\n'
        '[[experiments]]\nname = "ab"\nendpoint = "flights"\n'
        'variants = [{name = "control", model = "v1"}, {name = "treatment", model = "v2"}]\n'
    )
    proc = subprocess.Popen([sys.executable, "-m", "ferrox", "serve", "--config", str(cfg), "--grpc-port", "-1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready", ready
        c = Client(ready["http"])
        for i in range(500):
            assert c.infer("flights", X[:1], rid=f"r{i}")[0] == 200
        time.sleep(0.5)  # past the flush interval: everything sent is in the file
        for i in range(500, 530):
            c.infer("flights", X[:1], rid=f"r{i}")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert any(f.endswith(".partial") for f in os.listdir(log))
    t = fx.experiment.read_events(log)
    ids = t.column("request_id").to_pylist()
    assert ids[:500] == [f"r{i}" for i in range(500)]
    assert ids == [f"r{i}" for i in range(len(ids))] and len(ids) <= 530


def test_registry_backed_canary_moves_the_alias_on_promotion_and_tags_a_rollback(rng, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    try:
        b1, X = _booster(rng)
        b2, _ = _booster(rng, rounds=12)
        wide, _ = _booster(rng, n_features=6)
        exp = mlflow.create_experiment("canary", artifact_location=str(tmp_path / "artifacts"))
        for b in (b1, b2, wide):
            with mlflow.start_run(experiment_id=exp):
                fx.mlflow.log_model(b, name="model", registered_model_name="served")
        fx.mlflow.promote("served", 1)
        client = MlflowClient()
        fast = {"steps": [50, 100], "min_units": 20, "min_seconds": 0.2, "check_interval_ms": 20}
        with fx.serving.Server({"v1": "models:/served@champion", "v2": "models:/served/2", "v3": "models:/served/3"},
                               port=0, grpc_port=None) as srv:
            c = Client(srv.url)
            srv.start_experiment("up", "flights", {"champion": "v1", "challenger": "v2"}, kind="canary", canary=fast)
            # Requests until the ramp ends (its steps last min_seconds, however fast the requests come).
            i, deadline = 0, time.time() + 30
            while time.time() < deadline:
                c.infer("flights", X[i % 1000: i % 1000 + 1], unit=f"u{i}")
                i += 1
                if i % 100 == 0 and srv.experiment("up")["canary"]["phase"] != "ramping":
                    break
            assert srv.experiment("up")["canary"]["phase"] == "promoted", srv.experiment("up")
            deadline = time.time() + 10
            while time.time() < deadline and str(client.get_model_version_by_alias("served", "champion").version) != "2":
                time.sleep(0.05)
            assert str(client.get_model_version_by_alias("served", "champion").version) == "2"
            assert client.get_model_version("served", "2").tags["ferrox.canary"] == "promoted"
            srv.stop_experiment("up")
            srv.start_experiment("bad", "flights", {"champion": "v2", "challenger": "v3"}, kind="canary", canary=fast)
            i, deadline = 0, time.time() + 30
            while time.time() < deadline:
                c.infer("flights", X[:1], unit=f"w{i}")
                i += 1
                if i % 100 == 0 and srv.experiment("bad")["canary"]["phase"] != "ramping":
                    break
            assert srv.experiment("bad")["canary"]["phase"] == "rolled_back"
            deadline = time.time() + 10
            while time.time() < deadline and "ferrox.canary" not in client.get_model_version("served", "3").tags:
                time.sleep(0.05)
            tags = client.get_model_version("served", "3").tags
            assert tags["ferrox.canary"] == "rolled_back" and "error rate" in tags["ferrox.canary_reason"]
            assert str(client.get_model_version_by_alias("served", "champion").version) == "2"
            assert [e["event"] for e in srv.registry_events] == ["canary_promoted", "canary_rolled_back"]
            c.close()
    finally:
        mlflow.set_tracking_uri(before)
