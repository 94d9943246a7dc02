# Type stubs of the compiled extension ferrox._ferrox (checked against it by mypy's stubtest).
from collections.abc import Sequence
from os import PathLike
from typing import Any, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "__version__",
    "FORMAT_VERSION",
    "BinnedDataset",
    "artifact_header",
    "default_num_threads",
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
    "ReferenceProfile",
    "DriftReport",
    "DriftMonitor",
    "infer_schema",
    "validate_schema",
    "check_training",
]

__version__: str
FORMAT_VERSION: int

def artifact_header(data: bytes) -> dict[str, Any]: ...
def default_num_threads() -> int: ...

_F64 = npt.NDArray[np.float64]

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
    def params(self) -> dict[str, int]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> BinnedDataset: ...
    def save(self, path: str | PathLike[str]) -> None: ...
    @staticmethod
    def load(path: str | PathLike[str]) -> BinnedDataset: ...
    def describe_json(self) -> str: ...
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
        large_sample: int = 100000,
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
        large_sample: int = 100000,
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
        large_sample: int = 100000,
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
