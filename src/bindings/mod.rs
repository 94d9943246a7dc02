//! The pyo3 layer: converts Python inputs, calls the core with the GIL released, maps errors.
//! No algorithm lives here.

mod artifact;
mod dataset;
mod drift;
mod errors;
mod profile;
mod validate;

use pyo3::prelude::*;

/// The compiled extension, `ferrox._ferrox`.
#[pymodule(gil_used = false)]
fn _ferrox(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("FORMAT_VERSION", crate::artifact::FORMAT_VERSION)?;
    m.add_class::<dataset::PyDataset>()?;
    m.add_function(wrap_pyfunction!(artifact::artifact_header, m)?)?;
    m.add_function(wrap_pyfunction!(artifact::default_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(drift::ks_2samp, m)?)?;
    m.add_function(wrap_pyfunction!(drift::cramervonmises_2samp, m)?)?;
    m.add_function(wrap_pyfunction!(drift::mannwhitneyu, m)?)?;
    m.add_function(wrap_pyfunction!(drift::anderson_ksamp, m)?)?;
    m.add_function(wrap_pyfunction!(drift::chi2_contingency, m)?)?;
    m.add_function(wrap_pyfunction!(drift::wasserstein_distance, m)?)?;
    m.add_function(wrap_pyfunction!(drift::energy_distance, m)?)?;
    m.add_function(wrap_pyfunction!(drift::jensenshannon, m)?)?;
    m.add_function(wrap_pyfunction!(drift::hellinger, m)?)?;
    m.add_function(wrap_pyfunction!(drift::psi, m)?)?;
    m.add_function(wrap_pyfunction!(drift::adjust_pvalues, m)?)?;
    m.add_class::<profile::PyReferenceProfile>()?;
    m.add_class::<profile::PyDriftReport>()?;
    m.add_class::<profile::PyDriftMonitor>()?;
    m.add_function(wrap_pyfunction!(validate::infer_schema, m)?)?;
    m.add_function(wrap_pyfunction!(validate::validate_schema, m)?)?;
    m.add_function(wrap_pyfunction!(validate::check_training, m)?)?;
    Ok(())
}
