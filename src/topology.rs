//! The only place that knows which role wires what (`DESIGN.md` §1).
//!
//! | role | wiring in this build |
//! |---|---|
//! | `all-in-one` | remote-write ingest → relabel → route → every configured forward target |
//! | `agent` | the same; an agent without forward targets is a config error (it would drop data) |
//! | `aggregator` | rejected by config validation until storage and query exist |

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::{Config, ConfigError, ConfigErrors, Role};
use crate::ingest::remote_write::RemoteWriteIngest;
use crate::route::{Router, Targets};
use crate::sinks::queue::Workers;
use crate::sinks::{loki, otlp, remote_write};
use crate::telemetry::Catalog;

/// A wired pipeline: the stages the server calls and the background workers to drain.
pub struct Pipeline {
    pub remote_write: Arc<RemoteWriteIngest>,
    pub route: Arc<Router>,
    pub workers: Vec<Workers>,
    /// Set to true when the shutdown deadline passes: sinks stop retrying and drop the rest.
    pub abort: watch::Sender<bool>,
}

/// Builds the pipeline for `config` (already validated) on the current runtime.
pub fn build(config: &Config, catalog: &Catalog) -> Result<Pipeline, ConfigErrors> {
    let fail = |path: String, message: String| ConfigErrors {
        source: "config".into(),
        errors: vec![ConfigError { path, message }],
    };
    if config.role == Role::Agent && config.forward.remote_write.is_empty() {
        return Err(fail(
            "forward.remote_write".into(),
            "an agent needs at least one forward target".into(),
        ));
    }
    let ingest_config = &config.ingest.remote_write;
    let remote_write = RemoteWriteIngest::new(ingest_config, catalog)
        .map_err(|e| fail("ingest.remote_write.metric_relabel_configs".into(), e.to_string()))?;
    let (abort, abort_rx) = watch::channel(false);
    let mut targets = Targets::default();
    let mut workers = Vec::new();
    for (index, target_config) in config.forward.remote_write.iter().enumerate() {
        let name = target_config.display_name(index);
        let (target, target_workers) = remote_write::Target::start(
            target_config,
            name,
            ingest_config.label_name_validation,
            ingest_config.relabel_cache_size as usize,
            catalog,
            &abort_rx,
        )
        .map_err(|e| {
            fail(format!("forward.remote_write[{index}].write_relabel_configs"), e.to_string())
        })?;
        targets.metrics.push(target);
        workers.push(target_workers);
    }
    for (index, target_config) in config.forward.loki.iter().enumerate() {
        let (target, target_workers) = loki::Target::start(
            target_config,
            target_config.display_name(index),
            config.ingest.loki.relabel_cache_size as usize,
            catalog,
            &abort_rx,
        )
        .map_err(|e| fail(format!("forward.loki[{index}].relabel_configs"), e.to_string()))?;
        targets.logs.push(target);
        workers.push(target_workers);
    }
    for (index, target_config) in config.forward.otlp.iter().enumerate() {
        let (target, target_workers) = otlp::Target::start(
            target_config,
            target_config.display_name(index),
            None,
            catalog,
            &abort_rx,
        );
        targets.traces.push(target);
        workers.push(target_workers);
    }
    Ok(Pipeline {
        remote_write: Arc::new(remote_write),
        route: Arc::new(Router::new(targets)),
        workers,
        abort,
    })
}
