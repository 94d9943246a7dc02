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
from collections.abc import Mapping, Sequence
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
        self._settings.setdefault("log_events", False)
        self._models = dict(models or {})
        self._workdir: str | None = None
        self._handle: Any = None

    # -- lifecycle --
    def start(self) -> Server:
        """Loads every model and starts listening; returns ``self``. Raises on a refused artifact."""
        if self._handle is not None:
            raise ParameterError("the server is already running")
        self._workdir = tempfile.mkdtemp(prefix="ferrox-serve-")
        settings = dict(self._settings)
        settings["models"] = list(settings.get("models", [])) + [
            {"name": str(name), "path": resolve_model_source(src, self._workdir)} for name, src in self._models.items()
        ]
        self._handle = _ferrox.ServerHandle.start(json.dumps(settings))
        return self

    def stop(self, grace: float = 5.0) -> None:
        """Stops accepting requests, answers the ones in flight (at most ``grace`` seconds), shuts down."""
        if self._handle is not None:
            self._handle.stop(grace)
            self._handle = None

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
        finishes its requests). A refused artifact raises and leaves the serving version serving."""
        path = resolve_model_source(source, self._workdir)
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
        unit: str = "unit_id",
        salt: str | None = None,
        shadows: Sequence[str] = (),
        shadow_queue: int = 1024,
    ) -> dict[str, Any]:
        """Routes requests for ``endpoint`` to ``variants``: ``{variant: model}`` (equal weights) or
        ``[(variant, model, weight), ...]``. Units are sticky by the request parameter ``unit`` (or the
        ``x-ferrox-unit`` header), hashed with ``salt`` (default: ``name``) as :func:`assign` documents;
        the ``x-ferrox-variant`` header forces a variant. ``shadows`` are models that score the same rows
        off the request path, compared online with the live answer. Returns the experiment's status."""
        if isinstance(variants, Mapping):
            arms = [{"name": str(k), "model": str(m), "weight": 1.0} for k, m in variants.items()]
        else:
            arms = [{"name": str(k), "model": str(m), "weight": float(w)} for k, m, w in variants]
        config = {"name": name, "endpoint": endpoint, "unit": unit, "salt": salt, "variants": arms,
                  "shadows": list(shadows), "shadow_queue": int(shadow_queue)}
        return dict(json.loads(self._require().create_experiment(json.dumps(config))))

    def stop_experiment(self, name: str) -> dict[str, Any]:
        """Stops experiment ``name`` (its endpoint answers as a plain model name again); returns its
        final status."""
        return dict(json.loads(self._require().stop_experiment(name)))

    def experiments(self) -> list[dict[str, Any]]:
        """The status of every running experiment: requests and share per variant, shadow comparisons
        (agreement, mean absolute difference, KS distance), shadow work dropped."""
        return list(json.loads(self._require().experiments()))

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
