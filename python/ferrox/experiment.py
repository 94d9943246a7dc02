"""The statistics that decide A/B tests: fixed-horizon, sequential and Bayesian comparisons, CUPED,
sample-ratio mismatch and power, computed in Rust (the model server's router calls the same code).

Names and results follow scipy and statsmodels: :func:`compare` with ``method="fixed"`` is Welch's t
test (``scipy.stats.ttest_ind(equal_var=False)``) for means and the z test of
``statsmodels.stats.proportion.proportions_ztest`` for proportions; :func:`srm` is
``scipy.stats.chisquare``; :func:`power` is ``statsmodels.stats.power.TTestIndPower`` /
``NormalIndPower``.

>>> import numpy as np, ferrox as fx
>>> rng = np.random.default_rng(0)
>>> r = fx.experiment.compare(rng.normal(10, 2, 5000), rng.normal(10.3, 2, 5000))
>>> r.decision
'ship treatment'
>>> bool(r.ci[0] < r.effect < r.ci[1])
True
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from . import _ferrox
from .exceptions import DataError, ParameterError

__all__ = ["ArmStats", "Comparison", "SrmResult", "PowerResult", "Analysis", "compare", "srm", "power", "analyze", "read_events", "outcomes"]

_M6 = tuple[float, float, float, float, float, float]


@dataclass(frozen=True)
class ArmStats:
    """Sufficient statistics of one arm: units ``n``, ``sum`` and ``sum_sq`` of the metric and, for a
    ratio metric (denominator) or CUPED (pre-period covariate), ``sum_x``, ``sum_x_sq`` and ``sum_xy``.

    >>> import ferrox as fx
    >>> a, b = fx.experiment.ArmStats(1000, 100, 100), fx.experiment.ArmStats(1000, 130, 130)
    >>> round(fx.experiment.compare(a, b, metric="proportion").effect, 3)
    0.03
    """

    n: float
    sum: float
    sum_sq: float
    sum_x: float = 0.0
    sum_x_sq: float = 0.0
    sum_xy: float = 0.0

    @classmethod
    def from_values(cls, y: Any, x: Any = None) -> "ArmStats":
        """The statistics of per-unit values ``y`` (and ``x``).

        >>> import ferrox as fx
        >>> fx.experiment.ArmStats.from_values([1.0, 2.0, 3.0])
        ArmStats(n=3, sum=6.0, sum_sq=14.0, sum_x=0.0, sum_x_sq=0.0, sum_xy=0.0)
        """
        yv = _vector(y, "y")
        if x is None:
            return cls(len(yv), float(yv.sum()), float(yv @ yv))
        xv = _vector(x, "x")
        if len(xv) != len(yv):
            raise DataError(f"x has {len(xv)} values but y has {len(yv)}: one per unit")
        return cls(len(yv), float(yv.sum()), float(yv @ yv), float(xv.sum()), float(xv @ xv), float(yv @ xv))


def _vector(a: Any, name: str) -> np.ndarray:
    try:
        v = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(f"{name} must be numeric values, one per unit: {e}") from None
    if v.ndim != 1:
        raise DataError(f"{name} must be 1-D (one value per unit), got shape {v.shape}")
    return np.ascontiguousarray(v)


def _check_alpha(alpha: Any) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise ParameterError(f"alpha must be a number in (0, 1), got {alpha!r}") from None
    if not 0.0 < a < 1.0:
        raise ParameterError(f"alpha must lie in (0, 1), got {alpha!r}")
    return a


def _moments(arm: Any, name: str, metric: str, cov: Any, use_stats_x: bool) -> _M6:
    if isinstance(arm, ArmStats):
        if metric != "ratio" and not use_stats_x:
            arm = ArmStats(arm.n, arm.sum, arm.sum_sq)
        return _ferrox.experiment_moments_from_sums(name, (arm.n, arm.sum, arm.sum_sq, arm.sum_x, arm.sum_x_sq, arm.sum_xy))
    if isinstance(arm, dict):
        return _moments(ArmStats(**arm), name, metric, cov, use_stats_x)
    if metric == "ratio":
        if not (isinstance(arm, (tuple, list)) and len(arm) == 2):
            raise DataError(f"{name}: a ratio metric takes (numerators, denominators) per unit, or ArmStats")
        return _ferrox.experiment_moments(_vector(arm[0], f"{name}[0]"), f"{name}[0] (numerators)", _vector(arm[1], f"{name}[1]"), f"{name}[1] (denominators)")
    y = _vector(arm, name)
    if metric == "proportion" and y.size and not np.isin(y, (0.0, 1.0)).all():
        raise DataError(f"{name}: a proportion metric takes 0/1 values per unit")
    if cov is None:
        return _ferrox.experiment_moments(y, name)
    return _ferrox.experiment_moments(y, name, _vector(cov, f"covariate ({name})"), f"covariate ({name})")


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    out = {k: (math.nan if v is None else v) for k, v in d.items()}
    if d.get("df") is None:
        out["df"] = math.inf
    return out


class Comparison:
    """The result of :func:`compare`: ``effect`` (absolute, or the relative lift), ``ci`` (low, high),
    ``pvalue``, ``statistic``, ``chance_to_win`` and ``expected_loss`` (Bayesian; NaN otherwise),
    ``decision`` in plain words, plus the arms' values and sizes.

    >>> import ferrox as fx
    >>> r = fx.experiment.compare([1.0, 2, 3, 4], [2.0, 3, 4, 5])
    >>> sorted(r.to_dict())[:4]
    ['alpha', 'chance_to_win', 'ci_high', 'ci_low']
    """

    def __init__(self, d: dict[str, Any]):
        self._d = _clean(d)
        for k, v in self._d.items():
            setattr(self, k, v)

    effect: float
    pvalue: float
    statistic: float
    chance_to_win: float
    expected_loss: float
    decision: str

    @property
    def ci(self) -> tuple[float, float]:
        """The interval of the effect: confidence (fixed), confidence sequence (sequential) or credible
        (Bayesian).

        >>> import ferrox as fx
        >>> lo, hi = fx.experiment.compare([1.0, 2, 3, 4], [2.0, 3, 4, 5]).ci
        >>> lo < 1.0 < hi
        True
        """
        return (self._d["ci_low"], self._d["ci_high"])

    def to_dict(self) -> dict[str, Any]:
        """The result as plain Python data (NaN where a number does not apply to the method).

        >>> import ferrox as fx
        >>> fx.experiment.compare([1.0, 2, 3], [2.0, 3, 4]).to_dict()["effect"]
        1.0
        """
        return dict(self._d)

    def to_pandas(self) -> Any:
        """A one-row pandas DataFrame.

        >>> import ferrox as fx
        >>> fx.experiment.compare([1.0, 2, 3], [2.0, 3, 4]).to_pandas().shape[0]
        1
        """
        import pandas as pd

        return pd.DataFrame([self._d])

    def to_html(self, path: str | os.PathLike[str] | None = None) -> str:
        """A self-contained HTML page (inline SVG interval plot); written to ``path`` when given.

        >>> import ferrox as fx
        >>> "<svg" in fx.experiment.compare([1.0, 2, 3], [2.0, 3, 4]).to_html()
        True
        """
        return _write(_ferrox.experiment_html("Experiment", [], json.dumps([["treatment vs control", _jsonable(self._d)]])), path)

    def __repr__(self) -> str:
        lo, hi = self.ci
        return f"Comparison(effect={self.effect:.6g}, ci=({lo:.6g}, {hi:.6g}), pvalue={self.pvalue:.4g}, decision={self.decision!r})"


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def _write(html: str, path: str | os.PathLike[str] | None) -> str:
    if path is not None:
        with open(os.fspath(path), "w", encoding="utf-8") as f:
            f.write(html)
    return html


def compare(
    control: Any,
    treatment: Any,
    *,
    metric: str = "mean",
    method: str = "fixed",
    relative: bool = False,
    alpha: float = 0.05,
    covariate: Any = None,
    tuning: float = 5000,
) -> Comparison:
    """Treatment against control.

    ``control`` and ``treatment`` are per-unit values (for ``metric="ratio"`` a pair of arrays
    (numerators, denominators) per arm), or :class:`ArmStats`. ``covariate=(control_pre,
    treatment_pre)`` turns on CUPED (θ from both arms pooled, Deng et al. 2013); with ArmStats pass
    ``covariate=True`` to use their ``sum_x``/``sum_x_sq``/``sum_xy`` as the covariate.

    ``method``: ``"fixed"`` (Welch's t for means, z for proportions and ratios), ``"sequential"``
    (always valid: the gbstats confidence sequence tightest at ``tuning`` units in all, and the mSPRT
    p-value of the same normal mixture) or ``"bayesian"`` (Gaussian posterior, Beta–Binomial for
    proportions). ``relative=True`` reads the lift treatment / control − 1 (delta method). Higher
    is taken to be better.

    >>> import numpy as np, ferrox as fx
    >>> rng = np.random.default_rng(1)
    >>> c, t = rng.binomial(1, 0.10, 20000), rng.binomial(1, 0.11, 20000)
    >>> r = fx.experiment.compare(c, t, metric="proportion", method="bayesian")
    >>> 0.9 < r.chance_to_win <= 1.0
    True
    """
    a = _check_alpha(alpha)
    if metric not in ("mean", "proportion", "ratio"):
        raise ParameterError(f"metric must be 'mean', 'proportion' or 'ratio', got {metric!r}")
    if method not in ("fixed", "sequential", "bayesian"):
        raise ParameterError(f"method must be 'fixed', 'sequential' or 'bayesian', got {method!r}")
    stats_cov = covariate is True
    cuped = covariate is not None and covariate is not False
    if cuped and metric == "ratio":
        raise ParameterError("covariate (CUPED) applies to 'mean' and 'proportion' metrics, not 'ratio'")
    cov_c = cov_t = None
    if cuped and not stats_cov:
        if not (isinstance(covariate, (tuple, list)) and len(covariate) == 2):
            raise ParameterError("covariate must be (control_pre, treatment_pre): one pre-period value per unit and arm")
        cov_c, cov_t = covariate
    mc = _moments(control, "control", metric, cov_c, stats_cov)
    mt = _moments(treatment, "treatment", metric, cov_t, stats_cov)
    d = json.loads(_ferrox.experiment_compare(mc, mt, metric, method, bool(relative), a, float(tuning), cuped))
    return Comparison(d)


@dataclass(frozen=True)
class SrmResult:
    """Sample-ratio mismatch: chi-square ``statistic`` and ``pvalue``; ``mismatch`` when the p-value is
    below the threshold.

    >>> import ferrox as fx
    >>> fx.experiment.srm([5000, 5100]).mismatch
    False
    """

    statistic: float
    pvalue: float
    mismatch: bool


def srm(counts: Sequence[float], weights: Sequence[float] | None = None, threshold: float = 0.001) -> SrmResult:
    """Chi-square goodness of fit of the units per arm against the planned split ``weights`` (equal
    when None), as ``scipy.stats.chisquare(counts, sum(counts) * weights / sum(weights))``.

    >>> import ferrox as fx
    >>> r = fx.experiment.srm([10_000, 10_600], weights=[0.5, 0.5])
    >>> round(r.statistic, 4), r.mismatch
    (17.4757, True)
    """
    c = [float(v) for v in np.asarray(counts, dtype=np.float64).ravel()]
    w = [1.0] * len(c) if weights is None else [float(v) for v in np.asarray(weights, dtype=np.float64).ravel()]
    s, p, m = _ferrox.experiment_srm(c, w, float(threshold))
    return SrmResult(s, p, m)


@dataclass(frozen=True)
class PowerResult:
    """The four quantities of a power analysis, the missing one solved for.

    >>> import ferrox as fx
    >>> r = fx.experiment.power(effect_size=0.2, power=0.8, test="z")
    >>> math.ceil(r.nobs1)
    393
    """

    effect_size: float
    nobs1: float
    alpha: float
    power: float
    ratio: float

    @property
    def nobs2(self) -> float:
        """Units in the second arm (``nobs1 * ratio``).

        >>> import ferrox as fx
        >>> fx.experiment.power(effect_size=0.5, nobs1=100, ratio=2.0).nobs2
        200.0
        """
        return self.nobs1 * self.ratio


def power(
    effect_size: float | None = None,
    nobs1: float | None = None,
    alpha: float | None = 0.05,
    power: float | None = None,
    ratio: float = 1.0,
    *,
    test: str = "t",
    alternative: str = "two-sided",
) -> PowerResult:
    """Power, sample size of the first arm or minimum detectable (standardised) effect of the
    two-sample t test (``test="t"``, as statsmodels' ``TTestIndPower``) or z test (``"z"``,
    ``NormalIndPower``): exactly one of ``effect_size``, ``nobs1``, ``alpha``, ``power`` is None and
    is solved for. ``ratio`` = nobs2 / nobs1.

    >>> import ferrox as fx
    >>> round(fx.experiment.power(effect_size=0.5, nobs1=64).power, 4)
    0.8015
    >>> round(fx.experiment.power(nobs1=1000, power=0.8, test="z").effect_size, 4)
    0.1253
    """
    if test not in ("t", "z"):
        raise ParameterError(f"test must be 't' or 'z', got {test!r}")
    if alpha is not None:
        _check_alpha(alpha)
    f = lambda v: None if v is None else float(v)  # noqa: E731
    d, n, a, p = _ferrox.experiment_power(test, f(effect_size), f(nobs1), f(alpha), f(power), float(ratio), alternative)
    return PowerResult(d, n, a, p, float(ratio))


class Analysis:
    """The result of :func:`analyze`: one row per (metric, treatment arm) with the corrected p-value,
    the SRM check of the arm sizes, and the same ``to_dict`` / ``to_pandas`` / ``to_html`` as
    :class:`Comparison`.

    >>> import numpy as np, ferrox as fx
    >>> ev = {"arm": np.repeat(["control", "b"], 500), "y": np.r_[np.zeros(500), np.ones(500)] + np.tile([0.0, 1.0], 500)}
    >>> a = fx.experiment.analyze(ev, metrics=["y"])
    >>> a.rows[0]["arm"], a.rows[0]["decision"]
    ('b', 'ship treatment')
    """

    def __init__(self, d: dict[str, Any]):
        self.arms: list[str] = d["arms"]
        self.units: list[float] = d["units"]
        self.control: str = d["control_arm"]
        self.correction: str = d["correction"]
        s = d["srm"]
        self.srm = SrmResult(s["statistic"], s["pvalue"], s["mismatch"])
        self.rows: list[dict[str, Any]] = []
        for r in d["rows"]:
            row = _clean(r["comparison"])
            row["kind"] = row.pop("metric")
            row.update(metric=r["metric"], arm=r["arm"], control_arm=r["control_arm"])
            row["pvalue_adjusted"] = math.nan if r["pvalue_adjusted"] is None else r["pvalue_adjusted"]
            self.rows.append(row)

    def to_dict(self) -> dict[str, Any]:
        """The analysis as plain Python data.

        >>> import ferrox as fx
        >>> sorted(fx.experiment.analyze({"arm": ["a", "b"] * 5, "y": [1.0, 2.0] * 4 + [2.0, 1.0]}, metrics=["y"]).to_dict())
        ['arms', 'control', 'correction', 'rows', 'srm', 'units']
        """
        return {
            "arms": list(self.arms),
            "units": list(self.units),
            "control": self.control,
            "correction": self.correction,
            "srm": asdict(self.srm),
            "rows": [dict(r) for r in self.rows],
        }

    def to_pandas(self) -> Any:
        """One row per (metric, treatment arm).

        >>> import ferrox as fx
        >>> fx.experiment.analyze({"arm": ["a", "b"] * 5, "y": [1.0, 2.0] * 4 + [2.0, 1.0]}, metrics=["y"]).to_pandas().shape[0]
        1
        """
        import pandas as pd

        return pd.DataFrame(self.rows)

    def to_html(self, path: str | os.PathLike[str] | None = None) -> str:
        """A self-contained HTML page (inline SVG interval plot); written to ``path`` when given.

        >>> import ferrox as fx
        >>> "<svg" in fx.experiment.analyze({"arm": ["a", "b"] * 5, "y": [1.0, 2.0] * 4 + [2.0, 1.0]}, metrics=["y"]).to_html()
        True
        """
        notes = [
            f"Control: {self.control}. Units per arm: "
            + ", ".join(f"{a} {int(u)}" for a, u in zip(self.arms, self.units))
            + f". Sample-ratio check: chi-square {self.srm.statistic:.4g}, p = {self.srm.pvalue:.4g}"
            + (" — MISMATCH: do not trust these results" if self.srm.mismatch else " (no mismatch)")
            + f". p-values corrected with {self.correction}."
        ]
        rows = [[f"{r['metric']}: {r['arm']} vs {r['control_arm']}", _jsonable({**r, "metric": r["kind"]})] for r in self.rows]
        return _write(_ferrox.experiment_html("Experiment analysis", notes, json.dumps(rows)), path)

    def __repr__(self) -> str:
        return f"Analysis(arms={self.arms}, control={self.control!r}, rows={len(self.rows)}, srm_mismatch={self.srm.mismatch})"


def read_events(path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> Any:
    """Reads events as a pyarrow Table: the model server's event log (a folder of ``events-*.arrows``
    segments, or one segment) or a Parquet file of per-unit events. String columns of Parquet come back
    dictionary-encoded, which :func:`analyze` groups fastest.

    The event log holds one row per assignment, outcome or canary transition (columns ``ts``, ``kind``,
    ``experiment``, ``variant``, ``unit``, ``request_id``, ``model``, ``version``, ``propensity``,
    ``prediction``, ``rows``, ``metric``, ``value``, ``detail``); a segment cut short by a killed server
    gives every batch it flushed. :func:`outcomes` turns it into one row per request or unit.

    >>> import tempfile, os, pyarrow as pa, pyarrow.parquet as pq, ferrox as fx
    >>> p = os.path.join(tempfile.mkdtemp(), "ev.parquet")
    >>> pq.write_table(pa.table({"arm": ["a", "b"], "y": [1.0, 2.0]}), p)
    >>> fx.experiment.read_events(p).num_rows
    2
    """
    import pyarrow as pa

    p = os.fspath(path)
    if not os.path.exists(p):
        raise ParameterError(f"path: {p} does not exist")
    if os.path.isdir(p) or p.endswith((".arrows", ".arrows.partial")):
        table, _files, _torn = _ferrox.read_event_log(p)
        t = pa.table(table)
        return t.select(list(columns)) if columns is not None else t
    import pyarrow.parquet as pq

    schema = pq.read_schema(os.fspath(path))
    missing = [c for c in (columns or ()) if c not in schema.names]
    if missing:
        raise DataError(f"metrics: columns {missing} are not in {os.fspath(path)} (columns: {schema.names})")
    strings = [f.name for f in schema if (pa.types.is_string(f.type) or pa.types.is_large_string(f.type)) and (columns is None or f.name in columns)]
    return pq.read_table(os.fspath(path), columns=list(columns) if columns is not None else None, read_dictionary=strings or None)


def outcomes(events: Any, *, experiment: str | None = None, by: str = "request_id", fill: float = 0.0) -> Any:
    """One row per served request (``by="request_id"``) or unit (``by="unit"``) from the server's event
    log: the ``arm`` it was served and, per outcome metric, the sum of its values (``fill`` where none
    arrived), ready for :func:`analyze`. Forced assignments and unmatched outcomes are left out; a unit
    served several times keeps its first variant.

    >>> import ferrox as fx, pyarrow as pa
    >>> ev = pa.table({"kind": ["assignment", "assignment", "outcome"], "experiment": ["e"] * 3,
    ...                "variant": ["a", "b", "b"], "unit": ["u1", "u2", "u2"], "request_id": ["r1", "r2", "r2"],
    ...                "metric": [None, None, "reward"], "value": [None, None, 1.0], "detail": [None] * 3})
    >>> fx.experiment.outcomes(ev).to_pydict()
    {'request_id': ['r1', 'r2'], 'arm': ['a', 'b'], 'reward': [0.0, 1.0]}
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if by not in ("request_id", "unit"):
        raise ParameterError(f"by must be 'request_id' or 'unit', got {by!r}")
    t = read_events(events) if isinstance(events, (str, os.PathLike)) else events
    if not isinstance(t, pa.Table):
        t = pa.table(t)
    missing = [c for c in ("kind", "experiment", "variant", by, "metric", "value") if c not in t.column_names]
    if missing:
        raise DataError(f"events: columns {missing} are missing; expected the server's event log (see read_events)")
    if experiment is None:
        names = pc.unique(t["experiment"]).to_pylist()
        if len(names) != 1:
            raise ParameterError(f"the events hold experiments {sorted(map(str, names))}; name one with experiment=")
        experiment = names[0]
    t = t.filter(pc.equal(t["experiment"], experiment))
    served = t.filter(pc.and_(pc.equal(t["kind"], "assignment"), pc.is_valid(t[by])))
    if "detail" in t.column_names:
        detail = served["detail"] if pa.types.is_string(served.schema.field("detail").type) else served["detail"].cast(pa.string())
        forced = pc.fill_null(pc.match_substring(detail, '"forced":true'), False)
        served = served.filter(pc.invert(forced))
    if served.num_rows == 0:
        raise DataError(f"experiment {experiment!r} has no assignments with a {by} in the events")
    first = served.select([by, "variant"]).group_by(by, use_threads=False).aggregate([("variant", "first")])
    first = first.rename_columns([by, "arm"])
    outs = t.filter(pc.and_(pc.and_(pc.equal(t["kind"], "outcome"), pc.is_valid(t["variant"])), pc.is_valid(t["metric"])))
    result = first
    for metric in sorted(pc.unique(outs["metric"]).to_pylist()):
        m = outs.filter(pc.equal(outs["metric"], metric)).group_by(by).aggregate([("value", "sum")])
        m = m.rename_columns([by, metric])
        result = result.join(m, by, join_type="left outer")
        result = result.set_column(result.column_names.index(metric), metric, pc.fill_null(result[metric], fill))
    return result.sort_by(by)


