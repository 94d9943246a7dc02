"""The promotion gate: MetricThreshold as MLflow means it, metrics as scikit-learn computes them, verdicts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import ferrox as fx
from ferrox.exceptions import ParameterError
from ferrox.gate import Gate, MetricThreshold, Verdict, evaluate_metrics
from ferrox.pipeline import Pipeline


def passed(t: MetricThreshold, candidate, baseline=None, has_baseline=None):
    """(overall pass, {rule name: (passed, reason)})."""
    rules = t.check(candidate, baseline, has_baseline=has_baseline)
    return all(r["passed"] is not False for r in rules), {r["name"]: (r["passed"], r["reason"]) for r in rules}


# -- MetricThreshold, case by case ---------------------------------------------------------------

@pytest.mark.parametrize("kwargs, candidate, baseline, expected", [
    # threshold, greater is better: candidate >= threshold (the bound itself passes)
    ({"threshold": 0.7}, 0.7, None, {"threshold": (True, None)}),
    ({"threshold": 0.7}, 0.69, None, {"threshold": (False, "below_threshold")}),
    # threshold, lower is better: candidate <= threshold
    ({"threshold": 0.5, "greater_is_better": False}, 0.5, None, {"threshold": (True, None)}),
    ({"threshold": 0.5, "greater_is_better": False}, 0.51, None, {"threshold": (False, "below_threshold")}),
    # absolute change: candidate >= baseline + delta / candidate <= baseline - delta
    ({"min_absolute_change": 0.01}, 0.82, 0.8, {"min_absolute_change": (True, None)}),
    ({"min_absolute_change": 0.01}, 0.805, 0.8, {"min_absolute_change": (False, "insufficient_improvement")}),
    ({"min_absolute_change": 0.1, "greater_is_better": False}, 0.39, 0.5, {"min_absolute_change": (True, None)}),
    ({"min_absolute_change": 0.1, "greater_is_better": False}, 0.45, 0.5, {"min_absolute_change": (False, "insufficient_improvement")}),
    # relative change against |baseline|
    ({"min_relative_change": 0.05}, 0.85, 0.8, {"min_relative_change": (True, None)}),
    ({"min_relative_change": 0.05}, 0.83, 0.8, {"min_relative_change": (False, "insufficient_improvement")}),
    ({"min_relative_change": 0.1}, -0.44, -0.5, {"min_relative_change": (True, None)}),     # a negative R²
    ({"min_relative_change": 0.1}, -0.46, -0.5, {"min_relative_change": (False, "insufficient_improvement")}),
    ({"min_relative_change": 0.1, "greater_is_better": False}, 0.35, 0.4, {"min_relative_change": (True, None)}),
    ({"min_relative_change": 0.1, "greater_is_better": False}, 0.37, 0.4, {"min_relative_change": (False, "insufficient_improvement")}),
    # a zero baseline: strictly better by 1e-10, whatever min_relative_change says
    ({"min_relative_change": 0.5}, 1e-9, 0.0, {"min_relative_change": (True, None)}),
    ({"min_relative_change": 0.5}, 1e-11, 0.0, {"min_relative_change": (False, "insufficient_improvement")}),
    ({"min_relative_change": 0.5}, 0.0, 0.0, {"min_relative_change": (False, "insufficient_improvement")}),
    ({"min_relative_change": 0.5, "greater_is_better": False}, -1e-9, 0.0, {"min_relative_change": (True, None)}),
    ({"min_relative_change": 0.5, "greater_is_better": False}, 0.0, 0.0, {"min_relative_change": (False, "insufficient_improvement")}),
    # every rule at once, each judged on its own
    ({"threshold": 0.9, "min_absolute_change": 0.01, "min_relative_change": 0.5}, 0.85, 0.8,
     {"threshold": (False, "below_threshold"), "min_absolute_change": (True, None),
      "min_relative_change": (False, "insufficient_improvement")}),
])
def test_metric_threshold_rules(kwargs, candidate, baseline, expected):
    ok, rules = passed(MetricThreshold(**kwargs), candidate, baseline)
    assert rules == expected
    assert ok == all(p for p, _ in expected.values())


def test_missing_values_and_missing_champion():
    t = MetricThreshold(threshold=0.7, min_absolute_change=0.01, min_relative_change=0.02)
    # No champion at all: the change rules are skipped, the threshold still decides.
    ok, rules = passed(t, 0.75, None)
    assert ok and rules == {"threshold": (True, None), "min_absolute_change": (None, "no_champion"),
                            "min_relative_change": (None, "no_champion")}
    assert not passed(t, 0.65, None)[0]
    # A champion whose metric is missing: the change rules fail, as MLflow fails them.
    ok, rules = passed(t, 0.75, float("nan"), has_baseline=True)
    assert not ok and rules["min_absolute_change"] == (False, "missing_baseline")
    assert rules["min_relative_change"] == (False, "missing_baseline") and rules["threshold"] == (True, None)
    # A candidate without the metric fails every rule.
    ok, rules = passed(t, float("nan"), 0.7)
    assert not ok and {r for _, r in rules.values()} == {"missing_metric"}


def test_metric_threshold_agrees_with_mlflow_on_random_cases():
    validation = pytest.importorskip("mlflow.models.evaluation.validation")
    rng = np.random.default_rng()
    for _ in range(400):
        gib = bool(rng.integers(2))
        kw = {}
        if rng.random() < 0.6:
            kw["threshold"] = float(np.round(rng.normal(), 2))
        if rng.random() < 0.6:
            kw["min_absolute_change"] = float(np.round(rng.uniform(0.01, 0.5), 2))
        if rng.random() < 0.6 or not kw:
            kw["min_relative_change"] = float(np.round(rng.uniform(0, 1), 2))
        baseline = 0.0 if rng.random() < 0.15 else float(np.round(rng.normal(), 2))
        candidate = float(np.round(baseline + rng.normal(scale=0.5), 2)) if rng.random() < 0.8 else float(rng.choice([0.0, 1e-11, -1e-11]))
        ours, _ = passed(MetricThreshold(**kw, greater_is_better=gib), candidate, baseline)
        try:
            validation._validate({"m": validation.MetricThreshold(**kw, greater_is_better=gib)}, {"m": candidate}, {"m": baseline})
            theirs = True
        except validation.ModelValidationFailedException:
            theirs = False
        assert ours == theirs, (kw, gib, candidate, baseline)


@pytest.mark.parametrize("kwargs, name", [
    ({"threshold": "high"}, "threshold"),
    ({"threshold": float("nan")}, "threshold"),
    ({"min_absolute_change": 0.0}, "min_absolute_change"),
    ({"min_absolute_change": -0.1}, "min_absolute_change"),
    ({"min_relative_change": 1.5}, "min_relative_change"),
    ({"min_relative_change": -0.1}, "min_relative_change"),
    ({"threshold": 0.5, "greater_is_better": "yes"}, "greater_is_better"),
    ({}, "at least one"),
])
def test_bad_parameters_raise_parameter_error_naming_them(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        MetricThreshold(**kwargs)


def test_gate_refuses_a_rule_against_the_metric_direction_and_unknown_metrics():
    with pytest.raises(ParameterError, match="greater_is_better must be False"):
        Gate({"logloss": MetricThreshold(threshold=0.5)})
    with pytest.raises(ParameterError, match="unknown metric 'f1'"):
        Gate({"f1": MetricThreshold(threshold=0.5)})
    with pytest.raises(ParameterError, match="max_latency_ms"):
        Gate({"auc": MetricThreshold(threshold=0.5)}, max_latency_ms=0)
    assert MetricThreshold.from_dict({"min_relative_change": 0.1}, metric="rmse").greater_is_better is False
    with pytest.raises(ParameterError, match="unknown MetricThreshold field"):
        MetricThreshold.from_dict({"treshold": 0.1}, metric="auc")


# -- metrics against scikit-learn -----------------------------------------------------------------

def test_auc_counts_ties_exactly(rng):
    from sklearn.metrics import roc_auc_score

    from ferrox.gate import _auc

    for _ in range(20):
        n = int(rng.integers(5, 3000))
        y = rng.integers(0, 2, n)
        if y.min() == y.max():
            continue
        scores = rng.integers(0, int(rng.integers(2, 20)), n).astype(np.float64)   # many ties
        assert _auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert math.isnan(_auc(np.ones(10, dtype=int), rng.random(10)))


def test_binary_metrics_match_sklearn(rng, tmp_path):
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    X = rng.normal(size=(3000, 4))
    y = (X[:, 0] - X[:, 1] + rng.normal(size=3000) > 0).astype(np.float64)
    # Two rounds of four-leaf trees: at most 16 distinct scores, so plenty of ties for the AUC.
    booster = fx.train({"objective": "binary", "num_leaves": 4, "verbosity": -1}, fx.Dataset(X[:2000], label=y[:2000]), 2)
    Xh, yh = X[2000:], y[2000:]
    p = booster.predict(Xh)
    assert len(np.unique(p)) < len(p) / 10
    m = evaluate_metrics(booster, Xh, yh)
    assert list(m) == ["auc", "logloss", "accuracy"]
    assert m["auc"] == pytest.approx(roc_auc_score(yh, p), abs=1e-12)
    assert m["logloss"] == pytest.approx(log_loss(yh, p), rel=1e-12)
    assert m["accuracy"] == pytest.approx(accuracy_score(yh, p > 0.5))
    # The artifact on disk (loaded, SHA-256 verified) and the in-memory model agree.
    booster.save_model(tmp_path / "b.frx")
    assert evaluate_metrics(str(tmp_path / "b.frx"), Xh, yh) == pytest.approx(m, rel=1e-12)
    assert evaluate_metrics(booster, Xh, yh, metrics=["auc"]).keys() == {"auc"}
    with pytest.raises(ParameterError, match="'rmse' is not available for a binary model"):
        evaluate_metrics(booster, Xh, yh, metrics=["rmse"])


def test_multiclass_and_regression_metrics_match_sklearn(rng):
    from sklearn.metrics import accuracy_score, log_loss, mean_absolute_error, mean_squared_error, r2_score

    n = 2400
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n),
                       "shop": pd.Categorical(rng.choice(["s1", "s2", "s3"], size=n))})
    labels = np.asarray(["low", "mid", "high"], dtype=object)[np.digitize(df["x"] + 0.5 * rng.normal(size=n), [-0.5, 0.5])]
    clf = Pipeline([("m", fx.GBDTClassifier(n_estimators=15, num_leaves=7, verbosity=-1))]).fit(df[:1600], labels[:1600])
    hold, yh = df[1600:], labels[1600:]
    m = evaluate_metrics(clf, hold, yh)
    assert list(m) == ["logloss", "accuracy"]
    assert m["logloss"] == pytest.approx(log_loss(yh, clf.predict_proba(hold), labels=clf.classes_), rel=1e-10)
    assert m["accuracy"] == pytest.approx(accuracy_score(yh, clf.predict(hold)))
    with pytest.raises(fx.DataError, match="'huge'"):
        evaluate_metrics(clf, hold[:3], np.asarray(["low", "mid", "huge"], dtype=object))

    y = 2 * df["x"].to_numpy() - df["z"].to_numpy() + rng.normal(size=n)
    reg = Pipeline([("m", fx.GBDTRegressor(n_estimators=30, verbosity=-1))]).fit(df[:1600], y[:1600])
    pred = reg.predict(hold)
    m = evaluate_metrics(reg, hold, y[1600:])
    assert list(m) == ["rmse", "mae", "r2"]
    assert m["rmse"] == pytest.approx(math.sqrt(mean_squared_error(y[1600:], pred)), rel=1e-10)
    assert m["mae"] == pytest.approx(mean_absolute_error(y[1600:], pred), rel=1e-10)
    assert m["r2"] == pytest.approx(r2_score(y[1600:], pred), rel=1e-10)
    # A bare Booster inside a compiled pipeline: binary and regression are told apart by the outputs.
    yb = (y > 0).astype(float)
    bare = fx.train({"objective": "binary", "verbosity": -1}, fx.Dataset(df[["x", "z"]].to_numpy()[:1600], label=yb[:1600]), 10)
    loaded = Pipeline.from_bytes(bare.to_bytes())
    assert list(evaluate_metrics(loaded, df[["x", "z"]].to_numpy()[1600:], yb[1600:])) == ["auc", "logloss", "accuracy"]


# -- the gate ----------------------------------------------------------------------------------------

def _binary_data(rng, n=4000):
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + X[:, 1] - 0.5 * X[:, 2] + 0.7 * rng.normal(size=n) > 0).astype(np.float64)
    return X, y


def test_a_better_challenger_passes_and_a_worse_one_is_refused(rng, tmp_path):
    X, y = _binary_data(rng)
    train, hold = slice(0, 3000), slice(3000, None)

    def fit(rounds):
        return fx.train({"objective": "binary", "num_leaves": 7, "verbosity": -1}, fx.Dataset(X[train], label=y[train]), rounds)

    strong, weak = fit(60), fit(2)
    strong.save_model(tmp_path / "strong.frx")
    gate = Gate({"auc": MetricThreshold(threshold=0.8, min_absolute_change=0.005),
                 "logloss": MetricThreshold(min_relative_change=0.05, greater_is_better=False)})
    good = gate.evaluate(str(tmp_path / "strong.frx"), weak, X[hold], y[hold])
    assert good.passed and good.reasons == []
    names = [(c["name"], c["metric"]) for c in good.checks]
    assert names == [("loads", None), ("finite", None), ("threshold", "auc"), ("min_absolute_change", "auc"),
                     ("min_relative_change", "logloss")]
    assert good.metrics["challenger"]["auc"] > good.metrics["champion"]["auc"] + 0.005

    bad = gate.evaluate(weak, strong, X[hold], y[hold])
    assert not bad.passed
    assert set(bad.reasons) == {"insufficient_improvement"} | ({"below_threshold"} if bad.metrics["challenger"]["auc"] < 0.8 else set())
    failed = {(c["name"], c["metric"]) for c in bad.failed}
    assert {("min_absolute_change", "auc"), ("min_relative_change", "logloss")} <= failed
    # A first model: nothing to beat, only the absolute threshold decides.
    first = gate.evaluate(strong, None, X[hold], y[hold])
    assert first.passed
    assert {c["reason"] for c in first.checks if c["passed"] is None} == {"no_champion"}
    strict = Gate({"auc": MetricThreshold(threshold=0.999)}).evaluate(strong, None, X[hold], y[hold])
    assert strict.reasons == ["below_threshold"]
    with pytest.raises(ParameterError, match="'rmse' is not available"):
        Gate({"rmse": MetricThreshold(threshold=1.0, greater_is_better=False)}).evaluate(strong, None, X[hold], y[hold])


def test_a_slice_regression_is_caught(rng):
    n = 8000
    shop = np.where(rng.random(n) < 0.85, "a", "b").astype(object)
    df = pd.DataFrame({"x": rng.normal(size=n), "shop": pd.Categorical(shop, categories=["a", "b"])})
    y = 2 * df["x"].to_numpy() + 0.3 * rng.normal(size=n)
    train, hold = slice(0, 5000), slice(5000, None)
    champion = Pipeline([("m", fx.GBDTRegressor(n_estimators=6, verbosity=-1))]).fit(df[train], y[train])
    # The challenger learnt from corrupted labels for shop b: much better on a, worse on b.
    y_bad = y[train].copy()
    is_b = shop[train] == "b"
    y_bad[is_b] = rng.permutation(y_bad[is_b])
    challenger = Pipeline([("m", fx.GBDTRegressor(n_estimators=120, verbosity=-1))]).fit(df[train], y_bad)
    rules = {"rmse": MetricThreshold(min_relative_change=0.01, greater_is_better=False)}
    verdict = Gate(rules, slices=["shop"], min_slice_rows=200).evaluate(challenger, champion, df[hold], y[hold])
    assert not verdict.passed and verdict.reasons == ["slice_regression"]
    (failed,) = verdict.failed
    assert failed["slice"]["column"] == "shop" and failed["slice"]["value"] == "b" and failed["metric"] == "rmse"
    assert failed["candidate"] > failed["baseline"]
    overall = [c for c in verdict.checks if c["slice"] is None and c["metric"] == "rmse"]
    on_a = [c for c in verdict.checks if c["slice"] and c["slice"]["value"] == "a"]
    assert overall[0]["passed"] is True and on_a[0]["passed"] is True
    assert on_a[0]["slice"]["rows"] == int((shop[hold] == "a").sum())
    # Slices smaller than min_slice_rows are listed as skipped, never judged.
    few = Gate(rules, slices=["shop"], min_slice_rows=10_000).evaluate(challenger, champion, df[hold], y[hold])
    assert few.passed and sorted(c["slice"]["value"] for c in few.checks if c["reason"] == "small_slice") == ["a", "b"]
    # The slice column need not be a model input: the models read only their own columns.
    narrow = Pipeline([("m", fx.GBDTRegressor(n_estimators=30, verbosity=-1))]).fit(df[["x"]][train], y[train])
    v = Gate(rules, slices=["shop"]).evaluate(narrow, None, df[hold], y[hold])
    assert v.passed and {c["slice"]["value"] for c in v.checks if c["slice"]} == {"a", "b"}
    with pytest.raises(ParameterError, match="slice column 'city'"):
        Gate(rules, slices=["city"]).evaluate(narrow, None, df[hold], y[hold])


def test_infra_check_refuses_a_corrupted_artifact_a_slow_model_and_infinite_predictions(rng, tmp_path):
    X, y = _binary_data(rng, 2000)
    model = fx.train({"objective": "binary", "verbosity": -1}, fx.Dataset(X, label=y), 20)
    path = tmp_path / "model.frx"
    model.save_model(path)
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (tmp_path / "corrupt.frx").write_bytes(bytes(blob))
    gate = Gate({"auc": MetricThreshold(threshold=0.6)}, max_latency_ms=10_000)
    verdict = gate.evaluate(str(tmp_path / "corrupt.frx"), None, X, y)
    assert not verdict.passed and verdict.reasons == ["does_not_load"]
    assert verdict.checks[0]["name"] == "loads" and "SHA-256" in verdict.checks[0]["candidate"]
    assert gate.evaluate(str(tmp_path / "missing.frx"), None, X, y).reasons == ["does_not_load"]
    ok = gate.evaluate(str(path), None, X, y)
    assert ok.passed and [c for c in ok.checks if c["name"] == "latency"][0]["candidate"] > 0

    slow = Gate({"auc": MetricThreshold(threshold=0.6)}, max_latency_ms=1e-6, latency_rows=500).evaluate(str(path), None, X, y)
    assert slow.reasons == ["too_slow"]
    (lat,) = [c for c in slow.checks if c["name"] == "latency"]
    assert lat["candidate"] > 1e-6 and "500 rows" in lat["rule"]

    # A linear model overflows on extreme inputs: its predictions are not finite.
    Z = rng.normal(size=(500, 2))
    ridge = Pipeline([("r", fx.linear_model.Ridge(alpha=1e-6))]).fit(Z, 10 * Z[:, 0] + 10 * Z[:, 1])
    Z[:5] = 1e308
    t = Gate({"rmse": MetricThreshold(threshold=1e9, greater_is_better=False)}).evaluate(ridge, None, Z, np.zeros(500))
    assert "not_finite" in t.reasons
    assert [c for c in t.checks if c["name"] == "finite"][0]["candidate"] == 5


def test_verdict_json_round_trip_and_repr(rng, tmp_path):
    X, y = _binary_data(rng, 3000)
    a = fx.train({"objective": "binary", "verbosity": -1}, fx.Dataset(X[:2000], label=y[:2000]), 2)
    b = fx.train({"objective": "binary", "verbosity": -1}, fx.Dataset(X[:2000], label=y[:2000]), 40)
    # numpy input has no named columns to slice by
    with pytest.raises(ParameterError, match="slices need a DataFrame"):
        Gate({"auc": MetricThreshold(min_absolute_change=0.01)}, slices=["part"]).evaluate(a, b, X[2000:], y[2000:])
    plain = pd.DataFrame(X[2000:], columns=[f"Column_{i}" for i in range(4)])
    verdict = Gate({"auc": MetricThreshold(min_absolute_change=0.01)}).evaluate(a, b, plain, y[2000:])
    assert not verdict.passed
    text = verdict.to_json(tmp_path / "verdict.json")
    again = Verdict.from_json(tmp_path / "verdict.json")
    assert again.to_dict() == verdict.to_dict() and Verdict.from_json(text).checks == verdict.checks
    assert again.passed is False and again.reasons == ["insufficient_improvement"]
    r = repr(verdict)
    assert "REFUSED" in r and "insufficient_improvement" in r and "auc >= champion + 0.01" in r
    assert "PASSED" in repr(Gate({"auc": MetricThreshold(threshold=0.5)}).evaluate(b, None, plain, y[2000:]))
