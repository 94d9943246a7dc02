"""The ferrox model server (``ferrox serve``) vs MLServer, both serving the same LightGBM model over
the Open Inference Protocol (KServe v2) REST API on 127.0.0.1, loaded by wrk.

    python benches/serve.py --mlserver-python .venv-mlserver/bin/python --threads 2 --duration 10

The peer lives in an environment of its own (its pins clash with ferrox's), made once with

    python3 -m venv .venv-mlserver
    .venv-mlserver/bin/pip install mlserver==1.7.1 mlserver-lightgbm==1.7.1 'uvloop<0.21'

(measured with mlserver 1.7.1, mlserver-lightgbm 1.7.1, uvloop 0.20.0, lightgbm 4.7.0, numpy 2.4.6,
fastapi 0.115.14, uvicorn 0.55.0 on Python 3.11; MLServer 1.7.1 does not start with uvloop 0.21 or
later). The load generator is wrk (Debian's ``wrk`` package, 4.1.0), driven by benches/serve/oip.lua,
whose done() hook prints the counts and latency percentiles as one JSON line.

The model: 100 trees of 31 leaves, binary objective, trained by lightgbm on seeded synthetic data with
28 features; saved as LightGBM text for MLServer's lightgbm runtime (benches/serve/mlserver-*.json are
the settings templates: no access log, no metrics server, inference in the server process, and
OMP_NUM_THREADS=1 so that lightgbm does not spin threads for one-row requests; both faster here than
MLServer's defaults, see --mlserver-workers and --mlserver-omp-threads) and
converted for ferrox with ``ferrox.Booster.from_lightgbm(path).save_model(...)``. Each server runs as a
subprocess on a free 127.0.0.1 port, is polled on GET /v2/health/ready, and is stopped with SIGTERM (then
killed) when its part is done; the two never run at the same time.

Scenarios, each reported with requests/s, p50/p90/p99 latency and errors (socket errors and error
statuses; wrk counts statuses above 399, and the swap runs count every status that is not 2xx):
  1. load-generator ceiling: GET /v2/health/live, 16 connections;
  2. one row per request as OIP JSON (a few hundred different rows, round robin), 1 connection and
     16 connections;
  3. 10,000 rows per request, 1 connection, rows/s end to end: ferrox gets the OIP binary tensor data
     extension (FP32 rows in, binary FP64 predictions out); MLServer's REST server does not implement
     that extension, so it gets the same rows as OIP JSON (said so in the output);
  4. hot swap under load (ferrox only): 16 connections of one-row requests while a thread makes 100
     loads of two alternating versions through POST /v2/repository/models/NAME/load; failed requests
     and p99 against the same run without swaps; then the time from the call that rolls back to the
     previous version (by its path, and by the version number the server keeps) until the first
     answer that comes from it;
  5. correctness: predictions of each server for 1,000 fixed rows (JSON) and for the 10,000-row
     request vs lightgbm's own Booster.predict (max abs difference).
Every wrk measurement is the median of --repeat runs (the swap runs once), with the server's CPU time
per request beside it (wrk and the server share the machine's cores, so this is the work done whatever
else runs). The table puts the servers side by side with ratios ferrox / MLServer for throughput and
MLServer / ferrox for latency and CPU, and checks
the bars: 16-connection throughput >= 20x MLServer, 1-connection p50 <= 100 us and p99 <= 1 ms, the
10,000-row request >= 2M rows/s, swaps with 0 failures and p99 within 1.5x, rollback <= 1 s.
"""

# Peer versions measured: mlserver==1.7.1, mlserver-lightgbm==1.7.1, uvloop==0.20.0 (lightgbm 4.7.0,
# numpy 2.4.6); wrk 4.1.0 (Debian package wrk 4.1.0-3).

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ASSETS = os.path.join(HERE, "serve")
LUA = os.path.join(ASSETS, "oip.lua")

MODEL = "bench"
FEATURES = 28
BIG_ROWS = 10_000
CHECK_ROWS = 1_000
BODIES = 256
SWAP_LOADS = 100
PEER_VERSIONS = "mlserver 1.7.1, mlserver-lightgbm 1.7.1, uvloop 0.20.0"


# -- data and models ------------------------------------------------------------------------------------

def make_data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, FEATURES)).astype(np.float32)
    w = rng.normal(size=FEATURES)
    logit = X @ w / np.sqrt(FEATURES) + 0.5 * np.sin(X[:, 0] * X[:, 1]) + rng.normal(scale=0.5, size=rows)
    return X, (logit > 0).astype(np.float64)


