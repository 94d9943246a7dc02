"""The device check (``make gpu-check``): on a machine with an NVIDIA GPU, checks that the GPU path
gives the CPU path's models and predictions, then times it against XGBoost's GPU path.

Run from the repository root::

    .venv/bin/python benches/gpu.py             # the whole check, about 5 minutes on an H100-class GPU
    .venv/bin/python benches/gpu.py --quick     # smaller sizes, to try the script

Steps, each printed as it finishes (and all of them as JSON to ``--out``, default ``$OUT/gpu.json``
when ``$OUT`` is set):

1. ``status``: driver, NVRTC, devices (exit code 2 when there is no usable GPU: nothing is checked).
2. ``bytes``: models trained on the GPU and on the CPU with the same parameters and seed, quantised
   (``use_quantized_grad=True``) and fixed-point, with bagging, feature fraction and a categorical
   feature: equal bytes or not.
3. ``predict_equal``: GPU predictions against CPU predictions (binary and multiclass, raw and
   transformed): equal or not.
4. ``train``: 10M x 28 binary (``make_classification``), 255 bins, 31 leaves, 500 rounds, quantised,
   ferrox ``device="cuda"`` against XGBoost ``device="cuda"`` (hist, lossguide, 31 leaves): wall time
   (Dataset construction included) and test AUC of each, and the time ratio.
5. ``inference``: a 1,000-tree forest on 1M rows, ferrox ``predict(device="cuda")`` against XGBoost's
   GPU ``inplace_predict`` on a forest of the same shape: rows per second of each, and the ratio.

NVRTC (``nvidia-cuda-nvrtc-cu12``, about 100 MB) is not needed on the GPU machine when the PTX cache is
filled elsewhere: ``FERROX_CACHE_DIR=ptx-cache python -c "import ferrox as fx;
fx.gpu.compile_kernels('compute_90')"`` and run the check with the same ``FERROX_CACHE_DIR``.

XGBoost steps are skipped with a note when the ``xgboost`` package (with CUDA) is missing. Exit code 1
when a parity check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np

import ferrox as fx


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def _classification(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=rows, n_features=28, n_informative=18, random_state=seed)
    return X.astype(np.float64), y.astype(np.float64)


def _parity_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    X[rng.random(n) < 0.05, 2] = np.nan
    X[:, 4] = rng.integers(0, 12, size=n)
    y = (X[:, 0] + X[:, 1] ** 2 - 1 + (X[:, 4] % 3 == 0) + rng.normal(scale=0.5, size=n) > 0).astype(np.float64)
    return X, y


def check_bytes(rows: int, rounds: int) -> dict[str, Any]:
    X, y = _parity_data(rows, 1)
    out: dict[str, Any] = {}
    for quantized in (True, False):
        params = {
            "verbosity": -1,
            "objective": "binary",
            "num_leaves": 31,
            "use_quantized_grad": quantized,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "feature_fraction": 0.8,
            "seed": 7,
        }
        t0 = time.perf_counter()
        cpu = fx.train(params, fx.Dataset(X, label=y, categorical_feature=[4]), rounds)
        t1 = time.perf_counter()
        gpu = fx.train({**params, "device": "cuda"}, fx.Dataset(X, label=y, categorical_feature=[4]), rounds)
        t2 = time.perf_counter()
        key = "quantized" if quantized else "fixed_point"
        out[key] = {"equal": cpu.to_bytes() == gpu.to_bytes(), "cpu_s": round(t1 - t0, 3), "gpu_s": round(t2 - t1, 3)}
    return out


def check_predict(rows: int) -> dict[str, Any]:
    X, y = _parity_data(rows, 2)
    out: dict[str, Any] = {}
    for name, params, label in (
        ("binary", {"objective": "binary"}, y),
        ("multiclass", {"objective": "multiclass", "num_class": 3}, (np.nan_to_num(X[:, 0]) > 0) + (X[:, 1] > 0.5)),
    ):
        b = fx.train({"verbosity": -1, "num_leaves": 63, **params}, fx.Dataset(X, label=label, categorical_feature=[4]), 60)
        out[name] = all(np.array_equal(b.predict(X, raw_score=raw, device="cuda"), b.predict(X, raw_score=raw)) for raw in (False, True))
    return out


def _xgboost() -> Any:
    try:
        import xgboost

        return xgboost
    except ImportError:
        return None


def bench_train(rows: int, rounds: int) -> dict[str, Any]:
    X, y = _classification(rows, 3)
    cut = int(rows * 0.8)
    Xtr, ytr, Xte, yte = X[:cut], y[:cut], X[cut:], y[cut:]
    out: dict[str, Any] = {"rows": rows, "rounds": rounds}
    params = {"objective": "binary", "num_leaves": 31, "max_bin": 255, "learning_rate": 0.1, "use_quantized_grad": True, "verbosity": -1, "device": "cuda"}
    t0 = time.perf_counter()
    b = fx.train(params, fx.Dataset(Xtr, label=ytr), rounds)
    out["ferrox_s"] = round(time.perf_counter() - t0, 3)
    out["ferrox_auc"] = round(_auc(yte, b.predict(Xte, device="cuda")), 5)
    xgb = _xgboost()
    if xgb is None:
        out["xgboost"] = "not installed"
        return out
    t0 = time.perf_counter()
    d = xgb.QuantileDMatrix(Xtr, label=ytr, max_bin=255)
    xp = {"objective": "binary:logistic", "tree_method": "hist", "device": "cuda", "max_leaves": 31, "grow_policy": "lossguide", "max_depth": 0, "eta": 0.1, "max_bin": 255}
    m = xgb.train(xp, d, rounds)
    out["xgboost_s"] = round(time.perf_counter() - t0, 3)
    out["xgboost_auc"] = round(_auc(yte, m.inplace_predict(Xte)), 5)
    out["time_ratio_ferrox_over_xgboost"] = round(out["ferrox_s"] / out["xgboost_s"], 3)
    return out


def bench_inference(rows: int, trees: int) -> dict[str, Any]:
    X, y = _classification(200_000, 4)
    Xq, _ = _classification(rows, 5)
    out: dict[str, Any] = {"rows": rows, "trees": trees}
    b = fx.train({"objective": "binary", "num_leaves": 31, "verbosity": -1, "device": "cuda"}, fx.Dataset(X, label=y), trees)
    b.predict(Xq[:1000], device="cuda")  # uploads the forest, compiles the kernel
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        p_gpu = b.predict(Xq, device="cuda")
        times.append(time.perf_counter() - t0)
    out["ferrox_rows_per_s"] = round(rows / min(times))
    out["equal_to_cpu"] = bool(np.array_equal(p_gpu, b.predict(Xq)))
    xgb = _xgboost()
    if xgb is None:
        out["xgboost"] = "not installed"
        return out
    m = xgb.train({"objective": "binary:logistic", "tree_method": "hist", "device": "cuda", "max_leaves": 31, "grow_policy": "lossguide", "max_depth": 0}, xgb.DMatrix(X, label=y), trees)
    m.inplace_predict(Xq[:1000])
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        m.inplace_predict(Xq)
        times.append(time.perf_counter() - t0)
    out["xgboost_rows_per_s"] = round(rows / min(times))
    out["throughput_ratio_ferrox_over_xgboost"] = round(out["ferrox_rows_per_s"] / out["xgboost_rows_per_s"], 3)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (1M-row training, 100 rounds)")
    default_out = os.path.join(os.environ["OUT"], "gpu.json") if os.environ.get("OUT") else None
    ap.add_argument("--out", default=default_out, help="where to write the JSON summary")
    args = ap.parse_args()
    report: dict[str, Any] = {"status": fx.gpu.status()}

    def emit(key: str, value: Any) -> None:
        report[key] = value
        print(f"{key}: {json.dumps(value)}", flush=True)
        if args.out:
            with open(args.out, "w") as f:
                json.dump(report, f, indent=2)

    emit("status", report["status"])
    if report["status"]["devices"] == 0:
        print("no usable GPU: nothing checked", file=sys.stderr)
        return 2
    try:
        fx.gpu.require("cuda")
        emit("kernels", "loaded")
        emit("bytes", check_bytes(100_000 if args.quick else 1_000_000, 30 if args.quick else 100))
        emit("predict_equal", check_predict(50_000 if args.quick else 500_000))
        emit("train", bench_train(1_000_000 if args.quick else 10_000_000, 100 if args.quick else 500))
        emit("inference", bench_inference(200_000 if args.quick else 1_000_000, 200 if args.quick else 1000))
    except fx.FerroxError as e:
        emit("error", f"{type(e).__name__}: {e}")
        return 1
    ok = all(v["equal"] for v in report["bytes"].values()) and all(report["predict_equal"].values()) and report["inference"]["equal_to_cpu"]
    emit("parity", "pass" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
