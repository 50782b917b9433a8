//! PromQL functions over evaluated arguments, for every step of a query at once.
//!
//! Semantics follow Prometheus 3.x `promql/functions.go` and `promql/quantile.go` (read for
//! behaviour, error and annotation texts; not copied): float samples only (native histograms
//! are out of scope, so the `histogram_*` functions that only read native histograms return
//! nothing). Annotation texts are those of `util/annotations/annotations.go`, without the
//! `(line:col)` position Prometheus appends (the parser gives no positions).
//!
//! Every function `promql-parser` 0.11 knows is implemented except `info`, `integral` and
//! `start_timestamp` (feature-flagged in Prometheus; they fail with "function … is not
//! supported"). `step()`, `range()`, `start()`, `end()` read the [`Steps`] they are called with.
//!
//! Contract with the engine (`NOTES-engine.md`): functions keep `__name__` on the series they
//! return (the engine drops it where Prometheus does), `label_replace`/`label_join` return one
//! series per input series in input order, vector points are at step times, and every
//! annotation about function arguments is emitted here.

mod elementwise;
mod histogram;
mod labels;
mod over_time;

use promql_parser::parser::Expr;

use super::value::{Annotations, Point, QueryError, Series, StepValue, Steps};

/// A function argument after evaluation.
#[derive(Clone, Debug)]
pub enum FnArg {
    /// One value per step.
    Scalar(Vec<f64>),
    String(String),
    /// Series with points at step times.
    Vector(Vec<Series>),
    /// A range vector (matrix selector or subquery) for every step.
    Range(RangeArg),
}

/// The points of a range selector or subquery, for every step at once.
#[derive(Clone, Debug)]
pub struct RangeArg {
    /// Each series' points (sorted by time) covering every step's window. Timestamps are the
    /// samples' own; `offset` and `@` only move the windows.
    pub series: Vec<Series>,
    /// For step `i` the window is the points with `t` in
    /// `(window_ends[i] - range_ms, window_ends[i]]`.
    pub window_ends: Vec<i64>,
    pub range_ms: i64,
}

impl RangeArg {
    /// The points of `series` in step `i`'s window.
    pub fn window<'a>(&self, series: &'a Series, i: usize) -> &'a [Point] {
        let end = self.window_ends[i];
        let start = end - self.range_ms;
        let lo = series.points.partition_point(|p| p.t <= start);
        let hi = series.points.partition_point(|p| p.t <= end);
        &series.points[lo..hi.max(lo)]
    }
}

/// What a function may need besides its evaluated arguments.
#[derive(Clone, Copy, Debug)]
pub struct FnCtx<'a> {
    pub steps: Steps,
    /// The call's unevaluated arguments (`absent` derives labels from a selector's matchers).
    pub args: &'a [Box<Expr>],
    /// The query's text (or the printed expression when evaluated from an AST), for the
    /// ` (line:col)` positions of annotations: see [`crate::promql::engine::annotation_position`].
    pub query: &'a str,
}

/// Calls function `name` (already checked by the parser for arity and types).
pub fn call(
    name: &str,
    args: Vec<FnArg>,
    ctx: &FnCtx<'_>,
    annotations: &mut Annotations,
) -> Result<StepValue, QueryError> {
    let mut args = Args { args, name };
    if let Some(result) = elementwise::call(name, &mut args, ctx)? {
        return Ok(result);
    }
    if let Some(result) = over_time::call(name, &mut args, ctx, annotations)? {
        return Ok(result);
    }
    if let Some(result) = labels::call(name, &mut args, ctx)? {
        return Ok(result);
    }
    if let Some(result) = histogram::call(name, &mut args, ctx, annotations)? {
        return Ok(result);
    }
    Err(QueryError::bad_data(format!("function {name:?} is not supported")))
}

/// The evaluated arguments, taken out by position and type.
struct Args<'n> {
    args: Vec<FnArg>,
    name: &'n str,
}