def train_lightgbm(X: np.ndarray, y: np.ndarray, trees: int, seed: int, threads: int, path: str):
    import lightgbm as lgb

    params = {"objective": "binary", "num_leaves": 31, "learning_rate": 0.1, "seed": seed,
              "bagging_fraction": 0.8, "bagging_freq": 1, "feature_fraction": 0.9, "deterministic": True,
              "num_threads": threads, "verbosity": -1}
    booster = lgb.train(params, lgb.Dataset(X, label=y), num_boost_round=trees)
    booster.save_model(path)
    return booster


def convert_for_ferrox(txt: str, frx: str) -> None:
    import ferrox as fx  # only the ferrox part needs it

    fx.Booster.from_lightgbm(txt).save_model(frx)


# -- OIP bodies and responses ------------------------------------------------------------------------------

def json_body(rows: np.ndarray) -> bytes:
    """An OIP JSON request; each value written as the shortest text that reads back as the same float32."""
    head = json.dumps({"name": "input-0", "shape": list(rows.shape), "datatype": "FP32"}, separators=(",", ":"))
    data = ",".join(str(v) for v in np.asarray(rows, dtype=np.float32).ravel())
    return f'{{"inputs":[{head[:-1]},"data":[{data}]}}]}}'.encode()


def binary_body(rows: np.ndarray) -> tuple[bytes, int]:
    raw = np.ascontiguousarray(rows, dtype="<f4").tobytes()
    header = json.dumps({
        "inputs": [{"name": "input-0", "shape": list(rows.shape), "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)}}],
        "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
    }, separators=(",", ":")).encode()
    return header + raw, len(header)


_DTYPES = {"FP64": "<f8", "FP32": "<f4", "INT64": "<i8", "INT32": "<i4"}


def decode_response(headers: dict[str, str], body: bytes) -> tuple[dict, np.ndarray]:
    """The response JSON and its first output as a flat float64 array (JSON or binary extension)."""
    hlen = headers.get("inference-header-content-length")
    if hlen is None:
        doc = json.loads(body)
        return doc, np.asarray(doc["outputs"][0]["data"], dtype=np.float64).ravel()
    hlen = int(hlen)
    doc = json.loads(body[:hlen])
    offset, first = hlen, None
    for out in doc["outputs"]:
        size = (out.get("parameters") or {}).get("binary_data_size")
        if size is None:
            values = np.asarray(out["data"], dtype=np.float64).ravel()
        else:
            values = np.frombuffer(body[offset:offset + size], dtype=_DTYPES[out["datatype"]]).astype(np.float64)
            offset += size
        if first is None:
            first = values
    return doc, first


def http_call(base: str, method: str, path: str, body: bytes | None = None,
              headers: dict[str, str] | None = None, timeout: float = 60.0) -> tuple[int, dict[str, str], bytes]:
    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def infer(base: str, body: bytes, header_length: int | None = None) -> tuple[dict, np.ndarray]:
    headers = {"Content-Type": "application/json"}
    if header_length is not None:
        headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(header_length)}
    status, rh, rb = http_call(base, "POST", f"/v2/models/{MODEL}/infer", body, headers)
    if status != 200:
        raise RuntimeError(f"infer answered {status}: {rb[:300]!r}")
    return decode_response(rh, rb)


# -- servers -----------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A server subprocess with its stdout and stderr in files; stopped with SIGTERM, then killed."""

    def __init__(self, name: str, cmd: list[str], log_prefix: str, cwd: str | None = None,
                 env: dict[str, str] | None = None):
        self.name, self.cmd = name, cmd
        self.out_path, self.err_path = log_prefix + ".out", log_prefix + ".err"
        self.out, self.err = open(self.out_path, "wb"), open(self.err_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL,
                                     cwd=cwd, env=env, start_new_session=True)
        self.base: str | None = None

    def stdout_text(self) -> str:
        with open(self.out_path, "rb") as f:
            return f.read().decode(errors="replace")

    def log_tail(self, lines: int = 20) -> str:
        with open(self.err_path, "rb") as f:
            err = f.read().decode(errors="replace")
        return "\n".join((self.stdout_text() + "\n" + err).splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system, all threads) of the processes in the server's session so far."""
        tick, total = os.sysconf("SC_CLK_TCK"), 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == self.proc.pid:  # the session id
                total += int(fields[11]) + int(fields[12])
        return total / tick

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if self.base is not None:
                try:
                    if http_call(self.base, "GET", "/v2/health/ready", timeout=2)[0] == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, grace: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                print(f"{self.name} did not stop within {grace:g} s of SIGTERM; killed", file=sys.stderr)
        try:  # the server and anything it started (its own session)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.out.close()
        self.err.close()


def start_mlserver(python: str, workdir: str, model_txt: str, workers: int, omp_threads: int,
                   timeout: float) -> ServerProcess:
    folder = os.path.join(workdir, "mlserver")
    os.makedirs(os.path.join(folder, MODEL), exist_ok=True)
    with open(os.path.join(ASSETS, "mlserver-settings.json")) as f:
        settings = json.load(f)
    port = free_port()
    settings.update(http_port=port, grpc_port=free_port(), parallel_workers=workers)
    with open(os.path.join(folder, "settings.json"), "w") as f:
        json.dump(settings, f, indent=2)
    with open(os.path.join(ASSETS, "mlserver-model-settings.json")) as f:
        model_settings = json.load(f)
    model_settings["name"] = MODEL
    model_settings["parameters"]["uri"] = os.path.abspath(model_txt)
    with open(os.path.join(folder, MODEL, "model-settings.json"), "w") as f:
        json.dump(model_settings, f, indent=2)
    launcher = "import sys; from mlserver.cli import main; sys.argv = ['mlserver', 'start', sys.argv[1]]; main()"
    env = dict(os.environ)
    if omp_threads > 0:
        env["OMP_NUM_THREADS"] = str(omp_threads)
    srv = ServerProcess("MLServer", [os.path.abspath(python), "-c", launcher, folder],
                        os.path.join(workdir, "mlserver"), cwd=folder, env=env)
    srv.base = f"http://127.0.0.1:{port}"
    srv.wait_ready(timeout)
    return srv


def ferrox_serve_help(ferrox: str) -> str:
    out = subprocess.run([ferrox, "serve", "--help"], capture_output=True, text=True, timeout=60)
    return out.stdout + out.stderr


def ready_address(text: str) -> str | None:
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{\s*\"event\"", text):
        try:
            event, _ = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "ready" and event.get("http"):
            return str(event["http"]).rstrip("/")
    return None


def start_ferrox(ferrox: str, workdir: str, model_frx: str, threads: int, extra: list[str],
                 timeout: float) -> ServerProcess:
    cmd = [ferrox, "serve", "--model", f"{MODEL}={os.path.abspath(model_frx)}", "--http-port", "0",
           "--grpc-port", "-1"]
    if threads and "--threads" in ferrox_serve_help(ferrox):
        cmd += ["--threads", str(threads)]
    cmd += extra
    srv = ServerProcess("ferrox", cmd, os.path.join(workdir, "ferrox"))
    # The {"event": "ready", ...} object on stdout carries the address (found wherever it starts, in case
    # a log line before it lacks its newline).
    deadline = time.monotonic() + timeout
    while srv.base is None:
        if time.monotonic() > deadline:
            srv.stop()
            raise RuntimeError(f"ferrox printed no ready line after {timeout:.0f} s:\n{srv.log_tail()}")
        try:
            srv.check_alive()
        except RuntimeError:
            srv.stop()
            raise
        srv.base = ready_address(srv.stdout_text())
        time.sleep(0.05)
    try:
        srv.wait_ready(max(1.0, deadline - time.monotonic()))
    except RuntimeError:
        srv.stop()
        raise
    return srv


# -- wrk ---------------------------------------------------------------------------------------------------

@dataclass
class Load:
    """One wrk run (or the median of several)."""
    rps: float
    p50: float
    p90: float
    p99: float
    requests: int
    errors: int
    socket_errors: int
    status_errors: int
    statuses: dict = field(default_factory=dict)
    cpu_us: float = float("nan")  # server CPU microseconds per request

    @property
    def failed(self) -> int:
        non2xx = sum(n for code, n in self.statuses.items() if not 200 <= int(code) < 300)
        return self.socket_errors + max(self.status_errors, non2xx)


def run_wrk(wrk: str, url: str, connections: int, threads: int, duration: float, env: dict[str, str],
            timeout_s: float = 10.0) -> Load:
    cmd = [wrk, "-t", str(max(1, min(threads, connections))), "-c", str(connections), "-d", f"{duration:g}s",
           "--timeout", f"{timeout_s:g}s", "--latency", "-s", LUA, url]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env},
                         timeout=duration + timeout_s + 60)
    m = re.search(r"^WRK_JSON (\{.*\})\s*$", out.stdout, re.M)
    if out.returncode != 0 or m is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout[-1500:]}\n{out.stderr[-1500:]}")
    r = json.loads(m.group(1))
    e, lat = r["errors"], r["latency_us"]
    socket_errors = e["connect"] + e["read"] + e["write"] + e["timeout"]
    return Load(rps=r["requests"] / (r["duration_us"] / 1e6), p50=lat["p50"], p90=lat["p90"], p99=lat["p99"],
                requests=r["requests"], errors=socket_errors + e["status"], socket_errors=socket_errors,
                status_errors=e["status"], statuses=r.get("statuses", {}))


