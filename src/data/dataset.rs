//! The binned dataset: every feature's bins, stored column by column as u8 (when every feature has at
//! most 256 bins) or u16, with the mappers that made them, feature names, label and weights.
//! Built once, reused by every training run and by validation sets through `reference`.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::binning::{BinConfig, BinMapper};
use super::frame::{code_numeric, default_names, preview, ColumnSource, FeatureRef, Frame};
use super::sample::keyed_sample;
use crate::error::{Error, Result};
use crate::parallel::run_in_pool;

/// Bins of every feature, column-major: feature `j` is `data[j * n_rows .. (j + 1) * n_rows]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BinMatrix {
    /// Every feature has at most 256 bins.
    U8(Vec<u8>),
    /// Some feature has more than 256 bins.
    U16(Vec<u16>),
}

/// Integer types bins are stored in.
pub trait BinInt: Copy + Send + Sync + Default + 'static {
    /// Narrows a bin index known to fit.
    fn from_bin(b: u32) -> Self;
}
impl BinInt for u8 {
    #[inline]
    fn from_bin(b: u32) -> Self {
        b as u8
    }
}
impl BinInt for u16 {
    #[inline]
    fn from_bin(b: u32) -> Self {
        b as u16
    }
}

/// Rows binned per task; a block of every feature stays in cache while it is read.
const BLOCK_ROWS: usize = 2048;

/// A binned dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// Feature names, unique, in column order.
    pub feature_names: Vec<String>,
    /// One bin rule per feature.
    pub mappers: Vec<BinMapper>,
    /// The bins.
    pub bins: BinMatrix,
    /// Rows.
    pub n_rows: usize,
    /// Target values, one per row, finite.
    pub label: Option<Vec<f64>>,
    /// Row weights, one per row, finite and non-negative.
    pub weight: Option<Vec<f64>>,
    /// Query sizes for ranking, in row order; they sum to the rows.
    pub group: Option<Vec<u32>>,
    /// Starting raw scores (rows x scores, class-major), instead of the objective's average.
    pub init_score: Option<Vec<f64>>,
    /// The parameters the bins were made with.
    pub config: BinConfig,
}

fn check_vector(what: &str, v: &[f64], n_rows: usize, non_negative: bool) -> Result<()> {
    if v.len() != n_rows {
        return Err(Error::data(format!("{what} has {} values but the data has {n_rows} rows", v.len())));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::data(format!("{what} holds {} at row {i}; every {what} must be finite", v[i])));
    }
    if non_negative {
        if let Some(i) = v.iter().position(|&x| x < 0.0) {
            return Err(Error::data(format!("{what} holds {} at row {i}; weights must be >= 0", v[i])));
        }
    }
    Ok(())
}

impl Dataset {
    /// Bins `frame`. With `reference`, its bin mappers are reused (validation sets, tuning trials), so
    /// equal values fall in equal bins in both datasets.
    pub fn construct(
        frame: &Frame<'_>,
        label: Option<Vec<f64>>,
        weight: Option<Vec<f64>>,
        config: &BinConfig,
        reference: Option<&Dataset>,
    ) -> Result<Dataset> {
        config.validate()?;
        let n = frame.n_rows;
        if let Some(l) = &label {
            check_vector("label", l, n, false)?;
        }
        if let Some(w) = &weight {
            check_vector("weight", w, n, true)?;
        }
        let (names, mappers, columns) = match reference {
            Some(r) => Self::against_reference(frame, r)?,
            None => {
                let mappers = run_in_pool(config.num_threads, || Self::find_mappers(frame, config))??;
                (frame.names.clone(), mappers, None)
            }
        };
        let columns = columns.as_ref().map(|c| c.as_slice()).unwrap_or(&frame.columns);
        let wide = mappers.iter().any(|m| m.num_bins() > 256);
        let bins = run_in_pool(config.num_threads, || {
            if wide {
                BinMatrix::U16(fill_bins::<u16>(columns, &mappers, n))
            } else {
                BinMatrix::U8(fill_bins::<u8>(columns, &mappers, n))
            }
        })?;
        let config = match reference {
            Some(r) => BinConfig { num_threads: config.num_threads, ..r.config.clone() },
            None => config.clone(),
        };
        Ok(Dataset { feature_names: names, mappers, bins, n_rows: n, label, weight, group: None, init_score: None, config })
    }

