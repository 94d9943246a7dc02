//! Many arms and metrics at once, straight from Arrow record batches of per-unit events: the arm
//! column is coded once (through `data::arrow`'s frame, strings or dictionary), each metric's per-arm
//! moments are summed over the columns in two passes, then every treatment arm is compared with control
//! and the family of p-values is corrected (`drift::multitest`), with an SRM check of the arm sizes.

use arrow_array::RecordBatch;
use arrow_schema::Schema;

use super::compare::{compare, Comparison, Method, Options};
use super::estimate::Metric;
use super::moments::Moments;
use super::srm::{srm, Srm};
use crate::data::binning::CatKey;
use crate::data::frame::{ColumnSource, FeatureRef, Frame, NumericSource};
use crate::drift::multitest::{adjust, Correction};
use crate::error::{Error, Result};

/// One metric to analyse: `y` per unit (the numerator of a ratio), `x` the denominator of a ratio or
/// the CUPED covariate (`cuped` says which).
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSpec {
    pub name: String,
    pub metric: Metric,
    pub y: String,
    pub x: Option<String>,
    pub cuped: bool,
}

/// Options of [`analyze`].
#[derive(Clone, Debug)]
pub struct AnalyzeOptions {
    pub control: Option<String>,
    pub weights: Option<Vec<f64>>,
    pub srm_threshold: f64,
    pub correction: Correction,
    pub method: Method,
    pub relative: bool,
    pub alpha: f64,
    pub tuning: f64,
}

/// One treatment arm against control on one metric.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Row {
    pub metric: String,
    pub arm: String,
    pub control_arm: String,
    pub pvalue_adjusted: f64,
    pub comparison: Comparison,
}

/// The whole analysis.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Analysis {
    pub arms: Vec<String>,
    pub units: Vec<f64>,
    pub control_arm: String,
    pub correction: String,
    pub srm: Srm,
    pub rows: Vec<Row>,
}

fn label(k: &CatKey) -> String {
    match k {
        CatKey::Int(v) => v.to_string(),
        CatKey::Str(s) => s.clone(),
    }
}

/// Per-arm moments of `y` (and `x`) over rows coded by `codes` (arm index per row).
fn arm_moments(codes: &[i32], k: usize, y: (&str, &NumericSource), x: Option<(&str, &NumericSource)>) -> Result<Vec<Moments>> {
    const CHUNK: usize = 1 << 16;
    let n_rows = codes.len();
    let mut by = vec![0.0f64; CHUNK];
    let mut bx = vec![0.0f64; CHUNK];
    let (mut cnt, mut sy, mut sx) = (vec![0.0f64; k], vec![0.0f64; k], vec![0.0f64; k]);
    let check = |name: &str, buf: &[f64], row0: usize| -> Result<()> {
        if let Some(i) = buf.iter().position(|v| !v.is_finite()) {
            return Err(Error::data(format!(
                "column '{name}' holds a missing or non-finite value ({}) at row {}",
                buf[i],
                row0 + i
            )));
        }
        Ok(())
    };
    let mut row0 = 0;
    while row0 < n_rows {
        let m = CHUNK.min(n_rows - row0);
        y.1.read(row0, &mut by[..m]);
        check(y.0, &by[..m], row0)?;
        let c = &codes[row0..row0 + m];
        if let Some((xn, xs)) = x {
            xs.read(row0, &mut bx[..m]);
            check(xn, &bx[..m], row0)?;
            for i in 0..m {
                let a = c[i] as usize;
                cnt[a] += 1.0;
                sy[a] += by[i];
                sx[a] += bx[i];
            }
        } else {
            for i in 0..m {
                let a = c[i] as usize;
                cnt[a] += 1.0;
                sy[a] += by[i];
            }
        }
        row0 += m;
    }
    let my: Vec<f64> = (0..k).map(|a| if cnt[a] > 0.0 { sy[a] / cnt[a] } else { 0.0 }).collect();
    let mx: Vec<f64> = (0..k).map(|a| if cnt[a] > 0.0 { sx[a] / cnt[a] } else { 0.0 }).collect();
    let (mut m2y, mut m2x, mut cxy) = (vec![0.0f64; k], vec![0.0f64; k], vec![0.0f64; k]);
    let mut row0 = 0;
    while row0 < n_rows {
        let m = CHUNK.min(n_rows - row0);
        y.1.read(row0, &mut by[..m]);
        let c = &codes[row0..row0 + m];
        if let Some((_, xs)) = x {
            xs.read(row0, &mut bx[..m]);
            for i in 0..m {
                let a = c[i] as usize;
                let dy = by[i] - my[a];
                let dx = bx[i] - mx[a];
                m2y[a] += dy * dy;
                m2x[a] += dx * dx;
                cxy[a] += dy * dx;
            }
        } else {
            for i in 0..m {
                let a = c[i] as usize;
                let dy = by[i] - my[a];
                m2y[a] += dy * dy;
            }
        }
        row0 += m;
    }
    Ok((0..k)
        .map(|a| Moments { n: cnt[a], mean_y: my[a], m2_y: m2y[a], mean_x: mx[a], m2_x: m2x[a], c_xy: cxy[a] })
        .collect())
}

