//! Streaming drift monitoring: batches of rows accumulate into windows (tumbling when the step equals
//! the window, sliding when it is smaller); each full window is compared with the reference profile.
//!
//! Alerting: a window counts as drifted when its report says `dataset_drift`. After `alert_after`
//! consecutive drifted windows an alert fires, the count restarts, and the next `cooldown` windows
//! cannot fire another (they are still compared, reported and counted towards the next run). The whole state — profile, options,
//! buffered rows and counters — serialises, so a monitor restored from its bytes continues exactly
//! where it stopped.

use std::collections::HashMap;

use arrow_array::Float64Array;
use serde::{Deserialize, Serialize};

use super::profile::{ColumnProfile, CompareOptions, DriftReport, ReferenceProfile};
use crate::data::frame::{CategoricalSource, ColumnSource, FloatChunk, NumericSource};
use crate::data::{CatKey, Frame};
use crate::error::{Error, Result};

/// Windows by time instead of rows: the window holds rows whose `column` value lies in
/// [start, start + width); a new window starts every `step` (times must not decrease).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TimeWindows {
    /// The numeric time column of each batch (not compared).
    pub column: String,
    /// Window length, in the column's units.
    pub width: f64,
    /// Distance between window starts (= width: tumbling; < width: sliding).
    pub step: f64,
}

/// Window and alert settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MonitorConfig {
    /// Rows per window.
    pub window: usize,
    /// Rows between window starts (= window: tumbling; < window: sliding).
    pub step: usize,
    /// Consecutive drifted windows that raise an alert.
    pub alert_after: usize,
    /// Windows after an alert during which no new alert fires.
    pub cooldown: usize,
    /// How each window is compared.
    pub options: CompareOptions,
    /// Time windows (then `window` and `step` are not used).
    pub time: Option<TimeWindows>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
enum Buffer {
    Numeric(Vec<f64>),
    Categorical { keys: Vec<CatKey>, codes: Vec<i32> },
}

/// The monitor's full state.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DriftMonitor {
    profile: ReferenceProfile,
    config: MonitorConfig,
    buffers: Vec<Buffer>,
    /// Rows currently buffered.
    buffered: usize,
    /// Rows received since the start.
    pub rows_seen: u64,
    /// Windows compared since the start.
    pub windows_seen: u64,
    /// Current run of consecutive drifted windows.
    pub consecutive: usize,
    /// Windows left in the cooldown.
    pub cooldown_left: usize,
    /// Alerts raised since the start.
    pub alerts: u64,
    /// Time of each buffered row (time windows).
    times: Vec<f64>,
    /// Start of the open time window.
    window_start: Option<f64>,
    /// Latest time seen.
    last_time: f64,
}

/// What one full window gave.
#[derive(Clone, Debug)]
pub struct WindowFinding {
    /// 0-based window number.
    pub window: u64,
    /// First row of the window (counting all rows received).
    pub start_row: u64,
    /// One past its last row.
    pub end_row: u64,
    /// Start of a time window (NaN for row windows).
    pub start_time: f64,
    /// End (exclusive) of a time window (NaN for row windows).
    pub end_time: f64,
    /// Whether an alert fired on this window.
    pub alert: bool,
    /// The comparison.
    pub report: DriftReport,
}

impl DriftMonitor {
    /// A monitor of data against `profile`.
    pub fn new(profile: ReferenceProfile, config: MonitorConfig) -> Result<Self> {
        if let Some(t) = &config.time {
            if !(t.width > 0.0 && t.width.is_finite() && t.step > 0.0 && t.step <= t.width) {
                return Err(Error::param(format!(
                    "time windows need width > 0 and step in (0, width], got width={} step={}",
                    t.width, t.step
                )));
            }
            if profile.names.contains(&t.column) {
                return Err(Error::param(format!(
                    "time_column '{}' is one of the monitored columns; profile the data without it",
                    t.column
                )));
            }
        } else if config.window == 0 || config.step == 0 || config.step > config.window {
            return Err(Error::param(format!(
                "window must be >= 1 and step in 1..=window, got window={} step={}",
                config.window, config.step
            )));
        }
        if config.alert_after == 0 {
            return Err(Error::param("alert_after must be at least 1"));
        }
        let buffers = profile
            .columns
            .iter()
            .map(|c| match c {
                ColumnProfile::Numeric(_) => Buffer::Numeric(Vec::new()),
                ColumnProfile::Categorical(_) => Buffer::Categorical { keys: Vec::new(), codes: Vec::new() },
            })
            .collect();
        Ok(DriftMonitor {
            profile,
            config,
            buffers,
            buffered: 0,
            rows_seen: 0,
            windows_seen: 0,
            consecutive: 0,
            cooldown_left: 0,
            alerts: 0,
            times: Vec::new(),
            window_start: None,
            last_time: f64::NEG_INFINITY,
        })
    }

