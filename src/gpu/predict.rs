//! Batch inference on a device (kernels/predict.cu): the compiled forest's flat trees in device
//! arrays, one thread per row walking the trees in order, so the raw scores equal the CPU path's.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::{cfg, check, Gpu};
use crate::data::frame::Frame;
use crate::error::{Error, Result};
use crate::predict::forest::{FlatTree, Forest};

/// Rows sent to the device at a time (a few hundred MB of float64 features at most).
const CHUNK_ROWS: usize = 1 << 20;
const THREADS: u32 = 128;

/// The forest's node arrays, host side (what [`GpuForest`] uploads): one entry per node of every tree,
/// trees one after another.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FlatNodes {
    pub node_start: Vec<u32>,
    pub leaf_start: Vec<u32>,
    pub feature: Vec<u32>,
    pub threshold: Vec<f64>,
    pub left: Vec<i32>,
    pub right: Vec<i32>,
    /// bit 0 default_left, bits 1-2 the missing rule, bit 3 cat_inverted.
    pub flags: Vec<u8>,
    pub cat_len: Vec<u32>,
    /// Global word offsets into `cat_words`.
    pub cat_start: Vec<u32>,
    pub cat_words: Vec<u32>,
    pub leaf_value: Vec<f64>,
}

impl FlatNodes {
    /// Lays out `trees` (node_start and leaf_start have one entry more than trees).
    pub fn new(trees: &[FlatTree]) -> Result<Self> {
        let mut f = FlatNodes::default();
        for t in trees {
            let words0 = f.cat_words.len() as u32;
            f.node_start.push(f.feature.len() as u32);
            f.leaf_start.push(f.leaf_value.len() as u32);
            for n in &t.nodes {
                f.feature.push(n.feature);
                f.threshold.push(n.threshold);
                f.left.push(n.left);
                f.right.push(n.right);
                f.flags.push(n.default_left as u8 | (n.missing.min(3) << 1) | ((n.cat_inverted as u8) << 3));
                f.cat_len.push(n.cat_len);
                f.cat_start.push(words0 + n.cat_start);
            }
            f.cat_words.extend_from_slice(&t.cat_words);
            f.leaf_value.extend_from_slice(&t.leaf_values);
        }
        f.node_start.push(f.feature.len() as u32);
        f.leaf_start.push(f.leaf_value.len() as u32);
        if f.feature.len() > i32::MAX as usize || f.cat_words.len() > u32::MAX as usize {
            return Err(Error::data("the forest is too large for the GPU predictor"));
        }
        Ok(f)
    }

    /// What kernels/predict.cu computes for one row, on the CPU: its raw scores from `start`.
    pub fn walk_row(&self, row: &[f64], n_trees: usize, k: usize, f32_sum: bool, start: &[f64]) -> Vec<f64> {
        let mut o = start.to_vec();
        for t in 0..n_trees {
            let base = self.node_start[t] as usize;
            let mut at: i32 = if self.node_start[t + 1] as usize > base { 0 } else { -1 };
            while at >= 0 {
                let j = base + at as usize;
                at = if self.goes_left(j, row[self.feature[j] as usize]) { self.left[j] } else { self.right[j] };
            }
            let v = self.leaf_value[self.leaf_start[t] as usize + !at as usize];
            let c = t % k;
            o[c] = if f32_sum { (o[c] as f32 + v as f32) as f64 } else { o[c] + v };
        }
        o
    }

    /// kernels/predict.cu `node_goes_left`.
    fn goes_left(&self, j: usize, x: f64) -> bool {
        let flags = self.flags[j];
        let default_left = flags & 1 == 1;
        if self.cat_len[j] > 0 {
            let nan = x.is_nan();
            let mut in_set = false;
            if !nan && x >= 0.0 {
                let c = x as u32;
                let w = c >> 5;
                in_set = w < self.cat_len[j] && (self.cat_words[(self.cat_start[j] + w) as usize] >> (c & 31)) & 1 == 1;
            }
            if flags & 8 != 0 {
                return if nan { default_left } else { !in_set };
            }
            return in_set;
        }
        let thr = self.threshold[j];
        match (flags >> 1) & 3 {
            0 => {
                if x.is_nan() {
                    default_left
                } else {
                    x <= thr
                }
            }
            1 => {
                let v = if x.is_nan() { 0.0 } else { x };
                if v.abs() <= crate::predict::forest::ZERO_THRESHOLD {
                    default_left
                } else {
                    v <= thr
                }
            }
            _ => (if x.is_nan() { 0.0 } else { x }) <= thr,
        }
    }
}

