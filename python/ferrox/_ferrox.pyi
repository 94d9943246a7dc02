# Type stubs of the compiled extension ferrox._ferrox (checked against it by mypy's stubtest).
from collections.abc import Sequence
from os import PathLike
from typing import Any, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "__version__",
    "ServerHandle",
    "assign_variant",
    "FORMAT_VERSION",
    "BinnedDataset",
    "Trainer",
    "BoosterModel",
    "artifact_header",
    "default_num_threads",
    "CategoryTable",
    "LinearModel",
    "FeaturePipeline",
    "Deployable",
    "ridge_fit",
    "logistic_fit",
    "enet_fit",
    "sgd_fit",
    "moments_update",
    "column_min_max",
    "column_percentiles",
    "column_most_frequent",
    "column_missing_counts",
    "affine_transform",
    "impute_transform",
    "quantile_transform",
    "digitize",
    "release_memory",
    "ks_2samp",
    "cramervonmises_2samp",
    "mannwhitneyu",
    "anderson_ksamp",
    "chi2_contingency",
    "wasserstein_distance",
    "energy_distance",
    "jensenshannon",
    "hellinger",
    "psi",
    "adjust_pvalues",
    "performance_realised",
    "performance_calibrate",
    "performance_estimate_binary",
    "performance_estimate_regression",
    "domain_classifier",
    "ReferenceProfile",
    "DriftReport",
    "DriftMonitor",
    "infer_schema",
    "validate_schema",
    "check_training",
    "experiment_moments",
    "experiment_moments_from_sums",
    "experiment_compare",
    "experiment_srm",
    "experiment_power",
    "experiment_analyze",
    "experiment_html",
    "read_event_log",
]

__version__: str
FORMAT_VERSION: int

def artifact_header(data: bytes) -> dict[str, Any]: ...
def default_num_threads() -> int: ...
def release_memory() -> int: ...

_F64 = npt.NDArray[np.float64]
_Matrix = npt.NDArray[np.float32] | npt.NDArray[np.float64]

def moments_update(
    x: _Matrix, count: _F64, mean: _F64, var: _F64, n_threads: int = 0
) -> tuple[_F64, _F64, _F64]: ...
def column_min_max(x: _Matrix, n_threads: int = 0) -> tuple[_F64, _F64]: ...
def column_percentiles(
    x: _Matrix, q: _F64, rows: npt.NDArray[np.int64] | None = None, n_threads: int = 0, method: str = "linear"
) -> _F64: ...
def digitize(x: _Matrix, inner_edges: Sequence[Sequence[float]], n_threads: int = 0) -> _F64: ...
def column_most_frequent(x: _Matrix, n_threads: int = 0) -> _F64: ...
def column_missing_counts(x: _Matrix, n_threads: int = 0) -> list[int]: ...
def affine_transform(
    x: _Matrix,
    sub: _F64,
    div: _F64,
    mul: _F64,
    add: _F64,
    clip: tuple[float, float] | None = None,
    n_threads: int = 0,
) -> _F64: ...
def impute_transform(x: _Matrix, fill: _F64, n_threads: int = 0) -> _F64: ...
def quantile_transform(x: _Matrix, quantiles: _F64, references: _F64, normal: bool, n_threads: int = 0) -> _F64: ...

