//! PromQL functions over evaluated arguments. (Being written: issue 5.)

use promql_parser::parser::Expr;

use super::value::{Annotations, QueryError, Series, StepValue, Steps};

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

/// What a function may need besides its evaluated arguments.
#[derive(Clone, Copy, Debug)]
pub struct FnCtx<'a> {
    pub steps: Steps,
    /// The call's unevaluated arguments (`absent` derives labels from a selector's matchers).
    pub args: &'a [Box<Expr>],
}

/// Calls function `name` (already checked by the parser for arity and types).
pub fn call(
    name: &str,
    _args: Vec<FnArg>,
    _ctx: &FnCtx<'_>,
    _annotations: &mut Annotations,
) -> Result<StepValue, QueryError> {
    Err(QueryError::execution(format!("function {name} not written yet")))
}
