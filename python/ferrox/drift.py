"""``ferrox.drift``: two-sample tests and distances with scipy.stats' names, arguments and results.

Every test returns a :class:`TestResult` with ``.statistic`` and ``.pvalue`` that unpacks like scipy's
result tuples. The numbers follow scipy 1.17's definitions and method choices (exact distributions for
small samples, the same asymptotic forms for large ones); the test suite checks them against scipy on
random samples of many shapes.

One difference on purpose: NaN in a sample raises :class:`ferrox.DataError` (``nan_policy="raise"``,
the default) or is dropped (``nan_policy="omit"``); scipy's default would return NaN silently.

>>> import numpy as np, ferrox as fx
>>> rng = np.random.default_rng(0)
>>> a, b = rng.normal(size=500), rng.normal(0.3, size=400)
>>> res = fx.drift.ks_2samp(a, b)
>>> stat, p = res
>>> bool(p < 0.01), round(float(stat), 3) == round(res.statistic, 3)
(True, True)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from . import _ferrox
from .exceptions import DataError, ParameterError

__all__ = [
    "TestResult",
    "ks_2samp",
    "cramervonmises_2samp",
    "anderson_ksamp",
    "mannwhitneyu",
    "chi2_contingency",
    "wasserstein_distance",
    "energy_distance",
    "jensenshannon",
    "hellinger",
    "psi",
    "adjust_pvalues",
    "ReferenceProfile",
    "DriftReport",
    "DriftMonitor",
    "WindowFinding",
    "domain_classifier",
    "DomainClassifierResult",
]


class TestResult:
    """The result of a test: ``statistic`` and ``pvalue`` (and test-specific extras as attributes).

    Unpacks like scipy's result tuples: ``stat, p = fx.drift.ks_2samp(a, b)``; ``chi2_contingency``
    unpacks to four values as scipy's does.

    >>> r = TestResult("KstestResult", ("statistic", "pvalue"), statistic=0.5, pvalue=0.25)
    >>> stat, p = r
    >>> r
    KstestResult(statistic=0.5, pvalue=0.25)
    """

    __test__ = False  # not a pytest test class

    def __init__(self, name: str, fields: tuple[str, ...], **values: Any) -> None:
        self._name = name
        self._fields = fields
        self._values = values

    def __getattr__(self, key: str) -> Any:
        values = self.__dict__.get("_values", {})
        if key in values:
            return values[key]
        raise AttributeError(f"{self.__dict__.get('_name', 'TestResult')} has no attribute {key!r}")

    @property
    def statistic(self) -> float:
        """The test statistic."""
        return float(self._values["statistic"])

    @property
    def pvalue(self) -> float:
        """The p-value."""
        return float(self._values["pvalue"])

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values[f] for f in self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __getitem__(self, i: int) -> Any:
        return tuple(self)[i]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TestResult):
            return tuple(self) == tuple(other)
        if isinstance(other, tuple):
            return tuple(self) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def _asdict(self) -> dict[str, Any]:
        return dict(self._values)

    def __repr__(self) -> str:
        inner = ", ".join(f"{f}={self._values[f]!r}" for f in self._fields if not isinstance(self._values[f], np.ndarray))
        return f"{self._name}({inner})"


def _sample(values: Any, name: str, nan_policy: str) -> np.ndarray:
    if nan_policy not in ("raise", "omit"):
        raise ParameterError(f"nan_policy must be 'raise' or 'omit', got {nan_policy!r}")
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(f"{name} must be numeric: {e}") from e
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 0 or (arr.ndim == 2 and 1 in arr.shape) else arr
    if arr.ndim != 1:
        raise DataError(f"{name} must be 1-D, got shape {arr.shape}")
    if nan_policy == "omit":
        arr = arr[~np.isnan(arr)]
    return np.ascontiguousarray(arr)


def ks_2samp(
    data1: Any, data2: Any, alternative: str = "two-sided", method: str = "auto", *, nan_policy: str = "raise"
) -> TestResult:
    """Two-sample Kolmogorov–Smirnov test, as ``scipy.stats.ks_2samp``.

    ``method`` is "auto" (exact when both samples have at most 10 000 values), "exact" or "asymp";
    ties are handled as scipy does (ECDFs evaluated at every observed value). The result also carries
    ``statistic_location`` and ``statistic_sign``.

    >>> import ferrox as fx
    >>> r = fx.drift.ks_2samp([1, 2, 3, 4, 5], [3, 4, 5, 6, 7, 8])
    >>> r.statistic, round(r.pvalue, 6)
    (0.5, 0.357143)
    """
    a, b = _sample(data1, "data1", nan_policy), _sample(data2, "data2", nan_policy)
    d, p, loc, sign = _ferrox.ks_2samp(a, b, alternative, method)
    return TestResult(
        "KstestResult", ("statistic", "pvalue"), statistic=d, pvalue=p, statistic_location=loc, statistic_sign=sign
    )


def cramervonmises_2samp(x: Any, y: Any, method: str = "auto", *, nan_policy: str = "raise") -> TestResult:
    """Two-sample Cramér–von Mises test, as ``scipy.stats.cramervonmises_2samp``.

    ``method`` is "auto" (exact when both samples have at most 20 values), "exact" or "asymptotic".

    >>> import ferrox as fx
    >>> r = fx.drift.cramervonmises_2samp([1.0, 2.0, 3.0, 4.0], [2.5, 5.0, 6.0, 7.0])
    >>> round(r.statistic, 4), round(r.pvalue, 4)
    (0.375, 0.1143)
    """
    a, b = _sample(x, "x", nan_policy), _sample(y, "y", nan_policy)
    t, p = _ferrox.cramervonmises_2samp(a, b, method)
    return TestResult("CramerVonMisesResult", ("statistic", "pvalue"), statistic=t, pvalue=p)


def mannwhitneyu(
    x: Any,
    y: Any,
    use_continuity: bool = True,
    alternative: str = "two-sided",
    method: str = "auto",
    *,
    nan_policy: str = "raise",
) -> TestResult:
    """Mann–Whitney U test, as ``scipy.stats.mannwhitneyu``; the statistic is U of the first sample.

    ``method`` "auto" uses the exact distribution when one sample has at most 8 values and there are
    no ties, the normal approximation (tie-corrected, with ``use_continuity``) otherwise.

    >>> import ferrox as fx
    >>> r = fx.drift.mannwhitneyu([1, 2, 3], [4, 5, 6, 7])
    >>> r.statistic, round(r.pvalue, 6)
    (0.0, 0.057143)
    """
    a, b = _sample(x, "x", nan_policy), _sample(y, "y", nan_policy)
    u, p = _ferrox.mannwhitneyu(a, b, bool(use_continuity), alternative, method)
    return TestResult("MannwhitneyuResult", ("statistic", "pvalue"), statistic=u, pvalue=p)


def anderson_ksamp(samples: Sequence[Any], *, variant: str = "midrank", nan_policy: str = "raise") -> TestResult:
    """k-sample Anderson–Darling test, as ``scipy.stats.anderson_ksamp(samples, variant=...)``.

    ``variant`` is "midrank" (the default, for ties) or "right". As in scipy the p-value is
    interpolated from Scholz & Stephens' table and capped to [0.001, 0.25]; ``pvalue_capped`` says when.

    >>> import numpy as np, ferrox as fx
    >>> rng = np.random.default_rng(1)
    >>> r = fx.drift.anderson_ksamp([rng.normal(size=200), rng.normal(1.0, size=200)])
    >>> r.pvalue, r.pvalue_capped
    (0.001, True)
    """
    if variant not in ("midrank", "right"):
        raise ParameterError(f"variant must be 'midrank' or 'right', got {variant!r}")
    arrays = [_sample(s, f"samples[{i}]", nan_policy) for i, s in enumerate(samples)]
    stat, p, capped = _ferrox.anderson_ksamp(arrays, variant == "midrank")
    return TestResult("Anderson_ksampResult", ("statistic", "pvalue"), statistic=stat, pvalue=p, pvalue_capped=capped)


def chi2_contingency(observed: Any, correction: bool = True) -> TestResult:
    """Pearson's chi-square test of independence, as ``scipy.stats.chi2_contingency``.

    Yates' continuity correction applies when ``correction`` and the table has one degree of freedom.
    Unpacks to ``(statistic, pvalue, dof, expected_freq)``.

    >>> import ferrox as fx
    >>> stat, p, dof, expected = fx.drift.chi2_contingency([[10, 20], [30, 40]])
    >>> dof, round(stat, 6), round(p, 6)
    (1, 0.446429, 0.504036)
    """
    table = np.asarray(observed, dtype=np.float64)
    if table.ndim == 1:
        table = table.reshape(1, -1)
    if table.ndim != 2:
        raise DataError(f"observed must be a 2-D table of counts, got shape {table.shape}")
    stat, p, dof, expected = _ferrox.chi2_contingency(np.ascontiguousarray(table), bool(correction))
    return TestResult(
        "Chi2ContingencyResult",
        ("statistic", "pvalue", "dof", "expected_freq"),
        statistic=stat,
        pvalue=p,
        dof=dof,
        expected_freq=expected,
    )


def _weights(w: Any, name: str) -> np.ndarray | None:
    return None if w is None else _sample(w, name, "raise")


def wasserstein_distance(u_values: Any, v_values: Any, u_weights: Any = None, v_weights: Any = None) -> float:
    """First Wasserstein distance between two 1-D distributions, as ``scipy.stats.wasserstein_distance``.

    >>> import ferrox as fx
    >>> fx.drift.wasserstein_distance([0, 1, 3], [5, 6, 8])
    5.0
    >>> fx.drift.wasserstein_distance([0, 1], [0, 1], [3, 1], [2, 2])
    0.25
    """
    return _ferrox.wasserstein_distance(
        _sample(u_values, "u_values", "raise"),
        _sample(v_values, "v_values", "raise"),
        _weights(u_weights, "u_weights"),
        _weights(v_weights, "v_weights"),
    )


def energy_distance(u_values: Any, v_values: Any, u_weights: Any = None, v_weights: Any = None) -> float:
    """Energy distance between two 1-D distributions, as ``scipy.stats.energy_distance``.

    >>> import ferrox as fx
    >>> round(fx.drift.energy_distance([0, 8], [0, 8], [3, 1], [2, 2]), 6)
    1.0
    """
    return _ferrox.energy_distance(
        _sample(u_values, "u_values", "raise"),
        _sample(v_values, "v_values", "raise"),
        _weights(u_weights, "u_weights"),
        _weights(v_weights, "v_weights"),
    )


def jensenshannon(p: Any, q: Any, base: float | None = None) -> float:
    """Jensen–Shannon distance between two probability vectors, as ``scipy.spatial.distance.jensenshannon``.

    The vectors are normalised to sum to one; ``base`` is the logarithm base (e when None).

    >>> import ferrox as fx
    >>> fx.drift.jensenshannon([1.0, 0.0], [0.0, 1.0], base=2)
    1.0
    """
    return _ferrox.jensenshannon(_sample(p, "p", "raise"), _sample(q, "q", "raise"), base)


def hellinger(p: Any, q: Any) -> float:
    """Hellinger distance between two probability vectors (normalised first), in [0, 1]:
    ``sqrt(1 - sum(sqrt(p * q)))``, equal to ``||sqrt(p) - sqrt(q)||_2 / sqrt(2)``.

    >>> import ferrox as fx
    >>> fx.drift.hellinger([1, 0], [0, 1]), fx.drift.hellinger([1, 2], [2, 4])
    (1.0, 0.0)
    """
    return _ferrox.hellinger(_sample(p, "p", "raise"), _sample(q, "q", "raise"))


def psi(reference: Any, current: Any, bins: int = 10, epsilon: float = 1e-4, *, nan_policy: str = "raise") -> float:
    """Population stability index of ``current`` against ``reference``.

    Bin edges are the reference quantiles at k/bins (k = 1..bins-1, numpy's linear interpolation,
    repeated edges merged); the lowest and highest bins are open-ended overflow bins, so values outside
    the reference range still count. Bins are right-closed. PSI = sum((a - e) * ln(a / e)) over bins,
    where e and a are the reference and current shares; a bin empty in either sample counts with share
    ``epsilon`` (default 1e-4) so the logarithm stays finite. Rules of thumb: < 0.1 stable, 0.1–0.25
    moderate shift, > 0.25 large shift.

    >>> import numpy as np, ferrox as fx
    >>> x = np.arange(1000.0)
    >>> fx.drift.psi(x, x)
    0.0
    >>> bool(fx.drift.psi(x, x + 300) > 0.25)
    True
    """
    return _ferrox.psi(_sample(reference, "reference", nan_policy), _sample(current, "current", nan_policy), int(bins), float(epsilon))


def adjust_pvalues(pvalues: Any, method: str = "bh") -> np.ndarray:
    """Multiple-testing adjusted p-values: "bh" (Benjamini–Hochberg, the default, as
    ``scipy.stats.false_discovery_control``), "holm", "bonferroni" or "none". NaN entries stay NaN and
    do not count towards the family size.

    >>> import ferrox as fx
    >>> fx.drift.adjust_pvalues([0.01, 0.04, 0.03, 0.005], method="holm").round(3).tolist()
    [0.03, 0.06, 0.06, 0.02]
    """
    return _ferrox.adjust_pvalues(_sample(pvalues, "pvalues", "raise"), method)


def _frame(data: Any, what: str) -> tuple[str, Any, list[str] | None]:
    from ._frames import as_table_or_matrix

    try:
        return as_table_or_matrix(data)
    except DataError as e:
        raise DataError(f"{what}: {e}") from e


class DriftReport:
    """Per-column drift findings of :meth:`ReferenceProfile.compare`, and the dataset verdict.

    Each column row holds: ``column``, ``kind``, ``status`` ("ok" or why it could not be tested:
    "missing_column", "kind_mismatch", "no_current_values", "no_reference_values", "infinite_values"),
    ``test``, ``statistic``, ``pvalue``, ``pvalue_corrected``, ``effect_size`` (PSI), ``drift``,
    ``n_reference``, ``n_current``, the missing shares and their change, ``n_inf_reference``,
    ``n_inf_current`` (infinite values are kept and tested, and counted here),
    ``unseen_categories`` and ``n_unseen``. A column that could not be tested counts as drifted.

    >>> import numpy as np, ferrox as fx
    >>> rng = np.random.default_rng(0)
    >>> ref, cur = rng.normal(size=(2000, 2)), rng.normal(size=(1000, 2))
    >>> cur[:, 1] += 1.0
    >>> report = fx.drift.ReferenceProfile.fit(ref).compare(cur)
    >>> report.drifted_columns, report.dataset_drift
    (['Column_1'], True)
    """

    __slots__ = ("_handle", "_dict")

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._dict: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The report as plain Python data (NaN where a number does not apply)."""
        if self._dict is None:
            import json

            d = json.loads(self._handle.to_json())
            nan = float("nan")
            for col in d["columns"]:
                for k, v in col.items():
                    if v is None:
                        col[k] = nan
            self._dict = d
        return self._dict

    @property
    def columns(self) -> list[dict[str, Any]]:
        """One dict per reference column, in reference order."""
        return self.to_dict()["columns"]

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the columns flagged as drifted."""
        return [c["column"] for c in self.columns if c["drift"]]

    @property
    def share_drifted(self) -> float:
        """Share of reference columns flagged."""
        return float(self.to_dict()["share_drifted"])

    @property
    def dataset_drift(self) -> bool:
        """Whether the drifted share reached ``drift_share``."""
        return bool(self.to_dict()["dataset_drift"])

    @property
    def extra_columns(self) -> list[str]:
        """Columns of current data that the reference does not have."""
        return list(self.to_dict()["extra_columns"])

    def to_pandas(self) -> Any:
        """One row per column (histograms left out), sorted by effect size, largest first."""
        import pandas as pd

        rows = [{k: v for k, v in c.items() if k != "histogram"} for c in self.columns]
        df = pd.DataFrame(rows)
        return df.sort_values("effect_size", ascending=False, na_position="first", kind="stable").reset_index(drop=True)

    def to_html(self, path: str | os.PathLike[str] | None = None) -> str:
        """A self-contained HTML page (inline SVG histograms, no network), columns sorted by effect size.

        Written to ``path`` when given; the HTML text is returned either way.
        """
        html = self._handle.to_html()
        if path is not None:
            with open(os.fspath(path), "w", encoding="utf-8") as f:
                f.write(html)
        return html

    def __repr__(self) -> str:
        d = self.to_dict()
        return f"<ferrox DriftReport: {d['n_drifted']} of {len(d['columns'])} columns drifted, dataset_drift={d['dataset_drift']}>"


class ReferenceProfile:
    """What drift checks remember about reference data: fit once, save, merge, compare.

    Per numeric column the sorted values are kept exactly up to ``exact_limit`` values (tests then
    equal scipy's on the same data); beyond it a mergeable quantile sketch whose rank error is at most
    ``(L + 1) / sketch_k`` of the count, L being its number of levels (about log2(n / sketch_k) + 1;
    see ``describe()``). Per categorical column the count of each category; per column rows, missing
    and infinite values. Strings, booleans, pandas ``category`` and Arrow dictionary columns are
    categorical; everything numeric is numeric.

    Prediction drift is the same comparison on model outputs: fit a profile on the reference
    predictions (a column per output, e.g. class probabilities) and compare current ones.

    The test per column: Kolmogorov–Smirnov for numeric columns, chi-square on category counts for
    categorical ones (override per column with ``tests={"col": "cvm"}``; choices: ks, cvm,
    mannwhitneyu, anderson, chi2, psi, wasserstein, jensenshannon). P-values are corrected across
    columns (Benjamini–Hochberg by default). A column drifts when its corrected p-value is below
    ``alpha`` and it shows a PSI of at least ``min_effect`` (0.1): on many rows a test flags differences
    too small to matter, so significance alone flags nothing, at any size (``large_sample=N`` exempts
    samples of at most N rows from the effect rule). Distance tests drift when the distance reaches
    ``min_effect``.

    >>> import numpy as np, ferrox as fx
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(size=(4000, 3))
    >>> profile = fx.drift.ReferenceProfile.fit(ref)
    >>> halves = fx.drift.ReferenceProfile.fit(ref[:2000]).merge(fx.drift.ReferenceProfile.fit(ref[2000:]))
    >>> cur = rng.normal(size=(1000, 3)) + [0.0, 0.0, 0.5]
    >>> profile.compare(cur).drifted_columns == halves.compare(cur).drifted_columns == ['Column_2']
    True
    >>> again = fx.drift.ReferenceProfile.from_bytes(profile.to_bytes())
    >>> again.compare(cur).columns[2]["pvalue"] == profile.compare(cur).columns[2]["pvalue"]
    True
    """

    __slots__ = ("_handle",)

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    @classmethod
    def fit(
        cls,
        data: Any,
        *,
        exact_limit: int = 1_000_000,
        sketch_k: int = 4096,
        num_threads: int = 0,
    ) -> ReferenceProfile:
        """Profiles reference data: a numpy array, pandas/polars DataFrame, pyarrow Table/RecordBatch."""
        if exact_limit < 1 or sketch_k < 8:
            raise ParameterError(f"exact_limit must be >= 1 and sketch_k >= 8, got {exact_limit} and {sketch_k}")
        kind, payload, names = _frame(data, "reference data")
        if kind == "numpy":
            h = _ferrox.ReferenceProfile.fit_numpy(payload, names, int(exact_limit), int(sketch_k), int(num_threads))
        else:
            h = _ferrox.ReferenceProfile.fit_arrow(payload, int(exact_limit), int(sketch_k), int(num_threads))
        return cls(h)

    def compare(
        self,
        current: Any,
        *,
        alpha: float = 0.05,
        correction: str = "bh",
        tests: dict[str, str] | None = None,
        large_sample: int = 0,
        min_effect: float = 0.1,
        psi_bins: int = 10,
        epsilon: float = 1e-4,
        drift_share: float = 0.5,
        hist_bins: int = 20,
        num_threads: int = 0,
    ) -> DriftReport:
        """Tests every reference column against ``current`` and returns a :class:`DriftReport`."""
        kw: dict[str, Any] = dict(
            alpha=float(alpha),
            correction=correction,
            tests=None if tests is None else [(str(k), str(v)) for k, v in tests.items()],
            large_sample=int(large_sample),
            min_effect=float(min_effect),
            psi_bins=int(psi_bins),
            epsilon=float(epsilon),
            drift_share=float(drift_share),
            hist_bins=int(hist_bins),
            num_threads=int(num_threads),
        )
        kind, payload, names = _frame(current, "current data")
        if kind == "numpy":
            return DriftReport(self._handle.compare_numpy(payload, names, **kw))
        return DriftReport(self._handle.compare_arrow(payload, **kw))

    def merge(self, other: ReferenceProfile) -> ReferenceProfile:
        """A profile of both row sets (profiles fitted on partitions of the same columns)."""
        if not isinstance(other, ReferenceProfile):
            raise ParameterError(f"other must be a ReferenceProfile, got {type(other).__name__}")
        return ReferenceProfile(self._handle.merge(other._handle))

    @property
    def columns(self) -> list[str]:
        """Column names."""
        return self._handle.names()

    def describe(self) -> list[dict[str, Any]]:
        """Per column: kind, rows, missing, infinite, values stored, exact or sketched, rank error bound."""
        import json

        return json.loads(self._handle.describe_json())

    def to_bytes(self) -> bytes:
        """The profile as a ferrox artifact (kind "reference_profile", SHA-256 verified on load)."""
        return self._handle.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferenceProfile:
        """A profile from :meth:`to_bytes` output."""
        return cls(_ferrox.ReferenceProfile.from_bytes(bytes(data)))

    def save(self, path: str | os.PathLike[str]) -> ReferenceProfile:
        """Writes the profile to ``path`` (atomically) and returns self."""
        self._handle.save(os.fspath(path))
        return self

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ReferenceProfile:
        """Reads a profile written by :meth:`save`, verifying its SHA-256."""
        return cls(_ferrox.ReferenceProfile.load(os.fspath(path)))

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (ReferenceProfile.from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        return f"<ferrox ReferenceProfile: {len(self.columns)} columns>"


class DomainClassifierResult:
    """What :func:`domain_classifier` found.

    ``auc`` is the held-out ROC AUC of a model telling reference rows from current rows (0.5: it cannot
    tell them apart); ``drift`` says whether it reached ``threshold``; ``top_features`` lists the
    features with the largest share of the model's split gain, as ``(name, share)`` pairs, largest
    first; ``n_reference``/``n_current`` are the rows sampled from each input, ``n_train``/``n_test``
    the rows trained on and scored.

    >>> import numpy as np, ferrox as fx
    >>> rng = np.random.default_rng(0)
    >>> res = fx.drift.domain_classifier(rng.normal(size=(1000, 2)), rng.normal(size=(1000, 2)))
    >>> sorted(res.to_dict())[:3], res.n_reference + res.n_current == res.n_train + res.n_test
    (['auc', 'drift', 'importance'], True)
    """

    __slots__ = ("auc", "drift", "threshold", "n_reference", "n_current", "n_train", "n_test", "top_features")

    def __init__(self, d: dict[str, Any]) -> None:
        self.auc: float = float(d["auc"])
        self.drift: bool = bool(d["drift"])
        self.threshold: float = float(d["threshold"])
        self.n_reference: int = int(d["n_reference"])
        self.n_current: int = int(d["n_current"])
        self.n_train: int = int(d["n_train"])
        self.n_test: int = int(d["n_test"])
        self.top_features: list[tuple[str, float]] = list(zip(d["top_features"], map(float, d["importance"])))

    def to_dict(self) -> dict[str, Any]:
        """The result as plain Python data."""
        return {
            "auc": self.auc,
            "drift": self.drift,
            "importance": [s for _, s in self.top_features],
            "n_current": self.n_current,
            "n_reference": self.n_reference,
            "n_test": self.n_test,
            "n_train": self.n_train,
            "threshold": self.threshold,
            "top_features": [f for f, _ in self.top_features],
        }

    def __repr__(self) -> str:
        top = ", ".join(f"{f} {s:.2f}" for f, s in self.top_features)
        return f"<ferrox DomainClassifierResult: auc={self.auc:.3f}, drift={self.drift}, top features: {top}>"


def domain_classifier(
    reference: Any,
    current: Any,
    *,
    max_rows: int = 50_000,
    test_size: float = 0.3,
    num_boost_round: int = 50,
    num_leaves: int = 15,
    learning_rate: float = 0.1,
    min_data_in_leaf: int = 20,
    seed: int = 0,
    threshold: float = 0.55,
    top_features: int = 5,
    num_threads: int = 0,
) -> DomainClassifierResult:
    """A multivariate drift check: can a model tell current rows from reference rows?

    A small ferrox GBDT (``num_boost_round`` rounds of ``num_leaves``-leaf trees) is trained to label
    reference rows 0 and current rows 1, and scored by ROC AUC on held-out rows. Column-by-column tests
    (:meth:`ReferenceProfile.compare`) miss changes in how columns relate, such as a new correlation
    between two columns whose distributions stay the same; this check sees them. An AUC near 0.5 means
    the samples look alike; at or above ``threshold`` (0.55 by default) they count as drifted, and
    ``top_features`` names the columns the model used most.

    Rows: at most ``max_rows`` from each input (a seeded uniform sample, so the classes stay balanced);
    each sampled row is held out with probability ``test_size``. The sample, the split and the model
    all follow ``seed``: the same inputs give the same AUC whatever ``num_threads``. Both inputs must be
    of one kind (two numpy arrays, or two tables: pandas, polars, pyarrow) and current data must have
    every reference column, of the same kind (numeric or categorical), else :class:`ferrox.DataError`.

    >>> import numpy as np, ferrox as fx
    >>> rng = np.random.default_rng(0)
    >>> ref, cur = rng.normal(size=(4000, 2)), rng.normal(size=(4000, 2))
    >>> cur[:, 1] = 0.9 * cur[:, 0] + 0.44 * cur[:, 1]          # same marginals, new correlation
    >>> res = fx.drift.domain_classifier(ref, cur, seed=1)
    >>> res.drift, res.auc > 0.7
    (True, True)
    >>> fx.drift.domain_classifier(ref, rng.normal(size=(4000, 2)), seed=1).drift
    False
    """
    if isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer)) or max_rows < 10:
        raise ParameterError(f"max_rows must be an integer >= 10, got {max_rows!r}")
    if not 0.0 < float(test_size) < 1.0:
        raise ParameterError(f"test_size must be in (0, 1), got {test_size!r}")
    if not 0.5 < float(threshold) <= 1.0:
        raise ParameterError(f"threshold must be in (0.5, 1], got {threshold!r}")
    for name, v in (("num_boost_round", num_boost_round), ("num_leaves", num_leaves), ("top_features", top_features)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (2 if name == "num_leaves" else 1):
            raise ParameterError(f"{name} must be a positive integer{' >= 2' if name == 'num_leaves' else ''}, got {v!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
    rkind, rdata, rnames = _frame(reference, "reference data")
    ckind, cdata, cnames = _frame(current, "current data")
    if rkind != ckind:
        raise DataError(
            "reference and current data must be of one kind: two numpy arrays or two tables "
            f"(got a {'numpy array' if rkind == 'numpy' else 'table'} and a "
            f"{'numpy array' if ckind == 'numpy' else 'table'})"
        )
    if rkind == "numpy" and list(rnames or []) != list(cnames or []):
        raise DataError(f"reference and current data have different columns: {rnames} vs {cnames}")
    import json

    out = _ferrox.domain_classifier(
        rdata,
        cdata,
        rkind != "numpy",
        rnames,
        max_rows=int(max_rows),
        test_size=float(test_size),
        num_boost_round=int(num_boost_round),
        num_leaves=int(num_leaves),
        learning_rate=float(learning_rate),
        min_data_in_leaf=int(min_data_in_leaf),
        seed=int(seed),
        threshold=float(threshold),
        top_features=int(top_features),
        num_threads=int(num_threads),
    )
    return DomainClassifierResult(json.loads(out))


def _seconds(v: Any, name: str) -> float:
    """A window length as a float: numbers as they are, timedelta-like values in seconds."""
    if hasattr(v, "total_seconds"):
        return float(v.total_seconds())
    if isinstance(v, np.timedelta64):
        return float(v / np.timedelta64(1, "s"))
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ParameterError(f"{name} must be a number or a timedelta for time windows, got {v!r}")
    return float(v)


class WindowFinding:
    """One full window of a :class:`DriftMonitor`: its rows, whether it drifted, whether it alerted.

    ``report`` is the window's :class:`DriftReport`; ``start_time``/``end_time`` bound a time window
    (in the time column's units; NaN for row windows).

    >>> import numpy as np, ferrox as fx
    >>> rng = np.random.default_rng(1)
    >>> mon = fx.drift.DriftMonitor(fx.drift.ReferenceProfile.fit(rng.normal(size=(2000, 1))), window=400)
    >>> f = mon.update(rng.normal(2.0, size=(400, 1)))[0]
    >>> (f.window, f.start_row, f.end_row, f.dataset_drift, f.drifted_columns)
    (0, 0, 400, True, ['Column_0'])
    """

    __slots__ = ("window", "start_row", "end_row", "start_time", "end_time", "alert", "report")

    def __init__(
        self,
        window: int,
        start_row: int,
        end_row: int,
        start_time: float,
        end_time: float,
        alert: bool,
        report: DriftReport,
    ) -> None:
        self.window, self.start_row, self.end_row, self.alert, self.report = window, start_row, end_row, alert, report
        self.start_time, self.end_time = start_time, end_time

    @property
    def dataset_drift(self) -> bool:
        """Whether the window drifted (the report's dataset verdict)."""
        return self.report.dataset_drift

    @property
    def drifted_columns(self) -> list[str]:
        """Columns flagged in this window."""
        return self.report.drifted_columns

    def __repr__(self) -> str:
        return (
            f"<WindowFinding {self.window}: rows {self.start_row}..{self.end_row}, "
            f"drift={self.dataset_drift}, alert={self.alert}>"
        )


class DriftMonitor:
    """Watches a stream of batches for drift against a :class:`ReferenceProfile`.

    Rows accumulate into windows of ``window`` rows; a new window starts every ``step`` rows (tumbling
    when ``step`` equals ``window``, the default; sliding when smaller). Each full window is compared
    with the profile (keyword options as :meth:`ReferenceProfile.compare`). A window counts as drifted
    when its report says ``dataset_drift``; after ``alert_after`` consecutive drifted windows an alert
    fires and the run restarts, and the next ``cooldown`` windows cannot fire another (they are still
    compared, reported and counted). The state (profile, settings, buffered rows, counters) saves and
    restores through the artifact (kind "drift_monitor"), so a restored monitor continues exactly.

    With ``time_column``, windows are by time instead: a window holds the rows whose time lies in
    [start, start + window) and a new one starts every ``step`` (same units as the column; a pandas
    datetime column is read as seconds, and ``window``/``step`` may then be ``timedelta`` values).
    Times must not decrease across batches; windows with no rows (gaps) are skipped. The time column
    itself is not compared and must not be in the profile.

    A batch missing a monitored column, or with a column of the other kind, raises
    :class:`ferrox.DataError` and leaves the state unchanged.

    >>> import numpy as np, ferrox as fx
    >>> rng = np.random.default_rng(0)
    >>> profile = fx.drift.ReferenceProfile.fit(rng.normal(size=(5000, 2)))
    >>> mon = fx.drift.DriftMonitor(profile, window=500, alert_after=2)
    >>> [f.alert for f in mon.update(rng.normal(size=(1000, 2)))]
    [False, False]
    >>> [f.alert for f in mon.update(rng.normal(1.0, size=(1000, 2)))]
    [False, True]
    >>> mon.alerts, mon.windows_seen
    (1, 4)
    """

    __slots__ = ("_handle", "_time_column")

    def __init__(
        self,
        profile: ReferenceProfile,
        window: Any = 10_000,
        step: Any = None,
        alert_after: int = 3,
        cooldown: int = 0,
        *,
        time_column: str | None = None,
        alpha: float = 0.05,
        correction: str = "bh",
        tests: dict[str, str] | None = None,
        large_sample: int = 0,
        min_effect: float = 0.1,
        psi_bins: int = 10,
        epsilon: float = 1e-4,
        drift_share: float = 0.5,
        hist_bins: int = 20,
    ) -> None:
        if not isinstance(profile, ReferenceProfile):
            raise ParameterError(f"profile must be a ferrox.drift.ReferenceProfile, got {type(profile).__name__}")
        checks = [("alert_after", alert_after), ("cooldown", cooldown)]
        if time_column is None:
            checks.append(("window", window))
        for name, v in checks:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ParameterError(f"{name} must be a non-negative integer, got {v!r}")
        step = window if step is None else step
        time_kw: dict[str, Any] = {}
        if time_column is not None:
            width, stride = _seconds(window, "window"), _seconds(step, "step")
            time_kw = dict(time_column=str(time_column), time_width=width, time_step=stride)
            window, step = 1, 1
        self._handle = _ferrox.DriftMonitor(
            profile._handle,
            int(window),
            int(step),
            int(alert_after),
            int(cooldown),
            float(alpha),
            correction,
            None if tests is None else [(str(k), str(v)) for k, v in tests.items()],
            int(large_sample),
            float(min_effect),
            int(psi_bins),
            float(epsilon),
            float(drift_share),
            int(hist_bins),
            **time_kw,
        )
        self._time_column = time_column

    def update(self, batch: Any, *, num_threads: int = 0) -> list[WindowFinding]:
        """Adds a batch (numpy, pandas, polars, pyarrow); returns a finding per window it completed."""
        tc = self._time_column
        if tc is not None and type(batch).__module__.split(".", 1)[0] == "pandas" and tc in getattr(batch, "columns", ()):
            col = batch[tc]
            if col.dtype.kind == "M":  # datetime64: seconds since the epoch
                batch = batch.assign(**{tc: col.to_numpy(dtype="datetime64[ns]").astype(np.int64) / 1e9})
        kind, payload, names = _frame(batch, "batch")
        if kind == "numpy":
            out = self._handle.update_numpy(payload, names, int(num_threads))
        else:
            out = self._handle.update_arrow(payload, int(num_threads))
        return [WindowFinding(w, s, e, t0, t1, a, DriftReport(r)) for w, s, e, t0, t1, a, r in out]

    def _counter(self, name: str) -> int:
        return dict(self._handle.counters())[name]

    @property
    def rows_seen(self) -> int:
        """Rows received since the start."""
        return self._counter("rows_seen")

    @property
    def windows_seen(self) -> int:
        """Windows compared since the start."""
        return self._counter("windows_seen")

    @property
    def consecutive_drifted(self) -> int:
        """Length of the current run of drifted windows."""
        return self._counter("consecutive_drifted")

    @property
    def alerts(self) -> int:
        """Alerts raised since the start."""
        return self._counter("alerts")

    def to_bytes(self) -> bytes:
        """The monitor's state as a ferrox artifact."""
        return self._handle.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> DriftMonitor:
        """A monitor restored from :meth:`to_bytes` output."""
        self = cls.__new__(cls)
        self._handle = _ferrox.DriftMonitor.from_bytes(bytes(data))
        self._time_column = self._handle.time_column()
        return self

    def save(self, path: str | os.PathLike[str]) -> DriftMonitor:
        """Writes the state to ``path`` (atomically) and returns self."""
        self._handle.save(os.fspath(path))
        return self

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DriftMonitor:
        """Reads a state written by :meth:`save`."""
        self = cls.__new__(cls)
        self._handle = _ferrox.DriftMonitor.load(os.fspath(path))
        self._time_column = self._handle.time_column()
        return self

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (DriftMonitor.from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        c = dict(self._handle.counters())
        return f"<ferrox DriftMonitor: window {c['window']}, step {c['step']}, {c['windows_seen']} windows, {c['alerts']} alerts>"
