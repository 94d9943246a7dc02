"""ferrox.drift's tests and distances against scipy 1.17 on fresh random samples of many shapes."""

import math
import pickle

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance as sdist

import ferrox as fx
from ferrox import DataError, ParameterError

RTOL = 1e-6


def close(a, b, rtol=RTOL, atol=0.0):
    a, b = float(a), float(b)
    if math.isnan(b):
        return math.isnan(a)
    return abs(a - b) <= atol + rtol * abs(b)


def shapes(rng):
    """Pairs of samples: small and large, unequal sizes, heavy ties, heavy tails, shifted."""
    yield rng.normal(size=7), rng.normal(size=5)
    yield rng.normal(size=30), rng.normal(0.5, size=30)
    yield rng.normal(size=200), rng.normal(0.2, 1.3, size=170)
    yield rng.integers(0, 5, size=300).astype(float), rng.integers(0, 6, size=250).astype(float)
    yield rng.standard_cauchy(size=400), rng.standard_cauchy(size=333) * 1.5
    yield rng.standard_t(2, size=1200), rng.standard_t(2, size=900) + 0.1
    yield rng.integers(0, 3, size=40).astype(float), rng.integers(0, 3, size=60).astype(float)
    yield rng.exponential(size=12_000), rng.exponential(1.02, size=15_000)
    yield rng.normal(size=25_000), rng.normal(size=25_000)
    yield rng.normal(size=150), rng.normal(0.05, size=20_000)


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_ks_2samp_matches_scipy(rng, alternative):
    for a, b in shapes(rng):
        methods = ["auto", "asymp"] + (["exact"] if max(len(a), len(b)) <= 2000 else [])
        for method in methods:
            ours = fx.drift.ks_2samp(a, b, alternative=alternative, method=method)
            ref = stats.ks_2samp(a, b, alternative=alternative, method=method)
            ctx = f"{len(a)}x{len(b)} {alternative} {method}"
            assert close(ours.statistic, ref.statistic, 1e-12), ctx
            assert close(ours.pvalue, ref.pvalue, atol=1e-300), (ctx, ours.pvalue, ref.pvalue)
            assert ours.statistic_sign == ref.statistic_sign, ctx
            assert ours.statistic_location == ref.statistic_location, ctx


def test_ks_2samp_equal_sizes_and_extreme_separation(rng):
    for n in (3, 10, 60, 500):
        a = rng.normal(size=n)
        for shift in (0.0, 0.5, 3.0, 50.0):
            b = rng.normal(shift, size=n)
            for alt in ("two-sided", "less", "greater"):
                ours, ref = fx.drift.ks_2samp(a, b, alt), stats.ks_2samp(a, b, alt)
                assert close(ours.statistic, ref.statistic, 1e-12) and close(ours.pvalue, ref.pvalue), (n, shift, alt)


def test_mannwhitneyu_matches_scipy(rng):
    cases = list(shapes(rng)) + [(rng.normal(size=4), rng.normal(size=8)), (rng.normal(size=8), rng.normal(1, size=3))]
    for a, b in cases:
        for alt in ("two-sided", "less", "greater"):
            for cont in (True, False):
                ours = fx.drift.mannwhitneyu(a, b, use_continuity=cont, alternative=alt)
                ref = stats.mannwhitneyu(a, b, use_continuity=cont, alternative=alt)
                ctx = f"{len(a)}x{len(b)} {alt} {cont}"
                assert close(ours.statistic, ref.statistic, 1e-12), ctx
                assert close(ours.pvalue, ref.pvalue, atol=1e-300), (ctx, ours.pvalue, ref.pvalue)
    # exact method forced on a mid-size sample without ties
    a, b = rng.normal(size=12), rng.normal(0.8, size=15)
    for alt in ("two-sided", "less", "greater"):
        ours = fx.drift.mannwhitneyu(a, b, alternative=alt, method="exact")
        ref = stats.mannwhitneyu(a, b, alternative=alt, method="exact")
        assert close(ours.pvalue, ref.pvalue), alt


