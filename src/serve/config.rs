//! Server configuration: one serde structure, read from TOML (`ferrox serve --config`), from JSON
//! (the Python handle) or built from command-line flags.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Dynamic batching and admission for one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// Rows gathered into one model call; 0 or 1 turns batching off (each request runs on its own).
    pub max_batch_size: usize,
    /// How long the first request of a batch may wait for others, in microseconds.
    pub max_queue_delay_us: u64,
    /// Requests admitted at once (queued or running) before new ones are answered 429.
    pub queue_size: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig { max_batch_size: 0, max_queue_delay_us: 0, queue_size: 1024 }
    }
}

/// One model to serve from a file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The name clients use.
    pub name: String,
    /// The artifact (`.frx`).
    pub path: PathBuf,
    /// Version label; "1" when absent.
    #[serde(default)]
    pub version: Option<String>,
    /// Batching for this model (the server's `batching` when absent).
    #[serde(default)]
    pub batching: Option<BatchConfig>,
}

/// Everything the server needs to start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind; loopback unless set otherwise.
    pub host: String,
    /// REST port (0 = any free port; absent = no REST listener).
    pub http_port: Option<u16>,
    /// gRPC port (0 = any free port; absent = no gRPC listener).
    pub grpc_port: Option<u16>,
    /// Runtime worker threads (0 = the number of cores, at most 4).
    pub threads: usize,
    /// Largest request body accepted, in bytes (413 beyond it).
    pub max_body_bytes: usize,
    /// Default deadline of a request in milliseconds (0 = none); a request may ask for less with
    /// its `timeout` parameter (microseconds).
    pub request_timeout_ms: u64,
    /// Bearer token required on every endpoint but health (none = open).
    pub auth_token: Option<String>,
    /// Environment variable holding the token.
    pub auth_token_env: Option<String>,
    /// File holding the token (surrounding whitespace ignored).
    pub auth_token_file: Option<PathBuf>,
    /// Share of requests written as a JSON log line (0 = none, 1 = all).
    pub log_requests: f64,
    /// Model events (load, swap, refusal, unload) as JSON log lines.
    pub log_events: bool,
    /// Versions of a model kept loaded for instant rollback (the serving one included).
    pub keep_versions: usize,
    /// A repository laid out as `DIR/<name>/<version>/model.frx`.
    pub model_repository: Option<PathBuf>,
    /// Models served from files.
    pub models: Vec<ModelConfig>,
    /// Batching of models that do not set their own.
    pub batching: BatchConfig,
    /// Experiments started with the server (their models must be among those loaded).
    pub experiments: Vec<super::router::ExperimentConfig>,
    /// Where experiments write their assignments, outcomes and transitions (none: not written).
    pub event_log: Option<crate::experiment::eventlog::EventLogConfig>,
    /// Drift monitoring of served rows against each artifact's reference profile (none: off).
    pub monitoring: Option<super::monitor::MonitoringConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            http_port: Some(8080),
            grpc_port: Some(8081),
            threads: 0,
            max_body_bytes: 64 << 20,
            request_timeout_ms: 0,
            auth_token: None,
            auth_token_env: None,
            auth_token_file: None,
            log_requests: 0.0,
            log_events: true,
            keep_versions: 2,
            model_repository: None,
            models: Vec::new(),
            batching: BatchConfig::default(),
            experiments: Vec::new(),
            event_log: None,
            monitoring: None,
        }
    }
}

impl ServerConfig {
    /// Parses a TOML document.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::param(format!("server config: {e}")))
    }

    /// Parses a JSON document.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::param(format!("server config: {e}")))
    }

    /// Checks ranges and resolves the token from its environment variable or file.
    pub fn resolved(mut self) -> Result<Self> {
        if !(0.0..=1.0).contains(&self.log_requests) {
            return Err(Error::param(format!("log_requests must lie in [0, 1], got {}", self.log_requests)));
        }
        if self.keep_versions == 0 {
            return Err(Error::param("keep_versions must be at least 1"));
        }
        if self.max_body_bytes < 1024 {
            return Err(Error::param(format!("max_body_bytes must be at least 1024, got {}", self.max_body_bytes)));
        }
        if self.http_port.is_none() && self.grpc_port.is_none() {
            return Err(Error::param("the server needs a REST or a gRPC port (http_port / grpc_port)"));
        }
        if self.auth_token.is_none() {
            if let Some(var) = &self.auth_token_env {
                let v = std::env::var(var)
                    .map_err(|_| Error::param(format!("auth_token_env: the environment variable {var} is not set")))?;
                self.auth_token = Some(v);
            } else if let Some(path) = &self.auth_token_file {
                let v = std::fs::read_to_string(path)
                    .map_err(|e| Error::io(format!("auth_token_file: cannot read {}", path.display()), e))?;
                self.auth_token = Some(v.trim().to_owned());
            }
        }
        if matches!(&self.auth_token, Some(t) if t.trim().is_empty()) {
            return Err(Error::param("the auth token is empty"));
        }
        if let Some(m) = &self.monitoring {
            m.check()?;
        }
        let mut seen = std::collections::HashSet::new();
        for m in &self.models {
            check_name(&m.name)?;
            if !seen.insert((&m.name, &m.version)) {
                return Err(Error::param(format!("model '{}' is configured twice with the same version", m.name)));
            }
        }
        Ok(self)
    }
}

/// Model names travel in URL paths: letters, digits, '-', '_' and '.'.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::param(format!(
            "model name {name:?} is not valid: use 1 to 128 letters, digits, '-', '_' or '.'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip_and_checks() {
        let c = ServerConfig::from_toml(
            r#"
            http_port = 0
            grpc_port = 0
            [batching]
            max_batch_size = 32
            [[models]]
            name = "flights"
            path = "m.frx"
            "#,
        )
        .unwrap()
        .resolved()
        .unwrap();
        assert_eq!(c.batching.max_batch_size, 32);
        assert_eq!(c.models[0].name, "flights");
        assert_eq!(c.host, "127.0.0.1");
        assert!(ServerConfig::from_toml("bogus = 1").is_err());
        let bad = ServerConfig { log_requests: 2.0, ..Default::default() };
        assert!(bad.resolved().is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("..").is_err());
        assert!(check_name("model-v1.2_x").is_ok());
    }
}
