//! The `query:` section: PromQL engine limits (Prometheus' `--query.*` flags).

use serde::{Deserialize, Serialize};

use super::units::PromDuration;
use super::ConfigError;
use crate::promql::EngineOptions;

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// How far back an instant-vector selector looks for a sample (`--query.lookback-delta`).
    pub lookback_delta: PromDuration,
    /// Longest a query may run (`--query.timeout`); a request's `timeout` can only lower it.
    pub timeout: PromDuration,
    /// Most samples a query may hold at once (`--query.max-samples`).
    pub max_samples: usize,
    /// Most queries evaluated at once; more wait (`--query.max-concurrency`).
    pub max_concurrency: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        let engine = EngineOptions::default();
        Self {
            lookback_delta: PromDuration(std::time::Duration::from_millis(
                engine.lookback_delta_ms as u64,
            )),
            timeout: PromDuration(engine.timeout),
            max_samples: engine.max_samples,
            max_concurrency: 20,
        }
    }
}

impl QueryConfig {
    pub fn engine_options(&self) -> EngineOptions {
        EngineOptions {
            lookback_delta_ms: self.lookback_delta.get().as_millis() as i64,
            timeout: self.timeout.get(),
            max_samples: self.max_samples,
            ..EngineOptions::default()
        }
    }

    pub(super) fn validate(&self, errors: &mut Vec<ConfigError>) {
        for (name, value) in [("lookback_delta", self.lookback_delta), ("timeout", self.timeout)] {
            if value.get().is_zero() {
                errors.push(ConfigError::new(format!("query.{name}"), "must be greater than 0"));
            }
        }
        if self.max_concurrency == 0 {
            errors.push(ConfigError::new("query.max_concurrency", "must be at least 1"));
        }
        if self.max_samples == 0 {
            errors.push(ConfigError::new("query.max_samples", "must be at least 1"));
        }
    }
}
