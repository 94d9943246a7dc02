"""MLflow integration: a ``ferrox`` model flavor, autologging for training, and registry helpers.

``mlflow`` is imported when these are used, never by ``import ferrox``. Everything works with the
embedded stores and no tracking server: a sqlite tracking/registry URI with artifacts in a local
directory, or a plain local directory (``file:`` URI; MLflow 3 asks for ``MLFLOW_ALLOW_FILE_STORE=true``
before it opens one).

A saved model is a directory holding ``MLmodel`` and ``model.ferrox`` (the verified ferrox artifact).
The flavor section of ``MLmodel`` records the artifact's SHA-256 and the ferrox class; loading checks
both before building the object. The ``python_function`` section makes
``mlflow.pyfunc.load_model(uri).predict(df)`` work.

>>> import numpy as np, tempfile, os, ferrox as fx, ferrox.mlflow
>>> X = np.random.default_rng(0).normal(size=(300, 3)); y = X[:, 0]
>>> b = fx.train({"verbosity": -1}, fx.Dataset(X, label=y), 10)
>>> path = os.path.join(tempfile.mkdtemp(), "model")
>>> ferrox.mlflow.save_model(b, path)
>>> again = ferrox.mlflow.load_model(path)
>>> bool(np.array_equal(again.predict(X), b.predict(X)))
True
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import json
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .exceptions import ModelIntegrityError, ParameterError

__all__ = [
    "FLAVOR_NAME",
    "artifact_path",
    "autolog",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "promote",
    "rollback",
    "save_model",
]

FLAVOR_NAME = "ferrox"
_DATA_FILE = "model.ferrox"
_HISTORY_TAG = "ferrox.alias_history.{alias}"


def get_default_pip_requirements() -> list[str]:
    """The packages a saved ferrox model needs to be served: ferrox and numpy at the versions in use.

    >>> [r.split("==")[0] for r in get_default_pip_requirements()]
    ['ferrox', 'numpy']
    """
    from . import __version__

    return [f"ferrox=={__version__}", f"numpy=={np.__version__}"]


def _type_name(model: Any) -> str:
    cls = type(model)
    module = cls.__module__
    if not (module == "ferrox" or module.startswith("ferrox.")):
        raise ParameterError(f"the ferrox flavor saves ferrox objects, got {module}.{cls.__qualname__}")
    if not callable(getattr(model, "to_bytes", None)) or not callable(getattr(cls, "from_bytes", None)):
        raise ParameterError(f"{module}.{cls.__qualname__} has no to_bytes/from_bytes and cannot be saved as a ferrox model")
    return f"{module}:{cls.__qualname__}"


def _resolve_type(name: str) -> type:
    module, _, qualname = name.partition(":")
    if not (module == "ferrox" or module.startswith("ferrox.")) or not qualname:
        raise ModelIntegrityError(f"the MLmodel names model_type {name!r}, which is not a ferrox class")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ModelIntegrityError(f"model_type {name!r} does not exist in this ferrox version")
    return obj


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    conda_env: Any = None,
    mlflow_model: Any = None,
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | str | None = None,
    extra_pip_requirements: Sequence[str] | str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Saves a ferrox object (Booster, or any ferrox object with ``to_bytes``/``from_bytes``) as an MLflow
    model directory at ``path`` (which must not exist or be empty).

    The signature is inferred from ``input_example`` and the model's predictions when not given (with a
    warning, and no signature, when the example does not predict).

    >>> import numpy as np, tempfile, os, ferrox as fx
    >>> X = np.random.default_rng(1).normal(size=(200, 2)); b = fx.train({"verbosity": -1}, fx.Dataset(X, label=X[:, 0]), 5)
    >>> path = os.path.join(tempfile.mkdtemp(), "m"); save_model(b, path, input_example=X[:3])
    >>> sorted(os.listdir(path))[:3]
    ['MLmodel', 'conda.yaml', 'input_example.json']
    """
    import mlflow.pyfunc
    from mlflow.models import Model, infer_signature
    from mlflow.models.utils import _save_example
    from mlflow.utils.environment import _process_conda_env, _process_pip_requirements, _PythonEnv

    from . import __version__

    type_name = _type_name(model)
    path = os.fspath(path)
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise ParameterError(f"path {path!r} already exists and is not an empty directory")
    os.makedirs(path, exist_ok=True)
    blob = bytes(model.to_bytes())
    with open(os.path.join(path, _DATA_FILE), "wb") as f:
        f.write(blob)

    if mlflow_model is None:
        mlflow_model = Model()
    if signature is None and input_example is not None and callable(getattr(model, "predict", None)):
        try:
            signature = infer_signature(input_example, model.predict(input_example))
        except Exception as e:  # a signature is a convenience; an example that does not predict still saves
            warnings.warn(f"no signature inferred: predicting the input example failed ({e})", stacklevel=2)
            signature = None
    if signature is not None:
        mlflow_model.signature = signature
    if input_example is not None:
        _save_example(mlflow_model, input_example, path)
    if metadata is not None:
        mlflow_model.metadata = dict(metadata)

    mlflow.pyfunc.add_to_model(
        mlflow_model, loader_module="ferrox.mlflow", data=_DATA_FILE, conda_env="conda.yaml", python_env="python_env.yaml"
    )
    mlflow_model.add_flavor(
        FLAVOR_NAME,
        ferrox_version=__version__,
        data=_DATA_FILE,
        sha256=_sha256(blob),
        model_type=type_name,
    )
    mlflow_model.save(os.path.join(path, "MLmodel"))

    if conda_env is None:
        default = get_default_pip_requirements()
        conda_env, reqs, constraints = _process_pip_requirements(default, pip_requirements, extra_pip_requirements)
    else:
        conda_env, reqs, constraints = _process_conda_env(conda_env)
    import yaml

    with open(os.path.join(path, "conda.yaml"), "w") as f:
        yaml.safe_dump(conda_env, f, default_flow_style=False)
    if constraints:
        with open(os.path.join(path, "constraints.txt"), "w") as f:
            f.write("\n".join(constraints) + "\n")
    with open(os.path.join(path, "requirements.txt"), "w") as f:
        f.write("\n".join(reqs) + "\n")
    _PythonEnv.current().to_yaml(os.path.join(path, "python_env.yaml"))