def ks_2samp(data1: _F64, data2: _F64, alternative: str = "two-sided", method: str = "auto") -> tuple[float, float, float, int]: ...
def cramervonmises_2samp(x: _F64, y: _F64, method: str = "auto") -> tuple[float, float]: ...
def mannwhitneyu(
    x: _F64, y: _F64, use_continuity: bool = True, alternative: str = "two-sided", method: str = "auto"
) -> tuple[float, float]: ...
def anderson_ksamp(samples: Sequence[_F64], midrank: bool = True) -> tuple[float, float, bool]: ...
def chi2_contingency(observed: _F64, correction: bool = True) -> tuple[float, float, int, _F64]: ...
def wasserstein_distance(
    u_values: _F64, v_values: _F64, u_weights: _F64 | None = None, v_weights: _F64 | None = None
) -> float: ...
def energy_distance(
    u_values: _F64, v_values: _F64, u_weights: _F64 | None = None, v_weights: _F64 | None = None
) -> float: ...
def jensenshannon(p: _F64, q: _F64, base: float | None = None) -> float: ...
def hellinger(p: _F64, q: _F64) -> float: ...
def psi(reference: _F64, current: _F64, bins: int = 10, epsilon: float = 0.0001) -> float: ...
def adjust_pvalues(pvalues: _F64, method: str = "bh") -> _F64: ...
def performance_realised(task: str, scores: _F64, outcomes: _F64, threshold: float = 0.5) -> list[tuple[str, float]]: ...
def performance_calibrate(scores: _F64, outcomes: _F64) -> tuple[list[float], list[float]]: ...
def performance_estimate_binary(
    scores: _F64, knots_x: list[float], knots_y: list[float], threshold: float = 0.5
) -> list[tuple[str, float, float, float]]: ...
def performance_estimate_regression(abs_err: _F64, sq_err: _F64) -> list[tuple[str, float, float, float]]: ...
_M6 = tuple[float, float, float, float, float, float]

def experiment_moments(y: _F64, name: str, x: _F64 | None = None, x_name: str = "covariate") -> _M6: ...
def experiment_moments_from_sums(name: str, sums: _M6) -> _M6: ...
def experiment_compare(
    control: _M6, treatment: _M6, metric: str, method: str, relative: bool, alpha: float, tuning: float, cuped: bool
) -> str: ...
def experiment_srm(counts: Sequence[float], weights: Sequence[float], threshold: float) -> tuple[float, float, bool]: ...
def experiment_power(
    test: str,
    effect_size: float | None,
    nobs1: float | None,
    alpha: float | None,
    power: float | None,
    ratio: float,
    alternative: str,
) -> tuple[float, float, float, float]: ...
def experiment_analyze(
    data: Any,
    arm: str,
    metrics: Sequence[tuple[str, str, str, str | None, bool]],
    control: str | None,
    weights: Sequence[float] | None,
    srm_threshold: float,
    correction: str,
    method: str,
    relative: bool,
    alpha: float,
    tuning: float,
) -> str: ...
def experiment_html(title: str, notes: Sequence[str], rows_json: str) -> str: ...
def read_event_log(path: str | PathLike[str]) -> tuple[Any, int, int]: ...
def domain_classifier(
    reference: Any,
    current: Any,
    arrow: bool,
    feature_names: Sequence[str] | None = None,
    max_rows: int = 50000,
    test_size: float = 0.3,
    num_boost_round: int = 50,
    num_leaves: int = 15,
    learning_rate: float = 0.1,
    min_data_in_leaf: int = 20,
    seed: int = 0,
    threshold: float = 0.55,
    top_features: int = 5,
    num_threads: int = 0,
) -> str: ...
def infer_schema(data: Any, feature_names: Sequence[str] | None = None, num_threads: int = 0) -> str: ...
def validate_schema(schema: str, data: Any, feature_names: Sequence[str] | None = None, num_threads: int = 0) -> str: ...
def check_training(
    data: Any,
    feature_names: Sequence[str] | None = None,
    target: str | None = None,
    missing_limit: float = 0.1,
    outlier_sigma: float = 3.0,
    outlier_limit: float = 0.01,
    min_class_share: float = 0.05,
    max_classes: int = 50,
    num_threads: int = 0,
) -> str: ...
@final
class BinnedDataset:
    @staticmethod
    def from_numpy(
        data: npt.NDArray[np.float32] | npt.NDArray[np.float64],
        label: npt.NDArray[np.float64] | None = None,
        weight: npt.NDArray[np.float64] | None = None,
        feature_names: Sequence[str] | None = None,
        categorical_features: Sequence[str | int] | None = None,
        max_bin: int = 255,
        bin_construct_sample_cnt: int = 200000,
        data_random_seed: int = 1,
        min_data_in_bin: int = 3,
        num_threads: int = 0,
        reference: BinnedDataset | None = None,
        group: Sequence[int] | None = None,
        init_score: npt.NDArray[np.float64] | None = None,
    ) -> BinnedDataset: ...
    @staticmethod
    def from_arrow(
        data: Any,
        label: npt.NDArray[np.float64] | None = None,
        weight: npt.NDArray[np.float64] | None = None,
        categorical_features: Sequence[str | int] | None = None,
        max_bin: int = 255,
        bin_construct_sample_cnt: int = 200000,
        data_random_seed: int = 1,
        min_data_in_bin: int = 3,
        num_threads: int = 0,
        reference: BinnedDataset | None = None,
        group: Sequence[int] | None = None,
        init_score: npt.NDArray[np.float64] | None = None,
    ) -> BinnedDataset: ...
    def num_data(self) -> int: ...
    def num_feature(self) -> int: ...
    def feature_name(self) -> list[str]: ...
    def categorical_mask(self) -> list[bool]: ...
    def num_bins(self) -> list[int]: ...
    def bin_bits(self) -> int: ...
    def bin_bytes(self) -> int: ...
    def feature_info(self, i: int) -> dict[str, Any]: ...
    def bins(self) -> npt.NDArray[np.uint8] | npt.NDArray[np.uint16]: ...
    def get_label(self) -> npt.NDArray[np.float64] | None: ...
    def get_weight(self) -> npt.NDArray[np.float64] | None: ...
    def get_group(self) -> list[int] | None: ...
    def get_init_score(self) -> npt.NDArray[np.float64] | None: ...
    def params(self) -> dict[str, int]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> BinnedDataset: ...
    def save(self, path: str | PathLike[str]) -> None: ...
    @staticmethod
    def load(path: str | PathLike[str]) -> BinnedDataset: ...
    def describe_json(self) -> str: ...

