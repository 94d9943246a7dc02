"""The model server: the Open Inference Protocol (KServe v2) over REST and gRPC, served by Rust.

:class:`Server` starts the Rust server inside this process (a tokio runtime of its own threads) and
stops it; requests never take the GIL. The same server runs from the shell as ``ferrox serve``.

Models are ``.frx`` artifacts (a :class:`ferrox.pipeline.Pipeline`, a :class:`ferrox.Booster`, a linear
model), MLflow URIs (``models:/name@alias``, ``models:/name/3``, ``runs:/...``) resolved through
:mod:`ferrox.mlflow`, or fitted ferrox objects. Every artifact is SHA-256 verified when loaded; one that
fails verification is refused and the serving version keeps serving.

>>> import json, urllib.request, numpy as np, ferrox as fx
>>> X = np.random.default_rng(0).normal(size=(500, 3))
>>> booster = fx.train({"objective": "regression", "verbosity": -1}, fx.Dataset(X, label=X[:, 0]), 10)
>>> with fx.serving.Server({"demo": booster}, port=0, grpc_port=None) as srv:
...     body = {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64", "data": X[:2].tolist()}]}
...     req = urllib.request.Request(srv.url + "/v2/models/demo/infer", json.dumps(body).encode())
...     out = json.load(urllib.request.urlopen(req))["outputs"][0]
>>> out["name"], out["shape"], bool(np.array_equal(out["data"], booster.predict(X[:2])))
('predict', [2], True)
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import _ferrox
from .exceptions import ParameterError

__all__ = ["Server", "LoadResult", "resolve_model_source", "assign"]

_MLFLOW_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")


class LoadResult:
    """What a load or rollback did: ``version`` now serving, ``previous``, ``sha256``, ``seconds``."""

    __slots__ = ("name", "version", "previous", "sha256", "seconds")

    def __init__(self, name: str, version: str, previous: str | None, sha256: str, seconds: float):
        self.name, self.version, self.previous, self.sha256, self.seconds = name, version, previous, sha256, seconds

    def __repr__(self) -> str:
        return (f"LoadResult(name={self.name!r}, version={self.version!r}, previous={self.previous!r}, "
                f"seconds={self.seconds:.6f})")


def resolve_model_source(source: Any, workdir: str | None = None) -> str:
    """A local artifact path for ``source``: a path, an MLflow URI (downloaded and checked through
    :func:`ferrox.mlflow.artifact_path`), or a fitted ferrox object with ``to_bytes`` (written to
    ``workdir``).

    >>> resolve_model_source("model.frx")
    'model.frx'
    """
    if isinstance(source, os.PathLike):
        return os.fspath(source)
    if isinstance(source, str):
        if source.startswith(_MLFLOW_SCHEMES):
            from . import mlflow as fxmlflow

            return fxmlflow.artifact_path(source)
        return source
    if callable(getattr(source, "to_bytes", None)):
        workdir = workdir or tempfile.mkdtemp(prefix="ferrox-serve-")
        fd, path = tempfile.mkstemp(suffix=".frx", dir=workdir)
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(source.to_bytes()))
        return path
    raise ParameterError(
        f"a model source must be a path, an MLflow URI or a fitted ferrox object, got {type(source).__name__}"
    )


def assign(unit: str, salt: str, weights: Sequence[float]) -> tuple[float, int]:
    """The variant the server assigns ``unit`` to in an experiment with this salt and these weights:
    ``(bucket, variant index)``. The bucket is the top 53 bits of ``fmix64(FNV-1a 64(salt + "/" + unit))``
    over 2**53 (fmix64: MurmurHash3's 64-bit finaliser); the variant is the first whose cumulative weight share exceeds it. Analysis recomputes
    assignments with it.

    >>> bucket, variant = assign("user-42", "checkout-test", [1.0, 1.0])
    >>> 0.0 <= bucket < 1.0 and variant == (0 if bucket < 0.5 else 1)
    True
    """
    return tuple(_ferrox.assign_variant(str(salt), str(unit), [float(w) for w in weights]))  # type: ignore[return-value]


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise ParameterError(f"feedback: {type(value).__name__} values cannot be sent; use numbers, booleans or strings")


def _port(value: int | None, what: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
        raise ParameterError(f"{what} must be a port number in [0, 65535] (0 = any free port) or None, got {value!r}")
    return value


class Server:
    """The ferrox model server, running in this process until :meth:`stop` (or the ``with`` block ends).

    ``models`` maps names to sources (see :func:`resolve_model_source`); ``model_repository`` is a folder
    laid out as ``DIR/<name>/<version>/model.frx``. ``port`` / ``grpc_port``: 0 picks a free port, None turns
    that protocol off. ``host`` defaults to loopback. Batching: ``max_batch_size`` rows per model call (0
    or 1 = off), ``max_queue_delay_us``; ``queue_size`` requests per model before 429. ``auth_token`` (or
    ``auth_token_env`` / ``auth_token_file``) requires ``Authorization: Bearer <token>`` on every endpoint but
    health. ``config`` is a TOML file whose settings the keyword arguments override.

    ``event_log`` (a folder, or a dict of the ``[event_log]`` settings: ``path``, ``max_file_bytes``,
    ``flush_rows``, ``flush_interval_ms``, ``queue``, ``fsync``) turns on the experiments' event log, read
    back with :func:`ferrox.experiment.read_events`. When a canary's variants were loaded from the MLflow
    registry (``models:/...``), its promotion moves the registered model's ``promote_alias`` to the
    challenger's version (with :func:`ferrox.mlflow.promote`, so :func:`ferrox.mlflow.rollback` can undo it),
    and a rollback tags the challenger's version ``ferrox.canary=rolled_back`` with the reason.

    ``monitoring`` (True, or a dict of the ``[monitoring]`` settings: ``sample_rate`` 0.1, ``window`` 10 000
    rows or ``window_seconds`` (tumbling windows by time), ``alert_after`` 3, ``cooldown``, ``alpha``, ``min_effect``, ``min_drifted_columns`` 1, ``queue``,
    ``webhook``, ``performance_window`` 1000, ``performance_metric``, ``max_performance_drop`` 0.05,
    ``outcome_capacity`` 100 000)
    compares sampled served rows with the reference profile each artifact carries
    (``Pipeline(..., reference_profile=True)``), window by window, in Rust, per served version. When the
    artifact also carries a performance reference (:meth:`ferrox.pipeline.Pipeline.fit_monitoring`), each
    window also gets the drift of the model's scores and an estimate of its performance without labels
    (confidence-based for binary classifiers, direct loss estimation for regressors); outcomes sent with
    :meth:`feedback` (``{"id": request id, "label": value}``) are joined to the sampled requests and give the
    realised performance every ``performance_window`` labelled rows. A window whose watched metric
    (``performance_metric``: roc_auc for classifiers, mae for regressors) is worse than on reference data by
    more than ``max_performance_drop`` (relative) counts as degraded; ``alert_after`` in a row raise a
    ``performance_alert``. Results go to ``/metrics`` (``ferrox_feature_drift{model,version,feature}``,
    ``ferrox_prediction_drift``, ``ferrox_estimated_performance{model,version,metric}``,
    ``ferrox_realised_performance``, ``ferrox_drift_alerts_total``, ``ferrox_performance_alerts_total``, ...),
    to :meth:`monitoring` and to ``GET /v2/models/{name}/monitoring``. ``on_drift_alert`` is called (on a
    thread of its own) with each alert, drift or performance (its ``event`` says which).
    """

    def __init__(
        self,
        models: Mapping[str, Any] | None = None,
        *,
        model_repository: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        port: int | None = 0,
        grpc_port: int | None = 0,
        config: str | os.PathLike[str] | None = None,
        max_batch_size: int | None = None,
        max_queue_delay_us: int | None = None,
        queue_size: int | None = None,
        threads: int | None = None,
        auth_token: str | None = None,
        auth_token_env: str | None = None,
        auth_token_file: str | os.PathLike[str] | None = None,
        max_body_bytes: int | None = None,
        request_timeout_ms: int | None = None,
        log_requests: float | None = None,
        log_events: bool | None = None,
        keep_versions: int | None = None,
        event_log: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        promote_alias: str = "champion",
        monitoring: Mapping[str, Any] | bool | None = None,
        on_drift_alert: Callable[[dict[str, Any]], None] | None = None,
    ):
        self._settings: dict[str, Any] = {}
        if config is not None:
            import tomllib

            with open(config, "rb") as f:
                self._settings.update(tomllib.load(f))
        self._settings["host"] = host
        self._settings["http_port"] = _port(port, "port")
        self._settings["grpc_port"] = _port(grpc_port, "grpc_port")
        batching = dict(self._settings.get("batching", {}))
        for key, value in (("max_batch_size", max_batch_size), ("max_queue_delay_us", max_queue_delay_us),
                           ("queue_size", queue_size)):
            if value is not None:
                if not isinstance(value, int) or value < 0:
                    raise ParameterError(f"{key} must be a non-negative integer, got {value!r}")
                batching[key] = value
        if batching:
            self._settings["batching"] = batching
        for key, value in (("threads", threads), ("auth_token", auth_token), ("auth_token_env", auth_token_env),
                           ("auth_token_file", os.fspath(auth_token_file) if auth_token_file else None),
                           ("max_body_bytes", max_body_bytes), ("request_timeout_ms", request_timeout_ms),
                           ("log_requests", log_requests), ("log_events", log_events),
                           ("keep_versions", keep_versions),
                           ("model_repository", os.fspath(model_repository) if model_repository else None)):
            if value is not None:
                self._settings[key] = value
        if event_log is not None:
            if isinstance(event_log, Mapping):
                self._settings["event_log"] = {k: (os.fspath(v) if k == "path" else v) for k, v in event_log.items()}
            else:
                self._settings["event_log"] = {"path": os.fspath(event_log)}
        if monitoring:
            self._settings["monitoring"] = {} if monitoring is True else dict(monitoring)
        if on_drift_alert is not None and not callable(on_drift_alert):
            raise ParameterError("on_drift_alert must be a callable taking the alert (a dict)")
        self._on_drift_alert = on_drift_alert
        self._seen_alerts: set[tuple[str, float, str]] = set()
        self._settings.setdefault("log_events", False)
        self._models = dict(models or {})
        self._workdir: str | None = None
        self._handle: Any = None
        self._promote_alias = str(promote_alias)
        self._registry: dict[str, tuple[str, str]] = {}
        self._seen_transitions: set[tuple[str, float, str]] = set()
        self._watch_stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.registry_events: list[dict[str, Any]] = []
        """Registry changes made for canary transitions: ``{"experiment", "event", "model", "version", "alias"}``."""

    # -- lifecycle --
    def start(self) -> Server:
        """Loads every model and starts listening; returns ``self``. Raises on a refused artifact."""
        if self._handle is not None:
            raise ParameterError("the server is already running")
        self._workdir = tempfile.mkdtemp(prefix="ferrox-serve-")
        settings = dict(self._settings)
        for name, src in self._models.items():
            self._remember_registry(str(name), src)
        # A model from the registry is served under its registry version, so that a rollback names it.
        settings["models"] = list(settings.get("models", [])) + [
            {"name": str(name), "path": resolve_model_source(src, self._workdir),
             **({"version": self._registry[str(name)][1]} if str(name) in self._registry else {})}
            for name, src in self._models.items()
        ]
        self._handle = _ferrox.ServerHandle.start(json.dumps(settings, default=os.fspath))
        self._watch_stop.clear()
        if any(e.get("kind") == "canary" for e in settings.get("experiments", [])) or self._on_drift_alert is not None:
            self._ensure_watcher(force=self._on_drift_alert is not None)
        return self

    def stop(self, grace: float = 5.0) -> None:
        """Stops accepting requests, answers the ones in flight (at most ``grace`` seconds), shuts down."""
        if self._handle is not None:
            self._watch_stop.set()
            if self._watcher is not None:
                self._watcher.join(timeout=5)
                self._watcher = None
            self._handle.stop(grace)
            self._handle = None

    # -- registry-backed canaries --
    def _remember_registry(self, name: str, source: Any) -> None:
        if not (isinstance(source, str) and source.startswith("models:/")):
            return
        from mlflow import MlflowClient

        ref = source[len("models:/"):].rstrip("/")
        client = MlflowClient()
        if "@" in ref:
            reg, alias = ref.split("@", 1)
            mv = client.get_model_version_by_alias(reg, alias)
            self._registry[name] = (reg, str(mv.version))
        elif "/" in ref:
            reg, version = ref.rsplit("/", 1)
            self._registry[name] = (reg, version)

    def _watch(self) -> None:
        while not self._watch_stop.wait(0.2):
            try:
                self._sync_registry()
            except Exception as e:  # the watcher must outlive a registry hiccup; the error is kept
                self.registry_events.append({"error": repr(e)})
            if self._on_drift_alert is not None:
                self._deliver_alerts()

    def _deliver_alerts(self) -> None:
        handle = self._handle
        if handle is None:
            return
        for name, _serving, _versions in handle.models():
            try:
                status = json.loads(handle.monitoring(name))
            except Exception:  # no profile, or the model went away meanwhile
                continue
            for alert in status.get("recent_alerts", []):
                key = (name, float(alert["ts"]), str(alert.get("event")))
                if key not in self._seen_alerts:
                    self._seen_alerts.add(key)
                    try:
                        self._on_drift_alert(alert)  # type: ignore[misc]
                    except Exception as e:  # a failing callback must not stop the watcher
                        self.registry_events.append({"error": f"on_drift_alert: {e!r}"})

    def _sync_registry(self) -> None:
        handle = self._handle
        if handle is None:
            return
        for exp in json.loads(handle.experiments()):
            for t in exp.get("transitions", []):
                key = (exp["name"], float(t["ts"]), str(t["event"]))
                if key in self._seen_transitions or t["event"] not in ("canary_promoted", "canary_rolled_back"):
                    continue
                self._seen_transitions.add(key)
                challenger = self._registry.get(str(t.get("challenger")))
                if challenger is None:
                    continue
                from mlflow import MlflowClient

                from . import mlflow as fxmlflow

                client = MlflowClient()
                reg, version = challenger
                # The tags go first: whoever waits for the alias or the state tag finds the rest written.
                if t["event"] == "canary_promoted":
                    client.set_model_version_tag(reg, version, "ferrox.canary", "promoted")
                    fxmlflow.promote(reg, version, alias=self._promote_alias, client=client)
                    alias: str | None = self._promote_alias
                else:
                    client.set_model_version_tag(reg, version, "ferrox.canary_reason", str(t.get("reason", ""))[:5000])
                    client.set_model_version_tag(reg, version, "ferrox.canary", "rolled_back")
                    alias = None
                self.registry_events.append({"experiment": exp["name"], "event": t["event"], "model": reg,
                                             "version": version, "alias": alias})

    def _ensure_watcher(self, force: bool = False) -> None:
        if (self._registry or force) and self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="ferrox-registry", daemon=True)
            self._watcher.start()

    def wait(self) -> None:
        """Blocks until SIGINT/SIGTERM or until :meth:`stop` is called from another thread."""
        self._require().wait()

    def __enter__(self) -> Server:
        return self.start() if self._handle is None else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _require(self) -> Any:
        if self._handle is None:
            raise ParameterError("the server is not running; call start() or use it as a context manager")
        return self._handle

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._handle is not None and bool(self._handle.running)

    @property
    def url(self) -> str:
        """The REST base URL, e.g. ``http://127.0.0.1:8080``."""
        addr = self._require().http_address
        if addr is None:
            raise ParameterError("this server has no REST listener (port=None)")
        return f"http://{addr[0]}:{addr[1]}"

    @property
    def grpc_address(self) -> str:
        """The gRPC address, ``host:port``."""
        addr = self._require().grpc_address
        if addr is None:
            raise ParameterError("this server has no gRPC listener (grpc_port=None)")
        return f"{addr[0]}:{addr[1]}"

    # -- models --
    def load(self, name: str, source: Any, version: str | None = None) -> LoadResult:
        """Loads ``source`` as a new version of ``name`` (verify, warm up, swap atomically; the old version
        finishes its requests). A refused artifact raises and leaves the serving version serving. A model
        from the MLflow registry (``models:/...``) is labelled with its registry version unless ``version``
        is given."""
        path = resolve_model_source(source, self._workdir)
        self._remember_registry(name, source)
        if version is None and isinstance(source, str) and source.startswith("models:/") and name in self._registry:
            version = self._registry[name][1]
        return LoadResult(name, *self._require().load(name, path, version))

    def rollback(self, name: str, to: str | None = None) -> LoadResult:
        """Serves the previously loaded version again (or version ``to``) — a pointer swap, no reload."""
        return LoadResult(name, *self._require().activate(name, to))

    def unload(self, name: str) -> None:
        """Stops serving ``name``."""
        self._require().unload(name)

    def models(self) -> dict[str, dict[str, Any]]:
        """``{name: {"serving": version, "versions": [...]}}`` for every loaded model."""
        return {n: {"serving": s, "versions": list(v)} for n, s, v in self._require().models()}

    # -- experiments --
    def start_experiment(
        self,
        name: str,
        endpoint: str,
        variants: Mapping[str, str] | Sequence[tuple[str, str, float]],
        *,
        kind: str = "split",
        unit: str = "unit_id",
        salt: str | None = None,
        shadows: Sequence[str] = (),
        shadow_queue: int = 1024,
        canary: Mapping[str, Any] | None = None,
        bandit: Mapping[str, Any] | None = None,
        feedback_window: int = 1_000_000,
    ) -> dict[str, Any]:
        """Routes requests for ``endpoint`` to ``variants``: ``{variant: model}`` (equal weights) or
        ``[(variant, model, weight), ...]``. Units are sticky by the request parameter ``unit`` (or the
        ``x-ferrox-unit`` header), hashed with ``salt`` (default: ``name``) as :func:`assign` documents;
        the ``x-ferrox-variant`` header forces a variant. ``shadows`` are models that score the same rows
        off the request path, compared online with the live answer. Returns the experiment's status.

        ``kind="canary"``: two variants, champion then challenger; ``canary`` holds the ramp and the
        guardrails (``steps`` in percent, ``min_units``, ``min_seconds``, ``check_interval_ms``,
        ``max_error_rate_delta``, ``max_p99_ratio``, ``p99_slack_ms``, ``max_ks``, ``metric``,
        ``direction``, ``min_outcomes``, ``alpha``, ``tuning``, ``sticky_capacity``).
        ``kind="bandit"``: ``bandit`` holds ``policy`` ("thompson", "top_two", "epsilon_greedy", "ucb1"),
        ``reward`` ("bernoulli", "gaussian"), ``metric``, ``epsilon``, ``floor``, ``top_two_beta``,
        ``draws``, ``state_path``, ``seed``. Outcomes arrive through :meth:`feedback`."""
        if kind not in ("split", "canary", "bandit"):
            raise ParameterError(f"kind must be 'split', 'canary' or 'bandit', got {kind!r}")
        if isinstance(variants, Mapping):
            arms = [{"name": str(k), "model": str(m), "weight": 1.0} for k, m in variants.items()]
        else:
            arms = [{"name": str(k), "model": str(m), "weight": float(w)} for k, m, w in variants]
        config: dict[str, Any] = {"name": name, "endpoint": endpoint, "unit": unit, "salt": salt, "variants": arms,
                                  "shadows": list(shadows), "shadow_queue": int(shadow_queue), "kind": kind,
                                  "feedback_window": int(feedback_window)}
        if canary is not None:
            config["canary"] = dict(canary)
        if bandit is not None:
            b = dict(bandit)
            if b.get("state_path") is not None:
                b["state_path"] = os.fspath(b["state_path"])
            config["bandit"] = b
        status = dict(json.loads(self._require().create_experiment(json.dumps(config))))
        if kind == "canary":
            self._ensure_watcher()
        return status

    def stop_experiment(self, name: str) -> dict[str, Any]:
        """Stops experiment ``name`` (its endpoint answers as a plain model name again); returns its
        final status."""
        return dict(json.loads(self._require().stop_experiment(name)))

    def experiments(self) -> list[dict[str, Any]]:
        """The status of every running experiment: requests, share, errors and p99 per variant, outcomes,
        canary phase and transitions, bandit probabilities, shadow comparisons (agreement, mean absolute
        difference, KS distance), shadow work dropped."""
        return list(json.loads(self._require().experiments()))

    def experiment(self, name: str) -> dict[str, Any]:
        """The status of one running experiment (see :meth:`experiments`)."""
        for e in self.experiments():
            if e["name"] == name:
                return e
        raise ParameterError(f"no experiment named {name!r} is running")

    def feedback(self, items: Sequence[Mapping[str, Any]], experiment: str | None = None) -> dict[str, Any]:
        """Joins outcomes to what was served, as ``POST /v2/feedback`` does: each item names a request
        ``id`` (the response's id) or a ``unit``, and carries ``reward``, ``label`` and/or ``metrics``
        (``{name: number}``). Returns ``{"accepted", "unmatched", "errors"}``."""
        return dict(json.loads(self._require().feedback(json.dumps(list(items), default=_plain), experiment)))

    def monitoring(self, name: str) -> dict[str, Any]:
        """The monitoring status of model ``name``'s serving version: rows monitored and dropped, windows,
        alerts, the last window's columns (PSI effect size, corrected p-value, drift, missing share, unseen
        categories), the prediction drift and estimated performance of the last window, the realised
        performance of the last labelled window, the reference performance and the recent alerts."""
        return dict(json.loads(self._require().monitoring(name)))

    def flush_events(self) -> None:
        """Writes every queued experiment event to the event log now."""
        self._require().flush_events()

    def metrics(self) -> str:
        """The Prometheus text exposition (the same as ``GET /metrics``)."""
        return str(self._require().metrics_text())

    def __repr__(self) -> str:
        if self._handle is None:
            return "Server(stopped)"
        parts = []
        if self._handle.http_address:
            parts.append(self.url)
        if self._handle.grpc_address:
            parts.append("grpc " + self.grpc_address)
        return f"Server({', '.join(parts)})"