_EVENT_LOG_COLUMNS = ("kind", "experiment", "variant", "request_id", "metric", "value")


def _to_arrow(events: Any, columns: list[str]) -> Any:
    if isinstance(events, (str, os.PathLike)):
        p = os.fspath(events)
        if os.path.isdir(p) or p.endswith((".arrows", ".arrows.partial")):
            return outcomes(read_events(p))
        return read_events(events, columns)
    names = getattr(getattr(events, "schema", None), "names", None)
    if names is not None and all(c in names for c in _EVENT_LOG_COLUMNS) and "arm" not in names:
        return outcomes(events)
    if hasattr(events, "__arrow_c_stream__") or hasattr(events, "__arrow_c_array__"):
        if type(events).__module__.startswith("pandas"):
            import pyarrow as pa

            return pa.Table.from_pandas(events, preserve_index=False)
        return events
    if isinstance(events, dict):
        import pyarrow as pa

        return pa.table({k: np.asarray(v) for k, v in events.items()})
    if type(events).__module__.startswith("pandas"):
        import pyarrow as pa

        return pa.Table.from_pandas(events, preserve_index=False)
    raise DataError("events must be a pyarrow Table, a pandas or polars DataFrame, a dict of columns, or a Parquet path")


def analyze(
    events: Any,
    *,
    arm: str = "arm",
    metrics: Sequence[str | tuple[str, str]] = (),
    covariates: dict[str, str] | None = None,
    control: str | None = None,
    alpha: float = 0.05,
    correction: str = "holm",
    weights: Sequence[float] | None = None,
    method: str = "fixed",
    relative: bool = False,
    srm_threshold: float = 0.001,
    tuning: float = 5000,
) -> Analysis:
    """Every treatment arm against control on every metric, from per-unit events (a pyarrow Table,
    pandas/polars DataFrame, dict of columns, Parquet path, or the server's event log, which goes through
    :func:`outcomes` first); the per-arm sums are computed in Rust
    over the Arrow columns.

    ``metrics``: column names (boolean columns are proportions, others means) or ``(numerator,
    denominator)`` pairs for ratio metrics. ``covariates={metric: column}`` turns on CUPED for a
    metric. ``control`` defaults to the arm named "control", else the first in sorted order. The
    p-values of all comparisons are corrected together (``"holm"``, ``"bh"``, ``"bonferroni"`` or
    ``"none"``); the arm sizes are checked for sample-ratio mismatch against ``weights`` (in the
    sorted order of the arms; equal when None).

    >>> import numpy as np, ferrox as fx
    >>> rng = np.random.default_rng(2)
    >>> pre = rng.normal(10, 2, 6000)
    >>> ev = {"arm": np.repeat(["control", "t1", "t2"], 2000), "pre": pre,
    ...       "y": pre + rng.normal(0, 1, 6000) + np.repeat([0.0, 0.0, 0.3], 2000)}
    >>> a = fx.experiment.analyze(ev, metrics=["y"], covariates={"y": "pre"})
    >>> [r["decision"] for r in a.rows]  # doctest: +ELLIPSIS
    ['keep collecting: about ... more units per arm for 80% power', 'ship treatment']
    """
    a = _check_alpha(alpha)
    if not metrics:
        raise ParameterError("metrics must name at least one column (or (numerator, denominator) pair)")
    covariates = dict(covariates or {})
    names: list[str] = []
    cols = [arm]
    for m in metrics:
        if isinstance(m, (tuple, list)):
            if len(m) != 2:
                raise ParameterError(f"metrics: a ratio metric is a (numerator, denominator) pair, got {m!r}")
            names.append(f"{m[0]}/{m[1]}")
            cols += [m[0], m[1]]
        elif isinstance(m, str):
            names.append(m)
            cols.append(m)
        else:
            raise ParameterError(f"metrics: expected column names or (numerator, denominator) pairs, got {m!r}")
    unknown = sorted(set(covariates) - set(names))
    if unknown:
        raise ParameterError(f"covariates: {unknown} are not among the metrics {names}")
    cols += list(covariates.values())
    cols = list(dict.fromkeys(cols))
    table = _to_arrow(events, cols)
    schema = table.schema if hasattr(table, "schema") else None
    specs = []
    for m, name in zip(metrics, names):
        if isinstance(m, (tuple, list)):
            specs.append((name, "ratio", m[0], m[1], False))
            continue
        kind = "mean"
        if schema is not None and m in schema.names:
            import pyarrow as pa

            if pa.types.is_boolean(schema.field(m).type):
                kind = "proportion"
        cov = covariates.get(m)
        specs.append((name, kind, m, cov, cov is not None))
    w = None if weights is None else [float(v) for v in weights]
    d = json.loads(
        _ferrox.experiment_analyze(table, arm, specs, control, w, float(srm_threshold), correction, method, bool(relative), a, float(tuning))
    )
    return Analysis(d)
