//! `ferrox._ferrox.ShardTrainer` and `ferrox._ferrox.TrainLeader`: the two sides of distributed GBDT
//! training (`ferrox.ray.train`). Messages between them are bytes (postcard, or the histogram varint
//! format), so the Python layer only moves them.

use std::sync::Arc;

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::dataset::PyDataset;
use super::errors::{detach, to_py};
use super::gbdt::{parse_params, PyBoosterModel};
use crate::data::sample::in_keyed_sample;
use crate::error::Error;
use crate::gbdt::distributed::{Leader, RoundStart, ShardTrainer, SplitReply, Step};
use crate::gbdt::exact::ExactSum;
use crate::gbdt::learner::SplitOrder;
use crate::gbdt::tree::Tree;

fn decode<T: serde::de::DeserializeOwned>(py: Python<'_>, what: &str, b: &[u8]) -> PyResult<T> {
    postcard::from_bytes(b).map_err(|e| to_py(py, Error::data(format!("a {what} message is corrupt: {e}"))))
}

fn encode<T: serde::Serialize>(py: Python<'_>, v: &T) -> PyResult<Vec<u8>> {
    postcard::to_allocvec(v).map_err(|e| to_py(py, Error::Internal(e.to_string())))
}

/// A step as Python sees it: ("split", order bytes, build) | ("child", left) | ("done",).
fn step_to_py(py: Python<'_>, s: Step) -> PyResult<Py<PyAny>> {
    Ok(match s {
        Step::Split { order, build } => ("split", PyBytes::new(py, &encode(py, &order)?), build).into_pyobject(py)?.into_any().unbind(),
        Step::Child(left) => ("child", left).into_pyobject(py)?.into_any().unbind(),
        Step::Done => ("done",).into_pyobject(py)?.into_any().unbind(),
    })
}

/// Which rows of a shard (global identities `ids`) are in the binning sample of about `k` of
/// `n_total` rows drawn with `seed`: the rows `ferrox.Dataset` samples on the whole data.
#[pyfunction]
pub fn keyed_sample_mask<'py>(py: Python<'py>, ids: PyReadonlyArray1<'py, u64>, n_total: usize, k: usize, seed: u64) -> PyResult<Bound<'py, PyArray1<bool>>> {
    let ids = ids.as_slice()?;
    let mask: Vec<bool> = py.detach(|| ids.iter().map(|&i| in_keyed_sample(i, n_total, k, seed)).collect());
    Ok(PyArray1::from_vec(py, mask))
}

/// Raises ParameterError for training parameters distributed training cannot reproduce exactly.
#[pyfunction]
pub fn check_distributed_params(py: Python<'_>, params: &Bound<'_, PyAny>) -> PyResult<()> {
    let p = parse_params(py, params)?;
    crate::gbdt::distributed::check_supported(&p).map_err(|e| to_py(py, e))
}

/// Exact sums of a dataset's weights and weight x label, as a message for `TrainLeader`.
#[pyfunction]
pub fn label_sums<'py>(py: Python<'py>, data: PyRef<'_, PyDataset>) -> PyResult<Bound<'py, PyBytes>> {
    let d = data.inner.clone();
    let sums = detach(py, move || ShardTrainer::label_sums(&d))?;
    Ok(PyBytes::new(py, &encode(py, &sums)?))
}

/// One shard of the training rows (see `ferrox.ray`).
#[pyclass(name = "ShardTrainer", module = "ferrox._ferrox")]
pub struct PyShardTrainer {
    inner: ShardTrainer,
}

#[pymethods]
impl PyShardTrainer {
    #[new]
    #[pyo3(signature = (params, data, row_ids, base_score, num_threads=1))]
    fn new(
        py: Python<'_>,
        params: &Bound<'_, PyAny>,
        data: PyRef<'_, PyDataset>,
        row_ids: PyReadonlyArray1<'_, u64>,
        base_score: Vec<f64>,
        num_threads: i64,
    ) -> PyResult<Self> {
        let p = parse_params(py, params)?;
        let d = data.inner.clone();
        let ids = row_ids.as_slice()?.to_vec();
        let inner = detach(py, move || ShardTrainer::new(p, d, ids, base_score, num_threads))?;
        Ok(PyShardTrainer { inner })
    }

