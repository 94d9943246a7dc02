//! The GPU path: CUDA through cudarc, loaded at run time.
//!
//! Nothing here links against CUDA. The driver (`libcuda`) and NVRTC (`libnvrtc`) are opened when a
//! GPU is first asked for, and checked for before cudarc is called (cudarc panics when a library is
//! missing): a machine without them gets [`Error::Device`] naming what is missing. The kernels are the
//! CUDA C sources of `kernels/`, built into the library as text and compiled by NVRTC at first use,
//! with the PTX cached per architecture and source hash (in memory, and on disk under
//! `$FERROX_CACHE_DIR` or `~/.cache/ferrox/kernels`). Modules and the stream are kept per device.
//!
//! The GPU trainer ([`learner::GpuLearner`]) builds the same integer histograms and the same stable
//! partitions as the CPU learner, so split finding (shared, on the host) sees identical sums and the
//! two paths grow identical trees; [`emulate::EmulatedLearner`] runs the kernels' algorithm (block
//! privatised histograms, tiled scan partition) on the CPU, which is how tests without a GPU check it.
//! Libraries installed by pip (the `nvidia-cuda-nvrtc-cu12` wheel) are found through
//! `$FERROX_CUDA_LIB_DIRS` (directories, `:`-separated), which `ferrox.gpu` fills in from the wheels'
//! locations.

pub mod emulate;
pub mod learner;
pub mod predict;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Where training or prediction runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Device {
    /// The CPU (rayon threads).
    #[default]
    Cpu,
    /// CUDA device with this ordinal.
    Cuda(usize),
}

impl Device {
    /// Parses `cpu`, `cuda`, `cuda:N`, `gpu` or `gpu:N` (XGBoost's `device`, LightGBM's
    /// `device_type`); case-insensitive.
    pub fn parse(s: &str) -> Result<Device> {
        let t = s.trim().to_ascii_lowercase();
        let bad = || Error::param(format!("device must be 'cpu', 'cuda' or 'cuda:<ordinal>', got '{s}'"));
        match t.as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda(0)),
            _ => {
                let rest = t.strip_prefix("cuda:").or_else(|| t.strip_prefix("gpu:")).ok_or_else(bad)?;
                rest.parse::<usize>().map(Device::Cuda).map_err(|_| bad())
            }
        }
    }

    /// The device's name as `parse` reads it.
    pub fn name(&self) -> String {
        match self {
            Device::Cpu => "cpu".into(),
            Device::Cuda(i) => format!("cuda:{i}"),
        }
    }
}

/// The common header every kernel file is compiled with.
const COMMON: &str = include_str!("../../kernels/common.cuh");

/// The kernel files: (module name, source).
pub const KERNELS: &[(&str, &str)] = &[
    ("quantize", include_str!("../../kernels/quantize.cu")),
    ("histogram", include_str!("../../kernels/histogram.cu")),
    ("partition", include_str!("../../kernels/partition.cu")),
    ("predict", include_str!("../../kernels/predict.cu")),
];

/// The architectures PTX is built for in the test suite (A100 and H100/H200).
pub const TEST_ARCHS: &[&str] = &["compute_80", "compute_90"];

/// The full source of kernel module `name`: the common header, then the file.
pub fn source(name: &str) -> Result<String> {
    let (_, src) =
        KERNELS.iter().find(|(n, _)| *n == name).ok_or_else(|| Error::Internal(format!("no kernel module named '{name}'")))?;
    Ok(format!("{COMMON}\n#line 1 \"{name}.cu\"\n{src}"))
}

/// Opens the libraries in `$FERROX_CUDA_LIB_DIRS` whose names start with `prefix`, and keeps them
/// open: a later open by soname (cudarc's) then finds the loaded library.
fn preload(prefix: &str) {
    static OPENED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let Ok(dirs) = std::env::var("FERROX_CUDA_LIB_DIRS") else { return };
    let mut opened = OPENED.lock().unwrap_or_else(|e| e.into_inner());
    for dir in dirs.split(':').filter(|d| !d.is_empty()) {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut names: Vec<std::path::PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix) && n.contains(".so")))
            .collect();
        names.sort();
        for p in names {
            let key = p.display().to_string();
            if opened.contains(&key) {
                continue;
            }
            // SAFETY: opening a shared library runs its initialisers; these are NVIDIA's own
            // libraries, which cudarc would open anyway.
            if let Ok(lib) = unsafe { libloading::Library::new(&p) } {
                std::mem::forget(lib);
                opened.push(key);
            }
        }
    }
}

