//! Two-sample tests with the statistics, p-values and method choices of scipy.stats: `ks_2samp`,
//! `cramervonmises_2samp`, `mannwhitneyu`, `anderson_ksamp` (midrank and right variants) and
//! `chi2_contingency`. Samples come in sorted (see [`sorted_sample`]); the rank tests walk the merge of
//! the sorted samples once, so a reference profile that keeps its values sorted pays only for sorting
//! the current data.

use std::collections::HashMap;

use super::special::{binom, chi2_sf, cvm_cdf_inf, kolmogn_sf, norm_sf};
use crate::error::{Error, Result};

/// The alternative hypothesis, as scipy spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Alternative {
    /// "two-sided"
    TwoSided,
    /// "less"
    Less,
    /// "greater"
    Greater,
}

impl Alternative {
    /// Parses "two-sided" / "less" / "greater" (first letter is enough, as in scipy).
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().chars().next() {
            Some('t') => Ok(Alternative::TwoSided),
            Some('l') => Ok(Alternative::Less),
            Some('g') => Ok(Alternative::Greater),
            _ => Err(Error::param(format!(
                "alternative must be 'two-sided', 'less' or 'greater', got '{s}'"
            ))),
        }
    }
}

/// Checks a sample is usable (non-empty, no NaN) and returns a sorted copy.
pub fn sorted_sample(name: &str, values: &[f64]) -> Result<Vec<f64>> {
    check_sample(name, values)?;
    let mut v = values.to_vec();
    v.sort_unstable_by(|a, b| a.total_cmp(b));
    Ok(v)
}

/// Rejects an empty sample or one holding NaN, naming it.
pub fn check_sample(name: &str, values: &[f64]) -> Result<()> {
    if values.is_empty() {
        return Err(Error::data(format!("sample '{name}' is empty: a two-sample test needs at least one value")));
    }
    let nan = values.iter().filter(|v| v.is_nan()).count();
    if nan > 0 {
        return Err(Error::data(format!(
            "sample '{name}' holds {nan} NaN value(s); drop them first (nan_policy='omit')"
        )));
    }
    Ok(())
}

/// Walks the distinct values of two sorted samples in order, giving (value, count in a, count in b).
fn merged_groups(a: &[f64], b: &[f64], mut f: impl FnMut(f64, usize, usize)) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let v = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => {
                if x <= y {
                    x
                } else {
                    y
                }
            }
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => unreachable!(),
        };
        let (i0, j0) = (i, j);
        while i < a.len() && a[i] == v {
            i += 1;
        }
        while j < b.len() && b[j] == v {
            j += 1;
        }
        f(v, i - i0, j - j0);
    }
}

/// The KS method, as scipy's `method` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KsMethod {
    /// Exact when both samples have at most 10 000 values, asymptotic beyond.
    Auto,
    /// The exact distribution (falls back to asymptotic when it cannot be computed).
    Exact,
    /// Smirnov's asymptotic distribution.
    Asymp,
}

impl KsMethod {
    /// Parses "auto" / "exact" / "asymp".
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(KsMethod::Auto),
            "exact" => Ok(KsMethod::Exact),
            "asymp" => Ok(KsMethod::Asymp),
            _ => Err(Error::param(format!("method must be 'auto', 'exact' or 'asymp', got '{s}'"))),
        }
    }
}

