//! A drift report as one self-contained HTML page: a summary, then one card per column sorted by
//! effect size (largest first), each with its numbers and a reference-vs-current histogram drawn as
//! inline SVG. No script, no style sheet or font from the network.

use std::fmt::Write;

use super::profile::{ColumnReport, DriftReport, Histogram};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn num(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v != 0.0 && v.abs() < 1e-3 {
        format!("{v:.2e}")
    } else {
        format!("{v:.4}")
    }
}

fn svg(h: &Histogram) -> String {
    let n = h.labels.len();
    if n == 0 {
        return "<p class=\"muted\">no histogram (no values to compare)</p>".into();
    }
    let (w, ht, pad) = (560.0, 160.0, 24.0);
    let top = h.reference.iter().chain(&h.current).cloned().fold(0.0, f64::max).max(1e-12);
    let slot = (w - 2.0 * pad) / n as f64;
    let bar = (slot * 0.4).max(1.0);
    let mut s = String::new();
    let _ = write!(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" role=\"img\">", ht + 30.0);
    let _ = write!(s, "<line x1=\"{pad}\" y1=\"{ht}\" x2=\"{}\" y2=\"{ht}\" stroke=\"#888\"/>", w - pad);
    for i in 0..n {
        let x = pad + slot * i as f64;
        let (r, c) = (h.reference[i], h.current[i]);
        let hr = r / top * (ht - 10.0);
        let hc = c / top * (ht - 10.0);
        let label = esc(&h.labels[i]);
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{hr:.1}\" fill=\"#4c78a8\"><title>{label}: reference {:.2}%</title></rect>",
            x + slot * 0.1,
            ht - hr,
            r * 100.0
        );
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{hc:.1}\" fill=\"#f58518\"><title>{label}: current {:.2}%</title></rect>",
            x + slot * 0.1 + bar,
            ht - hc,
            c * 100.0
        );
    }
    let first = esc(&h.labels[0]);
    let last = esc(&h.labels[n - 1]);
    let _ = write!(s, "<text x=\"{pad}\" y=\"{}\" font-size=\"10\">{first}</text>", ht + 14.0);
    let _ = write!(s, "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{last}</text>", w - pad, ht + 26.0);
    s.push_str("</svg>");
    s
}

fn card(c: &ColumnReport) -> String {
    let mut s = String::new();
    let badge = if c.drift { "<span class=\"bad\">drift</span>" } else { "<span class=\"ok\">no drift</span>" };
    let _ = write!(s, "<section><h2>{} <small>{} · {}</small> {badge}</h2>", esc(&c.column), esc(&c.kind), esc(&c.test));
    if c.status != "ok" {
        let _ = write!(s, "<p class=\"bad\">status: {}</p>", esc(&c.status));
    }
    let _ = write!(
        s,
        "<table><tr><th>statistic</th><th>p-value</th><th>corrected</th><th>effect (PSI)</th><th>n ref</th>\
         <th>n cur</th><th>missing ref → cur</th></tr><tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td>{} → {}</td></tr></table>",
        num(c.statistic),
        num(c.pvalue),
        num(c.pvalue_corrected),
        num(c.effect_size),
        c.n_reference,
        c.n_current,
        num(c.null_share_reference),
        num(c.null_share_current)
    );
    if c.n_unseen > 0 {
        let names: Vec<String> = c.unseen_categories.iter().map(|k| esc(k)).collect();
        let _ = write!(s, "<p>{} rows with unseen categories: {}</p>", c.n_unseen, names.join(", "));
    }
    if c.n_inf_current > 0 {
        let _ = write!(s, "<p>{} infinite values in current data</p>", c.n_inf_current);
    }
    s.push_str(&svg(&c.histogram));
    s.push_str("</section>");
    s
}

/// The report as a standalone HTML document.
pub fn render(report: &DriftReport) -> String {
    let mut order: Vec<&ColumnReport> = report.columns.iter().collect();
    order.sort_by(|a, b| {
        let (x, y) = (a.effect_size, b.effect_size);
        match (x.is_nan(), y.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Less, // problems (no effect computed) first
            (false, true) => std::cmp::Ordering::Greater,
            _ => y.total_cmp(&x),
        }
    });
    let mut s = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>ferrox drift report</title><style>\
         body{font-family:sans-serif;margin:2em;color:#222}section{border:1px solid #ddd;border-radius:6px;\
         padding:0.6em 1em;margin:1em 0}h2{font-size:1.1em}small{color:#777;font-weight:normal}\
         .bad{color:#b00020;font-weight:bold}.ok{color:#2e7d32}.muted{color:#777}table{border-collapse:collapse}\
         td,th{padding:2px 10px;text-align:right;border-bottom:1px solid #eee}.key span{display:inline-block;\
         width:12px;height:12px;margin:0 4px 0 12px}</style></head><body>",
    );
    let _ = write!(
        s,
        "<h1>Drift report</h1><p>{} of {} columns drifted ({:.1}%): dataset drift <b>{}</b>. \
         Correction: {}, alpha {}.</p>",
        report.n_drifted,
        report.columns.len(),
        report.share_drifted * 100.0,
        if report.dataset_drift { "yes" } else { "no" },
        report.options.correction.name(),
        report.options.alpha
    );
    if !report.extra_columns.is_empty() {
        let names: Vec<String> = report.extra_columns.iter().map(|n| esc(n)).collect();
        let _ = write!(s, "<p>Columns only in current data: {}</p>", names.join(", "));
    }
    s.push_str(
        "<p class=\"key\"><span style=\"background:#4c78a8\"></span>reference<span style=\"background:#f58518\"></span>current</p>",
    );
    for c in order {
        s.push_str(&card(c));
    }
    s.push_str("</body></html>\n");
    s
}
