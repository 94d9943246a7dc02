"""Inference benchmark: ferrox's compiled forest vs LightGBM, XGBoost and treelite on the same models.

Run from the repository root::

    .venv/bin/python benches/predict.py                 # 2 threads, models of 100/500 trees x 31/255 leaves
    .venv/bin/python benches/predict.py --quick         # 100 trees x 31 leaves only

Data: 200,000 x 28 float64 training rows with 5% NaN and a binary label; 100,000 fresh test rows with
5% NaN. For each shape, LightGBM trains a model (``num_leaves``) and XGBoost trains one (hist,
lossguide, ``max_leaves``); ferrox imports both (``Booster.from_lightgbm`` / ``from_xgboost``) and every
library predicts probabilities for the same rows with the same thread count, at batch sizes 1, 10, 100,
10,000 and 100,000. treelite (tl2cgen) compiles the LightGBM model to a shared library when installed
(``pip install -r requirements-bench.txt``) and the shape is small enough to compile quickly.

Printed per shape: the largest raw-score difference from each source library (float64 and float32
input), microseconds per row (best of repeated calls on consecutive batches) and speed-ups of ferrox over
each peer; then TreeSHAP on 10,000 rows: LightGBM ``pred_contrib`` vs ferrox ``predict_contrib``, with
their largest difference.

Then a table of model shapes, each imported into ferrox and timed against the library that trained it
on the whole 100,000-row batch (median of ``--repeat`` calls each): XGBoost with its default depth (6)
and with max_depth 4, 5 and 8 (``inplace_predict``), LightGBM with 255 leaves and with categorical
features (``predict``), and 1,000-tree forests of both. Each line gives microseconds per row of both,
the ratio and the largest raw-score difference (0 when ferrox predicts bit for bit alike).
``--shapes-only`` prints just that table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

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


def _treelite(model, threads: int, workdir: str):
    """A tl2cgen predictor compiled from a LightGBM booster, or None with the reason."""
    try:
        import tl2cgen
        import treelite
    except ImportError:
        return None, "not installed (pip install -r requirements-bench.txt)"
    tm = treelite.frontend.from_lightgbm(model)
    lib = str(Path(workdir) / f"tl_{id(model)}.so")
    t = time.perf_counter()
    tl2cgen.export_lib(tm, toolchain="gcc", libpath=lib, params={"parallel_comp": 16}, nthread=threads, verbose=False)
    predictor = tl2cgen.Predictor(lib, nthread=threads, verbose=False)
    build_s = time.perf_counter() - t

    def predict(part: np.ndarray) -> np.ndarray:
        return predictor.predict(tl2cgen.DMatrix(part, dtype="float64"))

    return predict, f"compiled in {build_s:.0f} s"


def main() -> None:
    import lightgbm as lgb

    import ferrox as fx

    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="only 100 trees x 31 leaves")
    p.add_argument("--shap-rows", type=int, default=10_000)
    p.add_argument("--shapes-only", action="store_true", help="only the table of model shapes")
    p.add_argument("--repeat", type=int, default=5, help="calls per median in the table of model shapes")
    a = p.parse_args()
    rng = np.random.default_rng(0)
    n = 200_000
    X = rng.normal(size=(n, 28))
    X[rng.random(X.shape) < 0.05] = np.nan
    z = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) ** 2 - np.nan_to_num(X[:, 2]) * np.nan_to_num(X[:, 3])
    y = (z + rng.normal(size=n) > 1).astype(float)
    Xt = rng.normal(size=(100_000, 28))
    Xt[rng.random(Xt.shape) < 0.05] = np.nan
    Xt32 = Xt.astype(np.float32)
    shapes = [] if a.shapes_only else [(100, 31)] if a.quick else [(100, 31), (500, 31), (100, 255), (500, 255)]
    batches = [1, 10, 100, 10_000, 100_000]
    try:
        import xgboost as xgb
    except ImportError:
        xgb = None
        print("xgboost not installed: its inplace_predict is not timed")
    results = []
    workdir = tempfile.mkdtemp(prefix="ferrox-bench-")
    for trees, leaves in shapes:
        model = lgb.train(
            {"objective": "binary", "num_leaves": leaves, "verbose": -1, "num_threads": a.threads, "min_data_in_leaf": 5},
            lgb.Dataset(X, label=y),
            trees,
        )
        ours = fx.Booster.from_lightgbm(model)
        diff = max(
            float(np.abs(ours.predict(inp, raw_score=True) - model.predict(inp, raw_score=True)).max()) for inp in (Xt, Xt32)
        )
        peers: dict[str, tuple] = {"lightgbm": (lambda part: model.predict(part, num_threads=a.threads), ours)}
        notes = [f"max |raw score difference| vs LightGBM {diff:.3g}"]
        row = {"trees": trees, "leaves": leaves, "max_diff_lightgbm": diff}
        if xgb is not None:
            params = {"objective": "binary:logistic", "tree_method": "hist", "grow_policy": "lossguide", "max_leaves": leaves,
                      "max_depth": 0, "nthread": a.threads, "min_child_weight": 5, "eta": 0.1}
            bst = xgb.train(params, xgb.DMatrix(X, label=y, nthread=a.threads), trees)
            ours_x = fx.Booster.from_xgboost(bst)
            dx = max(
                float(np.abs(ours_x.predict(inp, raw_score=True) - bst.inplace_predict(inp, predict_type="margin")).max())
                for inp in (Xt, Xt32)
            )
            notes.append(f"vs XGBoost {dx:.3g}")
            row["max_diff_xgboost"] = dx
            peers["xgboost"] = (lambda part: bst.inplace_predict(part), ours_x)
        if trees * leaves <= 100 * 31:
            tl, why = _treelite(model, a.threads, workdir)
            notes.append(f"treelite {why}")
            if tl is not None:
                peers["treelite"] = (tl, ours)
        print(f"\n{trees} trees x {leaves} leaves, {a.threads} threads; " + "; ".join(notes))
        header = f"{'batch':>8}" + "".join(f"{name + ' us/row':>18}{'ferrox us/row':>15}{'speed-up':>10}" for name in peers)
        print(header)
        for b in batches:
            line = f"{b:>8}"
            for name, (peer, mine) in peers.items():
                t_peer = _best_us_per_row(peer, Xt, b)
                t_fx = _best_us_per_row(lambda part: mine.predict(part, num_threads=a.threads), Xt, b)
                line += f"{t_peer:>18.3f}{t_fx:>15.3f}{t_peer / t_fx:>9.1f}x"
                row[f"{name}_{b}_us"] = t_peer
                row[f"ferrox_vs_{name}_{b}_us"] = t_fx
            print(line)
        rows = Xt[: a.shap_rows]
        t_lc = min(_timed(lambda: model.predict(rows, pred_contrib=True, num_threads=a.threads)) for _ in range(2))
        t_fc = min(_timed(lambda: ours.predict_contrib(rows, num_threads=a.threads)) for _ in range(2))
        dc = float(np.abs(ours.predict_contrib(rows) - model.predict(rows, pred_contrib=True)).max())
        print(f"TreeSHAP on {len(rows)} rows: LightGBM pred_contrib {t_lc * 1e3:.0f} ms, ferrox {t_fc * 1e3:.0f} ms, "
              f"speed-up {t_lc / t_fc:.2f}x, max |difference| {dc:.3g}")
        row.update({"shap_lightgbm_ms": t_lc * 1e3, "shap_ferrox_ms": t_fc * 1e3, "shap_max_diff": dc})
        results.append(row)
    table = [] if a.quick else shape_table(X, y, Xt, a.threads, a.repeat)
    print(json.dumps({"bench": "predict", "threads": a.threads, "results": results, "shapes": table}))


def _median_s(fn, repeat: int) -> float:
    fn()  # warm-up
    return statistics.median(_timed(fn) for _ in range(repeat))


def shape_table(X: np.ndarray, y: np.ndarray, Xt: np.ndarray, threads: int, repeat: int) -> list[dict]:
    """Each model shape against the library that trained it, on the whole test batch."""
    import lightgbm as lgb

    import ferrox as fx

    try:
        import xgboost as xgb
    except ImportError:
        xgb = None
    rng = np.random.default_rng(1)
    # Categorical features: four columns of whole-number categories (8, 20, 50 and 200 of them) that
    # move the label, in place of the last four numeric columns.
    Xc, Xtc = X.copy(), Xt.copy()
    cat_cols = [24, 25, 26, 27]
    for j, k in zip(cat_cols, [8, 20, 50, 200]):
        Xc[:, j] = rng.integers(0, k, size=len(X))
        Xtc[:, j] = rng.integers(0, k, size=len(Xt))
        Xtc[rng.random(len(Xt)) < 0.02, j] = np.nan
    yc = ((y + np.isin(Xc[:, 24], [1, 3, 6]) + np.isin(Xc[:, 26] % 7, [2, 5])) > 1.5).astype(float)

    def lgb_case(label, trees, leaves, cats=False):
        params = {"objective": "binary", "num_leaves": leaves, "verbose": -1, "num_threads": threads, "min_data_in_leaf": 5}
        data, test = (Xc, Xtc) if cats else (X, Xt)
        ds = lgb.Dataset(data, label=yc if cats else y, categorical_feature=cat_cols if cats else "auto")
        model = lgb.train({**params, "max_cat_to_onehot": 4} if cats else params, ds, trees)
        ours = fx.Booster.from_lightgbm(model)
        diff = float(np.abs(ours.predict(test, raw_score=True) - model.predict(test, raw_score=True)).max())
        return label, "lightgbm predict", test, lambda: model.predict(test, num_threads=threads), ours, diff

    def xgb_case(label, trees, depth):
        params = {"objective": "binary:logistic", "tree_method": "hist", "nthread": threads}
        if depth is not None:
            params["max_depth"] = depth
        bst = xgb.train(params, xgb.DMatrix(X, label=y, nthread=threads), trees)
        ours = fx.Booster.from_xgboost(bst)
        diff = float(np.abs(ours.predict(Xt, raw_score=True) - bst.inplace_predict(Xt, predict_type="margin")).max())
        return label, "xgboost inplace_predict", Xt, lambda: bst.inplace_predict(Xt), ours, diff

    cases = [lambda: lgb_case("LightGBM 100 trees x 31 leaves", 100, 31),
             lambda: lgb_case("LightGBM 100 trees x 255 leaves", 100, 255),
             lambda: lgb_case("LightGBM 100 trees x 31 leaves, 4 categorical", 100, 31, cats=True),
             lambda: lgb_case("LightGBM 100 trees x 255 leaves, 4 categorical", 100, 255, cats=True),
             lambda: lgb_case("LightGBM 1000 trees x 31 leaves", 1000, 31)]
    if xgb is not None:
        cases += [lambda: xgb_case("XGBoost 100 trees, max_depth 4", 100, 4),
                  lambda: xgb_case("XGBoost 100 trees, max_depth 5", 100, 5),
                  lambda: xgb_case("XGBoost 100 trees, defaults (max_depth 6)", 100, None),
                  lambda: xgb_case("XGBoost 100 trees, max_depth 8", 100, 8),
                  lambda: xgb_case("XGBoost 1000 trees, defaults (max_depth 6)", 1000, None)]
    print(f"\nModel shapes, {len(Xt)} rows in one batch, {threads} threads, median of {repeat} calls")
    print(f"{'shape':<50}{'peer':>26}{'peer us/row':>13}{'ferrox us/row':>15}{'speed-up':>10}{'max |diff|':>12}")
    out = []
    for make in cases:
        label, peer, test, run_peer, ours, diff = make()
        t_peer = _median_s(run_peer, repeat) / len(test) * 1e6
        t_fx = _median_s(lambda: ours.predict(test, num_threads=threads), repeat) / len(test) * 1e6
        print(f"{label:<50}{peer:>26}{t_peer:>13.3f}{t_fx:>15.3f}{t_peer / t_fx:>9.1f}x{diff:>12.3g}")
        out.append({"shape": label, "peer": peer, "peer_us": t_peer, "ferrox_us": t_fx, "max_diff": diff})
    return out


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
