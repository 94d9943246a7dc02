//! Tree growth with the histograms and partitions on a device.
//!
//! The host keeps what decides the tree and is cheap: gradients (the objective), split finding and
//! leaf outputs ([`Grower`], shared with the CPU learner), leaf renewal and score updates. The device
//! does what reads every row: quantisation, histograms and partitions. Histograms are exact integer
//! sums and partitions are stable, so the grower sees the same histograms and the leaves hold the same
//! rows in the same order as on the CPU: the trees are the same.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::{cfg, check, Gpu};
use crate::data::{BinMatrix, Dataset};
use crate::error::{Error, Result};
use crate::gbdt::boosting::{fill_fixed, hessian_seed, max_abs, quant_scales};
use crate::gbdt::learner::{Grower, HBin, HistLayout, SplitOrder, SplitRules};
use crate::gbdt::tree::Tree;

/// Rows one histogram block sums (its 32-bit quantised counters stay exact: 2^16 x 255 < 2^31).
pub const HIST_ROWS_PER_BLOCK: u32 = 1 << 16;
/// Threads of a histogram block.
pub const HIST_THREADS: u32 = 256;
/// Rows of one partition tile (kernels/partition.cu: PART_THREADS x PART_ITEMS).
pub const PART_TILE: usize = 256 * 16;
/// Threads of a partition block.
pub const PART_THREADS: u32 = 256;

/// This round's gradients, as a device learner holds them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GradMode {
    /// Fixed-point (exact) histograms, as the CPU's default.
    Fixed,
    /// Quantized: `bins` levels, stochastic rounding drawn from `seed`.
    Quantized { bins: usize, seed: u64 },
}

/// What a tree needs from whoever holds the rows and builds the histograms: the GPU, or its CPU
/// emulation.
pub trait DeviceLearner: Send + Sync {
    /// Takes one tree's gradients (one class), fixed-point or quantized as `mode` says; returns the
    /// scales (true value = integer x scale) for the grower.
    fn set_gradients(&mut self, g: &[f32], h: &[f32], mode: GradMode) -> Result<(f64, f64)>;
    /// Starts a tree on rows `bag` (ascending; every row when None); returns the root's histogram.
    fn begin_tree(&mut self, bag: Option<&[u32]>, active: &[bool]) -> Result<Vec<HBin>>;
    /// Partitions a leaf's rows by `order` (stably); returns the two children's rows.
    fn split_leaf(&mut self, order: &SplitOrder) -> Result<(u32, u32)>;
    /// The histogram of leaf `leaf`.
    fn leaf_hist(&mut self, leaf: usize, active: &[bool]) -> Result<Vec<HBin>>;
    /// Ends the tree: copies the row indices to the host (see `indices`).
    fn finish_tree(&mut self) -> Result<()>;
    /// After `finish_tree`: the rows of the tree's leaves, laid out as `ranges()` says.
    fn indices(&self) -> &[u32];
    /// Each leaf's range in the indices.
    fn ranges(&self) -> &[(usize, usize)];
}

/// Grows one tree on `learner` (whose gradients are set): the same steps as the CPU learner's
/// `grow`. Returns the tree (outputs not yet shrunk) and each leaf's row range.
pub fn grow(
    learner: &mut dyn DeviceLearner,
    data: &Dataset,
    rules: SplitRules,
    scales: (f64, f64),
    bag: Option<&[u32]>,
    active: &[bool],
) -> Result<(Tree, Vec<(usize, usize)>)> {
    let root = learner.begin_tree(bag, active)?;
    let n_rows = learner.ranges()[0].1 as u32;
    let mut grower = Grower::new(rules, &data.mappers, active, scales, n_rows, root);
    while let Some(order) = grower.next_split(&data.mappers) {
        let (left_n, right_n) = learner.split_leaf(&order)?;
        let built = match grower.wants_hist(left_n, right_n) {
            Some(left) => {
                let child = if left { order.leaf } else { learner.ranges().len() - 1 };
                Some((left, learner.leaf_hist(child, active)?))
            }
            None => None,
        };
        grower.finish_split(&data.mappers, left_n, right_n, built)?;
    }
    learner.finish_tree()?;
    Ok((grower.into_tree(), learner.ranges().to_vec()))
}

/// Which side each bin of the split's feature goes to (1 = left).
pub fn side_table(data: &Dataset, order: &SplitOrder) -> Vec<u8> {
    let m = &data.mappers[order.feature];
    let missing = m.missing_bin();
    (0..m.num_bins() as u32).map(|b| order.goes_left(b, missing) as u8).collect()
}

