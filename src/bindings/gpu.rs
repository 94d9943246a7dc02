//! The GPU path's status and checks (`ferrox.gpu`).

use pyo3::prelude::*;

use super::errors::{detach, to_py};
use crate::gpu;

/// (driver loads, NVRTC loads, CUDA devices, why device='cuda' would fail).
#[pyfunction]
pub fn gpu_status(py: Python<'_>) -> (bool, bool, usize, Option<String>) {
    py.detach(|| {
        let driver = gpu::driver_available();
        let nvrtc = gpu::nvrtc_available();
        let (devices, error) = match &driver {
            Ok(()) => match gpu::device_count() {
                Ok(0) => (0, Some("the CUDA driver found no device".to_string())),
                // Without NVRTC a device runs kernels from the PTX cache only.
                Ok(n) => (n, nvrtc.as_ref().err().map(|e| format!("{e} (kernels can come only from the PTX cache)"))),
                Err(e) => (0, Some(e.to_string())),
            },
            Err(e) => (0, Some(e.to_string())),
        };
        (driver.is_ok(), nvrtc.is_ok(), devices, error)
    })
}

/// Opens `device` and loads its kernels, or raises DeviceError.
#[pyfunction]
pub fn gpu_require(py: Python<'_>, device: String) -> PyResult<()> {
    let d = gpu::Device::parse(&device).map_err(|e| to_py(py, e))?;
    detach(py, move || match d {
        gpu::Device::Cpu => Ok(()),
        d => {
            let g = gpu::gpu_of(d)?;
            for (name, _) in gpu::KERNELS {
                g.module(name)?;
            }
            Ok(())
        }
    })
}

/// Every kernel module compiled to PTX for `arch` by NVRTC and stored in the PTX cache:
/// [(module, PTX bytes)].
#[pyfunction]
pub fn gpu_compile_kernels(py: Python<'_>, arch: String) -> PyResult<Vec<(String, usize)>> {
    let arch: &'static str = gpu::arch_static(&arch).map_err(|e| to_py(py, e))?;
    detach(py, move || {
        gpu::KERNELS.iter().map(|(name, _)| Ok((name.to_string(), gpu::compile_into_cache(name, arch)?))).collect()
    })
}