@final
class Trainer:
    def __new__(
        cls,
        params: Sequence[tuple[str, Any]],
        train: BinnedDataset,
        valids: Sequence[BinnedDataset],
        init_model: BoosterModel | None = None,
    ) -> Trainer: ...
    def update(
        self, grad: npt.NDArray[np.float32] | None = None, hess: npt.NDArray[np.float32] | None = None
    ) -> bool: ...
    def eval(self, data: int) -> list[tuple[str, float, bool]]: ...
    def current_iteration(self) -> int: ...
    def metric_names(self) -> list[str]: ...
    def set_best_iteration(self, iteration: int) -> None: ...
    def train_scores(self) -> npt.NDArray[np.float64]: ...
    def model(self) -> BoosterModel: ...

@final
class BoosterModel:
    def predict_numpy(
        self,
        data: npt.NDArray[np.float32] | npt.NDArray[np.float64],
        feature_names: Sequence[str] | None = None,
        raw_score: bool = False,
        num_iteration: int | None = None,
        num_threads: int = 0,
        contrib: bool = False,
    ) -> npt.NDArray[np.float64]: ...
    def predict_row(
        self, row: npt.NDArray[np.float64], raw_score: bool = False, num_iteration: int | None = None
    ) -> npt.NDArray[np.float64]: ...
    def predict_arrow(
        self,
        data: Any,
        raw_score: bool = False,
        num_iteration: int | None = None,
        num_threads: int = 0,
        contrib: bool = False,
    ) -> npt.NDArray[np.float64]: ...
    def feature_importance(self, gain: bool = False, num_iteration: int | None = None) -> npt.NDArray[np.float64]: ...
    def num_trees(self) -> int: ...
    def num_iterations(self) -> int: ...
    def num_scores(self) -> int: ...
    def best_iteration(self) -> int: ...
    def with_best_iteration(self, iteration: int) -> BoosterModel: ...
    def with_meta(self, meta: str) -> BoosterModel: ...
    def meta(self) -> str: ...
    def feature_name(self) -> list[str]: ...
    def categorical_mask(self) -> list[bool]: ...
    def objective(self) -> str: ...
    def num_leaves(self) -> list[int]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> BoosterModel: ...
    def save(self, path: str | PathLike[str]) -> None: ...
    @staticmethod
    def load(path: str | PathLike[str]) -> BoosterModel: ...
    def dump_json(self) -> str: ...
    @staticmethod
    def from_lightgbm_string(text: str) -> BoosterModel: ...
    @staticmethod
    def from_xgboost_bytes(data: bytes) -> BoosterModel: ...

