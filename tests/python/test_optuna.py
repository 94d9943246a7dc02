"""Optuna integration against the real optuna: pruning during training and the stepwise tuner."""

import numpy as np
import pytest

import ferrox as fx
from ferrox.optuna import PruningCallback, threads_per_trial, tune

optuna = pytest.importorskip("optuna")
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _regression(rng, n=1200, f=6):
    X = rng.normal(size=(n, f))
    y = X[:, 0] * X[:, 1] + np.sin(2 * X[:, 2]) + 0.1 * rng.normal(size=n)
    cut = int(n * 0.75)
    train = fx.Dataset(X[:cut], label=y[:cut])
    valid = fx.Dataset(X[cut:], label=y[cut:], reference=train)
    return X, y, cut, train, valid


def test_pruning_callback_prunes_bad_trials(rng):
    _, _, _, train, valid = _regression(rng)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=5)
    study = optuna.create_study(direction="minimize", pruner=pruner)
    # Two good trials set the median; trials that barely learn must be pruned, one as good must not.
    for lr in (0.3, 0.3, 0.001, 0.0005, 0.3):
        study.enqueue_trial({"learning_rate": lr})

    def objective(trial):
        params = {"verbosity": -1, "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1.0, log=True)}
        b = fx.train(params, train, 40, valid_sets=[valid], valid_names=["valid_0"], callbacks=[PruningCallback(trial, "l2")])
        return b.best_score["valid_0"]["l2"]

    study.optimize(objective, n_trials=5)
    states = [t.state for t in study.trials]
    S = optuna.trial.TrialState
    assert states == [S.COMPLETE, S.COMPLETE, S.PRUNED, S.PRUNED, S.COMPLETE]
    # Every round was reported until the prune; the pruned trials stopped early.
    assert len(study.trials[0].intermediate_values) == 40
    assert len(study.trials[2].intermediate_values) < 40
    assert sorted(study.trials[0].intermediate_values) == list(range(40))


def test_pruning_callback_with_an_estimator_style_fit(rng):
    X, y, cut, _, _ = _regression(rng, n=600)

    class TinyEstimator:
        """The shape of a ferrox estimator's fit: eval_set and callbacks are passed to training."""

        def fit(self, X, y, eval_set, callbacks):
            train = fx.Dataset(X, label=y)
            valid = [fx.Dataset(a, label=b, reference=train) for a, b in eval_set]
            self.booster_ = fx.train({"verbosity": -1}, train, 15, valid_sets=valid, callbacks=callbacks)
            return self

    study = optuna.create_study(direction="minimize")
    trial = study.ask()
    TinyEstimator().fit(X[:cut], y[:cut], eval_set=[(X[cut:], y[cut:])], callbacks=[PruningCallback(trial, "l2")])
    assert sorted(trial.storage.get_trial(trial._trial_id).intermediate_values) == list(range(15))


def test_pruning_callback_names_what_is_evaluated(rng):
    _, _, _, train, valid = _regression(rng, n=400)
    trial = optuna.create_study(direction="minimize").ask()
    with pytest.raises(fx.ParameterError, match=r"'auc'.*'valid_0'.*valid_0:l2"):
        fx.train({"verbosity": -1}, train, 5, valid_sets=[valid], callbacks=[PruningCallback(trial, "auc")])
    with pytest.raises(fx.ParameterError, match=r"'l2' on valid set 'holdout'.*nothing"):
        fx.train({"verbosity": -1}, train, 5, callbacks=[PruningCallback(trial, "l2", valid_name="holdout")])
    up = optuna.create_study(direction="maximize").ask()
    with pytest.raises(fx.ParameterError, match="direction='minimize'"):
        fx.train({"verbosity": -1}, train, 5, valid_sets=[valid], callbacks=[PruningCallback(up, "l2")])
    with pytest.raises(fx.ParameterError, match="report_interval"):
        PruningCallback(trial, "l2", report_interval=0)


def test_tune_improves_and_reuses_the_binned_data(rng, monkeypatch):
    X, y, cut, train, valid = _regression(rng, n=1500)
    built = []
    original = fx.Dataset.__init__

    def counting(self, *a, **k):
        built.append(1)
        original(self, *a, **k)

    monkeypatch.setattr(fx.Dataset, "__init__", counting)
    start = {"verbosity": -1, "learning_rate": 0.1, "num_leaves": 3, "min_child_samples": 200, "feature_fraction": 0.4}
    res = tune(start, train, valid, n_trials=10, timeout=60, num_boost_round=200, early_stopping_rounds=20, seed=1)
    assert built == []  # no trial binned data again
    assert res.metric == "l2"
    assert res.best_score < 0.9 * res.start_score
    assert sum(len(s.trials) for s in res.studies.values()) == 10
    # The booster is the one trained with the reported params, and its score is the reported one.
    pred = res.booster.predict(X[cut:])
    assert np.isclose(np.mean((pred - y[cut:]) ** 2), res.best_score, rtol=1e-9)
    params, booster = res
    assert booster is res.booster and "min_child_samples" not in params and "min_data_in_leaf" in params
    again = fx.train({**params, "early_stopping_round": 20}, train, 200, valid_sets=[valid])
    assert np.array_equal(again.predict(X[cut:]), pred)


def test_tune_divides_threads_across_parallel_trials(rng):
    _, _, _, train, valid = _regression(rng, n=500)
    res = tune({"verbosity": -1, "num_threads": 4}, train, valid, n_trials=5, n_jobs=2, num_boost_round=30,
               steps=["num_leaves"])
    assert res.params["num_threads"] == 2 == threads_per_trial(2, 4)
    assert list(res.studies) == ["num_leaves"] and len(res.studies["num_leaves"].trials) >= 1


def test_tune_rejects_bad_arguments(rng):
    _, _, _, train, valid = _regression(rng, n=300)
    with pytest.raises(fx.ParameterError, match="n_trials or timeout"):
        tune({}, train, valid, n_trials=None)
    with pytest.raises(fx.ParameterError, match="unknown tuning step 'leaves'"):
        tune({}, train, valid, n_trials=2, steps=["leaves"])
    with pytest.raises(fx.ParameterError, match="held-out"):
        tune({}, train, train, n_trials=2)
    with pytest.raises(fx.ParameterError, match="n_jobs"):
        threads_per_trial(0)


def test_tune_stops_at_the_timeout(rng):
    import time

    _, _, _, train, valid = _regression(rng, n=2000)
    start = time.perf_counter()
    res = tune({"verbosity": -1, "learning_rate": 0.05}, train, valid, n_trials=None, timeout=1.0, num_boost_round=300)
    elapsed = time.perf_counter() - start
    # Optuna checks the time between trials, so the last trial may run past the limit by one training.
    assert elapsed < 6.0, elapsed
    assert res.best_score <= res.start_score and len(res.studies) >= 1


def test_pruning_callback_through_gbdt_estimators(rng):
    X, y, cut, _, _ = _regression(rng, n=600)
    study = optuna.create_study(direction="minimize")
    trial = study.ask()
    model = fx.GBDTRegressor(n_estimators=15).fit(X[:cut], y[:cut], eval_set=[(X[cut:], y[cut:])], callbacks=[PruningCallback(trial, "l2")])
    values = trial.storage.get_trial(trial._trial_id).intermediate_values
    assert sorted(values) == list(range(15))
    assert np.isclose(values[14], model.evals_result_["valid_0"]["l2"][14])


def test_default_threads_follow_the_parallel_driver():
    # joblib's process workers set OMP_NUM_THREADS; FERROX_NUM_THREADS overrides everything.
    import os
    import subprocess
    import sys

    code = "import ferrox as fx; print(fx.default_num_threads())"
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "FERROX_NUM_THREADS")}
    run = lambda env: int(subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True, check=True).stdout)
    assert run({"OMP_NUM_THREADS": "1"}) == 1
    assert run({"FERROX_NUM_THREADS": "3", "OMP_NUM_THREADS": "1"}) == 3
    assert run({}) == len(os.sched_getaffinity(0))


def test_concurrent_default_trainings_share_the_cores(rng):
    # Two trainings with the default thread count run at once (as the trials of a study with n_jobs=2):
    # while both run, a third call would get at most half the cores, not all of them.
    import os
    import threading

    cores = len(os.sched_getaffinity(0))
    X = rng.normal(size=(2000, 5))
    y = X[:, 0] + rng.normal(size=2000)
    barrier = threading.Barrier(2, timeout=60)
    seen: list[int] = []

    def cb(env):
        if env.iteration == 0:
            barrier.wait()
            seen.append(fx.default_num_threads())

    def work():
        fx.train({"objective": "regression", "verbose": -1}, fx.Dataset(X, label=y), 3, callbacks=[cb])

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 2
    assert all(1 <= s <= max(1, cores // 2) for s in seen), (seen, cores)
