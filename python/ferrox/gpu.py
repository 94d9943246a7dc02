"""The GPU path: ``device="cuda"`` in :func:`ferrox.train`, the GBDT estimators and
:meth:`ferrox.Booster.predict`.

Training on a GPU builds the same integer histograms and the same stable row partitions as the CPU
path, so it grows the same trees: a model trained with ``device="cuda"`` has the same bytes as one
trained on the CPU with the same parameters and seed (``use_quantized_grad=True`` or not). Prediction
walks the trees in the same order per row, so the scores are equal too.

Nothing is linked against CUDA: the NVIDIA driver and the NVRTC compiler are opened on first use, and
the kernels (CUDA C, built into ferrox) are compiled then and cached under ``~/.cache/ferrox/kernels``.
NVRTC comes from a CUDA toolkit or from the ``nvidia-cuda-nvrtc-cu12`` package, which ferrox finds by
itself. Without a driver or NVRTC, ``device="cuda"`` raises :class:`ferrox.DeviceError` saying what is
missing; everything else works as before.

>>> import ferrox as fx
>>> status = fx.gpu.status()
>>> sorted(status)
['devices', 'driver', 'error', 'nvrtc']
>>> if status["devices"] == 0:
...     try:
...         fx.gpu.require()
...     except fx.DeviceError as e:
...         print("no GPU here")
... else:
...     print("no GPU here")  # a GPU machine prints the same line, so the example runs anywhere
no GPU here
"""

from __future__ import annotations

import os
from typing import Any

from . import _ferrox

__all__ = ["status", "require", "compile_kernels", "library_dirs"]


def library_dirs() -> list[str]:
    """Directories of NVIDIA libraries installed as Python packages (``nvidia-cuda-nvrtc-cu12`` and
    kin), which ferrox searches besides the system's library path."""
    found: list[str] = []
    try:
        import nvidia  # namespace package of NVIDIA's wheels
    except ImportError:
        return found
    for base in list(getattr(nvidia, "__path__", [])):
        try:
            entries = sorted(os.listdir(base))
        except OSError:
            continue
        for name in entries:
            lib = os.path.join(base, name, "lib")
            if os.path.isdir(lib):
                found.append(lib)
    return found


def _point_core_at_wheels() -> None:
    dirs = [d for d in os.environ.get("FERROX_CUDA_LIB_DIRS", "").split(os.pathsep) if d]
    for d in library_dirs():
        if d not in dirs:
            dirs.append(d)
    if dirs:
        os.environ["FERROX_CUDA_LIB_DIRS"] = os.pathsep.join(dirs)


_point_core_at_wheels()


def status() -> dict[str, Any]:
    """What this machine offers: ``driver`` and ``nvrtc`` (whether each library loads), ``devices``
    (CUDA devices found, 0 without a driver) and ``error`` (why ``device="cuda"`` would fail, or None)."""
    driver, nvrtc, devices, error = _ferrox.gpu_status()
    return {"driver": driver, "nvrtc": nvrtc, "devices": devices, "error": error}


def require(device: str = "cuda") -> None:
    """Raises :class:`ferrox.DeviceError` unless ``device`` can be used (opens it and loads the kernels)."""
    _ferrox.gpu_require(device)


def compile_kernels(arch: str = "compute_90") -> dict[str, int]:
    """Compiles every kernel to PTX for ``arch`` (``compute_80``, ``compute_90``, ...) with NVRTC,
    stores it in the PTX cache (``$FERROX_CACHE_DIR/kernels`` or ``~/.cache/ferrox/kernels``) and
    returns each module's PTX size in bytes. Needs NVRTC only, no GPU: a GPU machine without NVRTC
    runs from a cache filled this way elsewhere. Compile errors raise :class:`ferrox.DeviceError` with
    the compiler's log."""
    return dict(_ferrox.gpu_compile_kernels(arch))