/// A forest on a device.
pub struct GpuForest {
    gpu: Arc<Gpu>,
    n_trees: usize,
    node_start: CudaSlice<u32>,
    leaf_start: CudaSlice<u32>,
    feature: CudaSlice<u32>,
    threshold: CudaSlice<f64>,
    left: CudaSlice<i32>,
    right: CudaSlice<i32>,
    flags: CudaSlice<u8>,
    cat_len: CudaSlice<u32>,
    cat_start: CudaSlice<u32>,
    cat_words: CudaSlice<u32>,
    leaf_value: CudaSlice<f64>,
}

/// One forest's uploads, per device ordinal (made at the first prediction on each).
#[derive(Default)]
pub struct GpuForests(std::sync::Mutex<std::collections::HashMap<usize, Arc<GpuForest>>>);

impl GpuForests {
    /// `forest` on device `ordinal`, uploaded at the first call.
    pub fn get(&self, forest: &Forest, ordinal: usize) -> Result<Arc<GpuForest>> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = map.get(&ordinal) {
            return Ok(g.clone());
        }
        let g = Arc::new(GpuForest::new(super::gpu(ordinal)?, forest)?);
        map.insert(ordinal, g.clone());
        Ok(g)
    }
}

/// A host slice on the device (empty slices become one zero, as the driver cannot allocate 0 bytes).
fn up<T: cudarc::driver::DeviceRepr + Default + Clone>(gpu: &Gpu, v: &[T]) -> Result<CudaSlice<T>> {
    let one = [T::default()];
    let v = if v.is_empty() { &one[..] } else { v };
    check("uploading the forest to the GPU", gpu.stream.clone_htod(v))
}

impl GpuForest {
    /// Uploads `forest`'s trees to `gpu`.
    pub fn new(gpu: Arc<Gpu>, forest: &Forest) -> Result<Self> {
        let f = FlatNodes::new(&forest.trees)?;
        Ok(GpuForest {
            n_trees: forest.trees.len(),
            node_start: up(&gpu, &f.node_start)?,
            leaf_start: up(&gpu, &f.leaf_start)?,
            feature: up(&gpu, &f.feature)?,
            threshold: up(&gpu, &f.threshold)?,
            left: up(&gpu, &f.left)?,
            right: up(&gpu, &f.right)?,
            flags: up(&gpu, &f.flags)?,
            cat_len: up(&gpu, &f.cat_len)?,
            cat_start: up(&gpu, &f.cat_start)?,
            cat_words: up(&gpu, &f.cat_words)?,
            leaf_value: up(&gpu, &f.leaf_value)?,
            gpu,
        })
    }