impl Args<'_> {
    fn len(&self) -> usize {
        self.args.len()
    }

    fn mismatch(&self, i: usize, want: &str) -> QueryError {
        QueryError::bad_data(format!("expected {want} as argument {} of {}()", i + 1, self.name))
    }

    fn vector(&mut self, i: usize) -> Result<Vec<Series>, QueryError> {
        match self.args.get_mut(i) {
            Some(FnArg::Vector(series)) => Ok(std::mem::take(series)),
            _ => Err(self.mismatch(i, "an instant vector")),
        }
    }

    fn range(&mut self, i: usize) -> Result<RangeArg, QueryError> {
        match self.args.get_mut(i) {
            Some(FnArg::Range(range)) => Ok(RangeArg {
                series: std::mem::take(&mut range.series),
                window_ends: std::mem::take(&mut range.window_ends),
                range_ms: range.range_ms,
            }),
            _ => Err(self.mismatch(i, "a range vector")),
        }
    }

    fn scalar(&self, i: usize) -> Result<&[f64], QueryError> {
        match self.args.get(i) {
            Some(FnArg::Scalar(values)) => Ok(values),
            _ => Err(self.mismatch(i, "a scalar")),
        }
    }

    fn string(&self, i: usize) -> Result<&str, QueryError> {
        match self.args.get(i) {
            Some(FnArg::String(s)) => Ok(s),
            _ => Err(self.mismatch(i, "a string")),
        }
    }
}

/// Maps every point of every series, dropping points for which `f` returns `None`, and series
/// left without points.
fn map_points(
    series: Vec<Series>,
    steps: &Steps,
    mut f: impl FnMut(usize, f64) -> Option<f64>,
) -> Vec<Series> {
    series
        .into_iter()
        .filter_map(|mut s| {
            s.points = s
                .points
                .iter()
                .filter_map(|p| {
                    let step = steps.index(p.t)?;
                    f(step, p.v).map(|v| Point { t: p.t, v })
                })
                .collect();
            (!s.points.is_empty()).then_some(s)
        })
        .collect()
}

/// Go's `math.Min`/`math.Max`: NaN wins.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Neumaier-compensated addition (Prometheus' `kahanSumInc`): returns the new sum and
/// compensation.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Prometheus' `quantile`: linear interpolation between the closest ranks; NaNs sort first.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// ` (line:col)` of argument `index` in the query, as Prometheus ends argument annotations.
pub(super) fn position(ctx: &FnCtx<'_>, index: usize) -> String {
    ctx.args
        .get(index)
        .map_or_else(String::new, |arg| crate::promql::engine::annotation_position(ctx.query, arg))
}

/// `PromQL warning: quantile value should be between 0 and 1, got …` (Go's `%g`).
fn invalid_quantile_warning(q: f64) -> String {
    format!("PromQL warning: quantile value should be between 0 and 1, got {}", go_g(q))
}

/// Go's `%g` for the values that show up in messages.
fn go_g(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        let abs = v.abs();
        if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
            let text = format!("{v:e}");
            // Rust writes `1e-5`; Go writes `1e-05`.
            match text.split_once('e') {
                Some((mantissa, exp)) => {
                    let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
                    format!("{mantissa}e{sign}{digits:0>2}")
                }
                None => text,
            }
        } else {
            format!("{v}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates() {
        let mut values = vec![4.0, 1.0, 2.0, 3.0];
        assert_eq!(quantile(0.5, &mut values), 2.5);
        assert_eq!(quantile(0.0, &mut values), 1.0);
        assert_eq!(quantile(1.0, &mut values), 4.0);
        assert_eq!(quantile(1.5, &mut values), f64::INFINITY);
        assert!(quantile(f64::NAN, &mut values).is_nan());
    }

    #[test]
    fn kahan_recovers_lost_bits() {
        let (mut sum, mut c) = (0.0, 0.0);
        for v in [1.0, 1e100, 1.0, -1e100] {
            (sum, c) = kahan_inc(v, sum, c);
        }
        assert_eq!(sum + c, 2.0);
    }

    #[test]
    fn go_number_formats() {
        assert_eq!(go_g(f64::NAN), "NaN");
        assert_eq!(go_g(1.5), "1.5");
        assert_eq!(go_g(-1.0), "-1");
        assert_eq!(go_g(1e-5), "1e-05");
        assert_eq!(go_min(1.0, f64::NAN).to_bits(), f64::NAN.to_bits());
    }
}
