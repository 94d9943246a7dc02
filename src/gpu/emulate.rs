//! The GPU learner's algorithm, run on the CPU: the same quantisation formula and maxima (taken on
//! the floats' bits), histograms summed block by block into 32-bit (quantised) or 64-bit (fixed-point)
//! block-private counters and then added into 64-bit bins, and partitions by tiles (count, scan,
//! scatter). Tests train with it and with the CPU learner and compare the model bytes; that is how a
//! machine without a GPU checks the algorithm the kernels run.

use std::sync::Arc;

use super::learner::{side_table, DeviceLearner, GradMode, HIST_ROWS_PER_BLOCK, PART_TILE};
use crate::data::sample::keyed_uniform;
use crate::data::{BinMatrix, Dataset};
use crate::error::{Error, Result};
use crate::gbdt::boosting::{fill_fixed, hessian_seed, max_abs, quant_scales};
use crate::gbdt::learner::{HBin, HistLayout, SplitOrder};

/// Bins a block keeps in shared memory (kernels/histogram.cu SHARED_BINS): 32-bit quantised counters
/// for up to this many, 64-bit fixed-point ones for half as many; wider features add to global bins.
const SHARED_BINS: usize = 1024;

/// The emulated device.
pub struct EmulatedLearner {
    data: Arc<Dataset>,
    layout: HistLayout,
    mode: GradMode,
    /// Quantised (gradient, hessian) per row, as the device stores them (two bytes).
    qgh: Vec<[i8; 2]>,
    fgh: Vec<[i32; 2]>,
    indices: Vec<u32>,
    scratch: Vec<u32>,
    ranges: Vec<(usize, usize)>,
}

impl EmulatedLearner {
    /// An emulated device holding `data`.
    pub fn new(data: Arc<Dataset>) -> Self {
        let layout = HistLayout::new(&data);
        EmulatedLearner { data, layout, mode: GradMode::Fixed, qgh: Vec::new(), fgh: Vec::new(), indices: Vec::new(), scratch: Vec::new(), ranges: Vec::new() }
    }

    fn bin(&self, f: usize, r: usize) -> usize {
        let n = self.data.num_data();
        match &self.data.bins {
            BinMatrix::U8(d) => d[f * n + r] as usize,
            BinMatrix::U16(d) => d[f * n + r] as usize,
        }
    }

    /// kernels/histogram.cu, block by block.
    fn hist_of(&self, begin: usize, end: usize, active: &[bool]) -> Vec<HBin> {
        let mut out = vec![0i64; 2 * self.layout.total()];
        let n = self.data.num_data();
        let whole = end - begin == n;
        let quantized = matches!(self.mode, GradMode::Quantized { .. });
        for f in (0..active.len()).filter(|&f| active[f]) {
            let nb = self.data.mappers[f].num_bins();
            let off = self.layout.offsets()[f];
            let global = &mut out[2 * off..2 * (off + nb)];
            let nrows = end - begin;
            let rpb = HIST_ROWS_PER_BLOCK as usize;
            for start in (0..nrows).step_by(rpb) {
                let stop = (start + rpb).min(nrows);
                let row = |i: usize| if whole { i } else { self.indices[begin + i] as usize };
                // A block's counters: 32-bit for quantised values, 64-bit (two's complement) for
                // fixed-point ones, in shared memory when the feature's bins fit there.
                let shared = nb <= if quantized { SHARED_BINS } else { SHARED_BINS / 2 };
                let mut sh = vec![0u64; if shared { 2 * nb } else { 0 }];
                for i in start..stop {
                    let r = row(i);
                    let b = self.bin(f, r);
                    let (g, h) = if quantized {
                        let [g, h] = self.qgh[r];
                        (g as i64, h as u8 as i64)
                    } else {
                        let [g, h] = self.fgh[r];
                        (g as i64, h as i64)
                    };
                    if shared {
                        if quantized {
                            sh[2 * b] = (sh[2 * b] as i32).wrapping_add(g as i32) as u32 as u64;
                            sh[2 * b + 1] = (sh[2 * b + 1] as i32).wrapping_add(h as i32) as u32 as u64;
                        } else {
                            sh[2 * b] = sh[2 * b].wrapping_add(g as u64);
                            sh[2 * b + 1] = sh[2 * b + 1].wrapping_add(h as u64);
                        }
                    } else {
                        global[2 * b] = global[2 * b].wrapping_add(g);
                        global[2 * b + 1] = global[2 * b + 1].wrapping_add(h);
                    }
                }
                for (o, &v) in global.iter_mut().zip(&sh) {
                    // A 32-bit counter is read back signed, as the kernel's (i64)int cast does.
                    let v = if quantized { v as u32 as i32 as i64 } else { v as i64 };
                    *o = o.wrapping_add(v);
                }
            }
        }
        out.chunks_exact(2).map(|p| HBin { g: p[0], h: p[1] }).collect()
    }
}

