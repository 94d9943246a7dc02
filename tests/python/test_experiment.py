"""ferrox.experiment against scipy / statsmodels and direct numpy computations, on fresh random data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

import ferrox as fx
from ferrox.experiment import ArmStats, compare

REL = 1e-9


def close(a, b, rel=REL):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


@pytest.fixture
def rng():
    return np.random.default_rng()


def test_welch_t_equals_scipy(rng):
    for _ in range(5):
        nc, nt = rng.integers(20, 3000, size=2)
        c = rng.normal(10, rng.uniform(0.5, 3), nc)
        t = rng.normal(10 + rng.uniform(-0.3, 0.3), rng.uniform(0.5, 3), nt)
        ref = stats.ttest_ind(t, c, equal_var=False)
        ci = ref.confidence_interval(0.95)
        r = compare(c, t)
        assert close(r.statistic, ref.statistic) and close(r.pvalue, ref.pvalue), (r, ref)
        assert close(r.ci[0], ci.low) and close(r.ci[1], ci.high)
        assert abs(r.effect - (t.mean() - c.mean())) <= 1e-12 * abs(c.mean())
        # the same from sufficient statistics
        s = compare(ArmStats.from_values(c), ArmStats.from_values(t))
        assert close(s.pvalue, ref.pvalue, 1e-6)


def test_proportions_z_equals_statsmodels(rng):
    for _ in range(5):
        n = rng.integers(500, 20000, size=2)
        p = rng.uniform(0.05, 0.5)
        c = rng.binomial(1, p, n[0]).astype(float)
        t = rng.binomial(1, p * rng.uniform(0.9, 1.1), n[1]).astype(float)
        z, pv = proportions_ztest([t.sum(), c.sum()], [len(t), len(c)])
        lo, hi = confint_proportions_2indep(t.sum(), len(t), c.sum(), len(c), method="wald", compare="diff")
        r = compare(c, t, metric="proportion")
        assert close(r.statistic, z) and close(r.pvalue, pv), (r, z, pv)
        assert close(r.ci[0], lo) and close(r.ci[1], hi)


def test_srm_equals_chisquare(rng):
    for k in (2, 3, 5):
        w = rng.uniform(0.5, 2, k)
        counts = rng.multinomial(100_000, w / w.sum()).astype(float)
        counts[0] += rng.integers(0, 800)
        ref = stats.chisquare(counts, counts.sum() * w / w.sum())
        r = fx.experiment.srm(counts, w)
        assert close(r.statistic, ref.statistic) and close(r.pvalue, ref.pvalue)
        assert r.mismatch == (ref.pvalue < 0.001)


def test_power_equals_statsmodels(rng):
    for _ in range(3):
        d, n, ratio = rng.uniform(0.05, 0.3), float(rng.integers(20, 500)), rng.uniform(0.5, 2)
        for test, ref in (("t", TTestIndPower()), ("z", NormalIndPower())):
            pw = ref.power(d, n, 0.05, ratio=ratio)
            assert close(fx.experiment.power(effect_size=d, nobs1=n, ratio=ratio, test=test).power, pw)
            target = rng.uniform(0.5, 0.95)
            n_ref = float(np.squeeze(ref.solve_power(effect_size=d, nobs1=None, alpha=0.05, power=target, ratio=ratio)))
            # Solved values: statsmodels' power at our solution is the target to 1e-9. Its own root finder
            # stops when close enough (its power at its solution can miss by ~1e-7), so the two solutions
            # may lie apart by as much as its miss allows through the local slope, no more; and ours must
            # be at least as accurate as its.
            n_ours = fx.experiment.power(effect_size=d, power=target, ratio=ratio, test=test).nobs1
            assert close(ref.power(d, n_ours, 0.05, ratio=ratio), target)
            assert _agree(lambda v: ref.power(d, v, 0.05, ratio=ratio), n_ours, n_ref, target)
            # A two-sided test's power is even in the effect: statsmodels may return the negative root.
            d_ref = abs(float(np.squeeze(ref.solve_power(effect_size=None, nobs1=n, alpha=0.05, power=target, ratio=ratio))))
            d_ours = fx.experiment.power(nobs1=n, power=target, ratio=ratio, test=test).effect_size
            assert close(ref.power(d_ours, n, 0.05, ratio=ratio), target)
            assert _agree(lambda v: ref.power(v, n, 0.05, ratio=ratio), d_ours, d_ref, target)


def _agree(f, ours, theirs, target):
    """Two roots of f(v) = target: ours no less accurate than theirs (to the 1e-9 parity bar), and apart
    by at most what their residuals allow through the slope of f (plus 1e-9 relative)."""
    r_ours, r_ref = abs(f(ours) - target), abs(f(theirs) - target)
    h = 1e-5 * abs(ours)
    slope = abs(f(ours + h) - f(ours - h)) / (2 * h)
    return r_ours <= r_ref + 1e-9 and abs(ours - theirs) <= 1.01 * (r_ours + r_ref) / slope + 1e-9 * abs(ours)


def _ratio_var(y, x):
    r = y.mean() / x.mean()
    cov = np.cov(y, x, ddof=1)
    return (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (len(y) * x.mean() ** 2)


def test_delta_method_and_cuped_variances_equal_numpy(rng):
    n = 4000
    xc, xt = rng.poisson(5, n) + 1.0, rng.poisson(5, n + 17) + 1.0
    yc, yt = xc * rng.uniform(0.5, 1.5, n), xt * rng.uniform(0.5, 1.6, n + 17)
    r = compare((yc, xc), (yt, xt), metric="ratio")
    assert close(r.se**2, _ratio_var(yc, xc) + _ratio_var(yt, xt), 1e-12)
    assert close(r.effect, yt.sum() / xt.sum() - yc.sum() / xc.sum(), 1e-12)
    # relative lift of a mean
    c, t = rng.normal(10, 2, n), rng.normal(10.2, 2, n + 5)
    r = compare(c, t, relative=True)
    vc, vt = c.var(ddof=1) / len(c), t.var(ddof=1) / len(t)
    mc, mt = c.mean(), t.mean()
    assert close(r.effect, mt / mc - 1, 1e-12)
    assert close(r.se**2, vt / mc**2 + mt**2 * vc / mc**4, 1e-12)
    # CUPED: theta from both arms pooled
    pc, pt = rng.normal(5, 1, n), rng.normal(5, 1, n + 5)
    c, t = pc * 2 + rng.normal(0, 1, n), pt * 2 + rng.normal(0.1, 1, n + 5)
    y, x = np.r_[c, t], np.r_[pc, pt]
    theta = np.cov(y, x, ddof=1)[0, 1] / x.var(ddof=1)
    ac, at = c - theta * (pc - x.mean()), t - theta * (pt - x.mean())
    r = compare(c, t, covariate=(pc, pt))
    assert close(r.theta, theta, 1e-12)
    assert close(r.effect, at.mean() - ac.mean(), 1e-12)
    assert close(r.se**2, ac.var(ddof=1) / len(ac) + at.var(ddof=1) / len(at), 1e-12)
    ref = stats.ttest_ind(at, ac, equal_var=False)
    assert close(r.pvalue, ref.pvalue)


def test_cuped_variance_shrinks_by_one_minus_rho_squared(rng):
    n = 20000
    pre_c, pre_t = rng.normal(size=n), rng.normal(size=n)
    noise = np.sqrt(1 - 0.49)
    c, t = 0.7 * pre_c + noise * rng.normal(size=n), 0.7 * pre_t + noise * rng.normal(size=n)
    plain, cuped = compare(c, t), compare(c, t, covariate=(pre_c, pre_t))
    assert abs(cuped.se**2 / plain.se**2 - 0.51) < 0.03


def test_a_a_fixed_sequential_and_peeking(rng):
    sims, looks, batch = 400, 20, 50
    data = rng.normal(size=(sims, 2, looks * batch))
    sums = np.cumsum(data.reshape(sims, 2, looks, batch).sum(axis=3), axis=2)
    sq = np.cumsum((data**2).reshape(sims, 2, looks, batch).sum(axis=3), axis=2)
    fixed = seq = peek = 0
    for s in range(sims):
        seq_hit = peek_hit = False
        for k in range(looks):
            n = (k + 1) * batch
            a, b = ArmStats(n, sums[s, 0, k], sq[s, 0, k]), ArmStats(n, sums[s, 1, k], sq[s, 1, k])
            p_fixed = compare(a, b).pvalue
            peek_hit |= p_fixed < 0.05
            seq_hit |= compare(a, b, method="sequential").pvalue < 0.05
            if k == looks - 1:
                fixed += p_fixed < 0.05
        seq += seq_hit
        peek += peek_hit
    assert 0.017 <= fixed / sims <= 0.083, fixed / sims
    assert seq / sims <= 0.05, seq / sims
    assert peek / sims > 0.1, peek / sims


def test_sequential_interval_and_pvalue_agree(rng):
    c, t = rng.normal(0, 1, 3000), rng.normal(0.08, 1, 3000)
    s, f = compare(c, t, method="sequential"), compare(c, t)
    assert s.ci[0] < f.ci[0] and s.ci[1] > f.ci[1]  # wider than the fixed-horizon interval
    assert (s.pvalue < 0.05) == (s.ci[0] > 0 or s.ci[1] < 0)
    assert s.pvalue >= f.pvalue


def test_bayesian_beta_binomial_matches_monte_carlo(rng):
    nc, nt, sc, st = 5000, 5000, 500, 540
    c = np.r_[np.ones(sc), np.zeros(nc - sc)]
    t = np.r_[np.ones(st), np.zeros(nt - st)]
    r = compare(c, t, metric="proportion", method="bayesian")
    pc, pt = rng.beta(1 + sc, 1 + nc - sc, 400_000), rng.beta(1 + st, 1 + nt - st, 400_000)
    assert abs(r.chance_to_win - (pt > pc).mean()) < 0.005
    assert abs(r.expected_loss - np.maximum(pc - pt, 0).mean()) < 2e-4
    g = compare(rng.normal(0, 1, 2000), rng.normal(0.1, 1, 2000), method="bayesian")
    assert close(g.chance_to_win, stats.norm.cdf(g.effect / g.se))
    assert g.ci[0] < g.effect < g.ci[1] and np.isnan(g.pvalue)


def test_decisions_in_plain_words(rng):
    c = rng.normal(10, 2, 4000)
    assert compare(c, c + 0.5).decision == "ship treatment"
    assert compare(c, c - 0.5).decision == "roll back"
    r = compare(c, rng.normal(10.01, 2, 4000))
    if r.pvalue >= 0.05:
        assert r.decision.startswith("keep collecting: about ") and r.decision.endswith(" more units per arm for 80% power")


def test_bad_input_names_the_parameter():
    ok = [1.0, 2.0, 3.0]
    with pytest.raises(fx.DataError, match="control"):
        compare([], ok)
    with pytest.raises(fx.DataError, match="treatment"):
        compare(ok, [1.0, float("nan")])
    with pytest.raises(fx.DataError, match="covariate"):
        compare(ok, ok, covariate=([1.0, 2.0], ok))
    with pytest.raises(fx.DataError, match="denominators"):
        compare((ok, [1.0, 2.0]), (ok, ok), metric="ratio")
    with pytest.raises(fx.ParameterError, match="alpha"):
        compare(ok, ok, alpha=1.5)
    with pytest.raises(fx.ParameterError, match="metric"):
        compare(ok, ok, metric="median")
    with pytest.raises(fx.ParameterError, match="method"):
        compare(ok, ok, method="frequentist")
    with pytest.raises(fx.DataError, match="weights"):
        fx.experiment.srm([10, 20], [1.0])
    with pytest.raises(fx.ParameterError, match="exactly one"):
        fx.experiment.power(effect_size=0.2, nobs1=100, power=0.8)
    assert issubclass(fx.ParameterError, ValueError)


def _events(rng, n):
    arms = rng.choice(np.array(["control", "t1", "t2"]), size=n, p=[0.4, 0.3, 0.3])
    pre = rng.gamma(2.0, 5.0, n)
    lift = np.where(arms == "t2", 0.3, 0.0)
    return {
        "arm": arms,
        "pre": pre,
        "revenue": 0.7 * pre + rng.normal(0, 5, n) + lift,
        "converted": rng.random(n) < np.where(arms == "t1", 0.12, 0.10),
    }


def test_analyze_equals_per_arm_compare_and_holm(rng, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    ev = _events(rng, 30_000)
    path = tmp_path / "events.parquet"
    pq.write_table(pa.table(ev), path)
    res = fx.experiment.analyze(path, metrics=["revenue", "converted"], covariates={"revenue": "pre"}, weights=[0.4, 0.3, 0.3])
    assert res.arms == ["control", "t1", "t2"] and res.control == "control"
    pvals = []
    for row in res.rows:
        mc, mt = ev["arm"] == "control", ev["arm"] == row["arm"]
        y = ev[row["metric"]].astype(float)
        if row["metric"] == "revenue":
            ref = compare(y[mc], y[mt], covariate=(ev["pre"][mc], ev["pre"][mt]))
        else:
            ref = compare(y[mc], y[mt], metric="proportion")
        assert close(row["effect"], ref.effect, 1e-10) and close(row["pvalue"], ref.pvalue, 1e-8)
        pvals.append(ref.pvalue)
    holm = multipletests(pvals, method="holm")[1]
    for row, q in zip(res.rows, holm):
        assert close(row["pvalue_adjusted"], q, 1e-8)
    counts = [float((ev["arm"] == a).sum()) for a in res.arms]
    ref = stats.chisquare(counts, np.sum(counts) * np.array([0.4, 0.3, 0.3]))
    assert close(res.srm.pvalue, ref.pvalue)
    # pandas in, same numbers; report outputs
    import pandas as pd

    res2 = fx.experiment.analyze(pd.DataFrame(ev), metrics=["revenue", "converted"], covariates={"revenue": "pre"})
    assert [r["effect"] for r in res2.rows] == [r["effect"] for r in res.rows]
    df = res.to_pandas()
    assert list(df["metric"]) == ["revenue", "revenue", "converted", "converted"]
    html = res.to_html(tmp_path / "report.html")
    assert (tmp_path / "report.html").read_text() == html and "<svg" in html and "http" not in html.replace("http://www.w3.org/2000/svg", "")
    with pytest.raises(fx.DataError, match="nope"):
        fx.experiment.analyze(path, metrics=["nope"])
    with pytest.raises(fx.ParameterError, match="control"):
        fx.experiment.analyze(path, metrics=["revenue"], control="zzz")


def test_compare_report_outputs(tmp_path, rng):
    r = compare(rng.normal(size=100), rng.normal(size=120), method="sequential")
    d = r.to_dict()
    assert d["method"] == "sequential" and d["n_treatment"] == 120
    assert r.to_pandas().loc[0, "effect"] == r.effect
    assert "<svg" in r.to_html(tmp_path / "r.html")