def test_cramervonmises_2samp_matches_scipy(rng):
    cases = list(shapes(rng))[:7] + [(rng.normal(size=9), rng.normal(0.7, size=13)), (rng.normal(size=20), rng.normal(size=20))]
    for a, b in cases:
        ours = fx.drift.cramervonmises_2samp(a, b)
        ref = stats.cramervonmises_2samp(a, b)
        ctx = f"{len(a)}x{len(b)}"
        assert close(ours.statistic, ref.statistic, 1e-10), ctx
        # 1 - cdf suffers the same cancellation in both for tiny p-values: compare to 1e-6 + 1e-12 abs
        assert close(ours.pvalue, ref.pvalue, atol=1e-12), (ctx, ours.pvalue, ref.pvalue)
        if max(len(a), len(b)) <= 40:
            ours = fx.drift.cramervonmises_2samp(a, b, method="asymptotic")
            ref = stats.cramervonmises_2samp(a, b, method="asymptotic")
            assert close(ours.pvalue, ref.pvalue, atol=1e-12), ctx


def test_anderson_ksamp_matches_scipy(rng):
    cases = list(shapes(rng))[:8] + [(rng.normal(size=100), rng.normal(0.15, size=100))]
    for a, b in cases:
        for variant in ("midrank", "right"):
            ref = stats.anderson_ksamp([a, b], variant=variant)
            ours = fx.drift.anderson_ksamp([a, b], variant=variant)
            assert close(ours.statistic, ref.statistic, 1e-9), (len(a), variant)
            assert close(ours.pvalue, ref.pvalue, 1e-9), (len(a), variant, ours.pvalue, ref.pvalue)
    three = [rng.normal(size=50), rng.normal(size=60), rng.normal(0.3, size=70)]
    ref = stats.anderson_ksamp(three, variant="midrank")
    ours = fx.drift.anderson_ksamp(three)
    assert close(ours.statistic, ref.statistic, 1e-9) and close(ours.pvalue, ref.pvalue, 1e-9)


def test_chi2_contingency_matches_scipy(rng):
    for shape in [(2, 2), (2, 5), (3, 4), (6, 2)]:
        for scale in (5, 100, 10_000):
            table = rng.integers(1, scale, size=shape).astype(float)
            for correction in (True, False):
                ours = fx.drift.chi2_contingency(table, correction=correction)
                ref = stats.chi2_contingency(table, correction=correction)
                assert close(ours.statistic, ref.statistic, 1e-10)
                assert close(ours.pvalue, ref.pvalue, atol=1e-300), (shape, scale, ours.pvalue, ref.pvalue)
                assert ours.dof == ref.dof
                np.testing.assert_allclose(ours.expected_freq, ref.expected_freq, rtol=1e-12)
                stat, p, dof, expected = ours
                assert (stat, p, dof) == (ours.statistic, ours.pvalue, ours.dof)
    # a strong association gives a tiny p-value, still matched relatively
    table = np.array([[900.0, 100.0], [100.0, 900.0]])
    assert close(fx.drift.chi2_contingency(table).pvalue, stats.chi2_contingency(table).pvalue)


def test_distances_match_scipy(rng):
    for a, b in list(shapes(rng))[:8]:
        wa, wb = rng.random(len(a)), rng.random(len(b))
        assert close(fx.drift.wasserstein_distance(a, b), stats.wasserstein_distance(a, b), 1e-10)
        assert close(fx.drift.wasserstein_distance(a, b, wa, wb), stats.wasserstein_distance(a, b, wa, wb), 1e-10)
        assert close(fx.drift.energy_distance(a, b), stats.energy_distance(a, b), 1e-10)
        assert close(fx.drift.energy_distance(a, b, wa, wb), stats.energy_distance(a, b, wa, wb), 1e-10)
    for k in (2, 5, 40):
        p, q = rng.random(k), rng.random(k)
        q[0] = 0.0
        for base in (None, 2.0, 10.0):
            assert close(fx.drift.jensenshannon(p, q, base=base), sdist.jensenshannon(p, q, base=base), 1e-12)
        pn, qn = p / p.sum(), q / q.sum()
        expected = np.sqrt(0.5 * np.sum((np.sqrt(pn) - np.sqrt(qn)) ** 2))
        assert close(fx.drift.hellinger(p, q), expected, 1e-10)


