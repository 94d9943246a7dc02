//! ferrox: the Rust core of a production-ML toolkit for tabular data.
//!
//! The core (every module but `bindings`) knows nothing of Python; `bindings` is the thin pyo3 layer,
//! compiled only with the `python` feature.

pub mod artifact;
pub mod data;
pub mod drift;
pub mod experiment;
pub mod error;
pub mod gbdt;
pub mod gpu;
pub mod linear;
pub mod mem;
pub mod parallel;
pub mod predict;
#[cfg(feature = "serve")]
pub mod serve;
pub mod transform;
pub mod validate;

#[cfg(feature = "python")]
mod bindings;

pub use error::{Error, Result};