/// Bins on the device, as the dataset stores them (feature-major).
enum DevBins {
    U8(CudaSlice<u8>),
    U16(CudaSlice<u16>),
}

/// The GPU learner: the dataset's bins stay on the device for the whole training.
pub struct GpuLearner {
    gpu: Arc<Gpu>,
    data: Arc<Dataset>,
    n: usize,
    bins: DevBins,
    nbins: CudaSlice<u32>,
    offsets: CudaSlice<u32>,
    g: CudaSlice<f32>,
    h: CudaSlice<f32>,
    maxes: CudaSlice<u32>,
    qgh: CudaSlice<i8>,
    fgh: CudaSlice<i32>,
    host_fixed: Vec<[i32; 2]>,
    mode: GradMode,
    indices: CudaSlice<u32>,
    scratch: CudaSlice<u32>,
    tile_left: CudaSlice<u32>,
    hist: CudaSlice<i64>,
    feats: CudaSlice<u32>,
    side: CudaSlice<u8>,
    host_hist: Vec<i64>,
    host_indices: Vec<u32>,
    ranges: Vec<(usize, usize)>,
}

impl GpuLearner {
    /// Uploads `data`'s bins to `gpu` and sets up the buffers of a training run.
    pub fn new(gpu: Arc<Gpu>, data: Arc<Dataset>) -> Result<Self> {
        let n = data.num_data();
        if n > u32::MAX as usize / 2 {
            return Err(Error::data(format!("{n} rows are more than the GPU learner takes (2^31)")));
        }
        let s = gpu.stream.clone();
        let up = "uploading the training data to the GPU";
        let bins = match &data.bins {
            BinMatrix::U8(d) => DevBins::U8(check(up, s.clone_htod(&d[..]))?),
            BinMatrix::U16(d) => DevBins::U16(check(up, s.clone_htod(&d[..]))?),
        };
        let layout = HistLayout::new(&data);
        let nb: Vec<u32> = data.mappers.iter().map(|m| m.num_bins() as u32).collect();
        let off: Vec<u32> = layout.offsets().iter().map(|&o| o as u32).collect();
        let max_bins = nb.iter().copied().max().unwrap_or(1) as usize;
        let alloc = "allocating GPU buffers";
        let total = layout.total();
        Ok(GpuLearner {
            nbins: check(up, s.clone_htod(&nb))?,
            offsets: check(up, s.clone_htod(&off))?,
            g: check(alloc, s.alloc_zeros(n.max(1)))?,
            h: check(alloc, s.alloc_zeros(n.max(1)))?,
            maxes: check(alloc, s.alloc_zeros(2))?,
            qgh: check(alloc, s.alloc_zeros(2 * n.max(1)))?,
            fgh: check(alloc, s.alloc_zeros(2 * n.max(1)))?,
            host_fixed: Vec::new(),
            mode: GradMode::Fixed,
            indices: check(alloc, s.alloc_zeros(n.max(1)))?,
            scratch: check(alloc, s.alloc_zeros(n.max(1)))?,
            tile_left: check(alloc, s.alloc_zeros(n.div_ceil(PART_TILE) + 2))?,
            hist: check(alloc, s.alloc_zeros(2 * total.max(1)))?,
            feats: check(alloc, s.alloc_zeros(data.num_features().max(1)))?,
            side: check(alloc, s.alloc_zeros(max_bins.max(1)))?,
            host_hist: vec![0; 2 * total],
            host_indices: Vec::new(),
            ranges: Vec::new(),
            bins,
            n,
            data,
            gpu,
        })
    }