def log_model(
    model: Any,
    name: str | None = None,
    registered_model_name: str | None = None,
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | str | None = None,
    extra_pip_requirements: Sequence[str] | str | None = None,
    conda_env: Any = None,
    metadata: Mapping[str, Any] | None = None,
    await_registration_for: int = 300,
    **kwargs: Any,
) -> Any:
    """Logs a ferrox object as a model of the active run (one is started when none is), as
    ``mlflow.sklearn.log_model`` does; registers it as ``registered_model_name`` when given.

    Returns MLflow's ``ModelInfo`` (``model_uri``, ``registered_model_version``, ``signature``...).

    >>> import mlflow, numpy as np, os, tempfile, ferrox as fx
    >>> os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # or a tracking URI f"sqlite:///{folder}/mlflow.db"
    >>> mlflow.set_tracking_uri("file://" + os.path.join(tempfile.mkdtemp(), "mlruns"))
    >>> X = np.random.default_rng(2).normal(size=(200, 2)); b = fx.train({"verbosity": -1}, fx.Dataset(X, label=X[:, 0]), 5)
    >>> with mlflow.start_run():
    ...     info = log_model(b, name="model", input_example=X[:2])
    >>> info.flavors["ferrox"]["model_type"], info.signature is not None
    ('ferrox.gbdt:Booster', True)
    """
    from mlflow.models import Model

    from . import mlflow as flavor

    _type_name(model)
    return Model.log(
        artifact_path=None,
        name=name or "model",
        flavor=flavor,
        registered_model_name=registered_model_name,
        await_registration_for=await_registration_for,
        model=model,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        conda_env=conda_env,
        metadata=metadata,
        **kwargs,
    )


def _local_dir(model_uri: str | os.PathLike[str], dst_path: str | None = None) -> str:
    uri = os.fspath(model_uri)
    if os.path.isdir(uri):
        return uri
    import mlflow.artifacts

    return mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=dst_path)


