"""GBDT training benchmark: ferrox vs LightGBM, XGBoost (hist) and scikit-learn HistGradientBoosting.

Run from the repository root::

    .venv/bin/python benches/gbdt.py                         # 1,000,000 x 28 binary, 100 trees, 2 threads
    .venv/bin/python benches/gbdt.py --rows 200000 --task regression --repeats 1

Data: ``sklearn.datasets.make_classification`` (28 features, 18 informative, seeded) for ``--task
binary``; ``make_regression`` with noise for ``--task regression``; 80% train, 20% test. Every library
gets the same data, 31 leaves, 255 bins, learning rate 0.1, the same number of trees and threads.

Each library trains in a fresh child process (this script with a hidden flag) so its peak memory is its
own: peak RSS (VmHWM, reset after the data is made) minus the baseline. Reported per library: median
train time over repeats (Dataset construction included for every library, imports not), predict time on the test
rows, peak extra memory, and AUC (binary) or RMSE (regression) on the test rows; then ratios against
LightGBM. Libraries that are not installed are skipped with a note.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import statistics
import subprocess
import sys
import time

LIBS = ("ferrox", "lightgbm", "xgboost", "sklearn")


def _status() -> dict[str, int]:
    with open("/proc/self/status") as f:
        text = f.read()
    return {k: int(v) * 1024 for k, v in re.findall(r"^(VmHWM|VmRSS):\s+(\d+) kB", text, re.M)}


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _data(task: str, rows: int, cols: int):
    import numpy as np
    from sklearn.datasets import make_classification, make_regression

    if task == "binary":
        X, y = make_classification(
            n_samples=rows, n_features=cols, n_informative=min(18, cols), n_redundant=0, random_state=0, flip_y=0.05
        )
    else:
        X, y = make_regression(n_samples=rows, n_features=cols, n_informative=min(18, cols), noise=10.0, random_state=0)
    X = X.astype(np.float32)
    cut = int(rows * 0.8)
    return X[:cut], y[:cut].astype(np.float64), X[cut:], y[cut:].astype(np.float64)


def _auc(y, s) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def _child(lib: str, task: str, rows: int, cols: int, trees: int, threads: int) -> None:
    import numpy as np

    Xtr, ytr, Xte, yte = _data(task, rows, cols)
    # Imports happen before the clock and the memory baseline: they are not training.
    importlib.import_module({"ferrox": "ferrox", "lightgbm": "lightgbm", "xgboost": "xgboost", "sklearn": "sklearn.ensemble"}[lib])
    if lib == "sklearn":
        importlib.import_module("threadpoolctl")
    _reset_peak()
    before = _status()
    t0 = time.perf_counter()
    if lib == "ferrox":
        import ferrox as fx

        version = fx.__version__
        params = {"objective": task, "num_leaves": 31, "learning_rate": 0.1, "max_bin": 255, "num_threads": threads, "verbosity": -1}
        model = fx.train(params, fx.Dataset(Xtr, label=ytr, max_bin=255, num_threads=threads), trees)
        predict = model.predict
    elif lib == "lightgbm":
        import lightgbm as lgb

        version = lgb.__version__
        params = {"objective": task, "num_leaves": 31, "learning_rate": 0.1, "max_bin": 255, "num_threads": threads, "verbose": -1}
        model = lgb.train(params, lgb.Dataset(Xtr, label=ytr), trees)
        predict = model.predict
    elif lib == "xgboost":
        import xgboost as xgb

        version = xgb.__version__
        obj = "binary:logistic" if task == "binary" else "reg:squarederror"
        params = {"objective": obj, "tree_method": "hist", "max_leaves": 31, "grow_policy": "lossguide", "max_depth": 0, "eta": 0.1, "max_bin": 255, "nthread": threads}
        model = xgb.train(params, xgb.DMatrix(Xtr, label=ytr, nthread=threads), trees)
        predict = lambda X: model.inplace_predict(X)  # noqa: E731
    else:
        import sklearn
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
        from threadpoolctl import threadpool_limits

        version = sklearn.__version__
        cls = HistGradientBoostingClassifier if task == "binary" else HistGradientBoostingRegressor
        limiter = threadpool_limits(limits=threads, user_api="openmp")
        model = cls(max_iter=trees, max_leaf_nodes=31, learning_rate=0.1, max_bins=255, early_stopping=False, random_state=0).fit(Xtr, ytr)
        predict = (lambda X: model.predict_proba(X)[:, 1]) if task == "binary" else model.predict
    train_s = time.perf_counter() - t0
    peak = _status()["VmHWM"] - before["VmHWM"]
    t0 = time.perf_counter()
    p = np.asarray(predict(Xte))
    predict_s = time.perf_counter() - t0
    score = _auc(yte, p) if task == "binary" else float(np.sqrt(np.mean((p - yte) ** 2)))
    if lib == "sklearn":
        limiter.unregister()
    print(json.dumps({"lib": lib, "version": version, "train_s": train_s, "predict_s": predict_s, "peak_bytes": peak, "score": score}))


def _installed(lib: str) -> bool:
    mod = {"ferrox": "ferrox", "lightgbm": "lightgbm", "xgboost": "xgboost", "sklearn": "sklearn"}[lib]
    return subprocess.run([sys.executable, "-c", f"import {mod}"], capture_output=True).returncode == 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--cols", type=int, default=28)
    p.add_argument("--trees", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--task", choices=("binary", "regression"), default="binary")
    p.add_argument("--libs", default=",".join(LIBS), help="comma-separated subset of " + ",".join(LIBS))
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        _child(a.child, a.task, a.rows, a.cols, a.trees, a.threads)
        return
    libs = [lib for lib in a.libs.split(",") if lib]
    missing = [lib for lib in libs if not _installed(lib)]
    libs = [lib for lib in libs if lib not in missing]
    runs: dict[str, list[dict]] = {lib: [] for lib in libs}
    for r in range(a.repeats):
        for lib in libs:
            cmd = [sys.executable, os.path.abspath(__file__), "--child", lib, "--task", a.task, "--rows", str(a.rows),
                   "--cols", str(a.cols), "--trees", str(a.trees), "--threads", str(a.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(f"{lib} failed:\n{out.stderr}")
            res = json.loads(out.stdout.strip().splitlines()[-1])
            runs[lib].append(res)
            print(f"  repeat {r + 1}/{a.repeats} {lib:<9} train {res['train_s']:7.2f} s  score {res['score']:.5f}", flush=True)
    metric = "AUC" if a.task == "binary" else "RMSE"
    print(f"\n{a.task}: {a.rows:,} x {a.cols} (80% train), {a.trees} trees x 31 leaves, 255 bins, {a.threads} threads, {a.repeats} repeats")
    head = f"{'library':<18}{'train s':>9}{'predict s':>11}{'peak MiB':>10}{metric:>10}{'train vs lgb':>14}"
    print(head + "\n" + "-" * len(head))
    summary = {}
    for lib in libs:
        rs = runs[lib]
        summary[lib] = {
            "version": rs[0]["version"],
            "train_s": statistics.median(r["train_s"] for r in rs),
            "predict_s": statistics.median(r["predict_s"] for r in rs),
            "peak_bytes": max(r["peak_bytes"] for r in rs),
            "score": rs[0]["score"],
        }
    base = summary.get("lightgbm")
    for lib, s in summary.items():
        ratio = f"{s['train_s'] / base['train_s']:.3f}x" if base else "-"
        print(f"{lib + ' ' + s['version']:<18}{s['train_s']:>9.2f}{s['predict_s']:>11.3f}{s['peak_bytes'] / 2**20:>10.1f}{s['score']:>10.5f}{ratio:>14}")
    if missing:
        print("not installed, skipped: " + ", ".join(missing))
    print(json.dumps({"bench": "gbdt", "task": a.task, "rows": a.rows, "threads": a.threads, "results": summary}))


if __name__ == "__main__":
    main()
