"""Feature-transform benchmark: ferrox.preprocessing vs scikit-learn on the same data and thread count.

Run it from the repository root::

    .venv/bin/python benches/transforms.py                       # 1,000,000 rows, 2 threads, 5 repeats
    .venv/bin/python benches/transforms.py --rows 100000 --threads 2 --repeats 3

Data (seeded, ``numpy.random.default_rng(0)``): a ``rows x 50`` lognormal float64 matrix with 1% NaN for
the scalers and the quantile transform, and ``rows x 5`` string columns (a pandas DataFrame of object
columns, 5 to 200 categories each) for the encoders. Thread limits for numpy/BLAS (scikit-learn's side)
are set through the environment before numpy is imported; ferrox gets ``n_jobs=threads``.

Each case times ``fit_transform`` on the full data ``--repeats`` times, libraries alternating, and prints
the median time of each library, the ratio of the medians scikit-learn / ferrox (and of the best runs,
the least disturbed on a shared machine), and the largest difference between the two outputs relative to
scikit-learn's magnitude (NaN positions must agree; encoders must be equal).
ferrox keeps a freed large output's buffer for the next output (``ferrox.release_memory``), so calls after
the first skip the operating system's clearing of fresh pages; the buffers are released before each case,
and the ``1st`` columns give ferrox's first call, which pays that clearing as scikit-learn does on every call.
The QuantileTransformer case keeps the default ``subsample=10_000`` with ``random_state=0`` on both sides:
ferrox draws the same subsample as scikit-learn, so the outputs are comparable.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cols", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", default="", help="comma-separated case names to run (default: all)")
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import numpy as np
    import pandas as pd
    import sklearn.preprocessing as skp

    import ferrox
    import ferrox.preprocessing as fxp

    rng = np.random.default_rng(0)
    X = rng.lognormal(size=(args.rows, args.cols))
    X[rng.random(X.shape) < 0.01] = np.nan
    pools = [np.array([f"c{k}_{i}" for i in range(n)], dtype=object) for k, n in enumerate((5, 12, 40, 100, 200))]
    df = pd.DataFrame({f"s{k}": p[rng.integers(0, len(p), args.rows)] for k, p in enumerate(pools)})
    t = args.threads
    cases = {
        "StandardScaler": (lambda: skp.StandardScaler(), lambda: fxp.StandardScaler(n_jobs=t), X),
        "MinMaxScaler": (lambda: skp.MinMaxScaler(), lambda: fxp.MinMaxScaler(n_jobs=t), X),
        "RobustScaler": (lambda: skp.RobustScaler(), lambda: fxp.RobustScaler(n_jobs=t), X),
        "QuantileTransformer": (
            lambda: skp.QuantileTransformer(random_state=0),
            lambda: fxp.QuantileTransformer(random_state=0, n_jobs=t),
            X,
        ),
        "OneHotEncoder": (lambda: skp.OneHotEncoder(), lambda: fxp.OneHotEncoder(n_jobs=t), df),
        "OrdinalEncoder": (lambda: skp.OrdinalEncoder(), lambda: fxp.OrdinalEncoder(n_jobs=t), df),
    }
    only = {c for c in args.only.split(",") if c}
    print(f"rows={args.rows} cols={args.cols} (encoders: 5 string columns) threads={t} repeats={args.repeats}")
    print(f"{'case':22s} {'sklearn s':>10s} {'ferrox s':>10s} {'ratio':>7s} {'best':>6s} {'1st s':>7s} {'ratio 1st':>9s}  max rel diff")
    for name, (make_sk, make_fx, data) in cases.items():
        if only and name not in only:
            continue
        times: dict[str, list[float]] = {"sk": [], "fx": []}
        outs = {}
        ferrox.release_memory()
        for _ in range(args.repeats):
            for lib, make in (("fx", make_fx), ("sk", make_sk)):
                est = make()
                t0 = time.perf_counter()
                out = est.fit_transform(data)
                times[lib].append(time.perf_counter() - t0)
                outs[lib] = out
                del est
        a, b = outs["fx"], outs["sk"]
        if hasattr(a, "toarray"):
            same = a.shape == b.shape and (a != b).nnz == 0
            diff = "0 (equal)" if same else "DIFFERENT"
        else:
            a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
            if not np.array_equal(np.isnan(a), np.isnan(b)):
                diff = "NaN positions differ"
            else:
                scale = np.nanmax(np.abs(b)) or 1.0
                d = float(np.nanmax(np.abs(a - b)) / scale) if a.size else 0.0
                diff = "0 (equal)" if d == 0 else f"{d:.1e}"
        sk, fx, first = statistics.median(times["sk"]), statistics.median(times["fx"]), times["fx"][0]
        best = min(times["sk"]) / min(times["fx"])
        print(f"{name:22s} {sk:10.3f} {fx:10.3f} {sk / fx:6.1f}x {best:5.1f}x {first:7.3f} {sk / first:8.1f}x  {diff}", flush=True)
        outs.clear()


if __name__ == "__main__":
    sys.exit(main())
