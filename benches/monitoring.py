"""What live drift monitoring costs the ferrox server: requests per second of one-row requests (wrk, 16
connections, 2 server threads) on a Pipeline that carries a reference profile and a performance reference
(``fit_monitoring``), without monitoring and with 10 % of the requests monitored (windows of 10 000 rows,
28 features: feature drift, the monitor's own scoring of the sampled rows, prediction drift and the
confidence-based performance estimate). Bar: <= 10 % of throughput.

    python benches/monitoring.py [--duration 5] [--repeat 5] [--rate 0.1]

wrk is Debian's ``wrk`` package (4.1.0), driven by benches/serve/oip.lua as in benches/serve.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile

import numpy as np

import ferrox as fx
import serve as serve_bench  # benches/serve.py (this script's folder is on sys.path): the wrk driver
from ferrox.pipeline import Pipeline


FEATURES = 28


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rate", type=float, default=0.1)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    args = ap.parse_args()
    rng = np.random.default_rng(3)
    X = rng.normal(size=(20_000, FEATURES))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    from ferrox.sklearn import GBDTClassifier

    pipe = Pipeline([("gbdt", GBDTClassifier(n_estimators=100, verbose=-1))], reference_profile=True).fit(X[:15_000], y[:15_000])
    pipe.fit_monitoring(X[15_000:], y[15_000:])
    workdir = tempfile.mkdtemp(prefix="ferrox-mon-bench-")
    path = os.path.join(workdir, "m.frx")
    pipe.save(path)
    bodies = os.path.join(workdir, "bodies.jsonl")
    with open(bodies, "w") as f:
        for i in range(256):
            f.write(json.dumps({"inputs": [{"name": "x", "shape": [1, FEATURES], "datatype": "FP32",
                                            "data": X[i].astype(np.float32).tolist()}]}) + "\n")
    env = {"SERVE_BENCH_MODE": "json", "SERVE_BENCH_BODIES": bodies}
    rps = {"off": [], "on": []}
    status = None
    with fx.serving.Server({"m": path}, port=0, grpc_port=None, threads=2) as plain, \
         fx.serving.Server({"m": path}, port=0, grpc_port=None, threads=2,
                           monitoring={"sample_rate": args.rate, "window": 10_000}) as monitored:
        for _ in range(args.repeat):
            for key, srv in (("off", plain), ("on", monitored)):
                load = serve_bench.run_wrk(args.wrk, f"{srv.url}/v2/models/m/infer", args.connections, 2, args.duration, env)
                assert load.failed == 0, load
                rps[key].append(load.rps)
        status = monitored.monitoring("m")
    off, on = statistics.median(rps["off"]), statistics.median(rps["on"])
    print(f"drift monitoring cost (wrk {args.connections} connections, 1-row requests, {args.duration:g} s runs, "
          f"median of {args.repeat}, interleaved)")
    print(f"  off {off:,.0f} req/s   on ({args.rate:.0%} of requests) {on:,.0f} req/s   cost {1 - on / off:.1%} "
          f"(bar <= 10%)   rows monitored {status['rows']:,}, windows {status['windows']}, dropped {status['dropped']:,}")
    print("  runs off: " + ", ".join(f"{x:,.0f}" for x in rps["off"]) + "   on: " + ", ".join(f"{x:,.0f}" for x in rps["on"]))
    est = (status.get("estimated_performance") or {}).get("metrics", {}).get("roc_auc", {})
    print(f"  last window: prediction drift {status.get('prediction_drift', {}).get('effect_size', float('nan')):.4f}, "
          f"estimated AUC {est.get('value', float('nan')):.4f} (reference {status.get('reference_performance', {}).get('roc_auc', float('nan')):.4f})")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
