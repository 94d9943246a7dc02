"""The retraining loop against a real server: policy decisions, gate, shadow, canary, promotion, refusal,
resume after a kill, dry run."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time

import numpy as np
import pandas as pd
import pytest

import ferrox as fx
from ferrox.pipeline import Pipeline
from ferrox.retrain import Gate, MetricThreshold, Policy, RetrainLoop


def _frame(rng, n, w):
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(w[0] * X["a"] + w[1] * X["b"])))).astype(int)
    return X, y


class _Traffic:
    """Requests from a thread of its own until stopped; counts the answers that were not 200."""

    def __init__(self, url, rng):
        self.port = int(url.rsplit(":", 1)[1])
        self.rows = rng.normal(size=(2000, 2))
        self.sent = self.failed = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        i = 0
        while not self._stop.is_set():
            row = self.rows[i % len(self.rows)]
            body = {"id": f"t{i}", "parameters": {"unit_id": f"u{i % 500}"},
                    "inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [row[0]]},
                               {"name": "b", "shape": [1], "datatype": "FP64", "data": [row[1]]}]}
            conn.request("POST", "/v2/models/m/infer", json.dumps(body), {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            self.sent += 1
            self.failed += r.status != 200
            i += 1
        conn.close()

    def stop(self):
        self._stop.set()
        self._t.join(10)


@pytest.fixture
def setup(rng, tmp_path):
    X, y = _frame(rng, 3000, (2.0, 0.0))
    champ = Pipeline([("m", fx.GBDTClassifier(n_estimators=30, num_leaves=7, verbose=-1))], reference_profile=True)
    champ.fit(X[:2000], y[:2000]).fit_monitoring(X[2000:], y[2000:])
    path = tmp_path / "champion.frx"
    champ.save(path)
    return path


def _loop(srv, path, tmp_path, data, **kw):
    kw.setdefault("gate", Gate({"auc": MetricThreshold(threshold=0.7)}))
    return RetrainLoop("m", srv, data, "y", train={"n_estimators": 30, "num_leaves": 7}, champion=path,
                       state_dir=tmp_path / "loop", policy=Policy(min_rows=100, cooldown_seconds=0),
                       shadow_requests=50, canary={"steps": [50, 100], "min_units": 20, "min_seconds": 0.2,
                                                   "check_interval_ms": 20}, timeout_seconds=60, **kw)


def test_a_drift_alert_retrains_gates_shadows_canaries_and_promotes_without_a_failed_request(rng, tmp_path, setup):
    recent_X, recent_y = _frame(rng, 4000, (0.5, 2.0))  # the world changed: b matters now
    recent_X["a"] += 1.5  # and a moved, as the traffic below
    recent = recent_X.assign(y=recent_y)
    mon = {"sample_rate": 1.0, "window": 300, "alert_after": 1}
    with fx.serving.Server({"m": setup}, port=0, grpc_port=None, monitoring=mon) as srv:
        loop = _loop(srv, setup, tmp_path, lambda: recent)
        assert loop.step()["decision"]["reason"] == "no_trigger"
        traffic = _Traffic(srv.url, rng)
        traffic.rows[:, 0] += 1.5  # covariate shift: a moves, the monitor alerts
        deadline = time.time() + 30
        while not loop.observe().get("recent_alerts") and time.time() < deadline:
            time.sleep(0.05)
        out = loop.step()
        traffic.stop()
        assert out["decision"]["run"] and out["decision"]["reason"] == "drift_alert", out
        assert out["outcome"] == "promoted", out
        assert list(out["steps"]) == ["gather", "validate", "train", "gate", "register", "shadow", "canary", "promote"]
        assert out["steps"]["shadow"]["requests"] >= 50 and out["steps"]["canary"]["phase"] == "promoted"
        assert out["alert_to_outcome_seconds"] > 0
        assert traffic.failed == 0 and traffic.sent > 100
        models = srv.models()
        assert models["m"]["serving"] == "2" and "m-challenger" not in models
        assert srv.experiments() == []
        state = json.loads((tmp_path / "loop" / "state.json").read_text())
        assert state["current"] is None and state["champion"]["version"] == "2"
        audit = [json.loads(x) for x in (tmp_path / "loop" / "audit.jsonl").read_text().splitlines()]
        assert audit[-1]["outcome"] == "promoted" and audit[-1]["from"] == "1" and audit[-1]["to"] == "2"
        # The alert was handled: the next turn does not retrain on it again.
        assert loop.step()["decision"]["reason"] in ("no_trigger", "cooldown")


def test_a_worse_challenger_is_refused_by_the_gate_and_nothing_changes(rng, tmp_path, setup):
    X, y = _frame(rng, 3000, (2.0, 0.0))
    bad = X.assign(y=rng.permutation(y))  # labels unrelated to the features
    with fx.serving.Server({"m": setup}, port=0, grpc_port=None, monitoring=True) as srv:
        loop = _loop(srv, setup, tmp_path, lambda: bad)
        out = loop.run()
        assert out["outcome"] == "refused" and "below_threshold" in out["why"], out
        assert "shadow" not in out["steps"]
        verdict = json.loads(open(out["steps"]["gate"]["verdict"]).read())
        assert verdict["passed"] is False
        assert srv.models()["m"]["serving"] == "1" and srv.experiments() == []


def test_a_killed_loop_resumes_without_redoing_a_step_and_dry_run_does_nothing(rng, tmp_path, setup):
    X, y = _frame(rng, 3000, (2.0, 0.5))
    data = X.assign(y=y)
    with fx.serving.Server({"m": setup}, port=0, grpc_port=None, monitoring=True) as srv:
        dry = _loop(srv, setup, tmp_path, lambda: data, dry_run=True)
        out = dry.step(force=True)
        assert out["dry_run"] and out["plan"][0] == "would gather" and not (tmp_path / "loop" / "state.json").exists()


        loop = _loop(srv, setup, tmp_path, lambda: data)

        def die(run, resumed):
            raise KeyboardInterrupt  # the process is killed during the shadow step

        loop._shadow = die
        with pytest.raises(KeyboardInterrupt):
            loop.run()
        state = json.loads((tmp_path / "loop" / "state.json").read_text())
        run = state["current"]
        assert [k for k, v in run["steps"].items() if v["status"] == "done"] == ["gather", "validate", "train", "gate", "register"]
        assert run["steps"]["shadow"]["status"] == "started"
        trained_at = run["steps"]["train"]["at"]
        # A dry run says where it would pick up, and changes nothing.
        plan = _loop(srv, setup, tmp_path, lambda: data, dry_run=True).step()["plan"]
        assert plan[0].endswith("at shadow") and plan[1:] == ["would canary", "would promote"], plan
        assert json.loads((tmp_path / "loop" / "state.json").read_text()) == state
        # A new process picks the run up where it stopped.
        traffic = _Traffic(srv.url, rng)
        again = _loop(srv, setup, tmp_path, lambda: data)
        out = again.step()
        traffic.stop()
        assert out["outcome"] == "promoted", out
        state = json.loads((tmp_path / "loop" / "state.json").read_text())
        done = state["history"][-1]["steps"]
        assert done["shadow"]["resumed"] is True and done["train"]["resumed"] is False
        assert json.loads((tmp_path / "loop" / "state.json").read_text())["current"] is None
        assert traffic.failed == 0
        assert srv.models()["m"]["serving"] == "2"
        assert state["history"][-1]["steps"]["train"]["seconds"] == run["steps"]["train"]["seconds"]  # not trained again
        del trained_at


def test_policy_reason_codes():
    p = Policy(min_rows=100, cooldown_seconds=10, schedule_seconds=1000, min_new_labels=50)
    assert p.decide({"rows": 5}, {}, now=0, running=True).reason == "run_in_progress"
    assert p.decide({"rows": 5}, {}, now=0, force=True).reason == "forced"
    alert = {"event": "performance_alert", "source": "estimated", "metric": "roc_auc", "value": 0.6, "reference": 0.8, "ts": 1.0}
    assert p.decide({"rows": 5, "recent_alerts": [alert]}, {}, now=100).reason == "insufficient_evidence"
    d = p.decide({"rows": 500, "recent_alerts": [alert]}, {}, now=100)
    assert d.run and d.reason == "performance_alert" and "0.6" in d.detail
    handled = {"alerts_handled": [Policy.alert_key(alert)], "last_run_at": 95.0}
    assert p.decide({"rows": 500, "recent_alerts": [alert]}, handled, now=100).reason == "no_trigger"
    assert p.decide({"rows": 500}, {"last_run_at": 0.0}, now=2000).reason == "schedule"
    assert p.decide({"rows": 500, "outcomes_joined": 80}, {"last_run_at": 1995.0, "labels_at_last_run": 20}, now=2000).reason == "cooldown"
    assert p.decide({"rows": 500, "outcomes_joined": 80}, {"last_run_at": 1500.0, "labels_at_last_run": 20}, now=2000).reason == "new_labels"
    with pytest.raises(fx.ParameterError):
        Policy(cooldown_seconds=-1)


def test_ferrox_retrain_command_runs_the_loop_from_a_toml_file(rng, tmp_path, setup, capsys):
    from ferrox.cli import main

    X, y = _frame(rng, 3000, (2.0, 0.5))
    X.assign(y=y).to_parquet(tmp_path / "recent.parquet")
    with fx.serving.Server({"m": setup}, port=0, grpc_port=None, monitoring=True) as srv:
        cfg = tmp_path / "loop.toml"
        cfg.write_text(f"""