@final
class CategoryTable:
    @staticmethod
    def fit(data: Any, n_threads: int = 0) -> CategoryTable: ...
    @staticmethod
    def fit_ordinal(
        data: Any, names: Sequence[str], missing_value: float = ..., n_threads: int = 0
    ) -> tuple[CategoryTable, _F64]: ...
    @staticmethod
    def fit_onehot(
        data: Any,
        min_frequency: float | None = None,
        max_categories: int | None = None,
        drop: str | None = None,
        infrequent_if_exist: bool = False,
        n_threads: int = 0,
    ) -> tuple[CategoryTable, npt.NDArray[np.int64], npt.NDArray[np.int64], int]: ...
    def n_features(self) -> int: ...
    def categories(self, j: int) -> tuple[_F64 | list[str], bool, bool]: ...
    def counts(self, j: int) -> list[int]: ...
    def ordinal(
        self,
        data: Any,
        names: Sequence[str],
        unknown_value: float | None = None,
        missing_value: float = ...,
        n_threads: int = 0,
    ) -> _F64: ...
    def onehot_layout(
        self,
        min_frequency: float | None = None,
        max_categories: int | None = None,
        drop: str | None = None,
        infrequent_if_exist: bool = False,
    ) -> list[dict[str, Any]]: ...
    def onehot(
        self,
        data: Any,
        names: Sequence[str],
        error: bool,
        min_frequency: float | None = None,
        max_categories: int | None = None,
        drop: str | None = None,
        infrequent_if_exist: bool = False,
        n_threads: int = 0,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int]: ...
    def target_fit(
        self, data: Any, targets: _F64, smooth: float | None = None, n_threads: int = 0
    ) -> tuple[list[_F64], _F64]: ...
    def target_cross_fit(
        self,
        data: Any,
        targets: _F64,
        folds: Sequence[int],
        n_folds: int,
        smooth: float | None = None,
        n_threads: int = 0,
    ) -> _F64: ...
    def target_apply(
        self, data: Any, encodings: Sequence[Sequence[float]], means: Sequence[float], n_threads: int = 0
    ) -> _F64: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> CategoryTable: ...

@final
class LinearModel:
    def __new__(cls, coef: _F64, intercept: Sequence[float], kind: str, meta: str = ...) -> LinearModel: ...
    def decision(self, x: _Matrix, n_threads: int = 0) -> _F64: ...
    def coef(self) -> _F64: ...
    def intercept(self) -> _F64: ...
    @property
    def kind(self) -> str: ...
    @property
    def meta(self) -> str: ...
    def with_meta(self, meta: str) -> LinearModel: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> LinearModel: ...
    def save(self, path: str | PathLike[str]) -> None: ...
    @staticmethod
    def load(path: str | PathLike[str]) -> LinearModel: ...