def median_load(runs: list[Load]) -> Load:
    if len(runs) == 1:
        return runs[0]
    med = lambda xs: statistics.median(xs)  # noqa: E731
    return Load(rps=med([r.rps for r in runs]), p50=med([r.p50 for r in runs]), p90=med([r.p90 for r in runs]),
                p99=med([r.p99 for r in runs]), requests=sum(r.requests for r in runs),
                errors=sum(r.errors for r in runs), socket_errors=sum(r.socket_errors for r in runs),
                status_errors=sum(r.status_errors for r in runs), cpu_us=med([r.cpu_us for r in runs]))


@dataclass
class Bench:
    args: argparse.Namespace
    workdir: str
    bodies_file: str
    big_json: bytes
    big_binary: tuple[bytes, int]
    big_binary_file: str
    big_json_file: str
    check_rows: np.ndarray
    check_expected: np.ndarray
    big_rows: np.ndarray
    big_expected: np.ndarray
    server: ServerProcess | None = None

    def wrk(self, url: str, connections: int, threads: int, env: dict[str, str], duration: float | None = None,
            repeat: int | None = None) -> Load:
        runs = []
        for _ in range(repeat or self.args.repeat):
            cpu0 = self.server.cpu_seconds() if self.server else float("nan")
            load = run_wrk(self.args.wrk, url, connections, threads, duration or self.args.duration, env)
            if self.server:
                load.cpu_us = (self.server.cpu_seconds() - cpu0) / max(load.requests, 1) * 1e6
            runs.append(load)
        return median_load(runs)