    /// The settings.
    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    /// Appends a batch; returns the findings of every window it completed, in order.
    pub fn update(&mut self, batch: &Frame<'_>, num_threads: i64) -> Result<Vec<WindowFinding>> {
        let index: HashMap<&str, usize> = batch.names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        // Check every column before touching the buffers, so a bad batch changes nothing.
        let mut sources = Vec::with_capacity(self.buffers.len());
        for (name, buf) in self.profile.names.iter().zip(&self.buffers) {
            let j = *index.get(name.as_str()).ok_or_else(|| {
                Error::data(format!("the batch has no column '{name}', which the reference profile monitors"))
            })?;
            match (buf, &batch.columns[j]) {
                (Buffer::Numeric(_), ColumnSource::Numeric(_)) | (Buffer::Categorical { .. }, ColumnSource::Categorical(_)) => {}
                (Buffer::Numeric(_), _) => {
                    return Err(Error::data(format!("column '{name}' is numeric in the reference but categorical in the batch")))
                }
                _ => return Err(Error::data(format!("column '{name}' is categorical in the reference but numeric in the batch"))),
            }
            sources.push(j);
        }
        if let Some(t) = self.config.time.clone() {
            return self.update_by_time(batch, &sources, &t, num_threads);
        }
        let mut findings = Vec::new();
        let mut row = 0usize;
        let n = batch.n_rows;
        while row < n {
            // Take as many rows as the window still needs.
            let need = self.config.window - self.buffered;
            let take = need.min(n - row);
            for (buf, &j) in self.buffers.iter_mut().zip(&sources) {
                append(buf, &batch.columns[j], row, take);
            }
            self.buffered += take;
            self.rows_seen += take as u64;
            row += take;
            if self.buffered == self.config.window {
                findings.push(self.close_window(num_threads)?);
            }
        }
        Ok(findings)
    }

    fn update_by_time(
        &mut self,
        batch: &Frame<'_>,
        sources: &[usize],
        t: &TimeWindows,
        num_threads: i64,
    ) -> Result<Vec<WindowFinding>> {
        let tj = batch.names.iter().position(|n| *n == t.column).ok_or_else(|| {
            Error::data(format!("the batch has no time column '{}'", t.column))
        })?;
        let ColumnSource::Numeric(tsrc) = &batch.columns[tj] else {
            return Err(Error::data(format!("time column '{}' must be numeric", t.column)));
        };
        let n = batch.n_rows;
        let mut times = vec![0.0; n];
        tsrc.read(0, &mut times);
        let mut last = self.last_time;
        for (r, &x) in times.iter().enumerate() {
            if !x.is_finite() {
                return Err(Error::data(format!("time column '{}' holds {x} at row {r}; times must be finite", t.column)));
            }
            if x < last {
                return Err(Error::data(format!(
                    "time column '{}' decreases at row {r} ({x} after {last}); batches must arrive in time order",
                    t.column
                )));
            }
            last = x;
        }
        self.last_time = last;
        let mut findings = Vec::new();
        let mut row = 0usize;
        while row < n {
            let start = *self.window_start.get_or_insert(times[row]);
            let end = start + t.width;
            // Rows before the window's end join it.
            let stop = row + times[row..].partition_point(|&x| x < end);
            for (buf, &j) in self.buffers.iter_mut().zip(sources) {
                append(buf, &batch.columns[j], row, stop - row);
            }
            self.times.extend_from_slice(&times[row..stop]);
            self.buffered += stop - row;
            self.rows_seen += (stop - row) as u64;
            row = stop;
            if row == n {
                break;
            }
            // A row at or past the end closes the window.
            if self.buffered > 0 {
                let (report, alert) = self.compare_window(num_threads)?;
                let end_row = self.rows_seen;
                findings.push(WindowFinding {
                    window: self.windows_seen - 1,
                    start_row: end_row - self.buffered as u64,
                    end_row,
                    start_time: start,
                    end_time: end,
                    alert,
                    report,
                });
            }
            let mut next = start + t.step;
            if next + t.width <= times[row] && self.times.last().is_none_or(|&l| l < next) {
                // Empty windows in a gap are skipped.
                next += ((times[row] - t.width - next) / t.step).floor().max(0.0) * t.step;
                while next + t.width <= times[row] {
                    next += t.step;
                }
            }
            self.window_start = Some(next);
            let drop = self.times.partition_point(|&x| x < next);
            self.drop_front(drop);
        }
        Ok(findings)
    }

    fn drop_front(&mut self, k: usize) {
        for buf in &mut self.buffers {
            match buf {
                Buffer::Numeric(v) => {
                    v.drain(..k);
                }
                Buffer::Categorical { codes, .. } => {
                    codes.drain(..k);
                }
            }
        }
        if !self.times.is_empty() {
            self.times.drain(..k);
        }
        self.buffered -= k;
    }

