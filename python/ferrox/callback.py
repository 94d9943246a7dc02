"""Training callbacks, with LightGBM's names and calling convention.

A callback is any callable taking a :class:`CallbackEnv`; it runs once per boosting round, after the
round's evaluation (or before the round when it has ``before_iteration = True``). Raise
:class:`EarlyStopException` to stop training.

>>> import numpy as np, ferrox as fx
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(2000, 4)); y = X[:, 0] + 0.1 * rng.normal(size=2000)
>>> train = fx.Dataset(X[:1500], label=y[:1500]); valid = fx.Dataset(X[1500:], label=y[1500:], reference=train)
>>> history = {}
>>> booster = fx.train({"verbosity": -1}, train, num_boost_round=500, valid_sets=[valid],
...                    callbacks=[fx.early_stopping(10, verbose=False), fx.record_evaluation(history)])
>>> booster.best_iteration < 500 and len(history["valid_0"]["l2"]) >= booster.best_iteration
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CallbackEnv",
    "EarlyStopException",
    "early_stopping",
    "log_evaluation",
    "record_evaluation",
]

# (dataset name, metric name, value, higher is better)
EvalResult = tuple[str, str, float, bool]


@dataclass
class CallbackEnv:
    """What a callback sees each round (the fields of LightGBM's ``CallbackEnv``)."""

    model: Any
    params: dict[str, Any]
    iteration: int
    begin_iteration: int
    end_iteration: int
    evaluation_result_list: list[EvalResult] = field(default_factory=list)


class EarlyStopException(Exception):
    """Raised by a callback to stop training; carries the best round (0-based) and its scores."""

    def __init__(self, best_iteration: int, best_score: list[EvalResult]) -> None:
        super().__init__(best_iteration, best_score)
        self.best_iteration = best_iteration
        self.best_score = best_score


def _format(results: list[EvalResult]) -> str:
    return "\t".join(f"{d}'s {m}: {v:g}" for d, m, v, _ in results)


def log_evaluation(period: int = 1, show_stdv: bool = True) -> Callable[[CallbackEnv], None]:
    """Prints the evaluation results every ``period`` rounds.

    >>> cb = log_evaluation(10)
    >>> cb.order
    10
    """
    if period < 0:
        from .exceptions import ParameterError

        raise ParameterError(f"period must be >= 0, got {period}")

    def _callback(env: CallbackEnv) -> None:
        if period > 0 and env.evaluation_result_list and (env.iteration + 1) % period == 0:
            print(f"[{env.iteration + 1}]\t{_format(env.evaluation_result_list)}")

    _callback.order = 10  # type: ignore[attr-defined]
    return _callback


def record_evaluation(eval_result: dict[str, dict[str, list[float]]]) -> Callable[[CallbackEnv], None]:
    """Appends every round's results to ``eval_result[data_name][metric_name]``.

    >>> store = {}; cb = record_evaluation(store); cb.order
    20
    """
    if not isinstance(eval_result, dict):
        from .exceptions import ParameterError

        raise ParameterError("eval_result must be a dict")
    eval_result.clear()

    def _callback(env: CallbackEnv) -> None:
        for data, metric, value, _ in env.evaluation_result_list:
            eval_result.setdefault(data, {}).setdefault(metric, []).append(value)

    _callback.order = 20  # type: ignore[attr-defined]
    return _callback


def early_stopping(
    stopping_rounds: int, first_metric_only: bool = False, verbose: bool = True, min_delta: float = 0.0
) -> Callable[[CallbackEnv], None]:
    """Stops when no validation metric has improved for ``stopping_rounds`` rounds.

    Every metric on every validation set is watched (the first only with ``first_metric_only``); the
    training data's own scores are ignored, as LightGBM does. The booster keeps all trees and records the
    best round, which ``predict`` then uses by default.

    >>> early_stopping(5).order
    30
    """
    from .exceptions import ParameterError

    if not isinstance(stopping_rounds, int) or stopping_rounds <= 0:
        raise ParameterError(f"stopping_rounds must be a positive integer, got {stopping_rounds!r}")
    if min_delta < 0:
        raise ParameterError(f"min_delta must be >= 0, got {min_delta}")
    best: dict[tuple[str, str], tuple[float, int, list[EvalResult]]] = {}

    def _callback(env: CallbackEnv) -> None:
        watched = [r for r in env.evaluation_result_list if r[0] != "training"]
        if not watched:
            if env.iteration == env.begin_iteration:
                raise ParameterError("early stopping needs at least one validation set with a metric")
            return
        if first_metric_only:
            first = watched[0][1]
            watched = [r for r in watched if r[1] == first]
        for data, metric, value, higher in watched:
            key = (data, metric)
            prev = best.get(key)
            improved = prev is None or (value > prev[0] + min_delta if higher else value < prev[0] - min_delta)
            if improved:
                best[key] = (value, env.iteration, list(env.evaluation_result_list))
            elif env.iteration - prev[1] >= stopping_rounds:  # type: ignore[index]
                b = best[key]
                if verbose:
                    print(f"Early stopping, best iteration is:\n[{b[1] + 1}]\t{_format(b[2])}")
                raise EarlyStopException(b[1], b[2])
        if env.iteration == env.end_iteration - 1 and best:
            # Out of rounds: report the best round of the first watched metric.
            key = (watched[0][0], watched[0][1])
            b = best[key]
            raise EarlyStopException(b[1], b[2])

    _callback.order = 30  # type: ignore[attr-defined]
    return _callback
