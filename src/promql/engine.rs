//! The evaluator. (Being written: issue 5.)

use std::time::Duration;

use promql_parser::parser::Expr;

use super::storage::Queryable;
use super::value::{QueryError, QueryResult};

/// Limits and defaults of query evaluation (Prometheus' `--query.*` flags).
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant-vector selector looks for a sample (`--query.lookback-delta`).
    pub lookback_delta_ms: i64,
    /// Most samples a query may hold in memory at once (`--query.max-samples`).
    pub max_samples: usize,
    /// Longest a query may run (`--query.timeout`).
    pub timeout: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_delta_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
        }
    }
}

/// Evaluates PromQL over a [`Queryable`]. Cheap to clone; holds no data.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    options: EngineOptions,
}

impl Engine {
    pub fn new(options: EngineOptions) -> Self {
        Self { options }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Parses and evaluates `query` at `time_ms`.
    pub fn instant_query(
        &self,
        storage: &dyn Queryable,
        query: &str,
        time_ms: i64,
    ) -> Result<QueryResult, QueryError> {
        let expr = parse(query)?;
        self.instant_expr(storage, &expr, time_ms)
    }

    /// Evaluates a parsed expression at `time_ms` (rules evaluate the same expression often).
    pub fn instant_expr(
        &self,
        _storage: &dyn Queryable,
        _expr: &Expr,
        _time_ms: i64,
    ) -> Result<QueryResult, QueryError> {
        Err(QueryError::execution("engine not written yet"))
    }

    /// Parses and evaluates `query` at every step from `start_ms` to `end_ms`.
    pub fn range_query(
        &self,
        _storage: &dyn Queryable,
        query: &str,
        _start_ms: i64,
        _end_ms: i64,
        _step_ms: i64,
    ) -> Result<QueryResult, QueryError> {
        let _expr = parse(query)?;
        Err(QueryError::execution("engine not written yet"))
    }
}

/// Parses a query; a syntax error is `bad_data` with the parser's message.
pub fn parse(query: &str) -> Result<Expr, QueryError> {
    promql_parser::parser::parse(query).map_err(QueryError::bad_data)
}
