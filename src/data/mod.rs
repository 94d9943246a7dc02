//! Data in: column sources (numpy views, Arrow arrays), quantile binning, and the binned [`Dataset`].

pub mod arrow;
pub mod binning;
pub mod dataset;
pub mod frame;
pub mod sample;

pub use binning::{BinConfig, BinMapper, CatKey};
pub use dataset::{BinMatrix, Dataset};
pub use frame::{ColumnSource, Frame};
