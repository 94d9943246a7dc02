"""ReferenceProfile and DriftReport: inputs of every kind, scipy parity per column, merge, artifact,
bad input reported (never a silent pass), the HTML page."""

import pickle

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from scipy import stats

import ferrox as fx
from ferrox import DataError, ModelIntegrityError, ParameterError
from ferrox.drift import DriftMonitor, ReferenceProfile


def frames(rng, n_ref=3000, n_cur=2000):
    def make(n, shift):
        return pd.DataFrame(
            {
                "x": rng.normal(shift, size=n),
                "t": rng.standard_t(3, size=n),
                "i": rng.integers(0, 20, size=n),
                "m": np.where(rng.random(n) < 0.2 + shift / 4, np.nan, rng.exponential(size=n)),
                "c": pd.Categorical(rng.choice(["a", "b", "c", "d"], size=n, p=[0.4, 0.3, 0.2, 0.1])),
                "s": rng.choice(["u", "v"], size=n),
            }
        )

    ref, cur = make(n_ref, 0.0), make(n_cur, 0.4)
    cur.loc[:9, "s"] = "new"
    return ref, cur


def test_columns_match_scipy_tests(rng):
    ref, cur = frames(rng)
    report = ReferenceProfile.fit(ref).compare(cur)
    by = {c["column"]: c for c in report.columns}
    for col in ("x", "t", "i", "m"):
        r, c = ref[col].dropna().to_numpy(float), cur[col].dropna().to_numpy(float)
        want = stats.ks_2samp(r, c)
        assert by[col]["test"] == "ks" and by[col]["kind"] == "numeric"
        assert by[col]["statistic"] == pytest.approx(want.statistic, rel=1e-12)
        assert by[col]["pvalue"] == pytest.approx(want.pvalue, rel=1e-6, abs=1e-300)
        assert by[col]["n_reference"] == len(r) and by[col]["n_current"] == len(c)
    # categorical: chi-square on the 2 x K table (unseen category included)
    for col in ("c", "s"):
        keys = sorted(set(ref[col].astype(str)) | set(cur[col].astype(str)))
        table = np.array([[np.sum(ref[col].astype(str) == k) for k in keys], [np.sum(cur[col].astype(str) == k) for k in keys]])
        want = stats.chi2_contingency(table)
        assert by[col]["test"] == "chi2" and by[col]["kind"] == "categorical"
        assert by[col]["statistic"] == pytest.approx(want.statistic, rel=1e-10)
        assert by[col]["pvalue"] == pytest.approx(want.pvalue, rel=1e-6, abs=1e-300)
    assert by["s"]["unseen_categories"] == ["new"] and by["s"]["n_unseen"] == 10
    assert by["m"]["null_share_change"] == pytest.approx(cur["m"].isna().mean() - ref["m"].isna().mean())
    # corrected p-values are BH over the family
    ps = np.array([c["pvalue"] for c in report.columns])
    np.testing.assert_allclose([c["pvalue_corrected"] for c in report.columns], stats.false_discovery_control(ps), rtol=1e-12)
    # the rule: significant after correction and a practical effect (PSI >= 0.1), at any size
    assert all(c["drift"] == (c["pvalue_corrected"] < 0.05 and c["effect_size"] >= 0.1) for c in report.columns)
    assert by["x"]["drift"]  # shifted by 0.4 sd on thousands of rows


def test_same_answer_from_pandas_polars_arrow_numpy(rng):
    ref, cur = frames(rng)
    base = ReferenceProfile.fit(ref).compare(cur).to_pandas()
    for conv in (pl.from_pandas, lambda d: pa.Table.from_pandas(d, preserve_index=False)):
        other = ReferenceProfile.fit(conv(ref)).compare(conv(cur)).to_pandas()
        pd.testing.assert_frame_equal(base.drop(columns=["unseen_categories"]), other.drop(columns=["unseen_categories"]))
    num = ["x", "t", "m"]
    a = ReferenceProfile.fit(ref[num].to_numpy()).compare(cur[num].to_numpy())
    np.testing.assert_allclose([c["pvalue"] for c in a.columns], base.set_index("column").loc[num, "pvalue"], rtol=1e-12)