    fn hist_of(&mut self, begin: usize, end: usize, active: &[bool]) -> Result<Vec<HBin>> {
        let feats: Vec<u32> = (0..active.len()).filter(|&f| active[f]).map(|f| f as u32).collect();
        let s = self.gpu.stream.clone();
        check("clearing a histogram", s.memset_zeros(&mut self.hist))?;
        let nrows = (end - begin) as u32;
        if !feats.is_empty() && nrows > 0 {
            check("uploading the feature list", s.memcpy_htod(&feats, &mut self.feats))?;
            let quantized = matches!(self.mode, GradMode::Quantized { .. });
            let name = match (&self.bins, quantized) {
                (DevBins::U8(_), true) => "hist_quantized_u8",
                (DevBins::U16(_), true) => "hist_quantized_u16",
                (DevBins::U8(_), false) => "hist_fixed_u8",
                (DevBins::U16(_), false) => "hist_fixed_u16",
            };
            let f = self.gpu.function("histogram", name)?;
            let whole = end - begin == self.n;
            let rows = self.indices.slice(begin..end);
            let null: u64 = 0;
            let n = self.n as u32;
            let rpb = HIST_ROWS_PER_BLOCK;
            let blocks = (nrows.div_ceil(rpb), feats.len() as u32);
            let mut b = s.launch_builder(&f);
            match &self.bins {
                DevBins::U8(d) => b.arg(d),
                DevBins::U16(d) => b.arg(d),
            };
            b.arg(&n);
            if whole {
                b.arg(&null);
            } else {
                b.arg(&rows);
            }
            b.arg(&nrows);
            if quantized {
                b.arg(&self.qgh);
            } else {
                b.arg(&self.fgh);
            }
            b.arg(&self.feats).arg(&self.offsets).arg(&self.nbins).arg(&rpb).arg(&mut self.hist);
            // SAFETY: the arguments match the kernel's signature (kernels/histogram.cu) and every buffer
            // is as long as the kernel reads: rows within the leaf's range, bins of n rows per feature.
            check("launching the histogram kernel", unsafe { b.launch(cfg(blocks, HIST_THREADS)) })?;
        }
        check("reading a histogram back", s.memcpy_dtoh(&self.hist, &mut self.host_hist))?;
        self.gpu.sync()?;
        Ok(self.host_hist.chunks_exact(2).map(|p| HBin { g: p[0], h: p[1] }).collect())
    }
}

impl DeviceLearner for GpuLearner {
    fn set_gradients(&mut self, g: &[f32], h: &[f32], mode: GradMode) -> Result<(f64, f64)> {
        self.mode = mode;
        let s = self.gpu.stream.clone();
        match mode {
            GradMode::Fixed => {
                let scales = fill_fixed(g, h, max_abs(g, h), &mut self.host_fixed);
                let flat: &[i32] = self.host_fixed.as_flattened();
                check("uploading gradients", s.memcpy_htod(flat, &mut self.fgh))?;
                Ok(scales)
            }
            GradMode::Quantized { bins, seed } => {
                check("uploading gradients", s.memcpy_htod(g, &mut self.g))?;
                check("uploading hessians", s.memcpy_htod(h, &mut self.h))?;
                check("clearing maxima", s.memset_zeros(&mut self.maxes))?;
                let n = self.n as u32;
                let blocks = n.div_ceil(256).min(4096);
                let f = self.gpu.function("quantize", "absmax_gh")?;
                let mut b = s.launch_builder(&f);
                b.arg(&self.g).arg(&self.h).arg(&n).arg(&mut self.maxes);
                // SAFETY: matches kernels/quantize.cu absmax_gh; g and h hold n values, maxes 2.
                check("launching absmax_gh", unsafe { b.launch(cfg((blocks, 1), 256)) })?;
                let mut m = [0u32; 2];
                check("reading maxima", s.memcpy_dtoh(&self.maxes, &mut m[..]))?;
                self.gpu.sync()?;
                let (max_g, max_h) = (f32::from_bits(m[0]) as f64, f32::from_bits(m[1]) as f64);
                let (gs, hs) = quant_scales(max_g, max_h, bins);
                let (half, fb) = ((bins / 2) as f64, bins as f64);
                let (seed_g, seed_h) = (seed, hessian_seed(seed));
                let f = self.gpu.function("quantize", "quantize_gh")?;
                let mut b = s.launch_builder(&f);
                b.arg(&self.g).arg(&self.h).arg(&n).arg(&gs).arg(&hs).arg(&half).arg(&fb).arg(&seed_g).arg(&seed_h).arg(&mut self.qgh);
                // SAFETY: matches kernels/quantize.cu quantize_gh; qgh holds 2n values.
                check("launching quantize_gh", unsafe { b.launch(cfg((blocks, 1), 256)) })?;
                Ok((gs, hs))
            }
        }
    }

    fn begin_tree(&mut self, bag: Option<&[u32]>, active: &[bool]) -> Result<Vec<HBin>> {
        let s = self.gpu.stream.clone();
        let rows: Vec<u32> = match bag {
            Some(b) => {
                if !b.windows(2).all(|w| w[0] < w[1]) {
                    return Err(Error::Internal("the rows of a bag must ascend strictly".into()));
                }
                b.to_vec()
            }
            None => (0..self.n as u32).collect(),
        };
        let len = rows.len();
        if len > 0 {
            let mut dst = self.indices.slice_mut(0..len);
            check("uploading the tree's rows", s.memcpy_htod(&rows, &mut dst))?;
        }
        self.ranges.clear();
        self.ranges.push((0, len));
        self.hist_of(0, len, active)
    }

