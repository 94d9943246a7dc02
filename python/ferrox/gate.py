"""The promotion gate: does a challenger model deserve to replace the champion?

:class:`Gate` scores a challenger (and the serving champion) on the same holdout rows and returns a
:class:`Verdict`: every metric rule overall and on each slice of the data large enough to judge, plus an
infrastructure check on the challenger's artifact (it loads with its SHA-256 verified, its predictions are
finite, and it answers fast enough). The rules are :class:`MetricThreshold` objects with the meaning of
MLflow's ``mlflow.models.MetricThreshold``; :func:`evaluate_metrics` computes the metrics (vectorised
numpy; AUC with ties counted exactly). ``ferrox gate`` runs the same from the shell.

>>> import numpy as np, ferrox as fx
>>> from ferrox.gate import Gate, MetricThreshold
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(3000, 3)); y = (X[:, 0] + X[:, 1] + 0.5 * rng.normal(size=3000) > 0).astype(float)
>>> def fit(rounds):
...     return fx.train({"objective": "binary", "verbosity": -1}, fx.Dataset(X[:2000], label=y[:2000]), rounds)
>>> gate = Gate({"auc": MetricThreshold(threshold=0.7, min_absolute_change=0.01)})
>>> verdict = gate.evaluate(fit(50), fit(1), X[2000:], y[2000:])
>>> verdict.passed, verdict.reasons
(True, [])
>>> gate.evaluate(fit(1), fit(50), X[2000:], y[2000:]).reasons
['insufficient_improvement']
"""

from __future__ import annotations

import json
import math
import numbers
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .exceptions import DataError, FerroxError, ModelIntegrityError, ParameterError

__all__ = ["MetricThreshold", "Gate", "Verdict", "evaluate_metrics"]

#: Metrics by task, in the order they are reported.
METRICS = {
    "binary": ("auc", "logloss", "accuracy"),
    "multiclass": ("logloss", "accuracy"),
    "regression": ("rmse", "mae", "r2"),
}
#: Whether a larger value is better, for the metrics :func:`evaluate_metrics` knows.
GREATER_IS_BETTER = {"auc": True, "accuracy": True, "r2": True, "logloss": False, "rmse": False, "mae": False}

#: Reason codes a failed (or skipped) check carries.
REASONS = {
    "below_threshold": "the candidate's value is on the wrong side of `threshold`",
    "insufficient_improvement": "the candidate does not beat the champion by `min_absolute_change` / `min_relative_change`",
    "slice_regression": "on one slice of the data, the candidate does not beat the champion as the change rules ask",
    "missing_metric": "the candidate's metric could not be computed (e.g. AUC of a single class)",
    "missing_baseline": "the champion's metric could not be computed, so the change rule cannot pass",
    "not_finite": "the challenger predicts NaN or infinity for some rows",
    "too_slow": "the challenger's median time per call is above `max_latency_ms`",
    "does_not_load": "the challenger's artifact does not load (missing, corrupted or not a ferrox model)",
    "no_champion": "skipped: no champion to compare with",
    "undefined": "skipped: the metric is undefined on this slice (e.g. a single class)",
    "small_slice": "skipped: the slice has fewer than `min_slice_rows` rows",
}

_EPS = 1e-10  # the "strictly better" margin MLflow uses for a relative change against a zero baseline