impl DeviceLearner for EmulatedLearner {
    fn set_gradients(&mut self, g: &[f32], h: &[f32], mode: GradMode) -> Result<(f64, f64)> {
        self.mode = mode;
        match mode {
            GradMode::Fixed => Ok(fill_fixed(g, h, max_abs(g, h), &mut self.fgh)),
            GradMode::Quantized { bins, seed } => {
                // absmax_gh: maxima of |g| and max(h, 0) on the floats' bits.
                let (mut mg, mut mh) = (0u32, 0u32);
                for (&gv, &hv) in g.iter().zip(h) {
                    mg = mg.max(gv.to_bits() & 0x7fff_ffff);
                    mh = mh.max(if hv > 0.0 { hv.to_bits() } else { 0 });
                }
                let (gs, hs) = quant_scales(f32::from_bits(mg) as f64, f32::from_bits(mh) as f64, bins);
                let (half, fb) = ((bins / 2) as f64, bins as f64);
                let seed_h = hessian_seed(seed);
                // quantize_gh: floor, then fmin/fmax.
                self.qgh = (0..g.len())
                    .map(|i| {
                        let qg = (g[i] as f64 / gs + keyed_uniform(seed, i as u64)).floor().max(-half).min(half);
                        let qh = (h[i] as f64 / hs + keyed_uniform(seed_h, i as u64)).floor().max(0.0).min(fb);
                        [qg as i32 as i8, qh as i32 as u8 as i8]
                    })
                    .collect();
                Ok((gs, hs))
            }
        }
    }

    fn begin_tree(&mut self, bag: Option<&[u32]>, active: &[bool]) -> Result<Vec<HBin>> {
        self.indices = match bag {
            Some(b) => {
                if !b.windows(2).all(|w| w[0] < w[1]) {
                    return Err(Error::Internal("the rows of a bag must ascend strictly".into()));
                }
                b.to_vec()
            }
            None => (0..self.data.num_data() as u32).collect(),
        };
        self.scratch = vec![0; self.indices.len()];
        self.ranges = vec![(0, self.indices.len())];
        Ok(self.hist_of(0, self.indices.len(), active))
    }

    fn split_leaf(&mut self, order: &SplitOrder) -> Result<(u32, u32)> {
        let (begin, end) = self.ranges[order.leaf];
        let side = side_table(&self.data, order);
        let len = end - begin;
        let flags: Vec<bool> = self.indices[begin..end].iter().map(|&r| side[self.bin(order.feature, r as usize)] == 1).collect();
        // count_left: left rows per tile; scan_tiles: exclusive offsets.
        let tiles = len.div_ceil(PART_TILE);
        let mut offsets = Vec::with_capacity(tiles + 1);
        let mut acc = 0usize;
        for t in 0..tiles {
            offsets.push(acc);
            acc += flags[t * PART_TILE..((t + 1) * PART_TILE).min(len)].iter().filter(|&&l| l).count();
        }
        let total_left = acc;
        // scatter: each tile's rows in order, left ones after the earlier tiles' left rows, right ones
        // after all left rows and the earlier tiles' right rows.
        for t in 0..tiles {
            let start = t * PART_TILE;
            let (mut l, mut r) = (offsets[t], start - offsets[t]);
            for i in start..((t + 1) * PART_TILE).min(len) {
                let row = self.indices[begin + i];
                if flags[i] {
                    self.scratch[l] = row;
                    l += 1;
                } else {
                    self.scratch[total_left + r] = row;
                    r += 1;
                }
            }
        }
        self.indices[begin..end].copy_from_slice(&self.scratch[..len]);
        let mid = begin + total_left;
        self.ranges[order.leaf] = (begin, mid);
        self.ranges.push((mid, end));
        Ok(((mid - begin) as u32, (end - mid) as u32))
    }

