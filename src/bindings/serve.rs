//! The model server's Python handle: starts and stops the Rust runtime, loads and swaps models.
//! Requests never touch Python.

use std::sync::Mutex;
use std::time::Duration;

use pyo3::prelude::*;

use super::errors::detach;
use crate::error::Error;
use crate::serve::store::Loaded;
use crate::serve::{ServeError, Server, ServerConfig};

fn core_error(e: ServeError) -> Error {
    if e.integrity {
        Error::Integrity(e.message)
    } else if e.status == 404 {
        Error::Param(e.message)
    } else if e.status >= 500 {
        Error::Internal(e.message)
    } else {
        Error::Data(e.message)
    }
}

fn loaded(l: Loaded) -> (String, Option<String>, String, f64) {
    (l.version, l.previous, l.sha256, l.seconds)
}

/// The documented assignment of a unit: (bucket in [0, 1), variant index) for a salt and weights.
#[pyfunction]
pub fn assign_variant(salt: &str, unit: &str, weights: Vec<f64>) -> PyResult<(f64, usize)> {
    if weights.is_empty() || weights.iter().any(|w| !(w.is_finite() && *w >= 0.0)) || weights.iter().all(|w| *w == 0.0) {
        return Err(pyo3::exceptions::PyValueError::new_err("weights must be finite, non-negative and not all zero"));
    }
    let b = crate::serve::router::bucket(salt, unit);
    Ok((b, crate::serve::router::pick(&weights, b)))
}

/// A running server (REST and/or gRPC) in this process.
#[pyclass(module = "ferrox._ferrox", name = "ServerHandle")]
pub struct PyServer {
    inner: Mutex<Option<Server>>,
    http: Option<(String, u16)>,
    grpc: Option<(String, u16)>,
}

impl PyServer {
    fn with<T>(&self, py: Python<'_>, f: impl FnOnce(&Server) -> crate::Result<T> + Send) -> PyResult<T>
    where
        T: Send,
    {
        // The lock is taken without the GIL: a thread holding the GIL never waits on a thread that
        // holds the lock and wants the GIL back.
        let inner = &self.inner;
        detach(py, move || {
            let guard = inner.lock().map_err(|_| Error::Internal("server lock poisoned".into()))?;
            let server = guard.as_ref().ok_or_else(|| Error::param("the server is stopped"))?;
            f(server)
        })
    }
}

#[pymethods]
impl PyServer {
    /// Loads the configured models and starts serving; `config` is the server configuration as JSON.
    #[staticmethod]
    fn start(py: Python<'_>, config: String) -> PyResult<Self> {
        let server = detach(py, move || Server::start(ServerConfig::from_json(&config)?))?;
        let http = server.http_addr.map(|a| (a.ip().to_string(), a.port()));
        let grpc = server.grpc_addr.map(|a| (a.ip().to_string(), a.port()));
        Ok(PyServer { inner: Mutex::new(Some(server)), http, grpc })
    }

    /// (host, port) of the REST listener, or None.
    #[getter]
    fn http_address(&self) -> Option<(String, u16)> {
        self.http.clone()
    }

    /// (host, port) of the gRPC listener, or None.
    #[getter]
    fn grpc_address(&self) -> Option<(String, u16)> {
        self.grpc.clone()
    }

    /// Whether the server still runs.
    #[getter]
    fn running(&self, py: Python<'_>) -> bool {
        let inner = &self.inner;
        py.detach(move || inner.lock().map(|g| g.is_some()).unwrap_or(false))
    }

    /// Loads `path` as a new version of `name` and serves it: (version, previous, sha256, seconds).
    #[pyo3(signature = (name, path, version=None))]
    fn load(&self, py: Python<'_>, name: String, path: std::path::PathBuf, version: Option<String>) -> PyResult<(String, Option<String>, String, f64)> {
        self.with(py, move |s| s.load(&name, &path, version).map(loaded).map_err(core_error))
    }

    /// Serves a loaded version again (None: the one before the serving one).
    #[pyo3(signature = (name, version=None))]
    fn activate(&self, py: Python<'_>, name: String, version: Option<String>) -> PyResult<(String, Option<String>, String, f64)> {
        self.with(py, move |s| s.state().store.activate(&name, version.as_deref()).map(loaded).map_err(core_error))
    }