def _load_verified(local: str) -> Any:
    from mlflow.models import Model

    mlmodel = Model.load(os.path.join(local, "MLmodel"))
    conf = mlmodel.flavors.get(FLAVOR_NAME)
    if conf is None:
        raise ParameterError(f"the model at {local!r} has no {FLAVOR_NAME!r} flavor (flavors: {sorted(mlmodel.flavors)})")
    with open(os.path.join(local, conf.get("data", _DATA_FILE)), "rb") as f:
        blob = f.read()
    expected = conf.get("sha256")
    actual = _sha256(blob)
    if expected != actual:
        raise ModelIntegrityError(
            f"the model file {conf.get('data', _DATA_FILE)!r} has SHA-256 {actual}, but the MLmodel records "
            f"{expected}: the artifact was changed after it was logged"
        )
    cls = _resolve_type(str(conf.get("model_type", "ferrox.gbdt:Booster")))
    return cls.from_bytes(blob)  # type: ignore[attr-defined]


def artifact_path(model_uri: str | os.PathLike[str], dst_path: str | None = None) -> str:
    """The local path of the ``.frx`` artifact behind ``model_uri`` (downloaded when remote), after its
    SHA-256 was checked against the one ``MLmodel`` records; the model server loads it from there.

    >>> import numpy as np, tempfile, os, ferrox as fx
    >>> X = np.random.default_rng(5).normal(size=(200, 2)); b = fx.train({"verbosity": -1}, fx.Dataset(X, label=X[:, 0]), 5)
    >>> path = os.path.join(tempfile.mkdtemp(), "m"); save_model(b, path)
    >>> fx.Booster.load_model(artifact_path(path)).num_trees() == b.num_trees()
    True
    """
    from mlflow.models import Model

    local = _local_dir(model_uri, dst_path)
    conf = Model.load(os.path.join(local, "MLmodel")).flavors.get(FLAVOR_NAME)
    if conf is None:
        raise ParameterError(f"the model at {os.fspath(model_uri)!r} has no {FLAVOR_NAME!r} flavor")
    file = os.path.join(local, conf.get("data", _DATA_FILE))
    with open(file, "rb") as f:
        actual = _sha256(f.read())
    if conf.get("sha256") != actual:
        raise ModelIntegrityError(
            f"the model file {file!r} has SHA-256 {actual}, but the MLmodel records {conf.get('sha256')}: "
            "the artifact was changed after it was logged"
        )
    return file


def load_model(model_uri: str | os.PathLike[str], dst_path: str | None = None) -> Any:
    """Loads a model saved with this flavor and returns the ferrox object itself (e.g. a Booster).

    ``model_uri`` is a local directory or any MLflow URI (``runs:/<id>/model``, ``models:/name@alias``,
    ``models:/name/3``...). The artifact's SHA-256 is checked against the one in ``MLmodel``: a changed
    file raises :class:`ferrox.ModelIntegrityError`.

    >>> import numpy as np, tempfile, os, ferrox as fx
    >>> X = np.random.default_rng(4).normal(size=(200, 2)); b = fx.train({"verbosity": -1}, fx.Dataset(X, label=X[:, 1]), 5)
    >>> path = os.path.join(tempfile.mkdtemp(), "m"); save_model(b, path)
    >>> loaded = load_model(path)
    >>> type(loaded).__name__, bool(np.array_equal(loaded.predict(X), b.predict(X)))
    ('Booster', True)
    """
    return _load_verified(_local_dir(model_uri, dst_path))