def test_overrides_and_options(rng):
    ref, cur = frames(rng, 400, 300)
    rep = ReferenceProfile.fit(ref).compare(
        cur, tests={"x": "cvm", "t": "mannwhitneyu", "i": "anderson", "m": "wasserstein", "c": "jensenshannon", "s": "psi"}
    )
    by = {c["column"]: c for c in rep.columns}
    r, c = ref["x"].to_numpy(), cur["x"].to_numpy()
    assert by["x"]["pvalue"] == pytest.approx(stats.cramervonmises_2samp(r, c).pvalue, rel=1e-6, abs=1e-12)
    assert by["t"]["pvalue"] == pytest.approx(stats.mannwhitneyu(ref["t"], cur["t"]).pvalue, rel=1e-6)
    assert by["i"]["statistic"] == pytest.approx(stats.anderson_ksamp([ref["i"], cur["i"]], variant="midrank").statistic, rel=1e-9)
    rm, cm = ref["m"].dropna().to_numpy(), cur["m"].dropna().to_numpy()
    assert by["m"]["statistic"] == pytest.approx(stats.wasserstein_distance(rm, cm) / rm.std(), rel=1e-9)
    assert np.isnan(by["m"]["pvalue"]) and by["s"]["statistic"] == by["s"]["effect_size"]
    with pytest.raises(ParameterError, match="unknown test 'fast'"):
        ReferenceProfile.fit(ref).compare(cur, tests={"x": "fast"})
    with pytest.raises(ParameterError, match="'c' is categorical"):
        ReferenceProfile.fit(ref).compare(cur, tests={"c": "ks"})
    with pytest.raises(ParameterError, match="'zz'"):
        ReferenceProfile.fit(ref).compare(cur, tests={"zz": "ks"})
    with pytest.raises(ParameterError, match="correction"):
        ReferenceProfile.fit(ref).compare(cur, correction="sidak")
    holm = ReferenceProfile.fit(ref).compare(cur, correction="holm")
    ps = np.array([c["pvalue"] for c in holm.columns])
    order = np.argsort(ps)
    want = np.empty_like(ps)
    want[order] = np.minimum(1, np.maximum.accumulate(ps[order] * (len(ps) - np.arange(len(ps)))))
    np.testing.assert_allclose([c["pvalue_corrected"] for c in holm.columns], want, rtol=1e-12)


def test_merged_halves_flag_the_same_columns(rng):
    ref, cur = frames(rng, 6000, 3000)
    whole = ReferenceProfile.fit(ref)
    merged = ReferenceProfile.fit(ref.iloc[:2500]).merge(ReferenceProfile.fit(ref.iloc[2500:]))
    a, b = whole.compare(cur), merged.compare(cur)
    assert a.drifted_columns == b.drifted_columns
    # exact values merged: the numbers are the same
    np.testing.assert_allclose([c["pvalue"] for c in a.columns], [c["pvalue"] for c in b.columns], rtol=1e-12)
    # beyond exact_limit the halves are sketched and merged; verdicts still agree, p-values closely
    sk_whole = ReferenceProfile.fit(ref, exact_limit=1000, sketch_k=256)
    sk_merged = ReferenceProfile.fit(ref.iloc[:2500], exact_limit=1000, sketch_k=256).merge(
        ReferenceProfile.fit(ref.iloc[2500:], exact_limit=1000, sketch_k=256)
    )
    sa, sb = sk_whole.compare(cur), sk_merged.compare(cur)
    # the same verdict as the exact profile wherever the exact p-value is not near alpha
    for exact, whole_sk, merged_sk in zip(a.columns, sa.columns, sb.columns):
        if not 0.002 < exact["pvalue_corrected"] < 0.5:
            assert exact["drift"] == whole_sk["drift"] == merged_sk["drift"], exact["column"]
    d = {c["name"]: c for c in sk_merged.describe()}
    assert not d["x"]["exact"] and 0 < d["x"]["rank_error_bound"] < 0.05 and d["c"]["kind"] == "categorical"
    with pytest.raises(ParameterError, match="exact reference values"):
        sk_whole.compare(cur, tests={"x": "cvm"})
    with pytest.raises(DataError, match="different columns"):
        whole.merge(ReferenceProfile.fit(ref[["x"]]))


