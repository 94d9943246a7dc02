"""Distributed training and batch inference on Ray against the same work in one process.

Run from the repository root::

    .venv/bin/python benches/ray_train.py                     # 2,000,000 x 28 binary, 100 trees
    .venv/bin/python benches/ray_train.py --rows 200000 --trees 20

Training: ``fx.ray.train`` with ``--workers`` local actors of one thread each against ``fx.train``
with ``--threads`` threads on the same rows (``make_classification``, 28 features, 31 leaves, 255
bins, learning rate 0.1). Times include binning (``fx.Dataset`` for the local run; loading the parts,
the keyed sample and the shard binning for Ray); Ray's own start-up (``ray.init``) is excluded and
printed apart. Printed: both times and their ratio, AUC of both on held-out rows, whether the model
bytes are equal, and the bytes that travel per tree (all messages, and the histograms alone).

Inference: ``fx.ray.predict`` (``--concurrency`` actors, one thread each) over ``--predict-rows``
rows of a ``ray.data.Dataset`` against ``Booster.predict`` in process with ``--threads`` threads:
rows per second of each and the ratio, for the whole Ray job (scheduling, starting the actors, loading
the model from the object store, the Arrow batches, collecting the keys and predictions) and at the
steady rate (the extra rows of a job three times as large over its extra time).
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--cols", type=int, default=28)
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parts", type=int, default=8)
    ap.add_argument("--predict-rows", type=int, default=1_000_000)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()

    import numpy as np
    import pyarrow as pa
    from sklearn.datasets import make_classification
    from sklearn.metrics import roc_auc_score

    import ferrox as fx

    n_test = max(args.rows // 4, 1000)
    X, y = make_classification(
        n_samples=args.rows + n_test, n_features=args.cols, n_informative=min(18, args.cols), n_redundant=0, random_state=0, flip_y=0.05
    )
    X = X.astype(np.float32)
    Xtr, ytr, Xte, yte = X[: args.rows], y[: args.rows].astype(np.float64), X[args.rows :], y[args.rows :]
    names = [f"f{j}" for j in range(args.cols)]
    params = {"objective": "binary", "num_leaves": 31, "learning_rate": 0.1, "max_bin": 255, "verbosity": -1}

    local_times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        ds = fx.Dataset(Xtr, label=ytr, feature_name=names, num_threads=args.threads)
        local = fx.train({**params, "num_threads": args.threads}, ds, args.trees)
        local_times.append(time.perf_counter() - t)
    local_auc = roc_auc_score(yte, local.predict(Xte))

    import ray

    t = time.perf_counter()
    ray.init(num_cpus=max(args.workers, args.concurrency), include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - t
    step = -(-args.rows // args.parts)
    tables = []
    for p in range(args.parts):
        sl = slice(p * step, min((p + 1) * step, args.rows))
        cols = {n: Xtr[sl, j] for j, n in enumerate(names)}
        cols["y"] = ytr[sl]
        tables.append(pa.table(cols))
    ray_times, setup, train_only = [], [], []
    stats: dict = {}
    for _ in range(args.repeats):
        stats = {}
        t = time.perf_counter()
        dist = fx.ray.train(params, tables, label="y", num_workers=args.workers, num_threads_per_worker=1, num_boost_round=args.trees, stats=stats)
        ray_times.append(time.perf_counter() - t)
        setup.append(stats["setup_s"])
        train_only.append(stats["train_s"])
    dist_auc = roc_auc_score(yte, dist.predict(Xte))
    lt, rt = statistics.median(local_times), statistics.median(ray_times)
    per_tree = stats["bytes_per_tree"]
    hist_tree = stats["hist_bytes_per_tree"]
    print(f"data: {args.rows:,} x {args.cols} binary, {args.trees} trees, 31 leaves; parts: {args.parts}")
    print(f"fx.train ({args.threads} threads):          {lt:8.2f} s   AUC {local_auc:.5f}")
    print(f"fx.ray.train ({args.workers} workers x 1 thread): {rt:8.2f} s   AUC {dist_auc:.5f}"
          f"   (setup {statistics.median(setup):.2f} s, rounds {statistics.median(train_only):.2f} s)")
    print(f"ray.init (excluded):                 {ray_start:8.2f} s")
    print(f"ratio fx.ray.train / fx.train:       {rt / lt:8.2f}x   (rounds only: {statistics.median(train_only) / lt:.2f}x)")
    print(f"model bytes equal:                   {dist.to_bytes() == local.to_bytes()}")
    print(f"bytes per tree (all messages):       mean {statistics.mean(per_tree) / 1e3:.1f} kB, max {max(per_tree) / 1e3:.1f} kB")
    print(f"bytes per tree (histograms):         mean {statistics.mean(hist_tree) / 1e3:.1f} kB"
          f"   ({statistics.mean(hist_tree) / args.workers / 1e3:.1f} kB per worker)")

    # Batch inference.
    m = min(args.predict_rows, len(X))
    reps = -(-args.predict_rows // m)
    Xp = np.concatenate([X[:m]] * reps)[: args.predict_rows]
    t = time.perf_counter()
    want = local.predict(Xp, num_threads=args.threads)
    in_proc = time.perf_counter() - t
    cols = {n: Xp[:, j] for j, n in enumerate(names)}
    cols["id"] = np.arange(len(Xp))
    table = pa.table(cols)
    blocks = args.concurrency * 4

    def job(t: pa.Table) -> tuple[float, object]:
        data = ray.data.from_arrow(t).repartition(blocks).materialize()
        start = time.perf_counter()
        out = fx.ray.predict(local, data, key_columns=["id"], concurrency=args.concurrency, num_cpus=1, num_threads=1).to_pandas()
        return time.perf_counter() - start, out

    # A first small job warms Ray Data up (worker processes, imports); it is not timed.
    job(table.slice(0, blocks))
    dist_t, out = job(table)
    out = out.sort_values("id")
    same = bool(np.array_equal(out.prediction.to_numpy(), want))
    # The steady rate: the extra rows of a job three times as large over its extra time (the fixed
    # start-up of the pool cancels out).
    big_t, _ = job(pa.concat_tables([table] * 3))
    steady = 2 * len(Xp) / max(big_t - dist_t, 1e-9)
    print(f"predict in process ({args.threads} threads):   {len(Xp) / in_proc / 1e6:8.2f} M rows/s ({in_proc:.2f} s)")
    print(f"fx.ray.predict ({args.concurrency} actors), whole job: {len(Xp) / dist_t / 1e6:6.2f} M rows/s ({dist_t:.2f} s)   equal: {same}")
    print(f"fx.ray.predict, steady rate:         {steady / 1e6:8.2f} M rows/s ({3 * len(Xp):,} rows in {big_t:.2f} s)")
    print(f"throughput ratio ray / in-process:   {in_proc / dist_t:8.2f} whole job, {steady * in_proc / len(Xp):.2f} steady")
    ray.shutdown()


if __name__ == "__main__":
    main()
