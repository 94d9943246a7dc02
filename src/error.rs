//! The one error type of the core. Every fallible core function returns [`Result`]; the bindings map
//! each variant to a Python exception class (`DataError`, `ModelIntegrityError`, ...).

use std::fmt;

/// What went wrong, with a message that names the column, row or parameter involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input data is unusable as given (shape, dtype, NaN label, unknown column, ...).
    #[error("{0}")]
    Data(String),
    /// A parameter is out of range or unknown.
    #[error("{0}")]
    Param(String),
    /// A model file or byte string failed verification (bad magic, hash mismatch, truncated, unparsable).
    #[error("{0}")]
    Integrity(String),
    /// A model file was written by a newer format version than this build reads.
    #[error(
        "model file has format version {found}, but this ferrox reads versions up to {supported}: \
         upgrade ferrox to load it"
    )]
    Version { found: u32, supported: u32 },
    /// An operating-system error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A device (GPU) is unusable: its driver or compiler library is missing, a kernel failed to
    /// compile or launch, or device memory ran out. The message says which.
    #[error("{0}")]
    Device(String),
    /// A broken invariant inside ferrox: a bug, reported instead of crashing.
    #[error("internal error (please report): {0}")]
    Internal(String),
}

/// The core's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A [`Error::Data`] from anything printable.
    pub fn data(msg: impl fmt::Display) -> Self {
        Error::Data(msg.to_string())
    }
    /// A [`Error::Param`] from anything printable.
    pub fn param(msg: impl fmt::Display) -> Self {
        Error::Param(msg.to_string())
    }
    /// A [`Error::Integrity`] from anything printable.
    pub fn integrity(msg: impl fmt::Display) -> Self {
        Error::Integrity(msg.to_string())
    }
    /// An [`Error::Device`] from anything printable.
    pub fn device(msg: impl fmt::Display) -> Self {
        Error::Device(msg.to_string())
    }
    /// An [`Error::Io`] naming what was being done.
    pub fn io(context: impl fmt::Display, source: std::io::Error) -> Self {
        Error::Io { context: context.to_string(), source }
    }
}