# -- scenarios -------------------------------------------------------------------------------------------

def scenario_ceiling(b: Bench, base: str) -> Load:
    return b.wrk(base + "/v2/health/live", 16, b.args.threads, {"SERVE_BENCH_MODE": "get"})


def scenario_one_row(b: Bench, base: str, connections: int) -> Load:
    threads = 1 if connections == 1 else b.args.threads
    env = {"SERVE_BENCH_MODE": "json", "SERVE_BENCH_BODIES": b.bodies_file}
    return b.wrk(f"{base}/v2/models/{MODEL}/infer", connections, threads, env)


def scenario_big(b: Bench, base: str, binary: bool) -> Load:
    if binary:
        env = {"SERVE_BENCH_MODE": "binary", "SERVE_BENCH_BODY": b.big_binary_file,
               "SERVE_BENCH_HEADER_LENGTH": str(b.big_binary[1])}
    else:
        env = {"SERVE_BENCH_MODE": "json", "SERVE_BENCH_BODIES": b.big_json_file}
    return b.wrk(f"{base}/v2/models/{MODEL}/infer", 1, 1, env)


def scenario_correctness(b: Bench, base: str, binary: bool) -> tuple[float, float]:
    """Max abs difference to lightgbm: 1,000 rows as JSON, and the 10,000-row request."""
    _, got = infer(base, json_body(b.check_rows))
    small = float(np.max(np.abs(got - b.check_expected))) if got.shape == b.check_expected.shape else float("inf")
    if binary:
        _, got = infer(base, *b.big_binary)
    else:
        _, got = infer(base, b.big_json)
    big = float(np.max(np.abs(got - b.big_expected))) if got.shape == b.big_expected.shape else float("inf")
    return small, big


def warm_up(b: Bench, base: str) -> None:
    env = {"SERVE_BENCH_MODE": "json", "SERVE_BENCH_BODIES": b.bodies_file}
    run_wrk(b.args.wrk, f"{base}/v2/models/{MODEL}/infer", 16, b.args.threads, 2.0, env)


def run_server(b: Bench, base: str, binary: bool) -> dict:
    warm_up(b, base)
    res: dict = {}
    res["correct_1k"], res["correct_10k"] = scenario_correctness(b, base, binary)
    res["ceiling"] = scenario_ceiling(b, base)
    res["one_c1"] = scenario_one_row(b, base, 1)
    res["one_c16"] = scenario_one_row(b, base, 16)
    res["big"] = scenario_big(b, base, binary)
    res["big_binary"] = binary
    res["big_json"] = scenario_big(b, base, False) if binary else res["big"]
    return res