    fn find_mappers(frame: &Frame<'_>, config: &BinConfig) -> Result<Vec<BinMapper>> {
        // Which rows are sampled depends on each row's identity (its position) only, so a distributed
        // build finds the same sample shard by shard.
        let rows = keyed_sample(frame.n_rows, config.bin_construct_sample_cnt, config.data_random_seed);
        // max_bin counts the missing-value bin too.
        let value_bins = config.max_bin - 1;
        let mappers = frame
            .columns
            .par_iter()
            .map(|col| match col {
                ColumnSource::Numeric(src) => {
                    let mut vals = Vec::with_capacity(rows.len());
                    src.gather_present(&rows, &mut vals);
                    BinMapper::numeric_from_sample(&mut vals, value_bins, config.min_data_in_bin)
                }
                ColumnSource::Categorical(c) => {
                    let codes: Vec<i32> = rows.iter().map(|&r| c.codes[r]).collect();
                    BinMapper::categorical_from_sample(&codes, &c.keys, value_bins)
                }
            })
            .collect();
        Ok(mappers)
    }

    /// Mappers and names from `reference`, after checking the new data has the same columns; numeric
    /// columns the reference treats as categorical are coded here.
    #[allow(clippy::type_complexity)]
    fn against_reference<'a>(
        frame: &Frame<'a>,
        r: &Dataset,
    ) -> Result<(Vec<String>, Vec<BinMapper>, Option<Vec<ColumnSource<'a>>>)> {
        if frame.n_cols() != r.num_features() {
            return Err(Error::data(format!(
                "the data has {} columns but the reference Dataset has {} features ({})",
                frame.n_cols(),
                r.num_features(),
                preview(&r.feature_names)
            )));
        }
        let generic = frame.names == default_names(frame.n_cols());
        if !generic {
            if let Some(j) = (0..frame.n_cols()).find(|&j| frame.names[j] != r.feature_names[j]) {
                return Err(Error::data(format!(
                    "column {j} is named '{}' but the reference Dataset calls it '{}'; columns must \
                     come in the same order with the same names",
                    frame.names[j], r.feature_names[j]
                )));
            }
        }
        let mut recoded: Option<Vec<ColumnSource<'a>>> = None;
        for (j, (col, m)) in frame.columns.iter().zip(&r.mappers).enumerate() {
            match (col, m.is_categorical()) {
                (ColumnSource::Numeric(src), true) => {
                    let coded = code_numeric(src, frame.n_rows, &r.feature_names[j])?;
                    recoded.get_or_insert_with(|| frame.columns.clone())[j] = ColumnSource::Categorical(coded);
                }
                (ColumnSource::Categorical(_), false) => {
                    return Err(Error::data(format!(
                        "column '{}' is categorical here but numeric in the reference Dataset",
                        r.feature_names[j]
                    )))
                }
                _ => {}
            }
        }
        Ok((r.feature_names.clone(), r.mappers.clone(), recoded))
    }

    /// `categorical` plus this dataset's categorical features (by position, where `n_cols` has them):
    /// what new data read against this dataset as `reference` treats as categories.
    pub fn categorical_with(&self, categorical: &[FeatureRef], n_cols: usize) -> Vec<FeatureRef> {
        let mut out = categorical.to_vec();
        out.extend(
            (0..self.mappers.len().min(n_cols))
                .filter(|&j| self.mappers[j].is_categorical())
                .map(FeatureRef::Index),
        );
        out
    }

    /// Sets the query sizes of a ranking dataset (they must sum to the rows).
    pub fn with_group(mut self, group: Option<Vec<i64>>) -> Result<Self> {
        if let Some(g) = group {
            if let Some((i, &s)) = g.iter().enumerate().find(|(_, &s)| s <= 0 || s > u32::MAX as i64) {
                return Err(Error::data(format!("group holds {s} at position {i}; query sizes must be positive")));
            }
            let total: i64 = g.iter().sum();
            if total != self.n_rows as i64 {
                return Err(Error::data(format!(
                    "group sizes sum to {total} but the data has {} rows",
                    self.n_rows
                )));
            }
            self.group = Some(g.into_iter().map(|s| s as u32).collect());
        }
        Ok(self)
    }

    /// Sets starting raw scores: one per row, or rows x classes (class-major).
    pub fn with_init_score(mut self, init_score: Option<Vec<f64>>) -> Result<Self> {
        if let Some(s) = init_score {
            if s.is_empty() || s.len() % self.n_rows != 0 {
                return Err(Error::data(format!(
                    "init_score has {} values; expected one per row ({}) or one per row and class",
                    s.len(),
                    self.n_rows
                )));
            }
            if let Some(i) = s.iter().position(|v| !v.is_finite()) {
                return Err(Error::data(format!("init_score holds {} at position {i}; it must be finite", s[i])));
            }
            self.init_score = Some(s);
        }
        Ok(self)
    }

    /// Query boundaries: query q is rows `b[q]..b[q + 1]`.
    pub fn query_boundaries(&self) -> Option<Vec<usize>> {
        self.group.as_ref().map(|g| {
            let mut b = Vec::with_capacity(g.len() + 1);
            b.push(0);
            let mut at = 0;
            for &s in g {
                at += s as usize;
                b.push(at);
            }
            b
        })
    }

    /// Number of rows.
    pub fn num_data(&self) -> usize {
        self.n_rows
    }

    /// Number of features.
    pub fn num_features(&self) -> usize {
        self.mappers.len()
    }

    /// The bin of `row` in `feature`.
    pub fn bin(&self, row: usize, feature: usize) -> u32 {
        let at = feature * self.n_rows + row;
        match &self.bins {
            BinMatrix::U8(d) => d[at] as u32,
            BinMatrix::U16(d) => d[at] as u32,
        }
    }

    /// Bytes the bins take.
    pub fn bin_bytes(&self) -> usize {
        match &self.bins {
            BinMatrix::U8(d) => d.len(),
            BinMatrix::U16(d) => d.len() * 2,
        }
    }
}

