//! Values the engine works with and returns, and its errors and annotations.

use std::fmt;

use crate::model::labels::Labels;

/// The bit pattern Prometheus uses to mark a series stale (`value.StaleNaN`).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Whether `v` is the staleness marker (compared bitwise: other NaNs are ordinary values).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// A float as Go's `strconv.FormatFloat(v, 'f', -1, 64)` writes it: how Prometheus prints
/// sample values in the API and `count_values` labels.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's Display is shortest round-trip and never uses an exponent, as 'f' with -1.
        v.to_string()
    }
}

/// One float sample of a series: milliseconds since the epoch and the value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub t: i64,
    pub v: f64,
}

/// A series with its points sorted by time: a raw series from storage, a range-vector element,
/// or a series evaluated at every step (then `t` is the step's time).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<Point>,
}

/// One element of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// The evaluation grid: `start`, `start + step`, …, up to `end` inclusive (milliseconds). An
/// instant query has `start == end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Steps {
    pub start: i64,
    pub end: i64,
    /// Always > 0 (an instant query uses 1).
    pub step: i64,
}

impl Steps {
    pub fn instant(t: i64) -> Self {
        Self { start: t, end: t, step: 1 }
    }

    pub fn len(&self) -> usize {
        ((self.end - self.start) / self.step) as usize + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The time of step `i`.
    pub fn time(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    /// The index of the step at time `t`, if `t` is on the grid.
    pub fn index(&self, t: i64) -> Option<usize> {
        if t < self.start || t > self.end || (t - self.start) % self.step != 0 {
            return None;
        }
        Some(((t - self.start) / self.step) as usize)
    }

    pub fn times(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(|i| self.time(i))
    }
}

/// An intermediate result: a node of the expression evaluated at every step.
#[derive(Clone, Debug, PartialEq)]
pub enum StepValue {
    /// One value per step.
    Scalar(Vec<f64>),
    String(String),
    /// Series whose points are at step times (a step without a point has no value there).
    Vector(Vec<Series>),
}

/// A query's result as the API returns it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar {
        t: i64,
        v: f64,
    },
    String {
        t: i64,
        v: String,
    },
    /// An instant query's vector.
    Vector(Vec<Sample>),
    /// A range query's result, or an instant query of a range selector.
    Matrix(Vec<Series>),
}

impl Value {
    /// The API's `resultType`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Scalar { .. } => "scalar",
            Self::String { .. } => "string",
            Self::Vector(_) => "vector",
            Self::Matrix(_) => "matrix",
        }
    }
}

/// Warnings and infos collected while evaluating, deduplicated, in first-seen order. Messages
/// follow Prometheus' `util/annotations` text (`PromQL warning: …`, `PromQL info: …`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Annotations {
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

impl Annotations {
    pub fn warn(&mut self, message: impl Into<String>) {
        let message = message.into();
        if !self.warnings.contains(&message) {
            self.warnings.push(message);
        }
    }

    pub fn info(&mut self, message: impl Into<String>) {
        let message = message.into();
        if !self.infos.contains(&message) {
            self.infos.push(message);
        }
    }

    pub fn merge(&mut self, other: Annotations) {
        for w in other.warnings {
            self.warn(w);
        }
        for i in other.infos {
            self.info(i);
        }
    }
}

/// A successful query.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    pub value: Value,
    pub annotations: Annotations,
}

/// The API's `errorType`s a query can fail with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryErrorKind {
    /// The query does not parse or is invalid (`bad_data`, HTTP 400).
    BadData,
    /// Evaluation failed, e.g. too many samples (`execution`, HTTP 422).
    Execution,
    /// The query ran past its timeout (`timeout`, HTTP 503).
    Timeout,
    /// The query was canceled (`canceled`, HTTP 503).
    Canceled,
    /// Storage could not be read (`internal`, HTTP 500).
    Internal,
}

impl QueryErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadData => "bad_data",
            Self::Execution => "execution",
            Self::Timeout => "timeout",
            Self::Canceled => "canceled",
            Self::Internal => "internal",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Self::BadData => 400,
            Self::Execution => 422,
            Self::Timeout | Self::Canceled => 503,
            Self::Internal => 500,
        }
    }
}

/// A failed query, with a message in Prometheus' words where Prometheus has them.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryError {
    pub kind: QueryErrorKind,
    pub message: String,
}

impl QueryError {
    pub fn bad_data(message: impl Into<String>) -> Self {
        Self { kind: QueryErrorKind::BadData, message: message.into() }
    }

    pub fn execution(message: impl Into<String>) -> Self {
        Self { kind: QueryErrorKind::Execution, message: message.into() }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self { kind: QueryErrorKind::Internal, message: message.into() }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for QueryError {}
