"""DriftMonitor: windows equal direct comparisons, alert/cooldown rule, state round trips, bad batches."""

import pickle

import numpy as np
import pandas as pd
import pytest

from ferrox import DataError, ParameterError
from ferrox.drift import DriftMonitor, ReferenceProfile


def frame(rng, n, shift=0.0):
    return pd.DataFrame(
        {
            "x": rng.normal(shift, size=n),
            "y": rng.exponential(1 + shift, size=n),
            "c": pd.Categorical(rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2] if shift == 0 else [0.2, 0.3, 0.5])),
        }
    )


def test_sliding_windows_equal_direct_comparisons(rng):
    ref = frame(rng, 3000)
    profile = ReferenceProfile.fit(ref)
    stream = pd.concat([frame(rng, 700), frame(rng, 900, 0.5)], ignore_index=True)
    mon = DriftMonitor(profile, window=400, step=150)
    found = []
    for start in range(0, len(stream), 230):  # batches that do not line up with windows
        found += mon.update(stream.iloc[start : start + 230])
    starts = list(range(0, len(stream) - 400 + 1, 150))
    assert [(f.start_row, f.end_row) for f in found] == [(s, s + 400) for s in starts]
    assert [f.window for f in found] == list(range(len(starts)))
    for f in found:
        direct = profile.compare(stream.iloc[f.start_row : f.end_row].reset_index(drop=True))
        assert [c["pvalue"] for c in f.report.columns] == [c["pvalue"] for c in direct.columns]
        assert f.dataset_drift == direct.dataset_drift
    assert mon.rows_seen == len(stream) and mon.windows_seen == len(starts)


@pytest.mark.parametrize("alert_after,cooldown", [(1, 0), (2, 0), (2, 1), (3, 2)])
def test_alert_rule(rng, alert_after, cooldown):
    profile = ReferenceProfile.fit(frame(rng, 3000))
    mon = DriftMonitor(profile, window=300, alert_after=alert_after, cooldown=cooldown)
    pattern = [0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1]
    batch = pd.concat([frame(rng, 300, 0.8 if d else 0.0) for d in pattern], ignore_index=True)
    found = mon.update(batch)
    drifted = [f.dataset_drift for f in found]
    assert drifted == [bool(d) for d in pattern]
    # the rule, written out
    run, cool, want = 0, 0, []
    for d in drifted:
        run = run + 1 if d else 0
        fire = False
        if cool > 0:
            cool -= 1
        elif run >= alert_after:
            fire, run, cool = True, 0, cooldown
        want.append(fire)
    assert [f.alert for f in found] == want and mon.alerts == sum(want)


def test_state_round_trips_continue_identically(rng, tmp_path):
    profile = ReferenceProfile.fit(frame(rng, 2000))
    mon = DriftMonitor(profile, window=500, step=250, alert_after=2, cooldown=1)
    mon.update(frame(rng, 620, 0.6))
    path = tmp_path / "mon.frx"
    mon.save(path)
    copies = [DriftMonitor.load(path), DriftMonitor.from_bytes(mon.to_bytes()), pickle.loads(pickle.dumps(mon))]
    nxt = frame(rng, 900, 0.6)
    want = [(f.window, f.alert, [c["pvalue"] for c in f.report.columns]) for f in mon.update(nxt)]
    for m in copies:
        got = [(f.window, f.alert, [c["pvalue"] for c in f.report.columns]) for f in m.update(nxt)]
        assert got == want
        assert (m.rows_seen, m.windows_seen, m.alerts, m.consecutive_drifted) == (
            mon.rows_seen,
            mon.windows_seen,
            mon.alerts,
            mon.consecutive_drifted,
        )


def test_bad_batches_raise_and_change_nothing(rng):
    profile = ReferenceProfile.fit(frame(rng, 1000))
    mon = DriftMonitor(profile, window=300)
    mon.update(frame(rng, 100))
    before = mon.to_bytes()
    with pytest.raises(DataError, match="no column 'y'"):
        mon.update(frame(rng, 500).drop(columns=["y"]))
    with pytest.raises(DataError, match="'c' is categorical in the reference but numeric"):
        mon.update(frame(rng, 500).assign(c=1.0))
    assert mon.to_bytes() == before and mon.rows_seen == 100
    with pytest.raises(ParameterError, match="step"):
        DriftMonitor(profile, window=100, step=200)
    with pytest.raises(ParameterError, match="alert_after"):
        DriftMonitor(profile, window=100, alert_after=0)
    with pytest.raises(ParameterError, match="window"):
        DriftMonitor(profile, window=-1)
