"""The production loop's actions. Today: :func:`rollback`, the one-step return to the previous model.

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

__all__ = ["RollbackResult", "rollback"]


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