    fn leaf_hist(&mut self, leaf: usize, active: &[bool]) -> Result<Vec<HBin>> {
        let (begin, end) = self.ranges[leaf];
        Ok(self.hist_of(begin, end, active))
    }

    fn finish_tree(&mut self) -> Result<()> {
        Ok(())
    }

    fn indices(&self) -> &[u32] {
        &self.indices
    }

    fn ranges(&self) -> &[(usize, usize)] {
        &self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::frame::{DenseMatrix, FeatureRef, Frame};
    use crate::data::sample::SplitMix64;
    use crate::data::BinConfig;
    use crate::gbdt::params::{GbdtParams, ParamValue};
    use crate::gbdt::Trainer;
    use ndarray::Array2;

    fn params(v: &[(&str, ParamValue)]) -> GbdtParams {
        GbdtParams::from_pairs(&v.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<Vec<_>>()).unwrap()
    }

    /// The model bytes after `rounds` rounds, with the CPU learner or the emulated device.
    fn train(d: &Arc<Dataset>, p: &GbdtParams, rounds: usize, emulated: bool) -> Vec<u8> {
        let mut t = Trainer::new(p.clone(), d.clone(), vec![], None).unwrap();
        if emulated {
            t.set_device_learner(Box::new(EmulatedLearner::new(d.clone())));
        }
        for _ in 0..rounds {
            if t.update(None).unwrap() {
                break;
            }
        }
        postcard::to_allocvec(t.model()).unwrap()
    }

    /// Fresh random data: NaN in column 2, a categorical column 5 (codes 0..12), a label from a few
    /// columns plus noise (`classes` 0: regression).
    fn data(n: usize, seed: u64, classes: usize, max_bin: usize) -> Arc<Dataset> {
        let mut rng = SplitMix64::new(seed);
        let x = Array2::from_shape_fn((n, 7), |(_, j)| match j {
            2 if rng.next_f64() < 0.1 => f64::NAN,
            5 => (rng.next_u64() % 12) as f64,
            6 => (rng.next_f64() * 1e4).round(),
            _ => rng.next_f64() * 4.0 - 2.0,
        });
        let y: Vec<f64> = (0..n)
            .map(|i| {
                let s = x[[i, 0]] + x[[i, 1]].powi(2) - 1.0 + if x[[i, 5]] as u64 % 3 == 0 { 0.8 } else { 0.0 } + (rng.next_f64() - 0.5);
                match classes {
                    0 => s + x[[i, 6]] * 1e-4,
                    2 => (s > 0.0) as u8 as f64,
                    k => ((s + 2.0).max(0.0) as usize).min(k - 1) as f64,
                }
            })
            .collect();
        let f = Frame::from_dense(DenseMatrix::F64(x.view()), None, &[FeatureRef::Index(5)]).unwrap();
        let cfg = BinConfig { max_bin, num_threads: 2, ..Default::default() };
        Arc::new(Dataset::construct(&f, Some(y), None, &cfg, None).unwrap())
    }

    #[test]
    fn the_emulated_device_trains_the_cpu_learners_model_byte_for_byte() {
        use ParamValue::*;
        let s = |v: &str| Str(v.into());
        let cases: Vec<(&str, Arc<Dataset>, Vec<(&str, ParamValue)>)> = vec![
            ("binary, quantized", data(9_000, 1, 2, 255), vec![("objective", s("binary")), ("use_quantized_grad", Bool(true)), ("num_leaves", Int(31))]),
            (
                "binary, quantized, bagging, feature fraction, renewed leaves",
                data(9_000, 2, 2, 255),
                vec![
                    ("objective", s("binary")),
                    ("use_quantized_grad", Bool(true)),
                    ("quant_train_renew_leaf", Bool(true)),
                    ("bagging_fraction", Float(0.7)),
                    ("bagging_freq", Int(2)),
                    ("feature_fraction", Float(0.7)),
                    ("seed", Int(5)),
                ],
            ),
            ("regression, fixed point", data(9_000, 3, 0, 255), vec![("objective", s("regression")), ("num_leaves", Int(63))]),
            ("multiclass, quantized, 4 levels", data(6_000, 4, 4, 255), vec![("objective", s("multiclass")), ("num_class", Int(4)), ("use_quantized_grad", Bool(true)), ("num_grad_quant_bins", Int(4))]),
            // Two-byte bins, wider than a block's shared histogram: the global-atomics path.
            ("regression, 2000 bins, quantized", data(9_000, 5, 0, 2000), vec![("objective", s("regression")), ("use_quantized_grad", Bool(true))]),
            ("regression, 2000 bins, fixed point", data(9_000, 6, 0, 2000), vec![("objective", s("regression"))]),
            // More rows than one histogram block and many partition tiles.
            ("binary, 70k rows, quantized", data(70_000, 7, 2, 63), vec![("objective", s("binary")), ("use_quantized_grad", Bool(true)), ("num_leaves", Int(15))]),
        ];
        for (what, d, mut v) in cases {
            v.push(("num_threads", Int(2)));
            let p = params(&v);
            let want = train(&d, &p, 8, false);
            let got = train(&d, &p, 8, true);
            assert!(want.len() > 500, "{what}: the model grew no trees");
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn bins_and_partitions_match_the_cpu_learner_split_by_split() {
        let d = data(20_000, 9, 2, 255);
        let mut dev = EmulatedLearner::new(d.clone());
        let mut rng = SplitMix64::new(3);
        let g: Vec<f32> = (0..d.num_data()).map(|_| rng.next_f64() as f32 - 0.5).collect();
        let h: Vec<f32> = (0..d.num_data()).map(|_| rng.next_f64() as f32).collect();
        let active = vec![true; d.num_features()];
        let scales = dev.set_gradients(&g, &h, GradMode::Quantized { bins: 16, seed: 7 }).unwrap();
        let mut cpu = crate::gbdt::learner::Learner::new(&d, None, crate::gbdt::learner::SplitRules::from_params(&GbdtParams::default()), Default::default());
        let mut q = Vec::new();
        let cpu_scales = crate::gbdt::boosting::quantize_for_tests(&g, &h, 16, 7, &mut q);
        assert_eq!(scales, cpu_scales);
        let grads = crate::gbdt::learner::Gradients::Quantized { gh: &q, max_h: 16, g_scale: scales.0, h_scale: scales.1 };
        assert_eq!(dev.begin_tree(None, &active).unwrap(), cpu.begin_tree(grads, None, &active));
        for (leaf, feature, bin) in [(0usize, 0usize, 100u32), (1, 3, 40), (0, 5, 2), (2, 2, 10)] {
            let order = SplitOrder { leaf, feature, threshold_bin: bin, default_left: leaf % 2 == 0, cat_left: vec![], est_left: 0, est_right: 0 };
            assert_eq!(dev.split_leaf(&order).unwrap(), cpu.split_leaf(&order));
            assert_eq!(dev.ranges(), cpu.ranges());
            for l in 0..dev.ranges().len() {
                assert_eq!(dev.leaf_hist(l, &active).unwrap(), cpu.leaf_hist(l, grads, &active), "leaf {l}");
            }
        }
        dev.finish_tree().unwrap();
        assert_eq!(dev.indices(), cpu.indices());
    }
}
