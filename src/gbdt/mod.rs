//! Gradient-boosted decision trees: parameters, objectives, metrics, the histogram tree learner and
//! the boosting loop. Trained models are evaluated through `crate::predict`.

pub mod boosting;
pub mod distributed;
pub mod exact;
pub mod learner;
pub mod metric;
pub mod objective;
pub mod params;
pub mod tree;

pub use boosting::{Model, Trainer};
pub use params::{GbdtParams, ObjectiveKind, ParamValue};
