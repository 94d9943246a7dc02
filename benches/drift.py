"""ferrox drift vs scipy (and Evidently when available) on the same frames.

    python benches/drift.py --rows 200000 --threads 2

Reference and current frames have 20 numeric columns (normal, heavy-tailed, skewed, discrete; half of
them shifted in current data) and 5 categorical ones (pandas ``category``). ferrox runs
``ReferenceProfile.fit(ref).compare(cur)`` from the pandas frames (profile, tests, corrected p-values,
PSI and histograms per column, the report read back into Python); scipy computes the same tests from the
same raw columns, one column at a time (``ks_2samp`` on numeric columns, ``chi2_contingency`` on category
counts taken from the category codes with ``np.bincount``). Both start from the frames and end with a
statistic and p-value per column; ferrox does more on the way (PSI, histograms, correction).
Printed: median seconds of each, the ratio, and the largest relative p-value and statistic
differences between the two.

Evidently's DataDriftPreset runs only when ``--evidently-python`` names a Python that has Evidently
(it needs pandas < 3, so it lives in an environment of its own); it reads the frames as parquet.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from scipy import stats

import ferrox as fx


def make_frames(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def build(shifted: bool) -> pd.DataFrame:
        cols: dict[str, object] = {}
        for j in range(20):
            s = 0.05 * (j % 2) if shifted else 0.0
            kind = j % 4
            if kind == 0:
                v = rng.normal(s, 1.0, rows)
            elif kind == 1:
                v = rng.standard_t(3, rows) + s
            elif kind == 2:
                v = rng.lognormal(s, 1.0, rows)
            else:
                v = rng.poisson(5 + 10 * s, rows).astype(float)
            cols[f"num_{j}"] = v
        for j in range(5):
            k = 3 + 4 * j
            p = np.arange(1, k + 1, dtype=float)
            if shifted and j % 2:
                p = p[::-1]
            cols[f"cat_{j}"] = pd.Categorical(rng.choice([f"v{i}" for i in range(k)], rows, p=p / p.sum()))
        return pd.DataFrame(cols)

    return build(False), build(True)


def category_table(ref: pd.Series, cur: pd.Series) -> np.ndarray:
    """The 2 x K table of category counts (categories present in either sample), from the category
    codes: the cheapest way numpy has to count them."""
    cats = ref.cat.categories.union(cur.cat.categories)

    def counts(s: pd.Series) -> np.ndarray:
        codes = s.cat.codes.to_numpy()
        return np.bincount(cats.get_indexer(s.cat.categories)[codes[codes >= 0]], minlength=len(cats))

    table = np.vstack([counts(ref), counts(cur)])
    return table[:, table.sum(axis=0) > 0]


def scipy_columns(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """The tests ferrox runs by default, computed by scipy from the raw columns, one column at a time."""
    out = {}
    for col in ref.columns:
        if isinstance(ref[col].dtype, pd.CategoricalDtype):
            r = stats.chi2_contingency(category_table(ref[col], cur[col]))
        else:
            r = stats.ks_2samp(ref[col].to_numpy(), cur[col].to_numpy())
        out[col] = (float(r.statistic), float(r.pvalue))
    return out


def ferrox_columns(ref: pd.DataFrame, cur: pd.DataFrame, threads: int) -> dict[str, tuple[float, float]]:
    report = fx.drift.ReferenceProfile.fit(ref, num_threads=threads).compare(cur, num_threads=threads)
    return {c["column"]: (c["statistic"], c["pvalue"]) for c in report.columns}


def median_time(fn, repeat: int) -> tuple[float, float, object]:
    """Median wall seconds, median CPU seconds of this process (all threads), last result."""
    times, cpu, result = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(times), statistics.median(cpu), result


EVIDENTLY_SCRIPT = r"""
import sys, time, json, statistics, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref, cur, repeat = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2]), int(sys.argv[3])
times = []
for _ in range(repeat):
    t0 = time.perf_counter()
    Report([DataDriftPreset()]).run(reference_data=ref, current_data=cur)
    times.append(time.perf_counter() - t0)
print(json.dumps({"median": statistics.median(times)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--evidently-python", default=None, help="a Python with evidently installed (pandas < 3)")
    args = ap.parse_args()

    ref, cur = make_frames(args.rows)
    print(f"{args.rows} rows x {ref.shape[1]} columns (20 numeric, 5 categorical), {args.threads} threads, "
          f"median of {args.repeat}")
    ferrox_columns(ref, cur, args.threads)  # warm-up
    t_fx, c_fx, fx_res = median_time(lambda: ferrox_columns(ref, cur, args.threads), args.repeat)
    t_sp, c_sp, sp_res = median_time(lambda: scipy_columns(ref, cur), args.repeat)
    max_p, max_s = 0.0, 0.0
    for col, (s_sp, p_sp) in sp_res.items():
        s_fx, p_fx = fx_res[col]
        max_s = max(max_s, abs(s_fx - s_sp) / max(abs(s_sp), 1e-300))
        max_p = max(max_p, abs(p_fx - p_sp) / max(abs(p_sp), 1e-300))
    print(f"ferrox ReferenceProfile.fit(ref).compare(cur): {t_fx:.4f} s")
    print(f"scipy column by column (ks_2samp / chi2_contingency): {t_sp:.4f} s")
    print(f"ratio scipy / ferrox: {t_sp / t_fx:.1f}x   max relative difference: p-value {max_p:.2e}, statistic {max_s:.2e}")
    print(f"CPU seconds (all threads): ferrox {c_fx:.4f}, scipy {c_sp:.4f}, ratio {c_sp / c_fx:.1f}x "
          "(the work done, whatever else the machine runs)")

    if args.evidently_python:
        with tempfile.TemporaryDirectory() as d:
            rp, cp = os.path.join(d, "ref.parquet"), os.path.join(d, "cur.parquet")
            ref.to_parquet(rp)
            cur.to_parquet(cp)
            out = subprocess.run([args.evidently_python, "-c", EVIDENTLY_SCRIPT, rp, cp, str(args.repeat)],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print("Evidently failed:", out.stderr.strip().splitlines()[-1:], file=sys.stderr)
            else:
                t_ev = json.loads(out.stdout.strip().splitlines()[-1])["median"]
                print(f"Evidently DataDriftPreset: {t_ev:.4f} s   ratio Evidently / ferrox: {t_ev / t_fx:.1f}x")
    else:
        print("Evidently: skipped (pass --evidently-python PATH to a Python with evidently and pandas < 3)")


if __name__ == "__main__":
    main()