name = "m"
server = "{srv.url}"
champion = "{setup}"
data = "{tmp_path / 'recent.parquet'}"
target = "y"
state_dir = "{tmp_path / 'state'}"
shadow_requests = 30
[params]
n_estimators = 20
[gate.thresholds.auc]
threshold = 0.7
[policy]
min_rows = 0
cooldown_seconds = 0
[canary]
steps = [50, 100]
min_units = 10
min_seconds = 0.1
check_interval_ms = 20
""")
        assert main(["retrain", "--config", str(cfg), "--dry-run", "--force"]) == 0
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert out["dry_run"] and out["decision"]["reason"] == "forced" and not (tmp_path / "state" / "state.json").exists()
        traffic = _Traffic(srv.url, rng)
        code = main(["retrain", "--config", str(cfg), "--once", "--force"])
        traffic.stop()
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert code == 0 and out["outcome"] == "promoted", out
        assert srv.models()["m"]["serving"] == "2" and traffic.failed == 0
        # The gate now asks too much: the run is refused and the command says so with exit code 3.
        cfg.write_text(cfg.read_text().replace("threshold = 0.7", "threshold = 0.999"))
        assert main(["retrain", "--config", str(cfg), "--once", "--force"]) == 3
        assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["outcome"] == "refused"
        cfg.write_text("surprise = 1\n" + cfg.read_text())
        assert main(["retrain", "--config", str(cfg), "--once"]) == 2
        assert "unknown keys ['surprise']" in capsys.readouterr().err


def test_the_registry_follows_the_loop_and_tuning_retunes_each_run(rng, tmp_path, setup):
    import mlflow
    from mlflow import MlflowClient

    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    try:
        with mlflow.start_run():
            fx.mlflow.log_model(Pipeline.load(setup), name="model", registered_model_name="m")
        fx.mlflow.promote("m", 1)
        X, y = _frame(rng, 3000, (2.0, 0.5))
        data = X.assign(y=y)
        with fx.serving.Server({"m": setup}, port=0, grpc_port=None, monitoring=True) as srv:
            loop = _loop(srv, setup, tmp_path, lambda: data, registry="m", tune={"n_trials": 4, "early_stopping_rounds": 5})
            traffic = _Traffic(srv.url, rng)
            out = loop.run()
            traffic.stop()
            assert out["outcome"] == "promoted", out
            tuned = out["steps"]["train"]["tuned"]
            assert 1 <= tuned["n_estimators"] <= 30 and len(tuned) >= 2, tuned
            client = MlflowClient()
            mv = client.get_model_version_by_alias("m", "champion")
            assert str(mv.version) == "2" and mv.tags["ferrox.run"] == out["run"] and mv.tags["ferrox.reason"] == "forced"
            assert srv.models()["m"]["serving"] == "2" and traffic.failed == 0
            # the registered artifact is the one now served
            served = Pipeline.load(out["steps"]["train"]["artifact"])
            assert np.array_equal(fx.mlflow.load_model("models:/m@champion").predict(X[:50]), served.predict(X[:50]))
    finally:
        mlflow.set_tracking_uri(before)


def test_training_data_that_does_not_fit_the_champion_is_abandoned_at_validation(rng, tmp_path, setup):
    X, y = _frame(rng, 2000, (2.0, 0.0))
    with fx.serving.Server({"m": setup}, port=0, grpc_port=None, monitoring=True) as srv:
        out = _loop(srv, setup, tmp_path, lambda: X.drop(columns=["b"]).assign(y=y)).run()
        assert out["outcome"] == "abandoned" and "missing ['b']" in out["why"], out
        assert list(out["steps"]) == ["gather", "validate"] and "schema" in out["steps"]["validate"]["issues"]
        out = _loop(srv, setup, tmp_path, lambda: X.assign(b=X["b"].astype(str), y=y)).run()
        assert out["outcome"] == "abandoned" and "other kinds ['b']" in out["why"], out
        assert srv.models()["m"]["serving"] == "1"
