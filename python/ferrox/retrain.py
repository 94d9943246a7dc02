"""The production loop: watch a served model, decide to retrain, gate the challenger, roll it out, roll back.

* :class:`Policy` turns what the server's monitoring reports (drift and performance alerts, labelled rows)
  and the time into a :class:`Decision` with a reason code.
* :class:`RetrainLoop` runs a retraining when the policy says so: gather the training window, validate it,
  train, gate the challenger against the champion on held-out recent rows (:class:`Gate`, with MLflow's
  :class:`MetricThreshold` semantics), register it, score it in shadow, ramp it as a canary with guardrails,
  then promote it (the server swapped, the registry alias moved) or let the canary roll it back. Every step
  is written to a state file before and after it runs, so a loop killed at any step resumes where it
  stopped and does no step twice; ``dry_run=True`` says what it would do and does nothing.
* :func:`rollback`, the one-step return to the previous model (``ferrox rollback NAME``).

A rollback moves the registry alias back (MLflow, :func:`ferrox.mlflow.rollback`), swaps the running
server to that version (a pointer swap when the version is still loaded, else a verified load of the
registry's artifact), checks that the server now answers with it, and appends an audit entry. It is
timed step by step. The same runs from the shell as ``ferrox rollback NAME``.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import http.client
import json
import os
import time
from typing import Any, Callable
from urllib.parse import urlsplit

from .exceptions import FerroxError, ParameterError

from .gate import Gate, MetricThreshold, Verdict

__all__ = ["RollbackResult", "rollback", "Policy", "Decision", "RetrainLoop", "Gate", "MetricThreshold", "Verdict"]


class RollbackResult:
    """What :func:`rollback` did: ``model``, ``alias``, ``from_version`` → ``to_version``, whether the server
    answered with it (``verified``), and the seconds of each step (``timings``: swap, verify, serving = from
    the call to the verified answer, registry, total)."""

    __slots__ = ("model", "alias", "from_version", "to_version", "served_model", "verified", "timings", "how")

    def __init__(self, model: str, alias: str, from_version: str | None, to_version: str, served_model: str | None,
                 verified: bool, timings: dict[str, float], how: str):
        self.model, self.alias, self.from_version, self.to_version = model, alias, from_version, to_version
        self.served_model, self.verified, self.timings, self.how = served_model, verified, timings, how

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain dict (what the command prints)."""
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self) -> str:
        return (f"RollbackResult(model={self.model!r}, {self.from_version!r} -> {self.to_version!r}, "
                f"verified={self.verified}, total={self.timings.get('total', float('nan')):.3f} s)")


def _request(url: str, method: str, path: str, body: Any = None, token: str | None = None,
             timeout: float = 30.0) -> tuple[int, Any]:
    u = urlsplit(url if "://" in url else "http://" + url)
    if u.scheme != "http" or not u.hostname:
        raise ParameterError(f"server: expected http://HOST:PORT, got {url!r}")
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, None if body is None else json.dumps(body), headers)
        r = conn.getresponse()
        data = r.read()
        try:
            return r.status, json.loads(data) if data else None
        except ValueError:
            return r.status, data.decode(errors="replace")
    except OSError as e:
        raise FerroxError(f"server {url}: {e}") from e
    finally:
        conn.close()


def _probe_body(meta: dict[str, Any]) -> dict[str, Any] | None:
    """A one-row request of zeros built from the model metadata, when every input is numeric or boolean."""
    inputs = meta.get("inputs") or []
    if not inputs:
        return None
    zero = {"BOOL": False, "BYTES": None}
    out = []
    for i in inputs:
        dt = i.get("datatype", "FP64")
        if dt == "BYTES":
            return None
        shape = [1 if d == -1 else d for d in i.get("shape", [-1])]
        width = 1
        for d in shape[1:]:
            width *= d
        value = zero.get(dt, 0)
        data = [value] * width if len(shape) > 1 else [value]
        out.append({"name": i["name"], "shape": shape, "datatype": dt, "data": data})
    return {"id": "ferrox-rollback-probe", "inputs": out}