/// The outcome of [`ks_2samp`].
#[derive(Clone, Debug, PartialEq)]
pub struct KsResult {
    /// D (rounded to a multiple of 1/lcm(n1, n2) when the exact method ran, as scipy does).
    pub statistic: f64,
    /// The p-value.
    pub pvalue: f64,
    /// The value where the ECDFs are furthest apart.
    pub location: f64,
    /// +1 when the first ECDF is above the second there, -1 otherwise.
    pub sign: i8,
    /// Whether the exact distribution gave the p-value.
    pub exact: bool,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn prob_outside_square(n: u64, h: u64) -> f64 {
    let mut p = 0.0;
    let mut k = (n / h) as i64;
    let (nf, hf) = (n as f64, h as f64);
    while k >= 0 {
        let kf = k as f64;
        let mut p1 = 1.0;
        for j in 0..h {
            let jf = j as f64;
            p1 = (nf - kf * hf - jf) * p1 / (nf + kf * hf + jf + 1.0);
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

fn outer_prob_inside(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (mg, ng) = ((m / g) as i64, (n / g) as i64);
    let (m, n, h) = (m as i64, n as i64, h as i64);
    let ceil_div = |a: i64, b: i64| (a as f64 / b as f64).ceil() as i64;
    let floor_div = |a: i64, b: i64| (a as f64 / b as f64).floor() as i64;
    let mut minj = 0i64;
    let mut maxj = ceil_div(h, mg).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1) as usize;
    let mut a = vec![1.0f64; len_a];
    for v in a.iter_mut().take(maxj as usize) {
        *v = 0.0;
    }
    for i in 1..=m {
        let (lastminj, lastlen) = (minj, curlen);
        minj = (floor_div(ng * i - h, mg) + 1).max(0).min(n);
        maxj = ceil_div(ng * i + h, mg).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        let fi = i as f64;
        for jj in 0..(maxj - minj) {
            let j = (jj + minj) as f64;
            val = (a[(jj + minj - lastminj) as usize] * fi + val * j) / (fi + j);
            a[jj as usize] = val;
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            for v in a.iter_mut().skip(curlen as usize).take((lastlen - curlen) as usize) {
                *v = 1.0;
            }
        }
    }
    a[(maxj - minj - 1) as usize]
}

fn count_paths_outside(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (mg, ng) = (m / g, n / g);
    let (mi, hi) = (mg as i64, h as i64);
    // Python floor division of (mg - h) by mg.
    let lxj = n as i64 + (mi - hi).div_euclid(mi);
    if lxj <= 0 {
        return binom((m + n) as f64, n as f64);
    }
    let lxj = lxj as usize;
    let xj: Vec<i64> = (0..lxj as i64).map(|j| (hi + mi * j + ng as i64 - 1).div_euclid(ng as i64)).collect();
    let mut b = vec![0.0f64; lxj];
    b[0] = 1.0;
    for j in 1..lxj {
        let mut bj = binom((xj[j] + j as i64) as f64, j as f64);
        for i in 0..j {
            let c = binom((xj[j] - xj[i] + (j - i) as i64) as f64, (j - i) as f64);
            bj -= c * b[i];
        }
        b[j] = bj;
    }
    let mut num = 0.0;
    for j in 0..lxj {
        let c = binom(((m as i64 - xj[j]) + (n as i64 - j as i64)) as f64, (n as i64 - j as i64) as f64);
        num += b[j] * c;
    }
    num
}

/// The exact p-value, or None where it cannot be computed in floating point (scipy then goes asymptotic).
fn exact_2samp(n1: u64, n2: u64, g: u64, d: f64, alt: Alternative) -> (Option<f64>, f64) {
    let lcm = (n1 / g) * n2;
    let h = (d * lcm as f64).round_ties_even() as u64;
    let d = h as f64 / lcm as f64;
    if h == 0 {
        return (Some(1.0), d);
    }
    let prob = match alt {
        Alternative::TwoSided if n1 == n2 => prob_outside_square(n1, h),
        Alternative::TwoSided => outer_prob_inside(n1, n2, g, h),
        _ if n1 == n2 => {
            let mut p = 1.0;
            for j in 0..h {
                let jf = j as f64;
                p *= (n1 as f64 - jf) / (n1 as f64 + jf + 1.0);
            }
            p
        }
        _ => {
            let num = count_paths_outside(n1, n2, g, h);
            let total = binom((n1 + n2) as f64, n1 as f64);
            if !num.is_finite() || num > total || total.is_infinite() {
                return (None, d);
            }
            num / total
        }
    };
    if !prob.is_finite() || !(0.0..=1.0).contains(&prob) {
        return (None, d);
    }
    (Some(prob), d)
}

/// The ECDF gap of two sorted samples, optionally weighted (cumulative weights divided by totals),
/// as ks_2samp defines it: (largest F1 - F2, its location, largest F2 - F1 clipped at 0, its location).
fn ecdf_extremes(a: &[f64], b: &[f64], wa: Option<&[f64]>) -> (f64, f64, f64, f64) {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let total_a: f64 = wa.map(|w| w.iter().sum()).unwrap_or(n1);
    let (mut ca, mut cb) = (0usize, 0usize);
    let mut wsum = 0.0;
    // Best value among values present in a, and among values present only in b (scipy's argmax over
    // concatenate([a, b]) prefers the first occurrence: a's values first).
    let (mut max_a, mut max_a_loc, mut max_b, mut max_b_loc) = (f64::NEG_INFINITY, f64::NAN, f64::NEG_INFINITY, f64::NAN);
    let (mut min_a, mut min_a_loc, mut min_b, mut min_b_loc) = (f64::INFINITY, f64::NAN, f64::INFINITY, f64::NAN);
    merged_groups(a, b, |v, ka, kb| {
        if let Some(w) = wa {
            for x in &w[ca..ca + ka] {
                wsum += x;
            }
        }
        ca += ka;
        cb += kb;
        let f1 = if wa.is_some() { wsum / total_a } else { ca as f64 / n1 };
        let diff = f1 - cb as f64 / n2;
        if ka > 0 {
            if diff > max_a {
                (max_a, max_a_loc) = (diff, v);
            }
            if diff < min_a {
                (min_a, min_a_loc) = (diff, v);
            }
        } else {
            if diff > max_b {
                (max_b, max_b_loc) = (diff, v);
            }
            if diff < min_b {
                (min_b, min_b_loc) = (diff, v);
            }
        }
    });
    // b holds values of b; a value in both counts as "in a" (it occurs first in the concatenation)
    let (max_s, max_loc) = if max_a >= max_b { (max_a, max_a_loc) } else { (max_b, max_b_loc) };
    let (min_s, min_loc) = if min_a <= min_b { (min_a, min_a_loc) } else { (min_b, min_b_loc) };
    (max_s, max_loc, (-min_s).clamp(0.0, 1.0), min_loc)
}

/// [`ecdf_extremes`] for unweighted samples, differences formed in floating point exactly as scipy
/// forms them (i/n1 − j/n2), so ties break the same way. Candidates are ranked by the exact integer
/// difference i·n2 − j·n1 (distinct values differ by far more than a rounding error once divided by
/// n1·n2); on an exact tie the float difference decides, and the first of equal candidates wins, as
/// numpy's argmax would.
fn ecdf_extremes_counts(a: &[f64], b: &[f64]) -> (f64, f64, f64, f64) {
    // i·n2 fits in i64 (the fast path) unless both samples hold billions of values.
    let best: [(f64, f64); 4] = if (a.len() as u128) * (b.len() as u128) < (1u128 << 62) {
        ecdf_walk::<i64>(a, b).map(|c| (c.float, c.value))
    } else {
        ecdf_walk::<i128>(a, b).map(|c| (c.float, c.value))
    };
    let [max_a, min_a, max_b, min_b] = best;
    let mx = if max_a.0 >= max_b.0 { max_a } else { max_b };
    let mn = if min_a.0 <= min_b.0 { min_a } else { min_b };
    (mx.0, mx.1, (-mn.0).clamp(0.0, 1.0), mn.1)
}

/// The exact integer ECDF difference i·n2 − j·n1, in a type wide enough for the sample sizes.
trait ExactDiff: Copy + Ord {
    const LOWEST: Self;
    const HIGHEST: Self;
    fn diff(i: usize, n2: usize, j: usize, n1: usize) -> Self;
}

impl ExactDiff for i64 {
    const LOWEST: Self = i64::MIN;
    const HIGHEST: Self = i64::MAX;
    #[inline(always)]
    fn diff(i: usize, n2: usize, j: usize, n1: usize) -> Self {
        i as i64 * n2 as i64 - j as i64 * n1 as i64
    }
}

impl ExactDiff for i128 {
    const LOWEST: Self = i128::MIN;
    const HIGHEST: Self = i128::MAX;
    #[inline(always)]
    fn diff(i: usize, n2: usize, j: usize, n1: usize) -> Self {
        i as i128 * n2 as i128 - j as i128 * n1 as i128
    }
}

/// A candidate extreme: exact difference, float difference, value.
#[derive(Clone, Copy)]
struct Candidate<T> {
    exact: T,
    float: f64,
    value: f64,
}

/// Per walk: [max, min] over groups holding a value of `a`, then [max, min] over groups of `b` only.
type Extremes<T> = [Candidate<T>; 4];

fn no_extremes<T: ExactDiff>() -> Extremes<T> {
    let mx = Candidate { exact: T::LOWEST, float: f64::NEG_INFINITY, value: f64::NAN };
    let mn = Candidate { exact: T::HIGHEST, float: f64::INFINITY, value: f64::NAN };
    [mx, mn, mx, mn]
}

/// Whether candidate `c` beats `best` in slot `q` (even slots keep maxima, odd ones minima); ties go
/// to `best`, the earlier one.
#[inline(always)]
fn beats<T: ExactDiff>(q: usize, c: &Candidate<T>, best: &Candidate<T>) -> bool {
    if q % 2 == 0 {
        c.exact > best.exact || (c.exact == best.exact && c.float > best.float)
    } else {
        c.exact < best.exact || (c.exact == best.exact && c.float < best.float)
    }
}

/// Records a group end that reached (or passed) a slot's current extreme; rare after the first
/// steps, so the float difference (two divisions) is formed only here.
#[cold]
#[inline(never)]
fn record<T: ExactDiff>(best: &mut Extremes<T>, off: usize, d: T, i: usize, j: usize, n1: usize, n2: usize, v: f64) {
    let c = Candidate { exact: d, float: i as f64 / n1 as f64 - j as f64 / n2 as f64, value: v };
    for q in [off, off + 1] {
        if beats(q, &c, &best[q]) {
            best[q] = c;
        }
    }
}

/// Number of `a` values among the first `k` of the merge of sorted `a` and `b` (on ties `a` first).
fn merge_split(a: &[f64], b: &[f64], k: usize) -> usize {
    // The largest i in [lo, hi] with a[i-1] <= b[k-i] (a[-1] = -inf, b[len] = +inf).
    let (mut lo, mut hi) = (k.saturating_sub(b.len()), k.min(a.len()));
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if a[mid - 1] <= b[k - mid] {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// One cursor over the merge: `i` values of `a` and `j` of `b` taken, the next of each (`x`, `y`;
/// +inf past the end), whether the open group of equal values holds a value of `a`.
#[derive(Clone, Copy)]
struct Cursor<T> {
    i: usize,
    j: usize,
    x: f64,
    y: f64,
    has_a: bool,
    best: Extremes<T>,
}

impl<T: ExactDiff> Cursor<T> {
    /// A cursor at merged position `k`.
    fn at(a: &[f64], b: &[f64], k: usize) -> Self {
        let i = merge_split(a, b, k);
        let j = k - i;
        let (x, y) = (get_or_inf(a, i), get_or_inf(b, j));
        let next = x.min(y);
        // The open group holds a value of `a` when the last `a` taken equals the next value.
        let has_a = i > 0 && k < a.len() + b.len() && a[i - 1] == next;
        Cursor { i, j, x, y, has_a, best: no_extremes() }
    }

    /// Takes merged position `k` (ties: `a` first) with no branch on which sample gives the value
    /// (random interleavings would mispredict half the time) and, at the end of a group of equal
    /// values, checks the ECDF difference there.
    #[inline(always)]
    fn step(&mut self, a: &[f64], b: &[f64], k: usize) {
        let (n1, n2) = (a.len(), b.len());
        let ta = (self.i < n1) & ((self.j >= n2) | (self.x <= self.y));
        let mask = (ta as u64).wrapping_neg();
        let v = f64::from_bits((self.x.to_bits() & mask) | (self.y.to_bits() & !mask));
        self.i += ta as usize;
        self.j += (!ta) as usize;
        self.has_a |= ta;
        self.x = get_or_inf(a, self.i);
        self.y = get_or_inf(b, self.j);
        let next = self.x.min(self.y);
        if (next != v) | (k + 1 == n1 + n2) {
            let (i, j) = (self.i, self.j);
            let d = T::diff(i, n2, j, n1);
            let off = 2 * (!self.has_a) as usize;
            if d >= self.best[off].exact || d <= self.best[off + 1].exact {
                record(&mut self.best, off, d, i, j, n1, n2, v);
            }
            self.has_a = false;
        }
    }
}

/// Reads past the end give +inf (no padded copies: they cost page faults on big samples).
#[inline(always)]
fn get_or_inf(s: &[f64], k: usize) -> f64 {
    if k < s.len() {
        s[k]
    } else {
        f64::INFINITY
    }
}

/// The walk over the merged samples, split into four equal stretches (each cursor placed by a binary
/// search) walked in lock-step: each step waits on its own comparison only, so four independent
/// chains keep the core busy where one would stall on load-compare-advance. The stretches' extremes
/// combine in order, earlier ones winning ties, which is what one walk would keep.
fn ecdf_walk<T: ExactDiff>(a: &[f64], b: &[f64]) -> Extremes<T> {
    if let Some(best) = ecdf_walk_distinct::<T>(a, b) {
        return best;
    }
    let n = a.len() + b.len();
    let len = n / 4;
    let starts = [0, len, 2 * len, 3 * len];
    let [mut c0, mut c1, mut c2, mut c3] = starts.map(|k| Cursor::<T>::at(a, b, k));
    for t in 0..len {
        c0.step(a, b, t);
        c1.step(a, b, len + t);
        c2.step(a, b, 2 * len + t);
        c3.step(a, b, 3 * len + t);
    }
    for k in 4 * len..n {
        c3.step(a, b, k);
    }
    let mut best = c0.best;
    for c in [c1, c2, c3] {
        for q in 0..4 {
            if beats(q, &c.best[q], &best[q]) {
                best[q] = c.best[q];
            }
        }
    }
    best
}

/// A cursor of the merge that only records which sample each merged position came from.
/// (`i`, `j`, `x`, `y` as in [`Cursor`]; `tie` once two equal heads met).
struct TagCursor {
    i: usize,
    j: usize,
    x: f64,
    y: f64,
    tie: bool,
}

impl TagCursor {
    /// A cursor at merged position `k`.
    fn at(a: &[f64], b: &[f64], k: usize) -> Self {
        let i = merge_split(a, b, k);
        let j = k - i;
        TagCursor { i, j, x: get_or_inf(a, i), y: get_or_inf(b, j), tie: false }
    }

    /// Takes the next merged position, writing 1 to `tag` when it came from `a`.
    #[inline(always)]
    fn step(&mut self, a: &[f64], b: &[f64], tag: &mut u8) {
        let ta = (self.i < a.len()) & ((self.j >= b.len()) | (self.x <= self.y));
        self.tie |= self.x == self.y;
        *tag = ta as u8;
        self.i += ta as usize;
        self.j += (!ta) as usize;
        self.x = get_or_inf(a, self.i);
        self.y = get_or_inf(b, self.j);
    }
}

/// The walk when every value is distinct (no value repeats within or across the samples): each merged
/// position closes a group of its own. A merge records which sample each position came from (four
/// cursors in lock-step, no branch), then one scan forms the differences. None when a value repeats.
fn ecdf_walk_distinct<T: ExactDiff>(a: &[f64], b: &[f64]) -> Option<Extremes<T>> {
    let repeats = |s: &[f64]| s.windows(2).any(|w| w[0] == w[1]);
    if repeats(a) || repeats(b) {
        return None;
    }
    let (n1, n2) = (a.len(), b.len());
    let n = n1 + n2;
    let mut tags = vec![0u8; n];
    let len = n / 4;
    let [mut c0, mut c1, mut c2, mut c3] = [0, len, 2 * len, 3 * len].map(|k| TagCursor::at(a, b, k));
    {
        let (t0, rest) = tags.split_at_mut(len);
        let (t1, rest) = rest.split_at_mut(len);
        let (t2, t3) = rest.split_at_mut(len);
        for t in 0..len {
            c0.step(a, b, &mut t0[t]);
            c1.step(a, b, &mut t1[t]);
            c2.step(a, b, &mut t2[t]);
            c3.step(a, b, &mut t3[t]);
        }
        for tag in t3[len..].iter_mut() {
            c3.step(a, b, tag);
        }
    }
    if c0.tie | c1.tie | c2.tie | c3.tie {
        return None;
    }
    let mut best = no_extremes::<T>();
    let (mut i, mut j) = (0usize, 0usize);
    for &t in &tags {
        let ta = t as usize;
        i += ta;
        j += 1 - ta;
        let d = T::diff(i, n2, j, n1);
        let off = 2 * (1 - ta);
        if d >= best[off].exact || d <= best[off + 1].exact {
            let v = if ta == 1 { a[i - 1] } else { b[j - 1] };
            record(&mut best, off, d, i, j, n1, n2, v);
        }
    }
    Some(best)
}

/// `scipy.stats.ks_2samp` on sorted samples.
pub fn ks_2samp(a: &[f64], b: &[f64], alt: Alternative, method: KsMethod) -> Result<KsResult> {
    ks_2samp_weighted(a, None, a.len() as u64, b, alt, method)
}

/// [`ks_2samp`] where the first sample may be a weighted summary (a sketch) of `n1` values.
pub fn ks_2samp_weighted(
    a: &[f64],
    wa: Option<&[f64]>,
    n1: u64,
    b: &[f64],
    alt: Alternative,
    method: KsMethod,
) -> Result<KsResult> {
    check_sample("data1", a)?;
    check_sample("data2", b)?;
    ks_checked(a, wa, n1, b, alt, method)
}

/// [`ks_2samp_weighted`] where `b` is known to hold no NaN (current values just sorted by the sort
/// that dropped them): only `a` (a stored profile's values) is scanned for NaN.
pub(crate) fn ks_2samp_present(
    a: &[f64],
    wa: Option<&[f64]>,
    n1: u64,
    b: &[f64],
    alt: Alternative,
    method: KsMethod,
) -> Result<KsResult> {
    debug_assert!(!b.iter().any(|v| v.is_nan()));
    check_sample("data1", a)?;
    if b.is_empty() {
        check_sample("data2", b)?;
    }
    ks_checked(a, wa, n1, b, alt, method)
}

/// The KS test on samples already checked (non-empty, no NaN).
fn ks_checked(a: &[f64], wa: Option<&[f64]>, n1: u64, b: &[f64], alt: Alternative, method: KsMethod) -> Result<KsResult> {
    let n2 = b.len() as u64;
    let (max_s, max_loc, min_s, min_loc) = match wa {
        None => ecdf_extremes_counts(a, b),
        Some(_) => ecdf_extremes(a, b, wa),
    };
    let (mut d, location, sign) =
        if alt == Alternative::Less || (alt == Alternative::TwoSided && min_s > max_s) {
            (min_s, min_loc, -1i8)
        } else {
            (max_s, max_loc, 1i8)
        };
    let g = gcd(n1, n2);
    let (n1g, n2g) = (n1 / g, n2 / g);
    let mut exact = match method {
        KsMethod::Auto => n1.max(n2) <= 10_000 && wa.is_none(),
        KsMethod::Exact => (n1g as f64) < i32::MAX as f64 / n2g as f64 && wa.is_none(),
        KsMethod::Asymp => false,
    };
    let mut prob = f64::NAN;
    if exact {
        let (p, d_exact) = exact_2samp(n1, n2, g, d, alt);
        d = d_exact;
        match p {
            Some(p) => prob = p,
            None => exact = false,
        }
    }
    if !exact {
        let (m, n) = if n1 >= n2 { (n1 as f64, n2 as f64) } else { (n2 as f64, n1 as f64) };
        let en = m * n / (m + n);
        prob = match alt {
            Alternative::TwoSided => kolmogn_sf(en.round_ties_even() as u64, d),
            _ => {
                let z = en.sqrt() * d;
                let expt = -2.0 * z * z - 2.0 * z * (m + 2.0 * n) / (m * n * (m + n)).sqrt() / 3.0;
                expt.exp()
            }
        };
    }
    Ok(KsResult { statistic: d, pvalue: prob.clamp(0.0, 1.0), location, sign, exact })
}

/// Rank sums of two sorted samples: (sum of the first sample's average ranks, Σ(t³ - t) over tie
/// groups, whether any value is tied).
fn rank_sum(a: &[f64], b: &[f64]) -> (f64, f64, bool) {
    let mut r1 = 0.0;
    let mut tie = 0.0;
    let mut seen = 0usize;
    let mut any = false;
    merged_groups(a, b, |_, ka, kb| {
        let t = (ka + kb) as f64;
        let avg = seen as f64 + (t + 1.0) / 2.0;
        r1 += ka as f64 * avg;
        tie += t * t * t - t;
        any |= ka + kb > 1;
        seen += ka + kb;
    });
    (r1, tie, any)
}

/// Exact null distribution of U for samples without ties: counts of each U in 0..=n1*n2 (as floats,
/// exact in 128-bit integers while they fit).
fn mwu_counts(n1: usize, n2: usize) -> Vec<f64> {
    let (n1, n2) = (n1.min(n2), n1.max(n2));
    let maxu = n1 * n2;
    // Gaussian binomial [n1+n2 choose n1]_q = prod_{i=1..n1} (1 - q^(n2+i)) / (1 - q^i).
    let mut c = vec![0i128; maxu + 1];
    c[0] = 1;
    let mut ok = true;
    // Truncated power series modulo q^(maxu+1); after each full step the coefficients are those of
    // [n2+i choose i]_q, all positive.
    'outer: for i in 1..=n1 {
        let up = n2 + i;
        for k in (up..=maxu).rev() {
            match c[k].checked_sub(c[k - up]) {
                Some(v) => c[k] = v,
                None => {
                    ok = false;
                    break 'outer;
                }
            }
        }
        for k in i..=maxu {
            match c[k].checked_add(c[k - i]) {
                Some(v) => c[k] = v,
                None => {
                    ok = false;
                    break 'outer;
                }
            }
        }
    }
    if ok {
        return c.into_iter().map(|v| v as f64).collect();
    }
    // Beyond 128 bits: the same product in floating point.
    let mut c = vec![0.0f64; maxu + 1];
    c[0] = 1.0;
    for i in 1..=n1 {
        let up = n2 + i;
        for k in (up..=maxu).rev() {
            c[k] -= c[k - up];
        }
        for k in i..=maxu {
            c[k] += c[k - i];
        }
    }
    c
}

/// `scipy.stats.mannwhitneyu` on sorted samples: returns (U1, p-value).
pub fn mannwhitneyu(a: &[f64], b: &[f64], continuity: bool, alt: Alternative, method: &str) -> Result<(f64, f64)> {
    check_sample("x", a)?;
    check_sample("y", b)?;
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let (r1, tie, any_tie) = rank_sum(a, b);
    let u1 = r1 - n1 * (n1 + 1.0) / 2.0;
    let u2 = n1 * n2 - u1;
    let (u, f) = match alt {
        Alternative::Greater => (u1, 1.0),
        Alternative::Less => (u2, 1.0),
        Alternative::TwoSided => (u1.max(u2), 2.0),
    };
    let exact = match method {
        "auto" => !((a.len() > 8 && b.len() > 8) || any_tie),
        "exact" => true,
        "asymptotic" => false,
        _ => return Err(Error::param(format!("method must be 'auto', 'exact' or 'asymptotic', got '{method}'"))),
    };
    let p = if exact {
        let counts = mwu_counts(a.len(), b.len());
        let total: f64 = binom(n1 + n2, n1.min(n2));
        // sf(U) = P(U' >= U) = P(U' <= n1 n2 - U) by symmetry.
        let k = u.trunc() as i64;
        let kc = (n1 * n2) as i64 - k;
        let s: f64 = if kc < 0 { 0.0 } else { counts[..=(kc as usize).min(counts.len() - 1)].iter().sum() };
        s / total
    } else {
        let mu = n1 * n2 / 2.0;
        let n = n1 + n2;
        let s = (n1 * n2 / 12.0 * ((n + 1.0) - tie / (n * (n - 1.0)))).sqrt();
        let mut num = u - mu;
        if continuity {
            num -= 0.5;
        }
        let z = num / s;
        if z.is_nan() {
            return Err(Error::data(
                "mannwhitneyu: all values are identical, so the normal approximation is undefined",
            ));
        }
        norm_sf(z)
    };
    Ok((u1, (p * f).clamp(0.0, 1.0)))
}

/// `scipy.stats.cramervonmises_2samp` on sorted samples: (statistic T, p-value). `method` is
/// "auto" (exact when both samples have at most 20 values), "exact" or "asymptotic".
pub fn cramervonmises_2samp(a: &[f64], b: &[f64], method: &str) -> Result<(f64, f64)> {
    check_sample("x", a)?;
    check_sample("y", b)?;
    let (nx, ny) = (a.len(), b.len());
    if nx <= 1 || ny <= 1 {
        return Err(Error::data("cramervonmises_2samp needs at least two values in each sample"));
    }
    let exact = match method {
        "auto" => nx.max(ny) <= 20,
        "exact" => true,
        "asymptotic" => false,
        _ => return Err(Error::param(format!("method must be 'auto', 'exact' or 'asymptotic', got '{method}'"))),
    };
    // u = nx Σ (r_x(i) - i)² + ny Σ (r_y(j) - j)² with average ranks of the pooled sample.
    let (mut sx, mut sy) = (0.0, 0.0);
    let (mut ix, mut iy, mut seen) = (0usize, 0usize, 0usize);
    merged_groups(a, b, |_, ka, kb| {
        let t = (ka + kb) as f64;
        let r = seen as f64 + (t + 1.0) / 2.0;
        for _ in 0..ka {
            ix += 1;
            sx += (r - ix as f64).powi(2);
        }
        for _ in 0..kb {
            iy += 1;
            sy += (r - iy as f64).powi(2);
        }
        seen += ka + kb;
    });
    let (nxf, nyf) = (nx as f64, ny as f64);
    let u = nxf * sx + nyf * sy;
    let k = nxf * nyf;
    let nn = nxf + nyf;
    let t = u / (k * nn) - (4.0 * k - 1.0) / (6.0 * nn);
    let p = if exact {
        cvm_exact_pvalue(u, nx as u64, ny as u64)
    } else {
        let et = (1.0 + 1.0 / nn) / 6.0;
        let vt = (nn + 1.0) * (4.0 * k * nn - 3.0 * (nxf * nxf + nyf * nyf) - 2.0 * k) / (45.0 * nn * nn * 4.0 * k);
        let tn = 1.0 / 6.0 + (t - et) / (45.0 * vt).sqrt();
        if tn >= 0.003 {
            (1.0 - cvm_cdf_inf(tn)).max(0.0)
        } else {
            1.0
        }
    };
    Ok((t, p))
}

fn cvm_exact_pvalue(s: f64, m: u64, n: u64) -> f64 {
    let lcm = m / gcd(m, n) * n;
    let (a, b) = (lcm / m, lcm / n);
    let mn = (m * n) as f64;
    let zeta = ((lcm * lcm * (m + n)) as f64 * (6.0 * s - mn * (4.0 * mn - 1.0)) / (6.0 * mn * mn)).floor();
    // g[v]: frequency table (value -> number of lattice paths) at (u, v).
    let mut gs: Vec<HashMap<u64, u64>> = vec![HashMap::new(); m as usize + 1];
    gs[0].insert(0, 1);
    for u in 0..=n {
        let mut tmp: HashMap<u64, u64> = HashMap::new();
        for (v, g) in gs.iter_mut().enumerate() {
            for (val, f) in g.iter() {
                *tmp.entry(*val).or_insert(0) += f;
            }
            let res = (a as i64 * v as i64 - b as i64 * u as i64).pow(2) as u64;
            tmp = tmp.into_iter().map(|(val, f)| (val + res, f)).collect();
            *g = tmp.clone();
        }
    }
    let combos = binom((m + n) as f64, m as f64);
    let hits: u64 = gs[m as usize].iter().filter(|(v, _)| **v as f64 >= zeta).map(|(_, f)| *f).sum();
    hits as f64 / combos
}

/// `scipy.stats.anderson_ksamp` (midrank or right variant) on sorted samples: (statistic, p-value,
/// capped) where the p-value is interpolated from Scholz & Stephens' table and capped to
/// [0.001, 0.25] as scipy does (`capped` says whether it was).
pub fn anderson_ksamp(samples: &[&[f64]], midrank: bool) -> Result<(f64, f64, bool)> {
    let k = samples.len();
    if k < 2 {
        return Err(Error::data("anderson_ksamp needs at least two samples"));
    }
    for (i, s) in samples.iter().enumerate() {
        check_sample(&format!("samples[{i}]"), s)?;
    }
    let mut z: Vec<f64> = samples.iter().flat_map(|s| s.iter().copied()).collect();
    z.sort_unstable_by(|a, b| a.total_cmp(b));
    let nn = z.len();
    let mut zstar = z.clone();
    zstar.dedup();
    if zstar.len() < 2 {
        return Err(Error::data("anderson_ksamp needs more than one distinct observation"));
    }
    let nf = nn as f64;
    // per distinct value: count in the pool and index of its first occurrence.
    let mut lj = Vec::with_capacity(zstar.len());
    let mut left = Vec::with_capacity(zstar.len());
    let mut at = 0;
    for _ in &zstar {
        let v = z[at];
        let start = at;
        while at < nn && z[at] == v {
            at += 1;
        }
        left.push(start as f64);
        lj.push((at - start) as f64);
    }
    let mut a2 = 0.0;
    for s in samples {
        let ni = s.len() as f64;
        let mut pos = 0;
        let mut inner_sum = 0.0;
        let limit = if midrank { zstar.len() } else { zstar.len() - 1 };
        let mut bj_cum = 0.0;
        for j in 0..limit {
            let v = zstar[j];
            let start = pos;
            while pos < s.len() && s[pos] == v {
                pos += 1;
            }
            let fij = (pos - start) as f64;
            let mij_right = pos as f64;
            let inner = if midrank {
                let l = if nn == zstar.len() { 1.0 } else { lj[j] };
                let bj = left[j] + l / 2.0;
                let mij = mij_right - fij / 2.0;
                l / nf * (nf * mij - bj * ni).powi(2) / (bj * (nf - bj) - nf * l / 4.0)
            } else {
                bj_cum += lj[j];
                lj[j] / nf * (nf * mij_right - bj_cum * ni).powi(2) / (bj_cum * (nf - bj_cum))
            };
            inner_sum += inner;
        }
        a2 += inner_sum / ni;
    }
    if midrank {
        a2 *= (nf - 1.0) / nf;
    }

    let kf = k as f64;
    let hh: f64 = samples.iter().map(|s| 1.0 / s.len() as f64).sum();
    // hs_cs = cumsum(1 / (N-1, N-2, ..., 2)); h = hs_cs[-1] + 1; g = Σ hs_cs / (2, ..., N-1)
    let mut cs = 0.0;
    let mut g = 0.0;
    for (idx, d) in (2..nn).rev().enumerate() {
        cs += 1.0 / d as f64;
        g += cs / (idx + 2) as f64;
    }
    let h = cs + 1.0;
    let a = (4.0 * g - 6.0) * (kf - 1.0) + (10.0 - 6.0 * g) * hh;
    let b = (2.0 * g - 4.0) * kf * kf + 8.0 * h * kf + (2.0 * g - 14.0 * h - 4.0) * hh - 8.0 * h + 4.0 * g - 6.0;
    let c = (6.0 * h + 2.0 * g - 2.0) * kf * kf + (4.0 * h - 4.0 * g + 6.0) * kf + (2.0 * h - 6.0) * hh + 4.0 * h;
    let d = (2.0 * h + 6.0) * kf * kf - 4.0 * h * kf;
    let sigmasq = (a * nf.powi(3) + b * nf * nf + c * nf + d) / ((nf - 1.0) * (nf - 2.0) * (nf - 3.0));
    let m = kf - 1.0;
    let stat = (a2 - m) / sigmasq.sqrt();
    const B0: [f64; 7] = [0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085];
    const B1: [f64; 7] = [-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615];
    const B2: [f64; 7] = [-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154];
    const SIG: [f64; 7] = [0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001];
    let crit: Vec<f64> = (0..7).map(|i| B0[i] + B1[i] / m.sqrt() + B2[i] / m).collect();
    let cmin = crit.iter().cloned().fold(f64::INFINITY, f64::min);
    let cmax = crit.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if stat < cmin {
        return Ok((stat, 0.25, true));
    }
    if stat > cmax {
        return Ok((stat, 0.001, true));
    }
    let logs: Vec<f64> = SIG.iter().map(|s| s.ln()).collect();
    let coef = polyfit2(&crit, &logs);
    let p = (coef[0] * stat * stat + coef[1] * stat + coef[2]).exp();
    Ok((stat, p, false))
}

/// Least-squares quadratic through (x, y): coefficients highest power first (as numpy.polyfit).
fn polyfit2(x: &[f64], y: &[f64]) -> [f64; 3] {
    // Centre and scale x for conditioning, solve the 3x3 normal equations, map back.
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let scale = x.iter().map(|v| (v - mean).abs()).fold(0.0, f64::max).max(1e-300);
    let t: Vec<f64> = x.iter().map(|v| (v - mean) / scale).collect();
    let mut ata = [[0.0f64; 3]; 3];
    let mut aty = [0.0f64; 3];
    for (ti, yi) in t.iter().zip(y) {
        let row = [ti * ti, *ti, 1.0];
        for r in 0..3 {
            aty[r] += row[r] * yi;
            for c in 0..3 {
                ata[r][c] += row[r] * row[c];
            }
        }
    }
    // Gaussian elimination with partial pivoting.
    let mut m = [[0.0f64; 4]; 3];
    for r in 0..3 {
        m[r][..3].copy_from_slice(&ata[r]);
        m[r][3] = aty[r];
    }
    for col in 0..3 {
        let piv = (col..3).max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs())).unwrap_or(col);
        m.swap(col, piv);
        for r in 0..3 {
            if r != col {
                let f = m[r][col] / m[col][col];
                for c in col..4 {
                    m[r][c] -= f * m[col][c];
                }
            }
        }
    }
    let (p2, p1, p0) = (m[0][3] / m[0][0], m[1][3] / m[1][1], m[2][3] / m[2][2]);
    // p2 t² + p1 t + p0 with t = (x - mean) / scale
    let a = p2 / (scale * scale);
    let b = p1 / scale - 2.0 * p2 * mean / (scale * scale);
    let c = p0 - p1 * mean / scale + p2 * mean * mean / (scale * scale);
    [a, b, c]
}

/// The outcome of [`chi2_contingency`].
#[derive(Clone, Debug, PartialEq)]
pub struct Chi2Result {
    /// Pearson's chi-square statistic (Yates-corrected for one degree of freedom when asked).
    pub statistic: f64,
    /// The p-value.
    pub pvalue: f64,
    /// Degrees of freedom.
    pub dof: usize,
    /// Expected frequencies, row-major, same shape as the table.
    pub expected: Vec<f64>,
}

/// `scipy.stats.chi2_contingency` (Pearson) on a row-major `rows` × `cols` table of counts.
pub fn chi2_contingency(table: &[f64], rows: usize, cols: usize, correction: bool) -> Result<Chi2Result> {
    if rows * cols != table.len() || rows == 0 || cols == 0 {
        return Err(Error::data(format!("observed must be a non-empty 2-D table, got {rows} x {cols}")));
    }
    if table.iter().any(|v| !v.is_finite() || *v < 0.0) {
        return Err(Error::data("all values in observed must be finite and non-negative"));
    }
    let mut rs = vec![0.0; rows];
    let mut cs = vec![0.0; cols];
    for r in 0..rows {
        for c in 0..cols {
            rs[r] += table[r * cols + c];
            cs[c] += table[r * cols + c];
        }
    }
    let total: f64 = rs.iter().sum();
    let mut expected = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            expected[r * cols + c] = rs[r] * cs[c] / total;
        }
    }
    if let Some(i) = expected.iter().position(|&e| e == 0.0) {
        return Err(Error::data(format!(
            "the internally computed table of expected frequencies has a zero element at {:?}: a row or \
             column of observed sums to zero",
            (i / cols, i % cols)
        )));
    }
    let dof = (rows - 1) * (cols - 1);
    if dof == 0 {
        return Ok(Chi2Result { statistic: 0.0, pvalue: 1.0, dof, expected });
    }
    let mut stat = 0.0;
    for (o, e) in table.iter().zip(&expected) {
        let mut o = *o;
        if dof == 1 && correction {
            let diff = e - o;
            let mag = diff.abs().min(0.5);
            o += mag * diff.signum() * if diff == 0.0 { 0.0 } else { 1.0 };
        }
        stat += (o - e) * (o - e) / e;
    }
    Ok(Chi2Result { statistic: stat, pvalue: chi2_sf(stat, dof as f64), dof, expected })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_cursor_and_distinct_walks_equal_one_cursor_walk() {
        let mut rng = crate::data::sample::SplitMix64::new(11);
        let mut distinct_seen = 0;
        for case in 0..400 {
            let n1 = 1 + (rng.next_f64() * 60.0) as usize;
            let n2 = 1 + (rng.next_f64() * 60.0) as usize;
            // From heavy ties (2 distinct values) to none.
            let levels = if case % 4 == 3 { 1e9 } else { 1.0 + (rng.next_f64() * 8.0).floor() };
            let mut draw = |n: usize| {
                let mut v: Vec<f64> = (0..n).map(|_| (rng.next_f64() * levels).floor()).collect();
                v.sort_by(|x, y| x.total_cmp(y));
                v
            };
            let (a, b) = (draw(n1), draw(n2));
            let mut one = Cursor::<i64>::at(&a, &b, 0);
            assert_eq!((one.i, one.j, one.has_a), (0, 0, false));
            for k in 0..n1 + n2 {
                one.step(&a, &b, k);
            }
            let four = ecdf_walk::<i64>(&a, &b);
            if let Some(distinct) = ecdf_walk_distinct::<i64>(&a, &b) {
                distinct_seen += 1;
                for q in 0..4 {
                    assert_eq!((distinct[q].exact, distinct[q].float.to_bits()), (one.best[q].exact, one.best[q].float.to_bits()));
                }
            }
            let wide = ecdf_walk::<i128>(&a, &b);
            for q in 0..4 {
                let bits = |c: &Candidate<i64>| (c.exact, c.float.to_bits(), c.value.to_bits());
                assert_eq!(bits(&one.best[q]), bits(&four[q]), "case {case} slot {q}: {a:?} {b:?}");
                assert_eq!((wide[q].float.to_bits(), wide[q].value.to_bits()), (four[q].float.to_bits(), four[q].value.to_bits()));
            }
        }
        assert!(distinct_seen >= 100, "{distinct_seen}");
        // Large samples: distinct values, then one value shared across the samples (grouped walk).
        let mut a: Vec<f64> = (0..5003).map(|_| rng.next_f64()).collect();
        let mut b: Vec<f64> = (0..4001).map(|_| rng.next_f64() * 1.1).collect();
        for shared in [false, true] {
            if shared {
                b[17] = a[2500];
            }
            a.sort_by(|x, y| x.total_cmp(y));
            b.sort_by(|x, y| x.total_cmp(y));
            assert_eq!(ecdf_walk_distinct::<i64>(&a, &b).is_some(), !shared);
            let mut one = Cursor::<i64>::at(&a, &b, 0);
            for k in 0..a.len() + b.len() {
                one.step(&a, &b, k);
            }
            let four = ecdf_walk::<i64>(&a, &b);
            for q in 0..4 {
                assert_eq!((one.best[q].exact, one.best[q].value.to_bits()), (four[q].exact, four[q].value.to_bits()));
            }
        }
    }

