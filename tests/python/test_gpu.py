"""The GPU path: errors without a GPU, kernels compiled by NVRTC, and (on a machine with one) the
GPU's models and predictions against the CPU's, byte for byte."""

from __future__ import annotations

import os

import numpy as np
import pytest

import ferrox as fx

STATUS = fx.gpu.status()
HAS_GPU = STATUS["devices"] > 0
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason=f"no usable CUDA device: {STATUS['error']}")


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[rng.random(n) < 0.05, 2] = np.nan
    X[:, 4] = rng.integers(0, 10, size=n)
    y = (X[:, 0] + X[:, 1] ** 2 - 1 + (X[:, 4] % 3 == 0) + rng.normal(scale=0.5, size=n) > 0).astype(np.float64)
    return X, y


@pytest.mark.skipif(STATUS["driver"], reason="this machine has a CUDA driver")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "gpu", "CUDA:1"])
def test_cuda_without_a_driver_raises_device_error_naming_it(device: str) -> None:
    X, y = _data(500, 1)
    with pytest.raises(fx.DeviceError, match="libcuda") as e:
        fx.train({"device": device, "verbosity": -1, "objective": "binary"}, fx.Dataset(X, label=y), 3)
    assert isinstance(e.value, fx.FerroxError) and isinstance(e.value, RuntimeError)
    with pytest.raises(fx.DeviceError, match="libcuda"):
        fx.train({"device_type": device, "verbosity": -1}, fx.Dataset(X, label=y), 3)
    with pytest.raises(fx.DeviceError, match="libcuda"):
        fx.GBDTClassifier(n_estimators=3, device=device).fit(X, y)
    booster = fx.train({"verbosity": -1, "objective": "binary"}, fx.Dataset(X, label=y), 3)
    with pytest.raises(fx.DeviceError, match="libcuda"):
        booster.predict(X, device=device)
    with pytest.raises(fx.DeviceError, match="libcuda"):
        fx.gpu.require(device)
    assert STATUS["devices"] == 0 and "libcuda" in STATUS["error"]


@pytest.mark.parametrize("bad", ["tpu", "cuda:", "cuda:x", "cuda:-1", ""])
def test_a_bad_device_name_is_a_parameter_error(bad: str) -> None:
    X, y = _data(300, 2)
    with pytest.raises(fx.ParameterError, match="device must be"):
        fx.train({"device": bad, "verbosity": -1}, fx.Dataset(X, label=y), 2)
    booster = fx.train({"verbosity": -1}, fx.Dataset(X, label=y), 2)
    with pytest.raises(fx.ParameterError, match="device must be"):
        booster.predict(X, device=bad)
    with pytest.raises(fx.ParameterError, match="device must be a string"):
        booster.predict(X, device=3)  # type: ignore[arg-type]


def test_device_cpu_is_the_default_and_changes_nothing() -> None:
    X, y = _data(2000, 3)
    params = {"verbosity": -1, "objective": "binary", "use_quantized_grad": True, "seed": 4}
    a = fx.train(params, fx.Dataset(X, label=y), 10)
    b = fx.train({**params, "device": "cpu"}, fx.Dataset(X, label=y), 10)
    assert a.to_bytes() == b.to_bytes()
    assert np.array_equal(a.predict(X), b.predict(X, device="cpu"))
    # An estimator's artifact does not carry its device either.
    e1 = fx.GBDTClassifier(n_estimators=5, random_state=1).fit(X, y)
    e2 = fx.GBDTClassifier(n_estimators=5, random_state=1, device="cpu").fit(X, y)
    assert e1.to_bytes() == e2.to_bytes()


def test_shap_values_stay_on_the_cpu() -> None:
    X, y = _data(500, 5)
    booster = fx.train({"verbosity": -1}, fx.Dataset(X, label=y), 3)
    with pytest.raises(fx.ParameterError, match="pred_contrib"):
        booster._predict(X, False, None, 0, contrib=True, device="cuda")


@pytest.mark.skipif(not STATUS["nvrtc"] and not os.environ.get("FERROX_REQUIRE_NVRTC"), reason=f"NVRTC not installed: {STATUS['error']}")
@pytest.mark.parametrize("arch", ["compute_80", "sm_90"])
def test_every_kernel_compiles_to_ptx(arch: str) -> None:
    sizes = fx.gpu.compile_kernels(arch)
    assert set(sizes) == {"quantize", "histogram", "partition", "predict"}
    assert all(v > 1000 for v in sizes.values()), sizes
    with pytest.raises(fx.ParameterError, match="arch must look like"):
        fx.gpu.compile_kernels("volta")


@needs_gpu
@pytest.mark.parametrize("quantized", [True, False])
def test_gpu_training_gives_the_cpu_model_bytes(quantized: bool) -> None:
    X, y = _data(200_000, 6)
    params = {
        "verbosity": -1,
        "objective": "binary",
        "num_leaves": 31,
        "use_quantized_grad": quantized,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "feature_fraction": 0.8,
        "seed": 7,
    }
    cpu = fx.train(params, fx.Dataset(X, label=y, categorical_feature=[4]), 30)
    gpu = fx.train({**params, "device": "cuda"}, fx.Dataset(X, label=y, categorical_feature=[4]), 30)
    assert gpu.to_bytes() == cpu.to_bytes()


@needs_gpu
def test_gpu_predictions_equal_the_cpu_path() -> None:
    X, y = _data(100_000, 8)
    for params in ({"objective": "binary"}, {"objective": "multiclass", "num_class": 3}):
        label = y if params["objective"] == "binary" else (np.nan_to_num(X[:, 0]) > 0) + (X[:, 1] > 0.5)
        b = fx.train({"verbosity": -1, "num_leaves": 63, **params}, fx.Dataset(X, label=label, categorical_feature=[4]), 50)
        for raw in (False, True):
            assert np.array_equal(b.predict(X, raw_score=raw, device="cuda"), b.predict(X, raw_score=raw))


@pytest.mark.skipif(not STATUS["nvrtc"] and not os.environ.get("FERROX_REQUIRE_NVRTC"), reason=f"NVRTC not installed: {STATUS['error']}")
def test_compiled_kernels_land_in_the_ptx_cache(tmp_path) -> None:
    import subprocess
    import sys

    code = "import ferrox as fx; print(sorted(fx.gpu.compile_kernels('compute_90').items()))"
    env = {**os.environ, "FERROX_CACHE_DIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in (tmp_path / "kernels").iterdir())
    assert [f.split("-")[0] for f in files] == ["histogram", "partition", "predict", "quantize"]
    assert all(f.endswith(".ptx") and "-compute_90-" in f for f in files)
    assert all(".target sm_90" in (tmp_path / "kernels" / f).read_text() for f in files)
