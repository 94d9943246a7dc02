"""ferrox.experiment side by side with scipy / statsmodels / pandas: parity, A/A honesty, CUPED, speed.

    python benches/experiment.py [--rows 10000000] [--sims 2000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from scipy import stats

import ferrox as fx
from ferrox.experiment import ArmStats, compare


def rel(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def parity(rng):
    from statsmodels.stats.power import NormalIndPower, TTestIndPower
    from statsmodels.stats.proportion import proportions_ztest

    worst = {"welch t": 0.0, "z proportions": 0.0, "chi-square SRM": 0.0, "power / nobs / MDE": 0.0}
    for _ in range(20):
        c, t = rng.normal(10, 2, rng.integers(50, 5000)), rng.normal(10.1, 2.5, rng.integers(50, 5000))
        r, ref = compare(c, t), stats.ttest_ind(t, c, equal_var=False)
        ci = ref.confidence_interval()
        worst["welch t"] = max(worst["welch t"], rel(r.statistic, ref.statistic), rel(r.pvalue, ref.pvalue), rel(r.ci[0], ci.low), rel(r.ci[1], ci.high))
        a, b = rng.binomial(1, 0.1, 8000).astype(float), rng.binomial(1, 0.105, 9000).astype(float)
        z, p = proportions_ztest([b.sum(), a.sum()], [len(b), len(a)])
        r = compare(a, b, metric="proportion")
        worst["z proportions"] = max(worst["z proportions"], rel(r.statistic, z), rel(r.pvalue, p))
        counts = rng.multinomial(50_000, [0.5, 0.3, 0.2]).astype(float)
        s, cs = fx.experiment.srm(counts, [0.5, 0.3, 0.2]), stats.chisquare(counts, counts.sum() * np.array([0.5, 0.3, 0.2]))
        worst["chi-square SRM"] = max(worst["chi-square SRM"], rel(s.statistic, cs.statistic), rel(s.pvalue, cs.pvalue))
        d, n = rng.uniform(0.05, 0.5), float(rng.integers(30, 3000))
        for test, refp in (("t", TTestIndPower()), ("z", NormalIndPower())):
            e = [rel(fx.experiment.power(effect_size=d, nobs1=n, test=test).power, refp.power(d, n, 0.05))]
            e.append(rel(fx.experiment.power(effect_size=d, power=0.8, test=test).nobs1, refp.solve_power(d, None, 0.05, 0.8)))
            e.append(rel(fx.experiment.power(nobs1=n, power=0.8, test=test).effect_size, refp.solve_power(None, n, 0.05, 0.8)))
            worst["power / nobs / MDE"] = max(worst["power / nobs / MDE"], *e)
    print("parity (largest relative difference over 20 fresh data sets; bar 1e-9)")
    for k, v in worst.items():
        print(f"  {k:<22} {v:.2e}")


def aa(rng, sims, looks=20, batch=100):
    data = rng.normal(size=(sims, 2, looks * batch))
    sums = np.cumsum(data.reshape(sims, 2, looks, batch).sum(axis=3), axis=2)
    sq = np.cumsum((data**2).reshape(sims, 2, looks, batch).sum(axis=3), axis=2)
    fixed = seq = peek = 0
    for s in range(sims):
        sh = ph = False
        for k in range(looks):
            n = (k + 1) * batch
            a, b = ArmStats(n, sums[s, 0, k], sq[s, 0, k]), ArmStats(n, sums[s, 1, k], sq[s, 1, k])
            p = compare(a, b).pvalue
            ph |= p < 0.05
            sh |= compare(a, b, method="sequential").pvalue < 0.05
            if k == looks - 1:
                fixed += p < 0.05
        seq += sh
        peek += ph
    print(f"A/A over {sims} simulated experiments (alpha 0.05, {looks} looks of {batch} units per arm)")
    print(f"  fixed, one look at the end      {fixed / sims:.4f}")
    print(f"  sequential, every look          {seq / sims:.4f}")
    print(f"  naive peeking (fixed each look) {peek / sims:.4f}")


def cuped_units(rng):
    n = 200_000
    pre = rng.normal(100, 20, 2 * n)
    y = 100 + 0.7 * (pre - 100) + np.sqrt(1 - 0.49) * rng.normal(0, 20, 2 * n)
    c, t, pc, pt = y[:n], y[n:] * 1.02, pre[:n], pre[n:]
    plain, cup = compare(c, t), compare(c, t, covariate=(pc, pt))
    # units needed for equal power scale with the variance of the estimate
    share = cup.se**2 / plain.se**2
    d = plain.effect / np.sqrt(plain.se**2 * n / 2)
    need_plain = fx.experiment.power(effect_size=d, power=0.8, test="z").nobs1
    print("CUPED (correlation 0.7, +2% lift)")
    print(f"  units per arm for 80% power: plain {need_plain:,.0f}, CUPED {need_plain * share:,.0f} ({share:.1%}; bar <= 55%)")


def speed(rng, rows):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.proportion import proportions_ztest
    from statsmodels.stats.weightstats import ttest_ind

    arms = rng.choice(np.array(["control", "t1", "t2"]), size=rows)
    pre = rng.gamma(2.0, 5.0, rows)
    table = pa.table({
        "arm": arms,
        "pre": pre,
        "revenue": 0.7 * pre + rng.normal(0, 5, rows) + np.where(arms == "t2", 0.05, 0.0),
        "converted": rng.random(rows) < 0.1,
    })
    path = os.path.join(tempfile.mkdtemp(), "events.parquet")
    pq.write_table(table, path)
    del table

    def ours():
        return fx.experiment.analyze(path, metrics=["revenue", "converted"], covariates={"revenue": "pre"})

    def theirs():
        df = pd.read_parquet(path)
        out = []
        groups = {a: g for a, g in df.groupby("arm", sort=True)}
        ctrl = groups["control"]
        for metric in ("revenue", "converted"):
            for arm in ("t1", "t2"):
                g = groups[arm]
                if metric == "revenue":
                    both = pd.concat([ctrl[["revenue", "pre"]], g[["revenue", "pre"]]])
                    theta = both["revenue"].cov(both["pre"]) / both["pre"].var()
                    mx = both["pre"].mean()
                    ac = ctrl["revenue"] - theta * (ctrl["pre"] - mx)
                    at = g["revenue"] - theta * (g["pre"] - mx)
                    _, p, _ = ttest_ind(at.to_numpy(), ac.to_numpy(), usevar="unequal")
                    out.append((at.mean() - ac.mean(), p))
                else:
                    s = [g[metric].sum(), ctrl[metric].sum()]
                    _, p = proportions_ztest(s, [len(g), len(ctrl)])
                    out.append((g[metric].mean() - ctrl[metric].mean(), p))
        adj = multipletests([p for _, p in out], method="holm")[1]
        return out, adj

    t_ours, t_theirs = [], []
    for _ in range(3):
        t0 = time.perf_counter(); r = ours(); t_ours.append(time.perf_counter() - t0)
    for _ in range(2):
        t0 = time.perf_counter(); ref, adj = theirs(); t_theirs.append(time.perf_counter() - t0)
    diff = max(max(abs(row["effect"] - e), abs(row["pvalue"] - p), abs(row["pvalue_adjusted"] - q)) for row, (e, p), q in zip(r.rows, ref, adj))
    a, b = np.median(t_ours), np.median(t_theirs)
    print(f"analyze {rows:,} events from Parquet (3 arms, 2 metrics, CUPED on one)")
    print(f"  ferrox {a:.3f} s   pandas groupby + statsmodels {b:.3f} s   ratio {b / a:.1f}x (bar >= 20x)   largest difference {diff:.2e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--sims", type=int, default=2000)
    args = ap.parse_args()
    rng = np.random.default_rng(12345)
    parity(rng)
    aa(rng, args.sims)
    cuped_units(rng)
    speed(rng, args.rows)


if __name__ == "__main__":
    main()