/// Whether NVRTC can be loaded; the error says what is missing.
pub fn nvrtc_available() -> Result<()> {
    preload("libnvrtc");
    // SAFETY: only tries to open the library by its candidate names.
    if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        Ok(())
    } else {
        Err(Error::device(
            "the CUDA runtime compiler (libnvrtc.so) was not found: install the 'nvidia-cuda-nvrtc-cu12' \
             package or a CUDA toolkit, or add its lib directory to LD_LIBRARY_PATH",
        ))
    }
}

/// Whether the CUDA driver can be loaded; the error says what is missing.
pub fn driver_available() -> Result<()> {
    // SAFETY: only tries to open the library by its candidate names.
    if unsafe { cudarc::driver::sys::is_culib_present() } {
        Ok(())
    } else {
        Err(Error::device(
            "the CUDA driver (libcuda.so) was not found: this machine has no NVIDIA driver, so device='cuda' \
             cannot be used (train and predict on device='cpu')",
        ))
    }
}

fn nvrtc_err(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::device(format!("{what}: {e:?}"))
}

fn drv<T>(what: &str, r: std::result::Result<T, cudarc::driver::DriverError>) -> Result<T> {
    r.map_err(|e| {
        let oom = e.0 == cudarc::driver::sys::cudaError_enum::CUDA_ERROR_OUT_OF_MEMORY;
        if oom {
            Error::device(format!("{what}: out of GPU memory ({e})"))
        } else {
            Error::device(format!("{what}: {e}"))
        }
    })
}

/// The directory compiled PTX is cached in.
fn cache_dir() -> Option<std::path::PathBuf> {
    if let Ok(d) = std::env::var("FERROX_CACHE_DIR") {
        return Some(std::path::PathBuf::from(d).join("kernels"));
    }
    std::env::var("HOME").ok().map(|h| std::path::PathBuf::from(h).join(".cache").join("ferrox").join("kernels"))
}

/// The cache key of kernel module `name` built for `arch`: module, architecture, source hash.
fn cache_key(name: &str, src: &str, arch: &str) -> String {
    let mut h = Sha256::new();
    h.update(arch.as_bytes());
    h.update([0]);
    h.update(src.as_bytes());
    let hash = h.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>();
    format!("{name}-{arch}-{}", &hash[..16])
}

static MEMORY: OnceLock<Mutex<HashMap<String, Arc<String>>>> = OnceLock::new();

/// Keeps compiled PTX in memory and in the disk cache (a cache that cannot be written only costs a
/// compile next time).
fn remember(key: String, text: String) -> Arc<String> {
    if let Some(f) = cache_dir().map(|d| d.join(format!("{key}.ptx"))) {
        if let Some(d) = f.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        let tmp = f.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, &text).is_ok() {
            let _ = std::fs::rename(&tmp, f);
        }
    }
    let p = Arc::new(text);
    MEMORY.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner()).insert(key, p.clone());
    p
}

/// The PTX of kernel module `name` for `arch` (e.g. `compute_90`), compiled by NVRTC once per
/// architecture and source hash. A machine without NVRTC runs from the cache alone (filled by
/// [`compile_into_cache`] on any machine with NVRTC, no GPU needed). Compile errors come back with
/// NVRTC's log.
pub fn ptx(name: &str, arch: &'static str) -> Result<Arc<String>> {
    let src = source(name)?;
    let key = cache_key(name, &src, arch);
    if let Some(p) = MEMORY.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(p.clone());
    }
    if let Some(text) = cache_dir().and_then(|d| std::fs::read_to_string(d.join(format!("{key}.ptx"))).ok()) {
        return Ok(remember(key, text));
    }
    let text = compile(name, &src, arch)?;
    Ok(remember(key, text))
}

/// Compiles kernel module `name` for `arch` with NVRTC (whatever the cache holds) and stores the PTX
/// in the cache; returns its size in bytes.
pub fn compile_into_cache(name: &str, arch: &'static str) -> Result<usize> {
    let src = source(name)?;
    let text = compile(name, &src, arch)?;
    let len = text.len();
    remember(cache_key(name, &src, arch), text);
    Ok(len)
}