    /// Rows of the shard.
    fn num_data(&self) -> usize {
        self.inner.num_data()
    }

    /// Trees added to the shard's scores.
    fn trees_applied(&self) -> usize {
        self.inner.trees_applied()
    }

    /// Starts round `it`; returns (the round-start message, the shard's rows in the bag).
    fn begin_round<'py>(&mut self, py: Python<'py>, it: usize) -> PyResult<(Bound<'py, PyBytes>, u64)> {
        let inner = &mut self.inner;
        let start = detach(py, move || Ok(inner.begin_round(it)))?;
        Ok((PyBytes::new(py, &encode(py, &start)?), start.bag_rows))
    }

    /// Root histogram of the tree of class `c`.
    fn root<'py>(&mut self, py: Python<'py>, c: usize, whole: bool, max_g: f64, max_h: f64) -> PyResult<Bound<'py, PyBytes>> {
        let inner = &mut self.inner;
        let h = detach(py, move || inner.root(c, whole, (max_g, max_h)))?;
        Ok(PyBytes::new(py, &h))
    }

    /// Applies a split order; returns (left rows, right rows, child histogram or None).
    #[pyo3(signature = (order, build=None))]
    fn split<'py>(&mut self, py: Python<'py>, order: &[u8], build: Option<bool>) -> PyResult<(u32, u32, Option<Bound<'py, PyBytes>>)> {
        let order: SplitOrder = decode(py, "split order", order)?;
        let inner = &mut self.inner;
        let r = detach(py, move || inner.split(&order, build))?;
        let h = r.hist.map(|h| PyBytes::new(py, &h));
        Ok((r.left, r.right, h))
    }

    /// Histogram of the left (True) or right child of the last split.
    fn child_hist<'py>(&mut self, py: Python<'py>, left: bool) -> PyResult<Bound<'py, PyBytes>> {
        let inner = &mut self.inner;
        let h = detach(py, move || inner.child_hist(left))?;
        Ok(PyBytes::new(py, &h))
    }

    /// Adds finished tree `index` (a tree message) to the scores; repeated messages are ignored.
    fn end_tree(&mut self, py: Python<'_>, index: usize, tree: &[u8]) -> PyResult<()> {
        let tree: Tree = decode(py, "tree", tree)?;
        let inner = &mut self.inner;
        detach(py, move || inner.end_tree(index, &tree))
    }

    /// Catches a fresh shard up: trees of completed rounds, the current round, its finished trees.
    #[pyo3(signature = (done, round=None, partial=None))]
    fn restore(&mut self, py: Python<'_>, done: &[u8], round: Option<usize>, partial: Option<&[u8]>) -> PyResult<()> {
        let done: Vec<Tree> = decode(py, "trees", done)?;
        let partial: Vec<Tree> = match partial {
            Some(p) => decode(py, "trees", p)?,
            None => Vec::new(),
        };
        let inner = &mut self.inner;
        detach(py, move || inner.restore(&done, round, &partial))
    }
}

/// The coordinating side of distributed training.
#[pyclass(name = "TrainLeader", module = "ferrox._ferrox")]
pub struct PyTrainLeader {
    inner: Leader,
}

#[pymethods]
impl PyTrainLeader {
    #[new]
    fn new(py: Python<'_>, params: &Bound<'_, PyAny>, reference: PyRef<'_, PyDataset>, valids: Vec<PyRef<'_, PyDataset>>, label_sums: Vec<Vec<u8>>) -> PyResult<Self> {
        let p = parse_params(py, params)?;
        let (mut sw, mut swy) = (ExactSum::new(), ExactSum::new());
        for b in &label_sums {
            let (a, c): (ExactSum, ExactSum) = decode(py, "label sums", b)?;
            sw.merge(&a);
            swy.merge(&c);
        }
        let r = reference.inner.clone();
        let valids: Vec<Arc<crate::data::Dataset>> = valids.iter().map(|v| v.inner.clone()).collect();
        let inner = detach(py, move || Leader::new(p, &r, valids, &sw, &swy))?;
        Ok(PyTrainLeader { inner })
    }

