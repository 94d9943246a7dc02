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
    assert len(drifted) == len(pattern)
    assert all(f for f, d in zip(drifted, pattern) if d)  # shifted windows are caught
    assert sum(f for f, d in zip(drifted, pattern) if not d) <= 1  # a false alarm is rare (~0.3% a window)
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


def test_time_windows(rng, tmp_path):
    profile = ReferenceProfile.fit(frame(rng, 3000))
    n = 2400
    # one row every 0.5 s with a gap of 100 s after row 1200; drift starts at row 1200
    t = np.arange(n) * 0.5
    t[1200:] += 100.0
    stream = pd.concat([frame(rng, 1200), frame(rng, 1200, 0.7)], ignore_index=True)
    stream["ts"] = pd.to_datetime(t, unit="s")
    mon = DriftMonitor(profile, window=pd.Timedelta(seconds=120), step=pd.Timedelta(seconds=60), time_column="ts")
    found = []
    for start in range(0, n, 333):
        found += mon.update(stream.iloc[start : start + 333])
    secs = (stream["ts"] - pd.Timestamp(0)).dt.total_seconds().to_numpy()
    for f in found:
        inside = np.flatnonzero((secs >= f.start_time) & (secs < f.end_time))
        assert (f.start_row, f.end_row) == (inside[0], inside[-1] + 1)
        assert f.end_time - f.start_time == 120.0
        direct = profile.compare(stream.iloc[inside].drop(columns=["ts"]).reset_index(drop=True))
        assert [c["pvalue"] for c in f.report.columns] == [c["pvalue"] for c in direct.columns]
    starts = [f.start_time for f in found]
    assert all(b - a >= 60.0 for a, b in zip(starts, starts[1:]))  # the gap's empty windows are skipped
    assert found[-1].dataset_drift
    # the state, the time column included, round-trips
    again = DriftMonitor.from_bytes(mon.to_bytes())
    more = frame(rng, 300, 0.7).assign(ts=pd.to_datetime(t[-1] + 100 + np.arange(300) * 0.5, unit="s"))
    assert [f.start_time for f in again.update(more)] == [f.start_time for f in mon.update(more)]
    with pytest.raises(DataError, match="decreases"):
        mon.update(frame(rng, 10).assign(ts=pd.to_datetime(np.zeros(10), unit="s")))
    with pytest.raises(DataError, match="no time column 'ts'"):
        mon.update(frame(rng, 10))
    with pytest.raises(ParameterError, match="step in"):
        DriftMonitor(profile, window=10.0, step=20.0, time_column="ts")
