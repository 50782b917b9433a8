//! The head (`DESIGN.md` §5): recent data of all three signals in memory, queryable while it
//! fills and while it is flushed.
//!
//! * [`metrics`] series index with postings ([`index`]), Gorilla chunks ([`chunk`]),
//!   native histograms and family metadata, after Prometheus' `tsdb` head.
//! * [`logs`]    per tenant, log streams with time-ordered entries, after Loki's ingester.
//! * [`traces`]  per tenant, spans by trace id with search, after Tempo's ingester.
//! * [`matcher`] label matchers with Prometheus semantics, shared by metrics and logs.
//!
//! Lifecycle: the caller appends to one [`Head`]; every block duration (default 2 h) it puts a
//! fresh `Head` in its place and flushes the old one to blocks through `all_series`,
//! `all_streams` and `all_spans`. A head never drops data by time, and every method takes
//! `&self`, so an `Arc<Head>` stays readable by queries while it is flushed.
//!
//! Invariant: all state is behind locks taken briefly, never across an `.await`; a panic while
//! a lock is held does not make the head unusable (poisoning is ignored: every write leaves the
//! structures consistent before it can panic, or loses only the sample it was adding).

pub mod chunk;
mod index;
pub mod logs;
pub mod matcher;
pub mod metrics;
mod paged;
pub mod traces;

#[cfg(test)]
mod metrics_tests;
#[cfg(test)]
mod signal_tests;

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use logs::{LogsHead, LogsStats};
pub use matcher::{LabelMatcher, MatchOp, MatcherError};
pub use metrics::{AppendStats, HeadStats, MetricsHead};
pub use traces::{TraceSearch, TraceSummary, TracesHead, TracesStats};

/// The head of all three signals.
#[derive(Debug, Default)]
pub struct Head {
    pub metrics: MetricsHead,
    pub logs: LogsHead,
    pub traces: TracesHead,
}

/// Totals of every signal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeadSummary {
    pub metrics: HeadStats,
    pub logs: LogsStats,
    pub traces: TracesStats,
}

impl Head {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stats(&self) -> HeadSummary {
        HeadSummary {
            metrics: self.metrics.stats(),
            logs: self.logs.stats(),
            traces: self.traces.stats(),
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}