def scenario_swap(b: Bench, base: str, v1: str, v2: str, probe: bytes, probe_v1: float, probe_v2: float) -> dict:
    """16 connections without swaps, then the same with 100 alternating loads; then rollback times."""
    env = {"SERVE_BENCH_MODE": "json", "SERVE_BENCH_BODIES": b.bodies_file, "SERVE_BENCH_COUNT_STATUS": "1"}
    url = f"{base}/v2/models/{MODEL}/infer"
    quiet = run_wrk(b.args.wrk, url, 16, b.args.threads, b.args.duration, env)

    loads: list[tuple[int, float, float]] = []  # status, seconds, when it ended
    load_errors: list[str] = []

    def swapper() -> None:
        time.sleep(min(1.0, b.args.duration * 0.1))
        interval = b.args.duration * 0.8 / SWAP_LOADS
        for i in range(SWAP_LOADS):
            path = v2 if i % 2 == 0 else v1
            t0 = time.perf_counter()
            try:
                status, _, body = http_call(base, "POST", f"/v2/repository/models/{MODEL}/load",
                                            json.dumps({"parameters": {"path": path}}).encode(),
                                            {"Content-Type": "application/json"})
            except OSError as exc:
                status, body = -1, str(exc).encode()
            loads.append((status, time.perf_counter() - t0, time.perf_counter()))
            if status != 200 and len(load_errors) < 3:
                load_errors.append(f"{status}: {body[:200]!r}")
            time.sleep(max(0.0, interval - (time.perf_counter() - t0)))

    t = threading.Thread(target=swapper, daemon=True)
    t.start()
    try:
        swapped = run_wrk(b.args.wrk, url, 16, b.args.threads, b.args.duration, env)
        wrk_end = time.perf_counter()
    finally:
        t.join()

    # Rollback: serve v2, then go back to v1 and time from the call until the first answer computed by v1;
    # once by loading v1's path again, once by naming the version v1 had (still kept by the server).
    def load_call(params: dict) -> dict:
        status, _, body = http_call(base, "POST", f"/v2/repository/models/{MODEL}/load",
                                    json.dumps({"parameters": params}).encode(), {"Content-Type": "application/json"})
        if status != 200:
            raise RuntimeError(f"load {params} answered {status}: {body[:300]!r}")
        return json.loads(body or b"{}")

    def until_answer(t0: float, want: float) -> dict:
        while True:
            doc, got = infer(base, probe)
            if abs(got[0] - want) < 1e-9:
                return doc
            if time.perf_counter() - t0 > 30:
                raise RuntimeError("the rolled-back version still not answering 30 s after its load call")

    rollbacks: dict[str, list[float]] = {"path": [], "version": []}
    load_calls, versions, version_error = [], [], None
    for _ in range(5):
        for how in ("path", "version"):
            if how == "version" and version_error:
                continue
            t0 = time.perf_counter()
            answer = load_call({"path": v2})
            until_answer(t0, probe_v2)
            previous = answer.get("previous")
            t0 = time.perf_counter()
            try:
                load_call({"path": v1} if how == "path" else {"version": str(previous)})
            except RuntimeError as exc:
                version_error = str(exc)
                continue
            t_load = time.perf_counter() - t0
            doc = until_answer(t0, probe_v1)
            rollbacks[how].append(time.perf_counter() - t0)
            if how == "path":
                load_calls.append(t_load)
            versions.append(doc.get("model_version"))
    by_version = rollbacks["version"]
    return {"quiet": quiet, "swapped": swapped, "loads_ok": sum(1 for s, _, _ in loads if s == 200),
            "loads": len(loads), "loads_under_load": sum(1 for _, _, end in loads if end <= wrk_end),
            "load_p50": statistics.median([d for _, d, _ in loads]) if loads else float("nan"),
            "load_max": max((d for _, d, _ in loads), default=float("nan")), "load_errors": load_errors,
            "rollback_median": statistics.median(rollbacks["path"]), "rollback_max": max(rollbacks["path"]),
            "rollback_load_call": statistics.median(load_calls), "rollback_versions": versions,
            "rollback_version_median": statistics.median(by_version) if by_version else None,
            "rollback_version_max": max(by_version) if by_version else None, "rollback_version_error": version_error}


# -- report ------------------------------------------------------------------------------------------------

def fmt_us(us: float | None) -> str:
    if us is None or us != us:
        return "-"
    return f"{us:.1f} us" if us < 100 else (f"{us:.0f} us" if us < 10_000 else f"{us / 1000:.1f} ms")


