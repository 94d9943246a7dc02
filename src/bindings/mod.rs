//! The pyo3 layer: converts Python inputs, calls the core with the GIL released, maps errors.
//! No algorithm lives here.

mod artifact;
mod convert;
mod dataset;
mod distributed;
mod drift;
mod errors;
mod experiment;
mod gbdt;
mod gpu;
mod linear;
mod performance;
mod pipeline;
mod transform;
mod profile;
#[cfg(feature = "serve")]
mod serve;
mod validate;

use pyo3::prelude::*;

/// The compiled extension, `ferrox._ferrox`.
#[pymodule(gil_used = false)]
fn _ferrox(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("FORMAT_VERSION", crate::artifact::FORMAT_VERSION)?;
    m.add_class::<dataset::PyDataset>()?;
    m.add_class::<gbdt::PyTrainer>()?;
    m.add_class::<gbdt::PyBoosterModel>()?;
    m.add_class::<distributed::PyShardTrainer>()?;
    m.add_class::<distributed::PyTrainLeader>()?;
    m.add_function(wrap_pyfunction!(gpu::gpu_status, m)?)?;
    m.add_function(wrap_pyfunction!(gpu::gpu_require, m)?)?;
    m.add_function(wrap_pyfunction!(gpu::gpu_compile_kernels, m)?)?;
    m.add_function(wrap_pyfunction!(distributed::keyed_sample_mask, m)?)?;
    m.add_function(wrap_pyfunction!(distributed::label_sums, m)?)?;
    m.add_function(wrap_pyfunction!(distributed::check_distributed_params, m)?)?;
    m.add_function(wrap_pyfunction!(artifact::artifact_header, m)?)?;
    m.add_function(wrap_pyfunction!(artifact::default_num_threads, m)?)?;
    m.add_class::<transform::PyCategoryTable>()?;
    m.add_class::<linear::PyLinearModel>()?;
    m.add_class::<pipeline::PyFeaturePipeline>()?;
    m.add_class::<pipeline::PyDeployable>()?;
    #[cfg(feature = "serve")]
    m.add_class::<serve::PyServer>()?;
    #[cfg(feature = "serve")]
    m.add_function(wrap_pyfunction!(serve::assign_variant, m)?)?;
    m.add_function(wrap_pyfunction!(linear::ridge_fit, m)?)?;
    m.add_function(wrap_pyfunction!(linear::logistic_fit, m)?)?;
    m.add_function(wrap_pyfunction!(linear::enet_fit, m)?)?;
    m.add_function(wrap_pyfunction!(linear::sgd_fit, m)?)?;
    m.add_function(wrap_pyfunction!(transform::moments_update, m)?)?;
    m.add_function(wrap_pyfunction!(transform::column_min_max, m)?)?;
    m.add_function(wrap_pyfunction!(transform::release_memory, m)?)?;
    m.add_function(wrap_pyfunction!(transform::column_percentiles, m)?)?;
    m.add_function(wrap_pyfunction!(transform::column_most_frequent, m)?)?;
    m.add_function(wrap_pyfunction!(transform::column_missing_counts, m)?)?;
    m.add_function(wrap_pyfunction!(transform::affine_transform, m)?)?;
    m.add_function(wrap_pyfunction!(transform::impute_transform, m)?)?;
    m.add_function(wrap_pyfunction!(transform::quantile_transform, m)?)?;
    m.add_function(wrap_pyfunction!(transform::digitize, m)?)?;
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
    m.add_function(wrap_pyfunction!(performance::performance_realised, m)?)?;
    m.add_function(wrap_pyfunction!(performance::performance_calibrate, m)?)?;
    m.add_function(wrap_pyfunction!(performance::performance_estimate_binary, m)?)?;
    m.add_function(wrap_pyfunction!(performance::performance_estimate_regression, m)?)?;
    m.add_class::<profile::PyReferenceProfile>()?;
    m.add_class::<profile::PyDriftReport>()?;
    m.add_class::<profile::PyDriftMonitor>()?;
    m.add_function(wrap_pyfunction!(profile::domain_classifier, m)?)?;
    m.add_function(wrap_pyfunction!(validate::infer_schema, m)?)?;
    m.add_function(wrap_pyfunction!(validate::validate_schema, m)?)?;
    m.add_function(wrap_pyfunction!(validate::check_training, m)?)?;
    m.add_function(wrap_pyfunction!(experiment::experiment_moments, m)?)?;
    m.add_function(wrap_pyfunction!(experiment::experiment_moments_from_sums, m)?)?;
    m.add_function(wrap_pyfunction!(experiment::experiment_compare, m)?)?;
    m.add_function(wrap_pyfunction!(experiment::experiment_srm, m)?)?;
    m.add_function(wrap_pyfunction!(experiment::experiment_power, m)?)?;
    m.add_function(wrap_pyfunction!(experiment::experiment_analyze, m)?)?;
    m.add_function(wrap_pyfunction!(experiment::experiment_html, m)?)?;
    m.add_function(wrap_pyfunction!(experiment::read_event_log, m)?)?;
    Ok(())
}
