"""The domain classifier (fx.drift.domain_classifier): AUC near 0.5 on one distribution, high on shifted
data, and a change no column-by-column test can see (a new correlation, same marginals) caught."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

import ferrox as fx
from ferrox import DataError, ParameterError


def correlated(rng, n, rho, extra=3):
    """x and y standard normal with correlation rho, plus independent noise columns."""
    x, z = rng.normal(size=n), rng.normal(size=n)
    cols = {"x": x, "y": rho * x + np.sqrt(1 - rho**2) * z}
    for k in range(extra):
        cols[f"n{k}"] = rng.normal(size=n)
    return pd.DataFrame(cols)


def test_same_distribution_gives_auc_near_half(rng):
    ref, cur = correlated(rng, 6000, 0.3), correlated(rng, 5000, 0.3)
    res = fx.drift.domain_classifier(ref, cur, max_rows=5000, seed=int(rng.integers(1 << 31)))
    # about 3000 held-out rows: the AUC of a useless model has a standard deviation near 0.01
    assert abs(res.auc - 0.5) < 0.05, res
    assert not res.drift
    assert (res.n_reference, res.n_current) == (5000, 5000)
    assert res.n_train + res.n_test == 10_000 and 0.25 < res.n_test / 10_000 < 0.35


def test_shifted_column_gives_high_auc_and_is_named(rng):
    ref, cur = correlated(rng, 4000, 0.0), correlated(rng, 4000, 0.0)
    cur["n1"] += 0.5
    res = fx.drift.domain_classifier(ref, cur)
    # two unit-variance normals half a standard deviation apart: the best possible AUC is
    # Phi(0.5 / sqrt(2)) = 0.638; a learned model gets close
    assert 0.58 < res.auc < 0.66 and res.drift, res
    assert res.top_features[0][0] == "n1" and res.top_features[0][1] > 0.3


def test_changed_correlation_invisible_per_column_is_caught(rng):
    ref, cur = correlated(rng, 8000, 0.0), correlated(rng, 8000, 0.9)
    # column by column the samples agree: every marginal is the same standard normal
    for col in ref.columns:
        assert stats.ks_2samp(ref[col], cur[col]).pvalue > 1e-6, col
    assert fx.drift.ReferenceProfile.fit(ref).compare(cur, alpha=1e-6).drifted_columns == []
    res = fx.drift.domain_classifier(ref, cur, max_rows=8000)
    # the best possible AUC (the likelihood ratio of the two bivariate normals as the score) is 0.827;
    # boosted axis-aligned trees on ~11 000 rows get most of the way there
    assert 0.75 < res.auc < 0.85 and res.drift, res
    assert {f for f, _ in res.top_features[:2]} == {"x", "y"}, res


def test_seeded_and_thread_count_free_and_every_input_kind_agrees(rng):
    ref, cur = correlated(rng, 3000, 0.0), correlated(rng, 3000, 0.5)
    a = fx.drift.domain_classifier(ref, cur, seed=7, num_threads=1)
    b = fx.drift.domain_classifier(ref, cur, seed=7, num_threads=2)
    assert a.to_dict() == b.to_dict()
    kw = dict(seed=7, num_threads=2)
    via_numpy = fx.drift.domain_classifier(ref.to_numpy(), cur.to_numpy(), **kw)
    via_arrow = fx.drift.domain_classifier(pa.Table.from_pandas(ref), pa.Table.from_pandas(cur), **kw)
    assert via_numpy.auc == via_arrow.auc == a.auc
    assert [s for _, s in via_numpy.top_features] == [s for _, s in a.top_features]
    assert fx.drift.domain_classifier(ref, cur, seed=8).auc != a.auc


def test_categorical_columns_and_unseen_categories(rng):
    n = 4000
    ref = pd.DataFrame({"v": rng.normal(size=n), "c": pd.Categorical(rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]))})
    cur = pd.DataFrame({"v": rng.normal(size=n), "c": pd.Categorical(rng.choice(["a", "b", "new"], n, p=[0.2, 0.3, 0.5]))})
    res = fx.drift.domain_classifier(ref, cur)
    assert res.auc > 0.8 and res.top_features[0][0] == "c", res


def test_bad_input_is_named(rng):
    ref, cur = correlated(rng, 500, 0.0), correlated(rng, 500, 0.0)
    with pytest.raises(DataError, match="no column 'y'"):
        fx.drift.domain_classifier(ref, cur.drop(columns="y"))
    with pytest.raises(DataError, match="'x' is numeric in the reference data but categorical"):
        fx.drift.domain_classifier(ref, cur.assign(x=pd.Categorical(np.where(cur.x > 0, "p", "q"))))
    with pytest.raises(DataError, match="of one kind"):
        fx.drift.domain_classifier(ref, cur.to_numpy())
    with pytest.raises(DataError, match="too few rows"):
        fx.drift.domain_classifier(ref.iloc[:2], cur.iloc[:2])
    for kw, name in [
        (dict(max_rows=5), "max_rows"),
        (dict(test_size=1.0), "test_size"),
        (dict(threshold=0.4), "threshold"),
        (dict(num_leaves=1), "num_leaves"),
        (dict(num_boost_round=0), "num_boost_round"),
        (dict(seed=-1), "seed"),
    ]:
        with pytest.raises(ParameterError, match=name):
            fx.drift.domain_classifier(ref, cur, **kw)