def _number(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(f"MetricThreshold: {name} must be a number, got {value!r}")
    v = float(value)
    if math.isnan(v):
        raise ParameterError(f"MetricThreshold: {name} must be a number, got NaN")
    return v


class MetricThreshold:
    """The rules one metric must meet, with the meaning of MLflow's ``mlflow.models.MetricThreshold``.

    With ``greater_is_better=True`` (for ``greater_is_better=False`` read every ``>=`` as ``<=`` and every
    ``+`` as ``-``), ``candidate`` the challenger's value and ``baseline`` the champion's:

    - ``threshold``: ``candidate >= threshold``.
    - ``min_absolute_change`` (a positive number): ``candidate >= baseline + min_absolute_change``.
    - ``min_relative_change`` (a number in [0, 1]): ``(candidate - baseline) / |baseline| >=
      min_relative_change``, i.e. ``candidate >= baseline * (1 + min_relative_change)`` for a positive
      baseline; dividing by the magnitude keeps the direction right for a negative baseline (an R² below
      0). When the baseline is exactly 0 the relative change is undefined and the rule becomes "strictly
      better": ``candidate >= baseline + 1e-10``.

    Bounds are computed in float64 and compared inclusively, so a candidate exactly on the bound passes.
    A metric the candidate lacks (NaN) fails every rule (reason ``missing_metric``). When a champion is
    given but its metric is missing, the change rules fail (``missing_baseline``), as in MLflow. Without
    any champion (:meth:`Gate.evaluate` with ``champion=None``, a first model) the change rules are
    reported as skipped (``no_champion``) and only ``threshold`` decides; MLflow fails them in that case.
    At least one rule must be given; a bad value raises :class:`ferrox.ParameterError` naming it.

    >>> from ferrox.gate import MetricThreshold
    >>> t = MetricThreshold(threshold=0.5, min_relative_change=0.05, greater_is_better=False)   # a loss
    >>> [(r["name"], r["passed"]) for r in t.check(0.40, baseline=0.43)]
    [('threshold', True), ('min_relative_change', True)]
    >>> [(r["name"], r["passed"], r["reason"]) for r in t.check(0.42, baseline=0.43)][1]
    ('min_relative_change', False, 'insufficient_improvement')
    """

    __slots__ = ("threshold", "min_absolute_change", "min_relative_change", "greater_is_better")

    def __init__(
        self,
        threshold: float | None = None,
        min_absolute_change: float | None = None,
        min_relative_change: float | None = None,
        greater_is_better: bool = True,
    ) -> None:
        self.threshold = _number(threshold, "threshold")
        self.min_absolute_change = _number(min_absolute_change, "min_absolute_change")
        self.min_relative_change = _number(min_relative_change, "min_relative_change")
        if self.min_absolute_change is not None and not self.min_absolute_change > 0:
            raise ParameterError(f"MetricThreshold: min_absolute_change must be a positive number, got {min_absolute_change!r}")
        if self.min_relative_change is not None and not 0.0 <= self.min_relative_change <= 1.0:
            raise ParameterError(f"MetricThreshold: min_relative_change must be between 0 and 1, got {min_relative_change!r}")
        if not isinstance(greater_is_better, (bool, np.bool_)):
            raise ParameterError(f"MetricThreshold: greater_is_better must be True or False, got {greater_is_better!r}")
        self.greater_is_better = bool(greater_is_better)
        if self.threshold is None and self.min_absolute_change is None and self.min_relative_change is None:
            raise ParameterError("MetricThreshold: give at least one of threshold, min_absolute_change, min_relative_change")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], metric: str | None = None) -> MetricThreshold:
        """A threshold from a mapping of its fields (what ``gate.json`` holds per metric). When
        ``greater_is_better`` is absent and ``metric`` is one :func:`evaluate_metrics` knows, its direction
        is used (lower is better for logloss, rmse and mae).

        >>> MetricThreshold.from_dict({"threshold": 0.7}, metric="logloss").greater_is_better
        False
        """
        if not isinstance(data, Mapping):
            raise ParameterError(f"the rules of metric {metric!r} must be an object of MetricThreshold fields, got {data!r}")
        unknown = sorted(set(data) - set(cls.__slots__))
        if unknown:
            raise ParameterError(f"unknown MetricThreshold field(s) {unknown} for metric {metric!r}; "
                                 f"expected some of {list(cls.__slots__)}")
        fields = dict(data)
        if "greater_is_better" not in fields and metric in GREATER_IS_BETTER:
            fields["greater_is_better"] = GREATER_IS_BETTER[metric]
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (read back with :meth:`from_dict`)."""
        return {k: getattr(self, k) for k in self.__slots__}

    def check(self, candidate: float | None, baseline: float | None = None, *, has_baseline: bool | None = None,
              metric: str = "metric") -> list[dict[str, Any]]:
        """Applies each rule; one dict per rule: name ("threshold", "min_absolute_change",
        "min_relative_change"), rule (readable), bound, passed (True, False, or None when skipped) and
        reason (None when passed, else a code of :data:`REASONS`). ``has_baseline`` says whether there is a
        champion at all (default: whether ``baseline`` is not None); without one the change rules are
        skipped, with one whose metric is missing (None or NaN) they fail.

        >>> from ferrox.gate import MetricThreshold
        >>> MetricThreshold(min_absolute_change=0.01).check(0.80, baseline=None)[0]["reason"]
        'no_champion'
        """
        if has_baseline is None:
            has_baseline = baseline is not None
        ge = self.greater_is_better
        op, sign = (">=", 1.0) if ge else ("<=", -1.0)

        def ok(value: float, bound: float) -> bool:
            return value >= bound if ge else value <= bound

        cand = None if candidate is None or math.isnan(float(candidate)) else float(candidate)
        base = None if baseline is None or math.isnan(float(baseline)) else float(baseline)
        out: list[dict[str, Any]] = []
        if self.threshold is not None:
            r = {"name": "threshold", "rule": f"{metric} {op} {self.threshold:g}", "bound": self.threshold}
            if cand is None:
                r.update(passed=False, reason="missing_metric")
            else:
                passed = ok(cand, self.threshold)
                r.update(passed=passed, reason=None if passed else "below_threshold")
            out.append(r)
        for name, value in (("min_absolute_change", self.min_absolute_change), ("min_relative_change", self.min_relative_change)):
            if value is None:
                continue
            if name == "min_absolute_change":
                text = f"{metric} {op} champion {'+' if ge else '-'} {value:g}"
            else:
                text = f"{metric} {op} champion {'+' if ge else '-'} {value:g} x |champion|"
            r = {"name": name, "rule": text, "bound": None}
            if cand is None:
                r.update(passed=False, reason="missing_metric")
            elif not has_baseline:
                r.update(passed=None, reason="no_champion")
            elif base is None:
                r.update(passed=False, reason="missing_baseline")
            elif name == "min_absolute_change":
                bound = base + sign * value
                passed = ok(cand, bound)
                r.update(bound=bound, passed=passed, reason=None if passed else "insufficient_improvement")
            elif base == 0.0:
                bound = base + sign * _EPS
                passed = ok(cand, bound)
                r.update(bound=bound, passed=passed, reason=None if passed else "insufficient_improvement")
            else:
                change = sign * (cand - base) / abs(base)
                passed = change >= value
                r.update(bound=base + sign * value * abs(base), passed=passed,
                         reason=None if passed else "insufficient_improvement")
            out.append(r)
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MetricThreshold) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        parts = [f"{k}={getattr(self, k)!r}" for k in self.__slots__[:3] if getattr(self, k) is not None]
        return f"MetricThreshold({', '.join(parts)}, greater_is_better={self.greater_is_better})"


# -- metrics ------------------------------------------------------------------------------------------

def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney rank formula, average ranks for ties (exact)."""
    pos = y == 1
    n_pos = int(pos.sum())
    n_neg = int(y.shape[0]) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts, dtype=np.float64)
    mid = ends - (counts - 1) / 2.0  # the average 1-based rank of each distinct value
    rank_sum = float(mid[inverse.reshape(-1)][pos].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _metric_values(task: str, y: np.ndarray, scores: np.ndarray, metrics: Sequence[str]) -> dict[str, float]:
    """The metrics from labels (class codes for classification) and scores (P(class 1) for binary,
    (rows, classes) probabilities for multiclass, values for regression)."""
    out: dict[str, float] = {}
    n = int(y.shape[0])
    if n == 0:
        return {m: math.nan for m in metrics}
    eps = np.finfo(np.float64).eps
    for m in metrics:
        if task == "binary":
            if m == "auc":
                v = _auc(y, scores)
            elif m == "logloss":
                p = np.clip(scores, eps, 1 - eps)
                v = float(-np.mean(np.where(y == 1, np.log(p), np.log1p(-p))))
            else:  # accuracy
                v = float(np.mean((scores > 0.5) == (y == 1)))
        elif task == "multiclass":
            if m == "logloss":
                p = np.clip(scores[np.arange(n), y], eps, 1 - eps)
                v = float(-np.mean(np.log(p)))
            else:
                v = float(np.mean(np.argmax(scores, axis=1) == y))
        else:
            err = scores - y
            if m == "rmse":
                v = float(np.sqrt(np.mean(err * err)))
            elif m == "mae":
                v = float(np.mean(np.abs(err)))
            else:  # r2, finite as scikit-learn's default makes it
                ss_res = float(np.sum(err * err))
                ss_tot = float(np.sum((y - y.mean()) ** 2))
                v = (1.0 - ss_res / ss_tot) if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
        out[m] = v
    return out


def _load(model: Any) -> Any:
    """A path → the verified artifact as a Pipeline; other models as they are."""
    if isinstance(model, (str, os.PathLike)):
        from .pipeline import Pipeline

        return Pipeline.load(model)
    return model


def _reload(model: Any) -> Any:
    """The model as its artifact: loaded from a path, or written to bytes and read back (verified)."""
    from .pipeline import Pipeline

    if isinstance(model, (str, os.PathLike)):
        return Pipeline.load(model)
    to_bytes = getattr(model, "to_bytes", None)
    from_bytes = getattr(type(model), "from_bytes", None)
    if to_bytes is None or from_bytes is None:
        raise ParameterError(f"the challenger must be a .frx path or a ferrox model, got {type(model).__name__}")
    return from_bytes(to_bytes())


def _model_frame(model: Any, X: Any) -> Any:
    """The columns the model reads, when ``X`` is a frame holding more (slice or label columns)."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return X
    mod = type(X).__module__.split(".", 1)[0]
    if mod == "pyarrow":
        have = list(X.column_names)
    elif mod in ("pandas", "polars"):
        have = [str(c) for c in X.columns]
    else:
        return X
    names = [str(n) for n in names]
    if len(have) > len(names) and set(names) <= set(have):
        return X.select(names) if mod != "pandas" else X[names]
    return X


def _objective_task(objective: str | None) -> str | None:
    if objective is None:
        return None
    o = objective.lower().replace("_", "")
    if o in ("binary", "crossentropy", "xentropy", "binary:logistic"):
        return "binary"
    if o.startswith("multiclass") or o in ("softmax", "multi:softprob", "multi:softmax", "ova", "multiclassova"):
        return "multiclass"
    return "regression"


def _task_and_scores(model: Any, X: Any, task: str | None) -> tuple[str, np.ndarray | None, np.ndarray]:
    """(task, class labels or None, scores): P(class 1) for binary, (rows, classes) probabilities for
    multiclass, values for regression."""
    X = _model_frame(model, X)
    classes = getattr(model, "classes_", None)
    if classes is not None:
        classes = np.asarray(classes)
        inferred = "binary" if len(classes) == 2 else "multiclass"
        if task not in (None, inferred):
            raise ParameterError(f"task={task!r}, but the model is a classifier of {len(classes)} classes")
        p = np.asarray(model.predict_proba(X), dtype=np.float64)
        return inferred, classes, (p[:, 1] if inferred == "binary" else p)
    booster = getattr(model, "booster_", None)
    if booster is None and hasattr(model, "_model") and hasattr(model, "feature_name"):
        booster = model  # a ferrox Booster
    if booster is not None:
        task = task or _objective_task(str(booster._model.objective()))
        out = np.asarray(model.predict(X), dtype=np.float64)
    else:
        out = np.asarray(model.predict(X), dtype=np.float64)
        if task is None:
            # A compiled pipeline around a bare Booster does not name its objective: a probability model
            # predicts (rows, classes), or a value in [0, 1] that is not its raw score.
            if out.ndim == 2 and out.shape[1] > 1:
                task = "multiclass"
            elif hasattr(model, "decision_function"):
                raw = np.asarray(model.decision_function(X), dtype=np.float64).reshape(out.shape[0], -1)[:, 0]
                flat = out.reshape(out.shape[0], -1)[:, 0]
                probs = bool(np.all((flat >= 0) & (flat <= 1)))
                task = "binary" if probs and not np.allclose(flat, raw) else "regression"
            else:
                task = "regression"
    if task not in METRICS:
        raise ParameterError(f"task must be one of {list(METRICS)}, got {task!r}")
    if task == "multiclass" and out.ndim != 2:
        raise DataError("the model predicts one value per row; a multiclass model predicts one per class")
    if task != "multiclass" and out.ndim == 2:
        out = out[:, -1] if task == "binary" and out.shape[1] == 2 else out.reshape(out.shape[0], -1)[:, 0]
    return task, None, out


def _codes(y: Any, task: str, classes: np.ndarray | None, n_classes: int | None) -> np.ndarray:
    """Labels as class codes 0..k-1 (classification) or float64 values (regression)."""
    if hasattr(y, "to_numpy"):
        y = y.to_numpy()
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(f"y must be one column of labels, got shape {arr.shape}")
    if task == "regression":
        try:
            out = arr.astype(np.float64)
        except (TypeError, ValueError) as e:
            raise DataError(f"y must be numeric for a regression model: {e}") from e
        if not np.isfinite(out).all():
            raise DataError(f"y holds {int((~np.isfinite(out)).sum())} missing or infinite values")
        return out
    if classes is not None:
        order = np.argsort(classes, kind="stable")
        sorted_classes = classes[order]
        try:
            pos = np.searchsorted(sorted_classes, arr)
        except TypeError as e:
            raise DataError(f"y's labels are not of the model's class type ({classes.dtype}): {e}") from e
        pos = np.clip(pos, 0, len(classes) - 1)
        hit = sorted_classes[pos] == arr
        if not np.all(hit):
            bad = arr[~np.asarray(hit, dtype=bool)][0]
            raise DataError(f"y holds label {bad!r}, which is not among the model's classes {classes.tolist()}")
        return order[pos].astype(np.int64)
    try:
        f = arr.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(f"y must hold class codes 0..k-1 for this model: {e}") from e
    k = 2 if task == "binary" else int(n_classes or 0)
    if not np.all((f == np.round(f)) & (f >= 0) & (f < max(k, 1))):
        raise DataError(f"y must hold class codes 0..{k - 1} for this {task} model")
    return f.astype(np.int64)


class _Scored:
    """A model's task, label codes and scores on some rows (computed once, sliced freely)."""

    __slots__ = ("task", "y", "scores")

    def __init__(self, model: Any, X: Any, y: Any, task: str | None = None) -> None:
        if task is not None and task not in METRICS:
            raise ParameterError(f"task must be one of {list(METRICS)}, got {task!r}")
        self.task, classes, self.scores = _task_and_scores(model, X, task)
        n_classes = self.scores.shape[1] if self.scores.ndim == 2 else None
        self.y = _codes(y, self.task, classes, n_classes)
        if self.y.shape[0] != self.scores.shape[0]:
            raise DataError(f"X has {self.scores.shape[0]} rows but y has {self.y.shape[0]}")

    def metrics(self, names: Sequence[str], mask: np.ndarray | None = None) -> dict[str, float]:
        if mask is None:
            return _metric_values(self.task, self.y, self.scores, names)
        return _metric_values(self.task, self.y[mask], self.scores[mask], names)


def _metric_names(task: str, metrics: Sequence[str] | None) -> list[str]:
    if metrics is None:
        return list(METRICS[task])
    if isinstance(metrics, str):
        metrics = [metrics]
    bad = [m for m in metrics if m not in METRICS[task]]
    if bad:
        raise ParameterError(f"metric {bad[0]!r} is not available for a {task} model; choose from {list(METRICS[task])}")
    return list(metrics)


def evaluate_metrics(model: Any, X: Any, y: Any, metrics: Sequence[str] | None = None, *,
                     task: str | None = None) -> dict[str, float]:
    """The model's metrics on ``(X, y)``: a dict of metric name → value.

    ``model`` is a :class:`ferrox.pipeline.Pipeline`, a :class:`ferrox.Booster`, a fitted ferrox GBDT
    estimator, or the path of a ``.frx`` artifact (loaded and SHA-256 verified). The task comes from
    the model (class labels, or the GBDT objective; ``task=`` overrides: "binary", "multiclass",
    "regression"). Binary: ``auc`` (Mann-Whitney rank formula, ties counted as half, NaN when y holds
    a single class), ``logloss`` (probabilities clipped to [eps, 1 - eps]) and ``accuracy`` (class 1
    when P > 0.5); multiclass: ``logloss``, ``accuracy`` (arg max); regression: ``rmse``, ``mae``,
    ``r2`` (1 when the target is constant and predicted exactly, else 0, as scikit-learn's default).
    ``y`` holds the model's class labels (or codes 0..k-1 for a bare Booster). ``metrics`` picks some.

    >>> import numpy as np, ferrox as fx
    >>> X = np.random.default_rng(1).normal(size=(500, 2)); y = X[:, 0] + 0.1 * X[:, 1]
    >>> booster = fx.train({"verbosity": -1}, fx.Dataset(X, label=y), 30)
    >>> m = evaluate_metrics(booster, X, y)
    >>> sorted(m), m["r2"] > 0.9
    (['mae', 'r2', 'rmse'], True)
    """
    scored = _Scored(_load(model), X, y, task)
    return scored.metrics(_metric_names(scored.task, metrics))


# -- the verdict --------------------------------------------------------------------------------------

def _clean(v: Any) -> Any:
    """JSON-safe: NaN and infinities become None, numpy scalars plain numbers."""
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


class Verdict:
    """What :meth:`Gate.evaluate` decided: ``passed``, and ``checks``, one dict per check with name, slice
    (``{"column": ..., "value": ...}`` or None for all rows), metric, candidate, baseline, rule, passed
    (True, False, or None when skipped) and reason (None when passed, else a code of :data:`REASONS`).
    ``reasons`` lists the failed checks' codes; ``metrics`` holds the overall metrics of each model.

    >>> from ferrox.gate import Verdict
    >>> v = Verdict([{"name": "threshold", "slice": None, "metric": "auc", "candidate": 0.62, "baseline": None,
    ...               "rule": "auc >= 0.7", "passed": False, "reason": "below_threshold"}])
    >>> v.passed, v.reasons
    (False, ['below_threshold'])
    >>> Verdict.from_dict(v.to_dict()).checks == v.checks
    True
    """

    __slots__ = ("checks", "metrics", "info")

    def __init__(self, checks: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any] | None = None,
                 info: Mapping[str, Any] | None = None) -> None:
        self.checks = [{k: _clean(v) for k, v in c.items()} for c in checks]
        self.metrics = {k: ({m: _clean(x) for m, x in v.items()} if isinstance(v, Mapping) else v)
                        for k, v in (metrics or {}).items()}
        self.info = dict(info or {})

    @property
    def passed(self) -> bool:
        """True when no check failed (skipped checks do not count)."""
        return not any(c["passed"] is False for c in self.checks)

    @property
    def failed(self) -> list[dict[str, Any]]:
        """The failed checks."""
        return [c for c in self.checks if c["passed"] is False]

    @property
    def reasons(self) -> list[str]:
        """The distinct reason codes of the failed checks, in order of first appearance."""
        return list(dict.fromkeys(c["reason"] for c in self.failed))

    def to_dict(self) -> dict[str, Any]:
        """The verdict as plain data (what ``ferrox gate`` writes)."""
        return {"passed": self.passed, "reasons": self.reasons, "checks": [dict(c) for c in self.checks],
                "metrics": {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.metrics.items()},
                **self.info}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """A verdict from :meth:`to_dict` output."""
        try:
            info = {k: v for k, v in data.items() if k not in ("passed", "reasons", "checks", "metrics")}
            return cls(data["checks"], data.get("metrics"), info)
        except (KeyError, TypeError, AttributeError) as e:
            raise DataError(f"not a ferrox verdict: {e}") from e

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The verdict as JSON text; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        if path is not None:
            with open(os.fspath(path), "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike[str]) -> Verdict:
        """A verdict from :meth:`to_json` text or the file it wrote."""
        text = os.fspath(text_or_path)
        if not text.lstrip().startswith("{"):
            with open(text, encoding="utf-8") as f:
                text = f.read()
        try:
            return cls.from_dict(json.loads(text))
        except ValueError as e:
            raise DataError(f"not a ferrox verdict: {e}") from e

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        failed = self.failed
        skipped = sum(c["passed"] is None for c in self.checks)
        head = f"<ferrox Verdict: {'PASSED' if self.passed else 'REFUSED'}, {len(self.checks)} checks"
        head += f", {len(failed)} failed" + (f", {skipped} skipped" if skipped else "")
        if not failed:
            return head + ">"
        lines = []
        for c in failed[:8]:
            where = "" if c["slice"] is None else f" [{c['slice']['column']}={c['slice']['value']!r}]"
            val = "" if c["candidate"] is None else f", got {c['candidate']:.6g}" if isinstance(c["candidate"], float) else f", got {c['candidate']}"
            lines.append(f"  {c['reason']}: {c['rule']}{where}{val}")
        more = [f"  ... and {len(failed) - 8} more"] if len(failed) > 8 else []
        return head + ":\n" + "\n".join(lines + more) + "\n>"


def _columns_of(X: Any, name: str) -> np.ndarray:
    """One column of a frame as a numpy array."""
    mod = type(X).__module__.split(".", 1)[0]
    try:
        if mod == "pandas":
            return X[name].to_numpy()
        if mod == "polars":
            return X.get_column(name).to_numpy()
        if mod == "pyarrow":
            return X.column(name).to_numpy(zero_copy_only=False)
    except (KeyError, LookupError, ValueError) as e:
        raise ParameterError(f"slice column {name!r} is not in the data") from e
    except Exception as e:  # polars ColumnNotFoundError and friends
        if "not found" in str(e).lower() or type(e).__name__.endswith("NotFoundError"):
            raise ParameterError(f"slice column {name!r} is not in the data") from e
        raise
    raise ParameterError(f"slices need a DataFrame or Arrow table with named columns, got {type(X).__name__}")


def _slice_values(col: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct values, code of each row or -1 for missing, counts) of a column, missing left out."""
    if col.dtype.kind == "f":
        present = ~np.isnan(col)
    elif col.dtype.kind == "O":
        try:
            import pandas as pd

            present = ~np.asarray(pd.isna(col), dtype=bool)
        except ImportError:  # None and NaN are the missing values then
            present = np.not_equal(col, np.array(None, dtype=object)) & np.equal(col, col)
    else:
        present = np.ones(col.shape[0], dtype=bool)
    values = col[present]
    if col.dtype.kind == "O":
        values = values.astype(str)
    uniq, inv, counts = np.unique(values, return_inverse=True, return_counts=True)
    codes = np.full(col.shape[0], -1, dtype=np.int64)
    codes[present] = inv.reshape(-1)
    return uniq, codes, counts


def _time_predict(model: Any, X: Any, rows: int, repeats: int = 7) -> float:
    """Median milliseconds of one call predicting ``rows`` rows (after one warm-up call)."""
    sample = _head(_model_frame(model, X), rows)
    predict = model.predict_proba if hasattr(model, "classes_") else model.predict
    predict(sample)
    times = np.empty(repeats)
    for i in range(repeats):
        t = time.perf_counter()
        predict(sample)
        times[i] = time.perf_counter() - t
    return float(np.median(times) * 1000.0)


def _head(X: Any, rows: int) -> Any:
    n = _n_rows(X)
    if n >= rows:
        idx = np.arange(rows)
    else:  # repeat the rows there are, so each call has `rows` rows
        idx = np.resize(np.arange(n), rows)
    return _take(X, idx)


def _n_rows(X: Any) -> int:
    if hasattr(X, "num_rows"):
        return int(X.num_rows)
    return int(X.shape[0]) if hasattr(X, "shape") else len(X)


def _take(X: Any, idx: np.ndarray) -> Any:
    mod = type(X).__module__.split(".", 1)[0]
    if mod == "pandas":
        return X.iloc[idx].reset_index(drop=True)
    if mod == "polars":
        return X[idx]
    if mod == "pyarrow":
        return X.take(idx)
    return np.asarray(X)[idx]


class Gate:
    """Decides whether a challenger may replace the champion: metric rules overall and per slice, and an
    infrastructure check of the challenger's artifact.

    ``thresholds`` maps metric names of :func:`evaluate_metrics` to :class:`MetricThreshold` (or to dicts
    of its fields, read with :meth:`MetricThreshold.from_dict`; a rule
    whose direction contradicts the metric's, e.g. ``greater_is_better=True`` for logloss, raises
    :class:`ferrox.ParameterError`). :meth:`evaluate` checks, on the holdout ``X, y``:

    - each metric rule on all rows (failures: ``below_threshold``, ``insufficient_improvement``,
      ``missing_metric``, ``missing_baseline``);
    - per slice: for each column in ``slices`` and each of its values with at least ``min_slice_rows``
      rows (missing values left out), the same rules against the champion on those rows; a change rule
      failing there is a ``slice_regression``, a threshold failing there ``below_threshold``; smaller
      slices are listed as skipped (``small_slice``), undefined metrics too (``undefined``);
    - infra: the challenger loads from its artifact with its SHA-256 verified (a path is loaded, a model
      object is written to artifact bytes and read back; ``does_not_load``), its predictions on the
      holdout are finite (``not_finite``), and with ``max_latency_ms`` the median time of one call
      predicting ``latency_rows`` rows is at most that (``too_slow``).

    Every metric is computed on the reloaded challenger, i.e. on what would be served.

    >>> import numpy as np, pandas as pd, ferrox as fx
    >>> from ferrox.pipeline import Pipeline
    >>> rng = np.random.default_rng(3)
    >>> X = pd.DataFrame({"x": rng.normal(size=4000), "shop": pd.Categorical(rng.choice(["a", "b"], size=4000))})
    >>> y = X["x"].to_numpy() + rng.normal(scale=0.5, size=4000)
    >>> def fit(rounds):
    ...     return Pipeline([("m", fx.GBDTRegressor(n_estimators=rounds, verbosity=-1))]).fit(X[:3000], y[:3000])
    >>> gate = Gate({"rmse": MetricThreshold(min_relative_change=0.01, greater_is_better=False)}, slices=["shop"])
    >>> v = gate.evaluate(fit(40), fit(3), X[3000:], y[3000:])
    >>> v.passed, sorted({c["slice"]["value"] for c in v.checks if c["slice"]})
    (True, ['a', 'b'])
    """

    thresholds: dict[str, MetricThreshold]
    slices: list[str]
    min_slice_rows: int
    max_latency_ms: float | None
    latency_rows: int

    def __init__(
        self,
        thresholds: Mapping[str, MetricThreshold],
        slices: Sequence[str] | None = None,
        min_slice_rows: int = 200,
        max_latency_ms: float | None = None,
        latency_rows: int = 1000,
    ) -> None:
        if not isinstance(thresholds, Mapping):
            raise ParameterError(f"thresholds must map metric names to MetricThreshold, got {type(thresholds).__name__}")
        self.thresholds = {}
        for name, t in thresholds.items():
            if not isinstance(name, str):
                raise ParameterError(f"thresholds: metric names must be strings, got {name!r}")
            if isinstance(t, Mapping):
                t = MetricThreshold.from_dict(t, metric=name)
            if not isinstance(t, MetricThreshold):
                raise ParameterError(f"thresholds[{name!r}] must be a MetricThreshold, got {type(t).__name__}")
            if name not in GREATER_IS_BETTER:
                raise ParameterError(f"thresholds: unknown metric {name!r}; choose from {sorted(GREATER_IS_BETTER)}")
            if t.greater_is_better != GREATER_IS_BETTER[name]:
                want = "True" if GREATER_IS_BETTER[name] else "False"
                raise ParameterError(f"thresholds[{name!r}]: {name} is better when {'larger' if GREATER_IS_BETTER[name] else 'smaller'}, "
                                     f"so greater_is_better must be {want}")
            self.thresholds[name] = t
        if not self.thresholds:
            raise ParameterError("thresholds: give at least one metric")
        if isinstance(slices, str):
            slices = [slices]
        self.slices = list(slices or [])
        if isinstance(min_slice_rows, bool) or not isinstance(min_slice_rows, numbers.Integral) or min_slice_rows < 1:
            raise ParameterError(f"min_slice_rows must be a positive integer, got {min_slice_rows!r}")
        self.min_slice_rows = int(min_slice_rows)
        if max_latency_ms is not None and (isinstance(max_latency_ms, bool) or not isinstance(max_latency_ms, numbers.Real)
                                           or not max_latency_ms > 0):
            raise ParameterError(f"max_latency_ms must be a positive number of milliseconds, got {max_latency_ms!r}")
        self.max_latency_ms = None if max_latency_ms is None else float(max_latency_ms)
        if isinstance(latency_rows, bool) or not isinstance(latency_rows, numbers.Integral) or latency_rows < 1:
            raise ParameterError(f"latency_rows must be a positive integer, got {latency_rows!r}")
        self.latency_rows = int(latency_rows)

    def evaluate(self, challenger: Any, champion: Any, X: Any, y: Any) -> Verdict:
        """The verdict on ``challenger`` (a ``.frx`` path or a ferrox model) against ``champion`` (the
        same kinds, or None for a first model) on the holdout ``X, y``. Slice columns must be columns of
        ``X`` (a DataFrame or Arrow table); a model that was trained on named columns reads only those,
        so ``X`` may hold more (a slice column the model does not use, say)."""
        checks: list[dict[str, Any]] = []
        info: dict[str, Any] = {"n_rows": _n_rows(X), "slices": list(self.slices),
                                "min_slice_rows": self.min_slice_rows}

        def infra(name: str, rule: str, passed: bool, reason: str | None, candidate: Any = None, baseline: Any = None) -> None:
            checks.append({"name": name, "slice": None, "metric": None, "candidate": candidate, "baseline": baseline,
                           "rule": rule, "passed": passed, "reason": None if passed else reason})

        try:
            model = _reload(challenger)
        except (ModelIntegrityError, DataError, FerroxError, OSError, ValueError) as e:
            infra("loads", "the challenger's artifact loads (SHA-256 verified)", False, "does_not_load", candidate=str(e))
            return Verdict(checks, {}, info)
        infra("loads", "the challenger's artifact loads (SHA-256 verified)", True, None)

        scored = _Scored(model, X, y)
        names = list(self.thresholds)
        _metric_names(scored.task, names)  # every rule's metric must exist for this task
        finite = bool(np.isfinite(scored.scores).all())
        bad = int((~np.isfinite(scored.scores)).reshape(scored.scores.shape[0], -1).any(axis=1).sum())
        infra("finite", "predictions are finite", finite, "not_finite", candidate=bad)
        if self.max_latency_ms is not None:
            ms = _time_predict(model, X, self.latency_rows)
            infra("latency", f"median ms per call of {self.latency_rows} rows <= {self.max_latency_ms:g}",
                  ms <= self.max_latency_ms, "too_slow", candidate=ms)

        base: _Scored | None = None
        if champion is not None:
            base = _Scored(_load(champion), X, y, scored.task)
        info["task"] = scored.task
        metrics: dict[str, Any] = {"challenger": scored.metrics(METRICS[scored.task])}
        if base is not None:
            metrics["champion"] = base.metrics(METRICS[scored.task])

        def rules(cand: dict[str, float], basem: dict[str, float] | None, where: dict[str, Any] | None) -> None:
            for metric, t in self.thresholds.items():
                c = cand[metric]
                b = None if basem is None else basem[metric]
                undefined = where is not None and (not math.isfinite(c) or (b is not None and not math.isfinite(b)))
                for r in t.check(c, b, has_baseline=base is not None, metric=metric):
                    reason = r["reason"]
                    passed = r["passed"]
                    if undefined and passed is not True:
                        passed, reason = None, "undefined"
                    elif where is not None and passed is False and r["name"] != "threshold":
                        reason = "slice_regression"
                    checks.append({"name": r["name"], "slice": where, "metric": metric, "candidate": c, "baseline": b,
                                   "rule": r["rule"], "passed": passed, "reason": reason})

        rules(metrics["challenger"], metrics.get("champion"), None)
        for column in self.slices:
            values, codes, counts = _slice_values(_columns_of(X, column))
            for k, value in enumerate(values.tolist()):
                where = {"column": column, "value": _clean(value), "rows": int(counts[k])}
                if counts[k] < self.min_slice_rows:
                    checks.append({"name": "slice_size", "slice": where, "metric": None, "candidate": int(counts[k]),
                                   "baseline": None, "rule": f"rows >= {self.min_slice_rows}", "passed": None,
                                   "reason": "small_slice"})
                    continue
                mask = codes == k
                cand = scored.metrics(names, mask)
                rules(cand, None if base is None else base.metrics(names, mask), where)
        return Verdict(checks, metrics, info)

    def __repr__(self) -> str:
        return (f"Gate({self.thresholds!r}, slices={self.slices!r}, min_slice_rows={self.min_slice_rows}, "
                f"max_latency_ms={self.max_latency_ms!r}, latency_rows={self.latency_rows})")
