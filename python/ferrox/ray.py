"""Distributed training, batch prediction and profiling on Ray (``pip install 'ferrox[ray]'``).

``train`` fits the same model as :func:`ferrox.train` on the same rows, bit for bit, whatever the
number of workers and however the rows are split between them: each worker is a Ray actor holding its
shard binned in Rust; per split only a split order (tens of bytes) goes out and row counts and one
child's histogram (exact integer sums) come back. ``predict`` runs a model over a ``ray.data.Dataset``
on an actor pool; ``profile`` builds a drift :class:`~ferrox.drift.ReferenceProfile` block by block and
merges the parts. The algorithm and its costs: ``docs/distributed.md``.

>>> import numpy as np, pandas as pd, ray, ferrox as fx
>>> _ = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
>>> rng = np.random.default_rng(0)
>>> df = pd.DataFrame(rng.normal(size=(2000, 3)), columns=["a", "b", "c"]).assign(y=lambda d: (d.a > d.b) * 1.0)
>>> params = {"objective": "binary", "verbosity": -1, "num_leaves": 7}
>>> booster = fx.ray.train(params, [df[:1000], df[1000:]], label="y", num_workers=2, num_boost_round=10)
>>> local = fx.train(params, fx.Dataset(df[["a", "b", "c"]], label=df.y), num_boost_round=10)
>>> booster.to_bytes() == local.to_bytes()
True
>>> preds = fx.ray.predict(booster, ray.data.from_pandas(df.assign(id=range(2000))), key_columns=["id"])
>>> bool(np.allclose(preds.to_pandas().sort_values("id").prediction, local.predict(df[["a", "b", "c"]])))
True
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

try:
    import ray
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("ferrox.ray needs Ray: pip install 'ferrox[ray]'") from e

from . import _ferrox
from .callback import CallbackEnv
from .dataset import _PARAM_ALIASES, Dataset
from .exceptions import DataError, FerroxError, ParameterError
from .gbdt import Booster, _boost, _feature_groups, _round_params

__all__ = ["train", "predict", "profile", "WorkerLostError"]

_DEFAULT_SAMPLE = 200_000


class WorkerLostError(FerroxError, RuntimeError):
    """A training worker died (or stopped answering) more often than ``max_failures`` allows."""


# ---------------------------------------------------------------------------------------------------
# Inputs


def _to_arrow(frame: Any, what: str) -> Any:
    import pyarrow as pa

    if isinstance(frame, pa.Table):
        return frame
    if isinstance(frame, pa.RecordBatch):
        return pa.Table.from_batches([frame])
    mod = type(frame).__module__.split(".")[0]
    if mod == "pandas":
        return pa.Table.from_pandas(frame, preserve_index=False)
    if mod == "polars":
        return frame.to_arrow()
    if hasattr(frame, "__arrow_c_stream__"):
        return pa.table(frame)
    raise ParameterError(f"{what} must be a ray.data.Dataset, a list of pandas/polars/pyarrow frames or Parquet paths; got {type(frame).__name__}")


def _sources(data: Any) -> list[tuple[str, Any]]:
    """The input as an ordered list of parts: ("ref", ObjectRef of an Arrow table) or ("path", str)."""
    if isinstance(data, ray.data.Dataset):
        return [("ref", r) for r in data.to_arrow_refs()]
    if isinstance(data, (str, os.PathLike)):
        data = [data]
    if not isinstance(data, Sequence) or isinstance(data, (bytes, str)):
        raise ParameterError(f"data must be a ray.data.Dataset or a list of frames or Parquet paths, got {type(data).__name__}")
    out: list[tuple[str, Any]] = []
    for i, part in enumerate(data):
        if isinstance(part, (str, os.PathLike)):
            out.append(("path", os.fspath(part)))
        else:
            out.append(("ref", ray.put(_to_arrow(part, f"data[{i}]"))))
    return out


@ray.remote
class _Shard:
    """One training worker: its parts of the data, binned, and its ``ShardTrainer``."""

    def __init__(self, sources: list[tuple[int, str, Any]], label: str, weight: str | None, row_id: str | None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = []
        self._parts = []
        for index, kind, src in sources:
            t = pq.read_table(src) if kind == "path" else ray.get(src)
            tables.append(t)
            self._parts.append((index, t.num_rows))
        table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
        names = table.column_names
        for what, col in (("label", label), ("weight", weight), ("row_id", row_id)):
            if col is not None and col not in names:
                raise DataError(f"{what} column {col!r} is not in the data (columns: {names[:10]})")
        self._label = table[label].to_numpy().astype(np.float64)
        self._weight = None if weight is None else table[weight].to_numpy().astype(np.float64)
        self._row_id = None if row_id is None else table[row_id].to_numpy()
        self._features = table.drop_columns([c for c in (label, weight, row_id) if c is not None])
        self._ids: np.ndarray | None = None
        self._trainer: Any = None

    def parts(self) -> list[tuple[int, int]]:
        return self._parts

    def set_ids(self, offsets: dict[int, int]) -> None:
        if self._row_id is not None:
            ids = np.asarray(self._row_id)
            if ids.dtype.kind not in "iu" or (ids.size and ids.min() < 0):
                raise DataError("the row_id column must hold non-negative integers (each row's position in the whole data)")
            self._ids = ids.astype(np.uint64)
        else:
            self._ids = np.concatenate([np.arange(offsets[i], offsets[i] + n, dtype=np.uint64) for i, n in self._parts])

    def sample(self, n_total: int, k: int, seed: int) -> Any:
        import pyarrow as pa

        assert self._ids is not None
        mask = _ferrox.keyed_sample_mask(self._ids, int(n_total), int(k), int(seed))
        part = self._features.filter(pa.array(mask))
        return part.append_column("__ferrox_row__", pa.array(self._ids[mask]))

    def build(self, reference: Dataset, categorical: list[Any] | None, dataset_params: dict[str, Any]) -> bytes:
        self._data = Dataset(self._features, label=self._label, weight=self._weight, reference=reference,
                             categorical_features=categorical, params=dataset_params)
        return _ferrox.label_sums(self._data._handle)

    def start(self, params: list[tuple[str, Any]], base_score: list[float], num_threads: int) -> int:
        self._trainer = _ferrox.ShardTrainer(params, self._data._handle, self._ids, base_score, num_threads)
        return int(self._trainer.num_data())

    def begin_round(self, it: int) -> tuple[bytes, int]:
        return self._trainer.begin_round(it)

    def root(self, c: int, whole: bool, max_g: float, max_h: float) -> bytes:
        return self._trainer.root(c, whole, max_g, max_h)

    def split(self, order: bytes, build: bool | None) -> tuple[int, int, bytes | None]:
        return self._trainer.split(order, build)

    def child_hist(self, left: bool) -> bytes:
        return self._trainer.child_hist(left)

    def end_tree(self, index: int, tree: bytes) -> None:
        self._trainer.end_tree(index, tree)

    def restore(self, done: bytes, round: int | None, partial: bytes | None) -> None:
        self._trainer.restore(done, round, partial)

    def ping(self) -> int:
        return os.getpid()


class _Workers:
    """The training actors, with replacement of dead ones (their setup is replayed)."""

    def __init__(self, specs: list[tuple[Any, ...]], num_cpus: float, timeout: float, max_failures: int) -> None:
        self.prefix = f"ferrox-train-{uuid.uuid4().hex[:8]}"
        self.specs = specs
        self.num_cpus = num_cpus
        self.timeout = timeout
        self.failures_left = max_failures
        self.setup: list[tuple[str, tuple[Any, ...]]] = []
        self.actors = [self._spawn(r) for r in range(len(specs))]
        self.sent = 0
        self.received = 0

    def _spawn(self, rank: int) -> Any:
        return _Shard.options(name=f"{self.prefix}-{rank}", num_cpus=self.num_cpus, max_restarts=0).remote(*self.specs[rank])

    def _get(self, refs: list[Any]) -> list[Any]:
        try:
            return ray.get(refs, timeout=self.timeout)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise WorkerLostError(
                f"a training worker did not answer within {self.timeout:g} s (timeout_s); training stopped"
            ) from None

    def call(self, method: str, *args: Any, per_worker: Sequence[tuple[Any, ...]] | None = None) -> list[Any]:
        """Calls ``method`` on every actor and returns their answers; raises _Lost if one died."""
        refs = []
        for r, a in enumerate(self.actors):
            refs.append(getattr(a, method).remote(*(per_worker[r] if per_worker is not None else args)))
        try:
            return self._get(refs)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as e:
            raise _Lost(str(e)) from e

    def remember(self, method: str, *args: Any) -> list[Any]:
        """A setup call, replayed on any replacement actor."""
        self.setup.append((method, args))
        return self.call(method, *args)

    def replace_dead(self) -> list[int]:
        """Replaces the actors that no longer answer and replays their setup; returns their ranks."""
        dead = []
        for r, a in enumerate(self.actors):
            try:
                ray.get(a.ping.remote(), timeout=self.timeout)
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError, ray.exceptions.GetTimeoutError):
                dead.append(r)
        if not dead:
            return []
        if self.failures_left < len(dead):
            self.close()
            raise WorkerLostError(f"training workers {dead} died and max_failures is exhausted; training stopped")
        self.failures_left -= len(dead)
        for r in dead:
            try:
                ray.kill(self.actors[r])
            except Exception:  # noqa: BLE001 - already gone
                pass
            self.actors[r] = self._spawn(r)
            for method, args in self.setup:
                self._get([getattr(self.actors[r], method).remote(*args)])
        return dead

    def close(self) -> None:
        for a in self.actors:
            try:
                ray.kill(a)
            except Exception:  # noqa: BLE001 - already gone
                pass


class _Lost(Exception):
    pass


class _DistributedTrainer:
    """One boosting round at a time over the workers, as ``_boost`` drives a local trainer."""

    def __init__(self, leader: Any, workers: _Workers, total_rows: int) -> None:
        self.leader = leader
        self.workers = workers
        self.total_rows = total_rows
        self.bytes_per_tree: list[int] = []
        self.hist_bytes_per_tree: list[int] = []
        self.recovered = 0

    def current_iteration(self) -> int:
        return int(self.leader.current_iteration())

    def eval(self, idx: int) -> list[tuple[str, float, bool]]:
        return list(self.leader.eval(idx - 1))

    def model(self) -> Any:
        return self.leader.model()

    def update(self) -> bool:
        while True:
            try:
                return self._round()
            except _Lost:
                self._recover()

    def _recover(self) -> None:
        it = self.current_iteration()
        dead = self.workers.replace_dead()
        if not dead:
            return
        done = self.leader.done_trees()
        partial = self.leader.round_trees()
        for r in dead:
            self.workers._get([self.workers.actors[r].restore.remote(done, it, partial)])
        self.recovered += len(dead)

    def _round(self) -> bool:
        w = self.workers
        it = self.current_iteration()
        starts = w.call("begin_round", it)
        whole = self.leader.begin_round([s for s, _ in starts])
        # The root's rows: the bag's over all shards, or all rows.
        rows = self.total_rows if whole else sum(n for _, n in starts)
        k = self.leader.num_scores()
        for c in range(k):
            sent = received = hist = 0
            mg, mh = self.leader.max_for(c)
            roots = w.call("root", c, whole, mg, mh)
            received += sum(len(b) for b in roots)
            hist += sum(len(b) for b in roots)
            step = self.leader.root(c, roots, rows)
            while step[0] != "done":
                if step[0] == "split":
                    _, order, build = step
                    sent += len(order) * len(w.actors)
                    replies = w.call("split", order, build)
                    hb = sum(len(r[2]) for r in replies if r[2] is not None)
                    received += hb + 8 * len(replies)
                    hist += hb
                    step = self.leader.feed(replies)
                else:
                    left = step[1]
                    hists = w.call("child_hist", left)
                    hb = sum(len(b) for b in hists)
                    received += hb
                    hist += hb
                    step = self.leader.feed_child(left, hists)
            tree = self.leader.finish_tree()
            sent += len(tree) * len(w.actors)
            w.call("end_tree", it * k + c, tree)
            self.bytes_per_tree.append(sent + received)
            self.hist_bytes_per_tree.append(hist)
        return bool(self.leader.end_round())


def _num_cpus_per_worker(num_workers: int, threads: int) -> float:
    try:
        total = float(ray.cluster_resources().get("CPU", num_workers))
    except Exception:  # noqa: BLE001 - not connected yet
        total = float(num_workers)
    return max(0.01, min(float(threads), total / num_workers))


def train(
    params: Mapping[str, Any],
    data: Any,
    *,
    label: str,
    weight: str | None = None,
    row_id: str | None = None,
    categorical_features: Sequence[str] | None = None,
    num_workers: int = 2,
    num_threads_per_worker: int = 1,
    num_boost_round: int = 100,
    valid_sets: Sequence[Any] = (),
    valid_names: Sequence[str] | None = None,
    callbacks: Sequence[Callable[[CallbackEnv], None]] | None = None,
    timeout_s: float = 600.0,
    max_failures: int = 3,
    stats: dict[str, Any] | None = None,
) -> Booster:
    """Trains on a Ray cluster the model :func:`ferrox.train` fits on the same rows, bit for bit.

    ``data`` is a ``ray.data.Dataset``, or a list of pandas/polars/pyarrow frames or Parquet paths; the
    column ``label`` (and ``weight``) are taken out, every other column (but ``row_id``) is a feature.
    Rows are numbered in the data's order (a Dataset's block order, the list's order); with
    ``row_id`` the column gives each row's number instead (its position in the data ``fx.train``
    would see), so any partitioning of the rows trains the same model. Parts go to the ``num_workers``
    actors round-robin (a Dataset with fewer blocks is repartitioned).

    ``params`` take ferrox's (LightGBM's) names, dataset ones (``max_bin``, ``min_data_in_bin``,
    ``bin_construct_sample_cnt``, ``data_random_seed``) included. Not supported, and refused with a
    ParameterError: GOSS, ``use_quantized_grad``, ``is_unbalance``, the ``l1`` / ``quantile`` /
    ``lambdarank`` and custom objectives. ``valid_sets`` are frames with the same columns, binned on the
    driver with the training bin rules and evaluated there (early stopping works as in ``fx.train``).

    A worker that dies is replaced (at most ``max_failures`` times): the replacement reloads its parts,
    catches up from the trees completed so far and the round is redone, giving the same model. A
    worker that does not answer within ``timeout_s`` stops training with :class:`WorkerLostError`.
    With ``stats={}``, it is filled with ``bytes_per_tree``, ``hist_bytes_per_tree``, ``setup_s``,
    ``train_s`` and ``recovered`` (replaced workers).

    >>> import numpy as np, pandas as pd, ray, ferrox as fx
    >>> _ = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    >>> df = pd.DataFrame(np.random.default_rng(1).normal(size=(1000, 2)), columns=["a", "b"]).assign(y=lambda d: d.a - d.b)
    >>> b = fx.ray.train({"verbosity": -1}, ray.data.from_pandas(df), label="y", num_workers=2, num_boost_round=5)
    >>> b.to_bytes() == fx.train({"verbosity": -1}, fx.Dataset(df[["a", "b"]], label=df.y), 5).to_bytes()
    True
        """
    t0 = time.perf_counter()
    if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 1:
        raise ParameterError(f"num_workers must be an integer >= 1, got {num_workers!r}")
    if not ray.is_initialized():
        ray.init()
    params, num_boost_round, stop_rounds, first_metric_only, verbosity = _round_params(params, num_boost_round)
    if callable(params.get("objective")):
        raise ParameterError("a custom objective is not supported by fx.ray.train: gradients are computed on the workers")
    _ferrox.check_distributed_params(list(params.items()))
    dataset_params = {k: v for k, v in params.items() if k in _PARAM_ALIASES and _PARAM_ALIASES[k] != "num_threads"}
    categorical = None if categorical_features is None else list(categorical_features)

    sources = _sources(data)
    if isinstance(data, ray.data.Dataset) and len(sources) < num_workers:
        sources = _sources(data.repartition(num_workers))
    if len(sources) < num_workers:
        raise ParameterError(f"the data has {len(sources)} parts for {num_workers} workers; pass at least one part per worker")
    specs = []
    for r in range(num_workers):
        mine = [(i, kind, src) for i, (kind, src) in enumerate(sources) if i % num_workers == r]
        specs.append((mine, label, weight, row_id))
    cpus = _num_cpus_per_worker(num_workers, int(num_threads_per_worker))
    workers = _Workers(specs, cpus, float(timeout_s), int(max_failures))
    try:
        # Row identities: positions in part order.
        parts = [p for ps in workers.call("parts") for p in ps]
        counts = dict(parts)
        offsets, at = {}, 0
        for i in range(len(sources)):
            offsets[i] = at
            at += counts[i]
        n_total = at
        workers.remember("set_ids", offsets)
        # Bin rules from the sample each row's identity puts it in (the one fx.Dataset draws).
        k = int(dataset_params.get("bin_construct_sample_cnt", dataset_params.get("subsample_for_bin", _DEFAULT_SAMPLE)))
        seed = int(dataset_params.get("data_random_seed", dataset_params.get("data_seed", 1)))
        reference = _reference(workers.call("sample", n_total, k, seed), categorical, dataset_params)
        ref = ray.put(reference)
        sums = workers.remember("build", ref, categorical, dataset_params)
        valids = [_valid_set(v, i, label, weight, reference, categorical) for i, v in enumerate(valid_sets or [])]
        train_params = [(k, v) for k, v in params.items() if k not in ("num_threads", "num_thread", "nthread", "nthreads", "n_jobs")]
        if params.get("interaction_constraints"):
            train_params = [(k, _feature_groups(v, reference.feature_name()) if k == "interaction_constraints" else v) for k, v in train_params]
        leader = _ferrox.TrainLeader(train_params, reference._handle, [v._handle for v in valids], sums)
        workers.remember("start", train_params, leader.base_score(), int(num_threads_per_worker))
        setup_s = time.perf_counter() - t0
        names = list(valid_names) if valid_names is not None else []
        reported = [(names[i] if i < len(names) else f"valid_{i}", i + 1) for i in range(len(valids))]
        trainer = _DistributedTrainer(leader, workers, n_total)
        t1 = time.perf_counter()
        booster = _boost(trainer, trainer.update, params, int(num_boost_round), reported, callbacks,
                         stop_rounds, first_metric_only, verbosity)
        if stats is not None:
            stats.update(
                bytes_per_tree=trainer.bytes_per_tree,
                hist_bytes_per_tree=trainer.hist_bytes_per_tree,
                setup_s=setup_s,
                train_s=time.perf_counter() - t1,
                recovered=trainer.recovered,
                rows=n_total,
            )
        return booster
    except _Lost as e:
        raise WorkerLostError(f"a training worker died while the data was being prepared: {e}") from e
    finally:
        workers.close()


def _reference(samples: list[Any], categorical: list[Any] | None, dataset_params: dict[str, Any]) -> Dataset:
    import pyarrow as pa

    table = pa.concat_tables(samples, promote_options="permissive")
    table = table.take(pa.compute.sort_indices(table, [("__ferrox_row__", "ascending")])).drop_columns(["__ferrox_row__"])
    p = dict(dataset_params)
    for alias in ("bin_construct_sample_cnt", "subsample_for_bin"):
        p.pop(alias, None)
    p["bin_construct_sample_cnt"] = max(1, table.num_rows)
    return Dataset(table, categorical_features=categorical, params=p)


def _valid_set(v: Any, i: int, label: str, weight: str | None, reference: Dataset, categorical: list[Any] | None) -> Dataset:
    if isinstance(v, Dataset):
        raise ParameterError(f"valid_sets[{i}] is a ferrox.Dataset; pass the frame (with the {label!r} column) so it is binned with the training bin rules")
    if isinstance(v, ray.data.Dataset):
        v = v.to_arrow_refs()
        import pyarrow as pa

        t = pa.concat_tables(ray.get(v), promote_options="permissive")
    else:
        t = _to_arrow(v, f"valid_sets[{i}]")
    if label not in t.column_names:
        raise DataError(f"valid_sets[{i}] has no {label!r} column")
    y = t[label].to_numpy().astype(np.float64)
    w = None if weight is None else t[weight].to_numpy().astype(np.float64)
    feats = t.drop_columns([c for c in (label, weight) if c is not None and c in t.column_names])
    feats = feats.select([c for c in reference.feature_name()]) if set(reference.feature_name()) <= set(feats.column_names) else feats
    return Dataset(feats, label=y, weight=w, reference=reference, categorical_features=categorical)


# ---------------------------------------------------------------------------------------------------
# Batch prediction


class _Predictor:
    """A model loaded once per actor (from the object store), applied batch by batch."""

    def __init__(self, payload: Any, key_columns: list[str], raw_score: bool, num_threads: int, prefix: str) -> None:
        if isinstance(payload, ray.ObjectRef):
            payload = ray.get(payload)
        kind, blob = payload
        self.kind = kind
        if kind == "booster":
            self.model: Any = Booster.from_bytes(blob)
            self.features: list[str] | None = self.model.feature_name()
        else:
            from .pipeline import Pipeline

            self.model = Pipeline.from_bytes(blob)
            self.features = None
        self.keys = key_columns
        self.raw_score = raw_score
        self.num_threads = num_threads
        self.prefix = prefix

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        if self.features is not None and set(self.features) <= set(batch.column_names):
            x = batch.select(self.features)
        else:
            x = batch.drop_columns([c for c in self.keys if c in batch.column_names])
        if self.kind == "booster":
            out = self.model.predict(x, raw_score=self.raw_score, num_threads=self.num_threads)
        else:
            out = self.model.predict(x)
        out = np.asarray(out)
        cols = {k: batch[k] for k in self.keys}
        if out.ndim == 1 or out.shape[1] == 1:
            cols[self.prefix] = pa.array(out.reshape(-1))
        else:
            for j in range(out.shape[1]):
                cols[f"{self.prefix}_{j}"] = pa.array(out[:, j])
        return pa.table(cols)


def predict(
    model: Any,
    data: Any,
    *,
    key_columns: Sequence[str] = (),
    batch_size: int = 65_536,
    concurrency: int = 2,
    num_cpus: float = 1.0,
    num_threads: int = 1,
    raw_score: bool = False,
    output_column: str = "prediction",
) -> Any:
    """Predicts every row of a ``ray.data.Dataset`` on a pool of ``concurrency`` actors.

    ``model`` is a :class:`~ferrox.Booster` or a :class:`ferrox.pipeline.Pipeline`; it is put in the
    object store once and loaded once per actor. Returns a lazy ``ray.data.Dataset`` with the
    ``key_columns`` and the predictions (``output_column``, or ``output_column_<j>`` per class);
    blocks may come back in any order, so join on the keys. A booster reads the feature columns by
    name (other columns are ignored); a pipeline gets every column but the keys.

    >>> import numpy as np, pandas as pd, ray, ferrox as fx
    >>> _ = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    >>> df = pd.DataFrame({"a": np.arange(100.0), "id": np.arange(100)})
    >>> b = fx.train({"verbosity": -1, "min_data_in_leaf": 5}, fx.Dataset(df[["a"]], label=df.a * 2), 5)
    >>> out = fx.ray.predict(b, ray.data.from_pandas(df), key_columns=["id"], concurrency=1).to_pandas()
    >>> bool(np.allclose(out.sort_values("id").prediction, b.predict(df[["a"]])))
    True
        """
    from .pipeline import Pipeline

    if isinstance(model, Booster):
        payload = ("booster", model.to_bytes())
    elif isinstance(model, Pipeline):
        payload = ("pipeline", model.to_bytes())
    else:
        raise ParameterError(f"model must be a ferrox.Booster or ferrox.pipeline.Pipeline, got {type(model).__name__}")
    if not isinstance(data, ray.data.Dataset):
        raise ParameterError(f"data must be a ray.data.Dataset, got {type(data).__name__}")
    if int(concurrency) < 1 or int(batch_size) < 1:
        raise ParameterError(f"concurrency and batch_size must be >= 1, got {concurrency} and {batch_size}")
    ref = ray.put(payload)
    return data.map_batches(
        _Predictor,
        fn_constructor_args=(ref, list(key_columns), bool(raw_score), int(num_threads), str(output_column)),
        batch_size=int(batch_size),
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=int(concurrency)),
        num_cpus=float(num_cpus),
    )


# ---------------------------------------------------------------------------------------------------
# Profiles


def _fit_block(batch: Any, exact_limit: int, sketch_k: int, columns: list[str] | None) -> Any:
    import pyarrow as pa

    from .drift import ReferenceProfile

    if columns is not None:
        batch = batch.select(columns)
    p = ReferenceProfile.fit(batch, exact_limit=exact_limit, sketch_k=sketch_k, num_threads=1)
    return pa.table({"profile": pa.array([p.to_bytes()], type=pa.binary())})


def profile(data: Any, *, columns: Sequence[str] | None = None, exact_limit: int = 1_000_000, sketch_k: int = 4096) -> Any:
    """A drift :class:`~ferrox.drift.ReferenceProfile` of a ``ray.data.Dataset``, fitted block by block
    on the cluster and merged.

    While a numeric column has at most ``exact_limit`` values the merged profile holds them all and
    equals ``ReferenceProfile.fit`` on the whole data; beyond, it is the mergeable sketch with the rank
    error ``ReferenceProfile`` documents.

    >>> import numpy as np, pandas as pd, ray, ferrox as fx
    >>> _ = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    >>> df = pd.DataFrame({"a": np.random.default_rng(0).normal(size=3000)})
    >>> p = fx.ray.profile(ray.data.from_pandas(df).repartition(3))
    >>> p.describe()[0]["n_rows"]
    3000
        """
    from .drift import ReferenceProfile

    if not isinstance(data, ray.data.Dataset):
        raise ParameterError(f"data must be a ray.data.Dataset, got {type(data).__name__}")
    if exact_limit < 1 or sketch_k < 8:
        raise ParameterError(f"exact_limit must be >= 1 and sketch_k >= 8, got {exact_limit} and {sketch_k}")
    cols = None if columns is None else list(columns)
    parts = data.map_batches(
        _fit_block, batch_size=None, batch_format="pyarrow",
        fn_kwargs={"exact_limit": int(exact_limit), "sketch_k": int(sketch_k), "columns": cols},
    ).take_all()
    if not parts:
        raise DataError("the dataset has no rows to profile")
    profiles = [ReferenceProfile.from_bytes(r["profile"]) for r in parts]
    # Pairwise, in rounds: the merged sketches stay balanced.
    while len(profiles) > 1:
        profiles = [profiles[i].merge(profiles[i + 1]) if i + 1 < len(profiles) else profiles[i] for i in range(0, len(profiles), 2)]
    return profiles[0]