    /// Compares the buffered rows and applies the alert rule.
    fn compare_window(&mut self, num_threads: i64) -> Result<(DriftReport, bool)> {
        let frame = self.window_frame();
        let report = self.profile.compare(&frame, &self.config.options, num_threads)?;
        self.windows_seen += 1;
        if report.dataset_drift {
            self.consecutive += 1;
        } else {
            self.consecutive = 0;
        }
        let mut alert = false;
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
        } else if self.consecutive >= self.config.alert_after {
            alert = true;
            self.alerts += 1;
            self.consecutive = 0;
            self.cooldown_left = self.config.cooldown;
        }
        Ok((report, alert))
    }

    fn close_window(&mut self, num_threads: i64) -> Result<WindowFinding> {
        let (report, alert) = self.compare_window(num_threads)?;
        let window = self.windows_seen - 1;
        let end_row = self.rows_seen;
        let start_row = end_row - self.config.window as u64;
        self.drop_front(self.config.step);
        Ok(WindowFinding { window, start_row, end_row, start_time: f64::NAN, end_time: f64::NAN, alert, report })
    }

    fn window_frame(&self) -> Frame<'static> {
        let columns = self
            .buffers
            .iter()
            .map(|b| match b {
                Buffer::Numeric(v) => ColumnSource::Numeric(NumericSource::from_chunks(vec![FloatChunk::F64(
                    Float64Array::from(v.clone()),
                )])),
                Buffer::Categorical { keys, codes } => {
                    ColumnSource::Categorical(CategoricalSource { keys: keys.clone(), codes: codes.clone() })
                }
            })
            .collect();
        Frame { names: self.profile.names.clone(), columns, n_rows: self.buffered }
    }
}

fn append(buf: &mut Buffer, col: &ColumnSource<'_>, row: usize, take: usize) {
    match (buf, col) {
        (Buffer::Numeric(v), ColumnSource::Numeric(src)) => {
            let start = v.len();
            v.resize(start + take, 0.0);
            src.read(row, &mut v[start..]);
        }
        (Buffer::Categorical { keys, codes }, ColumnSource::Categorical(src)) => {
            let mut index: HashMap<&CatKey, i32> = keys.iter().enumerate().map(|(i, k)| (k, i as i32)).collect();
            let mut new_keys = Vec::new();
            let table: Vec<i32> = src
                .keys
                .iter()
                .map(|k| match index.get(k) {
                    Some(&c) => c,
                    None => {
                        let c = (keys.len() + new_keys.len()) as i32;
                        new_keys.push(k.clone());
                        index.insert(k, c);
                        c
                    }
                })
                .collect();
            codes.extend(src.codes[row..row + take].iter().map(|&c| if c < 0 { -1 } else { table[c as usize] }));
            keys.extend(new_keys);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::frame::DenseMatrix;
    use crate::data::sample::SplitMix64;
    use crate::drift::profile::ProfileConfig;

    fn data(n: usize, shift: f64, seed: u64) -> ndarray::Array2<f64> {
        let mut rng = SplitMix64::new(seed);
        ndarray::Array2::from_shape_fn((n, 2), |_| rng.next_f64() + shift)
    }

    #[test]
    fn windows_alerts_and_cooldown() {
        let r = data(2000, 0.0, 1);
        let prof = ReferenceProfile::fit(&Frame::from_dense(DenseMatrix::F64(r.view()), None, &[]).unwrap(), ProfileConfig::default(), 1).unwrap();
        let cfg = MonitorConfig { window: 300, step: 300, alert_after: 2, cooldown: 2, options: CompareOptions::default(), time: None };
        let mut m = DriftMonitor::new(prof, cfg).unwrap();
        let same = data(500, 0.0, 2);
        let f = m.update(&Frame::from_dense(DenseMatrix::F64(same.view()), None, &[]).unwrap(), 1).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].start_row, f[0].end_row), (0, 300));
        assert!(!f[0].report.dataset_drift);
        let shifted = data(1200, 0.5, 3);
        let f = m.update(&Frame::from_dense(DenseMatrix::F64(shifted.view()), None, &[]).unwrap(), 1).unwrap();
        // windows 1..=4 (rows 300..1500), all drifted (window 1 mixes 200 plain rows and 100 shifted)
        assert_eq!(f.len(), 4);
        let alerts: Vec<bool> = f.iter().map(|w| w.alert).collect();
        assert_eq!(alerts, vec![false, true, false, false], "{:?}", f.iter().map(|w| w.report.dataset_drift).collect::<Vec<_>>());
        assert_eq!(m.alerts, 1);
        // the state round-trips through serde and continues identically
        let bytes = crate::artifact::encode("drift_monitor", &m).unwrap();
        let mut again: DriftMonitor = crate::artifact::decode(&bytes, "drift_monitor").unwrap();
        assert_eq!(again, m);
        let more = data(300, 0.5, 4);
        let fr = Frame::from_dense(DenseMatrix::F64(more.view()), None, &[]).unwrap();
        let a = m.update(&fr, 1).unwrap();
        let b = again.update(&fr, 1).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].alert, b[0].alert);
        assert_eq!(a[0].report, b[0].report);
    }
}
