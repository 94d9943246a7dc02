"""Linear-model benchmark: ferrox.linear_model vs scikit-learn on the same data and thread count.

Run it from the repository root::

    .venv/bin/python benches/linear.py                    # the issue's sizes, 2 threads, 5 repeats
    .venv/bin/python benches/linear.py --scale 0.1        # every case at a tenth of its rows
    .venv/bin/python benches/linear.py --only Ridge --repeats 1

Cases (seeded data, ``numpy.random.default_rng(0)``, standard-normal features with a random linear
signal): Ridge on 1,000,000 x 100 (alpha=1); LogisticRegression on 1,000,000 x 50 (binary, C=1,
tol=1e-6, lbfgs on both sides, and ferrox's newton-cholesky beside it); ElasticNet on 200,000 x 100
(alpha=0.01, l1_ratio=0.5, tol=1e-4). Thread limits for numpy/BLAS are set in the environment before
numpy is imported; ferrox gets ``n_jobs=threads``.

Printed per case: the median fit time of each library over ``--repeats`` (libraries alternating), the
ratio of the medians scikit-learn / ferrox and of the best runs (the least disturbed on a shared
machine), the largest coefficient difference relative to scikit-learn's largest
coefficient, and both objective values (each library's model scored with the same formula).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every case's row count by this")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", default="", help="comma-separated case names (Ridge, LogisticRegression, ElasticNet)")
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import numpy as np
    import sklearn.linear_model as skl

    import ferrox.linear_model as fxl

    t = args.threads
    only = {c for c in args.only.split(",") if c}

    def data(n: int, m: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((n, m))
        w = rng.standard_normal(m) * (rng.random(m) < 0.5)
        z = X @ w
        if kind == "binary":
            return X, (z + rng.logistic(size=n) > 0).astype(np.int64)
        return X, z + rng.standard_normal(n)

    def ridge_obj(est: object, X: np.ndarray, y: np.ndarray, alpha: float) -> float:
        r = y - X @ est.coef_ - est.intercept_  # type: ignore[attr-defined]
        return float(r @ r + alpha * est.coef_ @ est.coef_)  # type: ignore[attr-defined]

    def logit_obj(est: object, X: np.ndarray, y: np.ndarray, C: float) -> float:
        d = X @ est.coef_[0] + est.intercept_[0]  # type: ignore[attr-defined]
        return float(np.mean(np.logaddexp(0, d) - y * d) + est.coef_[0] @ est.coef_[0] / (2 * C * len(y)))  # type: ignore[attr-defined]

    def enet_obj(est: object, X: np.ndarray, y: np.ndarray, alpha: float, l1: float) -> float:
        r = y - X @ est.coef_ - est.intercept_  # type: ignore[attr-defined]
        c = est.coef_  # type: ignore[attr-defined]
        return float(r @ r / (2 * len(y)) + alpha * l1 * np.abs(c).sum() + alpha * (1 - l1) / 2 * c @ c)

    cases = [
        ("Ridge", 1_000_000, 100, "regression",
         {"sklearn": lambda: skl.Ridge(alpha=1.0), "ferrox": lambda: fxl.Ridge(alpha=1.0, n_jobs=t)},
         lambda e, X, y: ridge_obj(e, X, y, 1.0)),
        ("LogisticRegression", 1_000_000, 50, "binary",
         {"sklearn": lambda: skl.LogisticRegression(tol=1e-6, max_iter=1000),
          "ferrox": lambda: fxl.LogisticRegression(tol=1e-6, max_iter=1000, n_jobs=t),
          "ferrox newton-cholesky": lambda: fxl.LogisticRegression(tol=1e-6, max_iter=1000, solver="newton-cholesky", n_jobs=t)},
         lambda e, X, y: logit_obj(e, X, y, 1.0)),
        ("ElasticNet", 200_000, 100, "regression",
         {"sklearn": lambda: skl.ElasticNet(alpha=0.01, l1_ratio=0.5),
          "ferrox": lambda: fxl.ElasticNet(alpha=0.01, l1_ratio=0.5, n_jobs=t)},
         lambda e, X, y: enet_obj(e, X, y, 0.01, 0.5)),
    ]
    print(f"threads={t} repeats={args.repeats} scale={args.scale}")
    for name, rows, cols, kind, makers, objective in cases:
        if only and name not in only:
            continue
        n = max(1000, int(rows * args.scale))
        X, y = data(n, cols, kind)
        times: dict[str, list[float]] = {k: [] for k in makers}
        fitted: dict[str, object] = {}
        for _ in range(args.repeats):
            for lib, make in makers.items():
                est = make()
                t0 = time.perf_counter()
                est.fit(X, y)
                times[lib].append(time.perf_counter() - t0)
                fitted[lib] = est
        sk = fitted["sklearn"]
        sk_t, sk_best = statistics.median(times["sklearn"]), min(times["sklearn"])
        print(f"{name} {n} x {cols}: sklearn {sk_t:.3f}s  objective {objective(sk, X, y):.12g}")
        for lib in makers:
            if lib == "sklearn":
                continue
            est = fitted[lib]
            ft = statistics.median(times[lib])
            c_sk = np.ravel(sk.coef_)  # type: ignore[attr-defined]
            diff = float(np.max(np.abs(np.ravel(est.coef_) - c_sk)) / max(np.max(np.abs(c_sk)), 1e-300))  # type: ignore[attr-defined]
            print(f"  {lib:24s} {ft:.3f}s  ratio {sk_t / ft:5.1f}x (best {sk_best / min(times[lib]):.1f}x)  max coef rel diff {diff:.1e}  "
                  f"objective {objective(est, X, y):.12g}", flush=True)
        del X, y, fitted


if __name__ == "__main__":
    sys.exit(main())
