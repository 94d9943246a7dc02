"""Dataset construction benchmark: ferrox vs LightGBM on the same random float32 matrix.

Run it from the repository root (``make bench`` runs it with the defaults)::

    .venv/bin/python benches/dataset.py                      # 1,000,000 x 100, 2 threads, 3 repeats
    .venv/bin/python benches/dataset.py --rows 100000 --cols 20 --threads 4 --repeats 5

What is measured
----------------
Every construction runs in a fresh child process (this script, started again with a hidden flag), so
that one run's allocations and thread pools cannot flatter the next, and peak memory is per run:

1. the child imports the library and builds the input: a seeded (``numpy.random.default_rng(0)``)
   uniform float32 matrix with ~1% NaN, written in row blocks straight into its final array so that no
   temporary larger than a block exists, plus a float64 label;
2. it resets the kernel's peak-RSS counter (``/proc/self/clear_refs``) and reads ``VmHWM`` from
   ``/proc/self/status``: the baseline, which already holds the input;
3. it builds the Dataset (ferrox: ``fx.Dataset(X, label=y, max_bin=255, num_threads=T)``; LightGBM:
   ``lgb.Dataset(X, label=y, params={"max_bin": 255, "num_threads": T, "verbose": -1}).construct()``),
   timing only that call with ``time.perf_counter``;
4. it reads ``VmHWM`` again. Peak extra = after - baseline: the most memory the construction held on
   top of the input at any moment. ``VmRSS`` after construction (Dataset still alive) gives what it keeps.

Repeats alternate the libraries (ferrox, LightGBM, ferrox, ...). Reported: the median time, and the
largest peak extra over the repeats. The memory bar for ferrox is a peak extra of at most 0.5x the
input's bytes (matrix + label). Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

LIBS = ("ferrox", "lightgbm")
MEMORY_BAR = 0.5  # ferrox's peak extra memory, as a share of the input's bytes
NAN_SHARE = 0.01
SEED = 0


def _proc_status_bytes() -> dict[str, int]:
    """VmHWM (peak RSS) and VmRSS of this process, in bytes."""
    with open("/proc/self/status") as f:
        text = f.read()
    return {k: int(v) * 1024 for k, v in re.findall(r"^(VmHWM|VmRSS):\s+(\d+) kB", text, re.M)}


def _reset_peak_rss() -> bool:
    """Sets VmHWM back to the current RSS (Linux >= 4.0); False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _make_input(rows: int, cols: int):
    """The seeded input matrix (float32, C order, ~1% NaN) and label, with no full-size temporaries."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    X = np.empty((rows, cols), dtype=np.float32)
    block = max(1, (1 << 20) // max(cols, 1))  # ~4 MiB of float32 per block
    for start in range(0, rows, block):
        part = X[start : start + block]
        rng.random(out=part, dtype=np.float32)
        part[rng.random(part.shape, dtype=np.float32) < NAN_SHARE] = np.nan
    y = rng.random(rows)
    return X, y


def _child(lib: str, rows: int, cols: int, threads: int) -> None:
    """One construction in this (fresh) process; prints one JSON line."""
    if lib == "ferrox":
        import ferrox as fx

        version = fx.__version__
    else:
        import lightgbm as lgb

        version = lgb.__version__
    X, y = _make_input(rows, cols)
    hwm_reset = _reset_peak_rss()
    before = _proc_status_bytes()

    t0 = time.perf_counter()
    if lib == "ferrox":
        fx_ds = fx.Dataset(X, label=y, max_bin=255, num_threads=threads)
    else:
        lgb_ds = lgb.Dataset(X, label=y, params={"max_bin": 255, "num_threads": threads, "verbose": -1}).construct()
    seconds = time.perf_counter() - t0

    after = _proc_status_bytes()  # both Datasets are still alive here: kept_bytes counts what they hold
    if lib == "ferrox":
        bins = fx_ds.num_bins()[:3]
        num_data = fx_ds.num_data()
    else:
        bins = [lgb_ds.feature_num_bin(i) for i in range(min(3, cols))]
        num_data = lgb_ds.num_data()
    print(
        json.dumps(
            {
                "lib": lib,
                "version": version,
                "seconds": seconds,
                "input_bytes": int(X.nbytes + y.nbytes),
                "peak_extra_bytes": after["VmHWM"] - before["VmHWM"],
                "kept_bytes": after["VmRSS"] - before["VmRSS"],
                "hwm_reset": hwm_reset,
                "num_data": num_data,
                "bins_first3": bins,
            }
        )
    )


def _run_child(lib: str, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        lib,
        "--rows",
        str(args.rows),
        "--cols",
        str(args.cols),
        "--threads",
        str(args.threads),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{lib} child failed (exit {proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _mb(n: float) -> str:
    return f"{n / 2**20:,.1f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--cols", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--child", choices=LIBS, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        _child(args.child, args.rows, args.cols, args.threads)
        return

    runs: dict[str, list[dict]] = {lib: [] for lib in LIBS}
    for r in range(args.repeats):
        for lib in LIBS:
            res = _run_child(lib, args)
            runs[lib].append(res)
            print(
                f"  repeat {r + 1}/{args.repeats} {lib:<8} {res['seconds']:8.3f} s   "
                f"peak extra {_mb(res['peak_extra_bytes']):>8} MiB",
                flush=True,
            )

    input_bytes = runs["ferrox"][0]["input_bytes"]
    summary: dict[str, dict] = {}
    for lib in LIBS:
        rs = runs[lib]
        summary[lib] = {
            "version": rs[0]["version"],
            "median_s": statistics.median(r["seconds"] for r in rs),
            "min_s": min(r["seconds"] for r in rs),
            "peak_extra_bytes": max(r["peak_extra_bytes"] for r in rs),
            "kept_bytes": max(r["kept_bytes"] for r in rs),
            "bins_first3": rs[0]["bins_first3"],
            "hwm_reset": all(r["hwm_reset"] for r in rs),
        }

    fx_s, lgb_s = summary["ferrox"], summary["lightgbm"]
    ratio = fx_s["median_s"] / lgb_s["median_s"]
    fx_mem = fx_s["peak_extra_bytes"] / input_bytes

    print()
    print(
        f"Dataset construction: {args.rows:,} x {args.cols} float32 (~{NAN_SHARE:.0%} NaN) + float64 label, "
        f"max_bin=255, {args.threads} threads, {args.repeats} repeats; input {_mb(input_bytes)} MiB"
    )
    header = f"{'library':<18}{'median s':>10}{'min s':>10}{'peak extra MiB':>16}{'x input':>9}{'kept MiB':>10}"
    print(header)
    print("-" * len(header))
    for lib in LIBS:
        s = summary[lib]
        print(
            f"{lib + ' ' + s['version']:<18}{s['median_s']:>10.3f}{s['min_s']:>10.3f}"
            f"{_mb(s['peak_extra_bytes']):>16}{s['peak_extra_bytes'] / input_bytes:>9.3f}{_mb(s['kept_bytes']):>10}"
        )
    print(f"time ferrox / lightgbm (medians): {ratio:.3f}")
    verdict = "ok" if fx_mem <= MEMORY_BAR else "OVER THE BAR"
    print(f"ferrox peak extra / input bytes: {fx_mem:.3f} (bar <= {MEMORY_BAR}: {verdict})")
    print(f"sanity: bins of features 0-2 (missing bin included): ferrox {fx_s['bins_first3']}, "
          f"lightgbm {lgb_s['bins_first3']}")
    if not (fx_s["hwm_reset"] and lgb_s["hwm_reset"]):
        print("note: could not reset VmHWM; peak extra is measured from the high-water mark left by input creation")
    print(
        json.dumps(
            {
                "bench": "dataset_construction",
                "rows": args.rows,
                "cols": args.cols,
                "threads": args.threads,
                "repeats": args.repeats,
                "input_bytes": input_bytes,
                "ferrox_median_s": round(fx_s["median_s"], 4),
                "lightgbm_median_s": round(lgb_s["median_s"], 4),
                "time_ratio": round(ratio, 4),
                "ferrox_peak_extra_bytes": fx_s["peak_extra_bytes"],
                "lightgbm_peak_extra_bytes": lgb_s["peak_extra_bytes"],
                "ferrox_peak_extra_over_input": round(fx_mem, 4),
                "memory_bar_ok": fx_mem <= MEMORY_BAR,
            }
        )
    )


if __name__ == "__main__":
    main()