    /// Predictions of `frame` from the first `n_trees` trees, as [`Forest::predict`] gives them.
    pub fn predict(&self, forest: &Forest, frame: &Frame<'_>, n_trees: usize, raw_score: bool, num_threads: i64) -> Result<Vec<f64>> {
        let x = forest.feature_rows(frame, num_threads)?;
        let nf = forest.num_features();
        let k = forest.num_scores;
        let rows = frame.n_rows;
        let n_trees = n_trees.min(self.n_trees);
        let start = forest.start_row();
        let mut out: Vec<f64> = (0..rows).flat_map(|_| start.iter().copied()).collect();
        let f = self.gpu.function("predict", "predict_forest")?;
        let s = self.gpu.stream.clone();
        for r0 in (0..rows).step_by(CHUNK_ROWS) {
            let r1 = (r0 + CHUNK_ROWS).min(rows);
            let xd = check("uploading rows to the GPU", s.clone_htod(&x[r0 * nf..r1 * nf]))?;
            let mut od = check("uploading start scores", s.clone_htod(&out[r0 * k..r1 * k]))?;
            let (n, nf32, nt, k32, f32_sum) = ((r1 - r0) as u32, nf as u32, n_trees as u32, k as u32, forest.accumulate_f32 as i32);
            let mut b = s.launch_builder(&f);
            b.arg(&xd).arg(&n).arg(&nf32).arg(&nt).arg(&k32).arg(&f32_sum);
            b.arg(&self.node_start).arg(&self.leaf_start).arg(&self.feature).arg(&self.threshold).arg(&self.left).arg(&self.right);
            b.arg(&self.flags).arg(&self.cat_len).arg(&self.cat_start).arg(&self.cat_words).arg(&self.leaf_value).arg(&mut od);
            // SAFETY: matches kernels/predict.cu predict_forest; x holds n x nf values, out n x k, and
            // the node arrays were laid out by FlatNodes (children within their tree).
            check("launching the forest kernel", unsafe { b.launch(cfg((n.div_ceil(THREADS), 1), THREADS)) })?;
            check("reading predictions back", s.memcpy_dtoh(&od, &mut out[r0 * k..r1 * k]))?;
        }
        self.gpu.sync()?;
        forest.finish(&mut out, n_trees, raw_score);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::frame::{DenseMatrix, FeatureRef};
    use crate::data::sample::SplitMix64;
    use crate::data::{BinConfig, Dataset};
    use crate::gbdt::params::{GbdtParams, ParamValue};
    use crate::gbdt::Trainer;
    use ndarray::Array2;

    /// The kernel's walk (emulated) gives the CPU predictor's raw scores exactly, on numeric,
    /// missing-value and categorical splits, for one score and for several.
    #[test]
    fn the_kernels_tree_walk_equals_the_cpu_predictor() {
        let n = 3_000;
        let mut rng = SplitMix64::new(11);
        let x = Array2::from_shape_fn((n, 5), |(_, j)| match j {
            1 if rng.next_f64() < 0.15 => f64::NAN,
            3 => (rng.next_u64() % 9) as f64,
            4 if rng.next_f64() < 0.3 => 0.0,
            _ => rng.next_f64() * 2.0 - 1.0,
        });
        for (objective, classes) in [("binary", 2usize), ("multiclass", 3)] {
            let y: Vec<f64> = (0..n).map(|i| ((x[[i, 0]] + if x[[i, 3]] as u64 % 2 == 0 { 0.7 } else { 0.0 } + 1.0).max(0.0) as usize % classes) as f64).collect();
            let f = Frame::from_dense(DenseMatrix::F64(x.view()), None, &[FeatureRef::Index(3)]).unwrap();
            let d = Arc::new(Dataset::construct(&f, Some(y), None, &BinConfig::default(), None).unwrap());
            let mut pairs = vec![("objective".to_string(), ParamValue::Str(objective.into())), ("num_leaves".to_string(), ParamValue::Int(20))];
            if classes > 2 {
                pairs.push(("num_class".into(), ParamValue::Int(classes as i64)));
            }
            let mut t = Trainer::new(GbdtParams::from_pairs(&pairs).unwrap(), d, vec![], None).unwrap();
            for _ in 0..15 {
                t.update(None).unwrap();
            }
            let forest = Forest::from_model(t.model());
            let want = forest.predict_raw(&f, usize::MAX, 1).unwrap();
            let nodes = FlatNodes::new(&forest.trees).unwrap();
            let rows = forest.feature_rows(&f, 1).unwrap();
            let (k, nf) = (forest.num_scores, forest.num_features());
            for r in 0..n {
                let got = nodes.walk_row(&rows[r * nf..(r + 1) * nf], forest.trees.len(), k, forest.accumulate_f32, &forest.start_row());
                assert_eq!(&got[..], &want[r * k..(r + 1) * k], "{objective}, row {r}");
            }
        }
    }
}