class _PyFuncModel:
    """What ``mlflow.pyfunc.load_model`` wraps: predictions from the ferrox object."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def get_raw_model(self) -> Any:
        return self.model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        return self.model.predict(model_input, **(params or {}))


def _load_pyfunc(path: str) -> _PyFuncModel:
    # MLflow passes the data path from the python_function section; the MLmodel sits beside it.
    local = os.path.dirname(path) if os.path.isfile(path) else path
    return _PyFuncModel(_load_verified(local))


# -- autologging ----------------------------------------------------------------------------------
_AUTOLOG: dict[str, Any] = {"on": False, "original": None}
_AUTOLOG_TAG = "ferrox.autolog"


def autolog(
    log_models: bool = True,
    log_importance: bool = True,
    disable: bool = False,
    registered_model_name: str | None = None,
    metrics_every: int = 1,
) -> None:
    """Logs every ``ferrox.train`` run to MLflow: params, each round's metrics (``<set>-<metric>`` at step
    = round), feature importance (``feature_importance.json`` and a bar plot when matplotlib is
    installed), and the model (under ``model``). Runs inside the active run, or starts and ends one.
    Estimators that train through ``ferrox.train`` are logged the same way. One training per run: the
    first training inside an active run logs into it, each later one into a nested child run (so tuning
    loops log one child run per trial). ``disable=True`` turns it off.

    >>> import os, tempfile, mlflow, numpy as np, ferrox as fx
    >>> os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    >>> mlflow.set_tracking_uri("file://" + os.path.join(tempfile.mkdtemp(), "mlruns"))
    >>> X = np.random.default_rng(7).normal(size=(300, 2)); ds = fx.Dataset(X, label=X[:, 0])
    >>> autolog(log_models=False)
    >>> with mlflow.start_run() as run:
    ...     _ = fx.train({"verbosity": -1, "num_leaves": 7}, ds, 5, valid_sets=[ds])
    >>> autolog(disable=True)
    >>> client = mlflow.MlflowClient()
    >>> client.get_run(run.info.run_id).data.params["num_leaves"], len(client.get_metric_history(run.info.run_id, "training-l2"))
    ('7', 5)
    """
    from . import gbdt
    import ferrox

    if metrics_every < 1:
        raise ParameterError(f"metrics_every must be >= 1, got {metrics_every!r}")
    if disable:
        if _AUTOLOG["on"]:
            gbdt.train = _AUTOLOG["original"]
            ferrox.train = _AUTOLOG["original"]
        _AUTOLOG.update(on=False, original=None)
        return
    original = _AUTOLOG["original"] or gbdt.train
    config = dict(log_models=log_models, log_importance=log_importance,
                  registered_model_name=registered_model_name, metrics_every=metrics_every)

    @functools.wraps(original)
    def train(params: Mapping[str, Any], train_set: Any, num_boost_round: int = 100, *args: Any, **kwargs: Any) -> Any:
        return _logged_train(original, config, params, train_set, num_boost_round, *args, **kwargs)

    gbdt.train = train
    ferrox.train = train
    _AUTOLOG.update(on=True, original=original)


def _logged_train(original: Callable[..., Any], config: dict[str, Any], params: Mapping[str, Any], train_set: Any,
                  num_boost_round: int, *args: Any, **kwargs: Any) -> Any:
    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    active = mlflow.active_run()
    # One training per run: the first training in an active run logs into it, later ones into child runs.
    nested = active is not None and _AUTOLOG_TAG in client.get_run(active.info.run_id).data.tags
    started = active is None or nested
    if nested:
        run = mlflow.start_run(experiment_id=active.info.experiment_id, nested=True)  # type: ignore[union-attr]
    else:
        run = mlflow.start_run() if started else active
    metrics: list[Any] = []
    try:
        run_id = run.info.run_id
        mlflow.set_tag(_AUTOLOG_TAG, "true")
        logged = {str(k): (v if isinstance(v, (int, float, str, bool)) else repr(v)) for k, v in dict(params or {}).items()
                  if not callable(v)}
        logged["num_boost_round"] = num_boost_round
        mlflow.log_params({k: str(v)[:6000] for k, v in logged.items()})
        every = config["metrics_every"]

        def record(env: Any) -> None:
            if (env.iteration + 1) % every == 0 or env.iteration == env.end_iteration - 1:
                stamp = int(time.time() * 1000)
                metrics.extend(Metric(f"{d}-{m}", float(v), stamp, env.iteration) for d, m, v, _ in env.evaluation_result_list)

        record.order = 25  # type: ignore[attr-defined]
        bound = inspect.signature(original).bind(params, train_set, num_boost_round, *args, **kwargs)
        bound.arguments["callbacks"] = [*(bound.arguments.get("callbacks") or []), record]
        try:
            booster = original(*bound.args, **bound.kwargs)
        finally:  # a pruned or failed training keeps the rounds it reported
            for i in range(0, len(metrics), 1000):
                client.log_batch(run_id, metrics=metrics[i : i + 1000])
        if booster.best_iteration:
            mlflow.log_metric("best_iteration", booster.best_iteration)
        for data, scores in booster.best_score.items():
            for m, v in scores.items():
                mlflow.log_metric(f"best-{data}-{m}", float(v))
        if config["log_importance"]:
            _log_importance(booster)
        if config["log_models"]:
            log_model(booster, name="model", registered_model_name=config["registered_model_name"])
    except BaseException:
        if started:
            mlflow.end_run("FAILED")
        raise
    if started:
        mlflow.end_run()
    return booster


def _log_importance(booster: Any) -> None:
    import mlflow

    names = booster.feature_name()
    split = booster.feature_importance("split")
    gain = booster.feature_importance("gain")
    table = {"feature": list(names), "split": [int(v) for v in split], "gain": [float(v) for v in gain]}
    mlflow.log_dict(table, "feature_importance.json")
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        return
    order = np.argsort(gain)[-30:]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(order) + 1.2))
    ax.barh([names[i] for i in order], gain[order])
    ax.set_xlabel("total gain")
    ax.set_title("feature importance")
    fig.tight_layout()
    mlflow.log_figure(fig, "feature_importance.png")
    plt.close(fig)


# -- registry -------------------------------------------------------------------------------------
def _history(client: Any, name: str, alias: str) -> list[str]:
    tags = client.get_registered_model(name).tags or {}
    raw = tags.get(_HISTORY_TAG.format(alias=alias))
    return list(json.loads(raw)) if raw else []


def promote(name: str, version: int | str, alias: str = "champion", client: Any = None) -> str:
    """Points ``alias`` of registered model ``name`` at ``version``, remembering the version it pointed at
    before (for :func:`rollback`). Returns the version as a string.

    >>> import os, tempfile, mlflow, numpy as np, ferrox as fx
    >>> os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # a local directory store, no server
    >>> mlflow.set_tracking_uri("file://" + os.path.join(tempfile.mkdtemp(), "mlruns"))
    >>> X = np.random.default_rng(5).normal(size=(300, 2)); ds = fx.Dataset(X, label=X[:, 0])
    >>> old, new = fx.train({"verbosity": -1}, ds, 2), fx.train({"verbosity": -1}, ds, 20)
    >>> for b in (old, new):
    ...     with mlflow.start_run():
    ...         _ = log_model(b, name="model", registered_model_name="demo")
    >>> promote("demo", 1), promote("demo", 2)
    ('1', '2')
    >>> rollback("demo")
    '1'
    >>> bool(np.array_equal(load_model("models:/demo@champion").predict(X), old.predict(X)))
    True
    """
    from mlflow import MlflowClient

    client = client or MlflowClient()
    version = str(version)
    client.get_model_version(name, version)  # raises when the version does not exist
    history = _history(client, name, alias)
    try:
        current = client.get_model_version_by_alias(name, alias).version
    except Exception:
        current = None
    if current is not None and str(current) != version:
        history = (history + [str(current)])[-50:]
        client.set_registered_model_tag(name, _HISTORY_TAG.format(alias=alias), json.dumps(history))
    client.set_registered_model_alias(name, alias, version)
    return version


def rollback(name: str, alias: str = "champion", client: Any = None) -> str:
    """Moves ``alias`` back to the version it pointed at before the last :func:`promote`; returns it.

    Raises ParameterError when the alias has no earlier version.

    >>> import os, tempfile, mlflow, numpy as np, ferrox as fx
    >>> os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    >>> mlflow.set_tracking_uri("file://" + os.path.join(tempfile.mkdtemp(), "mlruns"))
    >>> X = np.random.default_rng(6).normal(size=(200, 2))
    >>> with mlflow.start_run():
    ...     _ = log_model(fx.train({"verbosity": -1}, fx.Dataset(X, label=X[:, 0]), 3), name="model", registered_model_name="one")
    >>> promote("one", 1)
    '1'
    >>> rollback("one")
    Traceback (most recent call last):
    ferrox.exceptions.ParameterError: alias 'champion' of model 'one' has no earlier version to roll back to
    """
    from mlflow import MlflowClient

    client = client or MlflowClient()
    history = _history(client, name, alias)
    if not history:
        raise ParameterError(f"alias {alias!r} of model {name!r} has no earlier version to roll back to")
    previous = history.pop()
    client.set_registered_model_alias(name, alias, previous)
    client.set_registered_model_tag(name, _HISTORY_TAG.format(alias=alias), json.dumps(history))
    return previous