def fmt_rate(x: float | None, unit: str = "req/s") -> str:
    if x is None:
        return "-"
    return f"{x / 1e6:.2f}M {unit}" if x >= 1e6 else (f"{x / 1e3:.1f}k {unit}" if x >= 1e4 else f"{x:.0f} {unit}")


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.1f}x" if a is not None and b is not None and b > 0 else "-"


def report(ml: dict | None, fx: dict | None, swap: dict | None, args: argparse.Namespace) -> list[tuple[str, bool]]:
    rows: list[tuple[str, str, str, str]] = []

    def load_rows(label: str, key: str, rows_per_request: int = 1) -> None:
        a, b = (ml[key] if ml else None), (fx[key] if fx else None)
        unit = "rows/s" if rows_per_request > 1 else "req/s"
        ra, rb = (a.rps * rows_per_request if a else None), (b.rps * rows_per_request if b else None)
        rows.append((f"{label}: throughput", fmt_rate(ra, unit), fmt_rate(rb, unit), ratio(rb, ra)))
        for p in ("p50", "p90", "p99"):
            pa, pb = (getattr(a, p) if a else None), (getattr(b, p) if b else None)
            rows.append((f"{label}: {p}", fmt_us(pa), fmt_us(pb), ratio(pa, pb)))
        ca, cb = (a.cpu_us if a else None), (b.cpu_us if b else None)
        rows.append((f"{label}: server CPU per request", fmt_us(ca), fmt_us(cb), ratio(ca, cb)))
        rows.append((f"{label}: errors (socket + non-2xx)", str(a.errors) if a else "-",
                     str(b.errors) if b else "-", ""))

    load_rows("1. GET /v2/health/live, 16 conn", "ceiling")
    load_rows("2. 1 row JSON, 1 conn", "one_c1")
    load_rows("2. 1 row JSON, 16 conn", "one_c16")
    load_rows("3. 10k rows, 1 conn", "big", BIG_ROWS)
    load_rows("3. 10k rows as JSON (both), 1 conn", "big_json", BIG_ROWS)
    for label, key in (("5. max |pred - lightgbm|, 1k rows JSON", "correct_1k"),
                       ("5. max |pred - lightgbm|, 10k-row request", "correct_10k")):
        rows.append((label, f"{ml[key]:.2e}" if ml else "-", f"{fx[key]:.2e}" if fx else "-", ""))

    w = max(len(r[0]) for r in rows)
    print()
    print(f"{'':{w}}  {'MLServer':>16}  {'ferrox':>16}  {'ratio':>8}")
    for r in rows:
        print(f"{r[0]:{w}}  {r[1]:>16}  {r[2]:>16}  {r[3]:>8}")
    print("ratio: ferrox / MLServer for throughput, MLServer / ferrox for latency and CPU; server CPU per "
          "request is the server processes' user + system time over the run divided by its requests (the work "
          "done, whatever else the machine runs)")
    if ml:
        print(f"3. MLServer got the 10k rows as OIP JSON ({PEER_VERSIONS}: its REST server has no binary tensor "
              "data extension)" if not ml["big_binary"] else "3. MLServer got the binary extension")
    if fx:
        print("3. ferrox got the 10k rows with the OIP binary tensor data extension (binary FP64 output)"
              if fx["big_binary"] else "3. ferrox got the 10k rows as OIP JSON")

    if swap:
        q, s = swap["quiet"], swap["swapped"]
        print()
        print(f"4. hot swap (ferrox), 16 conn, {args.duration:g} s: {swap['loads_ok']}/{swap['loads']} loads answered "
              f"200, {swap['loads_under_load']} of them while wrk ran (load call p50 {swap['load_p50'] * 1e3:.1f} ms, "
              f"max {swap['load_max'] * 1e3:.1f} ms)")
        for e in swap["load_errors"]:
            print(f"   load error: {e}")
        print(f"   without swaps: {fmt_rate(q.rps)}, p50 {fmt_us(q.p50)}, p99 {fmt_us(q.p99)}, failed {q.failed} "
              f"(statuses {q.statuses})")
        print(f"   with swaps:    {fmt_rate(s.rps)}, p50 {fmt_us(s.p50)}, p99 {fmt_us(s.p99)}, failed {s.failed} "
              f"(statuses {s.statuses})")
        print(f"   rollback (load call until the first answer from the previous version), 5 times: median "
              f"{swap['rollback_median'] * 1e3:.2f} ms, max {swap['rollback_max'] * 1e3:.2f} ms (load call alone "
              f"{swap['rollback_load_call'] * 1e3:.2f} ms; model_version answered {swap['rollback_versions'][-1]!r})")
        if swap["rollback_version_median"] is not None:
            print(f"   rollback by version ({{\"parameters\": {{\"version\": PREVIOUS}}}}), 5 times: median "
                  f"{swap['rollback_version_median'] * 1e3:.2f} ms, max {swap['rollback_version_max'] * 1e3:.2f} ms")
        else:
            print(f"   rollback by version: refused ({swap['rollback_version_error']})")

    bars: list[tuple[str, bool]] = []
    if fx:
        if ml:
            bars.append(("16-connection throughput >= 20x MLServer", fx["one_c16"].rps >= 20 * ml["one_c16"].rps))
        bars.append(("1-connection p50 <= 100 us", fx["one_c1"].p50 <= 100))
        bars.append(("1-connection p99 <= 1 ms", fx["one_c1"].p99 <= 1000))
        bars.append(("10k-row request >= 2M rows/s", fx["big"].rps * BIG_ROWS >= 2e6))
        bars.append(("ferrox predictions match lightgbm (max abs diff <= 1e-6)",
                     max(fx["correct_1k"], fx["correct_10k"]) <= 1e-6))
    if swap:
        bars.append(("swap: 0 failed requests, all 100 loads 200 and while wrk ran",
                     swap["swapped"].failed == 0 and swap["loads_ok"] == swap["loads_under_load"] == SWAP_LOADS))
        bars.append(("swap: p99 within 1.5x of the run without swaps",
                     swap["swapped"].p99 <= 1.5 * swap["quiet"].p99))
        bars.append(("rollback <= 1 s", max(swap["rollback_max"], swap["rollback_version_max"] or 0.0) <= 1.0))
    if ml:
        bars.append(("MLServer predictions match lightgbm (max abs diff <= 1e-6)",
                     max(ml["correct_1k"], ml["correct_10k"]) <= 1e-6))
    if bars:
        print()
        for name, ok in bars:
            print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return bars