/// Bins every column, in parallel over blocks of rows (each task writes its rows of every feature).
fn fill_bins<T: BinInt>(columns: &[ColumnSource<'_>], mappers: &[BinMapper], n_rows: usize) -> Vec<T> {
    let nf = columns.len();
    let mut out = crate::mem::zeroed(nf * n_rows, T::default());
    let tables: Vec<Vec<u32>> = columns
        .iter()
        .zip(mappers)
        .map(|(c, m)| match c {
            ColumnSource::Categorical(c) => m.category_table(&c.keys),
            ColumnSource::Numeric(_) => Vec::new(),
        })
        .collect();
    let n_blocks = n_rows.div_ceil(BLOCK_ROWS);
    let mut blocks: Vec<Vec<&mut [T]>> = (0..n_blocks).map(|_| Vec::with_capacity(nf)).collect();
    for col in out.chunks_mut(n_rows) {
        for (b, piece) in col.chunks_mut(BLOCK_ROWS).enumerate() {
            blocks[b].push(piece);
        }
    }
    blocks.into_par_iter().enumerate().for_each(|(b, pieces)| {
        let row0 = b * BLOCK_ROWS;
        let mut buf = [0.0f64; BLOCK_ROWS];
        for (j, piece) in pieces.into_iter().enumerate() {
            let len = piece.len();
            match (&columns[j], &mappers[j]) {
                (ColumnSource::Numeric(src), BinMapper::Numeric { upper_bounds, .. }) => {
                    src.read(row0, &mut buf[..len]);
                    for (o, &v) in piece.iter_mut().zip(&buf[..len]) {
                        *o = T::from_bin(BinMapper::numeric_bin(upper_bounds, v));
                    }
                }
                (ColumnSource::Categorical(c), m) => {
                    let table = &tables[j];
                    let missing = m.missing_bin();
                    for (o, &code) in piece.iter_mut().zip(&c.codes[row0..row0 + len]) {
                        let bin = if code < 0 { missing } else { table[code as usize] };
                        *o = T::from_bin(bin);
                    }
                }
                // A numeric column never meets a categorical mapper: construct() codes it first.
                (ColumnSource::Numeric(_), BinMapper::Categorical { .. }) => {
                    piece.fill(T::from_bin(mappers[j].missing_bin()))
                }
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::frame::DenseMatrix;
    use crate::data::sample::SplitMix64;
    use ndarray::Array2;

    fn random(n: usize, m: usize, seed: u64) -> Array2<f64> {
        let mut rng = SplitMix64::new(seed);
        Array2::from_shape_fn((n, m), |_| {
            let u = rng.next_f64();
            if u < 0.05 {
                f64::NAN
            } else {
                (u * 10.0).exp()
            }
        })
    }

    #[test]
    fn construct_is_deterministic_and_thread_independent() {
        let x = random(10_000, 7, 1);
        let f = Frame::from_dense(DenseMatrix::F64(x.view()), None, &[]).unwrap();
        let one = Dataset::construct(&f, None, None, &BinConfig { num_threads: 1, ..Default::default() }, None).unwrap();
        let three = Dataset::construct(&f, None, None, &BinConfig { num_threads: 3, ..Default::default() }, None).unwrap();
        assert_eq!(one.bins, three.bins);
        assert_eq!(one.mappers, three.mappers);
        // Missing values land in each feature's missing bin, and only there.
        for j in 0..7 {
            for i in 0..10_000 {
                assert_eq!(x[[i, j]].is_nan(), one.bin(i, j) == one.mappers[j].missing_bin());
            }
        }
    }

    #[test]
    fn c_and_fortran_order_and_f32_agree() {
        let x = random(3_000, 4, 2).mapv(|v| v as f32 as f64);
        let xt = x.t().as_standard_layout().into_owned();
        let xf = xt.t();
        let x32 = x.mapv(|v| v as f32);
        let cfg = BinConfig::default();
        let a = Dataset::construct(&Frame::from_dense(DenseMatrix::F64(x.view()), None, &[]).unwrap(), None, None, &cfg, None).unwrap();
        let b = Dataset::construct(&Frame::from_dense(DenseMatrix::F64(xf.view()), None, &[]).unwrap(), None, None, &cfg, None).unwrap();
        let c = Dataset::construct(&Frame::from_dense(DenseMatrix::F32(x32.view()), None, &[]).unwrap(), None, None, &cfg, None).unwrap();
        assert_eq!(a.bins, b.bins);
        assert_eq!(a.bins, c.bins);
    }

    #[test]
    fn wide_bins_use_u16() {
        let x = Array2::from_shape_fn((5_000, 1), |(i, _)| i as f64);
        let f = Frame::from_dense(DenseMatrix::F64(x.view()), None, &[]).unwrap();
        let cfg = BinConfig { max_bin: 1000, min_data_in_bin: 1, ..Default::default() };
        let d = Dataset::construct(&f, None, None, &cfg, None).unwrap();
        assert!(matches!(d.bins, BinMatrix::U16(_)));
        assert_eq!(d.mappers[0].num_bins(), 1000);
        assert_eq!(d.bin(4_999, 0), 998);
    }

    #[test]
    fn reference_reuses_edges_and_codes_categories() {
        let x = random(2_000, 3, 3).mapv(|v| if v.is_nan() { v } else { v.floor() % 5.0 });
        let f = Frame::from_dense(DenseMatrix::F64(x.view()), None, &[FeatureRef::Index(1)]).unwrap();
        let cfg = BinConfig::default();
        let train = Dataset::construct(&f, None, None, &cfg, None).unwrap();
        let f2 = Frame::from_dense(DenseMatrix::F64(x.view()), None, &[]).unwrap();
        let valid = Dataset::construct(&f2, None, None, &cfg, Some(&train)).unwrap();
        assert_eq!(valid.bins, train.bins);
        let shorter = Array2::<f64>::zeros((5, 2));
        let f3 = Frame::from_dense(DenseMatrix::F64(shorter.view()), None, &[]).unwrap();
        assert!(Dataset::construct(&f3, None, None, &cfg, Some(&train)).is_err());
    }

    #[test]
    fn bad_label_and_weight_name_the_row() {
        let x = random(10, 2, 4);
        let f = Frame::from_dense(DenseMatrix::F64(x.view()), None, &[]).unwrap();
        let cfg = BinConfig::default();
        let mut y = vec![0.0; 10];
        y[3] = f64::NAN;
        let e = Dataset::construct(&f, Some(y), None, &cfg, None).unwrap_err();
        assert!(e.to_string().contains("row 3"), "{e}");
        let e = Dataset::construct(&f, Some(vec![0.0; 9]), None, &cfg, None).unwrap_err();
        assert!(e.to_string().contains("9 values"), "{e}");
        let mut w = vec![1.0; 10];
        w[7] = -1.0;
        let e = Dataset::construct(&f, None, Some(w), &cfg, None).unwrap_err();
        assert!(e.to_string().contains("row 7"), "{e}");
    }
}