    /// Loads a model from the model repository.
    fn load_repository(&self, py: Python<'_>, name: String) -> PyResult<(String, Option<String>, String, f64)> {
        self.with(py, move |s| s.state().store.load_from_repository(&name).map(loaded).map_err(core_error))
    }

    /// Stops serving a model.
    fn unload(&self, py: Python<'_>, name: String) -> PyResult<()> {
        self.with(py, move |s| s.state().store.unload(&name).map_err(core_error))
    }

    /// Every model: (name, serving version or None, loaded versions).
    fn models(&self, py: Python<'_>) -> PyResult<Vec<(String, Option<String>, Vec<String>)>> {
        self.with(py, |s| {
            Ok(s.state()
                .store
                .entries()
                .iter()
                .map(|e| (e.name.clone(), e.serving.load_full().map(|v| v.version.clone()), e.version_labels()))
                .collect())
        })
    }

    /// Starts an experiment from its JSON declaration; returns its status as JSON.
    fn create_experiment(&self, py: Python<'_>, config: String) -> PyResult<String> {
        self.with(py, move |s| {
            let cfg = serde_json::from_str(&config).map_err(|e| Error::param(format!("experiment: {e}")))?;
            let st = s.state();
            st.router.create(cfg, &st.store).map(|e| e.status().to_string()).map_err(core_error)
        })
    }

    /// Stops an experiment; returns its final status as JSON.
    fn stop_experiment(&self, py: Python<'_>, name: String) -> PyResult<String> {
        self.with(py, move |s| s.state().router.stop(&name).map(|e| e.status().to_string()).map_err(core_error))
    }

    /// The status of every running experiment, as JSON (a list).
    fn experiments(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |s| Ok(serde_json::Value::from(s.state().router.all().iter().map(|e| e.status()).collect::<Vec<_>>()).to_string()))
    }

    /// Joins outcomes to served requests (`items` as JSON: a list); returns the result as JSON.
    #[pyo3(signature = (items, experiment=None))]
    fn feedback(&self, py: Python<'_>, items: String, experiment: Option<String>) -> PyResult<String> {
        self.with(py, move |s| {
            let v: Vec<serde_json::Value> = serde_json::from_str(&items).map_err(|e| Error::param(format!("feedback: {e}")))?;
            let r = s.state().feedback(&v, experiment.as_deref()).map_err(core_error)?;
            Ok(serde_json::to_string(&r).unwrap_or_default())
        })
    }

    /// The drift-monitoring status of a model, as JSON.
    fn monitoring(&self, py: Python<'_>, name: String) -> PyResult<String> {
        self.with(py, move |s| s.state().monitoring(&name).map(|v| v.to_string()).map_err(core_error))
    }

    /// Writes every queued experiment event to the event log now.
    fn flush_events(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |s| {
            if let Some(ev) = s.state().router.events() {
                ev.flush();
            }
            Ok(())
        })
    }

    /// The Prometheus text exposition of the server's metrics.
    fn metrics_text(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |s| Ok(s.state().metrics.render()))
    }

    /// Blocks (without the GIL) until SIGINT or SIGTERM, or until `stop` is called elsewhere.
    fn wait(&self, py: Python<'_>) -> PyResult<()> {
        let inner = &self.inner;
        detach(py, move || {
            let waiter = inner.lock().ok().and_then(|g| g.as_ref().and_then(|s| s.signal_waiter()));
            if let Some(w) = waiter {
                w();
            }
            Ok(())
        })
    }

    /// Stops accepting, finishes in-flight requests (at most `grace` seconds) and shuts down.
    #[pyo3(signature = (grace=5.0))]
    fn stop(&self, py: Python<'_>, grace: f64) -> PyResult<()> {
        let inner = &self.inner;
        let grace = Duration::from_secs_f64(grace.clamp(0.0, 3600.0));
        detach(py, move || {
            if let Some(mut s) = inner.lock().ok().and_then(|mut g| g.take()) {
                s.stop(grace);
            }
            Ok(())
        })
    }
}