# -- main --------------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mlserver-python", default=None,
                    help=f"a Python with MLServer installed ({PEER_VERSIONS}; see above)")
    ap.add_argument("--skip-mlserver", action="store_true", help="run only the ferrox half")
    ap.add_argument("--skip-ferrox", action="store_true", help="run only the MLServer half")
    ap.add_argument("--threads", type=int, default=2,
                    help="wrk threads at 16 connections, lightgbm training threads, ferrox serve --threads")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    ap.add_argument("--repeat", type=int, default=3, help="wrk runs per measurement (the median is reported)")
    ap.add_argument("--wrk", default=shutil.which("wrk") or "wrk", help="the wrk binary")
    ap.add_argument("--ferrox", default=None, help="the ferrox command (default: next to this Python, or on PATH)")
    ap.add_argument("--ferrox-arg", action="append", default=[],
                    help="an extra argument for ferrox serve, e.g. --ferrox-arg=--max-batch-size=32 (repeatable)")
    ap.add_argument("--mlserver-workers", type=int, default=0,
                    help="MLServer parallel_workers (0 = inference in the server process, no slower here than "
                         "1 or 2 and it stops cleanly on SIGTERM; MLServer's default is 1)")
    ap.add_argument("--mlserver-omp-threads", type=int, default=1,
                    help="OMP_NUM_THREADS for MLServer, i.e. lightgbm's predict threads (0 = leave unset); one "
                         "thread is faster for small requests on a busy event loop")
    ap.add_argument("--skip-swap", action="store_true", help="skip the hot-swap scenario")
    ap.add_argument("--workdir", default=None, help="keep models, bodies and server logs here")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    ap.add_argument("--start-timeout", type=float, default=120.0, help="seconds to wait for a server to be ready")
    args = ap.parse_args()
    if not args.skip_mlserver and not args.mlserver_python:
        ap.error("pass --mlserver-python PATH (a Python with MLServer) or --skip-mlserver")
    if shutil.which(args.wrk) is None:
        ap.error(f"wrk not found ({args.wrk}); on Debian: apt-get install wrk")

    tmp = None
    if args.workdir:
        workdir = os.path.abspath(args.workdir)
        os.makedirs(workdir, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="ferrox-serve-bench-")
        workdir = tmp.name
    try:
        run(args, workdir)
    finally:
        if tmp is not None:
            tmp.cleanup()


