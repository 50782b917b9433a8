//! PromQL: an evaluator for queries parsed by `promql-parser`, over any [`Queryable`] (the
//! head, the Parquet tiers, or the in-memory [`MemStorage`] the conformance runner loads).
//!
//! Semantics follow Prometheus 3.x (`promql/engine.go`, `promql/functions.go`): lookback of
//! 5 m, staleness markers end a series, range selectors are left-open `(t - range, t]`.
//!
//! Evaluation is step-oriented: every node of the expression is evaluated for all steps of the
//! query at once ([`Steps`]), producing [`StepValue`]s whose series carry one point per step
//! that has a value. An instant query is a range query with one step.

pub mod engine;
pub mod functions;
pub mod promqltest;
pub mod storage;
pub mod value;

pub use engine::{Engine, EngineOptions};
pub use storage::{MemStorage, Queryable, SelectHints};
pub use value::{
    Annotations, Point, QueryError, QueryErrorKind, QueryResult, Sample, Series, StepValue, Steps,
    Value,
};