    #[test]
    fn ks_small_exact_known_value() {
        // scipy.stats.ks_2samp([1,2,3,4,5], [3,4,5,6,7,8]) -> D = 0.5, p = 0.41125541125541126
        let r = ks_2samp(&[1., 2., 3., 4., 5.], &[3., 4., 5., 6., 7., 8.], Alternative::TwoSided, KsMethod::Auto).unwrap();
        assert!((r.statistic - 0.5).abs() < 1e-12);
        assert!(r.exact);
    }

    #[test]
    fn fast_ecdf_walk_agrees_with_grouped_walk() {
        let mut rng = crate::data::sample::SplitMix64::new(11);
        for case in 0..300 {
            let (n1, n2) = (1 + (rng.next_u64() % 40) as usize, 1 + (rng.next_u64() % 40) as usize);
            let levels = 1 + (case % 7) as u64 * 3;
            let mut draw = |n: usize| {
                let mut v: Vec<f64> = (0..n)
                    .map(|_| match rng.next_u64() % 20 {
                        0 => f64::INFINITY,
                        1 => f64::NEG_INFINITY,
                        _ => (rng.next_u64() % levels) as f64,
                    })
                    .collect();
                v.sort_by(|a, b| a.total_cmp(b));
                v
            };
            let (a, b) = (draw(n1), draw(n2));
            let w = vec![1.0; n1];
            let slow = ecdf_extremes(&a, &b, Some(&w));
            let fast = ecdf_extremes_counts(&a, &b);
            assert!(slow.0 == fast.0 && slow.2 == fast.2, "{a:?} {b:?}");
            assert_eq!(slow.1.to_bits(), fast.1.to_bits(), "{a:?} {b:?}");
            assert_eq!(slow.3.to_bits(), fast.3.to_bits(), "{a:?} {b:?}");
        }
    }

    #[test]
    fn empty_and_nan_samples_are_named() {
        let e = ks_2samp(&[], &[1.0], Alternative::TwoSided, KsMethod::Auto).unwrap_err();
        assert!(e.to_string().contains("data1"), "{e}");
        let e = mannwhitneyu(&[1.0, f64::NAN], &[1.0], true, Alternative::TwoSided, "auto").unwrap_err();
        assert!(e.to_string().contains("NaN"), "{e}");
    }

    #[test]
    fn mwu_exact_distribution_sums_to_total() {
        let c = mwu_counts(4, 6);
        let s: f64 = c.iter().sum();
        assert_eq!(s, 210.0);
        assert_eq!(c[0], 1.0);
        assert_eq!(c[24], 1.0);
    }

    #[test]
    fn chi2_yates() {
        let r = chi2_contingency(&[10., 20., 30., 40.], 2, 2, true).unwrap();
        assert_eq!(r.dof, 1);
        assert!(r.statistic > 0.0 && r.pvalue < 1.0);
    }
}