/// Compiles one module with NVRTC (no cache).
pub fn compile(name: &str, src: &str, arch: &'static str) -> Result<String> {
    nvrtc_available()?;
    let opts = cudarc::nvrtc::CompileOptions {
        // Model-deciding arithmetic must round as the CPU's does: no fused multiply-adds, IEEE
        // division and square roots, no flush-to-zero.
        fmad: Some(false),
        prec_div: Some(true),
        prec_sqrt: Some(true),
        ftz: Some(false),
        arch: Some(arch),
        name: Some(format!("{name}.cu")),
        options: vec!["--std=c++17".into()],
        ..Default::default()
    };
    match std::panic::catch_unwind(|| cudarc::nvrtc::compile_ptx_with_opts(src, opts)) {
        Ok(Ok(ptx)) => Ok(ptx.to_src()),
        Ok(Err(e)) => Err(nvrtc_err(&format!("kernel module '{name}' failed to compile for {arch}"), e)),
        Err(_) => Err(Error::device(format!("NVRTC failed while compiling kernel module '{name}'"))),
    }
}

/// One CUDA device: its context, a stream, and the kernel modules loaded so far.
pub struct Gpu {
    pub ctx: Arc<cudarc::driver::CudaContext>,
    pub stream: Arc<cudarc::driver::CudaStream>,
    arch: &'static str,
    modules: Mutex<HashMap<&'static str, Arc<cudarc::driver::CudaModule>>>,
    /// The device's name, e.g. "NVIDIA H200".
    pub name: String,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gpu({}, {})", self.name, self.arch)
    }
}

/// A `compute_XY` name for a compute capability (NVRTC takes `&'static str`).
fn arch_name(major: i32, minor: i32) -> &'static str {
    intern(format!("compute_{major}{minor}"))
}

/// `arch` (`compute_90`, or `sm_90` for the same) as NVRTC takes it.
pub fn arch_static(arch: &str) -> Result<&'static str> {
    let digits = arch.strip_prefix("compute_").or_else(|| arch.strip_prefix("sm_"));
    match digits {
        Some(d) if !d.is_empty() && d.len() <= 4 && d.chars().all(|c| c.is_ascii_alphanumeric()) => Ok(intern(format!("compute_{d}"))),
        _ => Err(Error::param(format!("arch must look like 'compute_90' or 'sm_90', got '{arch}'"))),
    }
}

fn intern(s: String) -> &'static str {
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = names.iter().find(|n| **n == s) {
        return n;
    }
    let leaked: &'static str = Box::leak(s.into_boxed_str());
    names.push(leaked);
    leaked
}

/// The device `ordinal`, opened once per process. Errors (no driver, no NVRTC, no such device) are
/// [`Error::Device`] and say what is missing.
pub fn gpu(ordinal: usize) -> Result<Arc<Gpu>> {
    static DEVICES: OnceLock<Mutex<HashMap<usize, Arc<Gpu>>>> = OnceLock::new();
    let devices = DEVICES.get_or_init(Default::default);
    let mut map = devices.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(g) = map.get(&ordinal) {
        return Ok(g.clone());
    }
    // NVRTC is needed only when a kernel is not in the PTX cache (`ptx`).
    driver_available()?;
    let opened = std::panic::catch_unwind(|| -> Result<Gpu> {
        let count = drv("counting CUDA devices", cudarc::driver::CudaContext::device_count())?;
        if ordinal >= count.max(0) as usize {
            return Err(Error::device(format!("device 'cuda:{ordinal}' asked for, but this machine has {count} CUDA device(s)")));
        }
        let ctx = drv(&format!("opening cuda:{ordinal}"), cudarc::driver::CudaContext::new(ordinal))?;
        let (major, minor) = drv("reading the compute capability", ctx.compute_capability())?;
        let name = drv("reading the device name", ctx.name())?;
        // SAFETY: ferrox uses one stream per device (this one), so work on it is ordered and no
        // buffer is used or freed across streams: cudarc's per-buffer events would only add a
        // record and a wait to every launch and copy.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.default_stream();
        Ok(Gpu { ctx, stream, arch: arch_name(major, minor), modules: Mutex::new(HashMap::new()), name })
    });
    let g = match opened {
        Ok(r) => Arc::new(r?),
        Err(_) => return Err(Error::device(format!("the CUDA driver failed while opening cuda:{ordinal}"))),
    };
    map.insert(ordinal, g.clone());
    Ok(g)
}

