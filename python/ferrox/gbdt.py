"""Gradient-boosted trees: ``ferrox.train`` and ``ferrox.Booster``, with LightGBM's parameter names.

>>> import numpy as np, ferrox as fx
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(3000, 5)).astype(np.float32)
>>> y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(float)
>>> booster = fx.train({"objective": "binary", "num_leaves": 15, "verbosity": -1}, fx.Dataset(X, label=y), 50)
>>> p = booster.predict(X)
>>> p.shape, bool(((p > 0.5) == (y > 0.5)).mean() > 0.9)
((3000,), True)
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from . import _ferrox
from ._frames import as_table_or_matrix
from .callback import CallbackEnv, EarlyStopException, EvalResult, early_stopping, log_evaluation
from .dataset import Dataset
from .exceptions import DataError, ParameterError

__all__ = ["Booster", "train"]

_NUM_ROUND_ALIASES = (
    "num_iterations",
    "num_iteration",
    "n_iter",
    "num_tree",
    "num_trees",
    "num_round",
    "num_rounds",
    "nrounds",
    "num_boost_round",
    "n_estimators",
    "max_iter",
)
_EARLY_STOP_ALIASES = ("early_stopping_round", "early_stopping_rounds", "early_stopping", "n_iter_no_change")


class Booster:
    """A fitted gradient-boosted model.

    Build one with :func:`ferrox.train`, or load one saved with :meth:`save_model`. Prediction runs in
    the compiled forest of the Rust core, with the GIL released.

    >>> import numpy as np, ferrox as fx, pickle
    >>> X = np.random.default_rng(1).normal(size=(500, 3)); y = 2 * X[:, 0]
    >>> b = fx.train({"verbosity": -1, "min_data_in_leaf": 5}, fx.Dataset(X, label=y), 20)
    >>> again = pickle.loads(pickle.dumps(b))
    >>> bool(np.array_equal(again.predict(X), b.predict(X)))
    True
    """

    __slots__ = ("_model", "best_score", "params")

    def __init__(self, model_file: str | os.PathLike[str] | None = None) -> None:
        self.best_score: dict[str, dict[str, float]] = {}
        self.params: dict[str, Any] = {}
        if model_file is None:
            raise ParameterError("Booster() needs model_file; train one with ferrox.train(...)")
        self._model = _ferrox.BoosterModel.load(os.fspath(model_file))

    @classmethod
    def _wrap(cls, model: _ferrox.BoosterModel) -> Booster:
        self = cls.__new__(cls)
        self._model = model
        self.best_score = {}
        self.params = {}
        return self

    # -- inference -------------------------------------------------------------------------------
    def predict(
        self,
        data: Any,
        raw_score: bool = False,
        num_iteration: int | None = None,
        num_threads: int = 0,
        device: str | None = None,
    ) -> np.ndarray:
        """Predictions: probabilities for binary/multiclass, values for regression.

        ``data`` is what :class:`ferrox.Dataset` accepts (numpy, pandas, polars, pyarrow). Returns shape
        ``(n,)``, or ``(n, num_class)`` for multiclass. ``num_iteration`` None or <= 0 uses the best
        round when early stopping recorded one, else every round. ``device`` ``"cuda"`` (or
        ``"cuda:1"``) predicts on a GPU, with the same results (see :mod:`ferrox.gpu`); None uses the
        device the booster was trained on in this process, else the CPU.
        """
        device = _device_of(device, self.params)
        if device is not None:
            out = self._predict(data, raw_score, num_iteration, num_threads, contrib=False, device=device)
            return out[:, 0] if out.shape[1] == 1 else out
        if type(data) is np.ndarray and data.ndim == 2 and data.shape[0] == 1 and data.dtype == np.float64:
            # One row: straight to the core, no threads, no frame.
            it = None if num_iteration is None or num_iteration <= 0 else int(num_iteration)
            one = self._model.predict_row(data[0], bool(raw_score), it)
            return one if one.shape[0] == 1 else one.reshape(1, -1)
        out = self._predict(data, raw_score, num_iteration, num_threads, contrib=False)
        return out[:, 0] if out.shape[1] == 1 else out

    def predict_contrib(self, data: Any, num_iteration: int | None = None, num_threads: int = 0) -> np.ndarray:
        """SHAP values (path-dependent TreeSHAP) in LightGBM's ``pred_contrib`` layout.

        Shape ``(n, features + 1)``: one column per feature, then the expected value; each row sums to
        the raw score. Multiclass models give ``(n, classes * (features + 1))``, class by class.

        >>> import numpy as np, ferrox as fx
        >>> X = np.random.default_rng(3).normal(size=(400, 3)); y = X[:, 0] * 2 + X[:, 1]
        >>> b = fx.train({"verbosity": -1, "min_data_in_leaf": 5}, fx.Dataset(X, label=y), 10)
        >>> phi = b.predict_contrib(X)
        >>> phi.shape, bool(np.allclose(phi.sum(axis=1), b.predict(X, raw_score=True)))
        ((400, 4), True)
        """
        return self._predict(data, True, num_iteration, num_threads, contrib=True)

    def _predict(
        self, data: Any, raw_score: bool, num_iteration: int | None, num_threads: int, contrib: bool, device: str | None = None
    ) -> np.ndarray:
        kind, payload, names = as_table_or_matrix(data)
        it = None if num_iteration is None or num_iteration <= 0 else int(num_iteration)
        if kind == "numpy":
            return self._model.predict_numpy(payload, names, bool(raw_score), it, int(num_threads), contrib, device)
        try:
            return self._model.predict_arrow(payload, bool(raw_score), it, int(num_threads), contrib, device)
        except DataError:
            raise
        except (ValueError, TypeError) as e:
            raise DataError(f"cannot read {type(data).__name__} through the Arrow interface: {e}") from e

    # -- introspection ---------------------------------------------------------------------------
    @property
    def best_iteration(self) -> int:
        """The best round (1-based) recorded by early stopping, 0 when none."""
        return self._model.best_iteration()

    def current_iteration(self) -> int:
        """Completed rounds."""
        return self._model.num_iterations()

    def num_trees(self) -> int:
        """Trees in the model (rounds x classes)."""
        return self._model.num_trees()

    def num_feature(self) -> int:
        """Features the model expects."""
        return len(self._model.feature_name())

    def feature_name(self) -> list[str]:
        """Feature names, in training order."""
        return self._model.feature_name()

    def feature_importance(self, importance_type: str = "split", iteration: int | None = None) -> np.ndarray:
        """Per feature: how often it splits (``"split"``, int) or the loss reduction it brings (``"gain"``)."""
        if importance_type not in ("split", "gain"):
            raise ParameterError(f"importance_type must be 'split' or 'gain', got {importance_type!r}")
        it = None if iteration is None or iteration <= 0 else int(iteration)
        imp = self._model.feature_importance(importance_type == "gain", it)
        return imp.astype(np.int32) if importance_type == "split" else imp

    def dump_model(self) -> dict[str, Any]:
        """The whole model as a dict (trees, thresholds, leaf values, bin rules, parameters)."""
        return json.loads(self._model.dump_json())

    # -- persistence -----------------------------------------------------------------------------
    def save_model(self, filename: str | os.PathLike[str]) -> Booster:
        """Writes the model as a verified ferrox artifact (atomically); returns self."""
        self._model.save(os.fspath(filename))
        return self

    @classmethod
    def load_model(cls, filename: str | os.PathLike[str]) -> Booster:
        """Reads a model written by :meth:`save_model`, verifying its SHA-256 first."""
        return cls._wrap(_ferrox.BoosterModel.load(os.fspath(filename)))

    @classmethod
    def from_lightgbm(cls, model: Any) -> Booster:
        """A LightGBM model, evaluated by ferrox with the same predictions.

        ``model`` is a ``lightgbm.Booster``, a model string (``model_to_string()``), or the path of a
        file written by LightGBM's ``save_model``. Every node index is checked while reading: a corrupted
        or hostile file raises :class:`ferrox.ModelIntegrityError`.

        >>> import numpy as np, lightgbm as lgb, ferrox as fx
        >>> X = np.random.default_rng(0).normal(size=(300, 3)); y = X[:, 0] > 0
        >>> lgb_model = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(X, label=y), 5)
        >>> ours = fx.Booster.from_lightgbm(lgb_model)
        >>> float(np.abs(ours.predict(X) - lgb_model.predict(X)).max()) < 1e-12
        True
        """
        if type(model).__module__.split(".", 1)[0] == "lightgbm":
            text = model.model_to_string()
        elif isinstance(model, str) and model.startswith("tree\n"):
            text = model
        elif isinstance(model, (str, os.PathLike)):
            with open(os.fspath(model), encoding="utf-8") as f:
                text = f.read()
        else:
            raise ParameterError(
                f"from_lightgbm takes a lightgbm.Booster, a model string or a path, got {type(model).__name__}"
            )
        return cls._wrap(_ferrox.BoosterModel.from_lightgbm_string(text))

    @classmethod
    def from_xgboost(cls, model: Any) -> Booster:
        """An XGBoost gbtree model, evaluated by ferrox with the same predictions.

        ``model`` is an ``xgboost.Booster`` (or sklearn-API model), the bytes of ``save_raw()`` (UBJSON or
        JSON), or the path of a ``.json`` / ``.ubj`` model file. XGBoost compares float32 values; ferrox
        turns each threshold into the float64 one that decides the same for float32 and float64 input.
        ``multi:softmax`` models predict class probabilities here (take ``argmax`` for the label).

        >>> import numpy as np, xgboost as xgb, ferrox as fx
        >>> X = np.random.default_rng(0).normal(size=(300, 3)); y = X[:, 0] > 0
        >>> bst = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, label=y), 5)
        >>> ours = fx.Booster.from_xgboost(bst)
        >>> float(np.abs(ours.predict(X) - bst.inplace_predict(X)).max()) < 1e-6
        True
        """
        if type(model).__module__.split(".", 1)[0] == "xgboost":
            booster = model.get_booster() if hasattr(model, "get_booster") else model
            data = bytes(booster.save_raw("ubj"))
        elif isinstance(model, (bytes, bytearray, memoryview)):
            data = bytes(model)
        elif isinstance(model, (str, os.PathLike)):
            with open(os.fspath(model), "rb") as f:
                data = f.read()
        else:
            raise ParameterError(
                f"from_xgboost takes an xgboost.Booster, model bytes or a path, got {type(model).__name__}"
            )
        return cls._wrap(_ferrox.BoosterModel.from_xgboost_bytes(data))

    def to_bytes(self) -> bytes:
        """The model as artifact bytes."""
        return self._model.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Booster:
        """A model from :meth:`to_bytes` output; raises ModelIntegrityError when the bytes were changed."""
        return cls._wrap(_ferrox.BoosterModel.from_bytes(bytes(data)))

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (Booster.from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        return f"<ferrox.Booster: {self.current_iteration()} rounds, {self.num_trees()} trees, {self.num_feature()} features>"


class _NotebookProgress:
    """A one-line progress display, updated in place, for training inside a Jupyter kernel."""

    def __init__(self, total: int) -> None:
        from IPython.display import display  # type: ignore[import-not-found]

        self.total = total
        self.handle = display(self._text(0, []), display_id=True)

    def _text(self, done: int, results: list[EvalResult]) -> Any:
        from IPython.display import Pretty  # type: ignore[import-not-found]

        width = 30
        filled = int(width * done / max(self.total, 1))
        metrics = "  ".join(f"{d} {m}: {v:.6g}" for d, m, v, _ in results[:4])
        return Pretty(f"[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total}  {metrics}")

    def update(self, done: int, results: list[EvalResult]) -> None:
        if self.handle is not None:
            self.handle.update(self._text(done, results))


def _progress(total: int, verbosity: Any) -> _NotebookProgress | None:
    """A progress display when verbose and running in a notebook kernel; None elsewhere."""
    if not isinstance(verbosity, int) or verbosity < 1 or "ipykernel" not in sys.modules:
        return None
    try:
        return _NotebookProgress(total)
    except ImportError:
        return None


def _pop_alias(params: dict[str, Any], aliases: Iterable[str]) -> Any:
    found = None
    for a in aliases:
        if a in params:
            found = params.pop(a)
    return found


def _round_params(params: Any, num_boost_round: Any) -> tuple[dict[str, Any], int, Any, bool, Any]:
    """A copy of ``params`` without the round settings, and those settings: the number of rounds (an alias
    in ``params`` wins), early-stopping rounds, first_metric_only, verbosity."""
    params = dict(params or {})
    rounds = _pop_alias(params, _NUM_ROUND_ALIASES)
    if rounds is not None:
        num_boost_round = rounds
    if isinstance(num_boost_round, bool) or not isinstance(num_boost_round, (int, np.integer)) or num_boost_round < 0:
        raise ParameterError(f"num_boost_round must be an integer >= 0, got {num_boost_round!r}")
    stop_rounds = _pop_alias(params, _EARLY_STOP_ALIASES)
    first_metric_only = bool(params.pop("first_metric_only", False))
    verbosity = params.get("verbosity", params.get("verbose", 1))
    return params, int(num_boost_round), stop_rounds, first_metric_only, verbosity


def _device_of(device: str | None, params: Mapping[str, Any]) -> str | None:
    """The device a prediction runs on: the one asked for, else the training device (None: the CPU)."""
    if device is None:
        device = params.get("device", params.get("device_type"))
    if device is None:
        return None
    if not isinstance(device, str):
        raise ParameterError(f"device must be a string such as 'cpu' or 'cuda', got {device!r}")
    return None if device.strip().lower() == "cpu" else device


def train(
    params: Mapping[str, Any],
    train_set: Dataset,
    num_boost_round: int = 100,
    valid_sets: Sequence[Dataset] | Dataset = (),
    valid_names: Sequence[str] | None = None,
    callbacks: Sequence[Callable[[CallbackEnv], None]] | None = None,
    init_model: Booster | str | os.PathLike[str] | None = None,
) -> Booster:
    """Trains a gradient-boosted model, as ``lightgbm.train`` does.

    ``params`` takes LightGBM's names and aliases (an unknown name raises ParameterError naming the
    closest valid one). ``objective`` may also be a callable ``f(preds, train_set) -> (grad, hess)``.
    Validation sets must be built with ``reference=train_set``; a validation set that *is* the training
    set is reported as ``"training"``. ``early_stopping_round`` in params adds :func:`early_stopping`.

    >>> import numpy as np, ferrox as fx
    >>> X = np.random.default_rng(2).normal(size=(1000, 4)); y = X[:, 0] - X[:, 1]
    >>> ds = fx.Dataset(X, label=y)
    >>> b = fx.train({"learning_rate": 0.2, "verbosity": -1}, ds, num_boost_round=30)
    >>> float(np.sqrt(np.mean((b.predict(X) - y) ** 2))) < 0.3
    True
    """
    if not isinstance(train_set, Dataset):
        raise ParameterError(f"train_set must be a ferrox.Dataset, got {type(train_set).__name__}")
    params, num_boost_round, stop_rounds, first_metric_only, verbosity = _round_params(params, num_boost_round)
    fobj = None
    if callable(params.get("objective")):
        fobj = params.pop("objective")
        params["objective"] = "custom"
    if params.get("interaction_constraints"):
        params["interaction_constraints"] = _feature_groups(params["interaction_constraints"], train_set.feature_name())
    if isinstance(valid_sets, Dataset):
        valid_sets = [valid_sets]
    valid_sets = list(valid_sets or [])
    names = list(valid_names) if valid_names is not None else []
    if len(names) > len(valid_sets):
        raise ParameterError(f"{len(names)} valid_names for {len(valid_sets)} valid_sets")
    for i, v in enumerate(valid_sets):
        if not isinstance(v, Dataset):
            raise ParameterError(f"valid_sets[{i}] must be a ferrox.Dataset, got {type(v).__name__}")
    # Which evaluations to report: the training data itself is evaluated on its own scores.
    reported: list[tuple[str, int]] = []
    others: list[Dataset] = []
    for i, v in enumerate(valid_sets):
        name = names[i] if i < len(names) else None
        if v is train_set:
            reported.append((name or "training", 0))
        else:
            others.append(v)
            reported.append((name or f"valid_{i}", len(others)))
    if isinstance(init_model, (str, os.PathLike)):
        init_model = Booster.load_model(init_model)
    if init_model is not None and not isinstance(init_model, Booster):
        raise ParameterError(f"init_model must be a ferrox.Booster or a path, got {type(init_model).__name__}")
    trainer = _ferrox.Trainer(
        list(params.items()), train_set._handle, [v._handle for v in others], None if init_model is None else init_model._model
    )
    if fobj is not None:
        update: Callable[[], bool] = lambda: trainer.update(*_custom_gradients(fobj, trainer, train_set))
    else:
        update = trainer.update
    return _boost(trainer, update, params, int(num_boost_round), reported, callbacks, stop_rounds, first_metric_only, verbosity)


def _boost(
    trainer: Any,
    update: Callable[[], bool],
    params: dict[str, Any],
    num_boost_round: int,
    reported: list[tuple[str, int]],
    callbacks: Sequence[Callable[[CallbackEnv], None]] | None,
    stop_rounds: Any,
    first_metric_only: bool,
    verbosity: Any,
) -> Booster:
    """The round loop shared by ``train`` and ``ferrox.ray.train``: callbacks, evaluation, early stopping.

    ``trainer`` has ``current_iteration()``, ``eval(i)`` (0 = training data, i = validation set i - 1) and
    ``model()``; ``update()`` runs one round and returns True when no tree could split.
    """
    callbacks = list(callbacks or [])
    if stop_rounds is not None and int(stop_rounds) > 0:
        callbacks.append(early_stopping(int(stop_rounds), first_metric_only=first_metric_only, verbose=verbosity > 0))
    if not any(getattr(cb, "order", None) == 10 for cb in callbacks) and isinstance(verbosity, int) and verbosity > 1:
        callbacks.append(log_evaluation(1))
    before = sorted((cb for cb in callbacks if getattr(cb, "before_iteration", False)), key=lambda c: getattr(c, "order", 0))
    after = sorted((cb for cb in callbacks if not getattr(cb, "before_iteration", False)), key=lambda c: getattr(c, "order", 0))
    begin = trainer.current_iteration()
    end = begin + int(num_boost_round)
    best_iter = 0
    best_results: list[EvalResult] = []
    results: list[EvalResult] = []
    bar = _progress(int(num_boost_round), verbosity)
    for it in range(begin, end):
        env = CallbackEnv(None, params, it, begin, end, [])
        for cb in before:
            cb(env)
        if update():
            break
        results = [(name, m, v, hb) for name, idx in reported for (m, v, hb) in trainer.eval(idx)]
        if bar is not None:
            bar.update(it - begin + 1, results)
        env = CallbackEnv(None, params, it, begin, end, results)
        try:
            for cb in after:
                cb(env)
        except EarlyStopException as e:
            best_iter = e.best_iteration + 1
            best_results = e.best_score
            break
    model = trainer.model()
    if best_iter:
        model = model.with_best_iteration(best_iter)
    booster = Booster._wrap(model)
    booster.params = params
    for data, metric, value, _ in best_results or results:
        booster.best_score.setdefault(data, {})[metric] = value
    return booster


def _feature_groups(groups: Any, names: list[str]) -> list[list[int]]:
    """Interaction-constraint groups with feature names replaced by their indices."""
    out = []
    for g in groups:
        idx = []
        for f in g:
            if isinstance(f, str):
                if f not in names:
                    raise ParameterError(f"interaction_constraints names feature {f!r}, which is not in the Dataset")
                idx.append(names.index(f))
            else:
                idx.append(int(f))
        out.append(idx)
    return out


def _custom_gradients(fobj: Callable[..., Any], trainer: _ferrox.Trainer, train_set: Dataset) -> tuple[np.ndarray, np.ndarray]:
    scores = trainer.train_scores()
    n = train_set.num_data()
    k = scores.shape[0] // n
    preds = scores if k == 1 else scores.reshape(k, n).T
    grad, hess = fobj(preds, train_set)
    grad = np.asarray(grad, dtype=np.float64)
    hess = np.asarray(hess, dtype=np.float64)
    if grad.shape != preds.shape or hess.shape != preds.shape:
        raise DataError(f"the custom objective must return grad and hess of shape {preds.shape}, got {grad.shape} and {hess.shape}")
    if k > 1:
        grad, hess = grad.T.reshape(-1), hess.T.reshape(-1)
    return np.ascontiguousarray(grad, dtype=np.float32), np.ascontiguousarray(hess, dtype=np.float32)