    fn split_leaf(&mut self, order: &SplitOrder) -> Result<(u32, u32)> {
        let (begin, end) = self.ranges[order.leaf];
        let len = end - begin;
        let side = side_table(&self.data, order);
        let s = self.gpu.stream.clone();
        let mut mid = begin;
        if len > 0 {
            {
                let mut dst = self.side.slice_mut(0..side.len());
                check("uploading a split's bin sides", s.memcpy_htod(&side, &mut dst))?;
            }
            let tiles = len.div_ceil(PART_TILE) as u32;
            let len32 = len as u32;
            let (count, scatter) = match &self.bins {
                DevBins::U8(_) => ("count_left_u8", "scatter_u8"),
                DevBins::U16(_) => ("count_left_u16", "scatter_u16"),
            };
            let fcount = self.gpu.function("partition", count)?;
            let fscan = self.gpu.function("partition", "scan_tiles")?;
            let fscatter = self.gpu.function("partition", scatter)?;
            let n = self.n;
            let feat = order.feature;
            let rows = self.indices.slice(begin..end);
            // The split feature's column (views bound here: the launch reads them by address).
            let (col8, col16) = match &self.bins {
                DevBins::U8(d) => (Some(d.slice(feat * n..(feat + 1) * n)), None),
                DevBins::U16(d) => (None, Some(d.slice(feat * n..(feat + 1) * n))),
            };
            {
                let mut b = s.launch_builder(&fcount);
                match (&col8, &col16) {
                    (Some(c), _) => b.arg(c),
                    (_, Some(c)) => b.arg(c),
                    _ => unreachable!(),
                };
                b.arg(&self.side).arg(&rows).arg(&len32).arg(&mut self.tile_left);
                // SAFETY: matches kernels/partition.cu count_left_*; tile_left holds tiles + 1 values.
                check("launching the partition count", unsafe { b.launch(cfg((tiles, 1), PART_THREADS)) })?;
            }
            {
                let mut b = s.launch_builder(&fscan);
                b.arg(&mut self.tile_left).arg(&tiles);
                // SAFETY: matches scan_tiles.
                check("launching the partition scan", unsafe { b.launch(cfg((1, 1), 1)) })?;
            }
            {
                let mut out = self.scratch.slice_mut(0..len);
                let mut b = s.launch_builder(&fscatter);
                match (&col8, &col16) {
                    (Some(c), _) => b.arg(c),
                    (_, Some(c)) => b.arg(c),
                    _ => unreachable!(),
                };
                b.arg(&self.side).arg(&rows).arg(&len32).arg(&self.tile_left).arg(&mut out);
                // SAFETY: matches scatter_*; out holds len values, each written once.
                check("launching the partition scatter", unsafe { b.launch(cfg((tiles, 1), PART_THREADS)) })?;
            }
            drop((rows, col8, col16));
            let mut left = [0u32; 1];
            check("reading the partition", s.memcpy_dtoh(&self.tile_left.slice(tiles as usize..tiles as usize + 1), &mut left[..]))?;
            self.gpu.sync()?;
            {
                let src = self.scratch.slice(0..len);
                let mut dst = self.indices.slice_mut(begin..end);
                check("copying the partition", s.memcpy_dtod(&src, &mut dst))?;
            }
            mid = begin + left[0] as usize;
        }
        self.ranges[order.leaf] = (begin, mid);
        self.ranges.push((mid, end));
        Ok(((mid - begin) as u32, (end - mid) as u32))
    }

    fn leaf_hist(&mut self, leaf: usize, active: &[bool]) -> Result<Vec<HBin>> {
        let (begin, end) = self.ranges[leaf];
        self.hist_of(begin, end, active)
    }

    fn finish_tree(&mut self) -> Result<()> {
        let len = self.ranges.iter().map(|r| r.1).max().unwrap_or(0);
        self.host_indices.resize(len, 0);
        if len > 0 {
            let src = self.indices.slice(0..len);
            check("reading the leaves' rows", self.gpu.stream.memcpy_dtoh(&src, &mut self.host_indices[..]))?;
        }
        self.gpu.sync()
    }

    fn indices(&self) -> &[u32] {
        &self.host_indices
    }

    fn ranges(&self) -> &[(usize, usize)] {
        &self.ranges
    }
}