/// CUDA devices on this machine (an error when the driver is missing).
pub fn device_count() -> Result<usize> {
    driver_available()?;
    match std::panic::catch_unwind(cudarc::driver::CudaContext::device_count) {
        Ok(r) => Ok(drv("counting CUDA devices", r)?.max(0) as usize),
        Err(_) => Err(Error::device("the CUDA driver failed while counting devices")),
    }
}

/// The GPU of `device`, or a parameter error for the CPU.
pub fn gpu_of(device: Device) -> Result<Arc<Gpu>> {
    match device {
        Device::Cuda(i) => gpu(i),
        Device::Cpu => Err(Error::Internal("a GPU was asked for device 'cpu'".into())),
    }
}

impl Gpu {
    /// Kernel module `module`, compiled and loaded at first use.
    pub fn module(&self, module: &'static str) -> Result<Arc<cudarc::driver::CudaModule>> {
        let m = {
            let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
            match modules.get(module) {
                Some(m) => m.clone(),
                None => {
                    let text = ptx(module, self.arch)?;
                    let m = drv(
                        &format!("loading kernel module '{module}' ({}; the driver may be older than NVRTC)", self.arch),
                        self.ctx.load_module(cudarc::nvrtc::Ptx::from_src(text.as_str())),
                    )?;
                    modules.insert(module, m.clone());
                    m
                }
            }
        };
        Ok(m)
    }

    /// Function `func` of kernel module `module`.
    pub fn function(&self, module: &'static str, func: &str) -> Result<cudarc::driver::CudaFunction> {
        let m = self.module(module)?;
        drv(&format!("finding kernel '{func}'"), m.load_function(func))
    }

    /// Waits for the stream's work; launch failures surface here.
    pub fn sync(&self) -> Result<()> {
        drv("running a kernel", self.stream.synchronize())
    }
}

/// Launch dimensions: `blocks` x `threads`, no dynamic shared memory.
pub fn cfg(blocks: (u32, u32), threads: u32) -> cudarc::driver::LaunchConfig {
    cudarc::driver::LaunchConfig { grid_dim: (blocks.0.max(1), blocks.1.max(1), 1), block_dim: (threads, 1, 1), shared_mem_bytes: 0 }
}

/// A driver result as a ferrox one (`what` says what was being done).
pub fn check<T>(what: &str, r: std::result::Result<T, cudarc::driver::DriverError>) -> Result<T> {
    drv(what, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_as_xgboost_and_lightgbm_name_them() {
        assert_eq!(Device::parse("cpu").unwrap(), Device::Cpu);
        assert_eq!(Device::parse("CUDA").unwrap(), Device::Cuda(0));
        assert_eq!(Device::parse("gpu").unwrap(), Device::Cuda(0));
        assert_eq!(Device::parse("cuda:1").unwrap(), Device::Cuda(1));
        for bad in ["tpu", "cuda:", "cuda:x", "cuda:-1", ""] {
            let e = Device::parse(bad).unwrap_err().to_string();
            assert!(e.contains("device must be"), "{bad}: {e}");
        }
    }

    /// Every kernel module compiles to PTX for sm_80 and sm_90 (where NVRTC can be loaded; the
    /// Makefile points FERROX_CUDA_LIB_DIRS at the nvidia-cuda-nvrtc-cu12 wheel).
    #[test]
    fn every_kernel_compiles_to_ptx() {
        if let Err(e) = nvrtc_available() {
            // `make test` sets FERROX_REQUIRE_NVRTC (it installs the NVRTC wheel): there, no skip.
            assert!(std::env::var_os("FERROX_REQUIRE_NVRTC").is_none(), "{e}");
            eprintln!("skipped: {e}");
            return;
        }
        for (name, _) in KERNELS {
            let src = source(name).unwrap();
            for arch in TEST_ARCHS {
                let ptx = compile(name, &src, arch).unwrap_or_else(|e| panic!("{e}"));
                assert!(ptx.contains(".entry"), "{name} for {arch} has no kernel entry");
                let target = format!(".target sm_{}", &arch["compute_".len()..]);
                assert!(ptx.contains(&target), "{name} for {arch}: no '{target}' line");
            }
        }
    }

    #[test]
    fn a_kernel_with_an_error_is_a_device_error_with_the_compiler_log() {
        if nvrtc_available().is_err() {
            return;
        }
        let e = compile("broken", "extern \"C\" __global__ void k() { undefined_name(); }", "compute_80").unwrap_err();
        assert!(matches!(e, Error::Device(_)), "{e:?}");
        assert!(e.to_string().contains("undefined_name"), "{e}");
    }
}
