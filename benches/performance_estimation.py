"""Estimated performance without labels against the realised one, and against NannyML's estimate.

A GBDT classifier is trained on one population; reference data (held out, same population) calibrates
its scores; a covariate-shifted sample (the features move, P(y | x) does not) is scored. Printed per
seed: the realised ROC AUC and accuracy of the shifted sample, ferrox's confidence-based estimate
(ferrox.performance.CBPE) and NannyML's CBPE estimate on the same scores, with the time each took.
A regressor's direct loss estimate (ferrox.performance.DLE) is printed beside its realised MAE.

NannyML pins its own dependencies, so it runs in a virtual environment of its own:

    python -m venv /tmp/nml && /tmp/nml/bin/pip install nannyml==0.13.1 statsmodels
    python benches/performance_estimation.py --nannyml-python /tmp/nml/bin/python

Without ``--nannyml-python`` (or the ``NANNYML_PYTHON`` variable) the NannyML column is left out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time

import numpy as np
import pandas as pd

import ferrox as fx

NML_SCRIPT = r"""
import json, sys, time, warnings
import pandas as pd
import nannyml as nml
warnings.simplefilter("ignore")
ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
t = time.perf_counter()
est = nml.CBPE(y_pred_proba="p", y_pred="yhat", y_true="y", metrics=["roc_auc", "accuracy"],
               problem_type="classification_binary", chunk_number=1)
est.fit(ref)
r = est.estimate(cur).filter(period="analysis").to_df()
s = time.perf_counter() - t
print(json.dumps({"roc_auc": float(r[("roc_auc", "value")].iloc[0]), "accuracy": float(r[("accuracy", "value")].iloc[0]),
                  "seconds": s}))
"""


def population(rng: np.random.Generator, n: int, shift: bool) -> tuple[np.ndarray, np.ndarray]:
    X = rng.normal(size=(n, 8))
    if shift:
        X[:, 0] = rng.normal(1.0, 0.6, n)
        X[:, 1] = rng.normal(-0.5, 1.4, n)
        X[:, 2] = rng.normal(0.0, 0.5, n)
    logit = 1.2 * X[:, 0] - 0.8 * X[:, 1] * (X[:, 2] > 0) + 0.6 * np.sin(2 * X[:, 3]) + 0.4 * X[:, 4] * X[:, 5]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def nannyml(python: str, ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, float] | None:
    with tempfile.TemporaryDirectory() as d:
        rp, cp, sp = os.path.join(d, "ref.parquet"), os.path.join(d, "cur.parquet"), os.path.join(d, "nml.py")
        ref.to_parquet(rp)
        cur.to_parquet(cp)
        with open(sp, "w") as f:
            f.write(NML_SCRIPT)
        out = subprocess.run([python, sp, rp, cp], capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            print("NannyML failed:", out.stderr[-800:])
            return None
        return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000, help="rows of reference and of shifted data")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--nannyml-python", default=os.environ.get("NANNYML_PYTHON"))
    args = ap.parse_args()
    print(f"ferrox {fx.__version__}; {args.rows:,} reference and {args.rows:,} shifted rows; "
          f"NannyML: {'yes' if args.nannyml_python else 'not run (no --nannyml-python)'}")
    head = f"{'seed':>4} {'metric':>8} {'realised':>9} {'ferrox':>8} {'|diff|':>7} {'NannyML':>8} {'|diff|':>7}"
    print(head)
    worst = {"ferrox": 0.0, "nannyml": 0.0}
    times = {"ferrox": [], "nannyml": []}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        Xt, yt = population(rng, 2 * args.rows, shift=False)
        Xr, yr = population(rng, args.rows, shift=False)
        Xc, yc = population(rng, args.rows, shift=True)
        model = fx.GBDTClassifier(n_estimators=200, num_leaves=15, learning_rate=0.05, verbose=-1).fit(Xt, yt)
        pr, pc = model.predict_proba(Xr)[:, 1], model.predict_proba(Xc)[:, 1]
        real = fx.performance.realised("binary", pc, yc)
        t = time.perf_counter()
        est = fx.performance.CBPE().fit(pr, yr).estimate(pc)
        times["ferrox"].append(time.perf_counter() - t)
        nml = None
        if args.nannyml_python:
            ref = pd.DataFrame({"p": pr, "yhat": (pr >= 0.5).astype(int), "y": yr})
            cur = pd.DataFrame({"p": pc, "yhat": (pc >= 0.5).astype(int)})
            nml = nannyml(args.nannyml_python, ref, cur)
            if nml:
                times["nannyml"].append(nml["seconds"])
        for metric in ("roc_auc", "accuracy"):
            e = est[metric]["value"]
            line = f"{seed:>4} {metric:>8} {real[metric]:>9.4f} {e:>8.4f} {abs(e - real[metric]):>7.4f}"
            worst["ferrox"] = max(worst["ferrox"], abs(e - real[metric])) if metric == "roc_auc" else worst["ferrox"]
            if nml:
                line += f" {nml[metric]:>8.4f} {abs(nml[metric] - real[metric]):>7.4f}"
                if metric == "roc_auc":
                    worst["nannyml"] = max(worst["nannyml"], abs(nml[metric] - real[metric]))
            print(line)
        ref_auc = fx.performance.realised("binary", pr, yr)["roc_auc"]
        print(f"     (reference AUC {ref_auc:.4f}; ferrox band {est['roc_auc']['lower']:.4f}..{est['roc_auc']['upper']:.4f})")
    print(f"largest |estimated - realised| AUC: ferrox {worst['ferrox']:.4f}"
          + (f", NannyML {worst['nannyml']:.4f}" if times["nannyml"] else "") + " (bar: 0.02)")
    ft = np.median(times["ferrox"])
    msg = f"estimation time (fit + estimate, median): ferrox {ft * 1000:.1f} ms"
    if times["nannyml"]:
        nt = np.median(times["nannyml"])
        msg += f", NannyML {nt * 1000:.0f} ms: {nt / ft:.0f}x"
    print(msg)

    # Direct loss estimation of a regressor under the same shift.
    rng = np.random.default_rng(100)
    Xt, _ = population(rng, 2 * args.rows, shift=False)
    Xr, _ = population(rng, args.rows, shift=False)
    Xc, _ = population(rng, args.rows, shift=True)

    def target(X: np.ndarray) -> np.ndarray:
        return X[:, 0] + np.sin(X[:, 3]) + rng.normal(size=len(X)) * (0.3 + np.abs(X[:, 1]))

    yt, yr, yc = target(Xt), target(Xr), target(Xc)
    reg = fx.GBDTRegressor(n_estimators=200, num_leaves=15, learning_rate=0.05, verbose=-1).fit(Xt, yt)
    t = time.perf_counter()
    dle = fx.performance.DLE(n_estimators=100).fit(Xr, yr, reg.predict(Xr))
    est = dle.estimate(Xc)
    s = time.perf_counter() - t
    real = fx.performance.realised("regression", reg.predict(Xc), yc)
    print(f"DLE: realised MAE {real['mae']:.4f}, estimated {est['mae']['value']:.4f} (reference {dle.reference_['mae']:.4f}); "
          f"RMSE {real['rmse']:.4f} vs {est['rmse']['value']:.4f}; {s:.2f} s")


if __name__ == "__main__":
    main()
