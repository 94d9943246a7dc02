//! The pyo3 layer: converts Python inputs, calls the core with the GIL released, maps errors.
//! No algorithm lives here.

mod artifact;
mod dataset;
mod errors;
mod gbdt;

use pyo3::prelude::*;

/// The compiled extension, `ferrox._ferrox`.
#[pymodule(gil_used = false)]
fn _ferrox(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("FORMAT_VERSION", crate::artifact::FORMAT_VERSION)?;
    m.add_class::<dataset::PyDataset>()?;
    m.add_class::<gbdt::PyTrainer>()?;
    m.add_class::<gbdt::PyBoosterModel>()?;
    m.add_function(wrap_pyfunction!(artifact::artifact_header, m)?)?;
    m.add_function(wrap_pyfunction!(artifact::default_num_threads, m)?)?;
    Ok(())
}
