"""`make demo` runs the whole loop: this runs the same script and checks its summary."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_end_to_end():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "demo.py")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["later_rmse"] < 0.6 * summary["baseline_rmse"]
    assert summary["valid_rmse"] > 0 and summary["model_version"] >= 1
    assert summary["single_row_p50_us"] > 0 and summary["batch_rows_per_s"] > 0
    assert isinstance(summary["drifted_columns"], list)
    assert (ROOT / "examples" / "output" / "drift_report.html").stat().st_size > 1_000
    loop = summary["loop"]
    # The production loop: quiet on stationary traffic, promoted after the drift alert, a worse challenger
    # refused by the gate, a biased one rolled back by the canary, and not one failed request.
    assert loop["stationary_alerts"] == 0
    assert loop["promoted_version"] == "2" and loop["alert_to_promoted_s"] > 0
    assert list(loop["run_steps_s"]) == ["gather", "validate", "train", "gate", "register", "shadow", "canary", "promote"]
    assert loop["worse_challenger"] == "refused" and loop["biased_challenger"] == "rolled_back"
    assert loop["failed_requests"] == 0
