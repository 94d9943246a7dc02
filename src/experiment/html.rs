//! An experiment report as one self-contained HTML page: a table of the comparisons and an inline SVG
//! plot of each effect with its interval against zero. No script, style sheet or font from the network.

use std::fmt::Write;

use super::compare::Comparison;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn num(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v.is_infinite() {
        "∞".into()
    } else if v != 0.0 && v.abs() < 1e-3 {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

/// The interval plot: one row per (label, comparison), a dashed line at zero.
fn svg(rows: &[(String, &Comparison)]) -> String {
    let (w, row_h, left, right) = (720.0, 28.0, 220.0, 30.0);
    let h = row_h * rows.len() as f64 + 40.0;
    let finite = |v: f64| if v.is_finite() { Some(v) } else { None };
    let mut lo = 0.0f64;
    let mut hi = 0.0f64;
    for (_, c) in rows {
        for v in [c.ci_low, c.ci_high, c.effect].into_iter().filter_map(finite) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if hi - lo <= 0.0 {
        hi = lo + 1.0;
    }
    let pad = 0.05 * (hi - lo);
    let (lo, hi) = (lo - pad, hi + pad);
    let x = |v: f64| left + (v - lo) / (hi - lo) * (w - left - right);
    let mut s = String::new();
    let _ = write!(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"effects with intervals\">");
    let _ = write!(s, "<line x1=\"{0:.1}\" y1=\"10\" x2=\"{0:.1}\" y2=\"{1:.1}\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>", x(0.0), h - 25.0);
    for (i, (label, c)) in rows.iter().enumerate() {
        let y = 25.0 + row_h * i as f64;
        let color = if c.decision.starts_with("ship") {
            "#1a7f37"
        } else if c.decision.starts_with("roll") {
            "#cf222e"
        } else {
            "#57606a"
        };
        let _ = write!(s, "<text x=\"8\" y=\"{:.1}\" font-size=\"12\">{}</text>", y + 4.0, esc(label));
        if let (Some(a), Some(b)) = (finite(c.ci_low), finite(c.ci_high)) {
            let _ = write!(s, "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{color}\" stroke-width=\"3\"/>", x(a), x(b));
        }
        if let Some(e) = finite(c.effect) {
            let _ = write!(s, "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"{color}\"/>", x(e));
        }
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#57606a\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#57606a\" text-anchor=\"end\">{}</text>",
        left,
        h - 8.0,
        num(lo),
        w - right,
        h - 8.0,
        num(hi)
    );
    s.push_str("</svg>");
    s
}

/// The page: `title`, optional notes (already plain text, e.g. the SRM line), then the rows.
pub fn page(title: &str, notes: &[String], rows: &[(String, &Comparison)]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>body{{font-family:system-ui,sans-serif;margin:2em;color:#1f2328}}table{{border-collapse:collapse}}td,th{{padding:4px 10px;border-bottom:1px solid #d0d7de;text-align:right}}td:first-child,th:first-child,td:last-child{{text-align:left}}</style></head><body><h1>{t}</h1>",
        t = esc(title)
    );
    for n in notes {
        let _ = write!(s, "<p>{}</p>", esc(n));
    }
    s.push_str(&svg(rows));
    s.push_str("<table><tr><th>comparison</th><th>metric</th><th>method</th><th>n control</th><th>n treatment</th><th>control</th><th>treatment</th><th>effect</th><th>interval</th><th>p-value</th><th>chance to win</th><th>decision</th></tr>");
    for (label, c) in rows {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}{}</td><td>{:?}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>[{}, {}]</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(label),
            c.metric.name(),
            if c.relative { " (relative)" } else { "" },
            c.method,
            c.n_control,
            c.n_treatment,
            num(c.control),
            num(c.treatment),
            num(c.effect),
            num(c.ci_low),
            num(c.ci_high),
            num(c.pvalue),
            num(c.chance_to_win),
            esc(&c.decision)
        );
    }
    s.push_str("</table></body></html>");
    s
}