def test_profile_merged_from_random_halves_flags_the_same_columns_as_the_whole(rng):
    """The bar: fitted on two halves (rows split at random) and merged, a profile flags exactly the
    columns a profile fitted on the whole flags, with the same numbers, in either merge order."""
    n_ref, n_cur = 30_000, 20_000

    def make(n, shifted):
        cols = {}
        for j in range(12):
            # shifts from none to clear, so some columns drift and some do not
            s = (0.0, 0.0, 0.01, 0.03, 0.08, 0.2)[j % 6] if shifted else 0.0
            kind = j % 3
            v = rng.normal(s, 1.0, n) if kind == 0 else rng.standard_t(4, n) + s if kind == 1 else rng.poisson(4 + 10 * s, n)
            cols[f"num_{j}"] = v.astype(float)
        for j in range(3):
            p = np.array([5.0, 3.0, 2.0, 1.0])
            if shifted and j:
                p[0] += 0.5 * j
            cols[f"cat_{j}"] = pd.Categorical(rng.choice(list("wxyz"), n, p=p / p.sum()))
        df = pd.DataFrame(cols)
        df.loc[rng.random(n) < 0.05, "num_1"] = np.nan
        return df

    ref, cur = make(n_ref, False), make(n_cur, True)
    order = rng.permutation(n_ref)
    first, second = ref.iloc[order[: n_ref // 2]], ref.iloc[order[n_ref // 2 :]]
    whole = ReferenceProfile.fit(ref).compare(cur)
    assert 0 < len(whole.drifted_columns) < ref.shape[1], whole.drifted_columns
    for a, b in [(first, second), (second, first)]:
        merged = ReferenceProfile.fit(a).merge(ReferenceProfile.fit(b)).compare(cur)
        assert merged.drifted_columns == whole.drifted_columns
        for key in ("statistic", "pvalue", "pvalue_corrected", "effect_size", "null_share_reference"):
            np.testing.assert_array_equal([c[key] for c in merged.columns], [c[key] for c in whole.columns], err_msg=key)
    # numpy input, the same rows split in four: still the same verdicts
    num = ref.filter(like="num_").to_numpy()
    parts = [ReferenceProfile.fit(num[order[k::4]]) for k in range(4)]
    merged = parts[0].merge(parts[1]).merge(parts[2].merge(parts[3]))
    cur_num = cur.filter(like="num_").to_numpy()
    assert merged.compare(cur_num).drifted_columns == ReferenceProfile.fit(num).compare(cur_num).drifted_columns


def test_sketch_ks_close_to_exact(rng):
    ref = pd.DataFrame({"x": rng.normal(size=60_000)})
    cur = pd.DataFrame({"x": rng.normal(0.03, size=20_000)})
    exact = ReferenceProfile.fit(ref).compare(cur).columns[0]
    sk = ReferenceProfile.fit(ref, exact_limit=10_000, sketch_k=2048)
    col = sk.compare(cur).columns[0]
    assert 0 < col["reference_rank_error"] < 0.01
    assert abs(col["statistic"] - exact["statistic"]) <= col["reference_rank_error"]


def test_artifact_round_trips(rng, tmp_path):
    ref, cur = frames(rng, 500, 400)
    prof = ReferenceProfile.fit(ref)
    want = prof.compare(cur).to_dict()
    path = tmp_path / "ref.frx"
    assert prof.save(path) is prof
    for again in (ReferenceProfile.load(path), ReferenceProfile.from_bytes(prof.to_bytes()), pickle.loads(pickle.dumps(prof))):
        got = again.compare(cur).to_dict()
        assert [c["pvalue"] for c in got["columns"]] == [c["pvalue"] for c in want["columns"]]
    assert fx.artifact_info(path)["kind"] == "reference_profile"
    blob = bytearray(prof.to_bytes())
    blob[-5] ^= 1
    with pytest.raises(ModelIntegrityError):
        ReferenceProfile.from_bytes(bytes(blob))
    with pytest.raises(DataError, match="holds a 'dataset', not a 'reference_profile'"):
        ReferenceProfile.from_bytes(fx.Dataset(np.eye(3)).to_bytes())


def test_bad_input_is_a_finding_or_an_error(rng):
    ref, cur = frames(rng, 500, 400)
    prof = ReferenceProfile.fit(ref)
    bad = cur.drop(columns=["t"]).assign(x=np.nan, i=cur["i"].astype(str), extra=1.0)
    bad.loc[0, "m"] = np.inf
    rep = prof.compare(bad)
    by = {c["column"]: c for c in rep.columns}
    assert by["t"]["status"] == "missing_column" and by["t"]["drift"]
    assert by["x"]["status"] == "no_current_values" and by["x"]["drift"]
    assert by["i"]["status"] == "kind_mismatch" and by["i"]["drift"]
    assert by["m"]["status"] == "ok" and by["m"]["n_inf_current"] == 1  # infinite values are counted, kept
    assert by["m"]["n_inf_reference"] == 0
    assert rep.extra_columns == ["extra"]
    allnan = ReferenceProfile.fit(ref.assign(x=np.nan)).compare(cur)
    assert {c["column"]: c for c in allnan.columns}["x"]["status"] == "no_reference_values"
    with pytest.raises(DataError, match="reference data"):
        ReferenceProfile.fit(pd.Series([1.0, 2.0]))
    with pytest.raises(DataError, match="no rows"):
        ReferenceProfile.fit(np.empty((0, 3)))
    with pytest.raises(ParameterError, match="alpha"):
        prof.compare(cur, alpha=1.5)


def test_report_outputs(rng, tmp_path):
    ref, cur = frames(rng, 800, 600)
    cur["name <b>&"] = 1.0
    rep = ReferenceProfile.fit(ref).compare(cur)
    df = rep.to_pandas()
    assert list(df["effect_size"]) == sorted(df["effect_size"], reverse=True)
    assert {"column", "test", "statistic", "pvalue", "pvalue_corrected", "effect_size", "drift"} <= set(df.columns)
    d = rep.to_dict()
    assert d["n_drifted"] == len(rep.drifted_columns) and d["share_drifted"] == pytest.approx(len(rep.drifted_columns) / 6)
    html = rep.to_html(tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text(encoding="utf-8") == html
    assert html.count("<svg") == 6 and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in html and "name &lt;b&gt;&amp;" in html
    # cards sorted by effect size: the most shifted column first
    top = df.iloc[0]["column"]
    assert html.index(f"<h2>{top} ") < min(html.index(f"<h2>{c} ") for c in df["column"] if c != top)
    assert "DriftReport" in repr(rep)


def test_results_do_not_depend_on_thread_count(rng):
    ref, cur = frames(rng, 3000, 2000)
    one = ReferenceProfile.fit(ref, num_threads=1)
    three = ReferenceProfile.fit(ref, num_threads=3)
    assert one.to_bytes() == three.to_bytes()
    assert one.compare(cur, num_threads=1)._handle.to_json() == three.compare(cur, num_threads=3)._handle.to_json()


def test_a_flag_needs_a_practical_effect_at_every_size_with_no_cliff(rng):
    # A shift of 0.05 sd is significant on 90k and on 110k rows but far below PSI 0.1: flagged at neither
    # size (the rule once changed at 100k rows); a shift of 0.5 sd is flagged at both.
    for n in (90_000, 110_000):
        ref = rng.normal(size=(n, 1))
        profile = ReferenceProfile.fit(ref)
        small = profile.compare(rng.normal(0.05, 1.0, size=(n, 1))).columns[0]
        assert small["pvalue_corrected"] < 0.05 and small["effect_size"] < 0.1 and not small["drift"], small
        big = profile.compare(rng.normal(0.5, 1.0, size=(n, 1))).columns[0]
        assert big["drift"], big
    # The old rule is still there for who asks: significance alone below large_sample rows.
    legacy = ReferenceProfile.fit(rng.normal(size=(20_000, 1))).compare(rng.normal(0.1, 1.0, size=(20_000, 1)), large_sample=100_000)
    assert legacy.columns[0]["drift"] and legacy.columns[0]["effect_size"] < 0.1


def test_stationary_traffic_raises_no_alert_over_200_windows(rng):
    # Stationary traffic, 200 windows of 2 000 rows over 5 columns: the false-alarm rate per window is
    # 0 here because a flag needs PSI >= 0.1, which sampling noise at this size (PSI around 0.005)
    # does not reach.
    profile = ReferenceProfile.fit(rng.normal(size=(50_000, 5)))
    mon = DriftMonitor(profile, window=2000, alert_after=1, drift_share=0.2)  # alert on any one column
    flagged = 0
    for _ in range(20):
        for f in mon.update(rng.normal(size=(20_000, 5))):
            flagged += len(f.drifted_columns)
    assert mon.windows_seen == 200 and mon.alerts == 0 and flagged == 0
    # A shift injected into one feature is alerted within 3 windows.
    shifted = rng.normal(size=(6000, 5))
    shifted[:, 2] += 0.6
    findings = mon.update(shifted)
    assert any(f.alert for f in findings[:3]), [f.drifted_columns for f in findings]
