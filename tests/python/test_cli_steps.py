"""`ferrox validate | train | evaluate | gate | register | promote | drift`: files in, files out, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ferrox as fx
import ferrox.gate
from ferrox.cli import main
from ferrox.pipeline import Pipeline


def flights(rng, n, shift=0.0):
    carrier = rng.choice(np.asarray(["AA", "B6", "DL"], dtype=object), size=n)
    hour = rng.integers(5, 23, n)
    temp = rng.normal(55.0 + shift, 10.0, n)
    distance = rng.gamma(2.0, 500.0, n)
    score = 0.3 * (hour - 13) + np.where(carrier == "B6", 1.5, 0.0) - 0.001 * distance + 0.05 * (temp - 55)
    late = (score + rng.logistic(size=n) > 0).astype(np.int64)
    return pd.DataFrame({"carrier": carrier, "dep_hour": hour, "temp": temp, "distance": distance, "late": late})


@pytest.fixture
def files(rng, tmp_path):
    paths = {}
    for name, n, shift in (("train", 3000, 0.0), ("holdout", 1500, 0.0), ("current", 1500, 15.0)):
        paths[name] = tmp_path / f"{name}.parquet"
        flights(rng, n, shift).to_parquet(paths[name])
    paths["train_csv"] = tmp_path / "train.csv"
    pd.read_parquet(paths["train"]).to_csv(paths["train_csv"], index=False)
    return {k: str(v) for k, v in paths.items()}


def run(capsys, *argv):
    """main(argv) → (exit code, the JSON line on stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    lines = [line for line in out.splitlines() if line.strip()]
    summary = json.loads(lines[-1]) if lines else None
    return code, summary, err


def read(path):
    return json.loads(Path(path).read_text())


def test_validate_writes_a_report_and_a_schema_and_exits_3_on_errors(capsys, files, tmp_path):
    code, s, _ = run(capsys, "validate", "--data", files["train"], "--target", "late",
                     "--write-schema", tmp_path / "schema.json", "--report", tmp_path / "report.json")
    assert code == 0 and s["step"] == "validate" and s["ok"] is True and s["exit_code"] == 0
    report = read(tmp_path / "report.json")
    assert report["ok"] and report["rows"] == 3000 and report["n_errors"] == 0
    schema = read(tmp_path / "schema.json")
    assert [c["name"] for c in schema["columns"]] == ["carrier", "dep_hour", "temp", "distance"]  # no label

    bad = pd.read_parquet(files["train"])
    bad.loc[:5, "late"] = np.nan
    bad.loc[:, "carrier"] = bad["carrier"].where(bad.index > 10, "ZZ")
    bad.to_parquet(tmp_path / "bad.parquet")
    code, s, _ = run(capsys, "validate", "--data", tmp_path / "bad.parquet", "--target", "late",
                     "--schema", tmp_path / "schema.json", "--report", tmp_path / "bad.json")
    assert code == 3 and s["ok"] is False and {"label_missing", "unknown_category"} <= set(s["checks"])
    report = read(tmp_path / "bad.json")
    assert not report["ok"] and any(i["check"] == "unknown_category" for i in report["schema"]["issues"])
    code, s, _ = run(capsys, "validate", "--data", tmp_path / "bad.parquet", "--target", "late",
                     "--report", tmp_path / "bad2.json", "--exit-zero")
    assert code == 0 and s["ok"] is False
    code, s, err = run(capsys, "validate", "--data", files["train"], "--target", "nope", "--report", tmp_path / "x.json")
    assert code == 2 and "nope" in err and "nope" in s["error"]


def test_train_and_evaluate(capsys, files, tmp_path):
    model = tmp_path / "models" / "model.frx"
    code, s, _ = run(capsys, "train", "--data", files["train"], "--target", "late", "--params",
                     '{"objective": "binary", "num_leaves": 7, "learning_rate": 0.1}', "--num-boost-round", "40",
                     "--valid", files["holdout"], "--early-stopping-rounds", "10", "--out", model,
                     "--metrics", tmp_path / "train_metrics.json")
    assert code == 0 and s["task"] == "classification" and s["rows"] == 3000 and s["features"] == 4
    pipe = Pipeline.load(model)          # a deployable pipeline: schema, profile, classes inside
    assert pipe.classes_.tolist() == [0, 1]
    assert [c["name"] for c in pipe.schema_] == ["carrier", "dep_hour", "temp", "distance"]
    assert pipe.schema_[0]["categories"] == ["AA", "B6", "DL"]
    assert pipe.reference_profile_.columns == ["carrier", "dep_hour", "temp", "distance"]
    metrics = read(tmp_path / "train_metrics.json")
    assert metrics["valid"]["auc"] > 0.7 and set(metrics["train"]) == {"auc", "logloss", "accuracy"}
    assert s["metrics"]["valid"] == pytest.approx(metrics["valid"])

    code, s, _ = run(capsys, "evaluate", "--model", model, "--data", files["holdout"], "--target", "late",
                     "--slice", "carrier", "--out", tmp_path / "metrics.json")
    assert code == 0 and s["task"] == "binary"
    out = read(tmp_path / "metrics.json")
    hold = pd.read_parquet(files["holdout"])
    direct = fx.gate.evaluate_metrics(pipe, hold.drop(columns="late"), hold["late"])
    assert {k: out[k] for k in direct} == pytest.approx(direct)
    assert out["auc"] == pytest.approx(metrics["valid"]["auc"])
    assert sorted(out["slices"]["carrier"]) == ["AA", "B6", "DL"]
    assert sum(v["rows"] for v in out["slices"]["carrier"].values()) == len(hold)
    b6 = hold[hold.carrier == "B6"]
    assert out["slices"]["carrier"]["B6"]["auc"] == pytest.approx(
        fx.gate.evaluate_metrics(pipe, b6.drop(columns="late"), b6["late"])["auc"])

    # CSV in, regression out (the label as floats), parameters from a file.
    (tmp_path / "params.json").write_text(json.dumps({"num_leaves": 5, "n_estimators": 20}))
    code, s, _ = run(capsys, "train", "--data", files["train_csv"], "--target", "temp", "--params",
                     tmp_path / "params.json", "--out", tmp_path / "reg.frx")
    assert code == 0 and s["task"] == "regression" and s["rounds"] == 20 and set(s["metrics"]["train"]) == {"rmse", "mae", "r2"}

    # A numeric column named categorical stays numbers in the artifact: the same values score it.
    code, s, _ = run(capsys, "train", "--data", files["train"], "--target", "late", "--categorical", "dep_hour",
                     "--num-boost-round", "10", "--out", tmp_path / "cat.frx")
    assert code == 0 and s["categorical"] == ["carrier", "dep_hour"] and s["task"] == "classification"
    assert [c["dtype"] for c in Pipeline.load(tmp_path / "cat.frx").schema_][:2] == ["string", "integer"]
    code, s, _ = run(capsys, "evaluate", "--model", tmp_path / "cat.frx", "--data", files["holdout"], "--target", "late",
                     "--out", tmp_path / "cat.json")
    assert code == 0 and s["metrics"]["auc"] > 0.6
    code, s, err = run(capsys, "train", "--data", files["train"], "--target", "late", "--categorical", "nope",
                       "--out", tmp_path / "x.frx")
    assert code == 2 and "nope" in err

    code, s, err = run(capsys, "train", "--data", files["train"], "--target", "late", "--params",
                       '{"num_leavez": 3}', "--out", tmp_path / "x.frx")
    assert code == 2 and "num_leaves" in err and not (tmp_path / "x.frx").exists()
    code, s, err = run(capsys, "train", "--data", tmp_path / "absent.parquet", "--target", "late", "--out", tmp_path / "x.frx")
    assert code == 1 and "absent.parquet" in err and s["exit_code"] == 1
    code, _, err = run(capsys, "train", "--data", files["train"], "--target", "late")       # no --out
    assert code == 2 and "--out" in err
    code, _, err = run(capsys, "evaluate", "--model", tmp_path / "reg.frx", "--data", files["holdout"],
                       "--target", "temp", "--metric", "auc", "--out", tmp_path / "m.json")
    assert code == 2 and "'auc' is not available for a regression model" in err


def _train(capsys, files, path, rounds):
    code, _, _ = run(capsys, "train", "--data", files["train"], "--target", "late", "--params",
                     '{"objective": "binary", "num_leaves": 7}', "--num-boost-round", rounds, "--out", path)
    assert code == 0
    return path


def test_gate_passes_refuses_and_reports(capsys, files, tmp_path):
    strong = _train(capsys, files, tmp_path / "strong.frx", 80)
    weak = _train(capsys, files, tmp_path / "weak.frx", 2)
    rules = tmp_path / "gate.json"
    rules.write_text(json.dumps({"auc": {"threshold": 0.6, "min_absolute_change": 0.002},
                                 "logloss": {"min_relative_change": 0.01}}))
    base = ["gate", "--data", files["holdout"], "--target", "late", "--thresholds", rules]
    code, s, _ = run(capsys, *base, "--challenger", strong, "--champion", weak, "--slice", "carrier",
                     "--min-slice-rows", 100, "--out", tmp_path / "verdict.json")
    assert code == 0 and s["passed"] is True and s["failed"] == 0
    verdict = fx.gate.Verdict.from_json(tmp_path / "verdict.json")
    assert verdict.passed and verdict.info["challenger"] == str(strong)
    assert {c["slice"]["value"] for c in verdict.checks if c["slice"]} == {"AA", "B6", "DL"}
    # The direction of logloss came from the metric: lower is better.
    (rule,) = [c for c in verdict.checks if c["metric"] == "logloss" and c["slice"] is None]
    assert rule["rule"].startswith("logloss <= champion")

    code, s, err = run(capsys, *base, "--challenger", weak, "--champion", strong, "--out", tmp_path / "refused.json")
    assert code == 3 and s["passed"] is False and "insufficient_improvement" in s["reasons"]
    assert read(tmp_path / "refused.json")["passed"] is False
    code, s, _ = run(capsys, *base, "--challenger", weak, "--champion", strong, "--out", tmp_path / "r2.json", "--exit-zero")
    assert code == 0 and s["passed"] is False

    blob = bytearray(Path(strong).read_bytes())
    blob[-20] ^= 0x01
    (tmp_path / "corrupt.frx").write_bytes(bytes(blob))
    code, s, _ = run(capsys, *base, "--challenger", tmp_path / "corrupt.frx", "--out", tmp_path / "c.json")
    assert code == 3 and s["reasons"] == ["does_not_load"]
    code, s, _ = run(capsys, *base, "--challenger", strong, "--max-latency-ms", "1e-6", "--out", tmp_path / "slow.json")
    assert code == 3 and s["reasons"] == ["too_slow"]

    rules.write_text(json.dumps({"logloss": {"threshold": 0.5, "greater_is_better": True}}))
    code, _, err = run(capsys, *base, "--challenger", strong, "--out", tmp_path / "x.json")
    assert code == 2 and "greater_is_better must be False" in err
    rules.write_text("{not json")
    code, _, err = run(capsys, *base, "--challenger", strong, "--out", tmp_path / "x.json")
    assert code == 2 and "not valid JSON" in err
    code, _, err = run(capsys, "gate", "--data", files["holdout"], "--target", "late", "--thresholds",
                       '{"auc": {"threshold": 0.6}}', "--challenger", strong, "--champion", tmp_path / "absent.frx",
                       "--out", tmp_path / "x.json")
    assert code == 1 and "absent.frx" in err


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    before = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.chdir(tmp_path)   # the default experiment keeps its artifacts under ./mlruns
    yield uri
    mlflow.set_tracking_uri(before)


def test_register_and_promote_with_a_local_registry(capsys, files, tmp_path, tracking):
    from mlflow import MlflowClient

    one = _train(capsys, files, tmp_path / "one.frx", 5)
    two = _train(capsys, files, tmp_path / "two.frx", 30)
    (tmp_path / "passed.json").write_text(json.dumps({"passed": True, "checks": []}))
    (tmp_path / "refused.json").write_text(json.dumps({"passed": False, "checks": []}))
    (tmp_path / "metrics.json").write_text(json.dumps({"auc": 0.8, "slices": {"carrier": {"AA": {"auc": 0.7}}}}))

    code, s, _ = run(capsys, "register", "--model", one, "--name", "flights", "--tracking-uri", tracking,
                     "--out", tmp_path / "reg1.json")
    assert code == 0 and s["version"] == "1" and read(tmp_path / "reg1.json")["model_uri"] == "models:/flights/1"
    code, s, _ = run(capsys, "promote", "flights", "--version", "1", "--tracking-uri", tracking)
    assert code == 0 and (s["version"], s["previous"], s["alias"]) == ("1", None, "champion")

    code, s, _ = run(capsys, "register", "--model", two, "--name", "flights", "--tracking-uri", tracking,
                     "--alias", "challenger", "--metrics", tmp_path / "metrics.json", "--verdict", tmp_path / "passed.json",
                     "--out", tmp_path / "reg2.json")
    assert code == 0 and s["version"] == "2" and s["alias"] == "challenger"
    client = MlflowClient(tracking_uri=tracking)
    assert str(client.get_model_version_by_alias("flights", "challenger").version) == "2"
    run_data = client.get_run(s["run_id"]).data
    assert run_data.metrics == {"auc": 0.8, "slices.carrier.AA.auc": 0.7}
    # What the registry holds is the artifact, bit for bit.
    loaded = fx.mlflow.load_model("models:/flights/2")
    assert loaded.to_bytes() == Pipeline.load(two).to_bytes()

    code, s, err = run(capsys, "promote", "--registered", tmp_path / "reg2.json", "--tracking-uri", tracking,
                       "--verdict", tmp_path / "refused.json")
    assert code == 3 and s["promoted"] is False and "did not pass" in err
    assert str(client.get_model_version_by_alias("flights", "champion").version) == "1"
    code, s, _ = run(capsys, "promote", "--registered", tmp_path / "reg2.json", "--tracking-uri", tracking,
                     "--verdict", tmp_path / "passed.json", "--out", tmp_path / "promoted.json")
    assert code == 0 and (s["version"], s["previous"]) == ("2", "1")
    assert str(client.get_model_version_by_alias("flights", "champion").version) == "2"
    assert fx.mlflow.rollback("flights") == "1"      # promote remembered the version before

    code, s, _ = run(capsys, "register", "--model", two, "--name", "flights", "--tracking-uri", tracking,
                     "--verdict", tmp_path / "refused.json")
    assert code == 3 and s["registered"] is False
    assert len(client.search_model_versions("name='flights'")) == 2
    code, _, err = run(capsys, "promote", "flights", "--version", "9", "--tracking-uri", tracking)
    assert code == 1 and err
    code, _, err = run(capsys, "promote", "flights", "--tracking-uri", tracking)
    assert code == 2 and "--version" in err


def test_drift_against_data_a_profile_and_a_model(capsys, files, tmp_path):
    code, s, _ = run(capsys, "drift", "--reference", files["train"], "--current", files["current"], "--target", "late",
                     "--out", tmp_path / "drift.json", "--html", tmp_path / "drift.html",
                     "--write-profile", tmp_path / "profile.frx", "--any-column")
    assert code == 3 and s["drift"] is True and "temp" in s["drifted_columns"]
    report = read(tmp_path / "drift.json")
    assert report["reference"]["kind"] == "data" and report["current"]["rows"] == 1500
    assert [c["column"] for c in report["columns"] if c["drift"]] == s["drifted_columns"]
    assert (tmp_path / "drift.html").read_text().lstrip().lower().startswith("<!doctype html")

    code, s2, _ = run(capsys, "drift", "--reference", tmp_path / "profile.frx", "--current", files["current"],
                      "--out", tmp_path / "d2.json", "--any-column", "--target", "late")
    assert code == 3 and s2["drifted_columns"] == s["drifted_columns"] and read(tmp_path / "d2.json")["reference"]["kind"] == "profile"
    model = _train(capsys, files, tmp_path / "m.frx", 5)
    code, s3, _ = run(capsys, "drift", "--reference", model, "--current", files["current"], "--out", tmp_path / "d3.json",
                      "--any-column", "--exit-zero")    # the label column is left out: the profile has none
    assert code == 0 and "temp" in s3["drifted_columns"] and read(tmp_path / "d3.json")["reference"]["kind"] == "model"
    code, s4, _ = run(capsys, "drift", "--reference", files["train"], "--current", files["holdout"], "--out",
                      tmp_path / "d4.json", "--target", "late")
    assert code == 0 and s4["dataset_drift"] is False and "temp" not in s4["drifted_columns"]


def test_the_console_script_runs_a_step_and_documents_exit_codes(files, tmp_path):
    script = shutil.which("ferrox", path=str(Path(sys.executable).parent))
    cmd = [script] if script else [sys.executable, "-m", "ferrox"]
    help_ = subprocess.run(cmd + ["gate", "--help"], capture_output=True, text=True, timeout=120)
    assert help_.returncode == 0 and "3  the check ran and said no" in help_.stdout
    out = subprocess.run(cmd + ["train", "--data", files["train"], "--target", "late", "--num-boost-round", "10",
                                "--out", str(tmp_path / "m.frx")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    (line,) = out.stdout.splitlines()
    assert json.loads(line)["step"] == "train" and (tmp_path / "m.frx").exists()
    out = subprocess.run([sys.executable, "-m", "ferrox", "gate", "--challenger", str(tmp_path / "m.frx"), "--data",
                          files["holdout"], "--target", "late", "--thresholds", '{"auc": {"threshold": 0.999}}',
                          "--out", str(tmp_path / "v.json")], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ))
    assert out.returncode == 3 and json.loads(out.stdout)["reasons"] == ["below_threshold"]
    bad = subprocess.run(cmd + ["gate", "--data", files["holdout"]], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "required" in bad.stderr
