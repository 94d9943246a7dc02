"""What the bins mean: quantile edges, a missing bin, categories by frequency, reference reuse, width."""

import numpy as np
import pandas as pd
import pytest

import ferrox as fx


def test_few_distinct_values_get_a_bin_each(rng):
    vals = np.sort(rng.choice(rng.normal(size=40), size=40, replace=False))
    x = rng.choice(vals, size=(3_000, 1))
    ds = fx.Dataset(x)
    bins = ds.bins()[:, 0]
    # Each distinct value has its own bin, numbered in value order.
    present = np.unique(x)
    np.testing.assert_array_equal(bins, np.searchsorted(present, x[:, 0]))
    assert ds.num_bins()[0] == len(present) + 1


def test_quantile_bins_are_balanced_and_monotone(rng):
    x = rng.lognormal(sigma=2.0, size=(50_000, 1))
    ds = fx.Dataset(x, max_bin=64)
    bins = ds.bins()[:, 0].astype(int)
    order = np.argsort(x[:, 0], kind="stable")
    assert (np.diff(bins[order]) >= 0).all(), "bins must follow value order"
    counts = np.bincount(bins)
    assert len(counts) <= 63  # max_bin counts the missing bin
    expected = len(x) / len(counts)
    assert counts.min() > expected / 3 and counts.max() < expected * 3, counts
    # Same edges as an exact quantile cut, to within the sample's resolution.
    edges = ds.feature_info(0)["upper_bounds"][:-1]
    ranks = np.searchsorted(np.sort(x[:, 0]), edges) / len(x)
    assert np.abs(np.diff(ranks) - 1 / len(counts)).max() < 0.01


def test_missing_values_get_the_missing_bin_only(rng):
    x = rng.normal(size=(4_000, 3))
    x[rng.random(x.shape) < 0.2] = np.nan
    x[0, 0] = np.inf
    x[1, 0] = -np.inf
    ds = fx.Dataset(x)
    b = ds.bins()
    for j in range(3):
        mb = ds.feature_info(j)["missing_bin"]
        np.testing.assert_array_equal(b[:, j] == mb, np.isnan(x[:, j]))
    assert b[0, 0] == ds.feature_info(0)["missing_bin"] - 1  # +inf: the last value bin
    assert b[1, 0] == 0


def test_categories_beyond_the_budget_share_the_missing_bin(rng):
    n = 5_000
    codes = rng.zipf(1.5, size=n) % 50
    ds = fx.Dataset(codes.reshape(-1, 1).astype(float), categorical_features=[0], max_bin=10)
    info = ds.feature_info(0)
    assert len(info["categories"]) == 9 and info["num_bins"] == 10
    top9 = pd.Series(codes).value_counts().sort_index(kind="stable").sort_values(ascending=False, kind="stable").index[:9]
    assert info["categories"] == list(top9)
    b = ds.bins()[:, 0]
    kept = np.isin(codes, info["categories"])
    assert (b[~kept] == info["missing_bin"]).all()
    assert (b[kept] < info["missing_bin"]).all()


def test_bin_width_follows_max_bin(rng):
    x = rng.normal(size=(20_000, 2))
    small = fx.Dataset(x, max_bin=255)
    assert small.bins().dtype == np.uint8 and max(small.num_bins()) <= 256
    wide = fx.Dataset(x, max_bin=1000)
    assert wide.bins().dtype == np.uint16
    assert max(wide.num_bins()) > 256
    tiny = fx.Dataset(x, max_bin=3)
    assert set(np.unique(tiny.bins()[:, 0])) == {0, 1}
    assert tiny.num_bins() == [3, 3]


def test_reference_reuses_edges(rng):
    x = rng.normal(size=(10_000, 4))
    train = fx.Dataset(x[:8_000], max_bin=31)
    valid = fx.Dataset(x[8_000:], reference=train)
    for j in range(4):
        np.testing.assert_array_equal(valid.feature_info(j)["upper_bounds"], train.feature_info(j)["upper_bounds"])
    ub = train.feature_info(2)["upper_bounds"]
    np.testing.assert_array_equal(valid.bins()[:, 2], np.searchsorted(ub, x[8_000:, 2], side="left"))
    assert valid.get_params()["max_bin"] == 31


def test_seed_changes_the_sample_not_the_rules(rng):
    x = rng.normal(size=(30_000, 1))
    a = fx.Dataset(x, params={"bin_construct_sample_cnt": 2_000, "data_random_seed": 1})
    b = fx.Dataset(x, params={"bin_construct_sample_cnt": 2_000, "data_random_seed": 1})
    c = fx.Dataset(x, params={"bin_construct_sample_cnt": 2_000, "data_random_seed": 2})
    np.testing.assert_array_equal(a.bins(), b.bins())
    assert not np.array_equal(a.feature_info(0)["upper_bounds"], c.feature_info(0)["upper_bounds"])


@pytest.mark.parametrize("alias", ["max_bin", "max_bins"])
def test_lightgbm_param_aliases(rng, alias):
    x = rng.normal(size=(2_000, 1))
    ds = fx.Dataset(x, params={alias: 15, "num_thread": 1, "subsample_for_bin": 1_000})
    assert ds.num_bins()[0] == 15
    assert ds.get_params()["bin_construct_sample_cnt"] == 1_000
