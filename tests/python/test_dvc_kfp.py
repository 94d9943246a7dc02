"""The pipeline examples: examples/dvc.yaml reproduces with DVC (then is cached), and examples/kfp_pipeline.py
compiles to Kubeflow IR whose commands the ferrox command line accepts."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BIN = Path(sys.executable).parent
STEPS = ["validate", "train", "evaluate", "gate", "register", "promote", "drift"]


def _env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", DVC_NO_ANALYTICS="1",
                DVC_SITE_CACHE_DIR=str(tmp_path / "dvc-site"), HOME=str(tmp_path))


def _dvc(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    dvc = shutil.which("dvc", path=env["PATH"])
    assert dvc is not None
    return subprocess.run([dvc, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_dvc_pipeline_reproduces_then_has_nothing_to_do(tmp_path):
    env = _env(tmp_path)
    if shutil.which("dvc", path=env["PATH"]) is None:
        pytest.skip("dvc is not installed (requirements-dev.txt)")
    if shutil.which("ferrox", path=env["PATH"]) is None:
        pytest.skip("the ferrox console script is not on PATH")
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(EXAMPLES / "dvc.yaml", repo / "dvc.yaml")
    shutil.copytree(EXAMPLES / "dvc", repo / "dvc", ignore=shutil.ignore_patterns("out", "__pycache__"))
    assert _dvc(["init", "--no-scm"], repo, env).returncode == 0
    first = _dvc(["repro"], repo, env)
    assert first.returncode == 0, first.stdout + first.stderr
    out = repo / "dvc" / "out"
    for stage in ("data", "validate", "champion", "train", "evaluate", "gate", "drift"):
        assert f"Running stage '{stage}'" in first.stdout
    assert (repo / "dvc.lock").exists()

    validation = json.loads((out / "validation.json").read_text())
    assert validation["ok"] is True and validation["rows"] == 4000
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "binary" and metrics["auc"] > 0.8 and metrics["rows"] == 2000
    assert sorted(metrics["slices"]["carrier"]) == ["AA", "B6", "DL", "UA"]
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["passed"] is True and verdict["reasons"] == []
    assert verdict["metrics"]["challenger"]["auc"] > verdict["metrics"]["champion"]["auc"]
    assert {c["slice"]["value"] for c in verdict["checks"] if c["slice"]} == {"AA", "B6", "DL", "UA"}
    assert {c["name"] for c in verdict["checks"]} >= {"loads", "finite", "latency", "threshold", "min_absolute_change"}
    drift = json.loads((out / "drift.json").read_text())
    drifted = [c["column"] for c in drift["columns"] if c["drift"]]
    assert "temp" in drifted and "distance" not in drifted and drift["reference"]["kind"] == "model"
    assert (out / "drift.html").stat().st_size > 1000
    train_metrics = json.loads((out / "train_metrics.json").read_text())
    assert train_metrics["rounds"] == 150 and train_metrics["train"]["auc"] > metrics["auc"] - 0.1

    import ferrox as fx

    model = fx.pipeline.Pipeline.load(out / "model.frx")
    assert model.reference_profile_ is not None and model.classes_.tolist() == [0, 1]

    second = _dvc(["repro"], repo, env)
    assert second.returncode == 0, second.stderr
    assert "Running stage" not in second.stdout
    assert "Data and pipelines are up to date." in second.stdout
    shown = _dvc(["metrics", "show", "--json"], repo, env)
    assert shown.returncode == 0 and '"auc"' in shown.stdout

    # Stricter rules: only the gate runs again, and its exit code 3 stops the pipeline.
    (repo / "dvc" / "gate.json").write_text(json.dumps({"auc": {"threshold": 0.999}}))
    third = _dvc(["repro"], repo, env)
    assert third.returncode != 0
    assert "Running stage 'gate'" in third.stdout and "Running stage 'train'" not in third.stdout
    refused = json.loads((out / "verdict.json").read_text())
    assert refused["passed"] is False and refused["reasons"] == ["below_threshold"]


def _kfp_compile(tmp_path: Path, *extra: str) -> dict:
    pytest.importorskip("kfp")
    yaml = pytest.importorskip("yaml")
    path = tmp_path / "pipeline.yaml"
    r = subprocess.run([sys.executable, str(EXAMPLES / "kfp_pipeline.py"), str(path), *extra], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(path.read_text())


def _expand(args: list) -> list[str]:
    """Container args with Kubeflow placeholders replaced by sample values (IfPresent: taken as present)."""
    out: list[str] = []
    for a in args:
        if isinstance(a, str) and a.startswith('{"IfPresent"'):
            out += _expand(json.loads(a)["IfPresent"]["Then"])
        elif isinstance(a, str):
            out.append(re.sub(r"\{\{\$\.[^}]*\}\}", "1", a))
        else:
            out.append(str(a))
    return out


def test_kfp_pipeline_compiles_to_ferrox_container_components(tmp_path):
    from ferrox.cli import build_parser

    spec = _kfp_compile(tmp_path, "--image", "registry.example.com/ferrox:1.2")
    executors = spec["deploymentSpec"]["executors"]
    containers = {name: e["container"] for name, e in executors.items() if "container" in e}
    by_step = {c["command"][1]: c for c in containers.values() if c["command"][0] == "ferrox"}
    assert sorted(by_step) == sorted(STEPS)
    parser = build_parser()
    for step, c in by_step.items():
        assert c["command"] == ["ferrox", step] and c["image"] == "registry.example.com/ferrox:1.2"
        args = parser.parse_args([step, *_expand(c["args"])])      # the real CLI accepts every command
        assert args.command == step
    gate = by_step["gate"]["args"]
    assert "{{$.inputs.artifacts['challenger'].path}}" in gate
    assert any("IfPresent" in a and "--champion" in a for a in gate if isinstance(a, str))
    assert "{{$.outputs.artifacts['verdict'].path}}" in gate
    assert "{{$.outputs.artifacts['model'].path}}" in by_step["train"]["args"]
    assert "--exit-zero" in by_step["drift"]["args"] and "--exit-zero" not in gate

    components = spec["components"]
    assert {"comp-" + s for s in STEPS} <= set(components)
    assert components["comp-train"]["inputDefinitions"]["artifacts"]["data"]["artifactType"]["schemaTitle"] == "system.Dataset"
    assert components["comp-train"]["outputDefinitions"]["artifacts"]["model"]["artifactType"]["schemaTitle"] == "system.Model"
    assert components["comp-gate"]["inputDefinitions"]["artifacts"]["champion"].get("isOptional") is True
    tasks = spec["root"]["dag"]["tasks"]
    # Nothing is registered before the gate said yes; promotion follows registration.
    assert "gate" in tasks["register"]["dependentTasks"] and "register" in tasks["promote"]["dependentTasks"]
    assert "validate" in tasks["train"]["dependentTasks"]
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert json.loads(params["thresholds"]["defaultValue"])["auc"]["threshold"] > 0
    assert {"train_uri", "holdout_uri", "current_uri", "champion_uri", "tracking_uri"} <= set(params)

    default = _kfp_compile(tmp_path)
    images = {e["container"]["image"] for e in default["deploymentSpec"]["executors"].values() if "container" in e
              and e["container"].get("command", [""])[0] == "ferrox"}
    assert images == {"ferrox:latest"}
