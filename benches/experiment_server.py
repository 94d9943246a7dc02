"""Experiments inside the ferrox server, measured over real HTTP on 127.0.0.1:

* routing cost: one wrk connection on a plain model endpoint against the same model behind a two-variant
  split experiment (both variants on that model; sticky unit ids in every request), with and without the
  event log; the cost is the difference of the mean latencies (1 / requests per second on one
  connection) and of the server's CPU time per request (this process's CPU time over the run: the
  server's threads; steadier than latency on a shared machine). Bar: <= 5 us.
* shadow: the p99 of the same endpoint with a shadow model scoring every request off the request path,
  against no experiment. Bar: <= 10 % added.
* canary: a challenger that fails its requests, one whose primary metric is worse, and a sound one; how
  many ramp steps each took before the rollback or the promotion. Bar: rolled back within one step;
  the sound one reaches 100 %. Units are checked never to change variant before the promotion.
* bandit: 100k requests to a 3-arm Bernoulli bandit (reward rates 0.04 / 0.05 / 0.06, rewards posted
  in batches of 100); share of the last half sent to the best arm. Bar: >= 80 %.

    python benches/experiment_server.py [--duration 5] [--repeat 5] [--bandit-requests 100000]

wrk is Debian's ``wrk`` package (4.1.0), driven by benches/serve/oip.lua as in benches/serve.py.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import tempfile
import time

import numpy as np

import ferrox as fx
import serve as serve_bench  # benches/serve.py (this script's folder is on sys.path): the wrk driver


FEATURES = 28


def model(rng, rounds=100):
    X = rng.normal(size=(20_000, FEATURES))
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(scale=0.5, size=len(X)) > 0).astype(float)
    return fx.train({"objective": "binary", "num_leaves": 31, "verbosity": -1}, fx.Dataset(X, label=y), rounds), X


class Client:
    def __init__(self, url):
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def post(self, path, body):
        self.conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = self.conn.getresponse()
        return r.status, json.loads(r.read())

    def close(self):
        self.conn.close()

    def infer(self, endpoint, row, unit):
        body = {"inputs": [{"name": "x", "shape": [1, FEATURES], "datatype": "FP64", "data": row.tolist()}],
                "parameters": {"unit_id": unit}}
        return self.post(f"/v2/models/{endpoint}/infer", body)


def bodies_file(workdir, X, n=256):
    path = os.path.join(workdir, "bodies.jsonl")
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"inputs": [{"name": "x", "shape": [1, FEATURES], "datatype": "FP32",
                                            "data": X[i].astype(np.float32).tolist()}],
                                "parameters": {"unit_id": f"user-{i}"}}) + "\n")
    return path


def routing_and_shadow(args, workdir, paths, X):
    env = {"SERVE_BENCH_MODE": "json", "SERVE_BENCH_BODIES": bodies_file(workdir, X)}
    print("routing cost and shadow overhead (wrk, 1 connection, "
          f"{args.duration:g} s runs, median of {args.repeat}, interleaved)")
    for log in (False, True):
        kw = {"event_log": {"path": os.path.join(workdir, "events"), "queue": 1 << 20}} if log else {}
        with fx.serving.Server({"m": paths[0], "m2": paths[1]}, port=0, grpc_port=None, threads=2, **kw) as srv:
            # Both variants on the same model: the difference is the routing alone, not a second forest
            # competing for the caches.
            srv.start_experiment("split", "split", {"a": "m", "b": "m"})
            if not log:
                srv.start_experiment("shadowed", "shadowed", {"a": "m"}, shadows=["m2"])
            runs = {k: [] for k in ("plain", "split", "shadowed")}
            for _ in range(args.repeat):
                for k in runs:
                    if k == "shadowed" and log:
                        continue
                    ep = "m" if k == "plain" else k
                    cpu0 = time.process_time()  # this process's CPU time: the server's threads (wrk is another process)
                    load = serve_bench.run_wrk(args.wrk, f"{srv.url}/v2/models/{ep}/infer", 1, 1, args.duration, env)
                    load.cpu_us = (time.process_time() - cpu0) / max(load.requests, 1) * 1e6
                    runs[k].append(load)
            mean = {k: statistics.median(1e6 / r.rps for r in v) for k, v in runs.items() if v}
            cpu = {k: statistics.median(r.cpu_us for r in v) for k, v in runs.items() if v}
            p99 = {k: statistics.median(r.p99 for r in v) for k, v in runs.items() if v}
            p50 = {k: statistics.median(r.p50 for r in v) for k, v in runs.items() if v}
            errors = sum(r.failed for v in runs.values() for r in v)
            tag = "with the event log" if log else "no event log"
            cost = mean["split"] - mean["plain"]
            print(f"  {tag:<18} plain mean {mean['plain']:.1f} us (p50 {p50['plain']:.0f}, p99 {p99['plain']:.0f}; "
                  f"server CPU {cpu['plain']:.1f} us/req)   split mean {mean['split']:.1f} us (p50 {p50['split']:.0f}, "
                  f"p99 {p99['split']:.0f}; server CPU {cpu['split']:.1f} us/req)")
            print(f"  {'':<18} routing cost: latency {cost:+.1f} us, server CPU {cpu['split'] - cpu['plain']:+.1f} us per request "
                  f"(bar <= 5)   failed {errors}")
            if not log:
                added = p99["shadowed"] / p99["plain"] - 1
                st = srv.experiment("shadowed")
                sh = st["shadows"][0]
                print(f"  {'shadow':<18} p99 {p99['shadowed']:.0f} us against {p99['plain']:.0f} us: {added:+.1%} "
                      f"(bar <= +10%)   shadow rows compared {sh['rows']:,}, dropped {st['shadow_dropped']:,}")
            else:
                ev = srv.experiment("split")["event_log"]
                print(f"  {'':<18} events written {ev['written']:,}, dropped {ev['dropped']:,}")


def canary(paths, X, rng):
    print("canary (steps 1/5/25/50/100 %, at least 200 units and 1 s per step, guardrails checked every 50 ms)")
    cfg = {"steps": [1, 5, 25, 50, 100], "min_units": 200, "min_seconds": 1.0, "check_interval_ms": 50}
    cases = [
        ("failing challenger", paths[0], paths[2], None, {}),
        ("worse primary metric", paths[0], paths[1], {"champion": 0.10, "challenger": 0.05}, {"metric": "conversion"}),
        ("sound challenger", paths[0], paths[1], {"champion": 0.10, "challenger": 0.10}, {"metric": "conversion"}),
    ]
    for label, champion, challenger, rates, extra in cases:
        with fx.serving.Server({"v1": champion, "v2": challenger}, port=0, grpc_port=None) as srv:
            srv.start_experiment("c", "ep", {"champion": "v1", "challenger": "v2"}, kind="canary", canary={**cfg, **extra})
            c = Client(srv.url)
            first, log, n, t0 = {}, [], 0, time.time()
            units = 0
            while time.time() - t0 < 120:
                unit = f"u{units}" if n % 2 == 0 or units == 0 else f"u{rng.integers(0, units)}"
                units += n % 2 == 0 or units == 0
                s0 = time.time()
                code, out = c.infer("ep", X[n % len(X)], unit)
                variant = out.get("parameters", {}).get("variant") if code == 200 else "challenger?"
                if code == 200:
                    first.setdefault(unit, variant)
                    log.append((unit, variant, time.time()))
                if rates and code == 200:
                    c.post("/v2/feedback", [{"id": out["id"], "metrics": {"conversion": float(rng.random() < rates[variant])}}])
                n += 1
                if n % 200 == 0 and srv.experiment("c")["canary"]["phase"] != "ramping":
                    break
            st = srv.experiment("c")
            steps = sum(t["event"] == "canary_step" for t in st["transitions"])
            end = st["transitions"][-1]
            moved = sum(1 for u, v, t in log if t < end["ts"] and v != first[u]) if end["event"] != "canary_step" else -1
            print(f"  {label:<22} {st['canary']['phase']:<12} after {steps} step(s) up, at {end['share']:g} %, "
                  f"{n:,} requests, {time.time() - t0:.1f} s; units that changed variant before the end: {moved}")
            if end["event"] == "canary_rolled_back":
                print(f"  {'':<22} reason: {end['reason']}")
            c.close()


def bandit(paths, X, rng, n):
    rates = {"a": 0.04, "b": 0.05, "c": 0.06}
    with fx.serving.Server({"m0": paths[0], "m1": paths[1], "m2": paths[1]}, port=0, grpc_port=None) as srv:
        srv.start_experiment("bandit", "ep", {"a": "m0", "b": "m1", "c": "m2"}, kind="bandit",
                             bandit={"policy": "thompson", "floor": 0.01})
        c = Client(srv.url)
        chosen, pending, t0 = [], [], time.time()
        for i in range(n):
            code, out = c.infer("ep", X[i % len(X)], f"r{i}")
            v = out["parameters"]["variant"]
            chosen.append(v)
            pending.append({"id": out["id"], "reward": bool(rng.random() < rates[v])})
            if len(pending) == 100:
                c.post("/v2/feedback", {"experiment": "bandit", "feedback": pending})
                pending = []
        late = chosen[n // 2:]
        share = late.count("c") / len(late)
        st = srv.experiment("bandit")
        probs = {v["name"]: round(v["probability"], 3) for v in st["variants"]}
        print(f"bandit (Thompson, Beta-Bernoulli, floor 1 %; rates 0.04 / 0.05 / 0.06; {n:,} requests in "
              f"{time.time() - t0:.1f} s)")
        print(f"  best arm's share of the last half {share:.1%} (bar >= 80%)   final probabilities {probs}")
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--bandit-requests", type=int, default=100_000)
    ap.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    ap.add_argument("--skip", nargs="*", default=[], choices=["routing", "canary", "bandit"])
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    workdir = tempfile.mkdtemp(prefix="ferrox-exp-bench-")
    b1, X = model(rng)
    b2, _ = model(rng, rounds=110)
    wide = fx.train({"objective": "binary", "verbosity": -1},
                    fx.Dataset(rng.normal(size=(2000, FEATURES + 1)), label=rng.integers(0, 2, 2000).astype(float)), 20)
    paths = []
    for i, b in enumerate((b1, b2, wide)):
        paths.append(os.path.join(workdir, f"m{i}.frx"))
        b.save_model(paths[-1])
    if "routing" not in args.skip:
        routing_and_shadow(args, workdir, paths, X)
    if "canary" not in args.skip:
        canary(paths, X, rng)
    if "bandit" not in args.skip:
        bandit(paths, X, rng, args.bandit_requests)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
