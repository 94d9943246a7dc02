//! Drift statistics: two-sample tests and distances with scipy's definitions (`twosample`,
//! `distance`), the distributions behind their p-values (`special`), multiple-testing correction
//! (`multitest`), mergeable reference profiles compared against current data (`profile`, `sketch`).

pub mod distance;
pub mod domain;
pub mod html;
pub mod monitor;
pub mod performance;
pub mod multitest;
pub mod profile;
pub mod sketch;
pub mod special;
pub mod twosample;