def rollback(
    model: str,
    *,
    to: str | int | None = None,
    alias: str = "champion",
    server: str | None = None,
    served_model: str | None = None,
    registry: bool = True,
    token: str | None = None,
    probe: dict[str, Any] | None = None,
    audit: str | os.PathLike[str] | None = None,
    reason: str = "",
    on_verified: Callable[[], None] | None = None,
) -> RollbackResult:
    """Rolls registered model ``model`` back: the server at ``server`` (``http://host:port``) serves the
    version it served before (or version ``to``) under the name ``served_model`` (default: ``model``), one
    request is answered by it, and then the registry's ``alias`` moves to that version (the server goes
    first, so the old version answers before the registry client is even imported; ``on_verified`` is
    called at that moment). Without a server only the alias moves (to the version before the last
    promotion, or to ``to``). ``registry=False`` skips
    the registry and swaps the server only (``to`` is then the server's version label). ``probe`` is the
    request to verify with (default: zeros from the model metadata when its inputs are numeric; otherwise
    the server's repository index must list the version as serving). ``audit`` is a JSON-lines file that
    gets one entry (when, who, from, to, why, timings).

    Raises :class:`ferrox.FerroxError` when a step fails; the registry is not moved back again then, and
    the audit entry records the failure.

    >>> import os, tempfile, mlflow, numpy as np, ferrox as fx
    >>> os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    >>> mlflow.set_tracking_uri("file://" + os.path.join(tempfile.mkdtemp(), "mlruns"))
    >>> X = np.random.default_rng(8).normal(size=(300, 2))
    >>> for rounds in (3, 9):
    ...     with mlflow.start_run():
    ...         _ = fx.mlflow.log_model(fx.train({"verbosity": -1}, fx.Dataset(X, label=X[:, 0]), rounds),
    ...                                 name="model", registered_model_name="flights")
    >>> _ = fx.mlflow.promote("flights", 1); _ = fx.mlflow.promote("flights", 2)
    >>> with fx.serving.Server({"flights": "models:/flights@champion"}, port=0, grpc_port=None) as srv:
    ...     r = rollback("flights", server=srv.url)
    >>> r.from_version, r.to_version, r.verified, r.timings["total"] < 1.0
    ('2', '1', True, True)
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    served = served_model or model
    entry: dict[str, Any] = {"when": _dt.datetime.now(_dt.timezone.utc).isoformat(), "who": getpass.getuser(),
                             "model": model, "alias": alias, "served_model": served, "server": server, "reason": reason}
    from_version: str | None = None
    target: str | None = None if to is None else str(to)
    how = "registry only"
    verified = False
    try:
        if server is None and not registry:
            raise ParameterError("nothing to roll back: give a server, or use the registry")
        if server is not None:
            # The server first: the old version answers before the registry (a slow import) is touched.
            body = {"parameters": {"rollback": True, **({} if target is None else {"version": target})}}
            status, out = _request(server, "POST", f"/v2/repository/models/{served}/load", body, token)
            how = "pointer swap to a loaded version"
            if status == 404 and registry:
                # Not loaded any more (or nothing loaded before it): the registry names the version, and
                # the server loads its artifact (verified).
                from mlflow import MlflowClient

                from . import mlflow as fxmlflow

                if target is None:
                    history = fxmlflow._history(MlflowClient(), model, alias)
                    if not history:
                        raise ParameterError(f"alias {alias!r} of model {model!r} has no earlier version to roll back to")
                    target = str(history[-1])
                path = fxmlflow.artifact_path(f"models:/{model}/{target}")
                status, out = _request(server, "POST", f"/v2/repository/models/{served}/load",
                                       {"parameters": {"path": os.path.abspath(path), "version": target}}, token)
                how = "verified load of the registry's artifact"
            if status != 200:
                what = "the version before the serving one" if target is None else f"version {target!r}"
                raise FerroxError(f"the server refused to serve {what} of {served!r} ({status}): {out}")
            from_version = out.get("previous")
            target = str(out["version"])
            timings["swap"] = time.perf_counter() - t0
            t2 = time.perf_counter()
            req = probe
            if req is None:
                status, meta = _request(server, "GET", f"/v2/models/{served}", None, token)
                req = _probe_body(meta) if status == 200 else None
            if req is not None:
                status, ans = _request(server, "POST", f"/v2/models/{served}/infer", req, token)
                if status != 200:
                    raise FerroxError(f"the probe request to {served!r} failed ({status}): {ans}")
                if str(ans.get("model_version")) != target:
                    raise FerroxError(f"{served!r} answered with version {ans.get('model_version')!r}, not {target!r}")
            else:
                status, index = _request(server, "POST", "/v2/repository/index", {"ready": True}, token)
                serving = [e for e in (index or []) if e.get("name") == served and e.get("state") == "READY"]
                if not serving or str(serving[0].get("version")) != target:
                    raise FerroxError(f"the server's index does not show version {target!r} of {served!r} serving: {serving}")
            verified = True
            timings["verify"] = time.perf_counter() - t2
            timings["serving"] = time.perf_counter() - t0
            if on_verified is not None:
                on_verified()
        if registry:
            t3 = time.perf_counter()
            from mlflow import MlflowClient

            from . import mlflow as fxmlflow

            client = MlflowClient()
            try:
                before = str(client.get_model_version_by_alias(model, alias).version)
            except Exception:  # the alias points nowhere yet
                before = None
            if server is None:
                from_version = before
            history = fxmlflow._history(client, model, alias)
            if target is None or (history and history[-1] == target):
                moved = fxmlflow.rollback(model, alias=alias, client=client)
            else:
                moved = fxmlflow.promote(model, target, alias=alias, client=client)
            if target is not None and moved != target:
                raise FerroxError(f"the registry moved {alias!r} to version {moved}, not {target}")
            target = moved
            timings["registry"] = time.perf_counter() - t3
        timings["total"] = time.perf_counter() - t0
        assert target is not None
        entry.update({"from": from_version, "to": target, "verified": verified, "how": how, "timings": timings, "ok": True})
        return RollbackResult(model, alias, from_version, target, served if server else None, verified, timings, how)
    except Exception as e:
        timings["total"] = time.perf_counter() - t0
        entry.update({"from": from_version, "to": target, "ok": False, "error": str(e), "timings": timings})
        raise
    finally:
        if audit is not None:
            with open(audit, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")


# --------------------------------------------------------------------------------------------------
# The loop

#: Reason codes of a decision to run, and of a decision not to.
RUN_REASONS = ("forced", "drift_alert", "performance_alert", "schedule", "new_labels", "resume")
HOLD_REASONS = ("run_in_progress", "cooldown", "insufficient_evidence", "no_trigger")


class Decision:
    """What :meth:`Policy.decide` concluded: ``run`` (bool), ``reason`` (a code of :data:`RUN_REASONS` or
    :data:`HOLD_REASONS`), ``detail`` (words) and ``evidence`` (the figures it looked at)."""

    __slots__ = ("run", "reason", "detail", "evidence")

    def __init__(self, run: bool, reason: str, detail: str = "", evidence: dict[str, Any] | None = None):
        self.run, self.reason, self.detail, self.evidence = bool(run), reason, detail, dict(evidence or {})

    def to_dict(self) -> dict[str, Any]:
        """The decision as plain data."""
        return {"run": self.run, "reason": self.reason, "detail": self.detail, "evidence": self.evidence}

    def __repr__(self) -> str:
        return f"Decision({'run' if self.run else 'hold'}, {self.reason!r}: {self.detail})"


class Policy:
    """When to retrain. Triggers, in order: ``force``; a new drift alert (``on_drift``); a new performance
    alert, estimated or realised (``on_performance``); ``schedule_seconds`` since the last run; at least
    ``min_new_labels`` outcomes joined since the last run. Guards: at most one run at a time; no run within
    ``cooldown_seconds`` of the last one; no run before ``min_rows`` served rows were monitored (the
    minimum evidence). ``force`` passes the cooldown and the evidence guard, never a run in progress.

    >>> p = Policy(cooldown_seconds=60, min_rows=1000)
    >>> status = {"rows": 5000, "recent_alerts": [{"event": "drift_alert", "ts": 10.0}]}
    >>> p.decide(status, {}, now=100.0)
    Decision(run, 'drift_alert': a new drift alert (window None))
    >>> p.decide(status, {"last_run_at": 90.0, "alerts_handled": []}, now=100.0).reason
    'cooldown'
    """

    def __init__(self, *, on_drift: bool = True, on_performance: bool = True, schedule_seconds: float | None = None,
                 min_new_labels: int | None = None, min_rows: int = 1000, cooldown_seconds: float = 3600.0):
        for name, v in (("schedule_seconds", schedule_seconds), ("cooldown_seconds", cooldown_seconds)):
            if v is not None and not float(v) >= 0:
                raise ParameterError(f"{name} must be a non-negative number of seconds, got {v!r}")
        if int(min_rows) < 0 or (min_new_labels is not None and int(min_new_labels) < 1):
            raise ParameterError("min_rows must be >= 0 and min_new_labels >= 1")
        self.on_drift, self.on_performance = bool(on_drift), bool(on_performance)
        self.schedule_seconds = None if schedule_seconds is None else float(schedule_seconds)
        self.min_new_labels = None if min_new_labels is None else int(min_new_labels)
        self.min_rows, self.cooldown_seconds = int(min_rows), float(cooldown_seconds)

    @staticmethod
    def alert_key(alert: dict[str, Any]) -> str:
        """How an alert is remembered as handled."""
        return f"{alert.get('event')}@{alert.get('version')}@{alert.get('ts')}"

    def decide(self, status: dict[str, Any], state: dict[str, Any], *, now: float | None = None, force: bool = False,
               running: bool = False) -> Decision:
        """The decision for the monitoring ``status`` of the serving version and the loop's ``state``
        (``last_run_at``, ``alerts_handled``, ``labels_at_last_run``)."""
        now = time.time() if now is None else now
        rows = int(status.get("rows", 0))
        labels = int(status.get("outcomes_joined", 0))
        last = state.get("last_run_at")
        ev = {"rows": rows, "outcomes_joined": labels, "last_run_at": last, "now": now}
        if running:
            return Decision(False, "run_in_progress", "a run is in progress", ev)
        if force:
            return Decision(True, "forced", "forced run", ev)
        handled = set(state.get("alerts_handled", []))
        fresh = [a for a in status.get("recent_alerts", []) if self.alert_key(a) not in handled]
        trigger: tuple[str, str, dict[str, Any]] | None = None
        drift = [a for a in fresh if a.get("event") == "drift_alert"]
        perf = [a for a in fresh if a.get("event") == "performance_alert"]
        if self.on_drift and drift:
            trigger = ("drift_alert", f"a new drift alert (window {drift[-1].get('window')})", drift[-1])
        elif self.on_performance and perf:
            a = perf[-1]
            trigger = ("performance_alert", f"{a.get('source')} {a.get('metric')} {a.get('value'):.4g} against "
                       f"{a.get('reference'):.4g} on reference data", a)
        elif self.schedule_seconds is not None and (last is None or now - last >= self.schedule_seconds):
            trigger = ("schedule", f"{self.schedule_seconds:g} s since the last run", {})
        elif self.min_new_labels is not None and labels - int(state.get("labels_at_last_run", 0)) >= self.min_new_labels:
            trigger = ("new_labels", f"{labels - int(state.get('labels_at_last_run', 0))} new labelled rows", {})
        if trigger is None:
            return Decision(False, "no_trigger", "nothing calls for a run", ev)
        reason, detail, alert = trigger
        ev["alert"] = alert or None
        if last is not None and now - last < self.cooldown_seconds:
            return Decision(False, "cooldown", f"{reason} within the cooldown ({now - last:.0f} s of {self.cooldown_seconds:g} s)", ev)
        if rows < self.min_rows:
            return Decision(False, "insufficient_evidence", f"{reason} on {rows} monitored rows (at least {self.min_rows})", ev)
        return Decision(True, reason, detail, ev)


STEPS = ("gather", "validate", "train", "gate", "register", "shadow", "canary", "promote")


def _write_json(path: str, data: Any) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class RetrainLoop:
    """Watches served model ``name`` on the ferrox server ``server`` (a URL or a running
    :class:`ferrox.serving.Server`) and, when ``policy`` says so, retrains it and rolls the challenger out.

    - ``data``: the training window — a callable returning a DataFrame, or a Parquet/CSV path; ``target``
      its label column. The last ``holdout`` share of its rows (in order, so the most recent) is held out
      for the gate and the monitoring reference.
    - ``train``: a callable ``(X, y) -> fitted Pipeline``, or a dict of GBDT parameters (a
      ``GBDTClassifier`` when ``task="binary"``, else a ``GBDTRegressor``, in a
      ``Pipeline(..., reference_profile=True)``). Either way the challenger gets
      :meth:`~ferrox.pipeline.Pipeline.fit_monitoring` on the holdout.
    - ``champion``: the serving artifact's path (its version label is ``champion_version``); the gate
      compares with it.
    - ``gate``: a :class:`Gate`. A refused challenger ends the run (``refused``).
    - ``registry``: an MLflow registered model name (uses the current tracking URI): the challenger is
      logged and registered, and on promotion the ``champion`` alias moves to it.
    - ``shadow_requests``: live requests the challenger scores in shadow before the canary; the run is
      abandoned when the shadow KS distance exceeds ``shadow_max_ks`` or it errors. ``canary``: the
      canary settings (``steps``, ``min_units``, ``min_seconds``, guardrails; see
      :meth:`ferrox.serving.Server.start_experiment`). ``timeout_seconds`` bounds the shadow and the canary.
    - ``tune``: re-tune the GBDT parameters at each run with an Optuna budget (``n_trials``, ``timeout``
      seconds, ``early_stopping_rounds``) on one binned Dataset (:func:`ferrox.optuna.tune`; the last 20 %
      of the training window validates), then train the chosen parameters at the best round.
    - ``validation``: keyword arguments of :func:`ferrox.validation.check_training_data` (e.g.
      ``missing_limit``); training data with an error-level finding ends the run (``abandoned``).
    - ``state_dir`` holds ``state.json`` (the loop's state and the current run), each run's files, and
      ``audit.jsonl``.

    :meth:`step` is one turn of the loop (observe, decide, and run or resume); :meth:`run` forces a run.
    Each returns a dict: the decision, and for a run its ``outcome`` (``promoted``, ``rolled_back``,
    ``refused``, ``abandoned``) with each step's timing.
    """

    def __init__(self, name: str, server: Any, data: Any, target: str, *, train: Any = None, task: str = "binary",
                 champion: str | os.PathLike[str], champion_version: str = "1", gate: Gate, policy: Policy | None = None,
                 state_dir: str | os.PathLike[str], holdout: float = 0.2, registry: str | None = None,
                 shadow_requests: int = 200, shadow_max_ks: float = 0.5, canary: dict[str, Any] | None = None,
                 timeout_seconds: float = 600.0, token: str | None = None, dry_run: bool = False,
                 validation: dict[str, Any] | None = None, tune: dict[str, Any] | None = None,
                 log: Callable[[str], None] | None = None):
        if task not in ("binary", "regression"):
            raise ParameterError(f"task must be 'binary' or 'regression', got {task!r}")
        if not 0.0 < float(holdout) < 1.0:
            raise ParameterError(f"holdout must lie in (0, 1), got {holdout!r}")
        if not isinstance(gate, Gate):
            raise ParameterError("gate must be a ferrox.retrain.Gate")
        self.name, self.target, self.task = name, target, task
        self.url = server if isinstance(server, str) else server.url
        self.data, self.train_fn, self.gate = data, train, gate
        self.policy = policy or Policy()
        self.holdout, self.registry, self.token = float(holdout), registry, token
        self.shadow_requests, self.shadow_max_ks = int(shadow_requests), float(shadow_max_ks)
        self.canary = dict(canary or {"steps": [10, 50, 100], "min_units": 100, "min_seconds": 5})
        self.timeout_seconds, self.dry_run = float(timeout_seconds), bool(dry_run)
        self.validation = dict(validation or {})
        self.tune = None if tune is None else dict(tune)
        if self.tune is not None and (callable(train) or not set(self.tune) <= {"n_trials", "timeout", "early_stopping_rounds"}):
            raise ParameterError("tune takes n_trials, timeout and early_stopping_rounds, with train as a dict of parameters")
        self.log = log or (lambda line: None)
        self.state_dir = os.fspath(state_dir)
        os.makedirs(self.state_dir, exist_ok=True)
        self._state_path = os.path.join(self.state_dir, "state.json")
        if os.path.exists(self._state_path):
            with open(self._state_path, encoding="utf-8") as f:
                self.state: dict[str, Any] = json.load(f)
        else:
            self.state = {"name": name, "champion": {"path": os.path.abspath(os.fspath(champion)), "version": str(champion_version)},
                          "last_run_at": None, "alerts_handled": [], "labels_at_last_run": 0, "current": None, "history": []}

    @classmethod
    def from_config(cls, config: dict[str, Any], *, dry_run: bool = False,
                    log: Callable[[str], None] | None = None) -> RetrainLoop:
        """A loop from a configuration (what ``ferrox retrain --config loop.toml`` reads): ``name``,
        ``server``, ``champion``, ``champion_version``, ``data`` (a Parquet/CSV path), ``target``, ``task``,
        ``state_dir``, ``holdout``, ``registry``, ``shadow_requests``, ``shadow_max_ks``,
        ``timeout_seconds``, ``auth_token_env``; tables ``params`` (GBDT parameters), ``tune``, ``gate``
        (``thresholds`` = {metric: MetricThreshold fields}, ``slices``, ``min_slice_rows``,
        ``max_latency_ms``), ``policy`` (:class:`Policy` arguments), ``canary`` and ``validation``.

        >>> loop = RetrainLoop.from_config({"name": "m", "server": "http://127.0.0.1:1", "champion": "m.frx",
        ...     "data": "recent.parquet", "target": "y", "state_dir": __import__("tempfile").mkdtemp(),
        ...     "gate": {"thresholds": {"auc": {"threshold": 0.7}}}, "policy": {"cooldown_seconds": 60}})
        >>> loop.policy.cooldown_seconds, sorted(loop.gate.thresholds)
        (60.0, ['auc'])
        """
        c = dict(config)
        known = {"name", "server", "champion", "champion_version", "data", "target", "task", "state_dir", "holdout",
                 "registry", "shadow_requests", "shadow_max_ks", "timeout_seconds", "auth_token_env", "params", "gate",
                 "policy", "canary", "validation", "tune"}
        unknown = sorted(set(c) - known)
        if unknown:
            raise ParameterError(f"retrain configuration: unknown keys {unknown} (known: {sorted(known)})")
        missing = [k for k in ("name", "server", "champion", "data", "target", "state_dir", "gate") if k not in c]
        if missing:
            raise ParameterError(f"retrain configuration: missing {missing}")
        g = dict(c["gate"])
        gate = Gate({k: MetricThreshold.from_dict(v, metric=k) for k, v in dict(g.pop("thresholds", {})).items()}, **g)
        token = None
        if c.get("auth_token_env"):
            token = os.environ.get(c["auth_token_env"])
            if token is None:
                raise ParameterError(f"the environment variable {c['auth_token_env']} is not set")
        return cls(c["name"], c["server"], c["data"], c["target"], train=dict(c.get("params", {})),
                   task=c.get("task", "binary"), champion=c["champion"], champion_version=str(c.get("champion_version", "1")),
                   gate=gate, policy=Policy(**dict(c.get("policy", {}))), state_dir=c["state_dir"],
                   holdout=float(c.get("holdout", 0.2)), registry=c.get("registry"),
                   shadow_requests=int(c.get("shadow_requests", 200)), shadow_max_ks=float(c.get("shadow_max_ks", 0.5)),
                   canary=c.get("canary"), timeout_seconds=float(c.get("timeout_seconds", 600.0)), token=token,
                   dry_run=dry_run, validation=c.get("validation"), tune=c.get("tune"), log=log)

    # -- plumbing --
    def _save(self) -> None:
        if not self.dry_run:
            _write_json(self._state_path, self.state)

    def _call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200,)) -> Any:
        status, out = _request(self.url, method, path, body, self.token)
        if status not in ok:
            raise FerroxError(f"{method} {path}: {status} {out}")
        return out

    def _audit(self, entry: dict[str, Any]) -> None:
        entry = {"when": _dt.datetime.now(_dt.timezone.utc).isoformat(), "model": self.name, **entry}
        if not self.dry_run:
            with open(os.path.join(self.state_dir, "audit.jsonl"), "a", encoding="utf-8") as f:
                f.write(json.dumps(entry, default=str) + "\n")

    def observe(self) -> dict[str, Any]:
        """The monitoring status of the serving version (``GET /v2/models/{name}/monitoring``)."""
        return dict(self._call("GET", f"/v2/models/{self.name}/monitoring"))

    # -- the turn of the loop --
    def step(self, force: bool = False) -> dict[str, Any]:
        """Observes, decides and runs (or resumes the run a killed loop left). Returns what happened."""
        current = self.state.get("current")
        if current is not None:
            if self.dry_run:
                left = [s for s in STEPS if (current["steps"].get(s) or {}).get("status") != "done"]
                plan = [f"would resume run {current['id']} at {left[0]}" if left else "would finish run " + current["id"]]
                plan += [f"would {s}" for s in left[1:]]
                self.log("dry run: " + ", ".join(plan))
                return {"decision": {"run": True, "reason": "resume", "detail": f"run {current['id']} was interrupted"},
                        "dry_run": True, "plan": plan}
            return self._execute(current)
        status = self.observe()
        d = self.policy.decide(status, self.state, force=force)
        if not d.run:
            return {"decision": d.to_dict()}
        if self.dry_run:
            plan = [f"would {s}" for s in STEPS]
            self.log(f"dry run: {d.reason} ({d.detail}); " + ", ".join(plan))
            return {"decision": d.to_dict(), "dry_run": True, "plan": plan}
        run_id = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + f"-{len(self.state['history']) + 1}"
        run = {"id": run_id, "reason": d.reason, "detail": d.detail, "decided_at": time.time(),
               "alert_ts": (d.evidence.get("alert") or {}).get("ts"), "steps": {}, "outcome": None,
               "champion_version": self.state["champion"]["version"],
               "dir": os.path.join(self.state_dir, "runs", run_id)}
        os.makedirs(run["dir"], exist_ok=True)
        self.state["alerts_handled"] = (self.state.get("alerts_handled", []) +
                                        [Policy.alert_key(a) for a in status.get("recent_alerts", [])])[-256:]
        self.state["last_run_at"] = time.time()
        self.state["labels_at_last_run"] = int(status.get("outcomes_joined", 0))
        self.state["current"] = run
        self._save()
        self.log(f"run {run_id}: {d.reason} ({d.detail})")
        out = self._execute(run)
        out["decision"] = d.to_dict()
        return out

    def run(self) -> dict[str, Any]:
        """Runs a retraining now (a forced decision), or resumes the one in progress."""
        return self.step(force=True)

    def abandon(self, reason: str) -> None:
        """Ends the run in progress without promoting anything (the server is put back as it was)."""
        run = self.state.get("current")
        if run is not None:
            self._cleanup(run)
            self._finish(run, "abandoned", reason)

    # -- the steps --
    def _execute(self, run: dict[str, Any]) -> dict[str, Any]:
        try:
            for step in STEPS:
                rec = run["steps"].get(step)
                if rec is not None and rec.get("status") == "done":
                    continue
                if run["outcome"] is not None:
                    break
                resumed = rec is not None
                run["steps"][step] = {"status": "started", "at": time.time(), "resumed": resumed}
                self._save()
                t = time.perf_counter()
                result = getattr(self, f"_{step}")(run, resumed) or {}
                run["steps"][step].update(result, status="done", seconds=time.perf_counter() - t)
                self._save()
                self.log(f"run {run['id']}: {step} done in {run['steps'][step]['seconds']:.2f} s")
                if run["outcome"] is not None:
                    break
        except Exception as e:  # any failure ends the run cleanly: nothing half-promoted stays
            self._cleanup(run)
            self._finish(run, "abandoned", f"{type(e).__name__}: {e}")
            return self._summary(run)
        if run["outcome"] is None:
            self._finish(run, "promoted", "")
        return self._summary(run)

    def _summary(self, run: dict[str, Any]) -> dict[str, Any]:
        return {"run": run["id"], "outcome": run["outcome"], "why": run.get("why", ""), "reason": run["reason"],
                "steps": {k: {"seconds": v.get("seconds"), **{x: y for x, y in v.items() if x not in ("status", "at", "seconds")}}
                          for k, v in run["steps"].items()},
                "alert_to_outcome_seconds": run.get("alert_to_outcome_seconds"),
                "decision_to_outcome_seconds": run.get("decision_to_outcome_seconds")}

    def _finish(self, run: dict[str, Any], outcome: str, why: str) -> None:
        run["outcome"], run["why"] = outcome, why
        end = time.time()
        run["decision_to_outcome_seconds"] = end - run["decided_at"]
        if run.get("alert_ts"):
            run["alert_to_outcome_seconds"] = end - float(run["alert_ts"])
        self.state["history"] = (self.state.get("history", []) + [self._summary(run)])[-50:]
        self.state["current"] = None
        self._save()
        self._audit({"run": run["id"], "outcome": outcome, "why": why, "reason": run["reason"],
                     "from": run.get("champion_version"), "to": run.get("challenger_version")})
        self.log(f"run {run['id']}: {outcome}" + (f" ({why})" if why else ""))

    def _frames(self, run: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
        import pandas as pd

        train = pd.read_parquet(os.path.join(run["dir"], "train.parquet"))
        hold = pd.read_parquet(os.path.join(run["dir"], "holdout.parquet"))
        return train.drop(columns=[self.target]), train[self.target].to_numpy(), hold.drop(columns=[self.target]), hold[self.target].to_numpy()

    def _gather(self, run: dict[str, Any], resumed: bool) -> dict[str, Any]:
        import pandas as pd

        src = self.data() if callable(self.data) else self.data
        if isinstance(src, (str, os.PathLike)):
            p = os.fspath(src)
            src = pd.read_csv(p) if p.endswith(".csv") else pd.read_parquet(p)
        df = src if isinstance(src, pd.DataFrame) else pd.DataFrame(src)
        if self.target not in df.columns:
            raise ParameterError(f"the training data has no target column {self.target!r}")
        n_hold = max(1, int(round(len(df) * self.holdout)))
        df.iloc[: len(df) - n_hold].to_parquet(os.path.join(run["dir"], "train.parquet"))
        df.iloc[len(df) - n_hold:].to_parquet(os.path.join(run["dir"], "holdout.parquet"))
        return {"rows": len(df), "holdout_rows": n_hold}

    def _validate(self, run: dict[str, Any], resumed: bool) -> dict[str, Any]:
        from . import validation

        Xtr, ytr, _, _ = self._frames(run)
        frame = Xtr.assign(**{self.target: ytr})
        report = validation.check_training_data(frame, target=self.target, **self.validation)
        checks = sorted({str(i.get("check")) for i in report.issues})
        # The champion's input schema: the challenger must read the same columns, of the same kinds.
        from .pipeline import Pipeline

        schema = {c["name"]: c["dtype"] for c in Pipeline.load(self.state["champion"]["path"]).schema_}
        missing = sorted(set(schema) - set(Xtr.columns))
        strings = {n for n, t in schema.items() if t == "string"}
        wrong = sorted(n for n in set(schema) & set(Xtr.columns)
                       if (n in strings) != (Xtr[n].dtype == object or str(Xtr[n].dtype) in ("category", "string", "str")))
        if missing or wrong:
            checks.append("schema")
            self._finish(run, "abandoned", f"the training data does not fit the champion's schema: missing {missing}, "
                         f"other kinds {wrong}")
        elif not report.ok:
            self._finish(run, "abandoned", "the training data failed validation: " + ", ".join(checks))
        return {"ok": bool(report.ok) and not (missing or wrong), "issues": checks}

    def _train(self, run: dict[str, Any], resumed: bool) -> dict[str, Any]:
        from .pipeline import Pipeline
        from .sklearn import GBDTClassifier, GBDTRegressor

        Xtr, ytr, Xho, yho = self._frames(run)
        tuned: dict[str, Any] = {}
        if callable(self.train_fn):
            pipe = self.train_fn(Xtr, ytr)
        else:
            params = dict(self.train_fn or {})
            params.setdefault("verbose", -1)
            if self.tune is not None:
                tuned = self._tuned(params, Xtr, ytr)
                params = {**params, **tuned}
            est = GBDTClassifier(**params) if self.task == "binary" else GBDTRegressor(**params)
            pipe = Pipeline([("model", est)], reference_profile=True).fit(Xtr, ytr)
        pipe.fit_monitoring(Xho, yho)
        path = os.path.join(run["dir"], "challenger.frx")
        pipe.save(path)
        return {"artifact": path, **({"tuned": tuned} if tuned else {})}

    def _tuned(self, params: dict[str, Any], X: Any, y: Any) -> dict[str, Any]:
        """Parameters found by a stepwise Optuna search on one binned Dataset, and the best round."""
        from .dataset import Dataset
        from .optuna import tune

        assert self.tune is not None
        n_valid = max(1, int(len(X) * 0.2))
        train = Dataset(X.iloc[:-n_valid], label=y[:-n_valid])
        valid = Dataset(X.iloc[-n_valid:], label=y[-n_valid:], reference=train)
        base = {"objective": "binary" if self.task == "binary" else "regression", "verbosity": -1}
        for k in ("num_leaves", "learning_rate", "max_depth", "min_child_samples"):
            if k in params:
                base[k] = params[k]
        import optuna

        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # a loop's log is its steps, not every trial
        try:
            res = tune(base, train, valid, n_trials=self.tune.get("n_trials", 20), timeout=self.tune.get("timeout"),
                       num_boost_round=int(params.get("n_estimators", 300)),
                       early_stopping_rounds=int(self.tune.get("early_stopping_rounds", 20)))
        finally:
            optuna.logging.set_verbosity(verbosity)
        found = {k: v for k, v in res.params.items() if k not in ("objective", "verbosity", "metric") and k not in params}
        found["n_estimators"] = max(1, int(res.booster.best_iteration or params.get("n_estimators", 100)))
        return found

    def _gate(self, run: dict[str, Any], resumed: bool) -> dict[str, Any]:
        _, _, Xho, yho = self._frames(run)
        challenger = run["steps"]["train"]["artifact"]
        verdict = self.gate.evaluate(challenger, self.state["champion"]["path"], Xho, yho)
        path = os.path.join(run["dir"], "verdict.json")
        verdict.to_json(path)
        if not verdict.passed:
            self._finish(run, "refused", "the gate refused the challenger: " + ", ".join(verdict.reasons))
        return {"verdict": path, "passed": verdict.passed, "reasons": verdict.reasons}

    def _challenger_version(self, run: dict[str, Any]) -> str:
        v = self.state["champion"]["version"]
        return str(int(v) + 1) if v.isdigit() else f"{v}-{run['id']}"

    def _register(self, run: dict[str, Any], resumed: bool) -> dict[str, Any]:
        if self.registry is None:
            run["challenger_version"] = self._challenger_version(run)
            return {"version": run["challenger_version"], "registry": None}
        from mlflow import MlflowClient

        from . import mlflow as fxmlflow
        from .pipeline import Pipeline

        client = MlflowClient()
        if resumed:  # registered before the loop was killed? then it is that version
            for mv in client.search_model_versions(f"name='{self.registry}'"):
                if (mv.tags or {}).get("ferrox.run") == run["id"]:
                    run["challenger_version"] = str(mv.version)
                    return {"version": run["challenger_version"], "registry": self.registry, "reused": True}
        import mlflow

        with mlflow.start_run(run_name=f"retrain-{run['id']}"):
            info = fxmlflow.log_model(Pipeline.load(run["steps"]["train"]["artifact"]), name="model",
                                      registered_model_name=self.registry)
        version = str(info.registered_model_version)
        client.set_model_version_tag(self.registry, version, "ferrox.run", run["id"])
        client.set_model_version_tag(self.registry, version, "ferrox.reason", run["reason"])
        run["challenger_version"] = version
        return {"version": version, "registry": self.registry}

    def _challenger_model(self, run: dict[str, Any]) -> str:
        return f"{self.name}-challenger"

    def _load_challenger(self, run: dict[str, Any]) -> None:
        models = self._call("POST", "/v2/repository/index", {})
        cm = self._challenger_model(run)
        if any(m.get("name") == cm and str(m.get("version")) == run["challenger_version"] for m in models or []):
            return
        self._call("POST", f"/v2/repository/models/{cm}/load",
                   {"parameters": {"path": os.path.abspath(run["steps"]["train"]["artifact"]), "version": run["challenger_version"]}})

    def _experiment(self, name: str) -> dict[str, Any] | None:
        status, out = _request(self.url, "GET", f"/v2/experiments/{name}", None, self.token)
        return out if status == 200 else None

    def _shadow(self, run: dict[str, Any], resumed: bool) -> dict[str, Any]:
        self._load_challenger(run)
        name = f"retrain-{run['id']}-shadow"
        if self._experiment(name) is None:
            self._call("POST", "/v2/experiments", {"name": name, "endpoint": self.name,
                                                    "variants": [{"name": "champion", "model": self.name, "weight": 1.0}],
                                                    "shadows": [self._challenger_model(run)]})
        deadline = time.time() + self.timeout_seconds
        stats: dict[str, Any] = {}
        while time.time() < deadline:
            st = self._experiment(name) or {}
            stats = (st.get("shadows") or [{}])[0]
            if stats.get("requests", 0) >= self.shadow_requests:
                break
            time.sleep(0.05)
        self._call("POST", f"/v2/experiments/{name}/stop", {})
        ks, errors = stats.get("ks_distance"), stats.get("errors", 0)
        if stats.get("requests", 0) < self.shadow_requests:
            self._cleanup(run)
            self._finish(run, "abandoned", f"only {stats.get('requests', 0)} shadow requests in {self.timeout_seconds:g} s")
        elif errors or (ks is not None and ks > self.shadow_max_ks):
            self._cleanup(run)
            self._finish(run, "abandoned", f"the shadow disagreed: KS {ks}, {errors} errors")
        return {"requests": stats.get("requests"), "ks_distance": ks, "mean_abs_diff": stats.get("mean_abs_diff"), "errors": errors}

    def _canary(self, run: dict[str, Any], resumed: bool) -> dict[str, Any]:
        self._load_challenger(run)
        name = f"retrain-{run['id']}-canary"
        if self._experiment(name) is None:
            self._call("POST", "/v2/experiments", {"name": name, "endpoint": self.name, "kind": "canary",
                                                    "variants": [{"name": "champion", "model": self.name, "weight": 1.0},
                                                                 {"name": "challenger", "model": self._challenger_model(run), "weight": 1.0}],
                                                    "canary": self.canary})
        deadline = time.time() + self.timeout_seconds
        phase, st = "ramping", {}
        while time.time() < deadline:
            st = self._experiment(name) or {}
            phase = (st.get("canary") or {}).get("phase", "ramping")
            if phase in ("promoted", "rolled_back"):
                break
            time.sleep(0.02)
        transitions = [t.get("event") for t in st.get("transitions", [])]
        if phase == "rolled_back":
            why = (st.get("canary") or {}).get("reason", "")
            t_roll = time.perf_counter()
            self._call("POST", f"/v2/experiments/{name}/stop", {})
            self._unload_challenger(run)
            if self.registry is not None:
                from mlflow import MlflowClient

                MlflowClient().set_model_version_tag(self.registry, run["challenger_version"], "ferrox.canary", "rolled_back")
            self._finish(run, "rolled_back", f"a guardrail broke: {why}")
            return {"phase": phase, "transitions": transitions, "cleanup_seconds": time.perf_counter() - t_roll}
        if phase != "promoted":
            self._cleanup(run)
            self._finish(run, "abandoned", f"the canary did not finish in {self.timeout_seconds:g} s")
        return {"phase": phase, "transitions": transitions}

    def _promote(self, run: dict[str, Any], resumed: bool) -> dict[str, Any]:
        path = os.path.abspath(run["steps"]["train"]["artifact"])
        version = run["challenger_version"]
        # Serve the challenger under the model's own name first; then the experiment can go.
        self._call("POST", f"/v2/repository/models/{self.name}/load", {"parameters": {"path": path, "version": version}})
        for kind in ("canary", "shadow"):
            if self._experiment(f"retrain-{run['id']}-{kind}") is not None:
                self._call("POST", f"/v2/experiments/retrain-{run['id']}-{kind}/stop", {})
        self._unload_challenger(run)
        if self.registry is not None:
            from . import mlflow as fxmlflow

            fxmlflow.promote(self.registry, version)
        previous = dict(self.state["champion"])
        self.state["champion"] = {"path": path, "version": version}
        return {"from": previous["version"], "to": version}

    def _unload_challenger(self, run: dict[str, Any]) -> None:
        _request(self.url, "POST", f"/v2/repository/models/{self._challenger_model(run)}/unload", {}, self.token)

    def _cleanup(self, run: dict[str, Any]) -> None:
        """Puts the server back as it was before the run: no experiment of the run, no challenger."""
        for kind in ("shadow", "canary"):
            try:
                if self._experiment(f"retrain-{run['id']}-{kind}") is not None:
                    self._call("POST", f"/v2/experiments/retrain-{run['id']}-{kind}/stop", {})
            except FerroxError:
                pass
        try:
            self._unload_challenger(run)
        except FerroxError:
            pass
