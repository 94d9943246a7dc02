"""Optuna integration: a pruning callback for training and a stepwise tuner.

``optuna`` is imported when these are used, never by ``import ferrox``.

Threads: a study run with ``n_jobs > 1`` trains several models at once. With the default thread count
the trainings that run side by side share the cores by themselves (see :func:`ferrox.default_num_threads`);
``num_threads = threads_per_trial(n_jobs)`` fixes the split explicitly, as :func:`tune` does.

>>> import numpy as np, optuna, ferrox as fx
>>> from ferrox.optuna import PruningCallback
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(600, 4)); y = X[:, 0] + 0.1 * rng.normal(size=600)
>>> train = fx.Dataset(X[:400], label=y[:400]); valid = fx.Dataset(X[400:], label=y[400:], reference=train)
>>> def objective(trial):
...     params = {"verbosity": -1, "num_leaves": trial.suggest_int("num_leaves", 2, 15)}
...     b = fx.train(params, train, 20, valid_sets=[valid], callbacks=[PruningCallback(trial, "l2")])
...     return b.best_score["valid_0"]["l2"]
>>> optuna.logging.set_verbosity(optuna.logging.WARNING)
>>> study = optuna.create_study(direction="minimize")
>>> study.optimize(objective, n_trials=3)
>>> len(study.trials)
3
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .callback import CallbackEnv, early_stopping
from .dataset import Dataset
from .exceptions import ParameterError

__all__ = ["PruningCallback", "TuneResult", "threads_per_trial", "tune"]


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def threads_per_trial(n_jobs: int, num_threads: int | None = None) -> int:
    """Threads for one training when ``n_jobs`` trials run at once: ``num_threads // n_jobs``, at least 1.

    ``num_threads`` None or <= 0 means every core this process may use. ``n_jobs=-1`` (Optuna's "one
    worker per core") gives 1.

    >>> threads_per_trial(4, 8), threads_per_trial(3, 8), threads_per_trial(16, 8), threads_per_trial(-1)
    (2, 2, 1, 1)
    """
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ParameterError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}")
    total = _available_cores() if num_threads is None or num_threads <= 0 else int(num_threads)
    workers = _available_cores() if n_jobs == -1 else n_jobs
    return max(1, total // workers)


class PruningCallback:
    """Reports a validation metric to an Optuna trial every round; raises ``optuna.TrialPruned`` when the
    study's pruner says the trial should stop.

    ``metric`` is the metric's name as training reports it (``"l2"``, ``"binary_logloss"``, ``"auc"``...),
    ``valid_name`` the validation set's name (``valid_0`` unless ``valid_names`` says otherwise). Works
    with ``ferrox.train(callbacks=[...])`` and any estimator whose ``fit(eval_set=..., callbacks=[...])``
    calls ferrox callbacks. A metric or set that is not evaluated raises ParameterError naming what is.

    >>> import optuna
    >>> cb = PruningCallback(optuna.create_study().ask(), "l2", valid_name="valid")
    >>> cb.metric, cb.valid_name
    ('l2', 'valid')
    """

    order = 40
    before_iteration = False

    def __init__(self, trial: Any, metric: str, valid_name: str = "valid_0", report_interval: int = 1) -> None:
        if not isinstance(metric, str) or not metric:
            raise ParameterError(f"metric must be a metric name such as 'l2' or 'auc', got {metric!r}")
        if isinstance(report_interval, bool) or not isinstance(report_interval, int) or report_interval < 1:
            raise ParameterError(f"report_interval must be an integer >= 1, got {report_interval!r}")
        self.trial = trial
        self.metric = metric
        self.valid_name = valid_name
        self.report_interval = report_interval
        self._checked = False

    def __call__(self, env: CallbackEnv) -> None:
        import optuna

        found = None
        for data, metric, value, higher in env.evaluation_result_list:
            if data == self.valid_name and metric == self.metric:
                found = (value, higher)
                break
        if found is None:
            evaluated = ", ".join(f"{d}:{m}" for d, m, _, _ in env.evaluation_result_list) or "nothing"
            raise ParameterError(
                f"PruningCallback watches metric {self.metric!r} on valid set {self.valid_name!r}, which is not "
                f"evaluated; training evaluates {evaluated} (set params['metric'] and valid_sets/valid_names)"
            )
        value, higher = found
        if not self._checked:
            self._checked = True
            study = getattr(self.trial, "study", None)
            direction = getattr(study, "direction", None)
            if direction is not None:
                maximize = direction == optuna.study.StudyDirection.MAXIMIZE
                if maximize != bool(higher):
                    raise ParameterError(
                        f"the study {'maximizes' if maximize else 'minimizes'} but {self.metric!r} is better "
                        f"when {'higher' if higher else 'lower'}; create the study with "
                        f"direction={'maximize' if higher else 'minimize'!r}"
                    )
        step = env.iteration
        if (step - env.begin_iteration + 1) % self.report_interval != 0:
            return
        self.trial.report(float(value), step=step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"trial pruned at round {step + 1}: {self.valid_name} {self.metric} = {value:g}")


# Parameters the tuner sets, with the aliases removed from the starting params so that one name wins.
_TUNED_ALIASES: dict[str, tuple[str, ...]] = {
    "feature_fraction": ("sub_feature", "colsample_bytree"),
    "num_leaves": ("num_leaf", "max_leaves", "max_leaf", "max_leaf_nodes"),
    "bagging_fraction": ("sub_row", "subsample", "bagging"),
    "bagging_freq": ("subsample_freq",),
    "lambda_l1": ("reg_alpha", "l1_regularization"),
    "lambda_l2": ("reg_lambda", "lambda", "l2_regularization"),
    "min_data_in_leaf": ("min_data_per_leaf", "min_data", "min_child_samples", "min_samples_leaf"),
}
_THREAD_ALIASES = ("num_threads", "num_thread", "nthread", "nthreads", "n_jobs")
_STOP_ALIASES = ("early_stopping_round", "early_stopping_rounds", "early_stopping", "n_iter_no_change")
_ROUND_ALIASES = ("num_iterations", "num_iteration", "n_iter", "num_tree", "num_trees", "num_round",
                  "num_rounds", "nrounds", "num_boost_round", "n_estimators", "max_iter")


def _canonical(params: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(params)
    for name, aliases in _TUNED_ALIASES.items():
        for a in aliases:
            if a in out:
                value = out.pop(a)
                out.setdefault(name, value)
    return out


def _step_feature_fraction(trial: Any) -> dict[str, Any]:
    return {"feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0)}


def _step_num_leaves(trial: Any) -> dict[str, Any]:
    return {"num_leaves": trial.suggest_int("num_leaves", 2, 256, log=True)}


def _step_bagging(trial: Any) -> dict[str, Any]:
    return {
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.4, 1.0),
        "bagging_freq": trial.suggest_int("bagging_freq", 1, 7),
    }


def _step_regularisation(trial: Any) -> dict[str, Any]:
    return {
        "lambda_l1": trial.suggest_float("lambda_l1", 1e-8, 10.0, log=True),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-8, 10.0, log=True),
    }


def _step_min_child_samples(trial: Any) -> dict[str, Any]:
    return {"min_data_in_leaf": trial.suggest_categorical("min_data_in_leaf", [5, 10, 25, 50, 100])}


# (name, weight in the trial budget, suggest function, grid of first trials)
_STEPS: list[tuple[str, int, Callable[[Any], dict[str, Any]], list[dict[str, Any]]]] = [
    ("feature_fraction", 7, _step_feature_fraction, [{"feature_fraction": v} for v in (1.0, 0.8, 0.6, 0.4, 0.9, 0.7, 0.5)]),
    ("num_leaves", 20, _step_num_leaves, []),
    ("bagging", 10, _step_bagging, []),
    ("regularisation", 20, _step_regularisation, []),
    ("min_child_samples", 5, _step_min_child_samples, [{"min_data_in_leaf": v} for v in (5, 10, 25, 50, 100)]),
]


@dataclass
class TuneResult:
    """What :func:`tune` found: the best params (starting params with the tuned values), the booster
    trained with them, its validation score and round, and one Optuna study per step."""

    params: dict[str, Any]
    booster: Any
    best_score: float
    metric: str
    start_score: float
    best_iteration: int
    studies: dict[str, Any] = field(default_factory=dict)

    def __iter__(self):  # type: ignore[no-untyped-def]
        """Unpacks as ``params, booster``."""
        return iter((self.params, self.booster))


def _split_trials(n_trials: int | None) -> list[int | None]:
    if n_trials is None:
        return [None] * len(_STEPS)
    total = sum(w for _, w, _, _ in _STEPS)
    counts = [max(1, math.floor(n_trials * w / total)) for _, w, _, _ in _STEPS]
    # Hand out what rounding left, to the heaviest steps first.
    order = sorted(range(len(_STEPS)), key=lambda i: -_STEPS[i][1])
    i = 0
    while sum(counts) < n_trials:
        counts[order[i % len(order)]] += 1
        i += 1
    return list(counts)


def tune(
    params: Mapping[str, Any],
    train_set: Dataset,
    valid_set: Dataset,
    n_trials: int | None = 30,
    timeout: float | None = None,
    *,
    num_boost_round: int = 1000,
    early_stopping_rounds: int = 50,
    metric: str | None = None,
    n_jobs: int = 1,
    seed: int = 0,
    steps: Sequence[str] | None = None,
    callbacks: Sequence[Callable[[CallbackEnv], None]] | None = None,
) -> TuneResult:
    """Tunes the main parameters one group at a time, as LightGBM's stepwise tuner does.

    Steps, in order: ``feature_fraction``, ``num_leaves``, ``bagging`` (fraction and frequency),
    ``regularisation`` (``lambda_l1``, ``lambda_l2``), ``min_child_samples`` (``min_data_in_leaf``).
    Each step runs an Optuna study (grid points first where the step has a grid, then TPE) with the best
    values of the earlier steps fixed; a step's values are kept only when they beat the best so far. Every
    trial trains on the same binned ``train_set`` and ``valid_set`` (build ``valid_set`` with
    ``reference=train_set``); nothing is binned again.

    The score is the validation set's ``metric`` (default: the first one training reports) at the best
    round under early stopping. ``n_trials`` is the total across steps (split by each step's weight, at
    least one each; None: no limit, then ``timeout`` must be set); ``timeout`` the total seconds. With
    ``n_jobs > 1`` trials of a step run in parallel threads, each training with
    ``threads_per_trial(n_jobs, params num_threads)`` threads so the cores are not oversubscribed.

    Returns a :class:`TuneResult` (``params, booster = tune(...)`` unpacks the two main parts).

    >>> import numpy as np, ferrox as fx
    >>> from ferrox.optuna import tune
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(800, 5)); y = X[:, 0] * X[:, 1] + 0.1 * rng.normal(size=800)
    >>> train = fx.Dataset(X[:600], label=y[:600]); valid = fx.Dataset(X[600:], label=y[600:], reference=train)
    >>> res = tune({"verbosity": -1, "learning_rate": 0.2}, train, valid, n_trials=5, num_boost_round=50)
    >>> res.best_score <= res.start_score and sorted(res.studies)[:2]
    ['bagging', 'feature_fraction']
    """
    import optuna

    from .gbdt import train as _train

    if not isinstance(train_set, Dataset) or not isinstance(valid_set, Dataset):
        raise ParameterError("tune needs ferrox.Dataset objects for train_set and valid_set")
    if valid_set is train_set:
        raise ParameterError("valid_set must be held-out data built with reference=train_set, not train_set itself")
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1):
        raise ParameterError(f"n_trials must be a positive integer or None, got {n_trials!r}")
    if n_trials is None and timeout is None:
        raise ParameterError("set n_trials or timeout (or both); with neither the tuner would never stop")
    if timeout is not None and timeout <= 0:
        raise ParameterError(f"timeout must be > 0 seconds, got {timeout!r}")
    names = [s[0] for s in _STEPS]
    chosen = list(names if steps is None else steps)
    for s in chosen:
        if s not in names:
            raise ParameterError(f"unknown tuning step {s!r}; steps are {names}")

    base = _canonical(params)
    for a in _STOP_ALIASES + _ROUND_ALIASES:
        base.pop(a, None)
    threads = None
    for a in _THREAD_ALIASES:
        if a in base:
            threads = base.pop(a)
    base["num_threads"] = threads_per_trial(n_jobs, threads) if n_jobs != 1 else (threads or 0)
    base.setdefault("verbosity", -1)
    extra = list(callbacks or [])
    deadline = None if timeout is None else time.monotonic() + float(timeout)
    valid_name = "valid"

    def fit(p: Mapping[str, Any], more: Sequence[Callable[[CallbackEnv], None]] = ()) -> tuple[Any, float, bool, str]:
        higher: dict[str, bool] = {}

        def directions(env: CallbackEnv) -> None:
            if not higher:
                higher.update({m: hb for d, m, _, hb in env.evaluation_result_list if d == valid_name})

        booster = _train(
            p, train_set, num_boost_round, valid_sets=[valid_set], valid_names=[valid_name],
            callbacks=[directions, early_stopping(early_stopping_rounds, verbose=False), *extra, *more],
        )
        scores = booster.best_score.get(valid_name, {})
        if not scores:
            raise ParameterError("training reported no validation metric; set params['metric']")
        name = metric or next(iter(scores))
        if name not in scores:
            raise ParameterError(f"metric {name!r} is not evaluated on the validation set; evaluated: {sorted(scores)}")
        return booster, float(scores[name]), higher[name], name

    best_booster, best_value, higher, metric_name = fit(base)
    start_value = best_value
    best_params = dict(base)
    direction = "maximize" if higher else "minimize"
    studies: dict[str, Any] = {}
    budgets = dict(zip(names, _split_trials(n_trials)))

    for step_name, _, suggest, grid in _STEPS:
        if step_name not in chosen:
            continue
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            break
        fixed = dict(best_params)
        study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=seed + len(studies)))
        budget = budgets[step_name]
        for g in grid[: budget if budget is not None else len(grid)]:
            study.enqueue_trial(g)
        boosters: dict[int, Any] = {}

        def objective(trial: Any, fixed: dict[str, Any] = fixed, suggest: Any = suggest, boosters: dict[int, Any] = boosters) -> float:
            p = {**fixed, **suggest(trial)}
            booster, value, _, _ = fit(p, [PruningCallback(trial, metric_name, valid_name)])
            boosters[trial.number] = booster
            trial.set_user_attr("best_iteration", booster.best_iteration)
            return value

        study.optimize(objective, n_trials=budget, timeout=remaining, n_jobs=n_jobs, catch=())
        studies[step_name] = study
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not done:
            continue
        top = study.best_trial
        if (top.value > best_value) if higher else (top.value < best_value):
            best_value = float(top.value)
            best_params = {**fixed, **top.params}
            best_booster = boosters[top.number]
    return TuneResult(best_params, best_booster, best_value, metric_name, start_value, best_booster.best_iteration, studies)