def ridge_fit(
    x: _Matrix,
    y: _F64,
    alpha: float,
    fit_intercept: bool,
    sample_weight: _F64 | None = None,
    n_threads: int = 0,
) -> tuple[LinearModel, bool]: ...
def logistic_fit(
    x: _Matrix,
    y: npt.NDArray[np.int64],
    n_classes: int,
    c: float,
    fit_intercept: bool,
    tol: float,
    max_iter: int,
    solver: str,
    sample_weight: _F64 | None = None,
    init: _F64 | None = None,
    n_threads: int = 0,
) -> tuple[LinearModel, int, bool, float]: ...
def enet_fit(
    x: _Matrix,
    y: _F64,
    alpha: float,
    l1_ratio: float,
    fit_intercept: bool,
    tol: float,
    max_iter: int,
    positive: bool,
    sample_weight: _F64 | None = None,
    init: _F64 | None = None,
    n_threads: int = 0,
) -> tuple[LinearModel, list[int], list[float], list[bool]]: ...
def sgd_fit(
    x: _Matrix,
    targets: _F64,
    weight_pos: Sequence[float],
    weight_neg: Sequence[float],
    coef: _F64,
    intercept: Sequence[float],
    loss: str,
    epsilon: float,
    alpha: float,
    l1_ratio: float,
    penalized: bool,
    fit_intercept: bool,
    max_iter: int,
    tol: float | None,
    n_iter_no_change: int,
    learning_rate: str,
    eta0: float,
    power_t: float,
    shuffle_seed: int | None,
    t0: float,
    sample_weight: _F64 | None = None,
    n_threads: int = 0,
) -> tuple[_F64, list[float], list[int]]: ...

@final
class FeaturePipeline:
    @staticmethod
    def build(
        steps: Sequence[tuple[str, dict[str, Any]]], model: LinearModel, n_features: int, meta: str = ...
    ) -> FeaturePipeline: ...
    def decision(self, x: _Matrix, n_threads: int = 0) -> _F64: ...
    def model(self) -> LinearModel: ...
    def n_steps(self) -> int: ...
    @property
    def meta(self) -> str: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> FeaturePipeline: ...
    def save(self, path: str | PathLike[str]) -> None: ...
    @staticmethod
    def load(path: str | PathLike[str]) -> FeaturePipeline: ...
@final
class Deployable:
    @staticmethod
    def build(
        data: Any,
        feature_names: Sequence[str] | None,
        steps: Sequence[tuple[str, dict[str, Any]]],
        final_kind: str,
        model: BoosterModel | LinearModel,
        labels: Sequence[Any] | None = None,
        proba: bool = False,
        reference_profile: ReferenceProfile | None = None,
        meta: str = ...,
    ) -> Deployable: ...
    def predict(self, data: Any, output: str = "predict", n_threads: int = 0) -> npt.NDArray[Any] | list[str]: ...
    def schema(self) -> list[dict[str, Any]]: ...
    def outputs(self) -> list[tuple[str, str, int]]: ...
    def reference_profile(self) -> ReferenceProfile | None: ...
    def with_monitoring(
        self,
        task: str | None = None,
        scores: _F64 | None = None,
        outcomes: _F64 | None = None,
        prediction_profile: ReferenceProfile | None = None,
        loss_models: list[tuple[str, Deployable]] = ...,
        threshold: float = 0.5,
    ) -> Deployable: ...
    def monitoring_reference(self) -> dict[str, Any] | None: ...
    @property
    def meta(self) -> str: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> Deployable: ...
    def save(self, path: str | PathLike[str]) -> None: ...
    @staticmethod
    def load(path: str | PathLike[str]) -> Deployable: ...