    /// Starting raw score per class.
    fn base_score(&self) -> Vec<f64> {
        self.inner.base_score()
    }

    /// Scores per row.
    fn num_scores(&self) -> usize {
        self.inner.num_scores()
    }

    /// Rounds completed.
    fn current_iteration(&self) -> usize {
        self.inner.current_iteration()
    }

    /// Starts a round from the shards' round-start messages; returns True when trees use every row.
    fn begin_round(&mut self, py: Python<'_>, starts: Vec<Vec<u8>>) -> PyResult<bool> {
        let starts: Vec<RoundStart> = starts.iter().map(|b| decode(py, "round start", b)).collect::<PyResult<_>>()?;
        self.inner.begin_round(&starts).map_err(|e| to_py(py, e))
    }

    /// (largest |gradient|, largest hessian) of class `c` over all shards.
    fn max_for(&self, c: usize) -> (f64, f64) {
        self.inner.max_for(c)
    }

    /// Starts the tree of class `c` from the shards' root histograms; returns the first step.
    fn root(&mut self, py: Python<'_>, c: usize, hists: Vec<Vec<u8>>, rows: u64) -> PyResult<Py<PyAny>> {
        let inner = &mut self.inner;
        let s = detach(py, move || inner.root(c, &hists, rows))?;
        step_to_py(py, s)
    }

    /// The shards' replies (left, right, histogram or None) to the pending split; returns the next step.
    fn feed(&mut self, py: Python<'_>, replies: Vec<(u32, u32, Option<Vec<u8>>)>) -> PyResult<Py<PyAny>> {
        let rs: Vec<SplitReply> = replies.into_iter().map(|(left, right, hist)| SplitReply { left, right, hist }).collect();
        let inner = &mut self.inner;
        let s = detach(py, move || inner.feed(&rs))?;
        step_to_py(py, s)
    }

    /// The shards' histograms of the child a "child" step asked for; returns the next step.
    fn feed_child(&mut self, py: Python<'_>, left: bool, hists: Vec<Vec<u8>>) -> PyResult<Py<PyAny>> {
        let inner = &mut self.inner;
        let s = detach(py, move || inner.feed_child(left, &hists))?;
        step_to_py(py, s)
    }

    /// Completes the current tree; returns its message for the shards.
    fn finish_tree<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let t = self.inner.finish_tree().map_err(|e| to_py(py, e))?;
        Ok(PyBytes::new(py, &encode(py, &t)?))
    }

    /// Ends the round; True when no tree split (training is finished).
    fn end_round(&mut self, py: Python<'_>) -> PyResult<bool> {
        self.inner.end_round().map_err(|e| to_py(py, e))
    }

    /// The trees of completed rounds (a message for `ShardTrainer.restore`).
    fn done_trees<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &encode(py, &self.inner.model().trees)?))
    }

    /// The trees finished in the current round.
    fn round_trees<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &encode(py, &self.inner.round_trees().to_vec())?))
    }

    /// Metrics on validation set `i` (0-based): [(name, value, higher_is_better)].
    fn eval(&self, py: Python<'_>, i: usize) -> PyResult<Vec<(String, f64, bool)>> {
        self.inner.eval(i).map_err(|e| to_py(py, e))
    }

    /// Metric names in evaluation order.
    fn metric_names(&self) -> Vec<String> {
        self.inner.metric_names()
    }

    /// A snapshot of the model so far.
    fn model(&self) -> PyBoosterModel {
        PyBoosterModel::new(self.inner.model().clone())
    }
}