def run(args: argparse.Namespace, workdir: str) -> None:
    X, y = make_data(20_000, seed=0)
    v1_txt, v2_txt = os.path.join(workdir, "model-v1.txt"), os.path.join(workdir, "model-v2.txt")
    v1 = train_lightgbm(X, y, 100, seed=1, threads=args.threads, path=v1_txt)
    v2 = train_lightgbm(X, y, 120, seed=2, threads=args.threads, path=v2_txt)

    rng = np.random.default_rng(7)
    one_rows = rng.normal(size=(BODIES, FEATURES)).astype(np.float32)
    bodies_file = os.path.join(workdir, "one-row-bodies.jsonl")
    with open(bodies_file, "wb") as f:
        for row in one_rows:
            f.write(json_body(row[None, :]) + b"\n")
    check_rows = rng.normal(size=(CHECK_ROWS, FEATURES)).astype(np.float32)
    big_rows = rng.normal(size=(BIG_ROWS, FEATURES)).astype(np.float32)
    big_json = json_body(big_rows)
    big_json_file = os.path.join(workdir, "big.json")
    with open(big_json_file, "wb") as f:
        f.write(big_json + b"\n")
    big_binary = binary_body(big_rows)
    big_binary_file = os.path.join(workdir, "big.bin")
    with open(big_binary_file, "wb") as f:
        f.write(big_binary[0])
    b = Bench(args=args, workdir=workdir, bodies_file=bodies_file, big_json=big_json, big_binary=big_binary,
              big_binary_file=big_binary_file, big_json_file=big_json_file, check_rows=check_rows,
              check_expected=v1.predict(check_rows), big_rows=big_rows, big_expected=v1.predict(big_rows))

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores "
          "(wrk and the server share them)")
    print(f"model: lightgbm binary, 100 trees x 31 leaves, {FEATURES} features; {args.threads} threads; "
          f"wrk {args.duration:g} s per run, median of {args.repeat}; 127.0.0.1 only")

    ml_res = fx_res = swap_res = None
    failures: list[str] = []
    if not args.skip_mlserver:
        print(f"MLServer ({PEER_VERSIONS}, parallel_workers={args.mlserver_workers}, "
              f"OMP_NUM_THREADS={args.mlserver_omp_threads or 'unset'}) ...", flush=True)
        srv = None
        try:
            srv = start_mlserver(args.mlserver_python, workdir, v1_txt, args.mlserver_workers,
                                 args.mlserver_omp_threads, args.start_timeout)
            b.server = srv
            ml_res = run_server(b, srv.base, binary=False)
        except Exception as exc:  # still report the other half
            failures.append(f"MLServer: {exc}")
        finally:
            if srv is not None:
                srv.stop()

    if not args.skip_ferrox:
        ferrox = args.ferrox or os.path.join(os.path.dirname(sys.executable), "ferrox")
        if not os.path.exists(ferrox):
            ferrox = shutil.which("ferrox") or ferrox
        v1_frx, v2_frx = os.path.join(workdir, "model-v1.frx"), os.path.join(workdir, "model-v2.frx")
        print(f"ferrox ({ferrox} serve {' '.join(args.ferrox_arg)}) ...", flush=True)
        srv = None
        try:
            convert_for_ferrox(v1_txt, v1_frx)
            convert_for_ferrox(v2_txt, v2_frx)
            srv = start_ferrox(ferrox, workdir, v1_frx, args.threads, args.ferrox_arg, args.start_timeout)
            b.server = srv
            fx_res = run_server(b, srv.base, binary=True)
            if not args.skip_swap:
                probe = one_rows[:1]
                p1, p2 = float(v1.predict(probe)[0]), float(v2.predict(probe)[0])
                if abs(p1 - p2) < 1e-6:
                    raise RuntimeError("the two model versions predict the same value for the probe row")
                swap_res = scenario_swap(b, srv.base, v1_frx, v2_frx, json_body(probe), p1, p2)
        except Exception as exc:  # still report what was measured
            failures.append(f"ferrox: {exc}")
        finally:
            if srv is not None:
                srv.stop()

    bars = report(ml_res, fx_res, swap_res, args)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for f in failures:
        print(f"FAILED  {f}", file=sys.stderr)
    if args.json:
        def plain(res):
            return {k: (v.__dict__ if isinstance(v, Load) else v) for k, v in res.items()} if res else None
        with open(args.json, "w") as f:
            json.dump({"mlserver": plain(ml_res), "ferrox": plain(fx_res), "swap": plain(swap_res),
                       "bars": {n: ok for n, ok in bars}, "failures": failures, "args": vars(args)},
                      f, indent=2, default=str)
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
