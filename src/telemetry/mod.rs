//! Telemetry: `tracing` setup (text or JSON logs) and the catalog of Strata's own metrics,
//! served at `/metrics`.

pub mod catalog;
pub mod storage;

pub use catalog::{
    Catalog, ForwardDropReason, ForwardMetrics, IngestDropReason, IngestMetrics,
    RelabelCacheMetrics,
};
pub use storage::{StorageMetrics, WalFailure};

/// Registers `family` as `name` and records `name + suffix` (`_total` for counters) in the
/// catalog's list of declared names. Every part of the catalog registers through this.
pub fn register<M: prometheus_client::registry::Metric + Clone>(
    registry: &mut prometheus_client::registry::Registry,
    declared: &mut Vec<String>,
    name: &str,
    help: &str,
    suffix: &str,
    family: M,
) -> M {
    registry.register(name, help, family.clone());
    declared.push(format!("{name}{suffix}"));
    family
}

use tracing_subscriber::EnvFilter;

/// Log output format (`--log-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global `tracing` subscriber. `level` is an `EnvFilter` directive (`info`,
/// `strata=debug,warn`); `RUST_LOG` overrides it when set.
pub fn init_logging(format: LogFormat, level: &str) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => EnvFilter::try_new(env),
        _ => EnvFilter::try_new(level),
    }
    .map_err(|e| format!("invalid log level {level:?}: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))
}