@final
class ReferenceProfile:
    @staticmethod
    def fit_numpy(
        data: npt.NDArray[np.float32] | npt.NDArray[np.float64],
        feature_names: Sequence[str] | None = None,
        exact_limit: int = 1000000,
        sketch_k: int = 4096,
        num_threads: int = 0,
    ) -> ReferenceProfile: ...
    @staticmethod
    def fit_arrow(data: Any, exact_limit: int = 1000000, sketch_k: int = 4096, num_threads: int = 0) -> ReferenceProfile: ...
    def compare_numpy(
        self,
        data: npt.NDArray[np.float32] | npt.NDArray[np.float64],
        feature_names: Sequence[str] | None = None,
        alpha: float = 0.05,
        correction: str = "bh",
        tests: Sequence[tuple[str, str]] | None = None,
        large_sample: int = 0,
        min_effect: float = 0.1,
        psi_bins: int = 10,
        epsilon: float = 0.0001,
        drift_share: float = 0.5,
        hist_bins: int = 20,
        num_threads: int = 0,
    ) -> DriftReport: ...
    def compare_arrow(
        self,
        data: Any,
        alpha: float = 0.05,
        correction: str = "bh",
        tests: Sequence[tuple[str, str]] | None = None,
        large_sample: int = 0,
        min_effect: float = 0.1,
        psi_bins: int = 10,
        epsilon: float = 0.0001,
        drift_share: float = 0.5,
        hist_bins: int = 20,
        num_threads: int = 0,
    ) -> DriftReport: ...
    def merge(self, other: ReferenceProfile) -> ReferenceProfile: ...
    def names(self) -> list[str]: ...
    def describe_json(self) -> str: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> ReferenceProfile: ...
    def save(self, path: str | PathLike[str]) -> None: ...
    @staticmethod
    def load(path: str | PathLike[str]) -> ReferenceProfile: ...

@final
class DriftReport:
    def to_json(self) -> str: ...
    def to_html(self) -> str: ...

@final
class DriftMonitor:
    def __new__(
        cls,
        profile: ReferenceProfile,
        window: int,
        step: int,
        alert_after: int = 3,
        cooldown: int = 0,
        alpha: float = 0.05,
        correction: str = "bh",
        tests: Sequence[tuple[str, str]] | None = None,
        large_sample: int = 0,
        min_effect: float = 0.1,
        psi_bins: int = 10,
        epsilon: float = 0.0001,
        drift_share: float = 0.5,
        hist_bins: int = 20,
        time_column: str | None = None,
        time_width: float = 0.0,
        time_step: float = 0.0,
    ) -> DriftMonitor: ...
    def update_numpy(
        self,
        data: npt.NDArray[np.float32] | npt.NDArray[np.float64],
        feature_names: Sequence[str] | None = None,
        num_threads: int = 0,
    ) -> list[tuple[int, int, int, float, float, bool, DriftReport]]: ...
    def update_arrow(self, data: Any, num_threads: int = 0) -> list[tuple[int, int, int, float, float, bool, DriftReport]]: ...
    def counters(self) -> list[tuple[str, int]]: ...
    def time_column(self) -> str | None: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> DriftMonitor: ...
    def save(self, path: str | PathLike[str]) -> None: ...
    @staticmethod
    def load(path: str | PathLike[str]) -> DriftMonitor: ...

@final
class ServerHandle:
    """A running model server (REST and/or gRPC) in this process."""

    @staticmethod
    def start(config: str) -> ServerHandle: ...
    @property
    def http_address(self) -> tuple[str, int] | None: ...
    @property
    def grpc_address(self) -> tuple[str, int] | None: ...
    @property
    def running(self) -> bool: ...
    def load(self, name: str, path: str | PathLike[str], version: str | None = None) -> tuple[str, str | None, str, float]: ...
    def activate(self, name: str, version: str | None = None) -> tuple[str, str | None, str, float]: ...
    def load_repository(self, name: str) -> tuple[str, str | None, str, float]: ...
    def unload(self, name: str) -> None: ...
    def models(self) -> list[tuple[str, str | None, list[str]]]: ...
    def create_experiment(self, config: str) -> str: ...
    def stop_experiment(self, name: str) -> str: ...
    def experiments(self) -> str: ...
    def feedback(self, items: str, experiment: str | None = None) -> str: ...
    def flush_events(self) -> None: ...
    def monitoring(self, name: str) -> str: ...
    def metrics_text(self) -> str: ...
    def wait(self) -> None: ...
    def stop(self, grace: float = 5.0) -> None: ...

def assign_variant(salt: str, unit: str, weights: Sequence[float]) -> tuple[float, int]: ...