def test_psi_definition(rng):
    ref, cur = rng.normal(size=5000), rng.normal(0.4, 1.2, size=3000)
    cur = np.concatenate([cur, [100.0, -100.0]])  # outside the reference range: overflow bins
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, 11)[1:-1]))
    e = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=len(edges) + 1) / len(ref)
    a = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=len(edges) + 1) / len(cur)
    expected = np.sum((a - e) * np.log(a / e))
    assert close(fx.drift.psi(ref, cur), expected, 1e-10)
    # an empty bin counts with share epsilon
    cur2 = np.full(100, 50.0)
    e2 = np.where(e > 0, e, 1e-4)
    a2 = np.where(np.arange(len(e)) == len(e) - 1, 1.0, 1e-4)
    assert close(fx.drift.psi(ref, cur2, epsilon=1e-4), np.sum((a2 - e2) * np.log(a2 / e2)), 1e-10)


def test_adjust_pvalues(rng):
    p = rng.random(50) ** 3
    np.testing.assert_allclose(fx.drift.adjust_pvalues(p), stats.false_discovery_control(p), rtol=1e-12)
    order = np.argsort(p)
    holm = np.minimum(1, np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p)))))
    expected = np.empty_like(p)
    expected[order] = holm
    np.testing.assert_allclose(fx.drift.adjust_pvalues(p, "holm"), expected, rtol=1e-12)
    np.testing.assert_allclose(fx.drift.adjust_pvalues(p, "bonferroni"), np.minimum(1, p * 50), rtol=1e-12)
    with_nan = np.array([0.01, np.nan, 0.02])
    out = fx.drift.adjust_pvalues(with_nan, "bonferroni")
    assert np.isnan(out[1]) and out[0] == 0.02
    with pytest.raises(ParameterError, match="correction"):
        fx.drift.adjust_pvalues(p, "fdr_by")


def test_bad_input_is_named():
    with pytest.raises(DataError, match="data1.*empty"):
        fx.drift.ks_2samp([], [1.0])
    with pytest.raises(DataError, match="'x'.*1 NaN"):
        fx.drift.mannwhitneyu([1.0, np.nan], [2.0, 3.0])
    r = fx.drift.mannwhitneyu([1.0, np.nan, 5.0], [2.0, 3.0], nan_policy="omit")
    assert close(r.pvalue, stats.mannwhitneyu([1.0, 5.0], [2.0, 3.0]).pvalue)
    with pytest.raises(ParameterError, match="alternative"):
        fx.drift.ks_2samp([1.0], [2.0], alternative="bigger")
    with pytest.raises(ParameterError, match="method"):
        fx.drift.ks_2samp([1.0], [2.0], method="fast")
    with pytest.raises(DataError, match="non-finite"):
        fx.drift.wasserstein_distance([1.0, np.inf], [2.0])
    with pytest.raises(DataError, match="zero element"):
        fx.drift.chi2_contingency([[0, 0], [1, 2]])
    with pytest.raises(DataError, match="more than one distinct"):
        fx.drift.anderson_ksamp([[1.0, 1.0], [1.0]])
    # infinite values are data, not dropped: KS sees them
    r = fx.drift.ks_2samp([1.0, 2.0, np.inf], [1.5, 2.5, 3.0])
    assert close(r.pvalue, stats.ks_2samp([1.0, 2.0, np.inf], [1.5, 2.5, 3.0]).pvalue)


def test_result_behaves_like_scipy_tuple():
    r = fx.drift.ks_2samp([1, 2, 3], [4, 5, 6])
    stat, p = r
    assert (stat, p) == (r[0], r[1]) and len(r) == 2
    assert "KstestResult(statistic=" in repr(r)
    assert pickle.loads(pickle.dumps(tuple(r))) == tuple(r)
