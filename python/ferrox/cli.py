"""The ``ferrox`` command line: one subcommand per pipeline step.

Steps: ``validate``, ``train``, ``evaluate``, ``gate``, ``register``, ``promote``, ``drift`` (files in, files
out: Parquet, Arrow or CSV data, ``.frx`` artifacts, JSON reports), so that each is a DVC stage or a Kubeflow
container component as it is; ``serve`` and ``rollback`` for the model server; and ``retrain``, the
monitoring-driven retraining loop against a running server. Each step prints one
JSON line on stdout summing up what it did.

Exit codes:

- 0: done (the check, if the step is one, passed);
- 1: the step failed (the reason on stderr);
- 2: bad arguments (a usage error, a missing or malformed configuration such as ``--thresholds``, or a
  parameter ferrox refuses);
- 3: the check ran and said no: validation found errors, the gate refused the challenger, drift was
  found (``--exit-zero`` reports it and exits 0 instead); for ``retrain``, a run ended without a promotion
  (refused, rolled back or abandoned).

>>> from ferrox.cli import build_parser
>>> args = build_parser().parse_args(["serve", "--model", "flights=model.frx", "--http-port", "0"])
>>> args.command, args.model, args.http_port
('serve', ['flights=model.frx'], 0)
>>> args = build_parser().parse_args(["gate", "--challenger", "new.frx", "--data", "holdout.parquet",
...                                   "--target", "y", "--thresholds", "gate.json", "--out", "verdict.json"])
>>> args.command, args.champion, args.slice
('gate', None, [])
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from .exceptions import DataError, FerroxError, ParameterError

__all__ = ["main", "build_parser"]


def _port(text: str) -> int:
    v = int(text)
    if not -1 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535 (0 = any free port, -1 = off), got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(
        prog="ferrox",
        description="ferrox pipeline steps: files in, files out; one JSON line on stdout per step.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser(
        "serve",
        help="serve models over the Open Inference Protocol (REST and gRPC)",
        description="Serve ferrox models over the Open Inference Protocol (KServe v2), REST and gRPC. "
        "Prints one JSON line {\"event\": \"ready\", \"http\": URL, \"grpc\": ADDRESS} on stdout when ready; "
        "SIGTERM or SIGINT stops it after in-flight requests are answered.",
    )
    s.add_argument("--model", action="append", default=[], metavar="NAME=SOURCE",
                   help="a model to serve: a .frx path or an MLflow URI (models:/name@alias); repeatable")
    s.add_argument("--model-repository", metavar="DIR", help="serve DIR/<name>/<version>/model.frx")
    s.add_argument("--config", metavar="FILE", help="a TOML server configuration (flags override it)")
    s.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    s.add_argument("--http-port", type=_port, default=None, help="REST port (default 8080; 0 = any; -1 = off)")
    s.add_argument("--grpc-port", type=_port, default=None, help="gRPC port (default 8081; 0 = any; -1 = off)")
    s.add_argument("--max-batch-size", type=int, default=None, help="rows per model call (0 = no batching)")
    s.add_argument("--max-queue-delay-us", type=int, default=None, help="longest wait for a batch to fill")
    s.add_argument("--queue-size", type=int, default=None, help="requests per model before answering 429")
    s.add_argument("--threads", type=int, default=None, help="server threads (default: cores, at most 4)")
    s.add_argument("--auth-token-env", metavar="VAR", help="require the bearer token held by this variable")
    s.add_argument("--auth-token-file", metavar="PATH", help="require the bearer token held by this file")
    s.add_argument("--max-body-bytes", type=int, default=None, help="largest request body (413 beyond)")
    s.add_argument("--request-timeout-ms", type=int, default=None, help="default request deadline")
    s.add_argument("--log-requests", type=float, default=None, help="share of requests logged as JSON (0..1)")
    s.add_argument("--no-log-events", action="store_true", help="do not log model events")
    r = sub.add_parser(
        "rollback",
        help="move a registered model's alias back and make the server answer with that version",
        description="Roll registered model NAME back: the alias (default champion) moves to the version before "
        "the last promotion (or --to VERSION), the server at --server serves it (a pointer swap when it is still "
        "loaded), and one request is answered by it. Prints one JSON line with the versions and timings.",
    )
    r.add_argument("name", help="the registered model (and, unless --served-model, the served name)")
    r.add_argument("--to", default=None, help="the version to go to (default: the one before the last promotion)")
    r.add_argument("--alias", default="champion", help="the registry alias (default champion)")
    r.add_argument("--server", default=None, metavar="URL", help="the ferrox server, http://HOST:PORT")
    r.add_argument("--served-model", default=None, help="the model's name on the server (default NAME)")
    r.add_argument("--no-registry", action="store_true", help="swap the server only (--to is its version label)")
    r.add_argument("--auth-token-env", metavar="VAR", help="the server's bearer token is in this variable")
    r.add_argument("--probe", metavar="FILE", help="a JSON inference request to verify with")
    r.add_argument("--audit", metavar="FILE", help="append an audit entry (JSON line) to FILE")
    r.add_argument("--reason", default="", help="why, for the audit entry")
    _add_steps(sub)
    _add_retrain(sub)
    return p


EXIT_CODES = """exit codes:
  0  done (and the check passed)
  1  the step failed (the reason on stderr)
  2  bad arguments (usage, a malformed configuration file, a parameter ferrox refuses)
  3  the check ran and said no: validation errors, gate refused, drift found"""

#: Exit code of a check that ran and said no.
REFUSED = 3

_DATA_HELP = "a data file: Parquet (.parquet/.pq), Arrow IPC (.arrow/.feather) or CSV (.csv); sniffed when it has no extension"


class _Usage(Exception):
    """A bad argument found after parsing (exit code 2)."""


def _step_parser(sub: Any, name: str, help: str, description: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=description + "\n\n" + EXIT_CODES,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _add_steps(sub: Any) -> None:
    v = _step_parser(sub, "validate", "check training (or new) data; exit 3 on errors",
                     "Check data before it trains or scores a model: ferrox.validation.check_training_data (missing "
                     "shares, infinite values, outliers, duplicates, class balance) and, with --schema, the columns "
                     "against a saved schema. Writes a JSON report; exit 3 when an issue of severity error is found.")
    v.add_argument("--data", required=True, help=_DATA_HELP)
    v.add_argument("--target", default=None, help="the label column (left out of the feature checks and the schema)")
    v.add_argument("--schema", default=None, metavar="JSON", help="validate against this schema (from --write-schema)")
    v.add_argument("--write-schema", default=None, metavar="JSON", help="infer the schema of the features and write it")
    v.add_argument("--report", required=True, metavar="JSON", help="where the report goes")
    v.add_argument("--exit-zero", action="store_true", help="exit 0 even when errors are found (the report says ok: false)")

    t = _step_parser(sub, "train", "train a deployable GBDT pipeline (.frx)",
                     "Train a gradient-boosted model on --data and save it as one deployable ferrox.pipeline.Pipeline "
                     "artifact (input schema and reference profile inside). String, boolean and --categorical columns "
                     "are categorical. The task follows the objective in --params (or --task), else the label: "
                     "floats are regression unless they take only two whole values, integers with more than 50 "
                     "distinct values are regression, anything else (strings, booleans, few integers) classification.")
    t.add_argument("--data", required=True, help=_DATA_HELP)
    t.add_argument("--target", required=True, help="the label column")
    t.add_argument("--params", default=None, metavar="JSON", help="GBDT parameters (LightGBM names): a JSON file or the JSON object itself")
    t.add_argument("--num-boost-round", type=int, default=None, help="boosting rounds (default: params, else 100)")
    t.add_argument("--valid", default=None, help="validation data (same columns), for metrics and early stopping")
    t.add_argument("--early-stopping-rounds", type=int, default=None, help="stop after N rounds without gain on --valid")
    t.add_argument("--categorical", nargs="+", default=[], metavar="COL", help="columns to treat as categorical")
    t.add_argument("--task", choices=["auto", "classification", "regression"], default="auto", help="default auto")
    t.add_argument("--out", required=True, metavar="FRX", help="the artifact to write")
    t.add_argument("--metrics", default=None, metavar="JSON", help="write training (and validation) metrics here")

    e = _step_parser(sub, "evaluate", "metrics of a model on labelled data",
                     "Score --model on --data and write its metrics (binary: auc, logloss, accuracy; multiclass: "
                     "logloss, accuracy; regression: rmse, mae, r2), overall and per value of each --slice column.")
    e.add_argument("--model", required=True, metavar="FRX", help="a ferrox artifact (SHA-256 verified on load)")
    e.add_argument("--data", required=True, help=_DATA_HELP)
    e.add_argument("--target", required=True, help="the label column")
    e.add_argument("--out", required=True, metavar="JSON", help="where the metrics go")
    e.add_argument("--slice", nargs="+", action="extend", default=[], metavar="COL", help="also per value of COL")
    e.add_argument("--min-slice-rows", type=int, default=1, help="leave out smaller slices (default 1)")
    e.add_argument("--metric", nargs="+", action="extend", default=None, metavar="NAME", help="only these metrics")

    g = _step_parser(sub, "gate", "may the challenger replace the champion? exit 3 when refused",
                     "Decide whether --challenger may replace --champion (or, without one, whether it meets the "
                     "absolute thresholds): every rule of --thresholds overall and per slice, and the challenger's "
                     "artifact loads, predicts finite values and is fast enough. --thresholds is a JSON object of "
                     "metric -> {threshold, min_absolute_change, min_relative_change, greater_is_better} (MLflow's "
                     "MetricThreshold; the direction defaults to the metric's). Writes the verdict; exit 3 when refused.")
    g.add_argument("--challenger", required=True, metavar="FRX", help="the candidate artifact")
    g.add_argument("--champion", default=None, metavar="FRX", help="the serving model's artifact (none: a first model)")
    g.add_argument("--data", required=True, help="the holdout: " + _DATA_HELP)
    g.add_argument("--target", required=True, help="the label column")
    g.add_argument("--thresholds", required=True, metavar="JSON",
                   help="metric -> MetricThreshold fields: a JSON file or the JSON object itself")
    g.add_argument("--out", required=True, metavar="JSON", help="where the verdict goes")
    g.add_argument("--slice", nargs="+", action="extend", default=[], metavar="COL", help="check each value of COL too")
    g.add_argument("--min-slice-rows", type=int, default=200, help="smallest slice checked (default 200)")
    g.add_argument("--max-latency-ms", type=float, default=None, help="median ms per call of --latency-rows rows")
    g.add_argument("--latency-rows", type=int, default=1000, help="rows per timed call (default 1000)")
    g.add_argument("--exit-zero", action="store_true", help="exit 0 even when refused (the verdict says passed: false)")

    rg = _step_parser(sub, "register", "log an artifact to MLflow and register it",
                      "Log --model as an MLflow model (the ferrox flavor) in a new run and register it as --name; "
                      "with --alias, point that alias at the new version. With --verdict, refuse (exit 3) a model "
                      "whose gate verdict did not pass. Writes name, version, run id and model URI to --out.")
    rg.add_argument("--model", required=True, metavar="FRX", help="the artifact to register")
    rg.add_argument("--name", required=True, help="the registered model name")
    rg.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: MLFLOW_TRACKING_URI)")
    rg.add_argument("--registry-uri", default=None, help="MLflow registry URI (default: the tracking URI)")
    rg.add_argument("--experiment", default=None, help="MLflow experiment name (default: MLflow's default)")
    rg.add_argument("--alias", default=None, help="point this alias at the new version (e.g. challenger)")
    rg.add_argument("--metrics", default=None, metavar="JSON", help="log the numbers of this JSON file as run metrics")
    rg.add_argument("--verdict", default=None, metavar="JSON", help="a gate verdict; refuse when it did not pass")
    rg.add_argument("--out", default=None, metavar="JSON", help="write name, version, run_id and model_uri here")

    pr = _step_parser(sub, "promote", "point a registry alias (champion) at a version",
                      "Point alias --alias (default champion) of registered model NAME at --version, remembering the "
                      "previous version for `ferrox rollback`. NAME and version may come from `ferrox register --out` "
                      "(--registered FILE).")
    pr.add_argument("name", nargs="?", default=None, help="the registered model name")
    pr.add_argument("--version", default=None, help="the version to promote")
    pr.add_argument("--registered", default=None, metavar="JSON", help="the --out file of `ferrox register`")
    pr.add_argument("--alias", default="champion", help="the alias (default champion)")
    pr.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: MLFLOW_TRACKING_URI)")
    pr.add_argument("--registry-uri", default=None, help="MLflow registry URI (default: the tracking URI)")
    pr.add_argument("--verdict", default=None, metavar="JSON", help="a gate verdict; refuse when it did not pass")
    pr.add_argument("--out", default=None, metavar="JSON", help="write name, alias, version, previous here")

    d = _step_parser(sub, "drift", "compare new data with the reference; exit 3 on drift",
                     "Compare --current with --reference: a data file (profiled here), a saved ReferenceProfile, or "
                     "a pipeline artifact carrying one (train stores it). Per-column tests with corrected p-values "
                     "and effect sizes (ferrox.drift.ReferenceProfile.compare). Writes a JSON report (and HTML); "
                     "exit 3 when the data set drifted (or any column, with --any-column).")
    d.add_argument("--reference", required=True, help="reference data, a profile or a .frx pipeline with a profile")
    d.add_argument("--current", required=True, help="the new data: " + _DATA_HELP)
    d.add_argument("--out", required=True, metavar="JSON", help="where the report goes")
    d.add_argument("--html", default=None, metavar="HTML", help="also write the HTML report")
    d.add_argument("--target", default=None, help="a column of --current to leave out (e.g. the label)")
    d.add_argument("--alpha", type=float, default=0.05, help="significance level after correction (default 0.05)")
    d.add_argument("--min-effect", type=float, default=0.1, help="smallest PSI that counts (default 0.1)")
    d.add_argument("--drift-share", type=float, default=0.5, help="share of drifted columns that is data set drift")
    d.add_argument("--any-column", action="store_true", help="exit 3 when any column drifted")
    d.add_argument("--write-profile", default=None, metavar="FILE", help="save the reference profile here")
    d.add_argument("--exit-zero", action="store_true", help="exit 0 even when drift is found")


# -- files ----------------------------------------------------------------------------------------------

def _format(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext in (".parquet", ".pq"):
        return "parquet"
    if ext in (".arrow", ".feather", ".ipc"):
        return "arrow"
    if ext in (".csv", ".txt"):
        return "csv"
    if ext == ".tsv":
        return "tsv"
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return "csv"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1") or head[:4] == b"\xff\xff\xff\xff":
        return "arrow"
    return "csv"


def read_table(path: str | os.PathLike[str]) -> Any:
    """A data file as a pandas DataFrame: Parquet, Arrow IPC (file or stream) or CSV, by extension, else
    by its first bytes (paths without an extension, as Kubeflow hands out, work too).

    >>> import os, tempfile, pandas as pd
    >>> path = os.path.join(tempfile.mkdtemp(), "data")        # no extension: sniffed
    >>> pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"]}).to_parquet(path)
    >>> read_table(path).dtypes.astype(str).tolist()
    ['float64', 'object']
    """
    import pandas as pd

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    kind = _format(path)
    if kind == "parquet":
        frame = pd.read_parquet(path)
    elif kind == "arrow":
        import pyarrow as pa
        import pyarrow.ipc as ipc

        try:
            table = ipc.open_file(path).read_all()
        except pa.ArrowInvalid:
            table = ipc.open_stream(path).read_all()
        frame = table.to_pandas()
    else:
        frame = pd.read_csv(path, sep="\t" if kind == "tsv" else ",")
    # Strings as plain Python objects: one representation whatever the file (pandas 3 reads "str").
    strings = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c].dtype) and frame[c].dtype != object]
    if strings:
        frame = frame.astype({c: object for c in strings})
    return frame


def _read_json(path: str, what: str) -> Any:
    """A JSON file, or (when the argument is itself a JSON object: Kubeflow parameters) the object."""
    if path.lstrip().startswith("{"):
        try:
            return json.loads(path)
        except ValueError as e:
            raise _Usage(f"{what}: not valid JSON ({e})") from None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise _Usage(f"{what} {path}: no such file") from None
    except ValueError as e:
        raise _Usage(f"{what} {path}: not valid JSON ({e})") from None


def _write_json(path: str, data: Any) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(_jsonable(data), f, indent=2, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)


def _jsonable(v: Any) -> Any:
    """Plain JSON: numpy scalars to numbers, NaN and infinities to None."""
    import math

    import numpy as np

    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    return v


def _ensure_dir(path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def _split(frame: Any, target: str, what: str) -> tuple[Any, Any]:
    if target not in frame.columns:
        raise _Usage(f"{what}: no column {target!r} (columns: {list(map(str, frame.columns))[:20]})")
    return frame.drop(columns=[target]), frame[target]


def _summary(step: str, **fields: Any) -> dict[str, Any]:
    return {"step": step, **fields}


# -- steps ----------------------------------------------------------------------------------------------

def _validate_step(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    from . import validation

    frame = read_table(args.data)
    if args.target is not None and args.target not in frame.columns:
        raise _Usage(f"--target: no column {args.target!r} in {args.data}")
    features = frame.drop(columns=[args.target]) if args.target is not None else frame
    training = validation.check_training_data(frame, target=args.target)
    report: dict[str, Any] = {"data": args.data, "rows": int(len(frame)), "training": training.to_dict()}
    issues = list(training.issues)
    if args.schema:
        schema = validation.Schema.from_json(json.dumps(_read_json(args.schema, "--schema")))
        names = {c["name"] for c in schema.columns}
        checked = frame if args.target is not None and args.target in names else features
        result = schema.validate(checked)
        report["schema"] = result.to_dict()
        issues += [dict(i, source="schema") for i in result.issues]
    if args.write_schema:
        schema_out = validation.Schema.infer(features)
        _write_json(args.write_schema, schema_out.to_dict())
    errors = [i for i in issues if i["severity"] == "error"]
    report["ok"] = not errors
    report["n_errors"] = len(errors)
    report["n_warnings"] = len(issues) - len(errors)
    _write_json(args.report, report)
    code = 0 if report["ok"] or args.exit_zero else REFUSED
    return code, _summary("validate", ok=report["ok"], errors=len(errors), warnings=len(issues) - len(errors),
                          checks=sorted({i["check"] for i in errors}), report=args.report)


_CLASSIFICATION_OBJECTIVES = ("binary", "multiclass", "multiclassova", "softmax", "ova", "cross_entropy", "xentropy")


def _prepare_features(frame: Any, categorical: Sequence[str]) -> tuple[Any, list[str]]:
    """(frame with string columns as pandas ``category``, the numeric columns to treat as categorical).

    Numeric --categorical columns stay numbers (the trees split on their codes as categories), so the
    served model takes the same values as the file holds; booleans are categorical as they are."""
    import pandas as pd

    missing = [c for c in categorical if c not in frame.columns]
    if missing:
        raise _Usage(f"--categorical: no column(s) {missing}")
    strings = [c for c in frame.columns if frame[c].dtype == object]
    numeric = [c for c in categorical if c not in strings and not isinstance(frame[c].dtype, pd.CategoricalDtype)
               and not pd.api.types.is_bool_dtype(frame[c])]
    if strings:
        frame = frame.astype({c: "category" for c in strings})
    return frame, numeric


def _is_classification(y: Any, params: dict[str, Any], task: str) -> bool:
    import numpy as np

    if task != "auto":
        return task == "classification"
    objective = params.get("objective", params.get("application", params.get("app")))
    if isinstance(objective, str):
        return objective.lower() in _CLASSIFICATION_OBJECTIVES
    values = y.to_numpy() if hasattr(y, "to_numpy") else np.asarray(y)
    if values.dtype.kind in "fc":
        finite = values[np.isfinite(values)]
        return bool(np.all(finite == np.round(finite))) and len(np.unique(finite)) <= 2
    if values.dtype.kind in "iu":
        return len(np.unique(values)) <= 50
    return True


def _train_step(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    import time

    import ferrox as fx
    from .gate import evaluate_metrics
    from .pipeline import Pipeline

    params: dict[str, Any] = {}
    if args.params:
        params = _read_json(args.params, "--params")
        if not isinstance(params, dict):
            raise _Usage(f"--params {args.params}: expected a JSON object of parameters")
    rounds = args.num_boost_round
    for alias in ("num_boost_round", "num_iterations", "num_iteration", "n_iter", "num_tree", "num_trees",
                  "num_round", "num_rounds", "n_estimators"):
        if alias in params:
            value = params.pop(alias)
            rounds = rounds if rounds is not None else value
    rounds = 100 if rounds is None else rounds
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise _Usage(f"--num-boost-round must be a positive integer, got {rounds!r}")
    frame = read_table(args.data)
    X, y = _split(frame, args.target, f"--data {args.data}")
    X, numeric_categorical = _prepare_features(X, args.categorical)
    classify = _is_classification(y, params, args.task)
    if not classify and isinstance(params.get("objective"), str) and params["objective"].lower() in _CLASSIFICATION_OBJECTIVES:
        raise _Usage(f"--task regression contradicts objective {params['objective']!r}")
    params.setdefault("verbosity", -1)
    estimator = (fx.GBDTClassifier if classify else fx.GBDTRegressor)(n_estimators=int(rounds), **params)
    fit_params: dict[str, Any] = {}
    if numeric_categorical:
        fit_params["categorical_feature"] = numeric_categorical
    valid = None
    if args.valid:
        vframe = read_table(args.valid)
        Xv, yv = _split(vframe, args.target, f"--valid {args.valid}")
        valid = (_prepare_features(Xv, args.categorical)[0], yv)
        fit_params["eval_set"] = [valid]
        fit_params["eval_names"] = ["valid"]
        if args.early_stopping_rounds:
            fit_params["callbacks"] = [fx.early_stopping(int(args.early_stopping_rounds), verbose=False)]
    elif args.early_stopping_rounds:
        raise _Usage("--early-stopping-rounds needs --valid")
    t0 = time.perf_counter()
    pipe = Pipeline([("model", estimator)], reference_profile=True).fit(X, y, **fit_params)
    seconds = time.perf_counter() - t0
    _ensure_dir(args.out)
    pipe.save(args.out)
    model = pipe.named_steps["model"]
    import pandas as pd

    cats = [str(c) for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype) or c in numeric_categorical
            or pd.api.types.is_bool_dtype(X[c])]
    out: dict[str, Any] = {"task": "classification" if classify else "regression", "rows": int(len(X)),
                           "features": int(X.shape[1]), "categorical": cats, "rounds": int(model.n_estimators_),
                           "best_iteration": int(model.best_iteration_), "train_seconds": round(seconds, 3)}
    metrics = {"train": evaluate_metrics(pipe, X, y)}
    if valid is not None:
        metrics["valid"] = evaluate_metrics(pipe, valid[0], valid[1])
    if args.metrics:
        _write_json(args.metrics, dict(out, **metrics))
    return 0, _summary("train", model=args.out, **out, metrics=_jsonable(metrics))


def _load_model(path: str) -> Any:
    from .pipeline import Pipeline

    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path}")
    return Pipeline.load(path)


def _evaluate_step(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    from .gate import _Scored, _metric_names, _slice_values

    model = _load_model(args.model)
    frame = read_table(args.data)
    X, y = _split(frame, args.target, f"--data {args.data}")
    for col in args.slice:
        if col not in frame.columns:
            raise _Usage(f"--slice: no column {col!r} in {args.data}")
    scored = _Scored(model, X, y)
    names = _metric_names(scored.task, args.metric)
    overall = scored.metrics(names)
    report: dict[str, Any] = {"task": scored.task, "rows": int(len(frame)), **overall}
    if args.slice:
        slices: dict[str, Any] = {}
        for col in args.slice:
            values, codes, counts = _slice_values(frame[col].to_numpy())
            per: dict[str, Any] = {}
            for k, value in enumerate(values.tolist()):
                if counts[k] >= args.min_slice_rows:
                    per[str(value)] = {"rows": int(counts[k]), **scored.metrics(names, codes == k)}
            slices[col] = per
        report["slices"] = slices
    _write_json(args.out, report)
    return 0, _summary("evaluate", model=args.model, task=scored.task, rows=int(len(frame)),
                       metrics=_jsonable(overall), out=args.out)


def _thresholds(path: str) -> dict[str, Any]:
    from .gate import MetricThreshold

    raw = _read_json(path, "--thresholds")
    if not isinstance(raw, dict) or not raw:
        raise _Usage(f"--thresholds {path}: expected a JSON object of metric -> MetricThreshold fields")
    try:
        return {str(k): MetricThreshold.from_dict(v, metric=str(k)) for k, v in raw.items()}
    except ParameterError as e:
        raise _Usage(f"--thresholds {path}: {e}") from None


def _gate_step(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    from .gate import Gate

    thresholds = _thresholds(args.thresholds)
    try:
        gate = Gate(thresholds, slices=args.slice, min_slice_rows=args.min_slice_rows,
                    max_latency_ms=args.max_latency_ms, latency_rows=args.latency_rows)
    except ParameterError as e:
        raise _Usage(str(e)) from None
    frame = read_table(args.data)
    X, y = _split(frame, args.target, f"--data {args.data}")
    for col in args.slice:
        if col not in frame.columns:
            raise _Usage(f"--slice: no column {col!r} in {args.data}")
    champion = None if args.champion is None else _load_model(args.champion)
    # The challenger goes as its path: loading it (SHA-256 verified) is one of the gate's checks.
    verdict = gate.evaluate(args.challenger, champion, X, y)
    verdict.info.update({"challenger": args.challenger, "champion": args.champion})
    _ensure_dir(args.out)
    verdict.to_json(args.out)
    failed = verdict.failed
    code = 0 if verdict.passed or args.exit_zero else REFUSED
    return code, _summary("gate", passed=verdict.passed, reasons=verdict.reasons, checks=len(verdict.checks),
                          failed=len(failed), metrics=verdict.metrics, out=args.out)


def _mlflow_setup(tracking_uri: str | None, registry_uri: str | None) -> Any:
    import mlflow

    if tracking_uri:
        if tracking_uri.startswith("file:") or "://" not in tracking_uri and not tracking_uri.startswith(("sqlite:", "http")):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        mlflow.set_tracking_uri(tracking_uri)
    if registry_uri:
        mlflow.set_registry_uri(registry_uri)
    return mlflow


def _verdict_passed(path: str | None) -> bool | None:
    if path is None:
        return None
    data = _read_json(path, "--verdict")
    if not isinstance(data, dict) or "passed" not in data:
        raise _Usage(f"--verdict {path}: not a gate verdict (no 'passed')")
    return bool(data["passed"])


def _register_step(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    if _verdict_passed(args.verdict) is False:
        print(f"ferrox register: the verdict {args.verdict} did not pass; {args.model} is not registered", file=sys.stderr)
        return REFUSED, _summary("register", registered=False, reason="gate_refused", verdict=args.verdict)
    metrics: dict[str, float] = {}
    if args.metrics:
        raw = _read_json(args.metrics, "--metrics")
        metrics = _flat_numbers(raw)
    model = _load_model(args.model)
    mlflow = _mlflow_setup(args.tracking_uri, args.registry_uri)
    import warnings

    from . import mlflow as fxmlflow

    if args.experiment:
        mlflow.set_experiment(args.experiment)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mlflow.start_run(run_name=f"register-{args.name}") as run:
            mlflow.set_tag("ferrox.artifact", os.path.abspath(args.model))
            if metrics:
                mlflow.log_metrics(metrics)
            if args.verdict:
                mlflow.log_artifact(args.verdict)
            info = fxmlflow.log_model(model, name="model", registered_model_name=args.name)
    version = str(info.registered_model_version)
    out: dict[str, Any] = {"name": args.name, "version": version, "run_id": run.info.run_id,
                           "model_uri": f"models:/{args.name}/{version}", "tracking_uri": mlflow.get_tracking_uri()}
    if args.alias:
        fxmlflow.promote(args.name, version, alias=args.alias)
        out["alias"] = args.alias
    if args.out:
        _write_json(args.out, out)
    return 0, _summary("register", registered=True, **out)


def _flat_numbers(data: Any, prefix: str = "") -> dict[str, float]:
    """The numbers of a nested JSON object as MLflow metrics (keys joined with '.')."""
    out: dict[str, float] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(_flat_numbers(v, f"{prefix}{k}."))
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        import math

        if math.isfinite(float(data)):
            out[prefix[:-1]] = float(data)
    return out


def _promote_step(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    name, version = args.name, args.version
    if args.registered:
        reg = _read_json(args.registered, "--registered")
        if not isinstance(reg, dict) or "name" not in reg or "version" not in reg:
            raise _Usage(f"--registered {args.registered}: expected the --out file of `ferrox register`")
        name = name or reg["name"]
        version = version or reg["version"]
    if not name or version is None:
        raise _Usage("promote needs NAME and --version (or --registered FILE)")
    if _verdict_passed(args.verdict) is False:
        print(f"ferrox promote: the verdict {args.verdict} did not pass; {name} v{version} is not promoted", file=sys.stderr)
        return REFUSED, _summary("promote", promoted=False, reason="gate_refused", name=name, version=str(version))
    _mlflow_setup(args.tracking_uri, args.registry_uri)
    from mlflow import MlflowClient

    from . import mlflow as fxmlflow

    client = MlflowClient()
    try:
        previous = str(client.get_model_version_by_alias(name, args.alias).version)
    except Exception:  # the alias points nowhere yet
        previous = None
    moved = fxmlflow.promote(name, version, alias=args.alias, client=client)
    out = {"name": name, "alias": args.alias, "version": moved, "previous": previous}
    if args.out:
        _write_json(args.out, out)
    return 0, _summary("promote", promoted=True, **out)


def _reference_profile(path: str) -> tuple[Any, str]:
    """(profile, where it came from) of --reference: a data file, a saved profile or a pipeline."""
    from .drift import ReferenceProfile
    from .exceptions import ModelIntegrityError

    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if _format(path) in ("parquet", "arrow") or os.path.splitext(path)[1].lower() in (".csv", ".tsv", ".txt"):
        return ReferenceProfile.fit(read_table(path)), "data"
    try:
        return ReferenceProfile.load(path), "profile"
    except (ModelIntegrityError, DataError, ValueError):
        pass
    try:
        profile = _load_model(path).reference_profile_
    except (ModelIntegrityError, DataError, ValueError):
        return ReferenceProfile.fit(read_table(path)), "data"
    if profile is None:
        raise _Usage(f"--reference {path}: the model carries no reference profile (train with reference_profile=True)")
    return profile, "model"


def _drift_step(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    profile, source = _reference_profile(args.reference)
    current = read_table(args.current)
    if args.target is not None:
        if args.target not in current.columns:
            raise _Usage(f"--target: no column {args.target!r} in {args.current}")
        current = current.drop(columns=[args.target])
    extra = [c for c in current.columns if c not in set(profile.columns)]
    if extra and source != "data":
        current = current.drop(columns=extra)  # e.g. the label, which a model's profile does not hold
    report = profile.compare(current, alpha=args.alpha, min_effect=args.min_effect, drift_share=args.drift_share)
    data = report.to_dict()
    for col in data.get("columns", []):
        col.pop("histogram", None)
    data["reference"] = {"path": args.reference, "kind": source}
    data["current"] = {"path": args.current, "rows": int(len(current))}
    _write_json(args.out, data)
    if args.html:
        _ensure_dir(args.html)
        report.to_html(args.html)
    if args.write_profile:
        _ensure_dir(args.write_profile)
        profile.save(args.write_profile)
    drifted = list(report.drifted_columns)
    found = bool(drifted) if args.any_column else bool(report.dataset_drift)
    code = REFUSED if found and not args.exit_zero else 0
    return code, _summary("drift", drift=found, dataset_drift=bool(report.dataset_drift), drifted_columns=drifted,
                          share_drifted=float(report.share_drifted), out=args.out)


_STEPS = {
    "validate": _validate_step,
    "train": _train_step,
    "evaluate": _evaluate_step,
    "gate": _gate_step,
    "register": _register_step,
    "promote": _promote_step,
    "drift": _drift_step,
}


def _run_step(args: argparse.Namespace) -> int:
    """Runs a pipeline step: the exit code, one JSON line on stdout, the error (if any) on stderr."""
    step = _STEPS[args.command]
    try:
        code, summary = step(args)
    except _Usage as e:
        code, summary = 2, _summary(args.command, error=str(e))
        print(f"ferrox {args.command}: {e}", file=sys.stderr)
    except ParameterError as e:
        code, summary = 2, _summary(args.command, error=str(e))
        print(f"ferrox {args.command}: {e}", file=sys.stderr)
    except Exception as e:  # the step failed: a data, model, file or registry error
        code, summary = 1, _summary(args.command, error=f"{type(e).__name__}: {e}")
        print(f"ferrox {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
    summary["exit_code"] = code
    print(json.dumps(_jsonable(summary)), flush=True)
    return code


def _serve(args: argparse.Namespace) -> int:
    from .serving import Server

    models = {}
    for spec in args.model:
        name, sep, source = spec.partition("=")
        if not sep or not name or not source:
            print(f"ferrox serve: --model takes NAME=SOURCE, got {spec!r}", file=sys.stderr)
            return 2
        models[name] = source

    configured: dict = {}
    if args.config:
        import tomllib

        try:
            with open(args.config, "rb") as f:
                configured = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as e:
            print(f"ferrox serve: --config {args.config}: {e}", file=sys.stderr)
            return 2

    def port(v: int | None, key: str, default: int) -> int | None:
        if v is None:
            return configured.get(key, default)
        return None if v == -1 else v

    srv = Server(
        models,
        model_repository=args.model_repository,
        config=args.config,
        host=args.host or "127.0.0.1",
        port=port(args.http_port, "http_port", 8080),
        grpc_port=port(args.grpc_port, "grpc_port", 8081),
        max_batch_size=args.max_batch_size,
        max_queue_delay_us=args.max_queue_delay_us,
        queue_size=args.queue_size,
        threads=args.threads,
        auth_token_env=args.auth_token_env,
        auth_token_file=args.auth_token_file,
        max_body_bytes=args.max_body_bytes,
        request_timeout_ms=args.request_timeout_ms,
        log_requests=args.log_requests,
        log_events=not args.no_log_events,
    )
    srv.start()
    try:
        ready = {
            "event": "ready",
            "http": srv.url if srv._handle.http_address else None,
            "grpc": srv.grpc_address if srv._handle.grpc_address else None,
            "models": srv.models(),
        }
        print(json.dumps(ready), flush=True)
        try:
            srv.wait()
        except KeyboardInterrupt:
            pass
    finally:
        srv.stop()
    print(json.dumps({"event": "stopped"}), flush=True)
    return 0


def _rollback(args: argparse.Namespace) -> int:
    import os

    from .retrain import rollback

    token = None
    if args.auth_token_env:
        token = os.environ.get(args.auth_token_env)
        if token is None:
            print(f"ferrox rollback: the environment variable {args.auth_token_env} is not set", file=sys.stderr)
            return 2
    probe = None
    if args.probe:
        with open(args.probe, encoding="utf-8") as f:
            probe = json.load(f)
    answered: list[float | None] = []
    r = rollback(args.name, to=args.to, alias=args.alias, server=args.server, served_model=args.served_model,
                 registry=not args.no_registry, token=token, probe=probe, audit=args.audit, reason=args.reason,
                 on_verified=lambda: answered.append(_process_age()))
    out = r.to_dict()
    if answered and answered[0] is not None:
        # from the start of this process (the command) to the old version's verified answer
        out["timings"]["command_to_answer"] = answered[0]
    print(json.dumps(out), flush=True)
    return 0


def _process_age() -> float | None:
    """Seconds since this process started (Linux; None elsewhere)."""
    import os

    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _add_retrain(sub: Any) -> None:
    r = sub.add_parser(
        "retrain", help="watch a served model and retrain, gate, canary and promote it when its monitoring says so",
        description="The retraining loop (ferrox.retrain.RetrainLoop) from a TOML configuration: each turn reads the "
        "server's monitoring of the model, decides (drift or performance alert, schedule, new labels; cooldown, "
        "evidence guard) and runs a retraining: gather, validate, train, gate, register, shadow, canary, promote. "
        "The state lives in state_dir, so a killed loop resumes its run. Prints one JSON line per turn.\n\n"
        + EXIT_CODES + "\n  (retrain: 3 when a run ended refused, rolled back or abandoned)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--config", required=True, metavar="FILE", help="the loop's TOML configuration")
    r.add_argument("--once", action="store_true", help="one turn, then exit (default: loop every --interval seconds)")
    r.add_argument("--interval", type=float, default=60.0, help="seconds between turns (default 60)")
    r.add_argument("--max-turns", type=int, default=None, help="stop after this many turns")
    r.add_argument("--force", action="store_true", help="run a retraining now, whatever the policy says")
    r.add_argument("--dry-run", action="store_true", help="say what would be done and do nothing")


def _retrain(args: argparse.Namespace) -> int:
    import time
    import tomllib

    from .retrain import RetrainLoop

    try:
        with open(args.config, "rb") as f:
            config = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        print(f"ferrox retrain: --config {args.config}: {e}", file=sys.stderr)
        return 2
    try:
        loop = RetrainLoop.from_config(config, dry_run=args.dry_run, log=lambda line: print(line, file=sys.stderr))
    except ParameterError as e:
        print(f"ferrox retrain: {e}", file=sys.stderr)
        return 2
    code, turns = 0, 0
    while True:
        out = loop.step(force=args.force and turns == 0)
        print(json.dumps(out, default=str), flush=True)
        if out.get("outcome") not in (None, "promoted"):
            code = REFUSED
        turns += 1
        if args.once or args.dry_run or (args.max_turns is not None and turns >= args.max_turns):
            return code
        time.sleep(max(0.0, args.interval))


def main(argv: Sequence[str] | None = None) -> int:
    """Runs a subcommand; returns the exit code (0 done, 1 failed, 2 bad arguments, 3 the check said no)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2): argparse has printed it
        return e.code if isinstance(e.code, int) else 2
    if args.command in _STEPS:
        return _run_step(args)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "rollback":
            return _rollback(args)
        if args.command == "retrain":
            return _retrain(args)
    except (FerroxError, OSError, ValueError) as e:
        print(f"ferrox {args.command}: {e}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