/// Analyses the events in `batches`: every arm but control against control on every metric.
pub fn analyze(batches: &[RecordBatch], schema: &Schema, arm: &str, specs: &[MetricSpec], o: &AnalyzeOptions) -> Result<Analysis> {
    super::check_alpha(o.alpha)?;
    if specs.is_empty() {
        return Err(Error::param("metrics must name at least one column"));
    }
    // Only the columns in use, the arm column first.
    let mut cols: Vec<String> = vec![arm.to_string()];
    for s in specs {
        for c in std::iter::once(&s.y).chain(s.x.as_ref()) {
            if !cols.contains(c) {
                cols.push(c.clone());
            }
        }
    }
    let idx: Vec<usize> = cols
        .iter()
        .map(|c| {
            schema.index_of(c).map_err(|_| {
                let which = if c == arm { "arm" } else { "metrics" };
                Error::data(format!("{which}: column '{c}' is not in the events (columns: {:?})", schema.fields().iter().map(|f| f.name()).collect::<Vec<_>>()))
            })
        })
        .collect::<Result<_>>()?;
    let projected: Vec<RecordBatch> = batches
        .iter()
        .map(|b| b.project(&idx).map_err(|e| Error::data(e.to_string())))
        .collect::<Result<_>>()?;
    let pschema = schema.project(&idx).map_err(|e| Error::data(e.to_string()))?;
    let frame = Frame::from_arrow(&projected, &pschema, &[FeatureRef::Name(arm.to_string())])?;
    if frame.n_rows == 0 {
        return Err(Error::data("events is empty"));
    }
    let ColumnSource::Categorical(arms) = &frame.columns[0] else {
        return Err(Error::Internal("arm column not coded".into()));
    };
    if let Some(r) = arms.codes.iter().position(|c| *c < 0) {
        return Err(Error::data(format!("arm: column '{arm}' is missing at row {r}")));
    }
    // Arms in sorted order (numbers numerically), codes remapped to that order.
    let labels: Vec<String> = arms.keys.iter().map(label).collect();
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by(|&a, &b| match (&arms.keys[a], &arms.keys[b]) {
        (CatKey::Int(x), CatKey::Int(y)) => x.cmp(y),
        _ => labels[a].cmp(&labels[b]),
    });
    let mut rank = vec![0i32; labels.len()];
    for (r, &a) in order.iter().enumerate() {
        rank[a] = r as i32;
    }
    let codes: Vec<i32> = arms.codes.iter().map(|&c| rank[c as usize]).collect();
    let names: Vec<String> = order.iter().map(|&a| labels[a].clone()).collect();
    let k = names.len();
    if k < 2 {
        return Err(Error::data(format!("arm: column '{arm}' has {k} arm(s); an experiment needs at least 2")));
    }
    let control = match &o.control {
        Some(c) => names.iter().position(|n| n == c).ok_or_else(|| {
            Error::param(format!("control '{c}' is not an arm; the arms are {names:?}"))
        })?,
        None => names.iter().position(|n| n == "control").unwrap_or(0),
    };
    let numeric = |name: &str| -> Result<&NumericSource<'static>> {
        let j = cols.iter().position(|c| c == name).ok_or_else(|| Error::Internal(name.into()))?;
        match &frame.columns[j] {
            ColumnSource::Numeric(s) => Ok(s),
            _ => Err(Error::data(format!("metrics: column '{name}' must be numeric or boolean"))),
        }
    };
    let mut units = vec![0.0f64; k];
    for &c in &codes {
        units[c as usize] += 1.0;
    }
    let weights = o.weights.clone().unwrap_or_else(|| vec![1.0; k]);
    if weights.len() != k {
        return Err(Error::data(format!("weights has {} values but there are {k} arms {names:?}", weights.len())));
    }
    let srm_result = srm(&units, &weights, o.srm_threshold)?;
    let mut rows = Vec::new();
    for s in specs {
        let y = numeric(&s.y)?;
        let x = match &s.x {
            Some(c) => Some((c.as_str(), numeric(c)?)),
            None => None,
        };
        let moments = arm_moments(&codes, k, (&s.y, y), x)?;
        let opts = Options { metric: s.metric, method: o.method, relative: o.relative, alpha: o.alpha, tuning: o.tuning, cuped: s.cuped };
        for a in (0..k).filter(|&a| a != control) {
            let comparison = compare(&moments[control], &moments[a], &opts)
                .map_err(|e| Error::data(format!("metric '{}', arm '{}': {e}", s.name, names[a])))?;
            rows.push(Row { metric: s.name.clone(), arm: names[a].clone(), control_arm: names[control].clone(), pvalue_adjusted: f64::NAN, comparison });
        }
    }
    let p: Vec<f64> = rows.iter().map(|r| r.comparison.pvalue).collect();
    let adj = adjust(&p, o.correction)?;
    for (r, q) in rows.iter_mut().zip(adj) {
        r.pvalue_adjusted = q;
        if o.method != Method::Bayesian && r.comparison.pvalue < o.alpha && q >= o.alpha {
            r.comparison.decision = "keep collecting: not significant after correction for multiple comparisons".into();
        }
    }
    let control_arm = names[control].clone();
    Ok(Analysis { arms: names, units, control_arm, correction: o.correction.name().into(), srm: srm_result, rows })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, ArrayRef, Float64Array, StringArray};
    use arrow_schema::Field;
    use std::sync::Arc;

    #[test]
    fn arms_are_grouped_and_compared() {
        let arm = StringArray::from(vec!["b", "control", "b", "control", "b", "control"]);
        let y = Float64Array::from(vec![2.0, 1.0, 3.0, 1.5, 4.0, 0.5]);
        let schema = Arc::new(Schema::new(vec![Field::new("arm", arm.data_type().clone(), false), Field::new("y", y.data_type().clone(), false)]));
        let b = RecordBatch::try_new(schema.clone(), vec![Arc::new(arm) as ArrayRef, Arc::new(y) as ArrayRef]).unwrap();
        let spec = MetricSpec { name: "y".into(), metric: Metric::Mean, y: "y".into(), x: None, cuped: false };
        let o = AnalyzeOptions { control: None, weights: None, srm_threshold: 0.001, correction: Correction::Holm, method: Method::Fixed, relative: false, alpha: 0.05, tuning: 5000.0 };
        let a = analyze(&[b.clone(), b], &schema, "arm", &[spec], &o).unwrap();
        assert_eq!(a.arms, vec!["b", "control"]);
        assert_eq!(a.control_arm, "control");
        assert_eq!(a.rows.len(), 1);
        assert!((a.rows[0].comparison.effect - 2.0).abs() < 1e-12);
    }
}
